"""合法性审查 review: the legality gate between a decision and its effect.

Which matters need it is the parameters' (``Parameters.needs_review``: by default decision
carriers and major matters). A supervisor, the legal adviser or the sub-district reviews the
current decision. Lawful: it takes effect (feedback). Unlawful: the legal basis and the correction
are recorded (依法纠正), with a note on legal education (法治宣传教育), and the matter always goes
back to consultation to be corrected - on a new round, or on the same round when the cycle has no
rounds left (decide.py); never up to the sub-district because a counter ran out. The correction
loop is bounded by ``correction_limit`` on the next decision (decide.py's ``corrections_left``).
Whoever took the decision may not review it (回避). Found lawful, a decision with a budget takes
it from the community's yearly fund (微幸福), or is refused (``fund_left``) when the year's pool has
not that much left.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from ..commands import Command, ConsultationCommand
from ..context import Context
from ..funds import allocate
from ..notices import PROPOSER, role_group
from ..parameters import Parameters
from ..records import Consultation, LegalityReview, Text, make
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Event, State, Trigger, Verdict
from .base import Effect, Events, Governing, Guard, Route, StepDefinition, transition

__all__ = ["REVIEWERS", "STEP", "ReviewLegality"]

#: Who reviews legality: a supervisor (监事), the sub-district (街道) or the legal adviser (法律顾问 / 司法所).
REVIEWERS = frozenset({Role.SUPERVISOR, Role.SUB_DISTRICT, Role.LEGAL_ADVISER})


class ReviewLegality(ConsultationCommand):
    """合法性审查 of the current decision. An unlawful verdict needs the legal basis and the
    correction (依法纠正); a note on legal education (法治宣传教育) is kept with it."""

    trigger: ClassVar[Trigger] = Trigger.REVIEW
    verdict: Verdict
    legal_basis: Text = ""
    correction: Text = ""
    education_note: Text = ""

    def funds_drawn(self, record: Consultation) -> Decimal:
        """Found lawful, the decision takes effect and takes its budget from the fund (微幸福)."""
        d = record.current_decision
        return d.budget if d is not None and self.verdict is Verdict.LAWFUL else Decimal(0)

    @model_validator(mode="after")
    def _unlawful_needs_basis(self) -> ReviewLegality:
        if self.verdict is Verdict.UNLAWFUL and not (self.legal_basis.strip() and self.correction.strip()):
            raise PydanticCustomError(
                "unlawful_needs_basis", "an unlawful verdict needs legal_basis and correction (依法纠正)"
            )
        return self


def _lawful(params: Parameters, record: Consultation, cmd: ReviewLegality, ctx: Context) -> bool:
    return cmd.verdict is Verdict.LAWFUL


def _unlawful(params: Parameters, record: Consultation, cmd: ReviewLegality, ctx: Context) -> bool:
    return cmd.verdict is Verdict.UNLAWFUL


def _independent_reviewer(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # 回避: whoever took the decision, proposed the matter or spoke in the deciding round does not review it
    d = record.current_decision
    who = ctx.actor.id
    if params.independent_review and d is not None and d.decided_by == who:
        return Failure("reviewer_not_independent", {"reviewer": who})
    if params.proposer_recuses and record.proposer == who:
        return Failure("proposer_recuses", {"person": who})
    if params.voters_recuse and d is not None:
        deciding = next((r for r in record.rounds if r.number == d.round), None)
        if deciding is not None and any(op.participant == who for op in deciding.opinions):
            return Failure("reviewer_voted", {"reviewer": who, "round": d.round})
        ballot = next((v for v in record.votes if v.number == d.vote), None) if d.vote is not None else None
        if ballot is not None and any(b.voter == who for b in ballot.ballots):
            return Failure("reviewer_cast_ballot", {"reviewer": who, "vote": d.vote, "body": ballot.body.value})
    return None


def _proposer_recuses(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if params.proposer_recuses and record.proposer == ctx.actor.id:
        return Failure("proposer_recuses", {"person": ctx.actor.id})
    return None


def _review(proc: Governing, rec: Consultation, cmd: ReviewLegality, ctx: Context, role: str, to: State) -> Effect:
    decision = rec.decisions[-1].number
    review = make(
        LegalityReview,
        {
            "decision": decision,
            "reviewer": ctx.actor.id,
            "verdict": cmd.verdict,
            "legal_basis": cmd.legal_basis,
            "correction": cmd.correction,
            "education_note": cmd.education_note,
            "at": ctx.now,
        },
    )
    data = {
        "correction": cmd.correction,
        "decision": decision,
        "education_note": cmd.education_note,
        "legal_basis": cmd.legal_basis,
        "verdict": cmd.verdict.value,
    }
    update: dict[str, Any] = {"reviews": (*rec.reviews, review), "review_due": None}
    events: Events = []
    if cmd.verdict is Verdict.UNLAWFUL:
        # 依法纠正: the corrected decision gets a deadline of its own, counted from the verdict
        update["decision_due"] = ctx.now + proc.parameters.decision_deadline
    else:  # in force: its budget leaves the community's fund (微幸福), logged before the verdict,
        # whose entry stays the one that takes the matter into feedback
        funded, events = allocate(proc.parameters, rec, rec.decisions[-1], ctx)
        update.update(funded)
    events.append((Event.LEGALITY_REVIEWED, data))
    return update, events


STEP = StepDefinition(
    name="review 合法性审查",
    commands=(ReviewLegality,),
    transitions=(
        transition(
            Trigger.REVIEW, State.DECIDED, State.FEEDBACK, REVIEWERS, ["independent_reviewer", "fund_left"], ["lawful"]
        ),
        transition(Trigger.REVIEW, State.DECIDED, State.CONSULTING, REVIEWERS, ["independent_reviewer"], ["unlawful"]),
    ),
    guards=(
        Guard(
            "independent_reviewer",
            _independent_reviewer,
            ("reviewer_not_independent", "proposer_recuses", "reviewer_voted", "reviewer_cast_ballot"),
            "the reviewer neither took the decision, proposed the matter, spoke in the deciding round nor voted "
            "in the deciding vote (回避)",
        ),
        Guard(
            "proposer_recuses",
            _proposer_recuses,
            ("proposer_recuses",),
            "the proposer does not inspect or sign off their own matter (回避)",
        ),
    ),
    routes=(
        Route("lawful", _lawful, "the verdict is lawful", needs_command=True),
        Route("unlawful", _unlawful, "the verdict is unlawful", needs_command=True),
    ),
    effects={Trigger.REVIEW: _review},
    audience={Event.LEGALITY_REVIEWED: (PROPOSER, role_group(Role.COMMITTEE))},
)
