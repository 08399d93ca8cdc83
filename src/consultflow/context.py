"""What the shell hands the pure core with each command: the time, the actor (with the roles the
directory gives them in the consultation's community), the roles of the other people the command
names, who holds the roles a command counts (a voting body's register), a new id, the catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

import attrs

from .catalogue import Catalogue
from .roles import Actor, Role

__all__ = ["Context"]

_EMPTY_CATALOGUE = Catalogue()
_NOBODY: Mapping[str, frozenset[Role]] = MappingProxyType({})


@attrs.frozen(slots=True)
class Context:
    """Inputs the core may not fetch for itself. ``now`` must be aware; ``new_id`` names a new
    consultation (the engine draws it from its id factory); ``people`` holds the roles, in this
    community now, of each person the command names (attendees, a proxy's resident, a chair),
    looked up by the engine in its directory - a person not in it holds none. ``register`` lists,
    sorted, who holds the roles the command counts (``Command.counted_roles``: a body's members)
    in this community now, or is ``None`` when the command counts nobody or the directory cannot
    list its members."""

    now: datetime
    actor: Actor
    new_id: str | None = None
    catalogue: Catalogue = _EMPTY_CATALOGUE
    people: Mapping[str, frozenset[Role]] = _NOBODY
    register: tuple[str, ...] | None = None

    def roles_of(self, person: str) -> frozenset[Role]:
        """The roles ``person`` holds here now: the actor's own, or those the engine looked up."""
        if person == self.actor.id:
            return self.actor.roles
        return self.people.get(person, frozenset())
