"""The parameters a community sets for its procedure (协商规则的参数): notice period, quorum,
consensus rule, round, cycle and correction limits, deadlines, which matters need a legality review.
Every one can be changed in Python or in a JSON/TOML procedure file.

Where the defaults come from is in the table of ``docs/domain.md`` ("Defaults: from the seed, or the
library's assumption"): a few are the seed's (a major matter heard by residents, a major matter
reviewed, the 300,000 yuan of 微幸福 funds, Nanjing's time zone), the voting rules are the law's,
and most are an assumption of this library that a community should check against its own rules.

Words: a *parameter* is a number or switch of this module; a *guard* is a condition a step checks;
the *consensus rule* is how a round is counted. Nothing else is called a rule.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_serializer, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .limits import MAX_DEADLINE
from .records import Money, PersonId, Record
from .roles import Role
from .vocabulary import VOTING_BODIES, Body, Carrier

__all__ = ["CLERK_ROLES", "DEFAULT_VOTING", "ConsensusRule", "Parameters", "VoteRule"]

#: Roles that may serve a round as its clerk, recording for residents at an offline meeting.
CLERK_ROLES: frozenset[Role] = frozenset(
    {Role.COMMITTEE, Role.WORKING_COMMITTEE, Role.COUNCIL_MEMBER, Role.ROTATING_CHAIR}
)


class ConsensusRule(Record):
    """How a round reaches consensus (基本共识).

    - ``unanimity``: everyone who took a position supports (abstentions aside), at least one does;
    - ``threshold``: support / (support + oppose + amend) >= ``threshold``;
    - ``no_sustained_objection``: nobody opposes and at least one supports.
    """

    kind: Literal["unanimity", "threshold", "no_sustained_objection"] = "threshold"
    threshold: float = Field(default=2 / 3, gt=0.5, le=1.0)

    def reached(self, support: int, oppose: int, amend: int) -> bool:
        if support == 0:
            return False
        if self.kind == "unanimity":
            return oppose == 0 and amend == 0
        if self.kind == "no_sustained_objection":
            return oppose == 0
        return support >= self.threshold * (support + oppose + amend) - 1e-9


class VoteRule(Record):
    """How a body's vote is counted (表决规则). Only the consensus rule is called a *rule* elsewhere;
    this one is always named with its body: ``Parameters.voting[body]``.

    - ``quorum``: who must take part, of the members the register counts: ``more_than_half``,
      ``two_thirds`` (at least), or ``none``; for an owners' meeting, by number and by floor area;
    - ``majority``: ``simple`` (more than half of the ballots counted), ``two_thirds`` (at least two
      thirds), or ``double_majority`` (民法典第二百七十八条: more than half of the counted ballots by
      number and by floor area; only for an owners' meeting);
    - ``abstentions``: ``counted`` (an abstention is a ballot counted, so it weighs like one against)
      or ``excluded`` (only for and against are counted). Absentees are never counted, only against
      the quorum.
    """

    majority: Literal["simple", "two_thirds", "double_majority"] = "simple"
    quorum: Literal["none", "more_than_half", "two_thirds"] = "more_than_half"
    abstentions: Literal["counted", "excluded"] = "counted"


#: How each voting body counts by default: 居民会议 (居民委员会组织法第十三条: more than half
#: attend, more than half of those present agree), 居民代表会议 and 社区协商议事会 (two thirds attend,
#: more than half agree), 业主大会 (民法典第二百七十八条).
DEFAULT_VOTING: dict[Body, VoteRule] = {
    Body.RESIDENTS_MEETING: VoteRule(majority="simple", quorum="more_than_half"),
    Body.REPRESENTATIVES_MEETING: VoteRule(majority="simple", quorum="two_thirds"),
    Body.COUNCIL: VoteRule(majority="simple", quorum="two_thirds"),
    Body.OWNERS_MEETING: VoteRule(majority="double_majority", quorum="two_thirds"),
}


class Parameters(Record):
    """A community's procedure parameters."""

    notice_period: timedelta = Field(default=timedelta(days=3), ge=timedelta(0), le=timedelta(days=90))
    quorum_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    min_attendance: int = Field(default=3, ge=1, le=10_000)
    consensus: ConsensusRule = ConsensusRule()
    round_limit: int = Field(default=3, ge=1, le=20)
    cycle_limit: int = Field(default=3, ge=1, le=20)
    proposal_deadline: timedelta = Field(default=timedelta(days=14), gt=timedelta(0), le=MAX_DEADLINE)
    decision_deadline: timedelta = Field(default=timedelta(days=30), gt=timedelta(0), le=MAX_DEADLINE)
    review_deadline: timedelta = Field(
        default=timedelta(days=14), gt=timedelta(0), le=MAX_DEADLINE
    )  # 合法性审查 within
    escalate_undecided: bool = True  # 议而不决 -> escalated
    escalate_unimplemented: bool = False  # 决而不施 -> flagged and notified, or escalated
    major_needs_residents: bool = True
    independent_review: bool = True  # whoever took the decision does not review it
    # 合法性审查: which matters' decisions wait for a legality review before they take effect - those
    # of these carriers, and (``review_major``) every major matter (重大事项) whatever its carrier;
    # the others take effect when they are taken. An unlawful verdict sends the matter back to be
    # corrected (依法纠正), at most ``correction_limit`` times a cycle (see docs/procedure.md)
    review_carriers: frozenset[Carrier] = frozenset({Carrier.DECISION})
    review_major: bool = True
    correction_limit: int = Field(default=3, ge=1, le=20)
    # 再次协商 raised by residents during implementation or supervision: how many fellow residents
    # co-sign it (联名); the committee, supervisors and the inspection group need none
    reconsultation_co_signers: int = Field(default=4, ge=0, le=1_000)
    # 回避: conflicts of interest
    proposer_recuses: bool = True  # the proposer neither reviews, inspects nor signs off their own matter
    voters_recuse: bool = True  # whoever gave an opinion in the deciding round does not review the decision
    chair_not_proposer: bool = True  # the rotating chair is not the proposer
    # who takes part in a round: the invited (and the convenors), or also every resident of the community
    round_open_to: Literal["invitees", "invitees_and_residents"] = "invitees_and_residents"
    # who may record sign-in and opinions on behalf of residents at an offline meeting (代为记录)
    clerk_roles: frozenset[Role] = frozenset({Role.COMMITTEE, Role.WORKING_COMMITTEE})
    # who decides (决策主体): the committee itself, or a body by a recorded vote. Our assumption (the
    # seed names the bodies, not who decides what): a major matter (重大事项) is decided by the
    # residents' representatives' meeting (居民代表会议), the others by the committee after consultation
    decided_by: Body = Body.COMMITTEE
    major_decided_by: Body = Body.REPRESENTATIVES_MEETING
    voting: dict[Body, VoteRule] = Field(default_factory=lambda: dict(DEFAULT_VOTING))
    # a cap on one matter's budget (a proposal's, a decision's measures'), where a community sets one;
    # the seed's 300,000 yuan is not this but the yearly fund (``fund_pool``)
    budget_cap: Money | None = None
    consultation_day: int | None = Field(default=None, ge=1, le=28)  # e.g. the 11th
    timezone: str = "Asia/Shanghai"
    # ---- public export (issue 8.4) ----
    # free-text keys of an entry's data and input kept out of its hash and out of a public export
    # (what one resident said: an opinion's text, a feedback comment); ``consultflow.privacy``
    private_text: frozenset[str] = frozenset({"comment", "grounds", "text"})
    # meetings (会议): the consultation day's rota of rotating chairs (轮值主席), one a month in this
    # order from ``chair_rota_start`` (YYYY-MM); empty: any rotating chair may be named. And whether a
    # decision waits for the minutes (会议纪要) of the round it rests on
    chair_rota: tuple[PersonId, ...] = Field(default=(), max_length=1_000)
    chair_rota_start: str = Field(default="2026-01", pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    minutes_before_decision: bool = False
    # 承诺制 (pledges): how many times the committee may move one pledge's due date (延期), and how far
    # past the date the decision set it may move it in all; a pledge past its date is missed (决而不施)
    pledge_delay_limit: int = Field(default=2, ge=0, le=10)
    pledge_delay_max: timedelta = Field(default=timedelta(days=180), gt=timedelta(0), le=MAX_DEADLINE)
    # proposal intake (提议). Assumptions of this library (the seed names neither): how many residents
    # of the community co-sign (联名) a proposal before it is submitted (0: any one may put a matter
    # forward), and how long the proposer has to appeal a rejection (申请复核; None: a rejection is final)
    proposal_co_signers: int = Field(default=0, ge=0, le=1_000)
    appeal_period: timedelta | None = Field(default=timedelta(days=15), gt=timedelta(0), le=MAX_DEADLINE)
    # ---- the fund (微幸福便民服务公益金) ----
    # the yearly pool per community (区政府每年向119个社区分别拨付30万便民服务公益金); ``None``: no pool
    fund_pool: Money | None = Decimal(300_000)
    # a year's own pool where it differs (a raise, a cut, none): {2027: 350000}
    fund_pools: dict[int, Money | None] = Field(default_factory=dict)
    # a measure's spending beyond its budget: refused, or allowed with a recorded justification
    overspend: Literal["refuse", "justify"] = "refuse"

    @field_validator("fund_pools")
    @classmethod
    def _pool_years(cls, value: dict[int, Decimal | None]) -> dict[int, Decimal | None]:
        odd = sorted(y for y in value if not 1970 <= y <= 9000)
        if odd:
            raise PydanticCustomError(
                "fund_pool_year", "fund_pools names years from 1970 to 9000, not {odd}", {"odd": odd}
            )
        return dict(sorted(value.items()))

    def pool_for(self, year: int) -> Decimal | None:
        """The community's fund for ``year`` (微幸福便民服务公益金): the year's own, else ``fund_pool``."""
        return self.fund_pools.get(year, self.fund_pool)

    def fund_year(self, when: datetime) -> int:
        """The fund year of ``when``: its calendar year in the procedure's time zone."""
        return when.astimezone(self.zone).year

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like 'Asia/Shanghai'") from exc
        return value

    @field_validator("clerk_roles")
    @classmethod
    def _clerks_serve_rounds(cls, value: frozenset[Role]) -> frozenset[Role]:
        beyond = value - CLERK_ROLES
        if beyond:
            raise PydanticCustomError(
                "clerk_roles",
                "clerk_roles may name only roles that serve a round ({allowed}), not {beyond}",
                {
                    "allowed": ", ".join(sorted(r.value for r in CLERK_ROLES)),
                    "beyond": ", ".join(sorted(r.value for r in beyond)),
                },
            )
        return value

    @field_validator("voting")
    @classmethod
    def _every_body_counts(cls, value: dict[Body, VoteRule]) -> dict[Body, VoteRule]:
        full = {**DEFAULT_VOTING, **{b: r for b, r in value.items() if b in VOTING_BODIES}}
        if Body.COMMITTEE in value:
            raise PydanticCustomError("voting_committee", "the committee decides without a vote; voting names bodies")
        for body, rule in full.items():
            if rule.majority == "double_majority" and body is not Body.OWNERS_MEETING:
                raise PydanticCustomError(
                    "double_majority_owners", "a double majority (by number and floor area) is for an owners' meeting"
                )
        return {b: full[b] for b in Body if b in full}

    def body_for(self, major: bool) -> Body:
        """Who decides a matter: a major one (重大事项), or any other."""
        return self.major_decided_by if major else self.decided_by

    @field_serializer("clerk_roles")
    def _clerk_roles_in_order(self, value: frozenset[Role]) -> list[str]:
        return sorted(r.value for r in value)

    @field_validator("private_text")
    @classmethod
    def _private_keys(cls, value: frozenset[str]) -> frozenset[str]:
        for key in value:
            if not key.isidentifier() or len(key) > 64:
                raise PydanticCustomError(
                    "private_text", "private_text names keys of an entry: {key!r} is none", {"key": key}
                )
        return value

    @field_serializer("private_text")
    def _private_text_in_order(self, value: frozenset[str]) -> list[str]:
        return sorted(value)

    @field_serializer("review_carriers")
    def _review_carriers_in_order(self, value: frozenset[Carrier]) -> list[str]:
        return [c.value for c in Carrier if c in value]

    def needs_review(self, carrier: Carrier, major: bool) -> bool:
        """Whether a decision on such a matter waits for its legality review (合法性审查)."""
        return carrier in self.review_carriers or (major and self.review_major)

    @model_validator(mode="after")
    def _deadline_after_notice(self) -> Parameters:
        if self.decision_deadline <= self.notice_period:
            raise PydanticCustomError(
                "deadline_after_notice",
                "decision_deadline must be longer than notice_period, or no decision is possible",
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def quorum(self, invited: int) -> int:
        """How many must attend a round: the minimum, or the share of those invited if larger."""
        return max(self.min_attendance, math.ceil(self.quorum_ratio * invited - 1e-9))
