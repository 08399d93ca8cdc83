"""Random command streams against the engine: whatever is asked, by whoever, whenever, the
six-step order holds, refusals change nothing, the record agrees with its log and the log verifies.
People act by their id, and the engine's directory says what they are: outsiders, callers claiming
roles the directory does not back, and clerks recording for others are thrown in, the directory
changes as the stream runs, and every logged (actor, role) must be backed - by the directory at the
moment of the entry, by the person's relation to the matter, or by being the clock.
And the core is deterministic: the same stream at the same times gives the same hashes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import consultflow as cf
from consultflow import Carrier, Channel, Consultation, Event, Form, LogEntry, Role, Stance, State, Trigger, Verdict
from consultflow.deadlines import next_due
from consultflow.engine import CLOCK_ACTOR
from consultflow.roles import person_id
from consultflow.steps import MarkOverdue, RecordMinutes, ScheduleMeeting
from consultflow.testing.driver import CAST, COMMUNITY, INVITED, TOPIC, Driver
from oracle import check_log_order

MAX_CONSULTATIONS = 3
HERE, THERE = COMMUNITY, "xinghua"
#: The cast as Actors, for the pure core (which takes the actor's roles as given).
PEOPLE: tuple[cf.Actor, ...] = tuple(CAST.values())
#: The people of the community, by id: the driver's directory grants each their cast role here.
#: ``sifasuo`` is the legal adviser of the sub-district the community is placed under.
MEMBERS: tuple[str, ...] = (*CAST, "sifasuo")
#: People who hold nothing anywhere, but may be invited to a matter.
GUESTS: tuple[str, ...] = ("guest-1", "guest-2")
#: People who hold roles only elsewhere (another community, another sub-district) or nowhere, and
#: are never invited here: whatever they ask is refused.
OUTSIDERS: tuple[str, ...] = ("there-committee", "there-resident", "hunan-official", "stranger")
ACTOR_IDS: tuple[str, ...] = (*MEMBERS, *GUESTS)
LI, WANG, ZHANG = "li", "wang", "zhang"
#: Who tries to record for someone else: clerks (committee, working committee) and others.
WOULD_BE_CLERKS: tuple[str, ...] = ("wang", "wc", "wang", "wc", "li", "council", "zhang", "sun", "there-committee")
#: Roles the directory changes during a stream (grants and revocations).
SHUFFLED_ROLES: tuple[Role, ...] = (
    Role.COMMITTEE,
    Role.WORKING_COMMITTEE,
    Role.RESIDENT,
    Role.SUPERVISOR,
    Role.ROTATING_CHAIR,
    Role.EXPERT,
    Role.INSPECTION_GROUP,
)
_CONVENING = frozenset({Role.COMMITTEE, Role.WORKING_COMMITTEE, Role.ROTATING_CHAIR})
_RESIDENTS = frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE})
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
REASON = st.text(st.characters(exclude_categories=("Cs", "Z", "Cc")), min_size=1, max_size=12)
RULE_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"round_limit": 1, "cycle_limit": 2},
    {"escalate_undecided": False, "escalate_unimplemented": True, "round_limit": 2},
    {"consensus": {"kind": "no_sustained_objection"}, "major_needs_residents": False, "min_attendance": 1},
    {"round_open_to": "invitees", "clerk_roles": {Role.COMMITTEE}, "voters_recuse": False, "min_attendance": 2},
)
DELAYS = (
    timedelta(minutes=5),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=10),
    timedelta(days=31),
)


def make_world(variant: dict[str, Any]) -> Driver:
    """A driver (its cast granted its roles in ``HERE``) over a directory that also knows another
    community and the levels above both; the same world for the run and for its replay."""
    directory = cf.MemoryDirectory()
    directory.place(HERE, sub_district="ninghai", district="gulou")
    directory.place(THERE, sub_district="hunan", district="gulou")
    directory.grant(THERE, "there-committee", Role.COMMITTEE, by="test")
    directory.grant(THERE, "there-resident", Role.RESIDENT, by="test")
    directory.grant(cf.sub_district("hunan"), "hunan-official", Role.SUB_DISTRICT, Role.LEGAL_ADVISER, by="test")
    directory.grant(cf.sub_district("ninghai"), "sifasuo", Role.LEGAL_ADVISER, by="test")
    return Driver(directory=directory, **variant)


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
    if trigger is Trigger.INVITE:
        fresh = [p for p in ACTOR_IDS if p not in record.invited]
        pool = fresh if good and fresh else list(ACTOR_IDS)
        people = draw(st.lists(st.sampled_from(pool), unique=True, min_size=1, max_size=3))
        return cf.Invite(consultation=cid, people=tuple(people), reason=draw(TEXT))
    if trigger is Trigger.OPEN_ROUND:
        # duplicates are folded; ghosts (outsiders) are refused
        crowd = (record.invited or INVITED) if good else (*ACTOR_IDS, *OUTSIDERS)
        attendees = draw(st.lists(st.sampled_from(crowd), max_size=4))
        return cf.OpenRound(consultation=cid, agenda=draw(TEXT), attendees=tuple(attendees))
    if trigger is Trigger.SIGN_IN:
        return cf.SignIn(consultation=cid)
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
    if trigger is Trigger.CALL_VOTE:
        body = draw(st.sampled_from([cf.Body.COUNCIL, cf.Body.RESIDENTS_MEETING]))
        members = draw(st.integers(1, 4))
        return cf.CallVote(
            consultation=cid, body=body, members=members, resolution=draw(REASON), measures=_measures(draw, now, good)
        )
    if trigger is Trigger.CAST_VOTE:
        return cf.CastVote(consultation=cid, ballot=draw(st.sampled_from(cf.Ballot)))
    if trigger is Trigger.CLOSE_VOTE:
        return cf.CloseVote(consultation=cid)
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
    if trigger is Trigger.SCHEDULE_MEETING:
        days = draw(st.integers(3, 8) if good else st.integers(0, 8))
        chair = "chen" if good and record.form is Form.CONSULTATION_DAY else draw(st.sampled_from([None, "chen"]))
        return ScheduleMeeting(consultation=cid, meeting_at=now + timedelta(days=days, hours=1), chair=chair)
    if trigger is Trigger.RECORD_MINUTES:
        held = [m.number for m in record.meetings if m.round is not None]
        meeting = held[-1] if good and held else draw(st.integers(1, max(1, len(record.meetings) + 1)))
        correction = draw(st.booleans()) if not good else bool(held) and bool(record.meetings[meeting - 1].minutes)
        text = draw(TEXT) or "会议纪要"
        return RecordMinutes(consultation=cid, meeting=meeting, text=text, correction=correction)
    if trigger is Trigger.DELAY_PLEDGE:  # 承诺制: move a pledge's date, later (good) or any way
        d = record.current_decision
        count = len(d.measures) if d is not None else 0
        measure = draw(st.integers(0, count - 1)) if good and count else draw(st.integers(0, 3))
        pledge = next(
            (p for p in record.pledges if d is not None and (p.decision, p.measure) == (d.number, measure)), None
        )
        base = pledge.due if good and pledge is not None else now
        due = base + timedelta(days=draw(st.integers(1, 30) if good else st.integers(-5, 400)), hours=1)
        return cf.DelayPledge(consultation=cid, measure=measure, due=due, reason=draw(REASON))
    # 提议 intake
    if trigger is Trigger.SUBMIT:
        return cf.Submit(consultation=cid)
    if trigger is Trigger.EDIT_PROPOSAL:
        if good:
            return cf.EditProposal(consultation=cid, title=draw(REASON), note=draw(TEXT))
        return cf.EditProposal(
            consultation=cid,
            topic=draw(st.sampled_from([None, TOPIC, "public-affairs/other", "policy/not-listed"])),
            budget=draw(st.sampled_from([None, Decimal("100"), Decimal("999999")])),
            major=draw(st.sampled_from([None, True, False])),
        )
    if trigger is Trigger.CO_SIGN:
        return cf.CoSign(consultation=cid)
    if trigger is Trigger.ADD_TOPIC:
        slug = draw(
            st.sampled_from(["stray-cats", "stray-cats", "night-parking", "other"] if not good else ["stray-cats"])
        )
        return cf.AddTopic(consultation=cid, slug=slug, name="流浪猫")
    if trigger is Trigger.APPEAL:
        return cf.Appeal(consultation=cid, grounds=draw(REASON))
    if trigger is Trigger.RECONSIDER:
        return cf.Reconsider(consultation=cid, upheld=draw(st.booleans()), ruling=draw(REASON))
    raise AssertionError(trigger)  # pragma: no cover


CONSULTATION_TRIGGERS = tuple(t for t in Trigger if t is not Trigger.PROPOSE)
# Guided play tries forward steps first and gives up (escalate, withdraw, reject) only when stuck,
# so that the loops and the late steps get their turn; ``anything`` and ``tick`` take the rest.
FORWARD = (
    Trigger.NOTIFY,
    Trigger.SCHEDULE_MEETING,
    Trigger.OPEN_ROUND,
    Trigger.SIGN_IN,
    Trigger.RECORD_OPINION,
    Trigger.CLOSE_ROUND,
    Trigger.RECORD_MINUTES,
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
    # 提议 intake
    Trigger.SUBMIT,
    Trigger.EDIT_PROPOSAL,
    Trigger.CO_SIGN,
    Trigger.ADD_TOPIC,
)
GIVING_UP = (Trigger.ESCALATE, Trigger.WITHDRAW, Trigger.REJECT, Trigger.APPEAL, Trigger.RECONSIDER)
WEIGHT = {Trigger.RECORD_OPINION: 4, Trigger.REPORT_PROGRESS: 3}  # a round needs several opinions


Prior = Consultation | None  # the record a step was taken on (None: a proposal)


class ConsultationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rules_cfg: dict[str, Any] = {}
        self.world(make_world({}))
        self.ids: list[str] = []
        # everything that happened, to replay: ("cmd", command, by, at, outcome), ("tick", at, ids),
        # ("grant" | "revoke", scope, person, role, at)
        self.stream: list[tuple[Any, ...]] = []
        # the record each logged entry was written on, by (consultation, seq): what it was related to
        self.prior: dict[tuple[str, int], Prior] = {}

    def world(self, driver: Driver) -> None:
        self.engine, self.clock = driver.engine, driver.clock
        self.procedure = self.engine.procedure
        assert driver.directory is not None
        self.directory: cf.MemoryDirectory = driver.directory

    @initialize(variant=st.sampled_from(RULE_VARIANTS))
    def choose_rules(self, variant: dict[str, Any]) -> None:
        self.rules_cfg = variant
        self.world(make_world(variant))

    # ---- plumbing ------------------------------------------------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        store = self.engine.store
        return (
            tuple(self.engine.find()),
            tuple(self.engine.history(cid) for cid in self.ids),
            store.outbox(),  # type: ignore[attr-defined]
        )

    def roles_now(self, person: str) -> frozenset[Role]:
        return self.held(person_id(person), self.clock.now())

    def held(self, person: str, at: datetime) -> frozenset[Role]:
        """The roles ``person`` held in ``HERE`` at ``at``, read from the directory's record of grants
        (the community's and its levels'), not from the answer the engine gets."""
        scopes = {HERE, cf.sub_district("ninghai"), cf.district("gulou")}
        return frozenset(
            g.role
            for g in self.directory.grants(person=person)
            if g.scope in scopes and (g.since is None or g.since <= at) and (g.until is None or at < g.until)
        )

    def execute(self, command: cf.Command, by: str | cf.Actor) -> cf.Step | cf.Refused:
        """Run ``command`` as ``by``, check what a step or a refusal must be, and return it."""
        now = self.clock.now()
        actor_id = by.id if isinstance(by, cf.Actor) else person_id(by)
        before = self.snapshot()
        prior: Prior = None
        if isinstance(command, cf.ConsultationCommand):
            prior = self.engine.get(command.consultation)
        explained = self.engine.explain(command, by=by)
        if isinstance(by, cf.Actor):
            # the roles a caller claims count for nothing: the directory decides
            plain = self.engine.explain(command, by=by.id)
            assert (explained is None) == (plain is None), (by, explained, plain)
            if explained is not None and plain is not None:
                assert (explained.code, explained.guard, dict(explained.data)) == (
                    plain.code,
                    plain.guard,
                    dict(plain.data),
                )
        permissions: dict[str, cf.Permission] = {}
        if isinstance(command, cf.ConsultationCommand):
            permissions = {p.trigger: p for p in self.engine.allowed(command.consultation, by=by)}
        refused: cf.Refused | None = None
        try:
            step = self.engine.run(command, by=by)
        except cf.Refused as exc:
            refused = exc
        if refused is not None:
            # a refusal changes nothing: record, history, outbox
            assert self.snapshot() == before, f"refused {command!r} but something changed"
            assert explained is not None, f"explain let {command!r} through but execute refused it"
            assert explained.code == refused.code, (explained, refused)
            assert refused.explain("en")
            assert refused.explain("zh")
            self.stream.append(("cmd", command, by, now, refused.code))
            return refused
        assert explained is None, f"explain said {explained!r} but execute went through"
        self.stream.append(("cmd", command, by, now, "ok"))
        rec = step.record
        if isinstance(command, cf.Propose):
            self.ids.append(rec.id)
            old_version = 0
        else:
            # allowed() checks a subset of execute's parameters: what went through was allowed, in that role
            permission = permissions[command.trigger.value]
            # a clerk's step for someone else included: allowed() tells a clerk they may record for others
            assert permission.allowed, (command, permission.refusal)
            if permission.allowed:
                assert permission.role == step.entries[0].role
            old_version = before[0][[r.id for r in before[0]].index(rec.id)].version
        assert step.entries, "every step logs at least one entry"
        assert [e.seq for e in step.entries] == list(range(old_version + 1, rec.version + 1))
        assert self.engine.history(rec.id)[old_version:] == step.entries
        assert self.engine.get(rec.id) == rec
        assert all(e.at == now and e.actor == actor_id for e in step.entries)
        for e in step.entries:
            self.prior[(rec.id, e.seq)] = prior
        outbox = self.engine.store.outbox()  # type: ignore[attr-defined]
        assert outbox[len(before[2]) :] == step.notices
        for e in step.entries:  # the trusted hot-path entries are valid records
            assert LogEntry.from_json_dict(e.to_json_dict()) == e
        if isinstance(command, cf.OpenRound) and prior is not None:
            for person in command.attendees:  # no ghost signs in
                assert self.takes_part(prior, person, self.roles_now(person)), person
        return step

    def takes_part(self, record: Consultation, person: str, roles: frozenset[Role]) -> bool:
        """Who takes part in a round, as the spec says it: the invited, the convenors, and - when the
        rounds are open to them - the residents. Never an outsider."""
        if person in record.invited or not roles.isdisjoint(_CONVENING):
            return True
        open_to = self.procedure.parameters.round_open_to
        return open_to == "invitees_and_residents" and not roles.isdisjoint(_RESIDENTS)

    def pick(self, data: st.DataObject) -> Consultation:
        cid = data.draw(st.sampled_from(self.ids), label="consultation")
        return self.engine.get(cid)

    # ---- rules -----------------------------------------------------------------------------------------
    @precondition(lambda self: len(self.ids) < MAX_CONSULTATIONS)
    @rule(
        actor=st.sampled_from((LI, WANG, ZHANG, *MEMBERS, *OUTSIDERS)),
        topic=st.sampled_from(
            [TOPIC, TOPIC, "public-benefit/micro-greening", "policy/not-listed", "public-affairs/other"]
        ),
        draft=st.sampled_from([False, False, True]),
        carrier=st.sampled_from(Carrier),
        form=st.sampled_from(Form),
        major=st.booleans(),
        budget=st.sampled_from([None, Decimal("5000"), Decimal("999999")]),
        title=REASON,
    )
    def propose(
        self,
        actor: str,
        topic: str,
        carrier: Carrier,
        form: Form,
        major: bool,
        budget: Decimal | None,
        title: str,
        draft: bool,
    ) -> None:
        command = cf.Propose(
            community=COMMUNITY,
            topic=topic,
            title=title,
            carrier=carrier,
            form=form,
            major=major,
            budget=budget,
            draft=draft,
        )
        outcome = self.execute(command, actor)
        if actor in OUTSIDERS:
            assert isinstance(outcome, cf.Refused)
            assert outcome.code == "role_not_allowed"

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def anything(self, data: st.DataObject) -> None:
        """Any command, by anyone of the community or invitable, on any consultation: mostly refused."""
        record = self.pick(data)
        trigger = data.draw(st.sampled_from(CONSULTATION_TRIGGERS), label="trigger")
        actor = data.draw(st.sampled_from(ACTOR_IDS), label="actor")
        command = build(trigger, record, self.clock.now(), data.draw, good=False)
        self.execute(command, actor)

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def outsider_tries(self, data: st.DataObject) -> None:
        """Someone with no role here - a committee member or resident of another community, another
        sub-district's official, a stranger - asks for a step that could go through: always refused,
        on the state or on the role."""
        record = self.pick(data)
        trigger = data.draw(st.sampled_from(CONSULTATION_TRIGGERS), label="trigger")
        outsider = data.draw(st.sampled_from(OUTSIDERS), label="outsider")
        outcome = self.execute(build(trigger, record, self.clock.now(), data.draw, good=True), outsider)
        assert isinstance(outcome, cf.Refused), (outsider, trigger)
        if outcome.guard == "state":
            assert outcome.code == "invalid_in_state", outcome
        else:
            assert outcome.guard == "role", outcome
            named = frozenset().union(*(o.roles for o in self.procedure.options(record.state, trigger) or ()))
            # a step open to whoever takes part says the outsider takes none; any other, which roles may
            assert outcome.code == ("not_taking_part" if Role.INVITEE in named else "role_not_allowed"), outcome

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def as_the_clock(self, data: st.DataObject) -> None:
        """Nobody acts under the clock's own id, however it is spelt: an error, and nothing written."""
        record = self.pick(data)
        trigger = data.draw(st.sampled_from(CONSULTATION_TRIGGERS), label="trigger")
        spellings: tuple[str | cf.Actor, ...] = (CLOCK_ACTOR, CLOCK_ACTOR.id, "Consultflow:CLOCK")
        by = data.draw(st.sampled_from(spellings), label="by")
        command = build(trigger, record, self.clock.now(), data.draw, good=True)
        before = self.snapshot()
        for attempt in (self.engine.explain, self.engine.execute):
            with pytest.raises(cf.InvalidInput, match="consultflow:clock"):
                attempt(command, by=by)
        with pytest.raises(cf.InvalidInput, match="consultflow:clock"):
            self.engine.allowed(record.id, by=by)
        assert self.snapshot() == before

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def claimed_roles(self, data: st.DataObject) -> None:
        """A caller hands over an Actor with roles the directory does not back (the system's too):
        the outcome is exactly the one the person's id alone gets."""
        record = self.pick(data)
        trigger = data.draw(st.sampled_from(CONSULTATION_TRIGGERS), label="trigger")
        who = data.draw(st.sampled_from((*MEMBERS, *GUESTS, *OUTSIDERS)), label="who")
        claimed = data.draw(st.sets(st.sampled_from(Role), min_size=1, max_size=4), label="claimed")
        good = data.draw(st.booleans(), label="good")
        outcome = self.execute(build(trigger, record, self.clock.now(), data.draw, good=good), cf.Actor(who, claimed))
        if trigger is Trigger.MARK_OVERDUE:  # nobody is the clock
            assert isinstance(outcome, cf.Refused)
            assert (outcome.guard, outcome.code) in {("state", "invalid_in_state"), ("role", "role_not_allowed")}

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def invite(self, data: st.DataObject) -> None:
        """The committee invites more people after the notice (the think tank, guests)."""
        open_ = [r for r in self.engine.find() if r.state in (State.NOTIFIED, State.CONSULTING)]
        record = data.draw(st.sampled_from(open_), label="consultation") if open_ else self.pick(data)
        by = data.draw(st.sampled_from(("wang", "wc", "li")), label="by")
        outcome = self.execute(build(Trigger.INVITE, record, self.clock.now(), data.draw, good=True), by)
        if isinstance(outcome, cf.Step):
            (entry,) = outcome.entries
            assert entry.event is Event.INVITED
            assert outcome.record.invited[: len(record.invited)] == record.invited
            assert set(outcome.record.invited) - set(record.invited) == set(entry.data["people"])  # type: ignore[arg-type]

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def proxy(self, data: st.DataObject) -> None:
        """A clerk signs someone in or records their opinion (代为记录); others try it too."""
        open_rounds = [
            r for r in self.engine.find() if r.current_round is not None and r.current_round.closed_at is None
        ]
        record = data.draw(st.sampled_from(open_rounds), label="consultation") if open_rounds else self.pick(data)
        clerk = data.draw(st.sampled_from(WOULD_BE_CLERKS), label="clerk")
        usual = (*record.invited, *record.invited, "li", "wu", "zhang", "wang")
        behalf = data.draw(st.sampled_from((*usual, *ACTOR_IDS, *OUTSIDERS, clerk)), label="behalf")
        command: cf.Command
        if data.draw(st.booleans(), label="sign in"):
            command = cf.SignIn(consultation=record.id, on_behalf_of=behalf)
        else:
            stance = data.draw(st.sampled_from(Stance), label="stance")
            command = cf.RecordOpinion(consultation=record.id, stance=stance, on_behalf_of=behalf)
        clerk_roles = self.procedure.parameters.clerk_roles
        is_clerk = not self.roles_now(clerk).isdisjoint(clerk_roles)
        takes_part = self.takes_part(record, behalf, self.roles_now(behalf))
        outcome = self.execute(command, clerk)
        if isinstance(outcome, cf.Refused):
            if outcome.guard == "clerk_on_behalf":
                assert outcome.code == ("on_behalf_of_self" if behalf == clerk else "not_a_clerk"), outcome
                assert behalf == clerk or not is_clerk, outcome
            return
        assert is_clerk, (clerk, behalf)
        assert behalf != clerk
        assert takes_part, behalf
        (entry,) = outcome.entries
        assert (entry.actor, entry.data["on_behalf_of"]) == (person_id(clerk), behalf)
        rnd = outcome.record.rounds[-1]
        assert behalf in rnd.attendees
        if isinstance(command, cf.RecordOpinion):
            op = rnd.opinions[-1]
            assert (op.participant, op.recorded_by) == (behalf, person_id(clerk))

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def steps_allowed(self, data: st.DataObject) -> None:
        """A burst of steps that ``allowed`` says someone may take now, with plausible content."""
        cid = data.draw(st.sampled_from(self.ids), label="consultation")
        for _ in range(data.draw(st.integers(1, 12), label="burst")):
            record = self.engine.get(cid)
            now = self.clock.now()
            schedule = record.schedule
            waits: list[datetime] = []
            if record.state is State.NOTIFIED and schedule is not None and now < schedule.meeting_at:
                waits.append(schedule.meeting_at)
            pending = record.pending_meeting  # a later meeting announced (ScheduleMeeting) waits too
            if record.state is State.CONSULTING and pending is not None and now < pending.at:
                waits.append(pending.at)
            if record.invitation_notice_ends is not None and now < record.invitation_notice_ends:
                waits.append(record.invitation_notice_ends)
            # waiting for the meeting, or for an invitation's notice, is the forward step here
            wait: bool = bool(waits) and data.draw(st.booleans(), label="wait")
            if wait:
                self.clock.set(max(waits))
            allowed = {
                (Trigger(p.trigger), actor)
                for actor in ACTOR_IDS
                for p in self.engine.allowed(cid, by=actor)
                if p.allowed
            }
            triggers = {t for t, _ in allowed}
            forward = [t for t in FORWARD for _ in range(WEIGHT.get(t, 1)) if t in triggers]
            options = forward or [t for t in GIVING_UP if t in triggers]
            if not options:
                return
            trigger = data.draw(st.sampled_from(options), label="trigger")
            actors = sorted(a for t, a in allowed if t is trigger)
            actor = data.draw(st.sampled_from(actors), label="actor")
            self.execute(build(trigger, record, self.clock.now(), data.draw, good=True), actor)
            if data.draw(st.integers(0, 3), label="pause") == 0:
                self.clock.advance(hours=data.draw(st.integers(1, 72), label="hours"))

    @rule(data=st.data())
    def directory_changes(self, data: st.DataObject) -> None:
        """Someone joins or leaves a role, here or in the other community, a second from now (after
        every entry so far): the log keeps what held when each step was taken."""
        self.clock.advance(timedelta(seconds=1))
        at = self.clock.now()
        current = sorted(
            (
                (g.scope, g.person, g.role)
                for g in self.directory.grants()
                if g.until is None and g.scope in {HERE, THERE}
            ),
            key=str,
        )
        if data.draw(st.integers(0, 3), label="someone leaves") == 0:
            scope, person, role = data.draw(st.sampled_from(current), label="grant")
        else:
            person = data.draw(st.sampled_from((*MEMBERS, *GUESTS)), label="person")
            role = data.draw(st.sampled_from(SHUFFLED_ROLES), label="role")
            scope = data.draw(st.sampled_from((HERE, HERE, THERE)), label="scope")
        # toggled: what is held is revoked, what is not is granted
        change = "revoke" if (scope, person, role) in current else "grant"
        if change == "revoke":
            self.directory.revoke(scope, person, role, at=at, by="test")
            assert role not in self.directory.roles(person, scope, at)
        else:
            self.directory.grant(scope, person, role, at=at, by="test")
            assert role in self.directory.roles(person, scope, at)
        self.stream.append((change, scope, person, role, at))

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
            assert all(e.actor == CLOCK_ACTOR.id and e.role == "system" and e.at == now for e in step.entries)
            assert step.record.missed[: len(before[step.record.id].missed)] == before[step.record.id].missed
            for e in step.entries:
                self.prior[(step.record.id, e.seq)] = before[step.record.id]
        touched = {s.record.id for s in steps}
        for r in self.engine.find():
            if r.id not in touched:
                assert r == before[r.id], "tick changed a consultation that was not due"
        # everything overdue was reported: nothing active is still due
        due = self.engine.find(cf.Query(due_before=now))
        assert [r.id for r in due if r.active and r.state is not State.ESCALATED] == []
        assert self.engine.tick(now, ahead_of_clock=True) == ()  # each deadline once

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
            check_order(self.engine.history(cid), self.procedure)

    @invariant()
    def every_entry_is_backed(self) -> None:
        """Every logged (actor, role): the clock's; or a role the directory gave the actor in the
        consultation's community at the entry's moment; or a relation to the matter - its proposer,
        someone it invited, the chair it named (who holds the rotating chair's role then)."""
        for cid in self.ids:
            history = self.engine.history(cid)
            assert self.engine.get(cid).community == HERE
            for e in history:
                prior = self.prior[(cid, e.seq)]  # KeyError: an entry nobody saw written
                assert person_id(e.actor) == e.actor, e
                if e.actor == CLOCK_ACTOR.id:
                    assert e.role == Role.SYSTEM.value, e
                    continue
                role = Role(e.role)
                held = self.held(e.actor, e.at)
                assert held == self.directory.roles(e.actor, HERE, e.at), (e.actor, e.at)  # the directory agrees
                where = (cid, e.seq, e.event.value, e.actor, e.role, sorted(held))
                assert role is not Role.SYSTEM, where
                if role is Role.PROPOSER:
                    assert prior is not None, where
                    assert prior.proposer == e.actor, where
                elif role is Role.INVITEE:
                    assert prior is not None, where
                    assert e.actor in prior.invited, where
                elif role is Role.ROTATING_CHAIR:
                    assert prior is not None, where
                    assert prior.chair == e.actor, where
                    assert role in held, where
                else:
                    assert role in held, where
                if e.event in (Event.OPINION_RECORDED, Event.SIGNED_IN):
                    assert prior is not None, where
                    person = str(e.data.get("on_behalf_of", e.actor))
                    assert self.takes_part(prior, person, self.held(person, e.at)), where

    def teardown(self) -> None:
        """The same stream, at the same times, into a fresh engine: the same outcomes and hashes."""
        driver = make_world(self.rules_cfg)
        engine, clock, directory = driver.engine, driver.clock, driver.directory
        assert directory is not None
        for item in self.stream:
            if item[0] == "tick":
                _, at, ids = item
                clock.set(at)
                assert [s.record.id for s in engine.tick()] == ids
                continue
            if item[0] in {"grant", "revoke"}:
                change, scope, person, role, at = item
                clock.set(at)
                if change == "grant":
                    directory.grant(scope, person, role, at=at, by="test")
                else:
                    directory.revoke(scope, person, role, at=at, by="test")
                continue
            _, command, by, at, outcome = item
            clock.set(at)
            try:
                engine.run(command, by=by)
                got = "ok"
            except cf.Refused as refused:
                got = refused.code
            assert got == outcome, (command, got, outcome)
        for cid in self.ids:
            assert [e.hash for e in engine.history(cid)] == [e.hash for e in self.engine.history(cid)]
            assert engine.get(cid) == self.engine.get(cid)


def check_order(entries: Sequence[LogEntry], procedure: cf.Procedure) -> None:
    """The six-step order oracle, and the internal steps this issue added: an invitation is made
    after the notice and before a decision (notified or consulting); a sign-in needs an open round."""
    round_open = False
    for e in entries:
        if e.event is Event.ROUND_OPENED:
            round_open = True
        elif e.event is Event.ROUND_CLOSED:
            round_open = False
        elif e.event is Event.INVITED:
            assert e.source is e.target, e
            assert e.source in (State.NOTIFIED, State.CONSULTING), e
            assert e.data["people"], e
        elif e.event is Event.SIGNED_IN:
            assert e.source is e.target is State.CONSULTING, e
            assert round_open, f"seq {e.seq}: signed in with no open round"
        elif e.event in (Event.RECONSULTATION_REQUESTED, Event.RESUMED):
            round_open = False
    # the oracle predates these two internal steps: it reads the rest of the log
    check_log_order([e for e in entries if e.event not in (Event.INVITED, Event.SIGNED_IN)], procedure)


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
