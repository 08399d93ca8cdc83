"""Meetings carry their format (圆桌会, hearing, online, ...) and attendance its mode; records say
when and how they ended. All optional: a log written without them is unchanged."""

from __future__ import annotations

import pytest

import consultflow as cf
from consultflow.steps import OpenRound, SignIn
from consultflow.testing import Driver


def test_a_round_keeps_its_format_and_who_attended_online() -> None:
    d = Driver()
    d.to("notified")
    d.serve_notice()
    rec = d.open_round(format=cf.MeetingFormat.ROUND_TABLE, attendees=("li", "wu", "zhang"), online=("wu",))
    rnd = rec.rounds[-1]
    assert (rnd.format, rnd.online, rnd.attendees) == (cf.MeetingFormat.ROUND_TABLE, ("wu",), ("li", "wu", "zhang"))
    opened = d.history()[-1]
    assert opened.data == {"attendees": 3, "cycle": 1, "format": "round_table", "online": 1, "round": 1}
    rec = d.run(SignIn(consultation=d.cid, attendance=cf.Attendance.ONLINE), "zhao")
    assert rec.rounds[-1].online == ("wu", "zhao")
    assert d.history()[-1].data == {"attendance": "online", "attended": 4, "round": 1}
    assert cf.verify(d.history()).ok


def test_without_a_format_the_log_is_as_before() -> None:
    d = Driver()
    d.to("notified")
    d.serve_notice()
    rec = d.open_round()
    assert (rec.rounds[-1].format, rec.rounds[-1].online) == (None, ())
    assert d.history()[-1].data == {"attendees": 0, "cycle": 1, "round": 1}
    d.run(SignIn(consultation=d.cid), "li")
    assert d.history()[-1].data == {"attended": 1, "round": 1}


def test_online_names_only_people_who_attend() -> None:
    with pytest.raises(cf.ValidationError, match="online"):
        OpenRound(consultation="c-001", attendees=("li",), online=("wu",))


@pytest.mark.parametrize(
    ("path", "ending"),
    [("closed", cf.Ending.DONE), ("rejected", cf.Ending.REJECTED), ("withdrawn", cf.Ending.WITHDRAWN)],
)
def test_a_record_says_when_and_how_it_ended(path: str, ending: cf.Ending) -> None:
    d = Driver()
    rec = d.to(path)
    assert rec.ending is ending
    assert rec.ended_at == d.history()[-1].at


def test_a_ruling_ends_an_escalated_matter_and_an_open_round_is_marked_abandoned() -> None:
    d = Driver()
    d.to("consulting")
    rec = d.withdraw()
    assert rec.rounds[-1].abandoned is True
    assert rec.ending is cf.Ending.WITHDRAWN
    d.to("escalated")
    rec = d.close(by="jie")
    assert rec.ending is cf.Ending.RULING
    assert rec.ended_at is not None
    assert d.to("proposed").ending is None
