"""Cases found in review: each once let the procedure be bent or a store disagree with another."""

from __future__ import annotations

from datetime import timedelta

import pytest

import consultflow as cf
from consultflow import Carrier, Query, Refused, ReportProgress, Role, Stance, State
from consultflow.testing.driver import CAST, Driver


@pytest.mark.parametrize("bad", ["li wang", 'a"b', "x\\y", "-dash", "tab\there", "x" * 129, ""])
def test_an_actor_id_that_could_not_be_stored_is_refused_at_once(bad: str) -> None:
    with pytest.raises(ValueError, match="id"):
        cf.Actor(bad, roles={Role.RESIDENT})


@pytest.mark.parametrize("good", ["阿卜杜拉·买买提", "li+1@example.cn", "王小明", "user:42"])
def test_ids_from_real_directories_are_accepted_and_reload(good: str) -> None:
    w = Driver()
    rec = w.to("consulting")
    w.opinion(cf.Actor(good, roles={Role.RESIDENT}), Stance.SUPPORT)
    stored = w.engine.get(rec.id)
    again = cf.Consultation.model_validate_json(stored.model_dump_json())
    assert again == stored
    assert again.current_round is not None
    assert good in again.current_round.attendees


@pytest.mark.parametrize("carrier", [Carrier.ADVISORY, Carrier.HEARING])
def test_a_carrier_that_needs_no_consensus_is_not_escalated_at_the_round_limit(carrier: Carrier) -> None:
    w = Driver(round_limit=1)
    w.to("consulting", carrier=carrier)
    for who, stance in (("zhang", Stance.SUPPORT), ("zhao", Stance.OPPOSE), ("wu", Stance.OPPOSE)):
        w.opinion(who, stance)
    after = w.close_round()
    assert after.state is State.CONSULTING
    # decided; a hearing or advice on a matter that is not major takes effect without a review
    assert w.decide().state is State.FEEDBACK


def test_a_decision_carrier_is_still_escalated_at_the_round_limit() -> None:
    w = Driver(round_limit=1)
    w.to("consulting")
    w.opinion("zhang", Stance.OPPOSE)
    assert w.close_round().state is State.ESCALATED


def test_an_inspection_at_the_same_instant_as_a_later_report_does_not_sign_it_off() -> None:
    w = Driver()
    rec = w.to("supervising")
    w.inspect(passed=True)
    # straight to the engine: the report happens at the same clock reading as the inspection
    w.engine.execute(ReportProgress(consultation=rec.id, measure=0, percent=100), by=CAST["wang"])
    assert w.history()[-1].at == w.history()[-2].at
    with pytest.raises(Refused) as info:
        w.run(cf.Close(consultation=rec.id), "wang")
    assert info.value.code == "inspection_pending"
    w.inspect(passed=True)
    assert w.run(cf.Close(consultation=rec.id), "wang").state is State.CLOSED


def test_a_measure_reported_done_and_then_not_done_is_not_done() -> None:
    w = Driver()
    rec = w.to("supervising")
    w.run(ReportProgress(consultation=rec.id, measure=0, percent=100), "wang")
    after = w.run(ReportProgress(consultation=rec.id, measure=0, percent=40, note="返工 redo"), "wang")
    decision = after.current_decision
    assert decision is not None
    assert after.next_due == decision.measures[0].due  # the deadline runs again
    w.clock.advance(hours=1)
    w.inspect(passed=True)
    with pytest.raises(Refused) as info:
        w.run(cf.Close(consultation=rec.id), "wang")
    assert info.value.code == "measures_unfinished"


def test_the_first_round_is_the_announced_meeting() -> None:
    w = Driver()
    w.propose()
    w.notify(meeting_at=w.moment() + timedelta(days=7))
    w.clock.advance(days=4)  # the 3-day notice period is over, the meeting is not yet
    with pytest.raises(Refused) as info:
        w.open_round()
    assert info.value.code == "before_meeting"
    assert "本轮协商须在该次会议上开始" in info.value.explain("zh")
    w.clock.advance(days=3)
    assert w.open_round().state is State.CONSULTING


def test_refusal_texts_number_measures_from_one_and_show_local_days() -> None:
    w = Driver(consultation_day=11)
    w.propose(form=cf.Form.CONSULTATION_DAY)
    evening = w.clock.now().replace(day=11, hour=19)  # 19:00 UTC on the 11th is the 12th in Shanghai
    with pytest.raises(Refused) as info:
        w.notify(meeting_at=evening)
    assert info.value.code == "not_consultation_day"
    assert "12" in info.value.explain("en")  # shown in the community's time zone, where it is the 12th
    w2 = Driver()
    rec2 = w2.to("feedback")
    with pytest.raises(Refused) as info:
        w2.run(ReportProgress(consultation=rec2.id, measure=1, percent=10), "wang")
    assert info.value.explain("en") == "there is no measure 2; the decision has 1"
    w3 = Driver()
    w3.propose()
    with pytest.raises(Refused) as info:
        w3.notify(meeting_at=w3.moment() + timedelta(days=1))
    assert "at least 3 day(s)" in info.value.explain("en")


@pytest.mark.parametrize(
    "query",
    [
        lambda: Query(limit=-1),
        lambda: Query(limit=2**63),
        lambda: Query(community="a\x00b"),
        lambda: Query(topic="x\x00"),
    ],
)
def test_a_query_no_store_could_answer_alike_is_refused(query: object) -> None:
    with pytest.raises(cf.InvalidInput):
        query()  # type: ignore[operator]


def test_out_of_range_positions_are_invalid_input_in_every_store(tmp_path: object) -> None:
    from pathlib import Path

    stores: list[cf.Store] = [cf.MemoryStore(), cf.SQLiteStore(Path(str(tmp_path)) / "x.db")]
    for store in stores:
        w = Driver(store=store)
        rec = w.propose()
        with pytest.raises(cf.InvalidInput):
            store.entries(rec.id, after=2**63)
        with pytest.raises(cf.InvalidInput):
            store.lease(2**63, w.clock.now())
        assert [e.seq for e in store.entries(rec.id, after=-5)] == [1]
        store.close()


def test_measure_numbers_in_the_demo_timeline_start_at_one() -> None:
    from consultflow.demo import demo_engine, run_story
    from consultflow.timeline import format_timeline

    engine, clock = demo_engine()
    lines = format_timeline(engine.history(run_story(engine, clock)))
    assert not any("measure 0" in line for line in lines)
    assert any("measure 1 50%" in line for line in lines)


def test_two_different_procedures_under_one_name_and_version_are_refused() -> None:
    base = cf.six_step()
    changed = base.variant(base.name, base.version, parameters={"round_limit": 5})
    directory = cf.MemoryDirectory()  # nobody acts here: the engine only needs one to be built
    with pytest.raises(cf.InvalidInput, match="new version"):
        cf.Engine(base, procedures=[changed], directory=directory)
    # the same definition twice is fine
    assert cf.Engine(base, procedures=[cf.six_step()], directory=directory).procedure is base


def test_a_resident_rates_a_decision_once() -> None:
    w = Driver()
    rec = w.to("feedback")
    w.run(cf.RecordFeedback(consultation=rec.id, satisfaction=5), "li")
    with pytest.raises(Refused) as info:
        w.run(cf.RecordFeedback(consultation=rec.id, satisfaction=5), "li")
    assert info.value.code == "feedback_given"
    assert "已对该决定作出评价" in info.value.explain("zh")
    after = w.run(cf.RecordFeedback(consultation=rec.id, satisfaction=3), "zhang")
    assert [(f.participant, f.decision) for f in after.feedback] == [("li", 1), ("zhang", 1)]
