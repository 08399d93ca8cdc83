"""Meetings (会议) as records inside a consultation: every meeting announced with its notice, the
consultation day (协商日) on its day with the rota's chair, online meetings (云协商) open over a
period, minutes (会议纪要) with their hash; the consultation day as a community session."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import consultflow as cf
from consultflow import sim
from consultflow.consultation_day import rota_chair, session, session_day
from consultflow.steps import CloseRound, OpenRound, RecordMinutes, ScheduleMeeting
from consultflow.testing import Driver
from consultflow.testing.driver import COMMUNITY
from oracle import check_log_order

SH = ZoneInfo("Asia/Shanghai")


def _at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=SH)


def refused(d: Driver, command: cf.Command, by: str, code: str) -> cf.Refused:
    """``command`` is refused with ``code``, changes nothing, and says why in both languages."""
    before = d.snapshot()
    with pytest.raises(cf.Refused) as info:
        d.run(command, by)
    r = info.value
    assert r.code == code, r
    assert d.snapshot() == before
    en, zh = r.explain("en"), r.explain("zh")
    assert en.strip()
    assert "{" not in en
    assert zh.strip()
    assert "{" not in zh
    assert en != zh
    return r


# ---- every meeting has its notice ----------------------------------------------------------------------


def test_round_two_without_a_meeting_announced_with_its_notice_is_refused() -> None:
    d = Driver()
    d.to("consulting_closed")
    cid = d.cid
    # on main round 2 opened at once: nobody had been told of a second meeting
    r = refused(d, OpenRound(consultation=cid), "wang", "no_meeting_scheduled")
    assert "announce" in r.explain("en")
    assert "会议公告" in r.explain("zh")
    # a meeting inside the notice period is refused, like the first notice's
    soon = d.moment() + timedelta(days=1)
    refused(d, ScheduleMeeting(consultation=cid, meeting_at=soon), "wang", "notice_too_short")
    meeting = d.moment() + timedelta(days=5)
    rec = d.run(ScheduleMeeting(consultation=cid, meeting_at=meeting, venue="议事厅", agenda="第二轮"), "wang")
    assert [m.number for m in rec.meetings] == [1, 2]
    m2 = rec.meetings[1]
    assert (m2.at, m2.venue, m2.agenda, m2.round, m2.scheduled_by) == (meeting, "议事厅", "第二轮", None, "wang")
    assert m2.notice_ends == m2.notified_at + timedelta(days=3)
    entry = d.history()[-1]
    assert entry.event is cf.Event.MEETING_SCHEDULED
    assert entry.data["meeting"] == 2
    assert entry.data["agenda"] == "第二轮"
    # the invited and the public hear of it
    (notice,) = [n for n in d.outbox(cid) if n.event is cf.Event.MEETING_SCHEDULED]
    assert {"li", "wu", "zhang", "zhao", f"public:{COMMUNITY}"} <= set(notice.audience)
    # one meeting ahead at a time
    later = meeting + timedelta(days=7)
    refused(d, ScheduleMeeting(consultation=cid, meeting_at=later), "wang", "meeting_pending")
    # the round waits for the meeting, then is held at it
    d.clock.set(meeting - timedelta(hours=1))
    r = refused(d, OpenRound(consultation=cid), "wang", "before_meeting")
    assert r.data["meeting_at"] == meeting
    d.clock.set(meeting)
    rec = d.run(OpenRound(consultation=cid), "wang")
    assert rec.rounds[-1].meeting == 2
    assert rec.meetings[1].round == 2
    assert rec.meetings[0].round == 1
    assert cf.verify(d.history()).ok
    check_log_order(d.history())


def test_the_driver_announces_each_later_meeting_so_stories_with_several_rounds_still_run() -> None:
    d = Driver()
    d.propose()
    d.notify()
    d.hold_round(consensus=False)
    d.hold_round(consensus=False)
    rec = d.hold_round()
    assert [m.round for m in rec.meetings] == [1, 2, 3]
    events = [e.event for e in d.history()]
    assert events.count(cf.Event.MEETING_SCHEDULED) == 2
    for m in rec.meetings:  # every meeting waited its notice
        assert m.at - m.notified_at >= timedelta(days=3)
        assert rec.rounds[m.round - 1].opened_at >= m.at  # type: ignore[operator]
    assert d.decide().state is cf.State.DECIDED
    check_log_order(d.history())
    assert cf.verify(d.history()).ok


# ---- the consultation day (协商日) ----------------------------------------------------------------------


def _consultation_day(**parameters: Any) -> Driver:
    d = Driver(consultation_day=11, **parameters)
    d.propose(form=cf.Form.CONSULTATION_DAY)
    return d


def test_every_meeting_of_a_consultation_day_matter_falls_on_the_day_with_a_rotating_chair() -> None:
    d = _consultation_day()
    cid = d.cid
    d.notify(meeting_at=_at(3, 11), chair="chen")
    d.clock.set(_at(3, 11))
    d.open_round(by="chen")
    for who, stance in (("li", cf.Stance.SUPPORT), ("wu", cf.Stance.OPPOSE), ("zhang", cf.Stance.OPPOSE)):
        d.opinion(who, stance)
    d.close_round(by="chen")
    # round 2 on 15 March: on main it was accepted; now the meeting is refused, and a round with it
    r = refused(
        d, ScheduleMeeting(consultation=cid, meeting_at=_at(3, 15), chair="chen"), "wang", "not_consultation_day"
    )
    assert r.data["day"] == 11
    assert "day 11" in r.explain("en")
    assert "每月11日" in r.explain("zh")
    refused(d, ScheduleMeeting(consultation=cid, meeting_at=_at(4, 11)), "wang", "chair_required")
    refused(d, ScheduleMeeting(consultation=cid, meeting_at=_at(4, 11), chair="wu"), "wang", "chair_not_a_chair")
    d.clock.set(_at(3, 15))
    refused(d, OpenRound(consultation=cid), "chen", "no_meeting_scheduled")
    rec = d.run(ScheduleMeeting(consultation=cid, meeting_at=_at(4, 11), chair="other_chair"), "wang")
    assert rec.meetings[1].consultation_day
    assert rec.meetings[1].chair == "other_chair"
    assert rec.chair == "other_chair"  # the chair of its latest meeting convenes
    # the meeting's day is the day its round opens: not the day after
    d.clock.set(_at(4, 12))
    refused(d, OpenRound(consultation=cid), "other_chair", "not_consultation_day")


def test_a_round_of_a_consultation_day_matter_opens_on_the_day() -> None:
    d = _consultation_day()
    d.notify(meeting_at=_at(3, 11), chair="chen")
    d.clock.set(_at(3, 11, 20))
    assert d.open_round(by="chen").rounds[-1].meeting == 1


# ---- the rota (轮值主席) --------------------------------------------------------------------------------


def test_the_rota_gives_each_month_its_chair_round_robin() -> None:
    rota = tuple(f"resident-{i:02d}" for i in range(1, 32))  # the seed: 30+ residents take turns
    params = cf.Parameters(consultation_day=11, chair_rota=rota, chair_rota_start="2026-03")
    months = [(2026 + (2 + i) // 12, (2 + i) % 12 + 1) for i in range(31)]
    chairs = [rota_chair(params, date(y, m, 11)) for y, m in months]
    assert chairs == list(rota)  # each of them once in 31 months, in the rota's order
    assert rota_chair(params, date(2028, 10, 11)) == rota[0]  # and round again
    assert rota_chair(params, date(2026, 2, 11)) == rota[-1]  # the month before counts back
    assert rota_chair(params, _at(3, 11), proposer="resident-01") == "resident-02"  # 回避: the next stands in
    assert rota_chair(cf.Parameters(), _at(3, 11)) is None
    with pytest.raises(cf.ValidationError):
        cf.Parameters(chair_rota_start="2026-13")


def test_a_consultation_day_meeting_is_chaired_by_the_rotas_chair_of_its_month() -> None:
    d = _consultation_day(chair_rota=("other_chair", "chen"), chair_rota_start="2026-03")
    cid = d.cid
    r = refused(
        d,
        cf.Notify(consultation=cid, meeting_at=_at(3, 11), invite=("li", "wu", "zhang"), chair="chen"),
        "wang",
        "chair_not_on_rota",
    )
    assert r.data == {"action": "notify", "chair": "chen", "expected": "other_chair", "month": "2026-03"}
    assert "other_chair" in r.explain("en")
    assert "轮值表" in r.explain("zh")
    d.notify(meeting_at=_at(3, 11), chair="other_chair")
    d.clock.set(_at(3, 11))
    d.hold_round(consensus=False, by="other_chair")
    refused(
        d, ScheduleMeeting(consultation=cid, meeting_at=_at(4, 11), chair="other_chair"), "wang", "chair_not_on_rota"
    )
    rec = d.schedule_meeting()  # the driver names the rota's chair of April
    assert rec.meetings[-1].chair == "chen"
    assert rec.meetings[-1].at == _at(4, 11)


# ---- the consultation day as a session of the community -------------------------------------------------


def test_the_session_of_a_consultation_day_lists_the_matters_meeting_that_day() -> None:
    d = Driver(consultation_day=11)
    first = d.propose(form=cf.Form.CONSULTATION_DAY, title="夜间停车 Night parking").id
    d.notify(meeting_at=_at(3, 11, 9), chair="chen", venue="“有一说一”轮值工作室")
    second = d.propose(form=cf.Form.CONSULTATION_DAY, topic="public-benefit/micro-greening", title="微绿化").id
    d.notify(meeting_at=_at(3, 11, 14), chair="other_chair", format=cf.MeetingFormat.ROUND_TABLE)
    elsewhere = d.propose(form=cf.Form.INVITATION, title="邀约").id  # not a consultation-day matter
    d.notify(meeting_at=_at(3, 11, 10))
    later = d.propose(form=cf.Form.CONSULTATION_DAY, title="四月").id  # meets on April's day
    d.notify(meeting_at=_at(4, 11), chair="chen")
    records = [d.get(c) for c in (first, second, elsewhere, later)]
    params = d.procedure.parameters
    day = session_day(params, 2026, 3)
    assert day == date(2026, 3, 11)
    s = session(records, COMMUNITY, day, params)
    assert [m.consultation for m in s.matters] == [first, second]  # in the order they meet
    assert [m.chair for m in s.matters] == ["chen", "other_chair"]
    assert s.chairs == ("chen", "other_chair")
    assert s.matters[0].venue == "“有一说一”轮值工作室"
    assert s.matters[1].format is cf.MeetingFormat.ROUND_TABLE
    assert not any(m.held for m in s.matters)
    assert [m.consultation for m in session(records, COMMUNITY, date(2026, 4, 11), params).matters] == [later]
    assert session(records, "another-community", day, params).matters == ()
    assert session_day(cf.Parameters(), 2026, 3) is None


# ---- online meetings (云协商) ----------------------------------------------------------------------------


def _online() -> tuple[Driver, datetime, datetime]:
    d = Driver()
    d.propose(form=cf.Form.CLOUD)
    opens = d.moment() + timedelta(days=4)
    closes = opens + timedelta(days=3)
    d.notify(meeting_at=opens, format=cf.MeetingFormat.ONLINE, closes_at=closes, venue="微信群 WeChat group")
    d.clock.set(opens)
    return d, opens, closes


def test_an_online_round_is_open_over_a_period_and_cannot_close_early() -> None:
    d, opens, closes = _online()
    rec = d.open_round(attendees=())
    assert rec.rounds[-1].format is cf.MeetingFormat.ONLINE
    assert rec.meetings[0].closes_at == closes
    d.clock.set(opens + timedelta(days=1))
    d.opinion("li")
    d.clock.set(opens + timedelta(days=2))
    d.opinion("wu")
    r = refused(d, CloseRound(consultation=d.cid), "wang", "online_meeting_open")
    assert r.data["closes_at"] == closes
    assert "open until" in r.explain("en")
    assert "开放至" in r.explain("zh")
    d.clock.set(closes - timedelta(minutes=1))
    d.opinion("zhang")  # opinions arrive until it closes
    d.clock.set(closes)
    r = refused(d, cf.RecordOpinion(consultation=d.cid, stance=cf.Stance.SUPPORT), "zhao", "meeting_closed")
    assert "closed" in r.explain("en")
    assert "已于" in r.explain("zh")
    rec = d.close_round()
    assert rec.rounds[-1].tally is not None
    assert rec.rounds[-1].tally.support == 3
    assert cf.verify(d.history()).ok


def test_a_round_cannot_open_after_its_online_meeting_closed() -> None:
    d, opens, closes = _online()
    # not superseded while it is open; once it closed unheld, the next one is announced
    d.clock.set(opens + timedelta(days=1))
    refused(d, ScheduleMeeting(consultation=d.cid, meeting_at=closes + timedelta(days=5)), "wang", "meeting_pending")
    d.clock.set(closes)
    refused(d, OpenRound(consultation=d.cid), "wang", "meeting_closed")
    rec = d.schedule_meeting()
    assert [m.round for m in rec.meetings] == [None, None]
    d.serve_notice()
    assert d.open_round().rounds[-1].meeting == 2


def test_a_closing_time_is_for_an_online_meeting_after_it_opens() -> None:
    at = _at(3, 11)
    with pytest.raises(cf.ValidationError, match="online"):
        ScheduleMeeting(consultation="c-001", meeting_at=at, closes_at=at + timedelta(days=1))
    with pytest.raises(cf.ValidationError, match="closes after"):
        cf.Notify(consultation="c-001", meeting_at=at, format=cf.MeetingFormat.ONLINE, closes_at=at)


# ---- minutes (会议纪要) ---------------------------------------------------------------------------------

MINUTES = "第一轮：同意东侧空地夜间开放 round 1: the east lot opens at night"


def test_minutes_are_recorded_once_with_their_hash_and_a_correction_is_logged_as_one() -> None:
    d = Driver()
    d.to("consulting")
    cid = d.cid
    refused(d, RecordMinutes(consultation=cid, meeting=1, text=MINUTES), "wang", "meeting_not_held")
    for who, stance in (("li", cf.Stance.SUPPORT), ("wu", cf.Stance.SUPPORT), ("zhang", cf.Stance.SUPPORT)):
        d.opinion(who, stance)
    d.close_round()
    refused(d, RecordMinutes(consultation=cid, meeting=2, text=MINUTES), "wang", "no_such_meeting")
    refused(
        d, RecordMinutes(consultation=cid, meeting=1, text=MINUTES, correction=True), "wang", "no_minutes_to_correct"
    )
    refused(d, RecordMinutes(consultation=cid, meeting=1, text=MINUTES), "li", "role_not_allowed")
    rec = d.record_minutes(1, MINUTES, by="chen")  # the meeting's chair
    digest = hashlib.sha256(MINUTES.encode("utf-8")).hexdigest()
    minutes = rec.meetings[0].minutes
    assert [(m.text, m.sha256, m.recorded_by, m.correction) for m in minutes] == [(MINUTES, digest, "chen", False)]
    entry = d.history()[-1]
    assert entry.event is cf.Event.MINUTES_RECORDED
    assert entry.data == {"correction": False, "meeting": 1, "round": 1, "sha256": digest}
    refused(d, RecordMinutes(consultation=cid, meeting=1, text="another"), "wang", "minutes_already_recorded")
    fixed = MINUTES + "（更正 corrected）"
    rec = d.record_minutes(1, fixed, correction=True)
    assert [m.correction for m in rec.meetings[0].minutes] == [False, True]
    assert rec.meetings[0].current_minutes is not None
    assert rec.meetings[0].current_minutes.sha256 == hashlib.sha256(fixed.encode()).hexdigest()
    assert d.history()[-1].data["correction"] is True
    assert cf.verify(d.history()).ok
    check_log_order(d.history())


def test_only_the_committee_or_the_meetings_chair_records_its_minutes() -> None:
    d = _consultation_day()
    d.notify(meeting_at=_at(3, 11), chair="chen")
    d.clock.set(_at(3, 11))
    d.hold_round(by="chen")
    d.schedule_meeting(chair="other_chair")  # April's meeting, another chair: now the consultation's
    r = refused(d, RecordMinutes(consultation=d.cid, meeting=1, text=MINUTES), "other_chair", "not_the_meetings_chair")
    assert r.data["chair"] == "chen"
    assert d.record_minutes(1, MINUTES, by="wc").meetings[0].minutes[0].recorded_by == "wc"


def test_a_variant_may_make_a_decision_wait_for_the_deciding_rounds_minutes() -> None:
    d = Driver(minutes_before_decision=True)
    d.to("consulting_closed")
    r = refused(d, d.decide_command(), "wang", "minutes_missing")
    assert r.data == {"action": "decide", "meeting": 1, "round": 1}
    d.record_minutes()
    assert d.decide().state is cf.State.DECIDED
    assert Driver().to("decided").state is cf.State.DECIDED  # by default a decision does not wait


# ---- the simulation announces its meetings --------------------------------------------------------------


def test_simulated_rounds_are_each_held_at_a_meeting_announced_with_its_notice() -> None:
    scenario = sim.Scenario(name="meetings", communities=2, sub_districts=1, months=2, arrivals={"public-affairs": 3.0})
    results = sim.simulate(scenario, 7, keep_logs=True)
    assert results.logs is not None
    several = 0
    for entries in results.logs.values():
        check_log_order(entries, scenario.procedure())
        opened = [e for e in entries if e.event is cf.Event.ROUND_OPENED]
        if len(opened) > 1:
            several += 1
            assert sum(e.event is cf.Event.MEETING_SCHEDULED for e in entries) == len(opened) - 1
    assert several  # some consultations took more than one round


# ---- the variant's file and the reader's timeline --------------------------------------------------------


def test_a_variant_keeps_its_rota_and_minutes_rule_through_its_file() -> None:
    rota = ("chen", "other_chair", "wu")
    proc = cf.six_step().variant(
        "xiaotaoyuan", "2", parameters={"consultation_day": 11, "chair_rota": rota, "minutes_before_decision": True}
    )
    again = cf.Procedure.from_dict(proc.to_dict())
    assert again.parameters.chair_rota == rota
    assert again.parameters.minutes_before_decision is True
    assert again.parameters.chair_rota_start == "2026-01"


def test_the_timeline_shows_meetings_and_minutes_in_both_languages() -> None:
    from consultflow.timeline import format_timeline

    d = Driver()
    d.to("consulting_closed")
    d.schedule_meeting(venue="议事厅")
    d.record_minutes(1, MINUTES)
    digest = hashlib.sha256(MINUTES.encode("utf-8")).hexdigest()
    en = "\n".join(format_timeline(d.history(), "en"))
    zh = "\n".join(format_timeline(d.history(), "zh"))
    assert "meeting 2" in en
    assert "第2次会议" in zh
    assert f"minutes of meeting 1, SHA-256 {digest[:12]}" in en
    assert f"第1次会议纪要，哈希值{digest[:12]}" in zh


def test_a_procedure_that_opens_later_rounds_must_announce_them() -> None:
    # every later round opens at a meeting announced with its notice: a definition without the rows to
    # announce one could never hold round 2, and is refused when it is built
    from consultflow.procedure.checks import check_definition
    from consultflow.steps import default_transitions
    from consultflow.vocabulary import Trigger

    rows = default_transitions()
    check_definition("six-step", "1", rows)
    with pytest.raises(cf.ProcedureDefinitionError, match="schedule_meeting"):
        check_definition("six-step", "1", [t for t in rows if t.trigger is not Trigger.SCHEDULE_MEETING])
