"""Random command streams against the engine: whatever is asked, by whoever, whenever, the
six-step order holds, refusals change nothing, the record agrees with its log and the log verifies.
And the core is deterministic: the same stream at the same times gives the same hashes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import consultflow as cf
from consultflow import Carrier, Channel, Consultation, Form, LogEntry, Stance, State, Trigger, Verdict
from consultflow.deadlines import next_due
from consultflow.engine import CLOCK_ACTOR
from consultflow.steps import MarkOverdue
from consultflow.testing.driver import CAST, COMMUNITY, INVITED, TOPIC, Driver
from oracle import check_log_order

MAX_CONSULTATIONS = 3
PEOPLE: tuple[cf.Actor, ...] = tuple(CAST.values())
ACTOR_IDS = tuple(a.id for a in PEOPLE)
LI, WANG, ZHANG = CAST["li"], CAST["wang"], CAST["zhang"]
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
REASON = st.text(st.characters(exclude_categories=("Cs", "Z", "Cc")), min_size=1, max_size=12)
RULE_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"round_limit": 1, "cycle_limit": 2},
    {"escalate_undecided": False, "escalate_unimplemented": True, "round_limit": 2},
    {"consensus": {"kind": "no_sustained_objection"}, "major_needs_residents": False, "min_attendance": 1},
)
DELAYS = (
    timedelta(minutes=5),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=10),
    timedelta(days=31),
)


def _measures(draw: Any, now: Any, good: bool) -> tuple[cf.Measure, ...]:
    count = draw(st.integers(1 if good else 0, 2))
    days = st.integers(5, 40) if good else st.integers(-2, 40)
    budgets = st.sampled_from(["0", "1000", "50000"] if good else ["0", "1000", "250000", "400000"])
    return tuple(
        cf.Measure(
            title=f"措施 {i + 1}",
            owner=draw(st.sampled_from(ACTOR_IDS)),
            due=now + timedelta(days=draw(days), hours=1),
            budget=Decimal(draw(budgets)),
        )
        for i in range(count)
    )


def build(trigger: Trigger, record: Consultation, now: Any, draw: Any, good: bool) -> cf.Command:
    """A command of kind ``trigger`` on ``record``; ``good`` picks values the guards tend to accept."""
    cid = record.id
    if trigger is Trigger.REJECT:
        return cf.Reject(consultation=cid, reason=draw(REASON))
    if trigger is Trigger.WITHDRAW:
        return cf.Withdraw(consultation=cid, reason=draw(REASON))
    if trigger is Trigger.NOTIFY:
        days = draw(st.integers(3, 8) if good else st.integers(0, 8))
        invite = INVITED if good else tuple(draw(st.lists(st.sampled_from(ACTOR_IDS), unique=True, max_size=8)))
        chair = "chen" if good and record.form is Form.CONSULTATION_DAY else draw(st.sampled_from([None, "chen"]))
        return cf.Notify(
            consultation=cid,
            meeting_at=now + timedelta(days=days, hours=1),
            invite=invite,
            chair=chair,
            channels=tuple(draw(st.lists(st.sampled_from(Channel), unique=True, min_size=1, max_size=2))),
        )
    if trigger is Trigger.OPEN_ROUND:
        attendees = draw(st.lists(st.sampled_from(ACTOR_IDS), max_size=4))  # duplicates are folded
        return cf.OpenRound(consultation=cid, agenda=draw(TEXT), attendees=tuple(attendees))
    if trigger is Trigger.RECORD_OPINION:
        stances = [*[Stance.SUPPORT] * 8, *Stance] if good else list(Stance)
        return cf.RecordOpinion(consultation=cid, stance=draw(st.sampled_from(stances)), text=draw(TEXT))
    if trigger is Trigger.CLOSE_ROUND:
        return cf.CloseRound(consultation=cid, summary=draw(TEXT))
    if trigger is Trigger.DECIDE:
        fields: dict[str, Any] = {}
        carrier = record.carrier if good else draw(st.sampled_from(Carrier))
        if carrier is Carrier.DECISION:
            fields["measures"] = _measures(draw, now, good)
        elif carrier is Carrier.HEARING:
            fields["hearing_record"] = draw(TEXT)
        elif carrier is Carrier.COORDINATION:
            fields["agreement_parties"] = tuple(draw(st.lists(st.sampled_from(ACTOR_IDS), unique=True, max_size=3)))
        else:
            fields["advice_adopted"] = draw(st.sampled_from([None, True, False]))
        return cf.Decide(consultation=cid, resolution=draw(REASON), **fields)
    if trigger is Trigger.REVIEW:
        verdicts = [Verdict.LAWFUL, Verdict.LAWFUL, Verdict.UNLAWFUL] if good else list(Verdict)
        if draw(st.sampled_from(verdicts)) is Verdict.LAWFUL:
            return cf.ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL, education_note=draw(TEXT))
        return cf.ReviewLegality(
            consultation=cid, verdict=Verdict.UNLAWFUL, legal_basis=draw(REASON), correction=draw(REASON)
        )
    if trigger is Trigger.PUBLISH:
        channels = draw(st.lists(st.sampled_from(Channel), unique=True, min_size=1, max_size=3))
        return cf.Publish(consultation=cid, channels=tuple(channels), summary=draw(TEXT))
    if trigger is Trigger.REPORT_PROGRESS:
        d = record.current_decision
        count = len(d.measures) if d is not None else 0
        measure = draw(st.integers(0, count - 1)) if good and count else draw(st.integers(0, 3))
        percent = draw(st.sampled_from([50, 100, 100] if good else [0, 50, 100]))
        return cf.ReportProgress(consultation=cid, measure=measure, percent=percent, spent=Decimal(percent * 10))
    if trigger is Trigger.RECORD_FEEDBACK:
        return cf.RecordFeedback(consultation=cid, satisfaction=draw(st.integers(1, 5)), comment=draw(TEXT))
    if trigger is Trigger.START_SUPERVISION:
        return cf.StartSupervision(consultation=cid)
    if trigger is Trigger.INSPECT:
        passed = draw(st.sampled_from([True, True, False] if good else [True, False]))
        return cf.Inspect(consultation=cid, passed=passed, findings=draw(TEXT))
    if trigger is Trigger.REQUEST_RECONSULTATION:
        return cf.RequestReconsultation(consultation=cid, problems=draw(REASON))
    if trigger is Trigger.ESCALATE:
        return cf.Escalate(consultation=cid, reason=draw(REASON))
    if trigger is Trigger.RESUME:
        return cf.Resume(consultation=cid, instructions=draw(REASON))
    if trigger is Trigger.CLOSE:
        return cf.Close(consultation=cid, summary=draw(TEXT))
    if trigger is Trigger.MARK_OVERDUE:
        return MarkOverdue(consultation=cid)
    raise AssertionError(trigger)  # pragma: no cover


CONSULTATION_TRIGGERS = tuple(t for t in Trigger if t is not Trigger.PROPOSE)
# Guided play tries forward steps first and gives up (escalate, withdraw, reject) only when stuck,
# so that the loops and the late steps get their turn; ``anything`` and ``tick`` take the rest.
FORWARD = (
    Trigger.NOTIFY,
    Trigger.OPEN_ROUND,
    Trigger.RECORD_OPINION,
    Trigger.CLOSE_ROUND,
    Trigger.DECIDE,
    Trigger.REVIEW,
    Trigger.PUBLISH,
    Trigger.REPORT_PROGRESS,
    Trigger.START_SUPERVISION,
    Trigger.INSPECT,
    Trigger.CLOSE,
    Trigger.RECORD_FEEDBACK,
    Trigger.REQUEST_RECONSULTATION,
    Trigger.RESUME,
)
GIVING_UP = (Trigger.ESCALATE, Trigger.WITHDRAW, Trigger.REJECT)
WEIGHT = {Trigger.RECORD_OPINION: 4, Trigger.REPORT_PROGRESS: 3}  # a round needs several opinions


class ConsultationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rules_cfg: dict[str, Any] = {}
        driver = Driver()
        self.engine, self.clock = driver.engine, driver.clock
        self.procedure = self.engine.procedure
        self.ids: list[str] = []
        # everything that happened, to replay: ("cmd", command, actor, at, outcome) or ("tick", at, ids)
        self.stream: list[tuple[Any, ...]] = []

    @initialize(variant=st.sampled_from(RULE_VARIANTS))
    def choose_rules(self, variant: dict[str, Any]) -> None:
        self.rules_cfg = variant
        driver = Driver(**variant)
        self.engine, self.clock = driver.engine, driver.clock
        self.procedure = self.engine.procedure

    # ---- plumbing ------------------------------------------------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        store = self.engine.store
        return (
            tuple(self.engine.find()),
            tuple(self.engine.history(cid) for cid in self.ids),
            store.outbox(),  # type: ignore[attr-defined]
        )

    def execute(self, command: cf.Command, actor: cf.Actor) -> None:
        now = self.clock.now()
        before = self.snapshot()
        explained = self.engine.explain(command, by=actor)
        permissions: dict[str, cf.Permission] = {}
        if isinstance(command, cf.ConsultationCommand):
            permissions = {p.trigger: p for p in self.engine.allowed(command.consultation, by=actor)}
        refused: cf.Refused | None = None
        try:
            step = self.engine.run(command, by=actor)
        except cf.Refused as exc:
            refused = exc
        if refused is not None:
            # a refusal changes nothing: record, history, outbox
            assert self.snapshot() == before, f"refused {command!r} but something changed"
            assert explained is not None, f"explain let {command!r} through but execute refused it"
            assert explained.code == refused.code, (explained, refused)
            assert refused.explain("en")
            assert refused.explain("zh")
            self.stream.append(("cmd", command, actor, now, refused.code))
            return
        assert explained is None, f"explain said {explained!r} but execute went through"
        self.stream.append(("cmd", command, actor, now, "ok"))
        rec = step.record
        if isinstance(command, cf.Propose):
            self.ids.append(rec.id)
            old_version = 0
        else:
            # allowed() checks a subset of execute's parameters: what went through was allowed, in that role
            permission = permissions[command.trigger.value]
            assert permission.allowed, (command, permission.refusal)
            assert permission.role == step.entries[0].role
            old_version = before[0][[r.id for r in before[0]].index(rec.id)].version
        assert step.entries, "every step logs at least one entry"
        assert [e.seq for e in step.entries] == list(range(old_version + 1, rec.version + 1))
        assert self.engine.history(rec.id)[old_version:] == step.entries
        assert self.engine.get(rec.id) == rec
        assert all(e.at == now and e.actor == actor.id for e in step.entries)
        outbox = self.engine.store.outbox()  # type: ignore[attr-defined]
        assert outbox[len(before[2]) :] == step.notices
        for e in step.entries:  # the trusted hot-path entries are valid records
            assert LogEntry.from_json_dict(e.to_json_dict()) == e

    # ---- rules -----------------------------------------------------------------------------------------
    @precondition(lambda self: len(self.ids) < MAX_CONSULTATIONS)
    @rule(
        actor=st.sampled_from((LI, WANG, ZHANG, *PEOPLE)),
        topic=st.sampled_from([TOPIC, TOPIC, "public-benefit/micro-greening", "policy/not-listed"]),
        carrier=st.sampled_from(Carrier),
        form=st.sampled_from(Form),
        major=st.booleans(),
        budget=st.sampled_from([None, Decimal("5000"), Decimal("999999")]),
        title=REASON,
    )
    def propose(
        self,
        actor: cf.Actor,
        topic: str,
        carrier: Carrier,
        form: Form,
        major: bool,
        budget: Decimal | None,
        title: str,
    ) -> None:
        command = cf.Propose(
            community=COMMUNITY, topic=topic, title=title, carrier=carrier, form=form, major=major, budget=budget
        )
        self.execute(command, actor)

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def anything(self, data: st.DataObject) -> None:
        """Any command, by anyone, on any consultation: mostly refused."""
        cid = data.draw(st.sampled_from(self.ids), label="consultation")
        trigger = data.draw(st.sampled_from(CONSULTATION_TRIGGERS), label="trigger")
        actor = data.draw(st.sampled_from(PEOPLE), label="actor")
        command = build(trigger, self.engine.get(cid), self.clock.now(), data.draw, good=False)
        self.execute(command, actor)

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def steps_allowed(self, data: st.DataObject) -> None:
        """A burst of steps that ``allowed`` says someone may take now, with plausible content."""
        cid = data.draw(st.sampled_from(self.ids), label="consultation")
        for _ in range(data.draw(st.integers(1, 12), label="burst")):
            record = self.engine.get(cid)
            schedule = record.schedule
            waiting = (
                record.state is State.NOTIFIED and schedule is not None and self.clock.now() < schedule.notice_ends
            )
            # waiting for the notice period to end is the forward step here
            if waiting and schedule is not None and data.draw(st.booleans(), label="wait"):
                self.clock.set(schedule.notice_ends)
            allowed = {
                (Trigger(p.trigger), actor) for actor in PEOPLE for p in self.engine.allowed(cid, by=actor) if p.allowed
            }
            triggers = {t for t, _ in allowed}
            forward = [t for t in FORWARD for _ in range(WEIGHT.get(t, 1)) if t in triggers]
            options = forward or [t for t in GIVING_UP if t in triggers]
            if not options:
                return
            trigger = data.draw(st.sampled_from(options), label="trigger")
            actors = sorted((a for t, a in allowed if t is trigger), key=lambda a: a.id)
            actor = data.draw(st.sampled_from(actors), label="actor")
            self.execute(build(trigger, record, self.clock.now(), data.draw, good=True), actor)
            if data.draw(st.integers(0, 3), label="pause") == 0:
                self.clock.advance(hours=data.draw(st.integers(1, 72), label="hours"))

    @rule(delay=st.sampled_from(DELAYS))
    def time_passes(self, delay: timedelta) -> None:
        self.clock.advance(delay)

    @rule()
    def tick(self) -> None:
        now = self.clock.now()
        before = {r.id: r for r in self.engine.find()}
        steps = self.engine.tick()
        self.stream.append(("tick", now, [s.record.id for s in steps]))
        for step in steps:
            assert [e.event for e in step.entries][:1] == [cf.Event.DEADLINE_MISSED]
            assert all(e.actor == CLOCK_ACTOR.id and e.at == now for e in step.entries)
            assert step.record.missed[: len(before[step.record.id].missed)] == before[step.record.id].missed
        touched = {s.record.id for s in steps}
        for r in self.engine.find():
            if r.id not in touched:
                assert r == before[r.id], "tick changed a consultation that was not due"
        # everything overdue was reported: nothing active is still due
        due = self.engine.find(cf.Query(due_before=now))
        assert [r.id for r in due if r.active and r.state is not State.ESCALATED] == []
        assert self.engine.tick(now) == ()  # each deadline once

    # ---- invariants --------------------------------------------------------------------------------------
    @invariant()
    def records_agree_with_their_logs(self) -> None:
        for cid in self.ids:
            rec = self.engine.get(cid)
            history = self.engine.history(cid)
            assert rec.version == len(history)
            assert rec.head == history[-1].hash
            assert rec.state is history[-1].target
            assert cf.verify(history, head=rec.head, version=rec.version).ok
            assert rec.next_due == next_due(
                rec.state,
                rec.cycle,
                rec.respond_by,
                rec.decision_due,
                rec.review_due,
                rec.current_decision,
                rec.progress,
                rec.missed,
            )
            assert Consultation.model_validate_json(rec.model_dump_json()) == rec

    @invariant()
    def the_six_step_order_holds(self) -> None:
        for cid in self.ids:
            check_log_order(self.engine.history(cid), self.procedure)

    def teardown(self) -> None:
        """The same stream, at the same times, into a fresh engine: the same outcomes and hashes."""
        driver = Driver(**self.rules_cfg)
        engine, clock = driver.engine, driver.clock
        for item in self.stream:
            if item[0] == "tick":
                _, at, ids = item
                clock.set(at)
                assert [s.record.id for s in engine.tick()] == ids
                continue
            _, command, actor, at, outcome = item
            clock.set(at)
            try:
                engine.run(command, by=actor)
                got = "ok"
            except cf.Refused as refused:
                got = refused.code
            assert got == outcome, (command, got, outcome)
        for cid in self.ids:
            assert [e.hash for e in engine.history(cid)] == [e.hash for e in self.engine.history(cid)]
            assert engine.get(cid) == self.engine.get(cid)


ConsultationMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestConsultationMachine = ConsultationMachine.TestCase


# ---- the pure core -------------------------------------------------------------------------------------------


def _story_points() -> tuple[Driver, list[tuple[str, str]]]:
    """Consultations stopped at different steps, on one engine: (consultation, its state)."""
    driver = Driver()
    stops = ("proposed", "notified", "consulting", "decided", "feedback", "supervising")
    return driver, [(driver.to(stop).id, stop) for stop in stops]


POINTS_DRIVER, POINTS = _story_points()


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_decide_is_pure_and_deterministic(data: st.DataObject) -> None:
    story = POINTS_DRIVER
    cid, _ = data.draw(st.sampled_from(POINTS), label="point")
    record = story.get(cid)
    dumped = record.model_dump()
    trigger = data.draw(st.sampled_from(CONSULTATION_TRIGGERS), label="trigger")
    actor = data.draw(st.sampled_from(PEOPLE), label="actor")
    now = story.clock.now() + timedelta(days=data.draw(st.integers(0, 60), label="days"))
    command = build(trigger, record, now, data.draw, good=data.draw(st.booleans(), label="good"))
    ctx = cf.Context(now=now, actor=actor, catalogue=story.engine.catalogue)
    first = cf.apply(story.engine.procedure, record, command, ctx)
    second = cf.apply(story.engine.procedure, record, command, ctx)
    assert record.model_dump() == dumped  # nothing mutated
    if isinstance(first, cf.Refused):
        assert isinstance(second, cf.Refused)
        assert (first.code, first.guard, dict(first.data)) == (second.code, second.guard, dict(second.data))
    else:
        assert isinstance(second, cf.Step)
        assert first == second
        assert [e.hash for e in first.entries] == [e.hash for e in second.entries]
        assert cf.verify([*story.history(cid), *first.entries], head=first.record.head, version=first.record.version)


def test_the_same_stream_on_another_day_gives_other_hashes() -> None:
    """The hashes depend on the clock values: the replay property is not trivially true."""
    a, b = Driver(), Driver()
    b.clock.advance(days=1)
    a.propose()
    b.propose()
    assert a.history()[0].hash != b.history()[0].hash
    assert a.history()[0].data == b.history()[0].data


def test_a_proposal_may_come_from_a_resident_but_not_from_nobody() -> None:
    engine = Driver().engine
    command = cf.Propose(community=COMMUNITY, topic=TOPIC, title="夜间停车", carrier="decision", form="council")  # type: ignore[arg-type]
    assert engine.explain(command, by=LI) is None
    refusal = engine.explain(command, by=cf.Actor("nobody"))
    assert refusal is not None
    assert refusal.code == "role_not_allowed"
    assert engine.execute(command, by=WANG).state is State.PROPOSED
    assert engine.procedure.key == ("six-step", "1")


def _without(entries: tuple[LogEntry, ...], *events: cf.Event) -> list[LogEntry]:
    return [e for e in entries if e.event not in events]


def test_the_order_oracle_is_not_vacuous() -> None:
    """``check_log_order`` (the invariant above) fails on logs that skip or bend a step."""
    story = Driver()
    story.to("supervising")
    log = story.history()
    check_log_order(log)
    bent = [
        # decided with no round held
        _without(log, cf.Event.ROUND_OPENED, cf.Event.OPINION_RECORDED, cf.Event.ROUND_CLOSED),
        # supervising with nothing published
        _without(log, cf.Event.PUBLISHED),
        # feedback entered without a lawful review
        [
            e.model_copy(update={"data": {**e.data, "verdict": "unlawful", "legal_basis": "x", "correction": "y"}})
            if e.event is cf.Event.LEGALITY_REVIEWED
            else e
            for e in log
        ],
        # a step out of order: notified after consulting began
        [log[0], *log[2:4], log[1], *log[4:]],
    ]
    for entries in bent:
        try:
            check_log_order(entries)
        except AssertionError:
            continue
        raise AssertionError(f"the oracle accepted a bent log: {[e.event.value for e in entries]}")
