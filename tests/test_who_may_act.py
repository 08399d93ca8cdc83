"""Who may act (issue 7): the directory is the one source of roles, held per community.

Each test is one attack the engine used to let through, run on the memory and the SQLite store,
with engines built here (not the test Driver) and every role granted in the test, so the
directory is what decides. Every refusal is checked for its code, for wording in both languages
that names who or what was refused, and for having written nothing (records, logs, outbox).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import consultflow as cf
from consultflow import Role
from consultflow.steps import ScheduleMeeting

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
PACE = timedelta(hours=1)
HERE = "taoyuan"  # community A, where the matters are
THERE = "xinghe"  # community B
TOPIC = "public-affairs/night-parking"

AnyStore = cf.MemoryStore | cf.SQLiteStore
Snapshot = tuple[tuple[cf.Consultation, ...], tuple[tuple[cf.LogEntry, ...], ...], tuple[cf.Notice, ...]]


class World:
    """An engine over ``store`` with a MemoryDirectory (or the directory given), a simulated clock
    that moves one hour before each command, and communities HERE and THERE."""

    def __init__(
        self, store: AnyStore, procedure: cf.Procedure | None = None, directory: cf.Directory | None = None
    ) -> None:
        self.store = store
        self.clock = cf.SimulatedClock(T0)
        self.directory = cf.MemoryDirectory()
        catalogue = cf.Catalogue().with_community(HERE, {TOPIC: "夜间停车"}).with_community(THERE, {TOPIC: "夜间停车"})
        counter = itertools.count(1)
        self.engine = cf.Engine(
            procedure or cf.six_step(),
            store,
            clock=self.clock,
            catalogue=catalogue,
            directory=directory if directory is not None else self.directory,
            ids=lambda: f"c-{next(counter)}",
        )

    def grant(self, person: str, *roles: Role, scope: str = HERE) -> None:
        self.directory.grant(scope, person, *roles, by="admin")

    def run(self, command: cf.Command, by: str | cf.Actor) -> cf.Consultation:
        self.clock.advance(PACE)
        return self.engine.execute(command, by=by)

    def snapshot(self) -> Snapshot:
        records = tuple(self.engine.find())
        return records, tuple(self.engine.history(r.id) for r in records), tuple(self.store.outbox())

    def refused(self, command: cf.Command, by: str | cf.Actor, code: str, *mentions: str) -> cf.Refused:
        """``command`` by ``by`` is refused with ``code``; both languages name ``mentions``; nothing written."""
        before = self.snapshot()
        self.clock.advance(PACE)
        dry = self.engine.explain(command, by=by)
        assert dry is not None
        assert dry.code == code, dry.explain("en")
        with pytest.raises(cf.Refused) as info:
            self.engine.execute(command, by=by)
        refusal = info.value
        assert refusal.code == code, refusal.explain("en")
        en, zh = refusal.explain("en"), refusal.explain("zh")
        for text in mentions:
            assert text in en, en
            assert text in zh, zh
        assert self.snapshot() == before
        return refusal

    def last(self, cid: str) -> cf.LogEntry:
        return self.engine.history(cid)[-1]

    # ---- the steps, with the content each needs --------------------------------------------------
    def propose(self, by: str | cf.Actor, community: str = HERE) -> str:
        command = cf.Propose(
            community=community, topic=TOPIC, title="夜间停车", carrier=cf.Carrier.DECISION, form=cf.Form.INVITATION
        )
        return self.run(command, by).id

    def notify(self, cid: str, invite: tuple[str, ...], chair: str | None = None) -> cf.Notify:
        meeting = self.clock.now() + PACE + timedelta(days=4)
        return cf.Notify(consultation=cid, meeting_at=meeting, invite=invite, chair=chair)

    def to_meeting(self, cid: str) -> None:
        schedule = self.engine.get(cid).schedule
        assert schedule is not None
        self.clock.set(schedule.meeting_at)

    def opinion(self, cid: str, by: str | cf.Actor, **fields: Any) -> cf.Consultation:
        return self.run(cf.RecordOpinion(consultation=cid, stance=cf.Stance.SUPPORT, **fields), by)

    def decide(self, cid: str) -> cf.Decide:
        due = self.clock.now() + timedelta(days=30)
        measure = cf.Measure(title="划线", owner="wang", due=due, budget=Decimal(1000))
        return cf.Decide(consultation=cid, resolution="东侧空地夜间开放", measures=(measure,))

    def to_decided(self, cid: str, voters: tuple[str, ...], convenor: str = "wang") -> cf.Consultation:
        """Notice inviting ``voters``, the meeting, a round where each supports, the decision."""
        self.run(self.notify(cid, voters), convenor)
        self.to_meeting(cid)
        self.run(cf.OpenRound(consultation=cid), convenor)
        for voter in voters:
            self.opinion(cid, voter)
        self.run(cf.CloseRound(consultation=cid), convenor)
        return self.run(self.decide(cid), convenor)


def review(cid: str) -> cf.ReviewLegality:
    return cf.ReviewLegality(consultation=cid, verdict=cf.Verdict.LAWFUL)


def mark_overdue(cid: str) -> cf.Command:
    # the clock's own command: not public, and command_from_dict refuses it to callers
    from consultflow.steps import MarkOverdue

    return MarkOverdue(consultation=cid)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    made: AnyStore = cf.MemoryStore() if request.param == "memory" else cf.SQLiteStore(tmp_path / "x.db")
    with made:
        yield made


@pytest.fixture
def w(store: AnyStore) -> World:
    return World(store)


# ---- the engine's own inputs -------------------------------------------------------------------------
def test_an_engine_without_a_directory_is_refused(store: AnyStore) -> None:
    with pytest.raises(cf.InvalidInput) as info:
        cf.Engine(cf.six_step(), store, clock=cf.SimulatedClock(T0), catalogue=cf.Catalogue())
    assert "MemoryDirectory" in str(info.value)
    assert "TrustCallerRoles" in str(info.value)


def test_an_actor_with_an_unknown_role_is_an_error() -> None:
    with pytest.raises(cf.ConsultflowError):
        cf.Actor("x", roles={"god"})


def test_trust_caller_roles_takes_claimed_roles_but_never_system(store: AnyStore) -> None:
    w = World(store, directory=cf.TrustCallerRoles())
    proposal = cf.Propose(community=HERE, topic=TOPIC, title="t", carrier=cf.Carrier.DECISION, form=cf.Form.INVITATION)
    w.refused(proposal, "li", "role_not_allowed", "li")  # a bare id brings no roles: the app gives them
    cid = w.propose(cf.Actor("li", {Role.RESIDENT}))
    assert (w.last(cid).actor, w.last(cid).role) == ("li", "resident")
    w.run(w.notify(cid, ("li",)), cf.Actor("wang", {Role.COMMITTEE}))
    assert (w.last(cid).actor, w.last(cid).role) == ("wang", "committee")
    w.clock.advance(timedelta(days=40))  # the decision deadline has passed
    w.refused(mark_overdue(cid), cf.Actor("cron", {Role.SYSTEM, Role.COMMITTEE}), "role_not_allowed", "cron")


# ---- the engine believed the roles the caller put on Actor ---------------------------------------------
def test_claimed_roles_are_ignored_the_directory_decides(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    for person in ("li", "wu", "zhang"):
        w.grant(person, Role.RESIDENT)
    cid = w.propose("li")
    w.to_decided(cid, ("li", "wu", "zhang"))
    w.refused(review(cid), cf.Actor("nobody", {Role.SUPERVISOR}), "role_not_allowed", "nobody")
    w.refused(review(cid), "nobody", "role_not_allowed", "nobody")
    # the committee member who decided claims to be a supervisor: still only the committee
    w.refused(review(cid), cf.Actor("wang", {Role.SUPERVISOR}), "role_not_allowed", "wang")
    w.grant("nobody", Role.SUPERVISOR)  # now the directory says so
    assert w.run(review(cid), "nobody").state is cf.State.FEEDBACK
    assert (w.last(cid).actor, w.last(cid).role) == ("nobody", "supervisor")


def test_only_the_clock_marks_deadlines(w: World) -> None:
    w.grant("li", Role.RESIDENT)
    cid = w.propose("li")
    w.clock.advance(timedelta(days=15))  # nobody answered the proposal
    w.refused(mark_overdue(cid), cf.Actor("cron", {Role.SYSTEM}), "role_not_allowed", "cron")
    with pytest.raises(cf.InvalidInput, match="the library's own id"):  # nobody acts under the clock's id
        w.engine.execute(mark_overdue(cid), by="consultflow:clock")
    with pytest.raises(cf.InvalidInput):
        w.directory.grant(HERE, "cron", Role.SYSTEM)
    offered = [p.trigger for p in w.engine.allowed(cid, by=cf.Actor("cron", {Role.SYSTEM}))]
    assert offered
    assert "mark_overdue" not in offered
    (step,) = w.engine.tick()
    assert [(e.event.value, e.actor, e.role) for e in step.entries] == [
        ("deadline_missed", "consultflow:clock", "system")
    ]


# ---- roles were global ---------------------------------------------------------------------------------
def test_a_committee_member_of_another_community_holds_no_role_here(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    for person in ("li", "wu", "zhang"):
        w.grant(person, Role.RESIDENT)
    w.grant("bob", Role.COMMITTEE, scope=THERE)
    w.grant("mei", Role.RESIDENT, scope=THERE)
    cid = w.propose("li")
    w.refused(w.notify(cid, ("li", "wu", "zhang")), "bob", "role_not_allowed", "bob")
    w.run(w.notify(cid, ("li", "wu", "zhang")), "wang")
    w.to_meeting(cid)
    w.refused(cf.OpenRound(consultation=cid), "bob", "role_not_allowed", "bob")
    w.run(cf.OpenRound(consultation=cid), "wang")
    # a step open to whoever takes part says so, rather than listing fifteen roles
    w.refused(cf.RecordOpinion(consultation=cid, stance=cf.Stance.SUPPORT), "bob", "not_taking_part", "bob")
    for person in ("li", "wu", "zhang"):
        w.opinion(cid, person)
    w.refused(cf.CloseRound(consultation=cid), "bob", "role_not_allowed", "bob")
    w.run(cf.CloseRound(consultation=cid), "wang")
    w.refused(w.decide(cid), "bob", "role_not_allowed", "bob")
    w.refused(cf.Withdraw(consultation=cid, reason="不办了"), "bob", "role_not_allowed", "bob")
    assert not any(p.allowed for p in w.engine.allowed(cid, by="bob"))
    # in his own community bob is the committee
    theirs = w.propose("mei", community=THERE)
    w.run(w.notify(theirs, ("mei",)), "bob")
    assert (w.last(theirs).actor, w.last(theirs).role) == ("bob", "committee")


# ---- anyone recorded an opinion and counted toward quorum ----------------------------------------------
def test_only_people_taking_part_give_opinions_and_count(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    w.grant("li", Role.RESIDENT)
    w.grant("expert_x", Role.EXPERT)  # of this community's think tank, but not invited
    w.grant("mei", Role.RESIDENT, scope=THERE)
    cid = w.propose("li")
    w.run(w.notify(cid, ("li",)), "wang")
    w.to_meeting(cid)
    w.run(cf.OpenRound(consultation=cid), "wang")
    opinion = cf.RecordOpinion(consultation=cid, stance=cf.Stance.SUPPORT)
    w.refused(opinion, "ghost", "not_taking_part", "ghost")
    w.refused(opinion, "mei", "not_taking_part", "mei")
    w.refused(opinion, "expert_x", "not_taking_part", "expert_x")
    w.refused(cf.SignIn(consultation=cid), "ghost", "not_taking_part", "ghost")
    w.refused(cf.SignIn(consultation=cid), "expert_x", "not_taking_part", "expert_x")
    w.opinion(cid, "li")
    w.opinion(cid, "wang")
    w.run(cf.CloseRound(consultation=cid), "wang")
    record = w.engine.get(cid)
    assert record.rounds[-1].attendees == ("li", "wang")
    refusal = w.refused(w.decide(cid), "wang", "quorum_not_met", "2", "3")
    assert (refusal.data["attended"], refusal.data["required"]) == (2, 3)


def test_rounds_open_to_invitees_refuse_uninvited_residents(store: AnyStore) -> None:
    w = World(store, procedure=cf.six_step().variant("closed", "t1", parameters={"round_open_to": "invitees"}))
    w.grant("wang", Role.COMMITTEE)
    w.grant("li", Role.RESIDENT)
    w.grant("wu", Role.RESIDENT)
    cid = w.propose("li")
    w.run(w.notify(cid, ("li",)), "wang")
    w.to_meeting(cid)
    w.refused(cf.OpenRound(consultation=cid, attendees=("li", "wu")), "wang", "not_taking_part", "wu")
    w.run(cf.OpenRound(consultation=cid), "wang")
    w.refused(cf.RecordOpinion(consultation=cid, stance=cf.Stance.OPPOSE), "wu", "not_taking_part", "wu")
    assert w.opinion(cid, "li").rounds[-1].opinions[0].participant == "li"


def test_ghost_attendees_cannot_manufacture_a_quorum(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    w.grant("li", Role.RESIDENT)
    cid = w.propose("li")
    w.run(w.notify(cid, ("li",)), "wang")
    w.to_meeting(cid)
    ghosts = cf.OpenRound(consultation=cid, attendees=("ghost1", "ghost2", "ghost3"))
    w.refused(ghosts, "wang", "not_taking_part", "ghost1")
    w.refused(cf.OpenRound(consultation=cid, attendees=("li", "ghost2")), "wang", "not_taking_part", "ghost2")
    record = w.run(cf.OpenRound(consultation=cid, attendees=("li",)), "wang")
    assert record.rounds[-1].attendees == ("li",)
    w.opinion(cid, "wang")
    w.run(cf.CloseRound(consultation=cid), "wang")
    tally = w.engine.get(cid).rounds[-1].tally
    assert tally is not None
    assert (tally.attended, tally.quorum_met, tally.consensus) == (2, False, False)
    w.refused(w.decide(cid), "wang", "quorum_not_met", "2", "3")


# ---- conflicts of interest (回避) ------------------------------------------------------------------------
def test_a_proposer_who_is_also_a_supervisor_recuses(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    w.grant("lily", Role.RESIDENT, Role.COMMITTEE, Role.SUPERVISOR, Role.INSPECTION_GROUP, Role.ROTATING_CHAIR)
    for person in ("li", "wu", "zhang"):
        w.grant(person, Role.RESIDENT)
    w.grant("sun", Role.SUPERVISOR)
    w.grant("zhou", Role.INSPECTION_GROUP)
    cid = w.propose("lily")
    w.refused(w.notify(cid, ("li",), chair="lily"), "wang", "chair_is_proposer", "lily")
    w.refused(w.notify(cid, ("li",), chair="wu"), "wang", "chair_not_a_chair", "wu")
    w.to_decided(cid, ("li", "wu", "zhang"))
    w.refused(review(cid), "lily", "proposer_recuses", "lily")
    w.run(review(cid), "sun")
    w.run(cf.Publish(consultation=cid, channels=(cf.Channel.NOTICE_BOARD,), summary="公示"), "wang")
    w.run(cf.ReportProgress(consultation=cid, measure=0, percent=100), "wang")
    w.run(cf.StartSupervision(consultation=cid), "wang")
    w.refused(cf.Inspect(consultation=cid, passed=True), "lily", "proposer_recuses", "lily")
    w.run(cf.Inspect(consultation=cid, passed=True), "zhou")
    w.refused(cf.Close(consultation=cid), "lily", "proposer_recuses", "lily")
    assert w.run(cf.Close(consultation=cid), "wang").state is cf.State.CLOSED


def test_whoever_voted_or_decided_does_not_review(w: World) -> None:
    w.grant("wang", Role.COMMITTEE, Role.SUPERVISOR)
    w.grant("li", Role.RESIDENT)
    w.grant("wu", Role.RESIDENT)
    w.grant("sun", Role.RESIDENT, Role.SUPERVISOR)
    w.grant("qian", Role.SUPERVISOR)
    cid = w.propose("li")
    w.to_decided(cid, ("li", "wu", "sun"))
    refusal = w.refused(review(cid), "sun", "reviewer_voted", "sun")
    assert refusal.data["round"] == 1
    w.refused(review(cid), "wang", "reviewer_not_independent", "wang")
    assert w.run(review(cid), "qian").reviews[-1].reviewer == "qian"


# ---- ids that look alike --------------------------------------------------------------------------------
def test_look_alike_ids_are_one_person_and_invisible_characters_are_refused(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    w.grant("ＬＩ", Role.RESIDENT)  # full-width capitals: li
    w.grant("Wu", Role.RESIDENT)
    assert [g.person for g in w.directory.grants(scope=HERE) if g.role is Role.RESIDENT] == ["li", "wu"]
    for hidden in ("li\u200b", "li\u202e", "\u200dli"):
        with pytest.raises(cf.InvalidInput) as info:
            cf.Actor(hidden)
        assert "U+" in str(info.value)
        with pytest.raises(cf.ValidationError):
            cf.RecordOpinion(consultation="c-1", stance=cf.Stance.SUPPORT, on_behalf_of=hidden)
        with pytest.raises(cf.InvalidInput):
            w.directory.grant(HERE, hidden, Role.RESIDENT)
    assert cf.Actor("ｌｉ").id == cf.Actor("LI").id == "li"
    cid = w.propose("Li")
    assert w.engine.get(cid).proposer == "li"
    w.run(w.notify(cid, ("ＬＩ", "WU")), "WANG")
    assert w.engine.get(cid).invited == ("li", "wu")
    w.to_meeting(cid)
    w.run(cf.OpenRound(consultation=cid), "wang")
    w.opinion(cid, "li")
    before = w.snapshot()
    with pytest.raises(cf.InvalidInput):
        w.engine.execute(cf.RecordOpinion(consultation=cid, stance=cf.Stance.OPPOSE), by="li\u200b")
    assert w.snapshot() == before
    opinion = cf.RecordOpinion(consultation=cid, stance=cf.Stance.OPPOSE)
    for same in ("LI", "ｌｉ", "Ｌｉ", cf.Actor("lI")):
        w.refused(opinion, same, "already_recorded", "li")
    assert [op.participant for op in w.engine.get(cid).rounds[-1].opinions] == ["li"]


# ---- nobody could be invited after the notice (创造条件进一步协商) ---------------------------------------
def test_invitations_after_the_notice_have_their_own_notice_period(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    for person in ("li", "wu", "zhang"):
        w.grant(person, Role.RESIDENT)
    cid = w.propose("li")
    w.run(w.notify(cid, ("li", "wu", "zhang")), "wang")
    w.clock.advance(timedelta(days=2))
    outbox = len(w.store.outbox())
    record = w.run(cf.Invite(consultation=cid, people=("LIU",), reason="请专家 an expert"), "wang")
    ends = w.clock.now() + timedelta(days=3)
    assert record.state is cf.State.NOTIFIED
    assert record.invited == ("li", "wu", "zhang", "liu")
    assert record.invitation_notice_ends == ends
    entry = w.last(cid)
    assert (entry.event.value, entry.actor, entry.data["people"]) == ("invited", "wang", ["liu"])
    assert len(w.store.outbox()) == outbox + 1
    w.refused(cf.Invite(consultation=cid, people=("liu",)), "wang", "already_invited", "liu")
    w.refused(cf.Invite(consultation=cid, people=("fang",)), "li", "role_not_allowed", "li")
    w.to_meeting(cid)  # the announced meeting comes before the expert's notice ends
    refusal = w.refused(cf.OpenRound(consultation=cid), "wang", "invitation_notice", "2026", f"{ends:%H:%M}")
    assert refusal.data["opens_at"] == ends
    w.clock.set(ends)
    w.run(cf.OpenRound(consultation=cid), "wang")
    # liu holds no role in the community at all: invited, the expert speaks
    op = w.opinion(cid, "liu", text="建议错时共享").rounds[-1].opinions[-1]
    assert (op.participant, op.role) == ("liu", "invitee")
    assert (w.last(cid).actor, w.last(cid).role) == ("liu", "invitee")
    w.run(cf.CloseRound(consultation=cid), "wang")
    # the next meeting is announced; invited after it, the round waits for this invitation's notice too
    meeting = w.clock.now() + timedelta(days=4)
    w.run(ScheduleMeeting(consultation=cid, meeting_at=meeting), "wang")
    w.clock.advance(timedelta(days=2))
    invited = w.run(cf.Invite(consultation=cid, people=("fang",), reason="法律顾问"), "wang")
    w.clock.set(meeting)
    w.refused(cf.OpenRound(consultation=cid), "wang", "invitation_notice")
    assert invited.invitation_notice_ends is not None
    w.clock.set(invited.invitation_notice_ends)
    w.run(cf.OpenRound(consultation=cid), "wang")
    assert w.opinion(cid, "fang").rounds[-1].opinions[-1].participant == "fang"


# ---- proxies at an offline round table (代为记录) ---------------------------------------------------------
def test_a_clerk_records_for_a_resident_and_the_log_names_both(w: World) -> None:
    w.grant("wang", Role.COMMITTEE)
    w.grant("wc", Role.WORKING_COMMITTEE)
    for person in ("li", "wu", "zhang"):
        w.grant(person, Role.RESIDENT)
    cid = w.propose("li")
    w.run(w.notify(cid, ("li", "wu", "zhang")), "wang")
    w.to_meeting(cid)
    w.run(cf.OpenRound(consultation=cid), "wang")

    w.run(cf.SignIn(consultation=cid, on_behalf_of="zhang"), "wang")
    entry = w.last(cid)
    assert (entry.event.value, entry.actor, entry.data["on_behalf_of"]) == ("signed_in", "wang", "zhang")
    assert w.engine.get(cid).rounds[-1].attendees == ("zhang",)
    w.refused(cf.SignIn(consultation=cid), "zhang", "already_signed_in", "zhang")
    w.refused(cf.SignIn(consultation=cid, on_behalf_of="zhang"), "wc", "already_signed_in", "zhang")

    record = w.opinion(cid, "wang", text="同意", on_behalf_of="zhang")
    entry = w.last(cid)
    assert (entry.event.value, entry.actor, entry.role) == ("opinion_recorded", "wang", "committee")
    assert entry.data["on_behalf_of"] == "zhang"
    op = record.rounds[-1].opinions[-1]
    assert (op.participant, op.recorded_by, op.role) == ("zhang", "wang", "resident")

    mine = cf.RecordOpinion(consultation=cid, stance=cf.Stance.OPPOSE)
    w.refused(mine, "zhang", "already_recorded", "zhang")
    w.refused(mine.model_copy(update={"on_behalf_of": "zhang"}), "wc", "already_recorded", "zhang")
    w.refused(mine.model_copy(update={"on_behalf_of": "li"}), "wu", "not_a_clerk", "wu")
    w.refused(mine.model_copy(update={"on_behalf_of": "wang"}), "wang", "on_behalf_of_self", "wang")
    w.refused(mine.model_copy(update={"on_behalf_of": "ghost"}), "wang", "not_taking_part", "ghost")
    w.refused(cf.SignIn(consultation=cid, on_behalf_of="li"), "wu", "not_a_clerk", "wu")

    op = w.opinion(cid, "wc", on_behalf_of="li").rounds[-1].opinions[-1]
    assert (op.participant, op.recorded_by) == ("li", "wc")
    assert [(o.participant, o.recorded_by) for o in w.engine.get(cid).rounds[-1].opinions] == [
        ("zhang", "wang"),
        ("li", "wc"),
    ]


# ---- the legal adviser (法律顾问 / 司法所) ----------------------------------------------------------------
def test_the_legal_adviser_reviews_legality_in_the_communities_placed_under_them(w: World) -> None:
    w.directory.place(HERE, sub_district="ninghai", district="gulou")
    w.directory.place(THERE, sub_district="hunan", district="gulou")
    w.grant("wang", Role.COMMITTEE)
    w.grant("bob", Role.COMMITTEE, scope=THERE)
    for person in ("li", "wu", "zhang"):
        w.grant(person, Role.RESIDENT)
        w.grant(f"{person}2", Role.RESIDENT, scope=THERE)
    w.grant("lawyer", Role.LEGAL_ADVISER)
    w.grant("sifasuo", Role.LEGAL_ADVISER, scope=cf.sub_district("ninghai"))
    with pytest.raises(cf.InvalidInput):
        w.directory.grant(cf.sub_district("ninghai"), "boss", Role.COMMITTEE)

    first = w.propose("li")
    w.to_decided(first, ("li", "wu", "zhang"))
    assert w.run(review(first), "lawyer").state is cf.State.FEEDBACK
    assert (w.last(first).actor, w.last(first).role) == ("lawyer", "legal_adviser")

    second = w.propose("wu")
    w.to_decided(second, ("li", "wu", "zhang"))
    assert w.run(review(second), "sifasuo").state is cf.State.FEEDBACK
    assert (w.last(second).actor, w.last(second).role) == ("sifasuo", "legal_adviser")

    theirs = w.propose("li2", community=THERE)
    w.to_decided(theirs, ("li2", "wu2", "zhang2"), convenor="bob")
    w.refused(review(theirs), "sifasuo", "role_not_allowed", "sifasuo")
    w.refused(review(theirs), "lawyer", "role_not_allowed", "lawyer")
