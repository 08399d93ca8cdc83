"""Deadlines on a simulated clock: ``Engine.tick`` surfaces unanswered proposals, 议而不决 (no decision
by the deadline) and 决而不施 (a measure not carried out by its due date), each exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

import consultflow as cf
from consultflow import Event, Role, State
from consultflow.canonical import timestamp
from consultflow.engine import CLOCK_ACTOR
from consultflow.steps import MarkOverdue
from consultflow.testing.driver import CAST, COMMUNITY, Driver
from oracle import check_log_order

SECOND = timedelta(seconds=1)


def _missed(story: Driver) -> list[cf.LogEntry]:
    return [e for e in story.history() if e.event is Event.DEADLINE_MISSED]


def test_an_unanswered_proposal_is_flagged_once() -> None:
    story = Driver()
    rec = story.propose()
    respond_by = rec.proposed_at + story.procedure.parameters.proposal_deadline
    assert rec.respond_by == rec.next_due == respond_by

    assert story.engine.tick(respond_by - SECOND, ahead_of_clock=True) == ()
    assert story.record.version == 1

    story.clock.set(respond_by)
    (step,) = story.engine.tick()
    assert [e.event for e in step.entries] == [Event.DEADLINE_MISSED]
    entry = step.entries[0]
    assert entry.source is entry.target is State.PROPOSED  # flag only
    assert (entry.actor, entry.role) == (CLOCK_ACTOR.id, Role.SYSTEM.value)
    assert entry.data == {"deadline": "proposal", "kind": "proposal", "due": timestamp(respond_by), "measure": None}
    assert entry.at == respond_by
    rec = story.record
    assert (rec.state, rec.missed, rec.next_due, rec.version) == (State.PROPOSED, ("proposal",), None, 2)
    # notices go to the committee and the sub-district
    assert {n.event for n in story.engine.store.outbox()} == {Event.DEADLINE_MISSED}  # type: ignore[attr-defined]

    story.clock.advance(days=30)
    assert story.engine.tick() == ()
    assert len(_missed(story)) == 1
    # flagged, not blocked: the committee can still answer
    story.notify()
    assert story.state is State.NOTIFIED
    assert story.engine.verify(story.cid).ok


def test_an_undecided_consultation_escalates_at_its_decision_deadline() -> None:
    story = Driver()
    story.propose()
    rec = story.notify()
    assert rec.schedule is not None
    due = rec.schedule.notified_at + story.procedure.parameters.decision_deadline
    assert rec.decision_due == rec.next_due == due
    story.hold_round(consensus=False)  # consulting, but nobody decides

    assert story.engine.tick(due - SECOND, ahead_of_clock=True) == ()
    story.clock.set(due)
    (step,) = story.engine.tick()
    assert [e.event for e in step.entries] == [Event.DEADLINE_MISSED, Event.ESCALATED]
    missed, escalated = step.entries
    assert missed.data["deadline"] == "decision:1"
    assert missed.data["kind"] == "decision"
    assert missed.target is State.CONSULTING
    assert escalated.target is State.ESCALATED
    assert escalated.data == {"reason": "overdue", "deadlines": ["decision:1"]}
    assert story.state is State.ESCALATED
    assert story.record.next_due is None
    assert any(f"role:{Role.SUB_DISTRICT.value}" in n.audience for n in step.notices)

    story.clock.advance(days=60)
    assert story.engine.tick() == ()
    assert len(_missed(story)) == 1
    check_log_order(story.history())


def test_an_undecided_consultation_is_only_flagged_when_escalation_is_off() -> None:
    story = Driver(escalate_undecided=False)
    story.propose()
    rec = story.notify()
    assert rec.decision_due is not None
    story.clock.set(rec.decision_due + timedelta(hours=2))
    (step,) = story.engine.tick()
    assert [e.event for e in step.entries] == [Event.DEADLINE_MISSED]
    assert story.state is State.NOTIFIED
    assert story.record.missed == ("decision:1",)
    assert story.engine.tick(story.clock.now() + timedelta(days=365), ahead_of_clock=True) == ()
    # still free to go on
    story.hold_round()
    story.decide()
    assert story.record.state is State.DECIDED  # (story.state is narrowed to NOTIFIED above)


def _to_feedback(**parameters: Any) -> tuple[Driver, datetime, datetime]:
    """A decision with two measures, due in 20 and in 30 days, found lawful."""
    story = Driver(**parameters)
    story.to("consulting_closed")
    gate = story.measure(days=30, budget="3000", title="道闸 gate", owner="wang")
    story.decide(measures=(story.measure(days=20, budget="8000"), gate))
    story.review()
    decision = story.record.current_decision
    assert decision is not None
    first, second = (m.due for m in decision.measures)
    return story, first, second


def test_a_measure_not_carried_out_is_flagged_and_next_due_advances() -> None:
    story, first, second = _to_feedback()
    assert story.record.next_due == first
    story.publish()
    story.report(0, percent=50)
    assert story.record.next_due == first  # half done is not done
    story.report(0)
    assert story.record.next_due == second  # measure 0 done: the next deadline is measure 1's

    assert story.engine.tick(first + timedelta(days=1), ahead_of_clock=True) == ()  # measure 0 was carried out in time
    story.clock.set(second)
    (step,) = story.engine.tick()
    assert [e.event for e in step.entries] == [Event.DEADLINE_MISSED]
    entry = step.entries[0]
    assert entry.data == {
        "deadline": "measure:1:1",
        "kind": "measure",
        "due": timestamp(second),
        "measure": 1,
        # 承诺制: the missed measure names its pledge (who answers for what)
        "owner": "wang",
        "pledged": True,
        "title": "道闸 gate",
    }
    assert story.state is State.FEEDBACK  # 决而不施 is flagged; escalation is opt-in
    assert story.record.next_due is None
    assert story.engine.tick(second + timedelta(days=90), ahead_of_clock=True) == ()
    # reporting it done later is still possible, and closing then works
    story.report(1)
    story.start_supervision()
    story.inspect()
    story.close()
    assert story.state is State.CLOSED
    check_log_order(story.history())


def test_two_overdue_measures_are_logged_in_one_step() -> None:
    story, _, second = _to_feedback()
    story.clock.set(second)
    (step,) = story.engine.tick()
    assert [e.data["deadline"] for e in step.entries] == ["measure:1:0", "measure:1:1"]
    assert [e.seq for e in step.entries] == [story.record.version - 1, story.record.version]
    assert story.engine.verify(story.cid).ok


def test_a_measure_not_carried_out_escalates_when_the_rules_say_so() -> None:
    story, first, _ = _to_feedback(escalate_unimplemented=True)
    story.clock.set(first)
    (step,) = story.engine.tick()
    assert [e.event for e in step.entries] == [Event.DEADLINE_MISSED, Event.ESCALATED]
    assert step.entries[-1].data == {"reason": "overdue", "deadlines": ["measure:1:0"]}
    assert story.state is State.ESCALATED
    assert story.engine.tick(first + timedelta(days=100), ahead_of_clock=True) == ()


def test_supervising_measures_are_watched_too() -> None:
    story = Driver(escalate_unimplemented=True)
    story.to("supervising")
    decision = story.record.current_decision
    assert decision is not None
    story.clock.set(decision.measures[0].due)
    (step,) = story.engine.tick()
    assert step.entries[0].source is State.SUPERVISING
    assert story.state is State.ESCALATED


def test_a_new_cycle_gets_a_new_decision_deadline() -> None:
    story = Driver()
    story.to("supervising")
    story.inspect(passed=False)
    rec = story.reconsult()
    assert rec.cycle == 2
    due = story.clock.now() + story.procedure.parameters.decision_deadline
    assert rec.decision_due == rec.next_due == due
    assert story.engine.tick(due - SECOND, ahead_of_clock=True) == ()
    (step,) = story.engine.tick(due, ahead_of_clock=True)
    assert step.entries[0].data["deadline"] == "decision:2"
    assert story.state is State.ESCALATED


def test_a_decision_awaiting_review_has_a_review_deadline_reported_once() -> None:
    story = Driver()
    story.to("decided")
    rec = story.record
    assert rec.review_due is not None
    assert rec.next_due == rec.review_due  # the decision deadline no longer runs; the review's does
    assert story.engine.tick(rec.review_due - SECOND, ahead_of_clock=True) == ()
    story.clock.set(rec.review_due + timedelta(days=1))
    (step,) = story.engine.tick()
    assert [e.event for e in step.entries] == [Event.DEADLINE_MISSED]
    assert step.entries[0].data["kind"] == "review"
    assert step.record.state is State.DECIDED  # flagged, not escalated: the reviewer still has to act
    assert story.engine.tick() == ()


def test_an_unlawful_review_gives_the_corrected_decision_a_fresh_deadline() -> None:
    story = Driver()
    story.to("decided")
    rec = story.record
    assert rec.decision_due is not None
    story.clock.set(rec.decision_due + timedelta(days=1))  # the first deadline has passed meanwhile
    story.review(lawful=False)
    after = story.record
    assert after.state is State.CONSULTING
    assert after.decision_due == story.clock.now() + timedelta(days=30)
    assert after.next_due == after.decision_due
    assert story.engine.tick() == ()  # 依法纠正 is not 议而不决


def test_tick_handles_many_consultations_each_once() -> None:
    story = Driver()
    engine, clock = story.engine, story.clock
    a = story.propose().id
    b = story.propose().id
    story.notify(cid=b)
    c = story.propose().id
    respond_a, respond_c = story.get(a).respond_by, story.get(c).respond_by
    assert respond_a is not None
    assert respond_c is not None
    assert respond_a < respond_c
    assert engine.tick(respond_a - SECOND, ahead_of_clock=True) == ()
    clock.set(respond_c)
    steps = engine.tick()
    assert sorted(s.record.id for s in steps) == sorted([a, c])
    assert engine.tick() == ()
    clock.advance(days=20)
    (step,) = engine.tick()
    assert step.record.id == b
    assert step.record.state is State.ESCALATED
    for cid in (a, b, c):
        assert engine.verify(cid).ok


def test_mark_overdue_is_the_clocks_alone() -> None:
    """Only ``engine.tick()`` marks deadlines. No caller holds the system role: a directory never
    grants it, roles an ``Actor`` claims are ignored, and even ``TrustCallerRoles`` strips it - so
    ``MarkOverdue`` from a caller is refused on its role, overdue or not (it once reached the
    ``nothing_overdue`` guard for an actor claiming ``system``). That guard is the clock's own check."""
    story = Driver()
    rec = story.propose()
    due = rec.respond_by
    assert due is not None
    assert story.directory is not None
    for by in (CAST["wang"], CAST["system"], "system"):
        with pytest.raises(cf.Refused) as refused:
            story.engine.execute(MarkOverdue(consultation=story.cid), by=by)
        assert refused.value.code == "role_not_allowed"
    for by in (CLOCK_ACTOR, CLOCK_ACTOR.id):  # the clock's own id is the library's: no caller uses it
        with pytest.raises(cf.InvalidInput, match="the library's own id"):
            story.engine.execute(MarkOverdue(consultation=story.cid), by=by)
    with pytest.raises(cf.InvalidInput, match="cannot be granted"):
        story.directory.grant(COMMUNITY, "system", Role.SYSTEM)
    assert all(p.trigger != cf.Trigger.MARK_OVERDUE for p in story.engine.allowed(story.cid, by=CAST["system"]))

    trusting = cf.Engine(
        story.procedure, story.store, clock=story.clock, catalogue=story.catalogue, directory=cf.TrustCallerRoles()
    )
    story.clock.set(due)  # now the proposal is overdue: still nobody but the clock marks it
    for engine in (story.engine, trusting):
        with pytest.raises(cf.Refused) as refused:
            engine.execute(MarkOverdue(consultation=story.cid), by=CAST["system"])
        assert refused.value.code == "role_not_allowed"
        with pytest.raises(cf.InvalidInput, match="the library's own id"):
            engine.execute(MarkOverdue(consultation=story.cid), by=CLOCK_ACTOR)
    assert story.record.version == 1

    # the clock's own check: before the deadline there is nothing to mark
    ctx = cf.Context(now=due - SECOND, actor=CLOCK_ACTOR, catalogue=story.catalogue)
    early = cf.apply(story.procedure, story.record, MarkOverdue(consultation=story.cid), ctx)
    assert isinstance(early, cf.Refused)
    assert early.code == "nothing_overdue"
    (step,) = story.engine.tick()
    assert (step.entries[0].actor, step.entries[0].role) == (CLOCK_ACTOR.id, Role.SYSTEM.value)
    assert story.record.version == 2


def test_overdue_is_a_pure_function_of_record_and_time() -> None:
    story = Driver()
    rec = story.propose()
    assert rec.respond_by is not None
    assert cf.overdue(rec, rec.respond_by - SECOND) == []
    (deadline,) = cf.overdue(rec, rec.respond_by)
    assert (deadline.key, deadline.kind, deadline.due) == ("proposal", "proposal", rec.respond_by)


def test_tick_needs_an_aware_time() -> None:
    story = Driver()
    story.propose()
    with pytest.raises(cf.InvalidInput, match="aware"):
        story.engine.tick(datetime(2026, 4, 1))
    assert story.record.version == 1
