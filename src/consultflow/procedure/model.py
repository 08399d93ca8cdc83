"""``Procedure``: a definition with a name and a version, built, checked and compiled once.

One ``transitions.Machine`` per procedure definition, with no model: records stay plain data and
are never attached to it. The machine holds the definition (states, triggers, ordered conditions);
the compiled table is read off its events, so what runs is what was declared.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..parameters import Parameters
from ..roles import Role
from ..steps import Transition
from ..vocabulary import Trigger
from . import diagram
from .checks import check_definition
from .compiled import Option, build_machine, compile_table, union_roles
from .definition import default_transitions, override_roles
from .io import ProcedureFile, parse_definition, read_definition

__all__ = ["Procedure", "six_step"]

_TRIGGER_ORDER = {t.value: i for i, t in enumerate(Trigger)}
_CLOCK_ONLY = frozenset({Role.SYSTEM})


class Procedure:
    """A built, checked, compiled procedure. Immutable; share one per definition.

    ``parameters`` are the community's numbers and switches; ``transitions`` the rows (by default
    the six steps'); ``roles`` replaces who may fire a trigger. A definition that would let the
    procedure be skipped or bent raises ``ProcedureDefinitionError`` listing every problem.
    """

    __slots__ = (
        "_by_state",
        "_groups",
        "_machine",
        "_next_steps",
        "_table",
        "name",
        "parameters",
        "transitions",
        "version",
    )

    def __init__(
        self,
        name: str,
        version: str,
        *,
        parameters: Parameters | None = None,
        transitions: Iterable[Transition] | None = None,
        roles: Mapping[Trigger | str, Iterable[Role | str]] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.parameters = parameters if parameters is not None else Parameters()
        defined = tuple(transitions) if transitions is not None else default_transitions()
        if roles:
            defined = override_roles(name, defined, roles)
        self.transitions = defined
        check_definition(name, version, defined)
        self._machine = build_machine(defined)
        self._table = compile_table(self._machine, defined)
        self._groups = {key: (options, union_roles(options)) for key, options in self._table.items()}
        by_state: dict[str, set[str]] = defaultdict(set)
        for state, trigger in self._table:
            by_state[state].add(trigger)
        self._by_state = {s: tuple(sorted(ts, key=_TRIGGER_ORDER.__getitem__)) for s, ts in by_state.items()}
        self._next_steps = {
            s: tuple(t for t in ts if not self._groups[(s, t)][1] <= _CLOCK_ONLY) for s, ts in self._by_state.items()
        }

    @property
    def machine(self) -> Any:
        """The ``transitions.Machine`` holding the definition, for inspection; the core reads the
        compiled table instead."""
        return self._machine

    # ---- the hot path ----------------------------------------------------------------------------
    def options(self, state: str, trigger: str) -> tuple[Option, ...] | None:
        """The compiled transitions for ``trigger`` in ``state``, in the order they are tried."""
        return self._table.get((state, trigger))

    def group(self, state: str, trigger: str) -> tuple[tuple[Option, ...], frozenset[Role]] | None:
        """``options`` and the union of their roles, looked up once per step."""
        return self._groups.get((state, trigger))

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """Every trigger the definition has for ``state`` (whether or not it would pass now), in
        the order of ``Trigger``."""
        return self._by_state.get(state, ())

    def next_steps(self, state: str) -> tuple[str, ...]:
        """The triggers a person may be offered in ``state``: ``triggers_from`` without the ones
        only the system clock fires (marking what is overdue)."""
        return self._next_steps.get(state, ())

    # ---- definition, exchange, diagrams ----------------------------------------------------------
    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data; ``Procedure.from_dict`` builds it back."""
        return {
            "name": self.name,
            "version": self.version,
            "parameters": self.parameters.model_dump(mode="json"),
            "transitions": [
                {
                    "trigger": t.trigger.value,
                    "source": t.source,
                    "target": t.target,
                    "routes": list(t.routes),
                    "guards": list(t.guards),
                    "roles": sorted(r.value for r in t.roles),
                }
                for t in self.transitions
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | object) -> Procedure:
        """Build from data: ``name``, ``version``, optional ``parameters``, ``roles`` (trigger ->
        roles, applied to the six-step transitions or to ``transitions`` if given)."""
        return cls._from_file(parse_definition(data))

    @classmethod
    def from_file(cls, path: str | Path) -> Procedure:
        """Build from a ``.json`` or ``.toml`` file (same keys as ``from_dict``)."""
        return cls._from_file(read_definition(path))

    @classmethod
    def _from_file(cls, spec: ProcedureFile) -> Procedure:
        return cls(
            spec.name,
            spec.version,
            parameters=spec.parameters,
            transitions=spec.transitions,
            roles=dict(spec.roles),
        )

    def variant(
        self,
        name: str,
        version: str,
        *,
        parameters: Parameters | Mapping[str, Any] | None = None,
        roles: Mapping[Trigger | str, Iterable[Role | str]] | None = None,
        **unknown: Any,
    ) -> Procedure:
        """A community's variant of this procedure: new parameters and/or roles, same steps."""
        if unknown:
            hint = " ('rules' is called 'parameters' now)" if "rules" in unknown else ""
            raise InvalidInput(f"variant() takes parameters= and roles=, not {', '.join(sorted(unknown))}{hint}")
        if isinstance(parameters, Mapping):
            parameters = Parameters.model_validate({**self.parameters.model_dump(), **parameters})
        return Procedure(
            name,
            version,
            parameters=parameters if parameters is not None else self.parameters,
            transitions=self.transitions,
            roles=roles,
        )

    def mermaid(self) -> str:
        """A Mermaid state diagram of the definition (internal steps left out)."""
        return diagram.mermaid(self.transitions)

    def dot(self) -> str:
        """A Graphviz DOT digraph of the definition (internal steps left out)."""
        return diagram.dot(self.transitions, f"{self.name} {self.version}")

    def markdown(self) -> str:
        """The transition table as Markdown: trigger, from, to, routes, guards, roles."""
        return diagram.markdown(self.transitions)

    def _repr_markdown_(self) -> str:
        """In a notebook: the state diagram, as a Mermaid block (Jupyter renders it)."""
        return f"**{self.name}** version {self.version}\n\n```mermaid\n{self.mermaid()}\n```\n"

    def __repr__(self) -> str:
        return f"Procedure({self.name!r}, {self.version!r}, {len(self.transitions)} transitions)"


@cache
def six_step() -> Procedure:
    """The default procedure, ``six-step`` version ``1``, with the default parameters."""
    return Procedure("six-step", "1")
