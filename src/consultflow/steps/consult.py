"""协商 consult: rounds of consultation, opinions, the tally (quorum and consensus), the round limit.

A round opens after the notice (the first round is the announced meeting), takes one opinion per
person, and is tallied when it closes. At the round limit without consensus the matter is
escalated (议而不决 handed up). Hearings and advisory consultations hear people out and need no
consensus. A new cycle (再次协商, or a resumed escalation) starts counting rounds afresh.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from ..commands import Command, ConsultationCommand
from ..context import Context
from ..notices import INVITED
from ..parameters import Parameters
from ..records import Consultation, Id, Opinion, Round, Tally, Text, evolve, make
from ..refusals import Failure
from ..roles import STAKEHOLDERS, THINK_TANK, Role
from ..vocabulary import Carrier, Event, Stance, State, Trigger
from .base import Effect, Governing, Guard, Route, StepDefinition, transition

__all__ = [
    "CONVENORS",
    "HEARD_OUT",
    "PARTICIPANTS",
    "STEP",
    "CloseRound",
    "OpenRound",
    "RecordOpinion",
    "abandon_open_round",
    "new_cycle",
    "tally",
]

#: Who opens and closes rounds: the committee, or the consultation day's rotating chair.
CONVENORS = frozenset({Role.COMMITTEE, Role.ROTATING_CHAIR})
#: Who may give an opinion in a round: the "1+N+X" and the think tank.
PARTICIPANTS = (
    frozenset({Role.COMMITTEE, Role.WORKING_COMMITTEE, Role.COUNCIL_MEMBER, Role.ROTATING_CHAIR})
    | STAKEHOLDERS
    | THINK_TANK
)
#: Carriers that conclude without consensus: a hearing keeps its record, advice is adopted or not.
HEARD_OUT = frozenset({Carrier.HEARING, Carrier.ADVISORY})
_RESIDENT_ROLES = frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE})


# ---- commands ----------------------------------------------------------------------------------------
class OpenRound(ConsultationCommand):
    """Open a round of consultation (round table, heart-to-heart, online)."""

    trigger: ClassVar[Trigger] = Trigger.OPEN_ROUND
    agenda: Text = ""
    attendees: tuple[Id, ...] = Field(default=(), max_length=10_000)


class RecordOpinion(ConsultationCommand):
    """The acting participant's opinion in the open round."""

    trigger: ClassVar[Trigger] = Trigger.RECORD_OPINION
    stance: Stance
    text: Text = ""


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
    # Residents were told when the meeting is (告知): the first round is that meeting. The notice
    # period always ends by then, so the meeting is the first moment a round can open.
    s = record.schedule
    if s is not None and not record.rounds and ctx.now < s.meeting_at:
        return Failure("before_meeting", {"meeting_at": s.meeting_at})
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
    if r is None:
        return None
    who = ctx.actor.id
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
    rnd = make(
        Round,
        {
            "number": number,
            "cycle": rec.cycle,
            "opened_at": ctx.now,
            "opened_by": ctx.actor.id,
            "agenda": cmd.agenda,
            "attendees": tuple(dict.fromkeys(cmd.attendees)),
            "resident_attended": False,
            "opinions": (),
            "closed_at": None,
            "summary": "",
            "tally": None,
        },
    )
    data = {"attendees": len(rnd.attendees), "cycle": rec.cycle, "round": number}
    return {"rounds": (*rec.rounds, rnd)}, [(Event.ROUND_OPENED, data)]


def _record_opinion(
    proc: Governing, rec: Consultation, cmd: RecordOpinion, ctx: Context, role: str, to: State
) -> Effect:
    rnd = rec.rounds[-1]
    who = ctx.actor.id
    op = make(Opinion, {"participant": who, "role": role, "stance": cmd.stance, "text": cmd.text, "at": ctx.now})
    attendees = rnd.attendees if who in rnd.attendees else (*rnd.attendees, who)
    resident = rnd.resident_attended or not _RESIDENT_ROLES.isdisjoint(ctx.actor.roles)
    new = evolve(rnd, {"opinions": (*rnd.opinions, op), "attendees": attendees, "resident_attended": resident})
    data = {"round": rnd.number, "stance": cmd.stance.value, "text": cmd.text}
    return {"rounds": _replace_last_round(rec, new)}, [(Event.OPINION_RECORDED, data)]


def close_open_round(params: Parameters, rec: Consultation, ctx: Context, summary: str, abandoned: bool) -> Effect:
    """Close the open round: tally it, stamp it, log ``round_closed`` with the figures."""
    rnd = rec.rounds[-1]
    t = tally(params, rec, rnd)
    closed = evolve(rnd, {"closed_at": ctx.now, "summary": summary, "tally": t})
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
    commands=(OpenRound, RecordOpinion, CloseRound),
    transitions=(
        transition(Trigger.OPEN_ROUND, State.NOTIFIED, State.CONSULTING, CONVENORS, ["notice_served"]),
        transition(
            Trigger.OPEN_ROUND,
            State.CONSULTING,
            State.CONSULTING,
            CONVENORS,
            ["notice_served", "previous_round_closed", "rounds_left"],
        ),
        transition(
            Trigger.RECORD_OPINION, State.CONSULTING, None, PARTICIPANTS, ["round_is_open", "first_opinion_in_round"]
        ),
        transition(
            Trigger.CLOSE_ROUND,
            State.CONSULTING,
            State.ESCALATED,
            CONVENORS,
            ["round_is_open"],
            ["no_consensus_at_limit"],
        ),
        transition(Trigger.CLOSE_ROUND, State.CONSULTING, None, CONVENORS, ["round_is_open"]),
    ),
    guards=(
        Guard(
            "notice_served",
            _notice_served,
            ("before_meeting",),
            "the first round waits for the announced meeting (after the notice period)",
        ),
        Guard("previous_round_closed", _previous_round_closed, ("round_still_open",), "no round is open"),
        Guard("rounds_left", _rounds_left, ("round_limit",), "the round limit is not reached", bounds_loop=True),
        Guard("round_is_open", _round_is_open, ("no_open_round",), "a round is open"),
        Guard(
            "first_opinion_in_round", _first_opinion_in_round, ("already_recorded",), "one opinion per person a round"
        ),
    ),
    routes=(Route("no_consensus_at_limit", _no_consensus_at_limit, "the last allowed round failed"),),
    effects={
        Trigger.OPEN_ROUND: _open_round,
        Trigger.RECORD_OPINION: _record_opinion,
        Trigger.CLOSE_ROUND: _close_round,
    },
    audience={Event.ROUND_OPENED: (INVITED,)},
)
