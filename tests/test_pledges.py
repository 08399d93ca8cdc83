"""承诺制 and 成果运用路线图: publishing a decision publishes each measure as a public pledge (who, what,
by when, how much); progress with photos' hashes moves it on and 100 % keeps it; the committee may
move its date with a reason, within bounds, and the delay is logged; a pledge past its date undone is
what the clock reports as ``deadline_missed`` (决而不施), naming it, at its delayed date; the roadmap
shows every pledge's status, as JSON and as a public HTML page without personal data, and on the
command line."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import consultflow as cf
from consultflow import Event, PledgeStatus
from consultflow.canonical import timestamp
from consultflow.cli import main
from consultflow.errors import ValidationError
from consultflow.roadmap import build_roadmap, roadmap_html, roadmap_json, roadmap_text
from consultflow.testing import Driver
from consultflow.testing.driver import COMMUNITY


def photo(name: str) -> str:
    """The SHA-256 of a photo's bytes: what a report carries instead of the photo."""
    return hashlib.sha256(name.encode()).hexdigest()


def two_measures(d: Driver, *, title: str = "夜间停车 Night parking") -> cf.Consultation:
    """A consultation in feedback with two measures: bays (zhao, 20 days, 8000) and a gate (wang, 30 days, 3000)."""
    d.propose(title=title)
    d.notify()
    d.hold_round()
    gate = d.measure(days=30, budget="3000", title="道闸 gate", owner="wang")
    d.decide(measures=(d.measure(days=20, budget="8000"), gate))
    return d.review()


def refused(d: Driver, command: cf.ConsultationCommand, by: str = "wang") -> cf.Refused:
    """Run expecting a refusal that changes nothing and reads in both languages."""
    before = d.snapshot(command.consultation)
    with pytest.raises(cf.Refused) as info:
        d.engine.execute(command, by=by)
    assert d.snapshot(command.consultation) == before, "a refusal changes nothing"
    for lang in ("en", "zh"):
        text = info.value.explain(lang)
        assert text.strip(), lang
        assert "{" not in text, text
    return info.value


# ---- pledges published: who, what, by when, how much --------------------------------------------------


def test_publishing_a_decision_publishes_each_measure_as_a_pledge() -> None:
    d = Driver()
    rec = two_measures(d)
    decision = rec.current_decision
    assert decision is not None
    assert rec.pledges == ()
    step = d.step(cf.Publish(consultation=rec.id, channels=(cf.Channel.ROADMAP,), summary="公示"), "wang")
    events = [e.event for e in step.entries]
    assert events == [Event.PUBLISHED, Event.PLEDGE_PUBLISHED, Event.PLEDGE_PUBLISHED]
    bays, gate = (e.data for e in step.entries[1:])
    first, second = decision.measures
    assert bays == {
        "budget": "8000",
        "decision": 1,
        "due": timestamp(first.due),
        "measure": 0,
        "owner": "zhao",
        "title": "划线 mark the bays",
    }
    assert (gate["owner"], gate["title"], gate["due"], gate["budget"]) == (
        "wang",
        "道闸 gate",
        timestamp(second.due),
        "3000",
    )
    pledges = step.record.pledges
    assert [(p.owner, p.title, p.due, p.budget, p.status) for p in pledges] == [
        ("zhao", "划线 mark the bays", first.due, Decimal("8000"), PledgeStatus.PLEDGED),
        ("wang", "道闸 gate", second.due, Decimal("3000"), PledgeStatus.PLEDGED),
    ]
    # heard by the public and by the one person each pledge names
    audiences = [n.audience for n in step.notices if n.event is Event.PLEDGE_PUBLISHED]
    assert audiences == [(f"public:{COMMUNITY}", "zhao"), (f"public:{COMMUNITY}", "wang")]
    # published again on another channel: no second set of pledges
    again = d.step(cf.Publish(consultation=rec.id, channels=(cf.Channel.WECHAT,)), "wang")
    assert [e.event for e in again.entries] == [Event.PUBLISHED]
    assert again.record.pledges == pledges
    assert d.engine.verify(rec.id).ok  # replay makes the very same pledges


def test_a_decision_without_measures_publishes_no_pledge() -> None:
    d = Driver()
    d.to("feedback", carrier=cf.Carrier.ADVISORY)
    rec = d.publish()
    assert rec.pledges == ()
    assert Event.PLEDGE_PUBLISHED not in d.events()


def test_a_later_decision_supersedes_the_pledges_not_kept() -> None:
    d = Driver()
    two_measures(d)
    d.publish()
    d.report(1, 100)  # the gate is kept
    d.reconsult(by="wang")
    d.hold_round()
    d.decide()
    d.review()
    rec = d.publish()
    statuses = [(p.decision, p.measure, p.status) for p in rec.pledges]
    assert statuses == [
        (1, 0, PledgeStatus.SUPERSEDED),
        (1, 1, PledgeStatus.DONE),
        (2, 0, PledgeStatus.PLEDGED),
    ]


# ---- progress: photos' hashes, done at 100 % -------------------------------------------------------------


def test_progress_carries_photos_hashes_and_100_percent_keeps_the_pledge() -> None:
    d = Driver()
    two_measures(d)
    d.publish()
    shots = (photo("before.jpg"), photo("after.jpg").upper())  # any case in, lower case kept
    rec = d.report(0, 40, photos=shots, spent=Decimal("3000"))
    report = rec.progress[-1]
    assert report.photos == (photo("before.jpg"), photo("after.jpg"))
    # the step's progress entry (spending against the fund follows it as funds_spent)
    (reported,) = [e for e in d.history() if e.event is cf.Event.PROGRESS_REPORTED][-1:]
    assert reported.data["photos"] == [photo("before.jpg"), photo("after.jpg")]
    assert rec.pledges[0].status is PledgeStatus.IN_PROGRESS
    rec = d.report(0, 100, photos=(photo("done.jpg"),))
    assert rec.pledges[0].status is PledgeStatus.DONE
    assert rec.pledges[1].status is PledgeStatus.PLEDGED
    assert d.engine.verify(rec.id).ok


def test_a_report_without_photos_logs_as_before() -> None:
    d = Driver()
    two_measures(d)
    d.publish()
    d.report(0, 50)
    assert set(d.history()[-1].data) == {"decision", "measure", "note", "percent", "spent"}


@pytest.mark.parametrize(
    ("photos", "kind"),
    [
        (("not-a-hash",), "photo_hash"),
        (("a" * 63,), "photo_hash"),
        (("g" * 64,), "photo_hash"),
        ((photo("x"), photo("x")), "photos_duplicate"),
        (tuple(photo(str(i)) for i in range(21)), "too_long"),
    ],
)
def test_photos_are_validated_in_both_languages(photos: tuple[str, ...], kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        cf.ReportProgress(consultation="c-001", measure=0, percent=10, photos=photos)
    assert kind in [p[1] for p in info.value.problems]
    zh = info.value.explain("zh")
    assert "照片" in zh or "至多20项" in zh, zh
    assert "photo" in info.value.explain("en") or "at most 20" in info.value.explain("en")
    with pytest.raises(ValidationError):
        cf.command_from_dict(
            {"command": "report_progress", "consultation": "c-001", "measure": 0, "percent": 1, "photos": list(photos)}
        )


# ---- delays: the date moves, the decision does not, the log says why ----------------------------------


def test_a_delay_moves_the_pledges_date_and_is_logged() -> None:
    d = Driver()
    rec = two_measures(d)
    d.publish()
    decided = rec.current_decision.measures[0].due  # type: ignore[union-attr]
    step = d.step(
        cf.DelayPledge(consultation=rec.id, measure=0, due=decided + timedelta(days=10), reason="雨季 the rains"),
        "wang",
    )
    (entry,) = step.entries
    assert entry.event is Event.PLEDGE_DELAYED
    assert entry.data == {
        "decision": 1,
        "delays": 1,
        "due": timestamp(decided + timedelta(days=10)),
        "from_due": timestamp(decided),
        "measure": 0,
        "owner": "zhao",
        "reason": "雨季 the rains",
        "title": "划线 mark the bays",
    }
    pledge = step.record.pledges[0]
    assert (pledge.due, pledge.pledged_due, pledge.status) == (
        decided + timedelta(days=10),
        decided,
        PledgeStatus.DELAYED,
    )
    assert pledge.delays[0].reason == "雨季 the rains"
    assert pledge.delays[0].by == "wang"
    assert step.record.current_decision.measures[0].due == decided  # type: ignore[union-attr]
    # the next deadline is the gate's now (day 30), no longer the bays' (day 20)
    assert step.record.next_due == rec.current_decision.measures[1].due  # type: ignore[union-attr]
    assert [n.audience for n in step.notices] == [(f"public:{COMMUNITY}", "zhao")]
    # still in progress after a delay: reported, it stays delayed until done
    assert d.report(0, 60).pledges[0].status is PledgeStatus.DELAYED
    assert d.report(0, 100).pledges[0].status is PledgeStatus.DONE
    assert d.engine.verify(rec.id).ok


def test_delays_are_bounded_and_refused_in_both_languages() -> None:
    d = Driver()
    rec = two_measures(d)
    cid = rec.id
    decided = rec.current_decision.measures[0].due  # type: ignore[union-attr]

    def delay(days: float, measure: int = 0) -> cf.DelayPledge:
        return cf.DelayPledge(consultation=cid, measure=measure, due=decided + timedelta(days=days), reason="延误")

    assert refused(d, delay(5)).code == "not_published"  # publish first: no pledge yet
    d.publish()
    assert refused(d, delay(5), by="li").code == "role_not_allowed"  # the committee moves a pledge, nobody else
    assert refused(d, delay(0)).code == "delay_not_later"
    assert refused(d, delay(-3)).code == "delay_not_later"
    assert refused(d, delay(181)).code == "delay_too_far"  # pledge_delay_max: 180 days past the date decided
    assert refused(d, delay(5, measure=2)).code == "unknown_measure"
    d.run(delay(30), "wang")
    d.run(delay(60), "wang")
    limit = refused(d, delay(90))
    assert (limit.code, limit.data["limit"]) == ("delay_limit", 2)  # pledge_delay_limit
    assert "2" in limit.explain("zh")
    assert "延期" in limit.explain("zh")
    d.report(1, 100)
    assert refused(d, delay(40, measure=1)).code == "pledge_done"
    # a date already passed is no new date
    d.clock.set(decided + timedelta(days=100))
    late = Driver(pledge_delay_limit=5)
    rec2 = two_measures(late)
    late.publish()
    late.clock.set(decided + timedelta(days=45))
    move = cf.DelayPledge(consultation=rec2.id, measure=0, due=late.clock.now() - timedelta(days=1), reason="x")
    assert refused(late, move).code == "delay_in_past"


def test_a_variant_may_forbid_delays() -> None:
    d = Driver(pledge_delay_limit=0)
    rec = two_measures(d)
    d.publish()
    due = rec.current_decision.measures[0].due + timedelta(days=1)  # type: ignore[union-attr]
    assert refused(d, cf.DelayPledge(consultation=rec.id, measure=0, due=due, reason="x")).code == "delay_limit"


# ---- 决而不施: a missed pledge is what tick reports, at its delayed date ------------------------------


def test_a_missed_pledge_is_reported_by_tick_naming_it() -> None:
    d = Driver()
    rec = two_measures(d)
    d.publish()
    bays_due = rec.current_decision.measures[0].due  # type: ignore[union-attr]
    d.clock.set(bays_due + timedelta(hours=1))
    (step,) = d.engine.tick()
    (entry,) = step.entries
    assert entry.event is Event.DEADLINE_MISSED
    assert entry.data == {
        "deadline": "measure:1:0",
        "due": timestamp(bays_due),
        "kind": "measure",
        "measure": 0,
        "owner": "zhao",
        "pledged": True,
        "title": "划线 mark the bays",
    }
    assert [p.status for p in step.record.pledges] == [PledgeStatus.MISSED, PledgeStatus.PLEDGED]
    assert d.engine.tick() == ()  # once
    # reported late, it stays missed until it is done
    assert d.report(0, 80).pledges[0].status is PledgeStatus.MISSED
    assert d.report(0, 100).pledges[0].status is PledgeStatus.DONE


def test_a_delayed_pledge_is_not_missed_before_its_new_date_and_is_after() -> None:
    d = Driver()
    rec = two_measures(d)
    d.publish()
    bays_due = rec.current_decision.measures[0].due  # type: ignore[union-attr]
    gate_due = rec.current_decision.measures[1].due  # type: ignore[union-attr]
    d.report(1, 100)  # the gate is kept: only the bays are watched
    new_due = bays_due + timedelta(days=20)
    d.delay_pledge(0, days=20)
    assert d.record.next_due == new_due
    assert d.engine.tick(bays_due + timedelta(days=1), ahead_of_clock=True) == ()  # the old date passes quietly
    assert d.engine.tick(gate_due + timedelta(days=1), ahead_of_clock=True) == ()
    d.clock.set(new_due)
    (step,) = d.engine.tick()
    (entry,) = step.entries
    assert (entry.data["deadline"], entry.data["due"], entry.data["owner"]) == (
        "measure:1:0:1",
        timestamp(new_due),
        "zhao",
    )
    assert step.record.pledges[0].status is PledgeStatus.MISSED
    # delayed once more after it was missed: watched again at the next date, under its own key
    again = d.delay_pledge(0, days=10)
    assert again.pledges[0].status is PledgeStatus.DELAYED
    d.clock.set(new_due + timedelta(days=10))
    (step,) = d.engine.tick()
    assert step.entries[0].data["deadline"] == "measure:1:0:2"
    assert d.engine.verify(rec.id).ok


# ---- the roadmap ----------------------------------------------------------------------------------------


def _community() -> tuple[Driver, dict[str, str]]:
    """One community, a pledge in each status once C's first measure is past its date: A's bays in
    progress (40 %, due day ~24), A's gate done, B's bays delayed, B's gate pledged, C's first
    measure (due five days after its decision, day ~17) missed."""
    d = Driver()
    ids: dict[str, str] = {}
    ids["a"] = two_measures(d, title="A").id
    d.publish()
    d.report(0, 40, spent=Decimal("3200"), photos=(photo("a1"), photo("a2")))
    d.report(1, 100, spent=Decimal("2900"), photos=(photo("gate"),))
    ids["b"] = two_measures(d, title="B").id
    d.publish()
    d.delay_pledge(0, days=30, reason="雨季 the rains")
    d.propose(title="C")
    d.notify()
    d.hold_round()
    d.decide(measures=(d.measure(days=5, budget="500", title="清运 clear the rubbish"), d.measure(days=40)))
    ids["c"] = d.review().id
    d.publish()
    return d, ids


def test_the_roadmap_shows_every_status() -> None:
    d, ids = _community()
    c_due = d.get(ids["c"]).pledges[0].due
    now = c_due + timedelta(hours=1)
    records = d.store.find(cf.Query(community=COMMUNITY))
    roadmap = build_roadmap(records, COMMUNITY, now=now)
    got = {(i.consultation_title, i.measure): i.status for i in roadmap.items}
    assert got == {
        ("A", 0): PledgeStatus.IN_PROGRESS,
        ("A", 1): PledgeStatus.DONE,
        ("B", 0): PledgeStatus.DELAYED,
        ("B", 1): PledgeStatus.PLEDGED,
        ("C", 0): PledgeStatus.MISSED,  # past its date undone, before the clock has even marked it
        ("C", 1): PledgeStatus.PLEDGED,
    }
    a_bays = roadmap.items[0]
    assert (a_bays.consultation, a_bays.owner, a_bays.budget) == (ids["a"], "zhao", Decimal("8000"))
    assert (a_bays.percent, a_bays.spent, a_bays.photos) == (40, Decimal("3200"), (photo("a1"), photo("a2")))
    b_bays = roadmap.items[2]
    assert b_bays.due == b_bays.pledged_due + timedelta(days=30)
    assert b_bays.delays[0][2] == "雨季 the rains"
    data = roadmap_json(roadmap)
    assert data["counts"] == {"pledged": 2, "in_progress": 1, "delayed": 1, "done": 1, "missed": 1, "superseded": 0}
    assert [p["consultation"] for p in data["pledges"]] == [ids[k] for k in "aabbcc"]  # links back
    assert data["totals"] == {"budget": "23500", "pledges": 6, "spent": "6100"}
    # without a time, the statuses as recorded; once the clock marks it, the record says missed too
    assert build_roadmap(records, COMMUNITY).items[4].status is PledgeStatus.PLEDGED
    d.clock.set(now)
    d.engine.tick()
    marked = build_roadmap(d.store.find(cf.Query(community=COMMUNITY)), COMMUNITY).items
    assert marked[4].status is PledgeStatus.MISSED
    lines = roadmap_text(roadmap, "zh")
    assert "逾期未兑现" in lines[5]
    assert "已延期" in lines[3]
    assert lines[-1].startswith("共6项承诺")


def test_a_superseded_pledge_on_the_roadmap() -> None:
    d = Driver()
    two_measures(d)
    d.publish()
    d.reconsult(by="wang")
    d.hold_round()
    d.decide()
    d.review()
    d.publish()
    roadmap = build_roadmap([d.record], COMMUNITY, now=d.clock.now() + timedelta(days=365))
    assert [i.status for i in roadmap.items][:2] == [PledgeStatus.SUPERSEDED, PledgeStatus.SUPERSEDED]
    assert roadmap.items[2].status is PledgeStatus.MISSED  # a year on, the new pledge's date has passed


def test_the_html_page_escapes_text_and_holds_no_personal_data() -> None:
    d = Driver()
    d.propose(title="<script>alert('x')</script> 停车")
    d.notify()
    d.hold_round()
    d.decide(measures=(d.measure(title='<img src=x onerror="alert(1)"> 划线'),))
    d.review()
    d.publish()
    d.delay_pledge(0, reason="<b>雨季</b> & more")
    zhao = cf.Participant(
        id="zhao",
        name="赵经理 <i>Zhao</i>",
        community=COMMUNITY,
        phone="13800138000",
        id_number="320106199001011234",
        address="鼓楼区中山路1号",
    )
    roadmap = build_roadmap([d.record], COMMUNITY, people=[zhao], link="https://app.example/c/{consultation}")
    for lang in ("en", "zh"):
        page = roadmap_html(roadmap, lang)
        assert "<script" not in page
        assert "<img" not in page
        assert "<b>" not in page
        assert "<i>" not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
        assert "&lt;b&gt;雨季&lt;/b&gt; &amp; more" in page
        assert "赵经理 &lt;i&gt;Zhao&lt;/i&gt;" in page  # the public name
        for personal in ("13800138000", "320106199001011234", "中山路"):
            assert personal not in page
        assert 'href="https://app.example/c/c-001"' in page
    text = json.dumps(roadmap_json(roadmap), ensure_ascii=False)
    for personal in ("13800138000", "320106199001011234", "中山路"):
        assert personal not in text
    assert "成果运用路线图" in roadmap_html(roadmap, "zh")
    assert "Results roadmap" in roadmap_html(roadmap, "en")
    with pytest.raises(cf.InvalidInput):
        build_roadmap([d.record], COMMUNITY, link="javascript:alert(1)//{consultation}")


def test_progress_notes_stay_off_the_roadmap() -> None:
    d = Driver()
    two_measures(d)
    d.publish()
    d.report(0, 30, note="联系人电话13900000000")
    roadmap = build_roadmap([d.record], COMMUNITY)
    assert "13900000000" not in json.dumps(roadmap_json(roadmap)) + roadmap_html(roadmap)
    assert "13900000000" not in "\n".join(roadmap_text(roadmap))


# ---- the command line -----------------------------------------------------------------------------------


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "pledges.db"
    store = cf.SQLiteStore(path)
    try:
        d = Driver(store=store)
        two_measures(d)
        d.publish()
        d.report(0, 50, spent=Decimal("4000"), photos=(photo("half"),))
        d.report(1, 100)
        d.delay_pledge(0, days=7, reason="雨季")
    finally:
        store.close()
    return path


def test_cli_roadmap_json(store_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["roadmap", "--db", str(store_file), "--community", COMMUNITY, "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["community"] == COMMUNITY
    bays, gate = data["pledges"]
    assert (bays["owner"], bays["title"], bays["budget"], bays["percent"], bays["spent"]) == (
        "zhao",
        "划线 mark the bays",
        "8000",
        50,
        "4000",
    )
    assert bays["status"] in ("delayed", "missed")  # missed once the real clock passes its date
    assert bays["photos"] == [photo("half")]
    assert bays["delays"][0]["reason"] == "雨季"
    assert bays["due"] > bays["pledged_due"]
    assert (gate["status"], gate["consultation"]) == ("done", "c-001")


def test_cli_roadmap_text_html_and_problems(
    store_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["roadmap", "--db", str(store_file), "--community", COMMUNITY, "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "成果运用路线图" in out
    assert "已兑现" in out
    page = tmp_path / "roadmap.html"
    assert main(["roadmap", "--db", str(store_file), "--community", COMMUNITY, "--html", str(page)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    for lang, words in (("en", "no consultation of community"), ("zh", "没有社区")):
        code = main(["roadmap", "--db", str(store_file), "--community", "nowhere", "--lang", lang])
        captured = capsys.readouterr()
        assert code == 2
        (line,) = captured.err.splitlines()
        assert line.startswith("consultflow: ")
        assert words in line
        assert "Traceback" not in captured.err
    assert main(["roadmap", "--db", str(tmp_path / "missing.db"), "--community", COMMUNITY]) == 2
    assert main(["roadmap", "--db", str(store_file), "--community", COMMUNITY, "--link", "ftp://x/{consultation}"]) == 2
    assert main(["roadmap", "--db", str(store_file), "--community", COMMUNITY, "--html", str(store_file)]) == 2
    capsys.readouterr()


def test_cli_roadmap_of_a_store_that_does_not_hold_is_a_finding(
    store_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(store_file) as conn:
        conn.execute("UPDATE entries SET hash = ? WHERE consultation = 'c-001' AND seq = 3", ("f" * 64,))
    page = tmp_path / "page.html"
    code = main(["roadmap", "--db", str(store_file), "--community", COMMUNITY, "--html", str(page)])
    out = capsys.readouterr().out
    assert code == 1
    assert "BROKEN" in out
    assert not page.exists()  # no public page from a record that does not hold


# ---- the demo and the simulator ----------------------------------------------------------------------------


def test_the_demo_publishes_pledges() -> None:
    from consultflow.demo import demo_engine, run_story

    engine, clock = demo_engine(cf.MemoryStore())
    cid = run_story(engine, clock)
    events = [e.event for e in engine.history(cid)]
    assert events.count(Event.PLEDGE_PUBLISHED) >= 2
    assert engine.verify(cid).ok


def test_the_simulator_publishes_pledges() -> None:
    from consultflow import sim
    from consultflow.sim.runner import simulate_communities

    found = simulate_communities(sim.preset("gulou-2016"), 7, [0], keep_logs=True)
    events = [e.event for _, log in found for e in log]
    assert Event.PLEDGE_PUBLISHED in events


# ---- a property: the status follows from what was reported and delayed -------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 100), st.just(-1)), min_size=1, max_size=6))
def test_the_status_follows_the_reports_and_delays(actions: list[int]) -> None:
    """-1 is a delay (refused once the pledge is kept), a number a report of that percent: done
    exactly when the latest report says 100; else delayed once delayed; else in progress once the
    latest report says more than 0."""
    d = Driver(pledge_delay_limit=10)
    cid = two_measures(d).id
    d.publish()
    delayed, latest = False, None
    for act in actions:
        if act >= 0:
            d.report(0, act)
            latest = act
        elif latest == 100:
            assert (
                refused(
                    d,
                    cf.DelayPledge(
                        consultation=cid, measure=0, due=d.record.pledges[0].due + timedelta(days=1), reason="x"
                    ),
                ).code
                == "pledge_done"
            )
        else:
            d.delay_pledge(0, days=1)
            delayed = True
    expected = (
        PledgeStatus.DONE
        if latest == 100
        else PledgeStatus.DELAYED
        if delayed
        else PledgeStatus.IN_PROGRESS
        if latest
        else PledgeStatus.PLEDGED
    )
    assert d.record.pledges[0].status is expected


def test_a_definition_cannot_delay_a_pledge_of_a_decision_not_in_force() -> None:
    from consultflow.steps import default_transitions

    bent = cf.Transition(
        trigger=cf.Trigger.DELAY_PLEDGE, source="decided", target=None, roles=frozenset({cf.Role.COMMITTEE})
    )
    with pytest.raises(cf.ProcedureDefinitionError) as caught:
        cf.Procedure("bent", "1", transitions=[*default_transitions(), bent])
    assert any("delay_pledge from decided acts on a decision that is not in force" in p for p in caught.value.problems)
