"""Both loops of the procedure and their bounds: another round when there is no consensus (进一步协商),
back to consultation after an unlawful review (依法纠正), a new cycle from supervision (再次协商),
and the escalation to the sub-district when a limit is reached."""

from __future__ import annotations

from typing import Any

import pytest

import consultflow as cf
from consultflow import Event, State
from consultflow.testing.driver import CAST, NO_CONSENSUS, Driver
from oracle import check_log_order

WANG, ZHOU, JIE = CAST["wang"], CAST["zhou"], CAST["jie"]


def _refusal(story: Driver, command: cf.Command, by: str | cf.Actor) -> cf.Refused:
    before = (story.record, story.history())
    with pytest.raises(cf.Refused) as refused:
        story.engine.execute(command, by=by)
    assert (story.record, story.history()) == before  # a refusal writes nothing
    return refused.value


# ---- another round -------------------------------------------------------------------------------------


def test_no_consensus_then_another_round_then_consensus() -> None:
    story = Driver()
    story.propose()
    story.notify()
    rec = story.hold_round(consensus=False)
    assert rec.state is State.CONSULTING
    tally = rec.rounds[-1].tally
    assert tally is not None
    assert tally.quorum_met
    assert not tally.consensus

    refused = _refusal(story, story.decide_command(), WANG)
    assert (refused.code, refused.guard) == ("no_consensus", "consensus_reached")
    assert refused.data["support"] == 1
    assert refused.data["oppose"] == 2

    rec = story.hold_round()
    assert [r.number for r in rec.rounds] == [1, 2]
    assert rec.rounds_in_cycle == 2
    rec = story.decide()
    assert rec.state is State.DECIDED
    assert rec.current_decision is not None
    assert rec.current_decision.round == 2
    check_log_order(story.history())


def test_the_round_limit_escalates_on_the_third_failing_round() -> None:
    story = Driver()
    story.propose()
    story.notify()
    story.hold_round(consensus=False)
    story.hold_round(consensus=False)
    before = story.record.version
    rec = story.hold_round(consensus=False)
    assert rec.state is State.ESCALATED
    # the meeting announced (meeting_scheduled), round_opened and the opinions precede the closing
    tail = story.history()[before + 2 + len(NO_CONSENSUS) :]
    assert [e.event for e in tail] == [Event.ROUND_CLOSED, Event.ESCALATED]
    closed, escalated = tail
    assert (closed.source, closed.target) == (State.CONSULTING, State.CONSULTING)
    assert closed.data["round"] == 3
    assert closed.data["consensus"] is False
    assert (escalated.source, escalated.target) == (State.CONSULTING, State.ESCALATED)
    assert escalated.data == {"reason": "no_consensus_at_round_limit", "rounds": 3}
    assert closed.seq + 1 == escalated.seq == rec.version
    check_log_order(story.history())


def test_a_smaller_round_limit_is_honoured() -> None:
    story = Driver(round_limit=1)
    story.propose()
    story.notify()
    assert story.hold_round(consensus=False).state is State.ESCALATED


def test_at_the_limit_a_fourth_round_cannot_be_opened() -> None:
    story = Driver()
    story.propose()
    story.notify()
    story.hold_round(consensus=False)
    story.hold_round(consensus=False)
    story.hold_round()  # the third round reaches consensus: no escalation
    assert story.state is State.CONSULTING
    refused = _refusal(story, cf.OpenRound(consultation=story.cid), WANG)
    assert refused.code == "round_limit"
    assert dict(refused.data) == {"action": "open_round", "used": 3, "limit": 3}


# ---- the legality review loop ---------------------------------------------------------------------------


def test_an_unlawful_review_sends_the_matter_back_and_needs_a_new_round() -> None:
    story = Driver()
    story.to("decided")
    rec = story.review(lawful=False)
    assert rec.state is State.CONSULTING
    review = rec.reviews[-1]
    assert review.verdict is cf.Verdict.UNLAWFUL
    assert review.legal_basis
    assert review.correction
    assert review.decision == 1
    last = story.history()[-1]
    assert (last.event, last.source, last.target) == (Event.LEGALITY_REVIEWED, State.DECIDED, State.CONSULTING)

    refused = _refusal(story, story.decide_command(), WANG)
    assert (refused.code, refused.guard) == ("needs_new_round", "round_held")

    story.hold_round()
    rec = story.decide()
    assert rec.current_decision is not None
    assert rec.current_decision.number == 2
    assert rec.current_decision.round == 2
    rec = story.review()
    assert rec.state is State.FEEDBACK
    assert rec.reviewed_lawful()
    check_log_order(story.history())


def test_the_decider_may_not_review_their_own_decision() -> None:
    story = Driver()
    story.to("decided")
    both = cf.Actor("wang", roles={cf.Role.COMMITTEE, cf.Role.SUPERVISOR})
    review = cf.ReviewLegality(consultation=story.cid, verdict=cf.Verdict.LAWFUL)
    # roles come from the directory, not from the Actor: claiming the supervisor's role is not enough ...
    assert story.engine.explain(review, by=both) is not None
    assert _refusal(story, review, both).code == "role_not_allowed"
    # ... so wang is made a supervisor there too
    story.enrol(both)
    refused = _refusal(story, review, "wang")
    assert refused.code == "reviewer_not_independent"


# ---- re-consultation from supervision --------------------------------------------------------------------


def _cycle_again(story: Driver) -> cf.Consultation:
    """From supervising: inspection finds a problem, a new cycle, a new round, a new lawful decision,
    published, under supervision again."""
    story.inspect(passed=False)
    story.reconsult()
    story.hold_round()
    story.decide()
    story.review()
    story.publish()
    return story.start_supervision()


def test_supervision_finds_a_problem_and_a_new_cycle_starts() -> None:
    story = Driver()
    story.to("supervising")
    story.inspect(passed=False)
    old_due = story.record.decision_due
    rec = story.reconsult()
    assert rec.state is State.CONSULTING
    assert rec.cycle == 2
    assert rec.decision_due == story.clock.now() + story.procedure.parameters.decision_deadline
    assert rec.decision_due != old_due
    assert rec.rounds_in_cycle == 0
    last = story.history()[-1]
    assert last.event is Event.RECONSULTATION_REQUESTED
    assert last.data["cycle"] == 2
    assert (last.actor, last.role) == (ZHOU.id, "inspection_group")

    # the new cycle needs its own round before any decision
    refused = _refusal(story, story.decide_command(), WANG)
    assert refused.code == "no_round"
    story.hold_round()
    rec = story.decide()
    assert rec.current_decision is not None
    assert rec.current_decision.cycle == 2
    story.review()
    story.publish()
    story.start_supervision()
    story.finish_measures()
    story.inspect()
    assert story.close().state is State.CLOSED
    check_log_order(story.history())


def test_the_cycle_limit_refuses_another_reconsultation() -> None:
    story = Driver()
    story.to("supervising")
    _cycle_again(story)
    rec = _cycle_again(story)
    assert rec.cycle == 3
    assert rec.state is State.SUPERVISING
    story.inspect(passed=False)
    refused = _refusal(story, cf.RequestReconsultation(consultation=story.cid, problems="又有问题"), ZHOU)
    assert (refused.code, refused.guard) == ("cycle_limit", "cycles_left")
    assert refused.data["used"] == 3
    assert refused.data["limit"] == 3
    # what is left: escalate to the sub-district, which rules on it and closes
    story.escalate()
    assert story.close(by=JIE).state is State.CLOSED
    check_log_order(story.history())


def test_a_cycle_limit_of_one_allows_no_reconsultation() -> None:
    story = Driver(cycle_limit=1)
    story.to("supervising")
    refused = _refusal(story, cf.RequestReconsultation(consultation=story.cid, problems="问题"), ZHOU)
    assert refused.code == "cycle_limit"


# ---- escalated: resume or close -------------------------------------------------------------------------


def _escalated(**parameters: Any) -> Driver:
    story = Driver(**parameters)
    story.propose()
    story.notify()
    for _ in range(3):
        story.hold_round(consensus=False)
    assert story.state is State.ESCALATED
    return story


def test_the_sub_district_resumes_an_escalated_matter() -> None:
    story = _escalated()
    refused = _refusal(story, cf.Resume(consultation=story.cid, instructions="再议"), WANG)
    assert refused.code == "role_not_allowed"
    rec = story.resume()
    assert (rec.state, rec.cycle, rec.rounds_in_cycle) == (State.CONSULTING, 2, 0)
    last = story.history()[-1]
    assert (last.event, last.actor, last.role) == (Event.RESUMED, JIE.id, "sub_district")
    assert last.data == {"instructions": "重新协商 consult again", "cycle": 2}
    # a fresh round limit in the new cycle
    story.hold_round(consensus=False)
    story.hold_round()
    story.decide()
    assert story.review().state is State.FEEDBACK
    check_log_order(story.history())


def test_resume_is_bounded_by_the_cycle_limit() -> None:
    story = _escalated(cycle_limit=1)
    refused = _refusal(story, cf.Resume(consultation=story.cid, instructions="再议"), JIE)
    assert refused.code == "cycle_limit"


def test_the_sub_district_closes_an_escalated_matter_by_ruling() -> None:
    story = _escalated()
    refused = _refusal(story, cf.Close(consultation=story.cid), WANG)
    assert refused.code == "role_not_allowed"
    rec = story.close(by=JIE)
    assert rec.state is State.CLOSED
    last = story.history()[-1]
    assert (last.event, last.source, last.target) == (Event.CLOSED, State.ESCALATED, State.CLOSED)
    assert last.data["by_ruling"] is True
    refused = _refusal(story, cf.Resume(consultation=story.cid, instructions="再议"), JIE)
    assert refused.code == "invalid_in_state"
    check_log_order(story.history())


def test_a_matter_escalated_mid_round_can_consult_again_after_resume() -> None:
    story = Driver()
    story.propose()
    story.notify()
    story.serve_notice()
    story.open_round()
    story.escalate()  # or Engine.tick escalating 议而不决 while a round is open
    story.resume()
    assert story.state is State.CONSULTING
    story.hold_round()  # raises Refused(round_still_open)
    assert story.decide().state is State.DECIDED


def test_resume_does_not_cut_the_notice_period_short() -> None:
    story = Driver()
    story.propose()
    rec = story.notify()
    assert rec.schedule is not None
    story.escalate()
    story.resume()
    assert story.clock.now() < rec.schedule.notice_ends
    refused = _refusal(story, cf.OpenRound(consultation=story.cid), WANG)
    assert refused.code == "before_meeting"
    assert refused.data["meeting_at"] == rec.schedule.meeting_at
