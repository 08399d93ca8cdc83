"""The six-step order oracle, written independently of the procedure's guards and of the driver:
``check_log_order`` reads a log and says whether the six-step order was kept, with its own count
of rounds, decisions, reviews, publications and inspections.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import consultflow as cf
from consultflow import Carrier, Event, LogEntry, Role, State, Verdict

__all__ = ["FINAL", "check_log_order", "procedure_edges"]

FINAL = frozenset({State.CLOSED, State.REJECTED, State.WITHDRAWN})


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
    assert first.event in (Event.PROPOSED, Event.DRAFTED), first
    assert first.source is None
    assert first.target is (State.PROPOSED if first.event is Event.PROPOSED else State.DRAFT)
    carrier = Carrier(str(first.data["carrier"]))
    # which matters wait for a legality review: the variant's carriers, and major matters if it says so
    reviewed = carrier in params.review_carriers or (bool(first.data["major"]) and params.review_major)
    unlawful_in_cycle = 0  # corrections asked for in this cycle (依法纠正)
    state: State = first.target
    appeals = 0  # a matter is appealed once (申请复核)
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
    vote_open = False
    meeting_at: datetime | None = None  # the meeting announced and not yet held (会议), when it meets
    meetings = held = 0
    for e in entries[1:]:
        where = f"seq {e.seq} ({e.event.value})"
        assert state not in FINAL, f"{where}: nothing may follow {state.value}"
        assert e.source is state, f"{where}: starts from {e.source} but the log was at {state}"
        if e.target is not e.source:
            assert (e.source, e.target) in edges, f"{where}: {e.source} -> {e.target} is no transition"
        ev = e.event
        if ev in (Event.NOTIFIED, Event.MEETING_SCHEDULED):
            if ev is Event.NOTIFIED:
                assert e.source is State.PROPOSED
            else:
                assert e.source in (State.NOTIFIED, State.CONSULTING), f"{where}: a meeting announced in {e.source}"
                assert e.target is e.source
            meetings += 1
            meeting_at = datetime.fromisoformat(str(e.data["meeting_at"]))
            assert meeting_at - e.at >= params.notice_period, f"{where}: a meeting inside the notice period"
        elif ev is Event.MINUTES_RECORDED:
            assert e.target is e.source
            assert 1 <= int(e.data["meeting"]) <= held, f"{where}: minutes of a meeting not held"  # type: ignore[arg-type]
            assert len(str(e.data["sha256"])) == 64
        elif ev is Event.ROUND_OPENED:
            assert meeting_at is not None, f"{where}: a round with no meeting announced for it"
            assert e.at >= meeting_at, f"{where}: a round before its meeting"
            meeting_at = None
            held = meetings
            assert e.source in (State.NOTIFIED, State.CONSULTING)
            assert e.target is State.CONSULTING
            assert not round_open, f"{where}: a round opened while another is open"
            assert not vote_open, f"{where}: a round opened while a vote is open"
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
            if reviewed:
                assert e.target is State.DECIDED, f"{where}: a decision that needs a review took effect"
                assert "review" not in e.data
            else:
                assert e.target is State.FEEDBACK, f"{where}: a decision that needs no review waits for one"
                assert e.data["review"] == "not_required"
            assert unlawful_in_cycle <= params.correction_limit, f"{where}: decided past the correction limit"
            assert fresh_round, f"{where}: decided without a closed round in cycle {cycle}"
            assert not round_open
            assert not vote_open, f"{where}: decided while a vote is open"
            if carrier in (Carrier.DECISION, Carrier.COORDINATION):
                assert last_consensus, f"{where}: decided without consensus"
            decision += 1
            assert e.data["decision"] == decision
            measures = len(e.data["measures"])  # type: ignore[arg-type]
            fresh_round = False
            lawful = not reviewed  # in force at once where no review is needed
            published = signed_off = False
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
                assert e.target is State.CONSULTING, f"{where}: an unlawful verdict is corrected, never escalated"
                unlawful_in_cycle += 1
                # no round left: the decision may be corrected on the round it rested on
                fresh_round = rounds_in_cycle >= params.round_limit
        elif ev is Event.PUBLISHED:
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
            assert e.data["decision"] == decision
            published = True
        elif ev is Event.PLEDGE_PUBLISHED:  # 承诺制: each measure of the decision published, as it is
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
            assert e.target is e.source
            assert published, f"{where}: a pledge before its decision was published"
            assert e.data["decision"] == decision
            assert 0 <= int(e.data["measure"]) < measures  # type: ignore[arg-type]
            for said in ("owner", "title", "due", "budget"):  # who, what, by when, how much
                assert e.data[said], f"{where}: a pledge without its {said}"
        elif ev is Event.PLEDGE_DELAYED:
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
            assert e.target is e.source
            assert published, f"{where}: a pledge delayed before it was published"
            assert e.data["decision"] == decision
            assert str(e.data["due"]) > str(e.data["from_due"]), f"{where}: a delay moves the date later"
            assert int(e.data["delays"]) <= params.pledge_delay_limit  # type: ignore[arg-type]
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
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
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
            assert e.target in (State.APPEALABLE, State.REJECTED)
            if e.target is State.APPEALABLE:
                assert appeals == 0, f"{where}: a second appeal opened"
                assert params.appeal_period is not None
        # 提议 intake: drafts, edits, co-signers, the catalogue, appeals - all before notice
        elif ev in (Event.DRAFT_EDITED, Event.PROPOSAL_EDITED, Event.CO_SIGNED, Event.TOPIC_ADDED):
            assert e.target is e.source
            assert e.source is (State.DRAFT if ev is Event.DRAFT_EDITED else e.source)
            assert e.source in (State.DRAFT, State.PROPOSED), f"{where}: changed after notice"
            if ev is Event.TOPIC_ADDED:
                assert str(e.data["from_topic"]).endswith("/other")
        elif ev is Event.SUBMITTED:
            assert (e.source, e.target) == (State.DRAFT, State.PROPOSED)
        elif ev is Event.DRAFT_DISCARDED:
            assert (e.source, e.target) == (State.DRAFT, State.WITHDRAWN)
        elif ev is Event.APPEALED:
            assert (e.source, e.target) == (State.APPEALABLE, State.APPEALED)
            appeals += 1
            assert appeals == 1
        elif ev is Event.RECONSIDERED:
            assert e.source is State.APPEALED
            assert e.target is (State.REJECTED if e.data["upheld"] else State.PROPOSED)
            assert e.role == Role.SUB_DISTRICT.value
        elif ev is Event.REJECTION_FINAL:
            assert (e.source, e.target) == (State.APPEALABLE, State.REJECTED)
            assert e.role == Role.SYSTEM.value
        elif ev is Event.WITHDRAWN:
            assert e.source in (State.PROPOSED, State.NOTIFIED, State.CONSULTING)
        elif ev is Event.FEEDBACK_RECEIVED:
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
        elif ev is Event.INVITED:
            assert e.source in (State.NOTIFIED, State.CONSULTING), f"{where}: invited in {e.source}"
            assert e.target is e.source
        elif ev is Event.VOTE_CALLED:
            assert e.source is State.CONSULTING
            assert e.target is State.CONSULTING
            assert fresh_round, f"{where}: a vote without a fresh closed round"
            assert not round_open, f"{where}: a vote while a round is open"
            assert not vote_open, f"{where}: a vote called while another is open"
            if carrier in (Carrier.DECISION, Carrier.COORDINATION):
                assert last_consensus, f"{where}: a vote without consensus"
            vote_open = True
        elif ev is Event.VOTE_CAST:
            assert vote_open, f"{where}: a ballot with no open vote"
        elif ev is Event.VOTE_CLOSED:
            assert vote_open, f"{where}: closing a vote that is not open"
            assert e.data["quorum_met"] or not e.data["carried"]
            vote_open = False
            if not e.data["carried"] or e.data["abandoned"]:
                fresh_round = False  # the round was the body's: a new one before deciding again
        elif ev is Event.SIGNED_IN:
            assert round_open, f"{where}: a sign-in with no open round"
            assert e.target is e.source
        elif ev is Event.FUNDS_ALLOCATED:  # 微幸福: in the step that puts a decision in force, before it
            assert e.target is e.source, f"{where}: an allocation is logged before the step's last entry"
            if e.source is State.DECIDED:  # a lawful review of the current decision
                assert e.data["decision"] == decision
            else:  # a decision (or a body's carried vote) on a matter that needs no review
                assert e.source is State.CONSULTING
                assert not reviewed
                assert e.data["decision"] == decision + 1
        elif ev is Event.FUNDS_RELEASED:  # consulted again: the unspent part of the decision's money
            assert e.source in (State.FEEDBACK, State.SUPERVISING, State.ESCALATED)
            assert e.target is e.source, f"{where}: a release is logged before the new cycle's entry"
        elif ev is Event.FUNDS_SPENT:
            assert e.source in (State.FEEDBACK, State.SUPERVISING)
            assert e.data["decision"] == decision, f"{where}: money spent on a decision that is not in force"
        else:  # pragma: no cover - a new event needs a rule here
            raise AssertionError(f"{where}: unknown event")
        if ev in (Event.RECONSULTATION_REQUESTED, Event.RESUMED):
            rounds_in_cycle = unlawful_in_cycle = 0
            round_open = fresh_round = False
        # entering feedback: only by a lawful review of the current decision, or by a decision that
        # needs none
        if e.target is State.FEEDBACK and e.source is not State.FEEDBACK:
            assert ev is Event.LEGALITY_REVIEWED or (ev is Event.DECIDED and not reviewed), (
                f"{where}: feedback entered by {ev.value}"
            )
            assert lawful, f"{where}: feedback without a lawful review"
        if e.target is State.SUPERVISING and e.source is not State.SUPERVISING:
            assert ev is Event.SUPERVISION_STARTED
            assert lawful
            assert published
        state = e.target
