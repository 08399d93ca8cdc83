"""协商 consult: rounds of consultation, opinions, the tally (quorum and consensus), the round limit.

A round opens at a meeting announced with its notice and not yet held (``steps/meetings.py``: the
notice announces meeting 1, ``ScheduleMeeting`` each later one; an online meeting (云协商) takes
opinions until it closes), takes one opinion per person, and is tallied when it closes. At the round
limit without consensus the matter is escalated (议而不决 handed up). Hearings and advisory
consultations hear people out and need no consensus. A new cycle (再次协商, or a resumed
escalation) starts counting rounds afresh.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..commands import Command, ConsultationCommand
from ..context import Context
from ..limits import MAX_OPINIONS_PER_ROUND
from ..notices import INVITED
from ..parameters import Parameters
from ..records import Consultation, Meeting, Opinion, PersonId, Round, Tally, Text, evolve, make
from ..refusals import Failure
from ..roles import STAKEHOLDERS, THINK_TANK, Role
from ..vocabulary import Attendance, Carrier, Event, Form, MeetingFormat, Stance, State, Trigger
from .base import Effect, Governing, Guard, Route, StepDefinition, transition

__all__ = [
    "CONVENORS",
    "HEARD_OUT",
    "PARTICIPANTS",
    "STEP",
    "CloseRound",
    "OpenRound",
    "RecordOpinion",
    "SignIn",
    "abandon_open_round",
    "new_cycle",
    "taking_part",
    "tally",
]

#: Who opens and closes rounds: the committee, or the consultation day's rotating chair.
CONVENORS = frozenset({Role.COMMITTEE, Role.ROTATING_CHAIR})
#: Who may give an opinion in a round: the "1+N+X" and the think tank of the community, and the
#: people invited to this matter. Whether they take part in this round is the ``takes_part`` guard.
PARTICIPANTS = (
    frozenset({Role.COMMITTEE, Role.WORKING_COMMITTEE, Role.COUNCIL_MEMBER, Role.ROTATING_CHAIR, Role.INVITEE})
    | STAKEHOLDERS
    | THINK_TANK
)
#: Who always takes part in a round they convene or serve: the committees and the chair.
_CONVENING = frozenset({Role.COMMITTEE, Role.WORKING_COMMITTEE, Role.ROTATING_CHAIR})
#: Carriers that conclude without consensus: a hearing keeps its record, advice is adopted or not.
HEARD_OUT = frozenset({Carrier.HEARING, Carrier.ADVISORY})
_RESIDENT_ROLES = frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE})
_SPEAKING_ORDER = tuple(r for r in Role if r in PARTICIPANTS and r is not Role.INVITEE)


# ---- commands ----------------------------------------------------------------------------------------
class OpenRound(ConsultationCommand):
    """Open a round of consultation (round table, heart-to-heart, online). ``attendees`` signs in
    people present from the start; each must take part in this consultation (``takes_part``).
    ``format`` says how the round meets (圆桌会, hearing, online, ...); ``online`` names the
    attendees who take part online (the others are there in person)."""

    trigger: ClassVar[Trigger] = Trigger.OPEN_ROUND
    agenda: Text = ""
    attendees: tuple[PersonId, ...] = Field(default=(), max_length=10_000)
    format: MeetingFormat | None = None
    online: tuple[PersonId, ...] = Field(default=(), max_length=10_000)

    @model_validator(mode="after")
    def _online_attend(self) -> OpenRound:
        if self.online and not set(self.online) <= set(self.attendees):
            raise PydanticCustomError("online_not_attending", "online names only people listed in attendees")
        return self

    def named_people(self) -> tuple[str, ...]:
        return self.attendees


class SignIn(ConsultationCommand):
    """Sign in to the open round (签到): the acting person, or - recorded by a clerk at an offline
    meeting - the resident named by ``on_behalf_of``. Quorum counts those signed in."""

    trigger: ClassVar[Trigger] = Trigger.SIGN_IN
    on_behalf_of: PersonId | None = None
    attendance: Attendance = Attendance.IN_PERSON  # 线下 or 线上

    def named_people(self) -> tuple[str, ...]:
        return () if self.on_behalf_of is None else (self.on_behalf_of,)


class RecordOpinion(ConsultationCommand):
    """An opinion in the open round: the acting participant's own, or - recorded by a clerk at an
    offline meeting (代为记录) - that of the resident named by ``on_behalf_of``. The log names both."""

    trigger: ClassVar[Trigger] = Trigger.RECORD_OPINION
    stance: Stance
    text: Text = ""
    on_behalf_of: PersonId | None = None

    def named_people(self) -> tuple[str, ...]:
        return () if self.on_behalf_of is None else (self.on_behalf_of,)


class CloseRound(ConsultationCommand):
    """Close the open round; the procedure tallies it (quorum, consensus rule)."""

    trigger: ClassVar[Trigger] = Trigger.CLOSE_ROUND
    summary: Text = ""


# ---- the tally ---------------------------------------------------------------------------------------
def tally(params: Parameters, record: Consultation, rnd: Round) -> Tally:
    """Count a round: attendance against quorum, stances against the consensus rule."""
    support = oppose = abstain = amend = 0
    for op in rnd.opinions:
        s = op.stance.value
        if s == "support":
            support += 1
        elif s == "oppose":
            oppose += 1
        elif s == "amend":
            amend += 1
        else:
            abstain += 1
    attended = len(rnd.attendees)
    required = params.quorum(len(record.invited))
    quorum_met = attended >= required
    consensus = quorum_met and params.consensus.reached(support, oppose, amend)
    return make(
        Tally,
        {
            "attended": attended,
            "required": required,
            "support": support,
            "oppose": oppose,
            "abstain": abstain,
            "amend": amend,
            "rule": params.consensus.kind,
            "quorum_met": quorum_met,
            "consensus": consensus,
        },
    )


# ---- guards and routes -------------------------------------------------------------------------------
def _notice_served(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # Every round is a meeting announced with its notice (告知): the latest meeting announced and not
    # yet held, once its time has come (the notice period always ends by then) - unless a later
    # invitation's own notice period ends later still. An online meeting takes its round only until
    # it closes; a consultation day's round opens on the consultation day.
    m = record.pending_meeting
    s = record.schedule
    if m is not None:
        meeting = m.at
    elif s is not None and not record.rounds and not record.meetings:
        meeting = s.meeting_at  # a record kept before meetings were: the notice's meeting is the first round's
    else:
        return Failure("no_meeting_scheduled", {"rounds": len(record.rounds)})
    invited = record.invitation_notice_ends
    if invited is not None and ctx.now < invited and invited > meeting:
        return Failure("invitation_notice", {"opens_at": invited})
    if ctx.now < meeting:
        return Failure("before_meeting", {"meeting_at": meeting})
    if m is not None and m.closes_at is not None and ctx.now >= m.closes_at:
        return Failure("meeting_closed", {"meeting": m.number, "closed_at": m.closes_at})
    day = params.consultation_day
    if day is not None and record.form is Form.CONSULTATION_DAY:
        local = ctx.now.astimezone(params.zone)
        if local.day != day:
            return Failure("not_consultation_day", {"day": day, "meeting": local})
    return None


def _round_meeting(record: Consultation) -> Meeting | None:
    r = record.current_round
    if r is None or r.meeting is None or r.meeting > len(record.meetings):
        return None
    return record.meetings[r.meeting - 1]


def _meeting_still_open(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # 云协商: opinions and sign-ins arrive while the online meeting is open, not after it closes
    m = _round_meeting(record)
    if m is not None and m.closes_at is not None and ctx.now >= m.closes_at:
        return Failure("meeting_closed", {"meeting": m.number, "closed_at": m.closes_at})
    return None


def _meeting_over(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # 云协商: an online round closes no earlier than its meeting said it would
    m = _round_meeting(record)
    if m is not None and m.closes_at is not None and ctx.now < m.closes_at:
        return Failure("online_meeting_open", {"meeting": m.number, "closes_at": m.closes_at})
    return None


def _participant(cmd: Command, ctx: Context) -> str:
    behalf: str | None = getattr(cmd, "on_behalf_of", None)
    return behalf if behalf is not None else ctx.actor.id


def taking_part(params: Parameters, record: Consultation, person: str, roles: frozenset[Role]) -> bool:
    """Whether ``person`` takes part in this consultation's rounds: invited, a convenor, or - if the
    parameters open rounds to residents - a resident of the community. Never an outsider."""
    if person in record.invited or not _CONVENING.isdisjoint(roles):
        return True
    return params.round_open_to == "invitees_and_residents" and not _RESIDENT_ROLES.isdisjoint(roles)


def _takes_part(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    person = _participant(cmd, ctx)
    if taking_part(params, record, person, ctx.roles_of(person)):
        return None
    return Failure("not_taking_part", {"person": person, "open_to": params.round_open_to})


def _attendees_take_part(params: Parameters, record: Consultation, cmd: OpenRound, ctx: Context) -> Failure | None:
    for person in cmd.attendees:
        if not taking_part(params, record, person, ctx.roles_of(person)):
            return Failure("not_taking_part", {"person": person, "open_to": params.round_open_to})
    return None


def _clerk_on_behalf(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    behalf: str | None = getattr(cmd, "on_behalf_of", None)
    if behalf is None:
        return None
    if behalf == ctx.actor.id:
        return Failure("on_behalf_of_self", {"actor": behalf})
    if params.clerk_roles.isdisjoint(ctx.actor.roles):
        return Failure("not_a_clerk", {"actor": ctx.actor.id, "allowed": sorted(r.value for r in params.clerk_roles)})
    return None


def _may_record_for_others(params: Parameters, cmd: Command | None, ctx: Context) -> bool:
    """Asked without a command (``Engine.allowed``), a clerk may still sign in or record for the
    residents, whatever they did themselves: the once-a-round guards are then left to ``execute``."""
    return cmd is None and not params.clerk_roles.isdisjoint(ctx.actor.roles)


def _first_sign_in(params: Parameters, record: Consultation, cmd: SignIn, ctx: Context) -> Failure | None:
    if _may_record_for_others(params, cmd, ctx):
        return None
    r = record.current_round
    person = _participant(cmd, ctx)
    if r is not None and person in r.attendees:
        return Failure("already_signed_in", {"person": person, "round": r.number})
    return None


def _previous_round_closed(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    if r is not None and r.closed_at is None:
        return Failure("round_still_open", {"round": r.number})
    return None


def _rounds_left(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    used = record.rounds_in_cycle
    if used >= params.round_limit:
        return Failure("round_limit", {"used": used, "limit": params.round_limit})
    return None


def _round_is_open(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    if r is None or r.closed_at is not None or r.cycle != record.cycle:
        return Failure("no_open_round")
    return None


def _first_opinion_in_round(
    params: Parameters, record: Consultation, cmd: RecordOpinion, ctx: Context
) -> Failure | None:
    r = record.current_round
    if r is not None and len(r.opinions) >= MAX_OPINIONS_PER_ROUND:
        return Failure("round_full", {"round": r.number, "limit": MAX_OPINIONS_PER_ROUND})
    if r is None or _may_record_for_others(params, cmd, ctx):
        return None
    who = _participant(cmd, ctx)
    for op in r.opinions:
        if op.participant == who:
            return Failure("already_recorded", {"participant": who, "round": r.number})
    return None


def _no_consensus_at_limit(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> bool:
    # Hearings and advisory consultations need no consensus to conclude: their last round just closes.
    if record.carrier in HEARD_OUT:
        return False
    r = record.current_round
    if r is None or r.closed_at is not None:
        return False
    return record.rounds_in_cycle >= params.round_limit and not tally(params, record, r).consensus


# ---- effects -------------------------------------------------------------------------------------------
def _replace_last_round(rec: Consultation, rnd: Round) -> tuple[Round, ...]:
    return (*rec.rounds[:-1], rnd)


def _open_round(proc: Governing, rec: Consultation, cmd: OpenRound, ctx: Context, role: str, to: State) -> Effect:
    number = len(rec.rounds) + 1
    attendees = tuple(dict.fromkeys(cmd.attendees))
    meeting = rec.pending_meeting  # the round is held at the meeting announced for it
    fmt = cmd.format if cmd.format is not None or meeting is None else meeting.format
    rnd = make(
        Round,
        {
            "number": number,
            "cycle": rec.cycle,
            "opened_at": ctx.now,
            "opened_by": ctx.actor.id,
            "agenda": cmd.agenda,
            "attendees": attendees,
            "resident_attended": any(not _RESIDENT_ROLES.isdisjoint(ctx.roles_of(p)) for p in attendees),
            "opinions": (),
            "closed_at": None,
            "summary": "",
            "tally": None,
            "format": fmt,
            "online": tuple(dict.fromkeys(cmd.online)),
            "abandoned": False,
            "meeting": None if meeting is None else meeting.number,
        },
    )
    data: dict[str, Any] = {"attendees": len(rnd.attendees), "cycle": rec.cycle, "round": number}
    if fmt is not None or cmd.online:  # only when given: logs without them stay as they were
        data = {**data, "format": None if fmt is None else fmt.value, "online": len(rnd.online)}
        data = dict(sorted(data.items()))
    update: dict[str, Any] = {"rounds": (*rec.rounds, rnd)}
    if meeting is not None:
        held = evolve(meeting, {"round": number})
        update["meetings"] = (*rec.meetings[: meeting.number - 1], held, *rec.meetings[meeting.number :])
    return update, [(Event.ROUND_OPENED, data)]


def _role_in_round(rec: Consultation, person: str, roles: frozenset[Role]) -> Role:
    """The role a participant speaks in: their first participating role, else as invited."""
    for r in _SPEAKING_ORDER:
        if r in roles:
            return r
    return Role.INVITEE if person in rec.invited else Role.RESIDENT


def _record_opinion(
    proc: Governing, rec: Consultation, cmd: RecordOpinion, ctx: Context, role: str, to: State
) -> Effect:
    rnd = rec.rounds[-1]
    behalf = cmd.on_behalf_of
    if behalf is None:
        who, speaks_as, clerk, roles = ctx.actor.id, role, None, ctx.actor.roles
    else:
        roles = ctx.roles_of(behalf)
        who, speaks_as, clerk = behalf, _role_in_round(rec, behalf, roles), ctx.actor.id
    op = make(
        Opinion,
        {
            "participant": who,
            "role": speaks_as,
            "stance": cmd.stance,
            "text": cmd.text,
            "at": ctx.now,
            "recorded_by": clerk,
        },
    )
    attendees = rnd.attendees if who in rnd.attendees else (*rnd.attendees, who)
    resident = rnd.resident_attended or not _RESIDENT_ROLES.isdisjoint(roles)
    new = evolve(rnd, {"opinions": (*rnd.opinions, op), "attendees": attendees, "resident_attended": resident})
    data: dict[str, Any] = {"round": rnd.number, "stance": cmd.stance.value, "text": cmd.text}
    if behalf is not None:  # keys in sorted order: see base.Events
        data = {"on_behalf_of": behalf, **data}
    return {"rounds": _replace_last_round(rec, new)}, [(Event.OPINION_RECORDED, data)]


def _sign_in(proc: Governing, rec: Consultation, cmd: SignIn, ctx: Context, role: str, to: State) -> Effect:
    rnd = rec.rounds[-1]
    who = _participant(cmd, ctx)
    resident = rnd.resident_attended or not _RESIDENT_ROLES.isdisjoint(ctx.roles_of(who))
    update: dict[str, Any] = {"attendees": (*rnd.attendees, who), "resident_attended": resident}
    online = cmd.attendance is Attendance.ONLINE
    if online:
        update["online"] = (*rnd.online, who)
    new = evolve(rnd, update)
    data: dict[str, Any] = {"attended": len(new.attendees), "round": rnd.number}
    if cmd.on_behalf_of is not None:
        data = {"attended": len(new.attendees), "on_behalf_of": cmd.on_behalf_of, "round": rnd.number}
    if online:  # only when online: logs of in-person sign-ins stay as they were
        data = dict(sorted({**data, "attendance": Attendance.ONLINE.value}.items()))
    return {"rounds": _replace_last_round(rec, new)}, [(Event.SIGNED_IN, data)]


def close_open_round(params: Parameters, rec: Consultation, ctx: Context, summary: str, abandoned: bool) -> Effect:
    """Close the open round: tally it, stamp it, log ``round_closed`` with the figures."""
    rnd = rec.rounds[-1]
    t = tally(params, rec, rnd)
    closed = evolve(rnd, {"closed_at": ctx.now, "summary": summary, "tally": t, "abandoned": abandoned})
    data = {
        "abandoned": abandoned,
        "abstain": t.abstain,
        "amend": t.amend,
        "attended": t.attended,
        "consensus": t.consensus,
        "oppose": t.oppose,
        "quorum_met": t.quorum_met,
        "required": t.required,
        "round": rnd.number,
        "rule": t.rule,
        "summary": summary,
        "support": t.support,
    }
    return {"rounds": _replace_last_round(rec, closed)}, [(Event.ROUND_CLOSED, data)]


def abandon_open_round(params: Parameters, rec: Consultation, ctx: Context, why: str) -> Effect:
    """Close a round left open when the matter leaves consultation (escalated or withdrawn), so
    the case file never keeps a round that can be neither closed nor replaced."""
    rnd = rec.current_round
    if rnd is None or rnd.closed_at is not None:
        return {}, []
    return close_open_round(params, rec, ctx, why, abandoned=True)


def new_cycle(params: Parameters, rec: Consultation, ctx: Context) -> dict[str, Any]:
    """The fields a new cycle of consultation sets (再次协商, or resumed after an escalation)."""
    return {"cycle": rec.cycle + 1, "decision_due": ctx.now + params.decision_deadline}


def _close_round(proc: Governing, rec: Consultation, cmd: CloseRound, ctx: Context, role: str, to: State) -> Effect:
    update, events = close_open_round(proc.parameters, rec, ctx, cmd.summary, abandoned=False)
    if to is State.ESCALATED:
        events.append((Event.ESCALATED, {"reason": "no_consensus_at_round_limit", "rounds": rec.rounds_in_cycle}))
    return update, events


STEP = StepDefinition(
    name="consult 协商",
    commands=(OpenRound, SignIn, RecordOpinion, CloseRound),
    transitions=(
        transition(
            Trigger.OPEN_ROUND, State.NOTIFIED, State.CONSULTING, CONVENORS, ["notice_served", "attendees_take_part"]
        ),
        transition(
            Trigger.OPEN_ROUND,
            State.CONSULTING,
            State.CONSULTING,
            CONVENORS,
            ["previous_round_closed", "no_vote_open", "rounds_left", "notice_served", "attendees_take_part"],
        ),
        transition(
            Trigger.SIGN_IN,
            State.CONSULTING,
            None,
            PARTICIPANTS,
            ["round_is_open", "meeting_still_open", "clerk_on_behalf", "takes_part", "first_sign_in"],
        ),
        transition(
            Trigger.RECORD_OPINION,
            State.CONSULTING,
            None,
            PARTICIPANTS,
            ["round_is_open", "meeting_still_open", "clerk_on_behalf", "takes_part", "first_opinion_in_round"],
        ),
        transition(
            Trigger.CLOSE_ROUND,
            State.CONSULTING,
            State.ESCALATED,
            CONVENORS,
            ["round_is_open", "meeting_over"],
            ["no_consensus_at_limit"],
        ),
        transition(Trigger.CLOSE_ROUND, State.CONSULTING, None, CONVENORS, ["round_is_open", "meeting_over"]),
    ),
    guards=(
        Guard(
            "notice_served",
            _notice_served,
            (
                "no_meeting_scheduled",
                "before_meeting",
                "invitation_notice",
                "meeting_closed",
                "not_consultation_day",
            ),
            "a round opens at a meeting announced and not yet held, once it has come (not after an online "
            "meeting closed; on the consultation day for such a matter), and after a later invitation's notice",
        ),
        Guard(
            "meeting_still_open",
            _meeting_still_open,
            ("meeting_closed",),
            "an online meeting takes sign-ins and opinions until it closes (云协商)",
        ),
        Guard(
            "meeting_over",
            _meeting_over,
            ("online_meeting_open",),
            "an online meeting's round closes no earlier than the meeting closes (云协商)",
        ),
        Guard(
            "attendees_take_part",
            _attendees_take_part,
            ("not_taking_part",),
            "everyone signed in takes part (invited, a convenor, or a resident if rounds are open)",
            needs_command=True,
        ),
        Guard(
            "takes_part",
            _takes_part,
            ("not_taking_part",),
            "the participant takes part: invited, a convenor, or a resident if rounds are open to them",
        ),
        Guard(
            "clerk_on_behalf",
            _clerk_on_behalf,
            ("not_a_clerk", "on_behalf_of_self"),
            "only a clerk records for someone else (代为记录), and never for themselves",
        ),
        Guard("first_sign_in", _first_sign_in, ("already_signed_in",), "one sign-in per person a round"),
        Guard("previous_round_closed", _previous_round_closed, ("round_still_open",), "no round is open"),
        Guard("rounds_left", _rounds_left, ("round_limit",), "the round limit is not reached", bounds_loop=True),
        Guard("round_is_open", _round_is_open, ("no_open_round",), "a round is open"),
        Guard(
            "first_opinion_in_round",
            _first_opinion_in_round,
            ("already_recorded", "round_full"),
            "one opinion per person a round, and at most limits.MAX_OPINIONS_PER_ROUND in a round",
        ),
    ),
    routes=(Route("no_consensus_at_limit", _no_consensus_at_limit, "the last allowed round failed"),),
    effects={
        Trigger.OPEN_ROUND: _open_round,
        Trigger.SIGN_IN: _sign_in,
        Trigger.RECORD_OPINION: _record_opinion,
        Trigger.CLOSE_ROUND: _close_round,
    },
    audience={Event.ROUND_OPENED: (INVITED,)},
)
