"""The people of a simulated community (1+N+X) and how their stances move between rounds.

A community's cast is plain data derived from the scenario: ids like ``c001.r17`` (a resident),
each person with the roles the directory would grant them. The opinion model is pure: positions
in [-1, 1] in, stances and the next positions out, with randomness drawn from the caller's
``random.Random``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from random import Random

import attrs

from ..roles import Actor, Role
from ..vocabulary import Stance
from .scenario import OpinionModel, People

__all__ = ["Cast", "cast_for", "move", "stance_of"]


@attrs.frozen(slots=True)
class Cast:
    """Who is who in one community: the actors by kind, and every person's roles (what the
    engine's directory would hand the core in ``Context.people``)."""

    community: str
    committee: tuple[Actor, ...]
    working_committee: tuple[Actor, ...]
    council: tuple[Actor, ...]
    residents: tuple[Actor, ...]
    representatives: tuple[Actor, ...]
    stakeholders: tuple[Actor, ...]  # property management, units, social organisations
    think_tank: tuple[Actor, ...]
    chairs: tuple[Actor, ...]
    supervisors: tuple[Actor, ...]
    inspectors: tuple[Actor, ...]
    sub_district: tuple[Actor, ...]
    roles: Mapping[str, frozenset[Role]]

    @property
    def voices(self) -> tuple[Actor, ...]:
        """Whom the committee may invite to speak on a matter (X, and the council)."""
        return (*self.representatives, *self.stakeholders, *self.council)


def _people(community: str, tag: str, count: int, roles: frozenset[Role]) -> tuple[Actor, ...]:
    return tuple(Actor.known(f"{community}.{tag}{i + 1}", roles) for i in range(count))


def cast_for(community: str, people: People) -> Cast:
    """The cast of ``community``: ``people`` of each kind, each holding exactly their role."""

    def kind(tag: str, count: int, *roles: Role) -> tuple[Actor, ...]:
        return _people(community, tag, count, frozenset(roles))

    stakeholders = (
        *kind("pm", people.property_management, Role.PROPERTY_MANAGEMENT),
        *kind("u", people.units, Role.UNIT),
        *kind("so", people.social_organisations, Role.SOCIAL_ORGANISATION),
    )
    think_tank = tuple(
        Actor.known(f"{community}.tt{i + 1}", frozenset({(Role.EXPERT, Role.DEPUTY, Role.TECHNICIAN)[i % 3]}))
        for i in range(people.think_tank)
    )
    cast = Cast(
        community=community,
        committee=kind("cm", people.committee, Role.COMMITTEE),
        working_committee=kind("wc", people.working_committee, Role.WORKING_COMMITTEE),
        council=kind("co", people.council, Role.COUNCIL_MEMBER),
        residents=kind("r", people.residents, Role.RESIDENT),
        representatives=kind("rr", people.representatives, Role.RESIDENT_REPRESENTATIVE),
        stakeholders=stakeholders,
        think_tank=think_tank,
        chairs=kind("ch", people.chairs, Role.ROTATING_CHAIR),
        supervisors=kind("sv", people.supervisors, Role.SUPERVISOR),
        inspectors=kind("ig", people.inspectors, Role.INSPECTION_GROUP),
        sub_district=kind("sd", people.sub_district, Role.SUB_DISTRICT),
        roles={},
    )
    everyone = (
        *cast.committee,
        *cast.working_committee,
        *cast.council,
        *cast.residents,
        *cast.representatives,
        *cast.stakeholders,
        *cast.think_tank,
        *cast.chairs,
        *cast.supervisors,
        *cast.inspectors,
        *cast.sub_district,
    )
    return attrs.evolve(cast, roles={a.id: a.roles for a in everyone})


def stance_of(position: float, model: OpinionModel) -> Stance:
    """The stance a position takes in a round."""
    if position > model.threshold:
        return Stance.SUPPORT
    if position < -model.threshold:
        return Stance.OPPOSE
    return Stance.AMEND


def move(positions: Sequence[float], model: OpinionModel, rng: Random) -> list[float]:
    """Positions after a round without consensus: towards the round's mean (``persuasion``), towards
    support by the amendment, plus noise; clipped to [-1, 1]."""
    if not positions:
        return []
    mean = sum(positions) / len(positions)
    out = []
    for x in positions:
        y = x + model.persuasion * (mean - x) + model.amendment + rng.gauss(0.0, model.noise)
        out.append(-1.0 if y < -1.0 else 1.0 if y > 1.0 else y)
    return out
