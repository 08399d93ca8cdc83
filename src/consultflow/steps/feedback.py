"""反馈 feedback: a decision in force is made public (公开制), carried out and reported on, and rated
by residents (居民评议 / 满意度评价). These steps stay open under supervision too.

Money spent on a measure is reported with its progress; a measure spends its budget and no more
(``within_budget``) unless the variant allows overspending with a justification, which stays on
the report. Where the decision took its budget from the community's fund (微幸福), the spending is
logged against that allocation (``funds_spent``) for the fund's ledger.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from ..commands import Command, ConsultationCommand
from ..context import Context
from ..funds import allocation_of, spent_on
from ..notices import PROPOSER, PUBLIC, role_group
from ..parameters import Parameters
from ..records import Consultation, Money, Photos, ProgressReport, Publication, ResidentFeedback, Text, make
from ..refusals import Failure
from ..roles import STAKEHOLDERS, Role
from ..vocabulary import IN_FORCE_STATES, Channel, Event, State, Trigger
from .base import Effect, Events, Governing, Guard, StepDefinition, transition
from .pledge import pledges_after_progress, publish_pledges

__all__ = ["STEP", "Publish", "RecordFeedback", "ReportProgress"]

_IN_FORCE = tuple(s for s in State if s in IN_FORCE_STATES)  # feedback, supervising


class Publish(ConsultationCommand):
    """公开制: make the outcome public on one or more channels. The first publication of a decision
    also publishes each of its measures as a pledge (承诺制, ``steps/pledge.py``)."""

    trigger: ClassVar[Trigger] = Trigger.PUBLISH
    channels: tuple[Channel, ...] = Field(min_length=1)
    summary: Text = ""


class ReportProgress(ConsultationCommand):
    """Progress on one measure of the current decision, with money spent. ``measure`` is the
    measure's index from 0 (people read it numbered from 1: measure 0 is "measure 1"). ``photos``
    are the SHA-256 hashes of photos of the work (承诺制: residents see the pledge being kept);
    100 % marks the pledge done."""

    trigger: ClassVar[Trigger] = Trigger.REPORT_PROGRESS
    measure: int = Field(ge=0, le=199)
    percent: int = Field(ge=0, le=100)
    spent: Money = Decimal(0)
    note: Text = ""
    photos: Photos = ()  # 承诺制
    # 微幸福: why the measure spends beyond its budget, where the variant allows it (``overspend``)
    justification: Text = ""


class RecordFeedback(ConsultationCommand):
    """A resident's satisfaction with the outcome (1 to 5)."""

    trigger: ClassVar[Trigger] = Trigger.RECORD_FEEDBACK
    satisfaction: int = Field(ge=1, le=5)
    comment: Text = ""


def _measure_exists(params: Parameters, record: Consultation, cmd: ReportProgress, ctx: Context) -> Failure | None:
    d = record.current_decision
    count = len(d.measures) if d is not None else 0
    if cmd.measure >= count:
        return Failure("unknown_measure", {"measure": cmd.measure, "number": cmd.measure + 1, "count": count})
    return None


def _within_budget(params: Parameters, record: Consultation, cmd: ReportProgress, ctx: Context) -> Failure | None:
    # 微幸福: a measure spends its budget, no more - unless the variant allows it with a reason
    d = record.current_decision
    if d is None or cmd.measure >= len(d.measures) or cmd.spent <= 0:
        return None
    budget = d.measures[cmd.measure].budget
    before = spent_on(record, d.number, cmd.measure)
    total = before + cmd.spent
    if total <= budget:
        return None
    if params.overspend == "justify" and cmd.justification.strip():
        return None
    data = {
        "measure": cmd.measure,
        "number": cmd.measure + 1,
        "budget": budget,
        "spent_before": before,
        "spent": cmd.spent,
        "total": total,
        "left": max(budget - before, Decimal(0)),
    }
    if params.overspend == "justify":
        return Failure("overspend_needs_justification", data)
    return Failure("over_measure_budget", data)


def _first_feedback(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    d = record.current_decision
    who = ctx.actor.id
    if d is not None and any(f.participant == who and f.decision == d.number for f in record.feedback):
        return Failure("feedback_given", {"participant": who})
    return None


def _publish(proc: Governing, rec: Consultation, cmd: Publish, ctx: Context, role: str, to: State) -> Effect:
    decision = rec.decisions[-1].number
    pub = make(
        Publication,
        {"decision": decision, "channels": cmd.channels, "summary": cmd.summary, "by": ctx.actor.id, "at": ctx.now},
    )
    data = {"channels": [c.value for c in cmd.channels], "decision": decision, "summary": cmd.summary}
    update, pledged = publish_pledges(rec, rec.decisions[-1], ctx)  # 承诺制
    update["publications"] = (*rec.publications, pub)
    return update, [(Event.PUBLISHED, data), *pledged]


def _report_progress(
    proc: Governing, rec: Consultation, cmd: ReportProgress, ctx: Context, role: str, to: State
) -> Effect:
    decision = rec.decisions[-1].number
    rep = make(
        ProgressReport,
        {
            "decision": decision,
            "measure": cmd.measure,
            "seq": rec.version + 1,
            "percent": cmd.percent,
            "spent": cmd.spent,
            "note": cmd.note,
            "by": ctx.actor.id,
            "at": ctx.now,
            "photos": cmd.photos,
            "justification": cmd.justification,
        },
    )
    data: dict[str, Any] = {"decision": decision, "measure": cmd.measure, "note": cmd.note, "percent": cmd.percent}
    if cmd.photos:  # 承诺制; only when given, so a report without photos logs as it always did (keys sorted)
        data["photos"] = list(cmd.photos)
    data["spent"] = str(cmd.spent)
    if cmd.justification:  # keys in sorted order: see base.Events
        data = dict(sorted({**data, "justification": cmd.justification}.items()))
    events: Events = [(Event.PROGRESS_REPORTED, data)]
    allocation = allocation_of(rec, decision) if cmd.spent > 0 else None
    if allocation is not None:  # 微幸福: spent against the decision's allocation, in its year's ledger
        budget = rec.decisions[-1].measures[cmd.measure].budget
        before = spent_on(rec, decision, cmd.measure)
        over = min(cmd.spent, max(before + cmd.spent - budget, Decimal(0)))
        spent = {
            "amount": str(cmd.spent),
            "community": rec.community,
            "decision": decision,
            "measure": cmd.measure,
            "over": str(over),
            "year": allocation.year,
        }
        events.append((Event.FUNDS_SPENT, spent))
    update: dict[str, Any] = {"progress": (*rec.progress, rep)}
    pledges = pledges_after_progress(rec, decision, cmd.measure, cmd.percent)  # 承诺制: done at 100 %
    if pledges is not None:
        update["pledges"] = pledges
    return update, events


def _record_feedback(
    proc: Governing, rec: Consultation, cmd: RecordFeedback, ctx: Context, role: str, to: State
) -> Effect:
    decision = rec.decisions[-1].number
    fb = make(
        ResidentFeedback,
        {
            "decision": decision,
            "participant": ctx.actor.id,
            "satisfaction": cmd.satisfaction,
            "comment": cmd.comment,
            "at": ctx.now,
        },
    )
    data = {"comment": cmd.comment, "decision": decision, "satisfaction": cmd.satisfaction}
    return {"feedback": (*rec.feedback, fb)}, [(Event.FEEDBACK_RECEIVED, data)]


STEP = StepDefinition(
    name="feedback 反馈",
    commands=(Publish, ReportProgress, RecordFeedback),
    transitions=(
        *(transition(Trigger.PUBLISH, s, None, [Role.COMMITTEE]) for s in _IN_FORCE),
        *(
            transition(
                Trigger.REPORT_PROGRESS,
                s,
                None,
                [Role.COMMITTEE, Role.WORKING_COMMITTEE],
                ["measure_exists", "within_budget"],
            )
            for s in _IN_FORCE
        ),
        *(transition(Trigger.RECORD_FEEDBACK, s, None, STAKEHOLDERS, ["first_feedback"]) for s in _IN_FORCE),
    ),
    guards=(
        Guard(
            "measure_exists",
            _measure_exists,
            ("unknown_measure",),
            "the measure is one of the decision's",
            needs_command=True,
        ),
        Guard("first_feedback", _first_feedback, ("feedback_given",), "one rating per resident and decision"),
        Guard(
            "within_budget",
            _within_budget,
            ("over_measure_budget", "overspend_needs_justification"),
            "a measure spends within its budget, or beyond it with a justification where the variant allows (微幸福)",
            needs_command=True,
        ),
    ),
    effects={
        Trigger.PUBLISH: _publish,
        Trigger.REPORT_PROGRESS: _report_progress,
        Trigger.RECORD_FEEDBACK: _record_feedback,
    },
    # 微幸福: the proposer and the supervisors (监事) hear what the fund paid
    audience={Event.PUBLISHED: (PUBLIC,), Event.FUNDS_SPENT: (PROPOSER, role_group(Role.SUPERVISOR))},
)
