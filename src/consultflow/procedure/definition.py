"""The definition: a procedure's transitions (rows), the default six-step table assembled from the
step modules, and a community's changes to who may fire what."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ProcedureDefinitionError
from ..roles import Role
from ..steps import NEW, Transition, default_transitions
from ..vocabulary import Trigger

__all__ = ["NEW", "Transition", "default_transitions", "override_roles"]


def override_roles(
    name: str, defined: tuple[Transition, ...], roles: Mapping[Trigger | str, Iterable[Role | str]]
) -> tuple[Transition, ...]:
    """``defined`` with the roles of some triggers replaced (every row of that trigger)."""
    problems = []
    resolved: dict[str, frozenset[Role]] = {}
    for trigger, names in roles.items():
        key = str(trigger.value if isinstance(trigger, Trigger) else trigger)
        if key not in {t.value for t in Trigger}:
            problems.append(f"roles: unknown trigger {key!r}; known triggers: {', '.join(t.value for t in Trigger)}")
            continue
        try:
            resolved[key] = frozenset(Role(n) for n in names)
        except ValueError:
            problems.append(f"roles.{key}: unknown role in {list(names)!r}; known roles: {_known_roles()}")
    if problems:
        raise ProcedureDefinitionError(name, problems)
    return tuple(
        t.model_copy(update={"roles": resolved[t.trigger.value]}) if t.trigger.value in resolved else t for t in defined
    )


def _known_roles() -> str:
    return ", ".join(r.value for r in Role)
