"""Helpers for the story-level tests (stateful, log, deadlines, loops, demo, validation).

A small cast of actors, an engine factory on a ``MemoryStore`` with a ``SimulatedClock`` and a
``Story`` that drives one consultation step by step to any state. Also ``check_log_order``, an
oracle written independently of the procedure's guards: it reads a log and says whether the
six-step order was kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import consultflow as cf
from consultflow import (
    Actor,
    Carrier,
    Catalogue,
    Channel,
    Consultation,
    Engine,
    Event,
    Form,
    LogEntry,
    MemoryStore,
    Role,
    SimulatedClock,
    Stance,
    State,
    Verdict,
)

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, tzinfo=ZONE)
COMMUNITY = "c1"
TOPIC = "public-affairs/night-parking"
CATALOGUE = Catalogue().with_community(
    COMMUNITY, {TOPIC: "夜间停车 night parking", "public-benefit/micro-greening": "微绿化 micro-greening"}
)

WANG = Actor("wang", roles={Role.COMMITTEE})
LI = Actor("li", roles={Role.RESIDENT})
WU = Actor("wu", roles={Role.RESIDENT})
ZHANG = Actor("zhang", roles={Role.RESIDENT_REPRESENTATIVE})
ZHAO = Actor("zhao", roles={Role.PROPERTY_MANAGEMENT})
LIU = Actor("liu", roles={Role.EXPERT})
CHEN = Actor("chen", roles={Role.ROTATING_CHAIR, Role.RESIDENT})
SUN = Actor("sun", roles={Role.SUPERVISOR})
ZHOU = Actor("zhou", roles={Role.INSPECTION_GROUP})
JIE = Actor("jie", roles={Role.SUB_DISTRICT})
NOBODY = Actor("nobody")
SYSTEM = Actor("robot", roles={Role.SYSTEM})

CAST: tuple[Actor, ...] = (WANG, LI, WU, ZHANG, ZHAO, LIU, CHEN, SUN, ZHOU, JIE, NOBODY, SYSTEM)
INVITED: tuple[str, ...] = ("li", "wu", "zhang", "zhao", "liu", "chen")

FINAL = frozenset({State.CLOSED, State.REJECTED, State.WITHDRAWN})


def make_procedure(parameters: Mapping[str, Any] | None = None) -> cf.Procedure:
    """The six-step procedure, or a variant of it with some parameters changed."""
    if not parameters:
        return cf.six_step()
    return cf.six_step().variant("six-step-test", "1", parameters=dict(parameters))


def counter_ids(prefix: str = "c1-2026") -> Any:
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter):03d}"


def make_engine(
    parameters: Mapping[str, Any] | None = None,
    *,
    store: MemoryStore | None = None,
    clock: SimulatedClock | None = None,
) -> tuple[Engine, SimulatedClock]:
    """An engine on a ``MemoryStore`` with a ``SimulatedClock`` at ``T0`` and deterministic ids."""
    clock = clock if clock is not None else SimulatedClock(T0)
    engine = Engine(
        make_procedure(parameters),
        store if store is not None else MemoryStore(),
        clock=clock,
        catalogue=CATALOGUE,
        ids=counter_ids(),
    )
    return engine, clock


CONSENSUS: tuple[tuple[Actor, Stance], ...] = (
    (LI, Stance.SUPPORT),
    (WU, Stance.SUPPORT),
    (ZHANG, Stance.SUPPORT),
    (ZHAO, Stance.SUPPORT),
)
NO_CONSENSUS: tuple[tuple[Actor, Stance], ...] = (
    (LI, Stance.SUPPORT),
    (WU, Stance.OPPOSE),
    (ZHANG, Stance.OPPOSE),
    (ZHAO, Stance.AMEND),
)


class Story:
    """Drives one consultation through the engine; every step advances the clock one hour."""

    def __init__(
        self,
        parameters: Mapping[str, Any] | None = None,
        *,
        engine: Engine | None = None,
        clock: SimulatedClock | None = None,
        carrier: Carrier = Carrier.DECISION,
        major: bool = False,
    ) -> None:
        if engine is None:
            engine, clock = make_engine(parameters)
        assert clock is not None
        self.engine = engine
        self.clock = clock
        self.carrier = carrier
        self.major = major
        self.cid = ""

    # ---- plumbing ------------------------------------------------------------------------------
    @property
    def record(self) -> Consultation:
        return self.engine.get(self.cid)

    @property
    def state(self) -> State:
        return self.record.state

    def history(self) -> tuple[LogEntry, ...]:
        return self.engine.history(self.cid)

    def events(self) -> list[Event]:
        return [e.event for e in self.history()]

    def run(self, command: cf.Command, by: Actor) -> Consultation:
        self.clock.advance(hours=1)
        return self.engine.execute(command, by=by)

    # ---- the steps -----------------------------------------------------------------------------
    def propose(self, *, by: Actor = LI, budget: Decimal | None = None) -> Consultation:
        rec = self.run(
            cf.Propose(
                community=COMMUNITY,
                topic=TOPIC,
                title="夜间停车难 Night parking",
                carrier=self.carrier,
                form=Form.INVITATION,
                major=self.major,
                budget=budget,
            ),
            LI if by is None else by,
        )
        self.cid = rec.id
        return rec

    def notify(self, *, days: int = 5) -> Consultation:
        meeting = self.clock.now() + timedelta(days=days, hours=1)
        return self.run(
            cf.Notify(consultation=self.cid, meeting_at=meeting, invite=INVITED, channels=(Channel.NOTICE_BOARD,)),
            WANG,
        )

    def serve_notice(self) -> None:
        """Let the notice period end and the announced meeting come."""
        schedule = self.record.schedule
        assert schedule is not None
        if self.clock.now() < schedule.meeting_at:
            self.clock.set(schedule.meeting_at)

    def open_round(self) -> Consultation:
        return self.run(cf.OpenRound(consultation=self.cid, agenda="夜间停车"), WANG)

    def opinion(self, who: Actor, stance: Stance) -> Consultation:
        return self.run(cf.RecordOpinion(consultation=self.cid, stance=stance, text=""), who)

    def close_round(self) -> Consultation:
        return self.run(cf.CloseRound(consultation=self.cid, summary="小结"), WANG)

    def hold_round(self, *, consensus: bool = True) -> Consultation:
        if self.state is State.NOTIFIED:
            self.serve_notice()
        self.open_round()
        for who, stance in CONSENSUS if consensus else NO_CONSENSUS:
            self.opinion(who, stance)
        return self.close_round()

    def decide_command(self, *, due_days: int = 20) -> cf.Decide:
        due = self.clock.now() + timedelta(days=due_days)
        fields: dict[str, Any] = {}
        if self.carrier is Carrier.DECISION:
            fields["measures"] = (
                cf.Measure(title="划线 mark the bays", owner="zhao", due=due, budget=Decimal("8000")),
                cf.Measure(title="道闸 gate", owner="wang", due=due + timedelta(days=10), budget=Decimal("3000")),
            )
        elif self.carrier is Carrier.HEARING:
            fields["hearing_record"] = "听证记录"
        elif self.carrier is Carrier.COORDINATION:
            fields["agreement_parties"] = ("zhao", "wang")
        else:
            fields["advice_adopted"] = True
        return cf.Decide(consultation=self.cid, resolution="东侧空地夜间开放停车", **fields)

    def decide(self, *, due_days: int = 20) -> Consultation:
        return self.run(self.decide_command(due_days=due_days), WANG)

    def review(self, *, lawful: bool = True, by: Actor = SUN) -> Consultation:
        if lawful:
            cmd = cf.ReviewLegality(consultation=self.cid, verdict=Verdict.LAWFUL)
        else:
            cmd = cf.ReviewLegality(
                consultation=self.cid,
                verdict=Verdict.UNLAWFUL,
                legal_basis="《民法典》第二百七十八条",
                correction="提交业主大会表决",
                education_note="普法宣讲",
            )
        return self.run(cmd, by)

    def publish(self) -> Consultation:
        return self.run(cf.Publish(consultation=self.cid, channels=(Channel.NOTICE_BOARD, Channel.ROADMAP)), WANG)

    def report(self, measure: int, percent: int = 100) -> Consultation:
        return self.run(cf.ReportProgress(consultation=self.cid, measure=measure, percent=percent), WANG)

    def finish_measures(self) -> None:
        d = self.record.current_decision
        assert d is not None
        for i in range(len(d.measures)):
            self.report(i)

    def start_supervision(self) -> Consultation:
        return self.run(cf.StartSupervision(consultation=self.cid), WANG)

    def inspect(self, *, passed: bool = True) -> Consultation:
        findings = "" if passed else "消防通道被占用 the fire lane is blocked"
        return self.run(cf.Inspect(consultation=self.cid, passed=passed, findings=findings), ZHOU)

    def reconsult(self) -> Consultation:
        return self.run(cf.RequestReconsultation(consultation=self.cid, problems="新问题 a new problem"), ZHOU)

    def escalate(self, *, by: Actor = WANG) -> Consultation:
        return self.run(cf.Escalate(consultation=self.cid, reason="无法推进 stuck"), by)

    def resume(self, *, by: Actor = JIE) -> Consultation:
        return self.run(cf.Resume(consultation=self.cid, instructions="重新协商 consult again"), by)

    def close(self, *, by: Actor = WANG) -> Consultation:
        return self.run(cf.Close(consultation=self.cid, summary="办结"), by)

    # ---- whole stretches -----------------------------------------------------------------------
    def to_decided(self) -> Consultation:
        if not self.cid:
            self.propose()
        if self.state is State.PROPOSED:
            self.notify()
        self.hold_round()
        return self.decide()

    def to_feedback(self) -> Consultation:
        self.to_decided()
        return self.review()

    def to_supervising(self) -> Consultation:
        self.to_feedback()
        self.publish()
        return self.start_supervision()

    def cycle_again(self) -> Consultation:
        """From supervising: inspection finds a problem, a new cycle, a new round, a new lawful decision,
        published, under supervision again."""
        self.inspect(passed=False)
        self.reconsult()
        self.hold_round()
        self.decide()
        self.review()
        self.publish()
        return self.start_supervision()

    def to_closed(self) -> Consultation:
        self.to_supervising()
        self.finish_measures()
        self.inspect()
        return self.close()


# ---- the order oracle -------------------------------------------------------------------------------


def procedure_edges(procedure: cf.Procedure) -> frozenset[tuple[State, State]]:
    return frozenset(
        (State(t.source), State(t.target)) for t in procedure.transitions if t.target is not None and t.source != "new"
    )


def check_log_order(entries: Sequence[LogEntry], procedure: cf.Procedure | None = None) -> None:
    """Fail if the log shows a step of the six-step order skipped or bent.

    Independent of the guards: it replays the events and keeps its own count of rounds, decisions,
    reviews, publications and inspections.
    """
    procedure = procedure if procedure is not None else cf.six_step()
    params = procedure.parameters
    edges = procedure_edges(procedure)
    assert entries, "a consultation always has at least its proposal in the log"
    first = entries[0]
    assert first.event is Event.PROPOSED, first
    assert first.source is None
    assert first.target is State.PROPOSED
    carrier = Carrier(str(first.data["carrier"]))
    state = State.PROPOSED
    cycle = 1
    rounds_in_cycle = 0
    round_open = False
    fresh_round = False  # a closed round of this cycle that no decision has used yet
    last_consensus = False
    decision = 0
    measures = 0
    lawful = False
    published = False
    done: set[int] = set()
    signed_off = False
    for e in entries[1:]:
        where = f"seq {e.seq} ({e.event.value})"
        assert state not in FINAL, f"{where}: nothing may follow {state.value}"
        assert e.source is state, f"{where}: starts from {e.source} but the log was at {state}"
        if e.target is not e.source:
            assert (e.source, e.target) in edges, f"{where}: {e.source} -> {e.target} is no transition"
        ev = e.event
        if ev is Event.NOTIFIED:
            assert e.source is State.PROPOSED
        elif ev is Event.ROUND_OPENED:
            assert e.source in (State.NOTIFIED, State.CONSULTING)
            assert e.target is State.CONSULTING
            assert not round_open, f"{where}: a round opened while another is open"
            assert e.data["cycle"] == cycle
            round_open = True
            rounds_in_cycle += 1
            assert rounds_in_cycle <= params.round_limit, f"{where}: more rounds than the limit"
        elif ev is Event.OPINION_RECORDED:
            assert round_open, f"{where}: an opinion with no open round"
        elif ev is Event.ROUND_CLOSED:
            assert round_open, f"{where}: closing a round that is not open"
            round_open = False
            fresh_round = True
            last_consensus = bool(e.data["consensus"])
            assert e.data["quorum_met"] or not e.data["consensus"]
        elif ev is Event.DECIDED:
            assert e.source is State.CONSULTING
            assert e.target is State.DECIDED
            assert fresh_round, f"{where}: decided without a closed round in cycle {cycle}"
            assert not round_open
            if carrier in (Carrier.DECISION, Carrier.COORDINATION):
                assert last_consensus, f"{where}: decided without consensus"
            decision += 1
            assert e.data["decision"] == decision
            measures = len(e.data["measures"])  # type: ignore[arg-type]
            fresh_round = False
            lawful = published = signed_off = False
            done = set()
        elif ev is Event.LEGALITY_REVIEWED:
            assert e.source is State.DECIDED
            assert e.data["decision"] == decision, f"{where}: reviewed a decision that is not the current one"
            if e.data["verdict"] == Verdict.LAWFUL.value:
                lawful = True
                assert e.target is State.FEEDBACK
            else:
                assert e.data["legal_basis"], f"{where}: unlawful without a legal basis"
                assert e.data["correction"], f"{where}: unlawful without a correction"
                assert e.target in (State.CONSULTING, State.DECIDED)  # DECIDED: an escalation follows
        elif ev is Event.PUBLISHED:
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
            assert e.data["decision"] == decision
            published = True
        elif ev is Event.PROGRESS_REPORTED:
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
            assert 0 <= int(e.data["measure"]) < measures  # type: ignore[arg-type]
            if e.data["percent"] == 100:
                done.add(int(e.data["measure"]))  # type: ignore[arg-type]
            signed_off = False  # a report after the inspection needs a new one
        elif ev is Event.SUPERVISION_STARTED:
            assert e.source is State.FEEDBACK
            assert e.target is State.SUPERVISING
            assert published, f"{where}: supervising before the outcome was published"
        elif ev is Event.INSPECTED:
            assert e.source is State.SUPERVISING
            signed_off = bool(e.data["passed"])
        elif ev is Event.RECONSULTATION_REQUESTED:
            assert e.source is State.SUPERVISING
            assert e.target is State.CONSULTING
            cycle += 1
            assert e.data["cycle"] == cycle
            assert cycle <= params.cycle_limit
        elif ev is Event.RESUMED:
            assert e.source is State.ESCALATED
            assert e.target is State.CONSULTING
            cycle += 1
            assert e.data["cycle"] == cycle
            assert cycle <= params.cycle_limit
        elif ev is Event.CLOSED:
            if e.source is State.SUPERVISING:
                assert signed_off, f"{where}: closed without an inspection that passed"
                assert done >= set(range(measures)), f"{where}: closed with measures unfinished"
            else:
                assert e.source is State.ESCALATED, f"{where}: closed from {e.source}"
        elif ev is Event.ESCALATED:
            assert e.target is State.ESCALATED
        elif ev is Event.DEADLINE_MISSED:
            assert e.role == Role.SYSTEM.value
        elif ev is Event.REJECTED:
            assert e.source is State.PROPOSED
        elif ev is Event.WITHDRAWN:
            assert e.source in (State.PROPOSED, State.NOTIFIED, State.CONSULTING)
        elif ev is Event.FEEDBACK_RECEIVED:
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
        else:  # pragma: no cover - a new event needs a rule here
            raise AssertionError(f"{where}: unknown event")
        if ev in (Event.RECONSULTATION_REQUESTED, Event.RESUMED):
            rounds_in_cycle = 0
            round_open = fresh_round = False
        # entering feedback: only by a lawful review of the current decision
        if e.target is State.FEEDBACK and e.source is not State.FEEDBACK:
            assert ev is Event.LEGALITY_REVIEWED, f"{where}: feedback entered by {ev.value}"
            assert lawful, f"{where}: feedback without a lawful review"
        if e.target is State.SUPERVISING and e.source is not State.SUPERVISING:
            assert ev is Event.SUPERVISION_STARTED
            assert lawful
            assert published
        state = e.target
