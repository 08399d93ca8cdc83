"""Escalation (提请街道督办): the committee or the sub-district hands a stalled matter up; the
sub-district sends it back for a new cycle of consultation (within the cycle limit) or closes it by
its ruling (supervise.py). Escalations also follow from a last failing round (consult.py) and
overdue deadlines (overdue.py); the committee escalates a matter whose corrections reached the
limit (decide.py's ``correction_limit``). An unlawful verdict itself never escalates: it is corrected.
"""

from __future__ import annotations

from typing import ClassVar

from ..commands import ConsultationCommand, Reason
from ..context import Context
from ..funds import release
from ..notices import INVITED, role_group
from ..records import Consultation
from ..roles import Role
from ..vocabulary import Event, State, Trigger
from .base import Effect, Governing, StepDefinition, transition
from .consult import abandon_open_round, new_cycle
from .vote import abandon_open_vote

__all__ = ["STEP", "Escalate", "Resume"]


class Escalate(ConsultationCommand):
    """Hand the matter up to the sub-district (提请街道督办)."""

    trigger: ClassVar[Trigger] = Trigger.ESCALATE
    reason: Reason


class Resume(ConsultationCommand):
    """The sub-district sends an escalated matter back for a new cycle of consultation."""

    trigger: ClassVar[Trigger] = Trigger.RESUME
    instructions: Reason


def _escalate(proc: Governing, rec: Consultation, cmd: Escalate, ctx: Context, role: str, to: State) -> Effect:
    update, events = abandon_open_round(proc.parameters, rec, ctx, "escalated")
    vote_update, vote_events = abandon_open_vote(proc.parameters, rec, ctx)
    update.update(vote_update)
    events.extend(vote_events)
    events.append((Event.ESCALATED, {"reason": cmd.reason}))
    return update, events


def _resume(proc: Governing, rec: Consultation, cmd: Resume, ctx: Context, role: str, to: State) -> Effect:
    data = {"cycle": rec.cycle + 1, "instructions": cmd.instructions}
    update = new_cycle(proc.parameters, rec, ctx)
    funded, events = release(rec, ctx)  # 微幸福: what was not spent goes back to the pool
    update.update(funded)
    return update, [*events, (Event.RESUMED, data)]


STEP = StepDefinition(
    name="escalate 提请街道督办",
    commands=(Escalate, Resume),
    transitions=(
        *(
            transition(Trigger.ESCALATE, s, State.ESCALATED, [Role.COMMITTEE, Role.SUB_DISTRICT])
            for s in (State.NOTIFIED, State.CONSULTING, State.SUPERVISING)
        ),
        transition(Trigger.RESUME, State.ESCALATED, State.CONSULTING, [Role.SUB_DISTRICT], ["cycles_left"]),
    ),
    effects={Trigger.ESCALATE: _escalate, Trigger.RESUME: _resume},
    audience={
        Event.ESCALATED: (role_group(Role.SUB_DISTRICT), role_group(Role.COMMITTEE)),
        Event.RESUMED: (INVITED, role_group(Role.COMMITTEE)),
    },
)
