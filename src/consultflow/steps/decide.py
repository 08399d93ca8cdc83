"""决策 decide: the committee decides on a closed round of this cycle that had its quorum and
reached consensus; a major matter (重大事项) must have heard residents first. What a decision holds
depends on its carrier: measures with owners, due dates and budget; a hearing record; the parties
of an agreement; whether advice is adopted. A decision on a matter the parameters send to review
(``Parameters.needs_review``: by default decision carriers and major matters) waits for its
legality review (review.py); any other takes effect at once (feedback). A decision with a budget
takes it from the community's yearly fund (微幸福便民服务公益金) when it takes effect, and is
refused (``fund_left``, steps/funds.py) when it would exceed what is left of the year's pool.

After an unlawful verdict (依法纠正) the decision is corrected: on a new round while the cycle has
rounds left, else on the same round. A cycle takes at most ``correction_limit`` corrected
decisions; then the decision is refused (``correction_limit``) and the matter goes up to the
sub-district (``Escalate``, or the clock's escalation when the decision deadline passes).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Self

from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from ..canonical import timestamp
from ..commands import Command, ConsultationCommand
from ..context import Context
from ..funds import allocate
from ..notices import INVITED, PROPOSER, role_group
from ..parameters import Parameters
from ..records import Consultation, Decision, Id, Measure, Text, Vote, make
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Body, Carrier, Event, State, Trigger, Verdict
from .base import Effect, Events, Governing, Guard, Route, StepDefinition, transition
from .consult import HEARD_OUT

__all__ = [
    "DECISION_GUARDS",
    "STEP",
    "Decide",
    "correcting_on_round",
    "corrections_in_cycle",
    "found_unlawful",
    "take_decision",
]


class DecisionContent(ConsultationCommand):
    """What a decision holds, whoever takes it (the committee's ``Decide``, a body's ``CallVote``).
    What it must hold depends on the carrier: measures for a decision consultation, a hearing record
    for a hearing, the parties of the agreement for a coordination, and whether the advice is
    adopted for an advisory one."""

    resolution: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
    measures: tuple[Measure, ...] = Field(default=(), max_length=200)
    advice_adopted: bool | None = None
    hearing_record: Text = ""
    agreement_parties: tuple[Id, ...] = Field(default=(), max_length=200)

    @model_validator(mode="after")
    def _unique_parties(self) -> Self:
        if len(set(self.agreement_parties)) != len(self.agreement_parties):
            raise PydanticCustomError("parties_duplicate", "agreement_parties lists a party twice")
        return self

    def funds_drawn(self, record: Consultation) -> Decimal:
        """The measures' budget: what the decision takes from the fund when it takes effect."""
        return sum((m.budget for m in self.measures), Decimal(0))


class Decide(DecisionContent):
    """决策 by the committee: the decision's content (``DecisionContent``), taken on a closed round."""

    trigger: ClassVar[Trigger] = Trigger.DECIDE


def found_unlawful(record: Consultation, decision: int) -> bool:
    """Whether the decision numbered ``decision`` was found unlawful by its legality review."""
    return any(v.decision == decision and v.verdict is Verdict.UNLAWFUL for v in record.reviews)


def corrections_in_cycle(record: Consultation) -> int:
    """How many decisions of this cycle were found unlawful (each one asks for a correction)."""
    cycle = record.cycle
    return sum(
        1 for v in record.reviews if v.verdict is Verdict.UNLAWFUL and record.decisions[v.decision - 1].cycle == cycle
    )


def correcting_on_round(params: Parameters, record: Consultation, round_number: int) -> bool:
    """依法纠正 on the same round: the round's decision was found unlawful and the cycle has no
    rounds left, so the committee (or the body) corrects the decision without a new round - once:
    a body's vote on the correction that is lost leaves the round used, as any lost vote does."""
    d = record.current_decision
    if not (
        d is not None
        and d.cycle == record.cycle
        and d.round == round_number
        and found_unlawful(record, d.number)
        and record.rounds_in_cycle >= params.round_limit
    ):
        return False
    since = 0 if d.vote is None else d.vote  # votes called after the unlawful decision was taken
    return not any(
        v.cycle == record.cycle and v.round == round_number and v.number > since and not v.lapsed for v in record.votes
    )


def _round_held(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    if r is None or r.cycle != record.cycle:
        return Failure("no_round")
    if r.closed_at is None:
        return Failure("round_open", {"round": r.number})
    if correcting_on_round(params, record, r.number):
        return None
    d = record.current_decision
    if d is not None and d.round >= r.number:
        return Failure("needs_new_round", {"round": r.number})
    # a round put to a body's vote is the body's: lost, it needs a new round; open, the vote decides;
    # lapsed (carried after a due date passed), it decided nothing and may be put to a vote again
    if any(v.cycle == record.cycle and v.round >= r.number and not v.lapsed for v in record.votes):
        return Failure("needs_new_round", {"round": r.number})
    return None


def _corrections_left(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    used = corrections_in_cycle(record)
    if used > params.correction_limit:
        return Failure("correction_limit", {"used": used, "limit": params.correction_limit})
    return None


def _review_exempt(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> bool:
    return not params.needs_review(record.carrier, record.major)


def _quorum_met(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    t = r.tally if r is not None else None
    if r is not None and t is not None and not t.quorum_met:
        return Failure("quorum_not_met", {"round": r.number, "attended": t.attended, "required": t.required})
    return None


def _consensus_reached(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # Hearings and advisory consultations hear people out; they need no consensus to conclude.
    if record.carrier in HEARD_OUT:
        return None
    r = record.current_round
    t = r.tally if r is not None else None
    if r is not None and t is not None and not t.consensus:
        return Failure(
            "no_consensus",
            {
                "round": r.number,
                "rule": t.rule,
                "support": t.support,
                "oppose": t.oppose,
                "amend": t.amend,
                "abstain": t.abstain,
            },
        )
    return None


def _residents_heard(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if not (record.major and params.major_needs_residents):
        return None
    cycle = record.cycle
    if any(r.cycle == cycle and r.resident_attended for r in record.rounds):
        return None
    return Failure("major_needs_residents")


def _carrier_outcome(params: Parameters, record: Consultation, cmd: Decide, ctx: Context) -> Failure | None:
    carrier = record.carrier
    if carrier is Carrier.DECISION:
        if not cmd.measures:
            return Failure("measures_required")
        total = Decimal(0)
        for i, m in enumerate(cmd.measures):
            if m.due <= ctx.now:
                return Failure("measure_due_in_past", {"measure": i, "number": i + 1, "due": m.due})
            total += m.budget
        limit = record.budget if record.budget is not None else params.budget_cap
        if limit is not None and total > limit:
            return Failure("over_budget", {"total": total, "budget": limit})
    elif carrier is Carrier.HEARING:
        if not cmd.hearing_record.strip():
            return Failure("hearing_record_required")
    elif carrier is Carrier.COORDINATION:
        if len(cmd.agreement_parties) < 2:
            return Failure("agreement_parties_required")
    elif cmd.advice_adopted is None:
        return Failure("advice_adoption_required")
    return None


def _committee_decides(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # 赋予居民决策权: where the parameters give the matter to a body, it decides by a vote (vote.py)
    body = params.body_for(record.major)
    if body is not Body.COMMITTEE:
        return Failure("decided_by_body", {"body": body.value, "major": record.major})
    return None


# 微幸福: a decision with a budget is refused where the community's fund for the year has not that
# much left - when it would take effect (allocate, in funds.py), and already when it is taken or put
# to a vote, so the committee hears early. The vote and the review use the guard by name.
def _fund_left(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    amount = cmd.funds_drawn(record)
    if amount <= 0:
        return None
    year = params.fund_year(ctx.now)
    pool = params.pool_for(year)
    if pool is None:
        return None
    fund = ctx.fund
    if fund is None or fund.community != record.community or fund.year != year:
        return Failure("fund_unknown", {"community": record.community, "year": year})
    left = fund.left(pool)
    if amount > left:
        return Failure(
            "over_fund",
            {"amount": amount, "left": left, "pool": pool, "allocated": fund.allocated, "year": year},
        )
    return None


_FUND_LEFT = Guard(
    "fund_left",
    _fund_left,
    ("fund_unknown", "over_fund"),
    "the decision's budget is within what is left of the community's fund for the year (微幸福)",
    needs_command=True,
)


def take_decision(
    proc: Governing,
    rec: Consultation,
    content: Decide | Vote,
    ctx: Context,
    *,
    round_number: int,
    body: Body = Body.COMMITTEE,
    vote: int | None = None,
) -> Effect:
    """The decision, taken by the committee (``Decide``) or by a body whose vote carried: the new
    ``Decision``, the review's deadline, and the ``decided`` event (a body's names it and its vote)."""
    number = len(rec.decisions) + 1
    d = make(
        Decision,
        {
            "number": number,
            "cycle": rec.cycle,
            "round": round_number,
            "resolution": content.resolution,
            "decided_by": ctx.actor.id,
            "decided_at": ctx.now,
            "measures": content.measures,
            "advice_adopted": content.advice_adopted,
            "hearing_record": content.hearing_record,
            "agreement_parties": content.agreement_parties,
            "body": body,
            "vote": vote,
        },
    )
    data: dict[str, Any] = {
        "advice_adopted": content.advice_adopted,
        "agreement_parties": list(content.agreement_parties),
        "budget": str(d.budget),
        "decision": number,
        "hearing_record": bool(content.hearing_record),
        "measures": [
            {"budget": str(m.budget), "due": timestamp(m.due), "owner": m.owner, "title": m.title}
            for m in content.measures
        ],
        "resolution": content.resolution,
        "round": d.round,
    }
    if body is not Body.COMMITTEE:  # keys in sorted order: see base.Events
        data = dict(sorted({**data, "body": body.value, "vote": vote}.items()))
    reviewed = proc.parameters.needs_review(rec.carrier, rec.major)
    if not reviewed:  # keys in sorted order: see base.Events; logs of reviewed matters stay as they were
        data = dict(sorted({**data, "review": "not_required"}.items()))
    review_due = ctx.now + proc.parameters.review_deadline if reviewed else None
    update: dict[str, Any] = {"decisions": (*rec.decisions, d), "review_due": review_due}
    events: Events = []
    if not reviewed:  # in force at once: its budget leaves the community's fund (微幸福), logged
        # before the decision, whose entry stays the one that takes the matter into feedback
        funded, events = allocate(proc.parameters, rec, d, ctx)
        update.update(funded)
    events.append((Event.DECIDED, data))
    return update, events


def _decide(proc: Governing, rec: Consultation, cmd: Decide, ctx: Context, role: str, to: State) -> Effect:
    return take_decision(proc, rec, cmd, ctx, round_number=rec.rounds[-1].number)


#: The guards every decision needs, whoever takes it (the committee's ``Decide``, a body's ``CallVote``).
DECISION_GUARDS = (
    "round_held",
    "quorum_met",
    "consensus_reached",
    "residents_heard",
    "carrier_outcome",
    "minutes_before_decision",  # steps/meetings.py: only where the variant asks for the minutes
)


STEP = StepDefinition(
    name="decide 决策",
    commands=(Decide,),
    transitions=(
        # a matter the parameters exempt from review: the decision takes effect at once
        transition(
            Trigger.DECIDE,
            State.CONSULTING,
            State.FEEDBACK,
            [Role.COMMITTEE],
            ["committee_decides", "no_vote_open", *DECISION_GUARDS, "fund_left"],
            ["review_exempt"],
        ),
        # any other waits for its legality review; a corrected decision only within the limit
        transition(
            Trigger.DECIDE,
            State.CONSULTING,
            State.DECIDED,
            [Role.COMMITTEE],
            ["committee_decides", "no_vote_open", "corrections_left", *DECISION_GUARDS, "fund_left"],
        ),
    ),
    guards=(
        Guard(
            "committee_decides",
            _committee_decides,
            ("decided_by_body",),
            "the committee decides this matter itself: the parameters give it to no body (vote.py)",
        ),
        Guard(
            "round_held",
            _round_held,
            ("no_round", "round_open", "needs_new_round"),
            "a closed round of this cycle not yet used for a decision",
        ),
        Guard("quorum_met", _quorum_met, ("quorum_not_met",), "the round had its quorum"),
        Guard("consensus_reached", _consensus_reached, ("no_consensus",), "the round reached consensus"),
        Guard("residents_heard", _residents_heard, ("major_needs_residents",), "a major matter heard residents"),
        Guard(
            "carrier_outcome",
            _carrier_outcome,
            (
                "measures_required",
                "measure_due_in_past",
                "over_budget",
                "hearing_record_required",
                "agreement_parties_required",
                "advice_adoption_required",
            ),
            "the decision holds what its carrier needs",
            needs_command=True,
        ),
        Guard(
            "corrections_left",
            _corrections_left,
            ("correction_limit",),
            "the cycle's decisions were found unlawful at most correction_limit times (依法纠正)",
            bounds_loop=True,
        ),
        _FUND_LEFT,  # 微幸福: the vote and the review use it by name
    ),
    routes=(
        Route(
            "review_exempt",
            _review_exempt,
            "the parameters exempt the matter from the legality review (review_carriers, review_major)",
            exempts_review=True,
        ),
    ),
    effects={Trigger.DECIDE: _decide},
    # whoever may review it hears of a decision: supervisors and the legal adviser (the sub-district
    # hears of what is escalated to it)
    audience={
        Event.DECIDED: (INVITED, PROPOSER, role_group(Role.SUPERVISOR), role_group(Role.LEGAL_ADVISER)),
        # 微幸福: the committee keeps the fund, supervisors (监事) watch it
        Event.FUNDS_ALLOCATED: (PROPOSER, role_group(Role.COMMITTEE), role_group(Role.SUPERVISOR)),
    },
)
