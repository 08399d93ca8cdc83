"""Commands: what a caller asks the procedure to do. Typed, validated when built, serialisable, so
one stream of commands can be executed, logged, replayed and simulated alike.

This module holds the bases only; each command lives with its step in ``consultflow.steps``.
Building a command (or any record) with bad fields raises ``consultflow.ValidationError``, which
names the field and the problem in English and Chinese; whether the procedure allows the command
is the core's business and ends in a ``Refused``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import StringConstraints

from .records import Consultation, Id, Record
from .roles import Role
from .vocabulary import Trigger

__all__ = ["Command", "ConsultationCommand", "Reason"]

_NOTHING = Decimal(0)

#: Why someone rejects, withdraws or escalates: a sentence a resident will read.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000)]


class Command(Record):
    """Base of all commands; ``trigger`` says which transition of the procedure it asks for."""

    trigger: ClassVar[Trigger]

    def named_people(self) -> tuple[str, ...]:
        """The people this command names besides its actor, whose roles the core must know (the
        engine looks them up in its directory and hands them over in ``Context.people``)."""
        return ()

    def named_topics(self, record: Consultation | None) -> tuple[str, ...]:
        """The catalogue topics this command puts a matter under (on ``record``), whose items the
        core checks: the engine hands over those an earlier step added (``Context.added_items``)."""
        return ()

    def counted_roles(self) -> frozenset[Role] | None:
        """Roles whose holders in the community this command needs listed (a voting body's
        register), or ``None``: the engine asks its directory and hands the list over in
        ``Context.register``."""
        return None

    def funds_drawn(self, record: Consultation) -> Decimal:
        """How much this command may take from the community's yearly fund (微幸福): the budget of
        a decision that takes effect, is taken or is put to a vote; 0 for any other. Where it is
        more than 0, the engine hands the store's fund ledger for the year over in ``Context.fund``."""
        return _NOTHING

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with a ``"command"`` key naming the type, for logs and replays."""
        return {"command": self.trigger.value, **self.model_dump(mode="json")}


class ConsultationCommand(Command):
    """A command on an existing consultation, named by ``consultation`` (its id)."""

    consultation: Id
