"""What a step of the procedure declares, in one place: its commands, its transitions (source ->
target, who may fire them), its guards and routes, its effect, and who hears of its events.

Words used throughout:
- a *transition* is one row of the procedure: a trigger from a source state to a target state,
  with the roles allowed to fire it, the routes that choose it and the guards that must hold;
- a *guard* must hold or the command is refused; it returns ``None`` or a ``Failure`` (a code and
  its data), and declares every code it can return, so the texts are checked in both languages;
- a *route* chooses between transitions of one trigger (a round ends in another round or, at the
  limit without consensus, in an escalation); it returns a bool and never refuses on its own;
- an *effect* is what a step does to the case file: the fields it changes and the events it logs;
- the *audience* says who hears of an event: participant groups the outbox expands.

All are pure: (parameters, record, command, context) in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

import attrs
from pydantic import Field

from ..commands import Command
from ..context import Context
from ..parameters import Parameters
from ..records import Record
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Event, State, Trigger

__all__ = [
    "NEW",
    "Effect",
    "EffectFn",
    "Events",
    "Governing",
    "Guard",
    "Route",
    "StepDefinition",
    "Transition",
    "days",
    "transition",
]

NEW = "new"  # the state before a proposal exists; ``propose`` leaves it

GuardFn = Callable[[Parameters, Any, Any, Context], Failure | None]
RouteFn = Callable[[Parameters, Any, Any, Context], bool]

# Event data must be JSON values with keys in sorted order at every level: the hot path hashes it
# as it stands (``log.chain_hash``) and ``verify`` re-checks against sorted canonical JSON.
Events = list[tuple[Event, dict[str, Any]]]
Effect = tuple[dict[str, Any], Events]


class Governing(Protocol):
    """What an effect may read of the procedure it runs under: its name, version and parameters."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def parameters(self) -> Parameters: ...


#: (procedure, record or None for a proposal, command, context, role, target state) -> effect
EffectFn = Callable[[Governing, Any, Any, Context, str, State], Effect]


@attrs.frozen(slots=True)
class Guard:
    """A condition a transition needs. ``codes`` lists every refusal code ``check`` can return;
    ``needs_command`` marks guards that read the command (``Engine.allowed`` passes them over);
    ``bounds_loop`` marks guards that bound a loop (the build check needs one on every cycle)."""

    name: str
    check: GuardFn
    codes: tuple[str, ...]
    doc: str
    needs_command: bool = False
    bounds_loop: bool = False


@attrs.frozen(slots=True)
class Route:
    """A test that chooses between the transitions of one trigger from one state.
    ``exempts_review`` marks the one route that may let a decision take effect without a lawful
    legality review: it holds only where the parameters say the matter needs none (the build
    check accepts no other way into force)."""

    name: str
    test: RouteFn
    doc: str
    needs_command: bool = False
    bounds_loop: bool = False
    exempts_review: bool = False


class Transition(Record):
    """One transition of a procedure definition.

    ``target`` ``None`` means an internal step (the state stays, the record changes). ``routes``
    choose between transitions of the same (source, trigger), tried in order; ``guards`` must then
    hold. ``roles`` are the roles allowed to fire it (default deny); ``proposer`` means the proposer.
    """

    trigger: Trigger
    source: str
    target: str | None
    routes: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    roles: frozenset[Role] = Field(default=frozenset())


def transition(
    trigger: Trigger,
    source: str,
    target: str | None,
    roles: Iterable[Role],
    guards: Sequence[str] = (),
    routes: Sequence[str] = (),
) -> Transition:
    """A row of the default procedure, as the step modules declare them."""
    return Transition(
        trigger=trigger,
        source=source,
        target=target,
        roles=frozenset(roles),
        guards=tuple(guards),
        routes=tuple(routes),
    )


@attrs.frozen(slots=True, eq=False)
class StepDefinition:
    """Everything one step of the six (or escalation, or the overdue check) is, declared together.

    ``name`` is the seed's word for it; ``transitions`` are its rows of the default procedure, in
    the order they are tried; ``effects`` map each trigger to what it does; ``audience`` maps each
    event it alone declares to the groups who hear of it (see ``consultflow.notices``).
    """

    name: str
    commands: tuple[type[Command], ...]
    transitions: tuple[Transition, ...]
    effects: Mapping[Trigger, EffectFn]
    guards: tuple[Guard, ...] = ()
    routes: tuple[Route, ...] = ()
    audience: Mapping[Event, tuple[str, ...]] = attrs.field(factory=dict)


def days(period: timedelta) -> int | float:
    """A period in days, as a refusal quotes it (3, or 0.5)."""
    value = period.total_seconds() / 86400
    return int(value) if value.is_integer() else round(value, 2)
