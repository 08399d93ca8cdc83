"""Overdue (议而不决, 决而不施): ``Engine.tick`` marks the deadlines that passed - an unanswered
proposal, no decision by the cycle's deadline, a legality review not done, a measure not carried
out - once each, and escalates where the parameters say so. Only the clock fires it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..canonical import timestamp
from ..commands import Command, ConsultationCommand
from ..context import Context
from ..deadlines import Deadline, overdue
from ..notices import role_group
from ..parameters import Parameters
from ..records import Consultation
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Ending, Event, State, Trigger
from .base import Effect, Events, Governing, Guard, Route, StepDefinition, transition
from .consult import abandon_open_round
from .pledge import pledge_of, pledges_missed
from .vote import abandon_open_vote

__all__ = ["STEP", "MarkOverdue"]


class MarkOverdue(ConsultationCommand):
    """Issued by ``Engine.tick``: log the deadlines that passed (议而不决, 决而不施)."""

    trigger: ClassVar[Trigger] = Trigger.MARK_OVERDUE


def _something_overdue(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if not overdue(record, ctx.now):
        return Failure("nothing_overdue")
    return None


def _undecided_escalates(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> bool:
    return params.escalate_undecided and any(d.kind == "decision" for d in overdue(record, ctx.now))


def _unimplemented_escalates(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> bool:
    return params.escalate_unimplemented and any(d.kind == "measure" for d in overdue(record, ctx.now))


def _missed_data(rec: Consultation, d: Deadline) -> dict[str, Any]:
    """A passed deadline as the log says it; a measure's names its pledge (承诺制: who answers for
    what, by the date it was held to) so that residents know whom to hold to it (决而不施)."""
    data: dict[str, Any] = {"deadline": d.key, "due": timestamp(d.due), "kind": d.kind, "measure": d.measure}
    decision = rec.current_decision
    if d.kind == "measure" and d.measure is not None and decision is not None:
        pledge = pledge_of(rec, decision.number, d.measure)
        m = decision.measures[d.measure]
        data["owner"] = m.owner if pledge is None else pledge.owner
        data["pledged"] = pledge is not None  # published as a pledge, or not yet
        data["title"] = m.title if pledge is None else pledge.title
    return data


def _mark_overdue(proc: Governing, rec: Consultation, cmd: Command, ctx: Context, role: str, to: State) -> Effect:
    missed = overdue(rec, ctx.now)
    events: Events = [(Event.DEADLINE_MISSED, _missed_data(rec, d)) for d in missed]
    update: dict[str, Any] = {"missed": (*rec.missed, *(d.key for d in missed))}
    pledges = pledges_missed(rec, missed)  # 承诺制: a pledge past its date, not done, is missed
    if pledges is not None:
        update["pledges"] = pledges
    if to is State.REJECTED:  # the time to appeal a rejection ran out (steps/intake.py): it is final
        update["ended_at"], update["ending"] = ctx.now, Ending.REJECTED
        events.append(
            (Event.REJECTION_FINAL, {"appeal_by": None if rec.respond_by is None else timestamp(rec.respond_by)})
        )
    if to is State.ESCALATED:
        abandoned, closing = abandon_open_round(proc.parameters, rec, ctx, "escalated: overdue")
        update.update(abandoned)
        events.extend(closing)
        vote_update, vote_events = abandon_open_vote(proc.parameters, rec, ctx)
        update.update(vote_update)
        events.extend(vote_events)
        events.append((Event.ESCALATED, {"deadlines": [d.key for d in missed], "reason": "overdue"}))
    return update, events


_CLOCK = [Role.SYSTEM]
_OVERDUE = ["something_overdue"]

STEP = StepDefinition(
    name="overdue 逾期",
    commands=(MarkOverdue,),
    transitions=(
        transition(Trigger.MARK_OVERDUE, State.PROPOSED, None, _CLOCK, _OVERDUE),
        transition(Trigger.MARK_OVERDUE, State.DECIDED, None, _CLOCK, _OVERDUE),
        # 提议 intake: the time to appeal a rejection ran out (it is final); an appeal not reconsidered in time
        transition(Trigger.MARK_OVERDUE, State.APPEALABLE, State.REJECTED, _CLOCK, _OVERDUE),
        transition(Trigger.MARK_OVERDUE, State.APPEALED, None, _CLOCK, _OVERDUE),
        *(
            row
            for s in (State.NOTIFIED, State.CONSULTING)
            for row in (
                transition(Trigger.MARK_OVERDUE, s, State.ESCALATED, _CLOCK, _OVERDUE, ["undecided_escalates"]),
                transition(Trigger.MARK_OVERDUE, s, None, _CLOCK, _OVERDUE),
            )
        ),
        *(
            row
            for s in (State.FEEDBACK, State.SUPERVISING)
            for row in (
                transition(Trigger.MARK_OVERDUE, s, State.ESCALATED, _CLOCK, _OVERDUE, ["unimplemented_escalates"]),
                transition(Trigger.MARK_OVERDUE, s, None, _CLOCK, _OVERDUE),
            )
        ),
    ),
    guards=(Guard("something_overdue", _something_overdue, ("nothing_overdue",), "a deadline has passed"),),
    routes=(
        Route("undecided_escalates", _undecided_escalates, "an undecided matter is overdue (议而不决)"),
        Route("unimplemented_escalates", _unimplemented_escalates, "a measure is overdue (决而不施)"),
    ),
    effects={Trigger.MARK_OVERDUE: _mark_overdue},
    audience={Event.DEADLINE_MISSED: (role_group(Role.COMMITTEE), role_group(Role.SUB_DISTRICT))},
)
