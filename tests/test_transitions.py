"""Every transition of the default procedure through the engine; every illegal trigger refused
with nothing changed; every guard's refusal with its code and data; the carriers; and
``Engine.allowed`` / ``Engine.explain`` against what ``execute`` does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import consultflow as cf
from consultflow import (
    Actor,
    AddTopic,
    Appeal,
    Ballot,
    Body,
    CallVote,
    Carrier,
    CastVote,
    Channel,
    Close,
    CloseRound,
    CloseVote,
    Command,
    Conflict,
    Consultation,
    CoSign,
    Decide,
    EditProposal,
    Escalate,
    Form,
    Inspect,
    InvalidInput,
    Invite,
    LogEntry,
    Measure,
    Notify,
    OpenRound,
    Propose,
    Publish,
    Reconsider,
    RecordFeedback,
    RecordOpinion,
    Refused,
    Reject,
    ReportProgress,
    RequestReconsultation,
    Resume,
    ReviewLegality,
    Role,
    SignIn,
    Stance,
    StartSupervision,
    State,
    Submit,
    Trigger,
    Verdict,
    Withdraw,
    six_step,
)
from consultflow.canonical import timestamp
from consultflow.context import Context
from consultflow.core import apply
from consultflow.engine import CLOCK_ACTOR
from consultflow.roles import NEVER_GRANTED
from consultflow.steps import DelayPledge, MarkOverdue, RecordMinutes, ScheduleMeeting
from consultflow.testing.driver import CAST, COMMUNITY, INVITED, STATES, TOPIC, Driver

S, OPP, AM, AB = Stance.SUPPORT, Stance.OPPOSE, Stance.AMEND, Stance.ABSTAIN


def make_command(trigger: str, cid: str, w: Driver) -> Command:
    """A command for ``trigger`` whose content passes every content rule in the default world."""
    now = w.clock.now()
    factories: dict[str, Callable[[], Command]] = {
        "reject": lambda: Reject(consultation=cid, reason="不予受理"),
        "withdraw": lambda: Withdraw(consultation=cid, reason="撤回"),
        "notify": lambda: Notify(consultation=cid, meeting_at=now + timedelta(days=4), invite=INVITED, chair="chen"),
        "invite": lambda: Invite(consultation=cid, people=("liu",), reason="请专家 an expert"),
        "open_round": lambda: OpenRound(consultation=cid, agenda="议程"),
        "sign_in": lambda: SignIn(consultation=cid),
        "record_opinion": lambda: RecordOpinion(consultation=cid, stance=S),
        "close_round": lambda: CloseRound(consultation=cid, summary="小结"),
        "decide": lambda: Decide(consultation=cid, resolution="决定", measures=(w.measure(),)),
        "call_vote": lambda: CallVote(
            consultation=cid, body=Body.COUNCIL, members=1, resolution="表决", measures=(w.measure(),)
        ),
        "cast_vote": lambda: CastVote(consultation=cid, ballot=Ballot.FOR),
        "close_vote": lambda: CloseVote(consultation=cid),
        "review": lambda: ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL),
        "publish": lambda: Publish(consultation=cid, channels=(Channel.WECHAT,)),
        "report_progress": lambda: ReportProgress(consultation=cid, measure=0, percent=50),
        "record_feedback": lambda: RecordFeedback(consultation=cid, satisfaction=4),
        "start_supervision": lambda: StartSupervision(consultation=cid),
        "inspect": lambda: Inspect(consultation=cid, passed=True),
        "request_reconsultation": lambda: RequestReconsultation(
            consultation=cid, problems="新问题", co_signers=w.co_signers()
        ),
        "escalate": lambda: Escalate(consultation=cid, reason="久拖不决"),
        "resume": lambda: Resume(consultation=cid, instructions="继续协商"),
        "close": lambda: Close(consultation=cid, summary="办结"),
        "mark_overdue": lambda: MarkOverdue(consultation=cid),
        "schedule_meeting": lambda: ScheduleMeeting(consultation=cid, meeting_at=now + timedelta(days=4)),
        "record_minutes": lambda: RecordMinutes(consultation=cid, meeting=1, text="会议纪要"),
        "delay_pledge": lambda: DelayPledge(
            consultation=cid, measure=0, due=now + timedelta(days=60), reason="材料延误 materials late"
        ),
        # 提议 intake
        "submit": lambda: Submit(consultation=cid),
        "edit_proposal": lambda: EditProposal(consultation=cid, title="新标题 a new title"),
        "co_sign": lambda: CoSign(consultation=cid),
        "add_topic": lambda: AddTopic(consultation=cid, slug="stray-cats", name="流浪猫"),
        "appeal": lambda: Appeal(consultation=cid, grounds="本社区事务"),
        "reconsider": lambda: Reconsider(consultation=cid, upheld=False, ruling="应予受理"),
    }
    return factories[trigger]()


def assert_renders(refusal: Refused) -> None:
    for lang in ("en", "zh"):
        text = refusal.explain(lang)
        assert text.strip(), (refusal.code, lang)
        assert "{" not in text, text
        assert "}" not in text, text
    assert refusal.to_dict()["code"] == refusal.code


def invite(w: Driver, cid: str, *people: str, by: str = "wang") -> Consultation:
    """Invite ``people`` to ``cid`` after the notice (the think tank, more stakeholders)."""
    return w.run(Invite(consultation=cid, people=people, reason="进一步协商"), by)


def role_refusal_code(state: str, trigger: str) -> str:
    """What the role check says to someone holding none of a step's roles: a step open to whoever
    takes part (its transitions name the invited) says they take no part; any other, which roles may."""
    named = frozenset().union(*(o.roles for o in six_step().options(state, trigger) or ()))
    return "not_taking_part" if Role.INVITEE in named else "role_not_allowed"


def not_the_clock(w: Driver, cid: str, command: Command) -> None:
    """Nobody acts under the clock's own id: asking, dry-running or executing is an error, and writes nothing."""
    before = w.snapshot(cid)
    for by in (CLOCK_ACTOR, CLOCK_ACTOR.id, "CONSULTFLOW:Clock"):
        with pytest.raises(InvalidInput, match="consultflow:clock"):
            w.engine.allowed(cid, by=by)
        with pytest.raises(InvalidInput, match="consultflow:clock"):
            w.engine.explain(command, by=by)
        with pytest.raises(InvalidInput, match="consultflow:clock"):
            w.engine.execute(command, by=by)
    assert w.snapshot(cid) == before


def refuse(w: Driver, cid: str, command: Command, by: str | Actor) -> Refused:
    """Execute expecting a refusal; check nothing changed and the dry run agrees."""
    actor = CAST[by] if isinstance(by, str) else by
    before = w.snapshot(cid)
    dry = w.engine.explain(command, by=actor)
    with pytest.raises(Refused) as info:
        w.engine.execute(command, by=actor)
    refusal = info.value
    assert w.snapshot(cid) == before, "a refusal must change nothing"
    assert dry is not None
    assert (dry.code, dry.guard, dict(dry.data)) == (refusal.code, refusal.guard, dict(refusal.data))
    assert_renders(refusal)
    return refusal


# ---- every legal transition -----------------------------------------------------------------------

Case = Callable[[Driver], tuple[str, Command, str | Actor, list[str]]]
CASES: dict[tuple[str, str, str | None, tuple[str, ...]], tuple[Case, dict[str, Any]]] = {}


def case(source: str, trigger: str, target: str | None, *routes: str, **parameters: Any) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[(source, trigger, target, routes)] = (fn, parameters)
        return fn

    return register


@case("new", "propose", "proposed")
def _propose(w: Driver) -> Any:
    cmd = Propose(community=COMMUNITY, topic=TOPIC, title="夜间停车", carrier=Carrier.DECISION, form=Form.COUNCIL)
    return "", cmd, "li", ["proposed"]


@case("proposed", "reject", "rejected", appeal_period=None)
def _reject(w: Driver) -> Any:
    cid = w.to("proposed").id
    return cid, make_command("reject", cid, w), "wang", ["rejected"]


# ---- 提议 intake: drafts, edits, co-signers, the catalogue, appeals ----------------------------------


@case("new", "propose", "draft", "as_draft")
def _draft(w: Driver) -> Any:
    cmd = Propose(
        community=COMMUNITY, topic=TOPIC, title="夜间停车", carrier=Carrier.DECISION, form=Form.COUNCIL, draft=True
    )
    return "", cmd, "li", ["drafted"]


@case("proposed", "reject", "appealable", "appeal_open")
def _reject_open_to_appeal(w: Driver) -> Any:
    cid = w.to("proposed").id
    return cid, make_command("reject", cid, w), "wang", ["rejected"]


@case("draft", "withdraw", "withdrawn")
def _discard_draft(w: Driver) -> Any:
    cid = w.to("draft").id
    return cid, make_command("withdraw", cid, w), "li", ["draft_discarded"]


@case("draft", "submit", "proposed")
def _submit(w: Driver) -> Any:
    cid = w.to("draft").id
    return cid, make_command("submit", cid, w), "li", ["submitted"]


@case("draft", "edit_proposal", None)
def _edit_draft(w: Driver) -> Any:
    cid = w.to("draft").id
    return cid, make_command("edit_proposal", cid, w), "li", ["draft_edited"]


@case("proposed", "edit_proposal", None)
def _edit_proposal(w: Driver) -> Any:
    cid = w.to("proposed").id
    return cid, make_command("edit_proposal", cid, w), "wang", ["proposal_edited"]


for _state in ("draft", "proposed"):

    @case(_state, "co_sign", None)
    def _co_sign(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        return cid, make_command("co_sign", cid, w), "wu", ["co_signed"]


@case("proposed", "add_topic", None)
def _add_topic(w: Driver) -> Any:
    cid = w.to("proposed", topic="public-affairs/other").id
    return cid, make_command("add_topic", cid, w), "wang", ["topic_added"]


@case("appealable", "appeal", "appealed")
def _appeal(w: Driver) -> Any:
    cid = w.to("appealable").id
    return cid, make_command("appeal", cid, w), "li", ["appealed"]


@case("appealed", "reconsider", "rejected", "rejection_upheld")
def _upheld(w: Driver) -> Any:
    cid = w.to("appealed").id
    return cid, Reconsider(consultation=cid, upheld=True, ruling="维持"), "jie", ["reconsidered"]


@case("appealed", "reconsider", "proposed")
def _overturned(w: Driver) -> Any:
    cid = w.to("appealed").id
    return cid, make_command("reconsider", cid, w), "jie", ["reconsidered"]


@case("appealable", "mark_overdue", "rejected")
def _appeal_lapses(w: Driver) -> Any:
    cid = w.to("appealable").id
    w.clock.advance(days=16)  # the appeal period is 15 days
    return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, ["deadline_missed", "rejection_final"]


@case("appealed", "mark_overdue", None)
def _reconsideration_overdue(w: Driver) -> Any:
    cid = w.to("appealed").id
    w.clock.advance(days=15)  # the sub-district reconsiders within the proposal deadline (14 days)
    return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, ["deadline_missed"]


for _state in ("proposed", "notified", "consulting"):

    @case(_state, "withdraw", "withdrawn")
    def _withdraw(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        # a round left open is closed (abandoned) before the matter leaves consultation
        opened = state == "consulting"
        return cid, make_command("withdraw", cid, w), "li", ["round_closed", "withdrawn"] if opened else ["withdrawn"]


@case("proposed", "notify", "notified")
def _notify(w: Driver) -> Any:
    cid = w.to("proposed").id
    return cid, make_command("notify", cid, w), "wc", ["notified"]


@case("notified", "open_round", "consulting")
def _open_first(w: Driver) -> Any:
    cid = w.to("notified").id
    w.serve_notice()
    return cid, make_command("open_round", cid, w), "chen", ["round_opened"]


@case("consulting", "open_round", "consulting")
def _open_again(w: Driver) -> Any:
    cid = w.to("consulting_closed").id
    w.schedule_meeting()  # every round is a meeting announced with its notice
    w.serve_notice()
    return cid, make_command("open_round", cid, w), "wang", ["round_opened"]


for _state in ("notified", "consulting"):

    @case(_state, "invite", None)
    def _invite(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        return cid, make_command("invite", cid, w), "wc", ["invited"]


@case("consulting", "sign_in", None)
def _sign_in(w: Driver) -> Any:
    cid = w.to("consulting").id
    return cid, make_command("sign_in", cid, w), "wu", ["signed_in"]


@case("consulting", "record_opinion", None)
def _opinion(w: Driver) -> Any:
    cid = w.to("consulting").id
    invite(w, cid, "liu")  # the think tank takes part once invited
    return cid, make_command("record_opinion", cid, w), "liu", ["opinion_recorded"]


@case("consulting", "close_round", "escalated", "no_consensus_at_limit", round_limit=1)
def _close_at_limit(w: Driver) -> Any:
    cid = w.to("consulting").id
    w.opinion("li", OPP)
    return cid, make_command("close_round", cid, w), "wang", ["round_closed", "escalated"]


@case("consulting", "close_round", None)
def _close_round(w: Driver) -> Any:
    cid = w.to("consulting").id
    w.opinion("li", OPP)  # no consensus, but rounds are left: stays in consulting
    return cid, make_command("close_round", cid, w), "wang", ["round_closed"]


@case("consulting", "decide", "decided")
def _decide(w: Driver) -> Any:
    cid = w.to("consulting_closed").id
    return cid, make_command("decide", cid, w), "wang", ["decided"]


@case("consulting", "decide", "feedback", "review_exempt")
def _decide_in_force(w: Driver) -> Any:
    # advice on a matter that is not major: the default parameters exempt it from review
    cid = w.to("consulting_closed", carrier=Carrier.ADVISORY).id
    return cid, Decide(consultation=cid, resolution="采纳建议", advice_adopted=True), "wang", ["decided"]


@case("consulting", "call_vote", None)
def _call_vote(w: Driver) -> Any:
    cid = w.to("consulting_closed").id
    return cid, make_command("call_vote", cid, w), "wang", ["vote_called"]


@case("consulting", "cast_vote", None)
def _cast_vote(w: Driver) -> Any:
    cid = w.to("consulting_closed").id
    w.run(make_command("call_vote", cid, w), "wang")
    return cid, make_command("cast_vote", cid, w), "council", ["vote_cast"]


@case("consulting", "close_vote", "decided", "carried")
def _vote_carried(w: Driver) -> Any:
    cid = w.to("consulting_closed").id
    w.run(make_command("call_vote", cid, w), "wang")
    w.run(make_command("cast_vote", cid, w), "council")
    return cid, make_command("close_vote", cid, w), "wang", ["vote_closed", "decided"]


@case("consulting", "close_vote", "feedback", "carried", "review_exempt")
def _vote_carried_in_force(w: Driver) -> Any:
    cid = w.to("consulting_closed", carrier=Carrier.COORDINATION).id
    w.run(
        CallVote(consultation=cid, body=Body.COUNCIL, members=1, resolution="表决", agreement_parties=("zhao", "li")),
        "wang",
    )
    w.run(make_command("cast_vote", cid, w), "council")
    return cid, make_command("close_vote", cid, w), "wang", ["vote_closed", "decided"]


@case("consulting", "close_vote", None)
def _vote_lost(w: Driver) -> Any:
    cid = w.to("consulting_closed").id
    w.run(make_command("call_vote", cid, w), "wang")
    return cid, make_command("close_vote", cid, w), "wang", ["vote_closed"]


@case("decided", "review", "feedback", "lawful")
def _lawful(w: Driver) -> Any:
    cid = w.to("decided").id
    # in force: its budget leaves the community's fund (微幸福)
    return cid, make_command("review", cid, w), "jie", ["funds_allocated", "legality_reviewed"]


def _unlawful(cid: str) -> ReviewLegality:
    return ReviewLegality(
        consultation=cid, verdict=Verdict.UNLAWFUL, legal_basis="《民法典》第278条", correction="提交业主大会表决"
    )


@case("decided", "review", "consulting", "unlawful")
def _unlawful_again(w: Driver) -> Any:
    cid = w.to("decided").id
    return cid, _unlawful(cid), "sun", ["legality_reviewed"]


for _state in ("feedback", "supervising"):

    @case(_state, "publish", None)
    def _publish(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        # 承诺制: the first publication of a decision publishes its measure as a pledge ("supervising"
        # was published on the way there, so only the publication itself is new)
        new = ["published", "pledge_published"] if state == "feedback" else ["published"]
        return cid, make_command("publish", cid, w), "wang", new

    @case(_state, "delay_pledge", None)
    def _delay(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        if state == "feedback":
            w.publish()
        return cid, make_command("delay_pledge", cid, w), "wang", ["pledge_delayed"]

    @case(_state, "report_progress", None)
    def _progress(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        return cid, make_command("report_progress", cid, w), "wc", ["progress_reported"]

    @case(_state, "record_feedback", None)
    def _feedback(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        return cid, make_command("record_feedback", cid, w), "zhang", ["feedback_received"]


@case("feedback", "start_supervision", "supervising")
def _start_supervision(w: Driver) -> Any:
    cid = w.to("feedback").id
    w.publish()
    return cid, make_command("start_supervision", cid, w), "wang", ["supervision_started"]


@case("supervising", "inspect", None)
def _inspect(w: Driver) -> Any:
    cid = w.to("supervising").id
    return cid, make_command("inspect", cid, w), "zhou", ["inspected"]


@case("supervising", "request_reconsultation", "consulting")
def _reconsult(w: Driver) -> Any:
    cid = w.to("supervising").id
    # 微幸福: nothing was spent yet, so the decision's money goes back to the pool first
    return cid, make_command("request_reconsultation", cid, w), "zhou", ["funds_released", "reconsultation_requested"]


@case("feedback", "request_reconsultation", "consulting")
def _reconsult_in_feedback(w: Driver) -> Any:
    # 反馈落实: a resident finds a new problem while the measures are carried out, with co-signers
    cid = w.to("feedback").id
    # 微幸福: nothing was spent yet, so the decision's money goes back to the pool first
    return cid, make_command("request_reconsultation", cid, w), "li", ["funds_released", "reconsultation_requested"]


for _state in ("notified", "consulting", "supervising"):

    @case(_state, "escalate", "escalated")
    def _escalate(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        opened = state == "consulting"
        return cid, make_command("escalate", cid, w), "jie", ["round_closed", "escalated"] if opened else ["escalated"]


@case("escalated", "resume", "consulting")
def _resume(w: Driver) -> Any:
    cid = w.to("escalated").id
    return cid, make_command("resume", cid, w), "jie", ["resumed"]


@case("supervising", "close", "closed")
def _close(w: Driver) -> Any:
    cid = w.to("supervising").id
    w.finish_measures()
    w.clock.advance(hours=1)
    w.inspect()
    return cid, make_command("close", cid, w), "wang", ["closed"]


@case("escalated", "close", "closed")
def _close_by_ruling(w: Driver) -> Any:
    cid = w.to("escalated").id
    return cid, make_command("close", cid, w), "jie", ["closed"]


@case("proposed", "mark_overdue", None)
def _overdue_proposal(w: Driver) -> Any:
    cid = w.to("proposed").id
    w.clock.advance(days=15)
    return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, ["deadline_missed"]


@case("decided", "mark_overdue", None)
def _overdue_review(w: Driver) -> Any:
    cid = w.to("decided").id
    w.clock.advance(days=15)  # the legality review is due within 14 days
    return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, ["deadline_missed"]


for _state in ("notified", "consulting"):

    @case(_state, "mark_overdue", "escalated", "undecided_escalates")
    def _undecided_escalates(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        w.clock.advance(days=31)
        events = ["deadline_missed", "round_closed", "escalated"] if state == "consulting" else None
        return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, events or ["deadline_missed", "escalated"]

    @case(_state, "mark_overdue", None, escalate_undecided=False)
    def _undecided_flagged(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        w.clock.advance(days=31)
        return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, ["deadline_missed"]


for _state in ("feedback", "supervising"):

    @case(_state, "mark_overdue", "escalated", "unimplemented_escalates", escalate_unimplemented=True)
    def _unimplemented_escalates(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        w.clock.advance(days=31)
        return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, ["deadline_missed", "escalated"]

    @case(_state, "mark_overdue", None)
    def _unimplemented_flagged(w: Driver, state: str = _state) -> Any:
        cid = w.to(state).id
        w.clock.advance(days=31)
        return cid, make_command("mark_overdue", cid, w), CLOCK_ACTOR, ["deadline_missed"]


@case("notified", "schedule_meeting", None)
def _reschedule(w: Driver) -> Any:
    cid = w.to("notified").id
    w.serve_notice()
    w.clock.advance(days=1)  # the meeting was missed: the committee announces another
    return cid, make_command("schedule_meeting", cid, w), "wang", ["meeting_scheduled"]


@case("consulting", "schedule_meeting", None)
def _schedule_next(w: Driver) -> Any:
    cid = w.to("consulting_closed").id
    return cid, make_command("schedule_meeting", cid, w), "wc", ["meeting_scheduled"]


for _state in ("consulting", "decided", "feedback", "supervising", "escalated"):

    @case(_state, "record_minutes", None)
    def _minutes(w: Driver, state: str = _state) -> Any:
        cid = w.to("consulting_closed" if state == "consulting" else state).id
        if state == "escalated":  # a round was held before the matter was handed up
            w.to("consulting_closed")
            cid = w.escalate().id
        return cid, make_command("record_minutes", cid, w), "wang", ["minutes_recorded"]


def test_every_declared_transition_has_a_case() -> None:
    declared = {(t.source, t.trigger.value, t.target, t.routes) for t in six_step().transitions}
    assert set(CASES) == declared
    assert len(declared) == len(six_step().transitions)


@pytest.mark.parametrize("key", sorted(CASES, key=str), ids=lambda k: "-".join(str(p) for p in k if p))
def test_transition(key: tuple[str, str, str | None, tuple[str, ...]]) -> None:
    source, trigger, target, _routes = key
    fn, parameters = CASES[key]
    w = Driver(**parameters)
    cid, command, by, events = fn(w)
    actor = CAST[by] if isinstance(by, str) else by
    if trigger == "mark_overdue":
        _overdue_by_tick(w, cid, command, source, target, events)
        return
    if source == "new":
        step = w.engine.run(command, by=actor)
        cid = step.record.id
        before_version, before_history = 0, tuple[LogEntry, ...]()
    else:
        before = w.engine.get(cid)
        assert before.state.value == source
        before_version, before_history = before.version, w.engine.history(cid)
        assert trigger in [p.trigger for p in w.engine.allowed(cid, by=actor) if p.allowed]
        assert w.engine.explain(command, by=actor) is None
        step = w.engine.run(command, by=actor)
    rec = step.record
    expected = source if target is None else target
    assert rec.state.value == expected
    assert w.engine.get(cid) == rec
    assert [e.event.value for e in step.entries] == events
    history = w.engine.history(cid)
    assert history[: len(before_history)] == before_history
    assert history[len(before_history) :] == step.entries
    assert rec.version == before_version + len(events)
    last = step.entries[-1]
    assert last.target.value == expected
    assert last.actor == actor.id
    assert last.source is None if source == "new" else last.source is not None and last.source.value == source
    assert w.engine.verify(cid).ok


def _overdue_by_tick(w: Driver, cid: str, command: Command, source: str, target: str | None, events: list[str]) -> None:
    """The clock's step: nobody may take it, whoever they claim to be; ``tick`` takes it."""
    before = w.engine.get(cid)
    assert before.state.value == source
    before_history = w.engine.history(cid)
    not_the_clock(w, cid, command)
    for claimed in (CAST["system"], Actor("wang", roles={Role.SYSTEM, Role.COMMITTEE}), CAST["wang"]):
        assert "mark_overdue" not in [p.trigger for p in w.engine.allowed(cid, by=claimed)]
        refusal = refuse(w, cid, command, claimed)
        assert (refusal.code, refusal.guard) == ("role_not_allowed", "role"), claimed
        assert list(refusal.data["allowed"]) == ["system"]  # type: ignore[call-overload]
    steps = w.engine.tick()
    assert [s.record.id for s in steps] == [cid]
    step = steps[0]
    rec = step.record
    expected = source if target is None else target
    assert rec.state.value == expected
    assert w.engine.get(cid) == rec
    assert [e.event.value for e in step.entries] == events
    assert all((e.actor, e.role, e.at) == (CLOCK_ACTOR.id, "system", w.clock.now()) for e in step.entries)
    history = w.engine.history(cid)
    assert history[: len(before_history)] == before_history
    assert history[len(before_history) :] == step.entries
    assert rec.version == before.version + len(events)
    assert step.entries[-1].target.value == expected
    assert w.engine.verify(cid).ok
    assert w.engine.tick() == ()  # each deadline once


def test_propose_with_the_id_of_an_existing_consultation_conflicts() -> None:
    w = Driver()
    rec = w.to("notified")
    before = w.snapshot(rec.id)
    with pytest.raises(Conflict):
        w.propose(id=rec.id)
    assert w.snapshot(rec.id) == before


# ---- every illegal trigger in every state ---------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_illegal_triggers_are_refused_and_change_nothing(state: str) -> None:
    w = Driver()
    rec = w.to(state)
    cid = rec.id
    legal = six_step().triggers_from(rec.state.value)
    illegal = [t.value for t in Trigger if t.value not in legal and t is not Trigger.PROPOSE]
    assert illegal
    # the most powerful person: every role a directory can grant, at once, in this community
    everyone = w.actor(Actor("everyone", roles=set(Role) - NEVER_GRANTED))
    for trigger in illegal:
        refusal = refuse(w, cid, make_command(trigger, cid, w), everyone)
        assert refusal.code == "invalid_in_state", trigger
        assert refusal.guard == "state"
        assert refusal.trigger == trigger
        assert refusal.state == rec.state.value
        assert refusal.data["state"] == rec.state.value
        # the next steps named are those a person may be offered (the clock's are left out)
        assert list(refusal.data["next"]) == list(six_step().next_steps(rec.state.value))  # type: ignore[call-overload]
        assert trigger not in [p.trigger for p in w.engine.allowed(cid, by=everyone)]
    assert w.engine.get(cid) == rec


def test_invalid_in_state_text_names_the_state_and_next_steps() -> None:
    w = Driver()
    rec = w.to("proposed")
    refusal = refuse(w, rec.id, make_command("decide", rec.id, w), "wang")
    assert "proposed" in refusal.explain("en")
    assert "decide" in refusal.explain("en")
    assert "give notice" in refusal.explain("en")
    assert "提议" in refusal.explain("zh")
    assert "发布协商公告" in refusal.explain("zh")


# ---- every guard's refusal ------------------------------------------------------------------------


def test_unknown_topic_and_community() -> None:
    w = Driver()
    with pytest.raises(Refused) as info:
        w.propose(topic="public-affairs/no-such-thing")
    r = info.value
    assert (r.code, r.guard) == ("unknown_topic", "topic_in_catalogue")
    cat = w.catalogue
    assert dict(r.data) == {
        "action": "propose",
        "topic": "public-affairs/no-such-thing",
        "community": COMMUNITY,
        "item": cat.item_name(COMMUNITY, "public-affairs/no-such-thing"),
        "category_name_en": cat.category_name("public-affairs/no-such-thing", "en"),
        "category_name_zh": cat.category_name("public-affairs/no-such-thing", "zh"),
        "community_name_en": cat.community_name(COMMUNITY, "en"),
        "community_name_zh": cat.community_name(COMMUNITY, "zh"),
    }
    assert_renders(r)
    # li holds no role in a community the directory does not place him in: the role check comes first
    with pytest.raises(Refused) as info:
        w.propose(community="elsewhere")
    r = info.value
    assert (r.code, r.guard) == ("role_not_allowed", "role")
    assert r.data["actor"] == "li"
    w.enrol(CAST["li"], community="elsewhere")
    with pytest.raises(Refused) as info:
        w.propose(community="elsewhere")
    r = info.value
    assert (r.code, r.guard) == ("unknown_community", "topic_in_catalogue")
    assert r.data["community"] == "elsewhere"
    assert_renders(r)
    assert w.engine.find() == ()


def test_over_budget_cap() -> None:
    # the per-matter cap is a community's choice (none by default); the seed's 300,000 is the yearly fund
    w = Driver(budget_cap=Decimal(300000))
    with pytest.raises(Refused) as info:
        w.propose(budget=Decimal("300000.01"))
    r = info.value
    assert (r.code, r.guard) == ("over_budget_cap", "budget_within_cap")
    assert r.data["budget"] == Decimal("300000.01")
    assert r.data["cap"] == Decimal(300000)
    assert_renders(r)
    assert w.propose(budget=Decimal(300000)).state is State.PROPOSED  # the cap itself is allowed


def test_notice_too_short() -> None:
    w = Driver()
    cid = w.to("proposed").id
    now = w.moment()  # the refused notice and the accepted one below both happen now
    r = refuse(w, cid, Notify(consultation=cid, meeting_at=now + timedelta(days=2, hours=23)), "wang")
    assert (r.code, r.guard) == ("notice_too_short", "notice_long_enough")
    assert r.data["days"] == 3
    assert r.data["earliest"] == now + timedelta(days=3)
    assert "3" in r.explain("en")
    assert w.notify(meeting_at=now + timedelta(days=3)).state is State.NOTIFIED


def test_chair_required_on_consultation_day() -> None:
    w = Driver()
    cid = w.to("proposed", form=Form.CONSULTATION_DAY).id
    meeting = w.clock.now() + timedelta(days=5)
    r = refuse(w, cid, Notify(consultation=cid, meeting_at=meeting, chair=None), "wang")
    assert (r.code, r.guard) == ("chair_required", "consultation_day_met")
    assert dict(r.data) == {"action": "notify"}


def test_not_consultation_day() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    w = Driver(consultation_day=11)
    cid = w.to("proposed", form=Form.CONSULTATION_DAY).id
    wrong = datetime(2026, 3, 10, 23, 30, tzinfo=zone)
    r = refuse(w, cid, Notify(consultation=cid, meeting_at=wrong, chair="chen"), "wang")
    assert (r.code, r.guard) == ("not_consultation_day", "consultation_day_met")
    assert r.data["day"] == 11
    assert r.data["meeting"] == wrong
    assert "11" in r.explain("zh")
    # 02:00 on the 11th in Shanghai is still the 10th in UTC: the community's zone decides
    right = datetime(2026, 3, 11, 2, 0, tzinfo=zone)
    assert w.notify(meeting_at=right).state is State.NOTIFIED


def test_other_forms_ignore_the_consultation_day() -> None:
    w = Driver(consultation_day=11)
    w.to("proposed", form=Form.INVITATION)
    assert w.notify(chair=None).state is State.NOTIFIED


def test_a_round_refused_in_the_notice_period_names_the_first_moment_it_can_open() -> None:
    w = Driver()
    rec = w.to("notified")
    assert rec.schedule is not None
    assert rec.schedule.notice_ends < rec.schedule.meeting_at  # the meeting is after the notice period
    w.clock.advance(days=2)
    r = refuse(w, rec.id, make_command("open_round", rec.id, w), "wang")
    assert (r.code, r.guard) == ("before_meeting", "notice_served")
    assert r.data["meeting_at"] == rec.schedule.meeting_at
    assert "2026" in r.explain("en")
    # the moment the refusal names is the first moment the round opens, and not one before it
    w.clock.set(rec.schedule.notice_ends)
    assert refuse(w, rec.id, make_command("open_round", rec.id, w), "wang").code == "before_meeting"
    w.clock.set(rec.schedule.meeting_at)
    assert w.open_round().state is State.CONSULTING


def test_round_still_open() -> None:
    w = Driver()
    rec = w.to("consulting")
    r = refuse(w, rec.id, make_command("open_round", rec.id, w), "wang")
    assert (r.code, r.guard) == ("round_still_open", "previous_round_closed")
    assert r.data["round"] == 1


def test_round_limit() -> None:
    w = Driver()
    cid = w.to("consulting_closed").id
    w.hold_round(opinions=[("li", OPP)])
    w.hold_round()
    assert w.engine.get(cid).rounds_in_cycle == 3
    r = refuse(w, cid, make_command("open_round", cid, w), "wang")
    assert (r.code, r.guard) == ("round_limit", "rounds_left")
    assert (r.data["used"], r.data["limit"]) == (3, 3)


def test_no_open_round() -> None:
    w = Driver()
    cid = w.to("consulting_closed").id
    r = refuse(w, cid, make_command("record_opinion", cid, w), "li")
    assert (r.code, r.guard) == ("no_open_round", "round_is_open")
    r = refuse(w, cid, make_command("close_round", cid, w), "wang")
    assert (r.code, r.guard) == ("no_open_round", "round_is_open")


def test_no_open_round_in_a_new_cycle() -> None:
    # a round left open when supervision sent the matter back belongs to the old cycle
    w = Driver()
    cid = w.to("supervising").id
    w.run(make_command("request_reconsultation", cid, w), "zhou")
    r = refuse(w, cid, make_command("record_opinion", cid, w), "li")
    assert r.code == "no_open_round"


def test_already_recorded() -> None:
    w = Driver()
    cid = w.to("consulting").id
    w.opinion("li", S)
    r = refuse(w, cid, RecordOpinion(consultation=cid, stance=OPP), "li")
    assert (r.code, r.guard) == ("already_recorded", "first_opinion_in_round")
    assert dict(r.data) == {"action": "record_opinion", "participant": "li", "round": 1}


def test_no_round() -> None:
    w = Driver()
    cid = w.to("escalated").id
    rec = w.run(make_command("resume", cid, w), "jie")
    assert (rec.state, rec.cycle) == (State.CONSULTING, 2)
    r = refuse(w, cid, make_command("decide", cid, w), "wang")
    assert (r.code, r.guard) == ("no_round", "round_held")


def test_round_open() -> None:
    w = Driver()
    cid = w.to("consulting").id
    r = refuse(w, cid, make_command("decide", cid, w), "wang")
    assert (r.code, r.guard) == ("round_open", "round_held")
    assert r.data["round"] == 1


def test_needs_new_round() -> None:
    w = Driver()
    cid = w.to("decided").id
    w.review(lawful=False)
    r = refuse(w, cid, make_command("decide", cid, w), "wang")
    assert (r.code, r.guard) == ("needs_new_round", "round_held")
    assert r.data["round"] == 1
    w.hold_round()
    assert w.decide().state is State.DECIDED


def test_quorum_not_met() -> None:
    w = Driver()
    cid = w.to("consulting").id
    w.opinion("li", S)
    w.opinion("wu", S)
    w.close_round()
    r = refuse(w, cid, make_command("decide", cid, w), "wang")
    assert (r.code, r.guard) == ("quorum_not_met", "quorum_met")
    assert (r.data["round"], r.data["attended"], r.data["required"]) == (1, 2, 3)
    assert "2" in r.explain("zh")
    assert "3" in r.explain("zh")


def test_declared_attendees_count_towards_the_quorum() -> None:
    w = Driver()
    w.to("notified")
    w.serve_notice()
    w.open_round(attendees=("li", "wu", "zhang"))
    w.opinion("li", S)
    w.close_round()
    assert w.decide().state is State.DECIDED


@pytest.mark.parametrize(
    ("kind", "stances", "counts"),
    [
        ("threshold", [S, OPP, AM], (1, 1, 1, 0)),
        ("unanimity", [S, S, S, AM], (3, 0, 1, 0)),  # 3/4 support would pass the 2/3 threshold
        ("no_sustained_objection", [S, S, S, S, OPP], (4, 1, 0, 0)),  # 4/5 would pass the threshold
        ("no_sustained_objection", [AB, AB, AB], (0, 0, 0, 3)),  # nobody supports
    ],
)
def test_no_consensus(kind: str, stances: list[Stance], counts: tuple[int, int, int, int]) -> None:
    w = Driver(consensus={"kind": kind})
    cid = w.to("consulting").id
    invite(w, cid, "liu")  # a fifth voice: the expert, invited
    for who, stance in zip(("li", "wu", "zhang", "zhao", "liu"), stances, strict=False):
        w.opinion(who, stance)
    w.close_round()
    r = refuse(w, cid, make_command("decide", cid, w), "wang")
    assert (r.code, r.guard) == ("no_consensus", "consensus_reached")
    assert r.data["rule"] == kind
    assert (r.data["support"], r.data["oppose"], r.data["amend"], r.data["abstain"]) == counts
    assert r.data["round"] == 1


@pytest.mark.parametrize(
    ("kind", "stances"),
    [
        ("threshold", [S, S, OPP]),
        ("unanimity", [S, S, AB]),
        ("no_sustained_objection", [S, AM, AM]),
    ],
)
def test_consensus_reached_under_each_rule(kind: str, stances: list[Stance]) -> None:
    w = Driver(consensus={"kind": kind})
    w.to("consulting")
    for who, stance in zip(("li", "wu", "zhang"), stances, strict=True):
        w.opinion(who, stance)
    rec = w.close_round()
    assert rec.current_round is not None
    assert rec.current_round.tally is not None
    assert rec.current_round.tally.consensus
    assert w.decide().state is State.DECIDED


def test_major_needs_residents() -> None:
    w = Driver()
    cid = w.to("consulting", major=True).id
    invite(w, cid, "unit", "ngo")
    for who in ("zhao", "unit", "ngo"):  # stakeholders, invited, but no resident
        w.opinion(who, S)
    w.close_round()
    # a major matter is the residents' representatives' to decide: their vote is refused as a
    # committee's decision would be
    call = cf.CallVote(
        consultation=cid, body=cf.Body.REPRESENTATIVES_MEETING, resolution="东侧空地夜间开放", measures=(w.measure(),)
    )
    r = refuse(w, cid, call, "wang")
    assert (r.code, r.guard) == ("major_needs_residents", "residents_heard")
    committee = Driver(major_decided_by="committee")
    cid3 = committee.to("consulting", major=True).id
    invite(committee, cid3, "unit", "ngo")
    for who in ("zhao", "unit", "ngo"):
        committee.opinion(who, S)
    committee.close_round()
    r = refuse(committee, cid3, make_command("decide", cid3, committee), "wang")
    assert (r.code, r.guard) == ("major_needs_residents", "residents_heard")
    # a rule off: the same matter may be decided
    w2 = Driver(major_needs_residents=False)
    cid2 = w2.to("consulting", major=True).id
    invite(w2, cid2, "unit", "ngo")
    for who in ("zhao", "unit", "ngo"):
        w2.opinion(who, S)
    w2.close_round()
    assert w2.decide().state is State.DECIDED


def test_major_with_residents_may_be_decided() -> None:
    w = Driver()
    rec = w.to("decided", major=True)
    assert rec.state is State.DECIDED


def test_measures_required() -> None:
    w = Driver()
    cid = w.to("consulting_closed").id
    r = refuse(w, cid, Decide(consultation=cid, resolution="决定"), "wang")
    assert (r.code, r.guard) == ("measures_required", "carrier_outcome")


def test_measure_due_in_past() -> None:
    w = Driver()
    cid = w.to("consulting_closed").id
    due = w.clock.now()
    late = Measure(title="迟了", owner="zhao", due=due)
    r = refuse(w, cid, Decide(consultation=cid, resolution="决定", measures=(w.measure(), late)), "wang")
    assert (r.code, r.guard) == ("measure_due_in_past", "carrier_outcome")
    assert (r.data["measure"], r.data["number"], r.data["due"]) == (1, 2, due)  # index 1, the second measure
    assert "measure 2 " in r.explain("en")
    assert "第2项措施" in r.explain("zh")


def test_over_budget_against_the_proposal() -> None:
    w = Driver()
    cid = w.to("consulting_closed", budget=Decimal(1500)).id
    measures = (w.measure(budget="1000"), w.measure(budget="600", title="第二项"))
    r = refuse(w, cid, Decide(consultation=cid, resolution="决定", measures=measures), "wang")
    assert (r.code, r.guard) == ("over_budget", "carrier_outcome")
    assert (r.data["total"], r.data["budget"]) == (Decimal(1600), Decimal(1500))


def test_over_budget_against_the_cap() -> None:
    # the per-matter cap is a community's choice (none by default); the seed's 300,000 is the yearly fund
    w = Driver(budget_cap=Decimal(300000))
    cid = w.to("consulting_closed").id  # no budget proposed: the procedure's cap applies
    measures = (w.measure(budget="300000.01"),)
    r = refuse(w, cid, Decide(consultation=cid, resolution="决定", measures=measures), "wang")
    assert r.code == "over_budget"
    assert r.data["budget"] == Decimal(300000)


@pytest.mark.parametrize(
    ("carrier", "fields", "code"),
    [
        (Carrier.HEARING, {"hearing_record": "   "}, "hearing_record_required"),
        (Carrier.COORDINATION, {"agreement_parties": ("zhao",)}, "agreement_parties_required"),
        (Carrier.ADVISORY, {}, "advice_adoption_required"),
    ],
)
def test_carrier_outcome_required(carrier: Carrier, fields: dict[str, Any], code: str) -> None:
    w = Driver()
    cid = w.to("consulting_closed", carrier=carrier).id
    r = refuse(w, cid, Decide(consultation=cid, resolution="结论", **fields), "wang")
    assert (r.code, r.guard) == (code, "carrier_outcome")


def test_reviewer_not_independent() -> None:
    w = Driver()
    cid = w.to("decided").id
    both = Actor("wang", roles={Role.COMMITTEE, Role.SUPERVISOR})
    # a supervisor's role the caller claims counts for nothing: the directory has wang on the committee only
    r = refuse(w, cid, make_command("review", cid, w), both)
    assert (r.code, r.guard) == ("role_not_allowed", "role")
    w.enrol(both)  # now the directory has wang as a supervisor too
    r = refuse(w, cid, make_command("review", cid, w), both)
    assert (r.code, r.guard) == ("reviewer_not_independent", "independent_reviewer")
    assert r.data["reviewer"] == "wang"
    # unless the community turns the rule off
    w2 = Driver(independent_review=False)
    cid2 = w2.to("decided").id
    w2.enrol(both)
    rec = w2.run(make_command("review", cid2, w2), both)
    assert rec.state is State.FEEDBACK
    assert (w2.history()[-1].actor, w2.history()[-1].role) == ("wang", "supervisor")


def test_unknown_measure() -> None:
    w = Driver()
    cid = w.to("feedback").id
    r = refuse(w, cid, ReportProgress(consultation=cid, measure=1, percent=10), "wang")
    assert (r.code, r.guard) == ("unknown_measure", "measure_exists")
    assert (r.data["measure"], r.data["count"]) == (1, 1)


def test_not_published() -> None:
    w = Driver()
    cid = w.to("feedback").id
    r = refuse(w, cid, make_command("start_supervision", cid, w), "wang")
    assert (r.code, r.guard) == ("not_published", "published")


def test_publication_of_an_earlier_decision_does_not_count() -> None:
    w = Driver()
    cid = w.to("supervising").id
    w.run(make_command("request_reconsultation", cid, w), "zhou")
    w.hold_round()
    w.decide()
    w.review()
    r = refuse(w, cid, make_command("start_supervision", cid, w), "wang")
    assert r.code == "not_published"


def test_measures_unfinished() -> None:
    w = Driver()
    cid = w.to("supervising").id
    w.inspect()
    r = refuse(w, cid, make_command("close", cid, w), "wang")
    assert (r.code, r.guard) == ("measures_unfinished", "measures_done")
    assert list(r.data["pending"]) == ["划线 mark the bays"]  # type: ignore[call-overload]


def test_inspection_pending() -> None:
    w = Driver()
    cid = w.to("supervising").id
    w.finish_measures()
    r = refuse(w, cid, make_command("close", cid, w), "wang")
    assert (r.code, r.guard) == ("inspection_pending", "signed_off")
    w.clock.advance(hours=1)
    w.inspect(passed=False)
    assert refuse(w, cid, make_command("close", cid, w), "wang").code == "inspection_pending"
    w.clock.advance(hours=1)
    w.inspect(passed=True)
    w.clock.advance(hours=1)
    w.run(ReportProgress(consultation=cid, measure=0, percent=100, note="复核"), "wang")  # a later report
    assert refuse(w, cid, make_command("close", cid, w), "wang").code == "inspection_pending"
    w.clock.advance(hours=1)
    w.inspect(passed=True)
    assert w.run(make_command("close", cid, w), "wang").state is State.CLOSED


def test_cycle_limit() -> None:
    w = Driver(cycle_limit=1)
    cid = w.to("supervising").id
    r = refuse(w, cid, make_command("request_reconsultation", cid, w), "zhou")
    assert (r.code, r.guard) == ("cycle_limit", "cycles_left")
    assert (r.data["used"], r.data["limit"]) == (1, 1)
    cid2 = w.to("escalated").id
    r = refuse(w, cid2, make_command("resume", cid2, w), "jie")
    assert r.code == "cycle_limit"


def test_nothing_overdue() -> None:
    w = Driver()
    cid = w.to("proposed").id
    # a caller claiming the system role holds no role: the role check refuses before any deadline is read
    r = refuse(w, cid, make_command("mark_overdue", cid, w), CAST["system"])
    assert (r.code, r.guard) == ("role_not_allowed", "role")
    not_the_clock(w, cid, make_command("mark_overdue", cid, w))  # and nobody acts under the clock's id
    # the clock itself finds nothing due: a tick before the deadline logs nothing
    before = w.snapshot(cid)
    w.clock.advance(days=13)
    assert w.engine.tick() == ()
    assert w.snapshot(cid) == before
    # the core's guard, as the clock meets it on a stale due date
    ctx = Context(now=w.clock.now(), actor=CLOCK_ACTOR, catalogue=w.catalogue)
    result = apply(six_step(), w.engine.get(cid), MarkOverdue(consultation=cid), ctx)
    assert isinstance(result, Refused)
    assert (result.code, result.guard) == ("nothing_overdue", "something_overdue")
    assert_renders(result)
    w.clock.advance(days=2)  # the proposal is answered within 14 days: now it is overdue
    assert [s.record.id for s in w.engine.tick()] == [cid]


# ---- who takes part, invitations, proxies, conflicts of interest --------------------------------------


def test_already_invited() -> None:
    w = Driver()
    cid = w.to("notified").id
    r = refuse(w, cid, Invite(consultation=cid, people=("liu", "li")), "wang")
    assert (r.code, r.guard) == ("already_invited", "not_yet_invited")
    assert dict(r.data) == {"action": "invite", "people": ["li"]}
    rec = invite(w, cid, "liu")
    assert rec.invited == (*INVITED, "liu")
    r = refuse(w, cid, Invite(consultation=cid, people=("LIU",)), "wc")  # the same person, spelt otherwise
    assert dict(r.data) == {"action": "invite", "people": ["liu"]}


def test_invitation_notice() -> None:
    w = Driver()
    cid = w.to("consulting_closed").id
    w.schedule_meeting(meeting_at=w.moment() + timedelta(days=3))  # the next meeting, announced first
    invited_at = w.moment()
    rec = invite(w, cid, "liu")
    ends = invited_at + timedelta(days=3)
    assert rec.invitation_notice_ends == ends
    entry = w.history()[-1]
    assert (entry.event.value, entry.actor, entry.role) == ("invited", "wang", "committee")
    assert dict(entry.data) == {
        "invited": 1,
        "notice_ends": timestamp(ends),
        "people": ["liu"],
        "reason": "进一步协商",
    }
    w.clock.set(ends - timedelta(seconds=1))
    r = refuse(w, cid, make_command("open_round", cid, w), "wang")
    assert (r.code, r.guard) == ("invitation_notice", "notice_served")
    assert dict(r.data) == {"action": "open_round", "opens_at": ends}
    w.clock.set(ends)  # the moment named is the first moment a round opens
    assert w.open_round().state is State.CONSULTING
    assert w.opinion("liu").rounds[-1].opinions[-1].role is Role.EXPERT


def test_an_invitation_before_the_meeting_that_ends_after_it_delays_the_first_round() -> None:
    w = Driver()
    rec = w.to("notified")
    assert rec.schedule is not None
    meeting = rec.schedule.meeting_at
    w.clock.set(meeting - timedelta(days=1))
    ends = w.moment() + timedelta(days=3)
    invite(w, rec.id, "liu")
    assert ends > meeting
    # before the meeting and at it, the refusal names the first moment a round can open: the invitation's end
    for when in (meeting - timedelta(hours=1), meeting, ends - timedelta(seconds=1)):
        w.clock.set(when)
        r = refuse(w, rec.id, make_command("open_round", rec.id, w), "wang")
        assert (r.code, r.guard) == ("invitation_notice", "notice_served")
        assert dict(r.data) == {"action": "open_round", "opens_at": ends}
    w.clock.set(ends)
    assert w.open_round().state is State.CONSULTING


@pytest.mark.parametrize("trigger", ["record_opinion", "sign_in"])
def test_not_taking_part(trigger: str) -> None:
    w = Driver()
    cid = w.to("consulting").id
    # a council member and an expert hold participating roles, but were not invited to this matter
    for who in ("council", "liu", "deputy"):
        r = refuse(w, cid, make_command(trigger, cid, w), who)
        assert (r.code, r.guard) == ("not_taking_part", "takes_part")
        assert dict(r.data) == {"action": trigger, "person": who, "open_to": "invitees_and_residents"}
    # a resident of the community who was not invited takes part (the rounds are open to residents) ...
    ma = w.actor(Actor("ma", roles={Role.RESIDENT}))
    assert w.run(make_command(trigger, cid, w), ma).state is State.CONSULTING
    # ... and the convenors always do
    assert w.run(make_command(trigger, cid, w), "wc").state is State.CONSULTING


def test_rounds_open_to_invitees_only() -> None:
    w = Driver(round_open_to="invitees")
    cid = w.to("consulting").id
    ma = w.actor(Actor("ma", roles={Role.RESIDENT}))
    for trigger in ("record_opinion", "sign_in"):
        r = refuse(w, cid, make_command(trigger, cid, w), ma)
        assert (r.code, r.guard) == ("not_taking_part", "takes_part")
        assert dict(r.data) == {"action": trigger, "person": "ma", "open_to": "invitees"}
        assert "ma" in r.explain("en")
    assert w.opinion("wu").rounds[-1].opinions[-1].participant == "wu"  # invited


def test_attendees_take_part() -> None:
    w = Driver()
    cid = w.to("notified").id
    w.serve_notice()
    for ghost in ("ghost", "council"):  # nobody at all; someone who holds a role but takes no part
        r = refuse(w, cid, OpenRound(consultation=cid, attendees=("li", ghost)), "wang")
        assert (r.code, r.guard) == ("not_taking_part", "attendees_take_part")
        assert dict(r.data) == {"action": "open_round", "person": ghost, "open_to": "invitees_and_residents"}
    rec = w.open_round(attendees=("li", "wu", "wc"))
    assert rec.rounds[-1].attendees == ("li", "wu", "wc")
    assert rec.rounds[-1].resident_attended


def test_already_signed_in() -> None:
    w = Driver()
    cid = w.to("consulting").id
    rec = w.run(SignIn(consultation=cid), "wu")
    assert rec.rounds[-1].attendees == ("wu",)
    entry = w.history()[-1]
    assert (entry.event.value, entry.actor, entry.role, dict(entry.data)) == (
        "signed_in",
        "wu",
        "resident",
        {"attended": 1, "round": 1},
    )
    for by, command in (("wu", SignIn(consultation=cid)), ("wang", SignIn(consultation=cid, on_behalf_of="wu"))):
        r = refuse(w, cid, command, by)
        assert (r.code, r.guard) == ("already_signed_in", "first_sign_in")
        assert dict(r.data) == {"action": "sign_in", "person": "wu", "round": 1}
    # signed in, wu still gives an opinion, and counts once
    rec = w.opinion("wu")
    assert rec.rounds[-1].attendees == ("wu",)


def test_not_a_clerk() -> None:
    w = Driver()
    cid = w.to("consulting").id
    for by, behalf in (("li", "wu"), ("council", "wu"), ("wang", "wang"), ("li", "li")):
        for command in (
            RecordOpinion(consultation=cid, stance=S, on_behalf_of=behalf),
            SignIn(consultation=cid, on_behalf_of=behalf),
        ):
            r = refuse(w, cid, command, by)  # the council member takes no part either: the clerk check comes first
            if by == behalf:  # nobody records "for" themselves, clerk or not
                assert (r.code, r.guard) == ("on_behalf_of_self", "clerk_on_behalf")
                assert dict(r.data) == {"action": command.trigger.value, "actor": by}
                continue
            assert (r.code, r.guard) == ("not_a_clerk", "clerk_on_behalf")
            assert dict(r.data) == {
                "action": command.trigger.value,
                "actor": by,
                "allowed": ["committee", "working_committee"],
            }
    # a clerk records for a resident: the log names the clerk, the opinion is the resident's
    rec = w.run(RecordOpinion(consultation=cid, stance=OPP, on_behalf_of="zhang"), "wc")
    op = rec.rounds[-1].opinions[-1]
    assert (op.participant, op.recorded_by, op.role, op.stance) == ("zhang", "wc", Role.RESIDENT_REPRESENTATIVE, OPP)
    entry = w.history()[-1]
    assert (entry.actor, entry.role, entry.data["on_behalf_of"]) == ("wc", "working_committee", "zhang")
    r = refuse(w, cid, RecordOpinion(consultation=cid, stance=S), "zhang")
    assert (r.code, dict(r.data)) == (
        "already_recorded",
        {"action": "record_opinion", "participant": "zhang", "round": 1},
    )
    # the clerk's own parameter: only who the community names
    w2 = Driver(clerk_roles={Role.COMMITTEE})
    cid2 = w2.to("consulting").id
    r = refuse(w2, cid2, RecordOpinion(consultation=cid2, stance=S, on_behalf_of="zhang"), "wc")
    assert dict(r.data) == {"action": "record_opinion", "actor": "wc", "allowed": ["committee"]}


def test_a_proxy_opinion_keeps_its_role_as_a_role() -> None:
    w = Driver()
    cid = w.to("consulting").id
    rec = w.run(RecordOpinion(consultation=cid, stance=S, on_behalf_of="zhang"), "wang")
    op = rec.rounds[-1].opinions[-1]
    assert op.role is Role.RESIDENT_REPRESENTATIVE
    assert Consultation.model_validate(rec.model_dump()) == rec


def test_proposer_recuses() -> None:
    w = Driver()
    cid = w.to("decided").id
    li = w.actor(Actor("li", roles={Role.RESIDENT, Role.SUPERVISOR, Role.INSPECTION_GROUP, Role.COMMITTEE}))
    r = refuse(w, cid, make_command("review", cid, w), li)
    assert (r.code, r.guard) == ("proposer_recuses", "independent_reviewer")
    assert dict(r.data) == {"action": "review", "person": "li"}
    w.review()
    w.publish()
    w.start_supervision()
    r = refuse(w, cid, make_command("inspect", cid, w), li)
    assert (r.code, r.guard, dict(r.data)) == (
        "proposer_recuses",
        "proposer_recuses",
        {"action": "inspect", "person": "li"},
    )
    w.finish_measures()
    w.clock.advance(hours=1)
    w.inspect()
    r = refuse(w, cid, make_command("close", cid, w), li)
    assert (r.code, r.guard, dict(r.data)) == (
        "proposer_recuses",
        "proposer_recuses",
        {"action": "close", "person": "li"},
    )
    assert w.close().state is State.CLOSED
    # a community may turn the rule off
    w2 = Driver(proposer_recuses=False)
    cid2 = w2.propose().id
    w2.notify()
    w2.hold_round(opinions=[("wu", S), ("zhang", S), ("zhao", S)])  # li does not speak: no other conflict
    w2.decide()
    w2.enrol(li)
    assert w2.run(make_command("review", cid2, w2), li).state is State.FEEDBACK


def test_reviewer_voted() -> None:
    w = Driver()
    zhang = w.actor(Actor("zhang", roles={Role.RESIDENT_REPRESENTATIVE, Role.LEGAL_ADVISER}))
    cid = w.to("decided").id  # zhang spoke in the deciding round
    r = refuse(w, cid, make_command("review", cid, w), zhang)
    assert (r.code, r.guard) == ("reviewer_voted", "independent_reviewer")
    assert dict(r.data) == {"action": "review", "reviewer": "zhang", "round": 1}
    w2 = Driver(voters_recuse=False)
    w2.enrol(zhang)
    cid2 = w2.to("decided").id
    rec = w2.run(make_command("review", cid2, w2), zhang)
    assert rec.state is State.FEEDBACK
    assert (w2.history()[-1].actor, w2.history()[-1].role) == ("zhang", "legal_adviser")


def test_the_chair_holds_the_chair_and_is_not_the_proposer() -> None:
    w = Driver()
    cid = w.to("proposed", form=Form.CONSULTATION_DAY).id
    meeting = w.clock.now() + timedelta(days=5)
    for chair in ("wu", "wang", "ghost"):  # a resident, the committee, nobody: none holds the rotating chair
        r = refuse(w, cid, Notify(consultation=cid, meeting_at=meeting, chair=chair), "wang")
        assert (r.code, r.guard) == ("chair_not_a_chair", "chair_may_chair")
        assert dict(r.data) == {"action": "notify", "chair": chair}
    w.enrol(Actor("li", roles={Role.RESIDENT, Role.ROTATING_CHAIR}))
    r = refuse(w, cid, Notify(consultation=cid, meeting_at=meeting, chair="li"), "wang")
    assert (r.code, r.guard) == ("chair_is_proposer", "chair_may_chair")
    assert dict(r.data) == {"action": "notify", "chair": "li"}
    assert w.notify(meeting_at=meeting, chair="other_chair").chair == "other_chair"
    # with the rule off the proposer may chair; the role is still needed
    w2 = Driver(chair_not_proposer=False)
    cid2 = w2.to("proposed", form=Form.CONSULTATION_DAY).id
    w2.enrol(Actor("li", roles={Role.RESIDENT, Role.ROTATING_CHAIR}))
    r = refuse(w2, cid2, Notify(consultation=cid2, meeting_at=meeting, chair="wu"), "wang")
    assert r.code == "chair_not_a_chair"
    assert w2.notify(meeting_at=meeting, chair="li").chair == "li"


# ---- carriers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("carrier", [Carrier.HEARING, Carrier.ADVISORY])
def test_hearing_and_advisory_decide_without_consensus(carrier: Carrier) -> None:
    w = Driver()
    cid = w.to("consulting", carrier=carrier).id
    for who in ("li", "wu", "zhang"):
        w.opinion(who, OPP)
    rec = w.close_round()
    assert rec.current_round is not None
    assert rec.current_round.tally is not None
    assert not rec.current_round.tally.consensus
    # a decision is taken; a hearing or advice on a matter that is not major needs no legality review
    assert w.decide().state is State.FEEDBACK
    d = w.engine.get(cid).current_decision
    assert d is not None
    assert d.measures == ()


@pytest.mark.parametrize("carrier", [Carrier.HEARING, Carrier.ADVISORY])
def test_hearing_and_advisory_still_need_a_quorum(carrier: Carrier) -> None:
    w = Driver()
    cid = w.to("consulting", carrier=carrier).id
    w.opinion("li", OPP)
    w.close_round()
    r = refuse(w, cid, make_command("decide", cid, w), "wang")
    assert r.code == "quorum_not_met"


def test_coordination_needs_consensus_for_its_agreement() -> None:
    w = Driver()
    cid = w.to("consulting", carrier=Carrier.COORDINATION).id
    for who in ("li", "wu", "zhang"):
        w.opinion(who, OPP)
    w.close_round()
    cmd = Decide(consultation=cid, resolution="协议", agreement_parties=("zhao", "li"))
    assert refuse(w, cid, cmd, "wang").code == "no_consensus"


@pytest.mark.parametrize(
    ("carrier", "fields"),
    [
        (Carrier.HEARING, {"hearing_record": "听证笔录"}),
        (Carrier.COORDINATION, {"agreement_parties": ("zhao", "li")}),
        (Carrier.ADVISORY, {"advice_adopted": False}),
    ],
)
def test_non_decision_carriers_need_no_measures(carrier: Carrier, fields: dict[str, Any]) -> None:
    w = Driver(review_carriers=frozenset(Carrier))  # a variant that reviews every carrier
    cid = w.to("consulting_closed", carrier=carrier).id
    rec = w.run(Decide(consultation=cid, resolution="结论", **fields), "wang")
    assert rec.state is State.DECIDED
    d = rec.current_decision
    assert d is not None
    for name, value in fields.items():
        assert getattr(d, name) == value
    # and they go through the same legality review before any effect
    assert w.review().state is State.FEEDBACK


# ---- allowed() and explain() agree with execute -----------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_allowed_and_explain_agree_with_execute(state: str) -> None:
    probe = Driver()
    rec = probe.to(state)
    people = list(CAST.values())  # "system" among them: a person claiming the system role
    not_the_clock(probe, rec.id, make_command("withdraw", rec.id, probe))  # nobody acts under the clock's id
    checked = 0
    for actor in people:
        permissions = probe.engine.allowed(rec.id, by=actor)
        # everyone is offered a person's next steps, the clock's own left out: a caller is never the clock
        assert [p.trigger for p in permissions] == list(six_step().next_steps(rec.state.value))
        assert "mark_overdue" not in [p.trigger for p in permissions]
        if Role.SYSTEM in actor.roles:  # claiming the system role: nobody at all
            for p in permissions:
                assert p.refusal is not None
                assert (p.refusal.code, p.refusal.guard) == (role_refusal_code(rec.state.value, p.trigger), "role")
        for perm in permissions:
            # a fresh world in the same state, so that executing does not disturb the others
            w = Driver()
            cid = w.to(state).id
            assert cid == rec.id
            command = make_command(perm.trigger, cid, w)
            dry = w.engine.explain(command, by=actor)
            assert (dry is None) == perm.allowed, (state, actor.id, perm.trigger, dry, perm.refusal)
            if not perm.allowed:
                assert perm.refusal is not None
                assert dry is not None
                assert (dry.code, dry.guard) == (perm.refusal.code, perm.refusal.guard)
                assert perm.explain("zh") == perm.refusal.explain("zh")
                assert perm.explain("en").strip()
                before = w.snapshot(cid)
                with pytest.raises(Refused) as info:
                    w.engine.execute(command, by=actor)
                assert info.value.code == dry.code
                assert w.snapshot(cid) == before
            else:
                assert perm.refusal is None
                assert perm.explain() == ""
                step = w.engine.run(command, by=actor)
                assert step.entries[0].role == perm.role
                assert step.entries[0].actor == actor.id
            checked += 1
    if rec.state in {State.CLOSED, State.REJECTED, State.WITHDRAWN}:
        assert checked == 0  # nothing is allowed once it is over
    else:
        assert checked >= len(people)


def test_allowed_leaves_content_rules_to_execute() -> None:
    w = Driver()
    cid = w.to("consulting_closed").id
    perms = {p.trigger: p for p in w.engine.allowed(cid, by=CAST["wang"])}
    assert perms["decide"].allowed
    assert perms["decide"].role == "committee"
    bad = Decide(consultation=cid, resolution="决定")  # no measures
    refusal = w.engine.explain(bad, by=CAST["wang"])
    assert refusal is not None
    assert refusal.code == "measures_required"
    assert w.engine.explain(make_command("decide", cid, w), by=CAST["wang"]) is None


def test_allowed_reports_the_first_failing_guard() -> None:
    w = Driver()
    cid = w.to("consulting").id
    perms = {p.trigger: p for p in w.engine.allowed(cid, by=CAST["wang"])}
    assert perms["decide"].refusal is not None
    assert perms["decide"].refusal.code == "round_open"
    assert perms["open_round"].refusal is not None
    assert perms["open_round"].refusal.code == "round_still_open"
    assert perms["close_round"].allowed
    assert perms["escalate"].allowed
    # marking what is overdue is the clock's step: a person is not offered it, and may not take it
    assert "mark_overdue" not in perms
    refusal = w.engine.explain(MarkOverdue(consultation=cid), by=CAST["wang"])
    assert refusal is not None
    assert refusal.code == "role_not_allowed"
    # nor may a caller who claims the clock's role: offered a person's steps, refused every one
    clock_perms = {p.trigger: p for p in w.engine.allowed(cid, by=CAST["system"])}
    assert list(clock_perms) == list(six_step().next_steps("consulting"))
    assert "mark_overdue" not in clock_perms
    for perm in clock_perms.values():
        assert perm.refusal is not None
        assert (perm.refusal.code, perm.refusal.guard) == (role_refusal_code("consulting", perm.trigger), "role")


@pytest.mark.parametrize("trigger", ["record_opinion", "sign_in"])
def test_allowed_agrees_with_execute_for_a_clerk_recording_for_others(trigger: str) -> None:
    """A clerk who has spoken (and so signed in) may still record for the residents: ``allowed``
    must not tell them otherwise (its contract: guards that read the command are left to execute)."""
    w = Driver()
    cid = w.to("consulting").id
    w.opinion("wang")
    command = (
        RecordOpinion(consultation=cid, stance=S, on_behalf_of="li")
        if trigger == "record_opinion"
        else SignIn(consultation=cid, on_behalf_of="li")
    )
    assert w.engine.explain(command, by="wang") is None
    permission = {p.trigger: p for p in w.engine.allowed(cid, by="wang")}[trigger]
    assert permission.allowed, permission.refusal
    assert permission.role == "committee"


@pytest.mark.parametrize("state", STATES)
def test_propose_is_illegal_on_an_existing_consultation(state: str) -> None:
    """The pure core refuses ``propose`` against any existing record (the engine never asks)."""
    w = Driver()
    rec = w.to(state)
    cmd = Propose(community=COMMUNITY, topic=TOPIC, title="again", carrier=Carrier.DECISION, form=Form.COUNCIL)
    ctx = Context(now=w.clock.now(), actor=CAST["wang"], catalogue=w.catalogue)
    result = apply(six_step(), rec, cmd, ctx)
    assert isinstance(result, Refused)
    assert result.code == "invalid_in_state"
    assert result.state == rec.state.value
