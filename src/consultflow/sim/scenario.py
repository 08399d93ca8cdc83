"""A simulation scenario (情景): who lives where, what they propose, how they meet and argue, and the
procedure they follow. Typed and validated (pydantic); loadable from TOML.

A scenario describes behaviour only; the rules are the procedure's (``Scenario.procedure()``, or
any ``Procedure`` given to ``simulate``). Impossible values (a probability of 1.5, a round table
share with no meetings, an unknown category, a notice shorter than the procedure allows) are a
``consultflow.ValidationError`` naming the field.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..catalogue import DEFAULT_CATEGORIES
from ..errors import InvalidInput
from ..parameters import Parameters
from ..procedure import Procedure, six_step
from ..records import ITEM_PATTERN, Id, Record
from ..vocabulary import Body, Carrier, Form, MeetingFormat

__all__ = [
    "CommunitySpec",
    "Funds",
    "OpinionModel",
    "People",
    "Scenario",
    "Times",
    "Turnout",
]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Weight = Annotated[float, Field(ge=0.0, le=1e6)]
Rate = Annotated[float, Field(ge=0.0, le=1_000.0)]  # proposals per community per month
#: The most consultations one run may expect, and people it may hold: a scenario is data anyone can
#: hand over (a TOML file), so it is bounded before it runs.
MAX_CONSULTATIONS = 10_000_000
MAX_PEOPLE = 5_000_000
Days = Annotated[float, Field(ge=0.0, le=3650.0)]

#: Second-level items (二级目录) each simulated community lists under each category: the seed's
#: seven "micro" projects (微幸福) under public-benefit undertakings, generic ones elsewhere.
DEFAULT_ITEMS: dict[str, tuple[str, ...]] = {
    "public-affairs": ("parking", "property-management", "sanitation"),
    "public-benefit": (
        "micro-roads",
        "micro-greening",
        "micro-squares",
        "micro-facilities",
        "micro-care",
        "micro-culture",
        "micro-tourism",
    ),
    "policy": ("community-rules",),
    "difficulties": ("elderly-care", "old-housing"),
    "disputes": ("neighbour-disputes",),
    "implementation": ("policy-delivery",),
    "statutory": ("statutory-matters",),
}
_CATEGORY_SLUGS = frozenset(c.slug for c in DEFAULT_CATEGORIES)
_ITEM = re.compile(ITEM_PATTERN)


def _weights(name: str, weights: dict[Any, float]) -> None:
    if not weights or sum(weights.values()) <= 0:
        raise PydanticCustomError(
            "weights_empty",
            "{name}: give at least one weight above 0 (the mix is drawn by these weights)",
            {"name": name},
        )


class CommunitySpec(Record):
    """One community (社区) and the sub-district (街道) it belongs to."""

    id: Id
    sub_district: str = Field(min_length=1, max_length=200)


class People(Record):
    """How many people of each kind one community has, who may be invited or come (1+N+X)."""

    committee: int = Field(default=3, ge=1, le=1_000)  # 社区两委: convene, decide, publish, close
    working_committee: int = Field(default=3, ge=0, le=1_000)
    council: int = Field(default=7, ge=0, le=1_000)  # 理事会
    residents: int = Field(default=200, ge=1, le=100_000)
    representatives: int = Field(default=20, ge=0, le=10_000)
    property_management: int = Field(default=2, ge=0, le=1_000)
    units: int = Field(default=3, ge=0, le=1_000)  # 驻区单位
    social_organisations: int = Field(default=2, ge=0, le=1_000)
    think_tank: int = Field(default=4, ge=0, le=1_000)  # 智库: deputies, experts, technicians
    chairs: int = Field(default=30, ge=1, le=10_000)  # 轮值主席 of the consultation day
    supervisors: int = Field(default=2, ge=1, le=1_000)  # 监事: the legality review
    inspectors: int = Field(default=5, ge=1, le=1_000)  # 督查小组
    sub_district: int = Field(default=1, ge=1, le=1_000)  # 街道: takes escalations


class Turnout(Record):
    """Who comes to a round: some of those invited (the voices, who speak), and a crowd of
    residents who sign in; some of them take part online (参与方式)."""

    invited_min: int = Field(default=5, ge=1, le=1_000)
    invited_max: int = Field(default=9, ge=1, le=1_000)  # with the crowd, within a round's 10,000
    show_up: Probability = 0.9  # an invited person comes to a given round
    crowd: float = Field(default=20.0, ge=0.0, le=5_000.0)  # residents who come besides, on average
    online_share: Probability = 0.15  # of those at an offline meeting, the share who join online

    @model_validator(mode="after")
    def _range(self) -> Turnout:
        if self.invited_max < self.invited_min:
            raise PydanticCustomError("invited_range", "invited_max must be at least invited_min")
        return self


class OpinionModel(Record):
    """Stances that move between rounds. Each voice holds a position in [-1, 1]; above
    ``threshold`` it supports, below ``-threshold`` it opposes, in between it asks to amend. After
    a round without consensus every position moves ``persuasion`` of the way to the round's mean
    (DeGroot), ``amendment`` towards support (the proposal is amended to meet objections), plus
    noise."""

    mean: float = Field(default=0.35, ge=-1.0, le=1.0)
    spread: float = Field(default=0.45, ge=0.0, le=2.0)
    threshold: float = Field(default=0.15, ge=0.0, le=1.0)
    persuasion: Probability = 0.35
    amendment: float = Field(default=0.15, ge=0.0, le=1.0)
    noise: float = Field(default=0.1, ge=0.0, le=1.0)


class Times(Record):
    """How long things take, in days (the procedure's own periods still apply: a notice shorter
    than its notice period is refused, so the scenario may not give one)."""

    notice: Days = 4.0  # from notice to the meeting
    between_rounds: Days = 7.0
    to_decision: Days = 1.0  # from the round that agreed to the decision
    to_review: Days = 3.0
    to_publication: Days = 1.0
    implementation: Days = 45.0  # from publication to the measures done
    to_inspection: Days = 5.0
    to_ruling: Days = 10.0  # an escalated matter waits this long for the sub-district


class Funds(Record):
    """Money: the yearly fund per community (微幸福, 300,000 yuan in the seed) and the measures
    (projects) a decision funds."""

    yearly_fund: Decimal = Field(default=Decimal(300_000), ge=0, le=Decimal(10**11))
    measures_min: int = Field(default=1, ge=1, le=50)
    measures_max: int = Field(default=3, ge=1, le=50)
    measure_budget: Decimal = Field(default=Decimal(8_000), gt=0, le=Decimal(10**9))  # mean, yuan
    budget_spread: Probability = 0.5  # a measure's budget is mean * (1 +/- spread), uniform
    spent_min: Probability = 0.85  # the share of a measure's budget spent, uniform in [min, max]
    spent_max: Probability = 1.0

    @model_validator(mode="after")
    def _ranges(self) -> Funds:
        if self.measures_max < self.measures_min:
            raise PydanticCustomError("measures_range", "measures_max must be at least measures_min")
        if self.spent_max < self.spent_min:
            raise PydanticCustomError("spent_range", "spent_max must be at least spent_min")
        return self


class Scenario(Record):
    """Everything a simulation varies besides the seed. ``communities`` is a count (spread over
    ``sub_districts``) or a list; ``arrivals`` are proposals per community per month by catalogue
    category (一级目录); ``parameters`` change the procedure (round limit, quorum, ...)."""

    name: str = Field(default="scenario", min_length=1, max_length=200)
    communities: int | tuple[CommunitySpec, ...] = Field(default=1)
    sub_districts: int = Field(default=1, ge=1, le=10_000)
    start: date = date(2016, 1, 1)
    months: int = Field(default=12, ge=1, le=600)
    arrivals: dict[str, Rate] = Field(default_factory=lambda: {"public-benefit": 2.0, "public-affairs": 1.0})
    items: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_ITEMS))
    forms: dict[Form, Weight] = Field(
        default_factory=lambda: {
            Form.COUNCIL: 1.0,
            Form.CLOUD: 1.0,
            Form.INVITATION: 1.0,
            Form.CONSULTATION_DAY: 1.0,
            Form.AGREEMENT_SUPERVISION: 1.0,
        }
    )
    carriers: dict[Carrier, Weight] = Field(
        default_factory=lambda: (
            {Carrier.DECISION: 6.0, Carrier.HEARING: 1.0, Carrier.COORDINATION: 2.0} | {Carrier.ADVISORY: 1.0}
        )
    )
    #: how an offline round meets; a cloud consultation (云协商) meets online, a hearing carrier as a hearing
    formats: dict[MeetingFormat, Weight] = Field(
        default_factory=lambda: {
            MeetingFormat.ROUND_TABLE: 3.0,
            MeetingFormat.HEART_TO_HEART: 1.0,
            MeetingFormat.REVIEW: 1.0,
            MeetingFormat.DELIBERATION: 1.0,
        }
    )
    major: Probability = 0.1  # a major matter (重大事项) needs residents in a round
    rejected: Probability = 0.05  # the committee does not take the proposal up
    withdrawn: Probability = 0.02  # the proposer withdraws after notice
    unlawful: Probability = 0.03  # the legality review finds a decision unlawful (依法纠正)
    new_problem: Probability = 0.05  # supervision finds a new problem (再次协商)
    resumed: Probability = 0.6  # the sub-district sends an escalated matter back to consultation
    feedback: int = Field(default=1, ge=0, le=1_000)  # residents' ratings per decision in force
    vote_turnout: Probability = 0.8  # where a body decides (表决): the share of its members who vote
    people: People = People()
    attendance: Turnout = Turnout()
    opinion: OpinionModel = OpinionModel()
    times: Times = Times()
    funds: Funds = Funds()
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if isinstance(self.communities, int):
            if not 1 <= self.communities <= 100_000:
                raise PydanticCustomError("communities", "communities: a count from 1 to 100,000, or a list")
            if self.sub_districts > self.communities:
                raise PydanticCustomError("sub_districts", "more sub-districts than communities")
        else:
            if not self.communities:
                raise PydanticCustomError("communities", "communities: the list is empty")
            ids = [c.id for c in self.communities]
            if len(set(ids)) != len(ids):
                raise PydanticCustomError("communities", "communities: each id once")
        for category in (*self.arrivals, *self.items):
            if category not in _CATEGORY_SLUGS:
                raise PydanticCustomError(
                    "unknown_category",
                    "unknown category {category!r}; use one of {known}",
                    {"category": category, "known": ", ".join(sorted(_CATEGORY_SLUGS))},
                )
        for category, slugs in self.items.items():
            for slug in slugs:
                if not _ITEM.fullmatch(slug):
                    raise PydanticCustomError(
                        "item_slug",
                        "item {item!r} of {category!r}: letters, digits, . _ - (up to 64)",
                        {"item": slug, "category": category},
                    )
            if len(slugs) > 1_000:
                raise PydanticCustomError("items", "at most 1,000 items a category")
        for category, rate in self.arrivals.items():
            if rate > 0 and not self.items.get(category):
                raise PydanticCustomError(
                    "no_items", "category {category!r} has arrivals but no items", {"category": category}
                )
        _weights("arrivals", self.arrivals)
        _weights("forms", self.forms)
        _weights("carriers", self.carriers)
        if MeetingFormat.ONLINE in self.formats or MeetingFormat.HEARING in self.formats:
            raise PydanticCustomError(
                "formats", "formats weighs offline meetings; a cloud consultation meets online, a hearing as a hearing"
            )
        if any(w > 0 for f, w in self.forms.items() if f is not Form.CLOUD):
            _weights("formats", self.formats)
        params = self.procedure_parameters()
        if Body.OWNERS_MEETING in (params.decided_by, params.major_decided_by):
            raise PydanticCustomError(
                "owners_meeting", "an owners' meeting votes by a property register, which the simulation has not yet"
            )
        if self.times.notice * 86400 < params.notice_period.total_seconds():
            raise PydanticCustomError(
                "notice_too_short",
                "times.notice ({notice} days) is shorter than the procedure's notice period ({period} days)",
                {"notice": self.times.notice, "period": params.notice_period.total_seconds() / 86400},
            )
        communities = self.communities if isinstance(self.communities, int) else len(self.communities)
        expected = communities * self.months * sum(self.arrivals.values())
        if expected > MAX_CONSULTATIONS:
            raise PydanticCustomError(
                "too_large",
                "about {expected:,.0f} consultations expected; one run takes at most {most:,}: split it",
                {"expected": expected, "most": MAX_CONSULTATIONS},
            )
        p = self.people
        per_community = sum(getattr(p, name) for name in type(p).model_fields if name != "schema_version")
        if communities * per_community > MAX_PEOPLE:
            raise PydanticCustomError(
                "too_many_people", "more than {most:,} people in all; fewer communities or people", {"most": MAX_PEOPLE}
            )
        voices = p.representatives + p.property_management + p.units + p.social_organisations + p.council
        if self.attendance.invited_max > voices:
            raise PydanticCustomError(
                "invited_max",
                "attendance.invited_max ({most}) is more than the people who may be invited ({voices}: "
                "representatives, property management, units, social organisations, council)",
                {"most": self.attendance.invited_max, "voices": voices},
            )
        return self

    def procedure_parameters(self) -> Parameters:
        """The procedure's parameters with this scenario's changes (validated); the community's
        yearly fund (``fund_pool``) is ``funds.yearly_fund`` unless the parameters set it."""
        base = six_step().parameters.model_dump()
        return Parameters.model_validate({**base, **self._fund_pool(), **self.parameters})

    def _fund_pool(self) -> dict[str, Decimal]:
        """``funds.yearly_fund`` as the procedure's pool (微幸福), where it is not the default's."""
        return (
            {} if self.funds.yearly_fund == six_step().parameters.fund_pool else {"fund_pool": self.funds.yearly_fund}
        )

    def procedure(self) -> Procedure:
        """The six-step procedure with this scenario's parameters."""
        if not self.parameters and not self._fund_pool():
            return six_step()
        return six_step().variant(f"six-step-{self.name}"[:120], "sim", parameters=self.procedure_parameters())

    def community_specs(self) -> tuple[CommunitySpec, ...]:
        """The communities, named ``c001``... and spread evenly over ``s01``... when given as a count."""
        if not isinstance(self.communities, int):
            return self.communities
        n, k = self.communities, self.sub_districts
        return tuple(CommunitySpec(id=f"c{i + 1:03d}", sub_district=f"s{i * k // n + 1:02d}") for i in range(n))

    def replace(self, **changes: Any) -> Scenario:
        """A copy with ``changes`` (dotted names reach into parts: ``"attendance.crowd"``), validated."""
        data = self.model_dump()
        for key, value in changes.items():
            *path, last = key.split(".")
            target = data
            for part in path:
                if part not in target or not isinstance(target[part], dict):
                    raise InvalidInput(f"unknown scenario field {key!r}", code="unknown_field")
                target = target[part]
            if not path and last not in type(self).model_fields:
                raise InvalidInput(f"unknown scenario field {key!r}", code="unknown_field")
            target[last] = value
        return Scenario.model_validate(data)

    @classmethod
    def from_toml(cls, source: str | Path) -> Scenario:
        """A scenario from a TOML file (a ``Path``) or TOML text."""
        try:
            text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
            data = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read the scenario: {exc}", code="bad_scenario") from None
        return cls.model_validate(data)
