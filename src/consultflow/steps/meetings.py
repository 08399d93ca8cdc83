"""会议 meetings: every meeting of a consultation is announced with its own notice (告知), and a
held meeting keeps its minutes (会议纪要).

The notice (``Notify``) announces meeting 1; ``ScheduleMeeting`` announces each later one (after a
round without consensus, a correction by law, a new cycle), with the same checks: the notice
period, and for a consultation day (协商日) its day of the month and its rotating chair - the rota's
chair of that month where the variant keeps a rota. A round opens only at a meeting announced and
not yet held, once its notice has run (``consult.notice_served``). An online meeting (云协商) is
open over a period: opinions arrive until it closes, and its round closes no earlier.
``RecordMinutes`` keeps the minutes of a held meeting with their SHA-256, once (a correction is
logged as one); a variant may make a decision wait for the minutes of the round it rests on.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from ..canonical import timestamp
from ..commands import Command, ConsultationCommand
from ..consultation_day import rota_chair
from ..context import Context
from ..notices import INVITED, PUBLIC
from ..parameters import Parameters
from ..records import Consultation, InputTime, Meeting, Minutes, PersonId, Text, evolve, make
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Channel, Event, Form, MeetingFormat, State, Trigger
from .base import Effect, Governing, Guard, StepDefinition, transition

__all__ = ["STEP", "RecordMinutes", "ScheduleMeeting", "meeting_event_data", "new_meeting", "online_period"]

Venue = Annotated[str, StringConstraints(max_length=200)]
_SCHEDULERS = (Role.COMMITTEE, Role.WORKING_COMMITTEE)
_MINUTE_TAKERS = frozenset({Role.COMMITTEE, Role.WORKING_COMMITTEE})


def online_period(fmt: MeetingFormat | None, at: datetime, closes_at: datetime | None) -> None:
    """A closing time is for an online meeting (云协商) and comes after it opens."""
    if closes_at is None:
        return
    if fmt is not MeetingFormat.ONLINE:
        raise PydanticCustomError("closes_at_online", "closes_at is for an online meeting: give format 'online'")
    if closes_at <= at:
        raise PydanticCustomError("closes_at_order", "an online meeting closes after it opens: closes_at > meeting_at")


class ScheduleMeeting(ConsultationCommand):
    """Announce the next meeting (告知): when it meets (an online one: opens, and ``closes_at``),
    where (a venue, or the online channel), its format and agenda, and - on a consultation day -
    its rotating chair. Like the first notice, it must leave the notice period."""

    trigger: ClassVar[Trigger] = Trigger.SCHEDULE_MEETING
    meeting_at: InputTime
    format: MeetingFormat | None = None
    venue: Venue = ""
    agenda: Text = ""
    closes_at: InputTime | None = None
    chair: PersonId | None = None
    channels: tuple[Channel, ...] = (Channel.NOTICE_BOARD,)

    @model_validator(mode="after")
    def _period(self) -> ScheduleMeeting:
        online_period(self.format, self.meeting_at, self.closes_at)
        return self

    def named_people(self) -> tuple[str, ...]:
        return () if self.chair is None else (self.chair,)


class RecordMinutes(ConsultationCommand):
    """The minutes of a held meeting (会议纪要), once; ``correction`` replaces them with a corrected
    text, logged as a correction. The log keeps the text's SHA-256."""

    trigger: ClassVar[Trigger] = Trigger.RECORD_MINUTES
    meeting: int = Field(ge=1)
    text: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    correction: bool = False


# ---- what notify and schedule share -------------------------------------------------------------------
def new_meeting(
    params: Parameters,
    rec: Consultation,
    cmd: Any,
    ctx: Context,
) -> Meeting:
    """The meeting a notice (``Notify`` or ``ScheduleMeeting``) announces, numbered after the others."""
    now = ctx.now
    return make(
        Meeting,
        {
            "number": len(rec.meetings) + 1,
            "cycle": rec.cycle,
            "format": cmd.format,
            "venue": cmd.venue,
            "agenda": cmd.agenda,
            "at": cmd.meeting_at,
            "closes_at": cmd.closes_at,
            "notified_at": now,
            "notice_ends": now + params.notice_period,
            "scheduled_by": ctx.actor.id,
            "consultation_day": rec.form is Form.CONSULTATION_DAY,
            "chair": cmd.chair,
            "round": None,
            "minutes": (),
        },
    )


def meeting_event_data(meeting: Meeting) -> dict[str, Any]:
    """What a notice logs of the meeting beyond the first notice's own fields: only what was given,
    so a notice without them logs as it always did (keys sorted, see ``base.Events``)."""
    data: dict[str, Any] = {}
    if meeting.agenda:
        data["agenda"] = meeting.agenda
    if meeting.closes_at is not None:
        data["closes_at"] = timestamp(meeting.closes_at)
    if meeting.format is not None:
        data["format"] = meeting.format.value
    return data


# ---- guards ------------------------------------------------------------------------------------------------
def _no_meeting_ahead(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # a meeting announced is superseded only once it has passed unheld (an online one: once it closed)
    m = record.pending_meeting
    if m is not None and (m.at > ctx.now or (m.closes_at is not None and m.closes_at > ctx.now)):
        return Failure("meeting_pending", {"meeting": m.number, "meeting_at": m.at})
    return None


def _chair_on_rota(params: Parameters, record: Consultation, cmd: Any, ctx: Context) -> Failure | None:
    # 轮值主席: where the variant keeps a rota, a consultation day's chair is the rota's for its month
    if record.form is not Form.CONSULTATION_DAY or not params.chair_rota or cmd.chair is None:
        return None
    expected = rota_chair(params, cmd.meeting_at, record.proposer)
    if cmd.chair != expected:
        month = cmd.meeting_at.astimezone(params.zone).strftime("%Y-%m")
        return Failure("chair_not_on_rota", {"chair": cmd.chair, "expected": expected, "month": month})
    return None


def _meeting_of(record: Consultation, number: int) -> Meeting | None:
    return record.meetings[number - 1] if 0 < number <= len(record.meetings) else None


def _meeting_held(params: Parameters, record: Consultation, cmd: RecordMinutes | None, ctx: Context) -> Failure | None:
    if cmd is None:  # asked without a command (``Engine.allowed``): has any meeting been held?
        held = any(r.meeting is not None and r.closed_at is not None for r in record.rounds)
        return None if held else Failure("meeting_not_held", {"meeting": len(record.meetings)})
    m = _meeting_of(record, cmd.meeting)
    if m is None:
        return Failure("no_such_meeting", {"meeting": cmd.meeting, "meetings": len(record.meetings)})
    rnd = record.rounds[m.round - 1] if m.round is not None else None
    if rnd is None or rnd.closed_at is None:
        return Failure("meeting_not_held", {"meeting": m.number})
    return None


def _minutes_once(params: Parameters, record: Consultation, cmd: RecordMinutes, ctx: Context) -> Failure | None:
    m = _meeting_of(record, cmd.meeting)
    if m is None:
        return None
    if m.minutes and not cmd.correction:
        return Failure("minutes_already_recorded", {"meeting": m.number})
    if not m.minutes and cmd.correction:
        return Failure("no_minutes_to_correct", {"meeting": m.number})
    return None


def _minutes_by_chair(params: Parameters, record: Consultation, cmd: RecordMinutes, ctx: Context) -> Failure | None:
    # the committee, or the meeting's own chair (the rotating chair of that consultation day)
    m = _meeting_of(record, cmd.meeting)
    if m is None or not _MINUTE_TAKERS.isdisjoint(ctx.actor.roles) or m.chair == ctx.actor.id:
        return None
    return Failure("not_the_meetings_chair", {"meeting": m.number, "chair": m.chair or "-"})


def _minutes_before_decision(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if not params.minutes_before_decision:
        return None
    r = record.current_round
    if r is None or r.meeting is None:
        return None
    m = _meeting_of(record, r.meeting)
    if m is not None and not m.minutes:
        return Failure("minutes_missing", {"meeting": m.number, "round": r.number})
    return None


# ---- effects -----------------------------------------------------------------------------------------------
def _schedule(proc: Governing, rec: Consultation, cmd: ScheduleMeeting, ctx: Context, role: str, to: State) -> Effect:
    meeting = new_meeting(proc.parameters, rec, cmd, ctx)
    update: dict[str, Any] = {"meetings": (*rec.meetings, meeting)}
    if cmd.chair is not None:  # the consultation's chair is the chair of its latest meeting
        update["chair"] = cmd.chair
    data = {
        "chair": cmd.chair,
        "channels": [c.value for c in cmd.channels],
        "meeting": meeting.number,
        "meeting_at": timestamp(meeting.at),
        "notice_ends": timestamp(meeting.notice_ends),
        "venue": cmd.venue,
        **meeting_event_data(meeting),
    }
    return update, [(Event.MEETING_SCHEDULED, dict(sorted(data.items())))]


def _record_minutes(
    proc: Governing, rec: Consultation, cmd: RecordMinutes, ctx: Context, role: str, to: State
) -> Effect:
    m = rec.meetings[cmd.meeting - 1]
    digest = hashlib.sha256(cmd.text.encode("utf-8")).hexdigest()
    minutes = make(
        Minutes,
        {"text": cmd.text, "sha256": digest, "recorded_by": ctx.actor.id, "at": ctx.now, "correction": cmd.correction},
    )
    meetings = list(rec.meetings)
    meetings[cmd.meeting - 1] = evolve(m, {"minutes": (*m.minutes, minutes)})
    data = {"correction": cmd.correction, "meeting": m.number, "round": m.round, "sha256": digest}
    return {"meetings": tuple(meetings)}, [(Event.MINUTES_RECORDED, data)]


_MINUTES_STATES = (State.CONSULTING, State.DECIDED, State.FEEDBACK, State.SUPERVISING, State.ESCALATED)

STEP = StepDefinition(
    name="meetings 会议",
    commands=(ScheduleMeeting, RecordMinutes),
    transitions=(
        *(
            transition(
                Trigger.SCHEDULE_MEETING,
                s,
                None,
                _SCHEDULERS,
                [
                    "no_meeting_ahead",
                    "rounds_left",
                    "notice_long_enough",
                    "consultation_day_met",
                    "chair_may_chair",
                    "chair_on_rota",
                ],
            )
            for s in (State.NOTIFIED, State.CONSULTING)
        ),
        *(
            transition(
                Trigger.RECORD_MINUTES,
                s,
                None,
                [*_MINUTE_TAKERS, Role.ROTATING_CHAIR],
                ["meeting_held", "minutes_once", "minutes_by_chair"],
            )
            for s in _MINUTES_STATES
        ),
    ),
    guards=(
        Guard(
            "no_meeting_ahead",
            _no_meeting_ahead,
            ("meeting_pending",),
            "no meeting announced and not yet held is still ahead (or, online, still open)",
        ),
        Guard(
            "chair_on_rota",
            _chair_on_rota,
            ("chair_not_on_rota",),
            "a consultation day's chair is the rota's chair of its month, where the variant keeps a rota",
            needs_command=True,
        ),
        Guard(
            "meeting_held",
            _meeting_held,
            ("no_such_meeting", "meeting_not_held"),
            "the meeting was held: its round has closed (asked without a command: a meeting was held)",
        ),
        Guard(
            "minutes_once",
            _minutes_once,
            ("minutes_already_recorded", "no_minutes_to_correct"),
            "minutes once a meeting; a correction only of minutes recorded",
            needs_command=True,
        ),
        Guard(
            "minutes_by_chair",
            _minutes_by_chair,
            ("not_the_meetings_chair",),
            "the committee, or the meeting's own chair, records its minutes",
            needs_command=True,
        ),
        Guard(
            "minutes_before_decision",
            _minutes_before_decision,
            ("minutes_missing",),
            "where the variant asks for it, the round a decision rests on has its minutes",
        ),
    ),
    effects={Trigger.SCHEDULE_MEETING: _schedule, Trigger.RECORD_MINUTES: _record_minutes},
    audience={Event.MEETING_SCHEDULED: (INVITED, PUBLIC), Event.MINUTES_RECORDED: (INVITED, PUBLIC)},
)
