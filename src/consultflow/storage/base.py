"""The store contract: what any storage adapter provides, and nothing more.

A store keeps consultations, their logs and the outbox. ``append`` writes one step - the new
record, its log entries and its notices - atomically, and only if the stored version is the one
expected (optimistic concurrency); otherwise it raises ``Conflict`` and writes nothing. Errors are
the library's own (``NotFound``, ``Conflict``, ``IntegrityError``, ``StoreUnavailable``), never a
driver's. ``consultflow.testing`` holds the suite that proves an adapter right.

Beyond the method docstrings the suite holds every store to three more promises: a naive datetime or an
unknown settle outcome is ``InvalidInput`` (nothing written); any call after ``close()`` is
``StoreUnavailable``; a step whose notice key is already in the outbox is ``IntegrityError``
(nothing written), so no notice is ever sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

import attrs

from ..errors import InvalidInput
from ..log import LogEntry
from ..notices import Notice
from ..records import Consultation
from ..step import Step
from ..vocabulary import Carrier, State

__all__ = ["Query", "SettleOrder", "Settlement", "Store"]

#: How a leased notice ends: ``delivered``; ``retry`` (pending again, at ``retry_at``); ``dead`` (a
#: dead letter); ``release`` (it was not tried: pending again at once, the lease's attempt taken back).
Settlement = Literal["delivered", "retry", "dead", "release"]

#: One settle of a batch (``settle_many`` on the SQL stores): (key, outcome, retry_at, error, attempt).
SettleOrder = tuple[str, Settlement, datetime | None, str, int | None]


def _states(value: Iterable[State | str]) -> frozenset[State]:
    return frozenset(State(s) for s in value)


def _text(instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or "\x00" in value or not _encodes(value)):
        raise InvalidInput(f"Query.{attribute.name} must be valid Unicode text without NUL characters, not {value!r}")


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeError:  # a lone surrogate
        return False
    return True


def _limit(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**62):
        raise InvalidInput(f"Query.limit must be a whole number from 0 to 2**62, or None; not {value!r}")


@attrs.frozen(slots=True)
class Query:
    """What ``Store.find`` filters on; every field left ``None`` matches all.

    ``topic`` matches exactly, or a whole category when it ends with ``/``. ``due_before`` matches
    records whose ``next_due`` is at or before that time (what ``Engine.tick`` asks for).
    Results come ordered by ``proposed_at``, then ``id``.
    """

    community: str | None = attrs.field(default=None, validator=_text)
    states: frozenset[State] | None = attrs.field(default=None, converter=attrs.converters.optional(_states))
    topic: str | None = attrs.field(default=None, validator=_text)
    carrier: Carrier | None = None
    due_before: datetime | None = None
    limit: int | None = attrs.field(default=None, validator=_limit)

    def matches(self, record: Consultation) -> bool:
        """The reference semantics of a query, for stores that filter in Python."""
        if self.community is not None and record.community != self.community:
            return False
        if self.states is not None and record.state not in self.states:
            return False
        if self.topic is not None:
            if self.topic.endswith("/"):
                if not record.topic.startswith(self.topic):
                    return False
            elif record.topic != self.topic:
                return False
        if self.carrier is not None and record.carrier is not self.carrier:
            return False
        return self.due_before is None or (record.next_due is not None and record.next_due <= self.due_before)


@runtime_checkable
class Store(Protocol):
    """The storage contract. All methods are safe to call from several threads."""

    def load(self, consultation: str) -> Consultation:
        """The current record; ``NotFound`` if there is none."""
        ...

    def append(self, step: Step, expected_version: int) -> None:
        """Write the step's record, entries and notices in one transaction, only if the stored
        version equals ``expected_version`` (0 for a new consultation); else ``Conflict``."""
        ...

    def entries(self, consultation: str, after: int = 0) -> Sequence[LogEntry]:
        """Log entries with ``seq > after``, in order; ``NotFound`` for an unknown consultation."""
        ...

    def find(self, query: Query) -> Sequence[Consultation]:
        """Records matching ``query``, ordered by ``proposed_at`` then ``id``."""
        ...

    def lease(self, limit: int, now: datetime, lease_for: timedelta = timedelta(minutes=5)) -> Sequence[Notice]:
        """Up to ``limit`` notices ready to send (pending, or leased and expired), oldest first,
        each marked leased until ``now + lease_for`` and its ``attempts`` counted."""
        ...

    def settle(
        self,
        key: str,
        outcome: Settlement,
        *,
        now: datetime,
        retry_at: datetime | None = None,
        error: str = "",
        attempt: int | None = None,
    ) -> None:
        """Record a delivery attempt: delivered, to retry at ``retry_at``, or dead (dead letter); or
        ``release`` a leased notice that was not tried (ready again at once, no ``not_before``; its
        ``attempts`` as before the lease; its last error kept; ``IntegrityError`` unless it is leased).

        ``attempt`` is the leased notice's ``attempts``: given, the settle applies only if no lease
        has counted an attempt since (else ``IntegrityError`` and nothing changes; a lease released
        untried took its attempt back and counts as never made), so a worker whose
        lease expired cannot undo the work of the one that took it over."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
