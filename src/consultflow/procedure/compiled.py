"""The compiled lookup: what the core reads on the hot path, read back off the ``transitions``
Machine in its own order and checked against the definition, so what runs is what was declared."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import attrs
from transitions import Machine

from ..errors import ProcedureDefinitionError
from ..roles import Role
from ..steps import GUARDS, NEW, ROUTES, Guard, Route, Transition
from ..vocabulary import State

__all__ = ["Option", "Table", "build_machine", "compile_table", "union_roles"]


@attrs.frozen(slots=True)
class Option:
    """A compiled transition: what the core needs at run time, nothing more."""

    target: State | None
    routes: tuple[Route, ...]
    guards: tuple[Guard, ...]
    roles: frozenset[Role]
    transition: Transition
    routes_need_command: bool = False


Table = Mapping[tuple[str, str], tuple[Option, ...]]


def build_machine(defined: Sequence[Transition]) -> Machine:
    """One Machine for the whole definition, with no model: records never meet it."""
    return Machine(
        model=None,
        states=[NEW, *(s.value for s in State)],
        initial=NEW,
        transitions=[
            {
                "trigger": t.trigger.value,
                "source": t.source,
                "dest": t.target,
                "conditions": [*t.routes, *t.guards],
            }
            for t in defined
        ],
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )


def compile_table(machine: Machine, defined: Sequence[Transition]) -> Table:
    """Read the transitions back off the machine's events, in its order, and resolve names."""
    by_key: dict[tuple[str, str], list[Transition]] = defaultdict(list)
    for t in defined:
        by_key[(t.source, t.trigger.value)].append(t)
    table: dict[tuple[str, str], tuple[Option, ...]] = {}
    interned: dict[frozenset[Role], frozenset[Role]] = {}  # equal role sets become one object
    for trigger, event in machine.events.items():
        for source, compiled in event.transitions.items():
            declared = by_key[(source, trigger)]
            if len(declared) != len(compiled):
                raise ProcedureDefinitionError(trigger, [f"machine and definition disagree on {trigger} from {source}"])
            options = []
            for t, mt in zip(declared, compiled, strict=True):
                names = [c.func for c in mt.conditions]
                if names != [*t.routes, *t.guards] or (mt.dest or None) != t.target:
                    raise ProcedureDefinitionError(
                        trigger, [f"machine and definition disagree on {trigger} from {source}"]
                    )
                options.append(
                    Option(
                        target=State(t.target) if t.target is not None else None,
                        routes=tuple(ROUTES[r] for r in t.routes),
                        guards=tuple(GUARDS[g] for g in t.guards),
                        roles=interned.setdefault(t.roles, t.roles),
                        transition=t,
                        routes_need_command=any(ROUTES[r].needs_command for r in t.routes),
                    )
                )
            table[(source, trigger)] = tuple(options)
    return table


def union_roles(options: tuple[Option, ...]) -> frozenset[Role]:
    """The roles any option admits; the first option's own set when they all agree, so the core
    can tell by identity that the chosen option needs no second check."""
    first = options[0].roles
    if all(o.roles == first for o in options):
        return first
    return frozenset().union(*(o.roles for o in options))
