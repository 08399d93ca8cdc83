"""What the shell hands the pure core with each command: the time, the actor (with the roles the
directory gives them in the consultation's community), the roles of the other people the command
names, who holds the roles a command counts (a voting body's register), a new id, the catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

import attrs

from .catalogue import Catalogue, TopicItem
from .funds import FundPosition
from .roles import Actor, Role

__all__ = ["Context"]

_EMPTY_CATALOGUE = Catalogue()
_NOBODY: Mapping[str, frozenset[Role]] = MappingProxyType({})


def _utc(value: datetime) -> datetime:
    """``now`` in UTC when its offset has seconds (records could not keep it through JSON); a naive
    value is left for the caller's check to refuse."""
    tz = value.tzinfo if isinstance(value, datetime) else None
    if tz is None or tz is UTC:
        return value
    offset = value.utcoffset()
    if offset is None or not (offset.seconds % 60 or offset.microseconds):
        return value
    return value.astimezone(UTC)


@attrs.frozen(slots=True, kw_only=True)
class Context:
    """Inputs the core may not fetch for itself, given by name (fields are added as the procedure
    grows: a positional call would hand one to the next). ``now`` must be aware; ``new_id`` names a new
    consultation (the engine draws it from its id factory); ``people`` holds the roles, in this
    community now, of each person the command names (attendees, a proxy's resident, a chair),
    looked up by the engine in its directory - a person not in it holds none. ``register`` lists,
    sorted, who holds the roles the command counts (``Command.counted_roles``: a body's members)
    in this community now, or is ``None`` when the command counts nobody or the directory cannot
    list its members. ``salt`` is the step's secret salt (hex; the engine draws 16 random bytes, a simulation
    may give none): personal values enter the entries' hashes only salted. ``added_items`` are the
    second-level items the command's topics name that the catalogue does not list but an earlier step of this
    community added (``AddTopic``, 列入二级目录), as the engine found them in its store; the step's input carries
    them. ``fund`` is the community's fund ledger for the year now (微幸福 fund), as the store had it, where the
    command may take money from a pool (``Command.funds_drawn``)."""

    now: datetime = attrs.field(converter=_utc)
    actor: Actor
    new_id: str | None = None
    catalogue: Catalogue = _EMPTY_CATALOGUE
    people: Mapping[str, frozenset[Role]] = _NOBODY
    register: tuple[str, ...] | None = None
    added_items: tuple[TopicItem, ...] = ()
    fund: FundPosition | None = None
    # the step's salt (hex) for the commitments that stand for personal values in its entries'
    # hashes (``consultflow.privacy``): drawn by the engine, kept in the entries, reused by replay
    salt: str = ""

    def roles_of(self, person: str) -> frozenset[Role]:
        """The roles ``person`` holds here now: the actor's own, or those the engine looked up."""
        if person == self.actor.id:
            return self.actor.roles
        return self.people.get(person, frozenset())
