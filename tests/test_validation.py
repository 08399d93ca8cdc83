"""Bad input gets a clear, typed error that names what is wrong - never a deep traceback - and a
stale write is a ``Conflict`` that writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pydantic
import pytest

import consultflow as cf
from consultflow import Carrier, Form, MemoryStore, Propose, State
from consultflow.testing.driver import CAST, COMMUNITY, T0, TOPIC, Driver

WANG, LI, JIE = CAST["wang"], CAST["li"], CAST["jie"]
GOOD_PROPOSAL: dict[str, Any] = {
    "community": COMMUNITY,
    "topic": TOPIC,
    "title": "夜间停车",
    "carrier": "decision",
    "form": "council",
}


def _error(build: Any) -> cf.ValidationError:
    with pytest.raises(cf.ValidationError) as caught:
        build()
    # one error type for callers: the library's own, caught with every other one
    assert isinstance(caught.value, cf.ConsultflowError)
    assert caught.value.code == "invalid_fields"
    assert len(str(caught.value)) < 2_000  # a message, not a dump
    assert len(caught.value.explain("zh")) < 2_000
    return caught.value


def _locs(error: cf.ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors()}  # type: ignore[attr-defined]


def test_validation_error_is_the_librarys_own() -> None:
    assert cf.ValidationError is not pydantic.ValidationError  # type: ignore[comparison-overlap]
    assert issubclass(cf.ValidationError, cf.ConsultflowError)
    assert issubclass(cf.ValidationError, ValueError)


def test_a_missing_field_is_named() -> None:
    error = _error(lambda: Propose(community=COMMUNITY, title="x", carrier="decision", form="council"))  # type: ignore[call-arg, arg-type]
    assert _locs(error) == {"topic"}
    assert "topic" in str(error)
    assert "Field required" in str(error)


@pytest.mark.parametrize(
    ("field", "value"),
    [("carrier", "banana"), ("form", "picnic")],
)
def test_an_unknown_enum_value_is_named_with_the_choices(field: str, value: str) -> None:
    error = _error(lambda: Propose(**{**GOOD_PROPOSAL, field: value}))
    assert _locs(error) == {field}
    assert field in str(error)
    # the message lists what would have been accepted
    known = [c.value for c in (Carrier if field == "carrier" else Form)]
    assert all(k in str(error) for k in known)


def test_an_unknown_stance_and_verdict_are_refused() -> None:
    assert _locs(_error(lambda: cf.RecordOpinion(consultation="c", stance="maybe"))) == {"stance"}  # type: ignore[arg-type]
    assert _locs(_error(lambda: cf.ReviewLegality(consultation="c", verdict="fine"))) == {"verdict"}  # type: ignore[arg-type]


def test_a_naive_datetime_is_refused() -> None:
    naive = datetime(2026, 3, 11, 10)
    error = _error(lambda: cf.Notify(consultation="c1-2026-001", meeting_at=naive))
    assert _locs(error) == {"meeting_at"}
    assert "timezone" in str(error)
    error = _error(lambda: cf.Measure(title="划线", owner="zhao", due=naive))
    assert _locs(error) == {"due"}


def test_a_huge_title_is_refused_without_echoing_it() -> None:
    title = "停" * 20_000
    error = _error(lambda: Propose(**{**GOOD_PROPOSAL, "title": title}))
    assert _locs(error) == {"title"}
    assert "200 characters" in str(error)
    assert title not in str(error)


@pytest.mark.parametrize("bad", ["", "has space", "-leading-dash", "x" * 200, "a\nb", "c1/../../etc'"])
def test_a_bad_id_is_refused(bad: str) -> None:
    error = _error(lambda: cf.CloseRound(consultation=bad))
    assert _locs(error) == {"consultation"}
    assert "consultation" in str(error)


def test_a_bad_topic_and_community_are_refused() -> None:
    assert _locs(_error(lambda: Propose(**{**GOOD_PROPOSAL, "topic": "no-slash"}))) == {"topic"}
    assert _locs(_error(lambda: Propose(**{**GOOD_PROPOSAL, "community": "社区 1"}))) == {"community"}


def test_an_unlawful_review_without_legal_basis_is_refused() -> None:
    error = _error(lambda: cf.ReviewLegality(consultation="c1-2026-001", verdict="unlawful"))  # type: ignore[arg-type]
    assert "legal_basis" in str(error)
    assert "correction" in str(error)
    error = _error(lambda: cf.ReviewLegality(consultation="c1-2026-001", verdict="unlawful", legal_basis="《民法典》"))  # type: ignore[arg-type]
    assert "correction" in str(error)
    # whitespace is not a legal basis
    _error(lambda: cf.ReviewLegality(consultation="c1-2026-001", verdict="unlawful", legal_basis=" ", correction=" "))  # type: ignore[arg-type]
    ok = cf.ReviewLegality(consultation="c1-2026-001", verdict="unlawful", legal_basis="《民法典》", correction="表决")  # type: ignore[arg-type]
    assert ok.verdict is cf.Verdict.UNLAWFUL


def test_other_field_rules_are_enforced() -> None:
    assert _locs(_error(lambda: Propose(**{**GOOD_PROPOSAL, "budget": Decimal("-1")}))) == {"budget"}
    assert _locs(_error(lambda: Propose(**{**GOOD_PROPOSAL, "surprise": 1}))) == {"surprise"}
    assert _locs(_error(lambda: cf.RecordFeedback(consultation="c", satisfaction=6))) == {"satisfaction"}
    assert _locs(_error(lambda: cf.ReportProgress(consultation="c", measure=0, percent=101))) == {"percent"}
    assert _locs(_error(lambda: cf.Publish(consultation="c", channels=()))) == {"channels"}
    error = _error(lambda: cf.Notify(consultation="c", meeting_at=T0, invite=("li", "li")))
    assert "twice" in str(error)


def test_command_from_dict_validates() -> None:
    error = _error(lambda: cf.command_from_dict({"command": "notify", "consultation": "c"}))
    assert _locs(error) == {"meeting_at"}
    with pytest.raises(ValueError, match="unknown command 'dance'"):
        cf.command_from_dict({"command": "dance"})
    cmd = cf.Notify(consultation="c", meeting_at=T0, invite=("li",))
    assert cf.command_from_dict(cmd.to_dict()) == cmd


def test_commands_are_frozen() -> None:
    cmd = cf.CloseRound(consultation="c")
    with pytest.raises(cf.ValidationError):
        cmd.consultation = "d"  # type: ignore[misc]


# ---- the engine's own checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [{"command": "propose", **GOOD_PROPOSAL}, "notify", None, 42])
def test_the_engine_refuses_a_non_command(command: object) -> None:
    engine = Driver().engine
    with pytest.raises(cf.InvalidInput, match="command"):
        engine.execute(command, by=WANG)  # type: ignore[arg-type]
    with pytest.raises(cf.InvalidInput):
        engine.run(command, by=WANG)  # type: ignore[arg-type]
    assert engine.find() == ()


NOT_A_PERSON = r"'by' is the acting person's id \(or a consultflow\.Actor\)"


@pytest.mark.parametrize("actor", [None, 42, {"id": "wang", "roles": ["committee"]}])
def test_the_engine_refuses_a_non_actor(actor: object) -> None:
    engine = Driver().engine
    with pytest.raises(cf.InvalidInput, match=NOT_A_PERSON):
        engine.execute(Propose(**GOOD_PROPOSAL), by=actor)  # type: ignore[arg-type]
    assert engine.find() == ()


def test_a_person_id_acts_with_the_roles_the_directory_gives() -> None:
    """``by`` was once an ``Actor`` only, so ``by="wang"`` was refused; now a person's id is how a
    caller names who acts, and the roles come from the directory (normalised: "WANG" is wang)."""
    story = Driver()
    rec = story.engine.execute(Propose(**GOOD_PROPOSAL), by="li")
    assert rec.proposer == "li"
    assert story.engine.history(rec.id)[-1].role == cf.Role.RESIDENT.value
    with pytest.raises(cf.Refused) as refused:
        story.engine.execute(cf.Reject(consultation=rec.id, reason="no"), by="nobody")  # holds no role
    assert refused.value.code == "role_not_allowed"
    with pytest.raises(cf.InvalidInput, match="not a valid id"):
        story.engine.execute(cf.Reject(consultation=rec.id, reason="no"), by="wa ng")
    with pytest.raises(cf.InvalidInput, match="invisible"):
        story.engine.execute(cf.Reject(consultation=rec.id, reason="no"), by="wang\u200b")
    assert story.engine.history(rec.id)[-1].event is cf.Event.PROPOSED  # nothing written
    rejected = story.engine.execute(cf.Reject(consultation=rec.id, reason="no"), by="WANG")
    assert rejected.state is State.APPEALABLE  # 不予受理, open to appeal (申请复核)
    last = story.engine.history(rec.id)[-1]
    assert (last.actor, last.role) == ("wang", cf.Role.COMMITTEE.value)


@pytest.mark.parametrize("ask", ["explain", "allowed"])
@pytest.mark.parametrize("actor", [None, 42])
def test_explain_and_allowed_refuse_a_non_actor(ask: str, actor: object) -> None:
    story = Driver()
    story.propose()
    engine = story.engine
    call = (
        (lambda: engine.explain(cf.Reject(consultation=story.cid, reason="no"), by=actor))  # type: ignore[arg-type]
        if ask == "explain"
        else (lambda: engine.allowed(story.cid, by=actor))  # type: ignore[arg-type]
    )
    with pytest.raises(cf.InvalidInput, match=NOT_A_PERSON):
        call()


def test_explain_and_allowed_take_a_person_id() -> None:
    """What ``by="wang"`` now means to ``explain`` and ``allowed``: wang, as the directory knows him."""
    story = Driver()
    story.propose()
    engine = story.engine
    assert engine.explain(cf.Reject(consultation=story.cid, reason="no"), by="wang") is None
    refusal = engine.explain(cf.Reject(consultation=story.cid, reason="no"), by="wu")
    assert refusal is not None
    assert refusal.code == "role_not_allowed"
    reject = next(p for p in engine.allowed(story.cid, by="wang") if p.trigger == cf.Trigger.REJECT)
    assert (reject.allowed, reject.role) == (True, cf.Role.COMMITTEE)
    assert not next(p for p in engine.allowed(story.cid, by="wu") if p.trigger == cf.Trigger.REJECT).allowed


def test_invalid_input_is_a_value_error_and_a_consultflow_error() -> None:
    assert issubclass(cf.InvalidInput, ValueError)
    assert issubclass(cf.InvalidInput, cf.ConsultflowError)


def test_an_unknown_consultation_is_not_found() -> None:
    story = Driver()
    story.propose()
    missing = "c1-2026-404"
    for call in (
        lambda: story.engine.execute(cf.Reject(consultation=missing, reason="no"), by=WANG),
        lambda: story.engine.get(missing),
        lambda: story.engine.history(missing),
        lambda: story.engine.verify(missing),
        lambda: story.engine.allowed(missing, by=WANG),
        lambda: story.engine.explain(cf.Reject(consultation=missing, reason="no"), by=WANG),
    ):
        with pytest.raises(cf.NotFound) as caught:
            call()
        assert caught.value.consultation == missing
        assert missing in str(caught.value)
    # ids are case-sensitive
    with pytest.raises(cf.NotFound):
        story.engine.get(story.cid.upper())


def test_a_clock_with_naive_time_is_refused() -> None:
    class NaiveClock:
        def now(self) -> datetime:
            return datetime(2026, 3, 2, 9)

    story = Driver()
    engine = cf.Engine(clock=NaiveClock(), catalogue=story.catalogue, directory=story.directory)
    with pytest.raises(cf.InvalidInput, match="naive"):
        engine.execute(Propose(**GOOD_PROPOSAL), by=LI)
    assert engine.find() == ()


# ---- stale writes -------------------------------------------------------------------------------------------


def test_a_stale_write_is_a_conflict_and_writes_nothing() -> None:
    store = MemoryStore()
    clock = cf.SimulatedClock(T0)
    story = Driver(store=store, clock=clock)
    first = story.engine
    second = Driver(store=store, clock=clock).engine
    story.propose()

    # the first engine loads, and prepares a step from what it loaded ...
    stale = store.load(story.cid)
    clock.advance(hours=1)
    ctx = cf.Context(now=clock.now(), actor=WANG, catalogue=first.catalogue)
    step = cf.apply(first.procedure, stale, cf.Reject(consultation=story.cid, reason="不予受理"), ctx)
    assert isinstance(step, cf.Step)
    assert step.expected_version == stale.version == 1

    # ... while the second engine writes first
    meeting = clock.now() + timedelta(days=5)
    second.execute(cf.Notify(consultation=story.cid, meeting_at=meeting, invite=("li",)), by=WANG)
    current = store.load(story.cid)
    log = store.entries(story.cid)
    outbox = store.outbox()

    with pytest.raises(cf.Conflict) as caught:
        store.append(step, stale.version)
    conflict = caught.value
    assert (conflict.consultation, conflict.expected, conflict.actual) == (story.cid, 1, 2)
    assert "nothing was written" in str(conflict)
    assert store.load(story.cid) == current
    assert store.entries(story.cid) == log
    assert store.outbox() == outbox
    assert current.state is State.NOTIFIED
    assert first.verify(story.cid).ok


def test_two_engines_cannot_create_the_same_consultation() -> None:
    store = MemoryStore()
    clock = cf.SimulatedClock(T0)
    first = Driver(store=store, clock=clock).engine
    second = Driver(store=store, clock=clock).engine  # same id factory: the same next id
    made = first.execute(Propose(**GOOD_PROPOSAL), by=LI)
    with pytest.raises(cf.Conflict) as caught:
        second.execute(Propose(**{**GOOD_PROPOSAL, "title": "另一个"}), by=LI)
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert store.load(made.id) == made
    assert len(store.entries(made.id)) == 1


def test_creating_an_existing_consultation_says_so() -> None:
    conflict = cf.Conflict("c1-2026-001", 0, 1)
    assert "exists already" in str(conflict)


def test_an_append_that_does_not_continue_the_chain_is_refused() -> None:
    story = Driver()
    story.propose()
    store = story.engine.store
    rec = store.load(story.cid)
    ctx = cf.Context(now=story.clock.now(), actor=WANG, catalogue=story.engine.catalogue)
    step = cf.apply(story.engine.procedure, rec, cf.Reject(consultation=story.cid, reason="no"), ctx)
    assert isinstance(step, cf.Step)
    store.append(step, 1)
    with pytest.raises(cf.Conflict):
        store.append(step, 1)  # the same step twice
    assert len(store.entries(story.cid)) == 2
    assert story.state is State.APPEALABLE  # 不予受理, open to appeal (申请复核)
    with pytest.raises(cf.Refused) as refused:
        story.engine.execute(cf.Escalate(consultation=story.cid, reason="x"), by=JIE)
    assert refused.value.code == "invalid_in_state"


def test_an_actor_id_that_cannot_be_logged_is_refused_clearly() -> None:
    engine = Driver().engine
    # InvalidInput, or a validation error when building the Actor; either way it names the id
    with pytest.raises(ValueError, match=r"(?i)\bid\b|actor") as caught:
        engine.execute(Propose(**GOOD_PROPOSAL), by=cf.Actor("li\ud800", roles={cf.Role.RESIDENT}))
    assert not isinstance(caught.value, UnicodeError), repr(caught.value)
    assert engine.find() == ()
