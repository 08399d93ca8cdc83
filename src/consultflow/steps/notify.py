"""告知 notify: announce the matter, the meeting and who is invited (发布协商公告). The meeting must
leave the notice period; a consultation day (协商日) needs its rotating chair - a person who holds
that role here and is not the proposer - and may fall on a fixed day of the month. Notice starts
the clock for a decision (议而不决). More people can be invited later (创造条件进一步协商), each
invitation with a notice period of its own before the next round. The notice announces meeting 1
(a ``Meeting`` record: format, venue or online channel, agenda, for an online meeting its closing
time); each later meeting is announced by ``steps/meetings.ScheduleMeeting`` under the same guards.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from ..canonical import timestamp
from ..commands import ConsultationCommand
from ..context import Context
from ..limits import MAX_INVITED
from ..notices import INVITED, PROPOSER, PUBLIC
from ..parameters import Parameters
from ..records import Consultation, InputTime, PersonId, Schedule, Text, make
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Channel, Event, MeetingFormat, State, Trigger
from .base import Effect, Governing, Guard, StepDefinition, days, transition
from .meetings import meeting_event_data, new_meeting, online_period

__all__ = ["STEP", "Invite", "Notify"]


class Notify(ConsultationCommand):
    """告知: announce the matter, the meeting and who is invited; starts the notice period."""

    trigger: ClassVar[Trigger] = Trigger.NOTIFY
    meeting_at: InputTime
    invite: tuple[PersonId, ...] = Field(default=(), max_length=MAX_INVITED)
    chair: PersonId | None = None
    venue: Annotated[str, StringConstraints(max_length=200)] = ""
    channels: tuple[Channel, ...] = (Channel.NOTICE_BOARD,)
    # meeting 1 (会议): how it meets, its agenda, and for an online meeting (云协商) when it closes
    format: MeetingFormat | None = None
    agenda: Text = ""
    closes_at: InputTime | None = None

    @model_validator(mode="after")
    def _unique(self) -> Notify:
        if len(set(self.invite)) != len(self.invite):
            raise PydanticCustomError("invite_duplicate", "invite lists someone twice; list each participant once")
        online_period(self.format, self.meeting_at, self.closes_at)
        return self

    def named_people(self) -> tuple[str, ...]:
        return () if self.chair is None else (self.chair,)


class Invite(ConsultationCommand):
    """Invite more people after the notice (创造条件进一步协商): the think tank, experts, the legal
    adviser, more stakeholders. The next round waits for the invitation's own notice period."""

    trigger: ClassVar[Trigger] = Trigger.INVITE
    people: tuple[PersonId, ...] = Field(min_length=1, max_length=MAX_INVITED)
    reason: Text = ""

    @model_validator(mode="after")
    def _unique(self) -> Invite:
        if len(set(self.people)) != len(self.people):
            raise PydanticCustomError("invite_duplicate", "people lists someone twice; list each participant once")
        return self


def _notice_long_enough(params: Parameters, record: Consultation, cmd: Notify, ctx: Context) -> Failure | None:
    earliest = ctx.now + params.notice_period
    if cmd.meeting_at < earliest:
        return Failure("notice_too_short", {"days": days(params.notice_period), "earliest": earliest})
    return None


def _consultation_day_met(params: Parameters, record: Consultation, cmd: Notify, ctx: Context) -> Failure | None:
    if record.form.value != "consultation_day":
        return None
    if cmd.chair is None:
        return Failure("chair_required")
    day = params.consultation_day
    if day is not None and cmd.meeting_at.astimezone(params.zone).day != day:
        return Failure("not_consultation_day", {"day": day, "meeting": cmd.meeting_at.astimezone(params.zone)})
    return None


def _chair_may_chair(params: Parameters, record: Consultation, cmd: Notify, ctx: Context) -> Failure | None:
    chair = cmd.chair
    if chair is None:
        return None
    if Role.ROTATING_CHAIR not in ctx.roles_of(chair):
        return Failure("chair_not_a_chair", {"chair": chair})
    if params.chair_not_proposer and chair == record.proposer:
        return Failure("chair_is_proposer", {"chair": chair})
    return None


def _not_yet_invited(params: Parameters, record: Consultation, cmd: Invite, ctx: Context) -> Failure | None:
    already = [p for p in cmd.people if p in record.invited]
    if already:
        return Failure("already_invited", {"people": already})
    if len(record.invited) + len(cmd.people) > MAX_INVITED:
        return Failure("too_many_invited", {"invited": len(record.invited), "limit": MAX_INVITED})
    return None


def _invite(proc: Governing, rec: Consultation, cmd: Invite, ctx: Context, role: str, to: State) -> Effect:
    ends = ctx.now + proc.parameters.notice_period
    update = {"invited": (*rec.invited, *cmd.people), "invitation_notice_ends": ends}
    data = {
        "invited": len(cmd.people),
        "notice_ends": timestamp(ends),
        "people": list(cmd.people),
        "reason": cmd.reason,
    }
    return update, [(Event.INVITED, data)]


def _notify(proc: Governing, rec: Consultation, cmd: Notify, ctx: Context, role: str, to: State) -> Effect:
    params = proc.parameters
    now = ctx.now
    notice_ends = now + params.notice_period
    schedule = make(Schedule, {"notified_at": now, "notice_ends": notice_ends, "meeting_at": cmd.meeting_at})
    meeting = new_meeting(params, rec, cmd, ctx)
    update = {
        "schedule": schedule,
        "meetings": (*rec.meetings, meeting),
        "invited": cmd.invite,
        "chair": cmd.chair,
        "decision_due": now + params.decision_deadline,
    }
    data = {
        "chair": cmd.chair,
        "channels": [c.value for c in cmd.channels],
        "invited": len(cmd.invite),
        "meeting_at": timestamp(cmd.meeting_at),
        "notice_ends": timestamp(notice_ends),
        "venue": cmd.venue,
    }
    extra = meeting_event_data(meeting)
    if extra:  # only when given: notices without them log as they always did
        data = dict(sorted({**data, **extra}.items()))
    return update, [(Event.NOTIFIED, data)]


STEP = StepDefinition(
    name="notify 告知",
    commands=(Notify, Invite),
    transitions=(
        transition(
            Trigger.NOTIFY,
            State.PROPOSED,
            State.NOTIFIED,
            [Role.COMMITTEE, Role.WORKING_COMMITTEE],
            ["notice_long_enough", "consultation_day_met", "chair_may_chair", "chair_on_rota"],
        ),
        *(
            transition(Trigger.INVITE, s, None, [Role.COMMITTEE, Role.WORKING_COMMITTEE], ["not_yet_invited"])
            for s in (State.NOTIFIED, State.CONSULTING)
        ),
    ),
    guards=(
        Guard(
            "notice_long_enough",
            _notice_long_enough,
            ("notice_too_short",),
            "the meeting leaves the notice period",
            needs_command=True,
        ),
        Guard(
            "consultation_day_met",
            _consultation_day_met,
            ("chair_required", "not_consultation_day"),
            "a consultation day names its rotating chair and meets on its day",
            needs_command=True,
        ),
        Guard(
            "chair_may_chair",
            _chair_may_chair,
            ("chair_not_a_chair", "chair_is_proposer"),
            "the chair named holds the rotating chair's role here and is not the proposer (回避)",
            needs_command=True,
        ),
        Guard(
            "not_yet_invited",
            _not_yet_invited,
            ("already_invited", "too_many_invited"),
            "nobody is invited twice, and at most limits.MAX_INVITED people in all",
            needs_command=True,
        ),
    ),
    effects={Trigger.NOTIFY: _notify, Trigger.INVITE: _invite},
    audience={Event.NOTIFIED: (INVITED, PROPOSER, PUBLIC), Event.INVITED: (INVITED,)},
)
