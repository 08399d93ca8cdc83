"""Reminders (提醒): the meeting tomorrow, a decision due in N days, a round about to close - each
once per deadline, through the outbox, whoever runs them and however often."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consultflow import InvalidInput, MemoryStore, SimulatedClock
from consultflow.delivery import Dispatcher, Leads, MemoryChannel, Reminders, Templates, due_reminders
from consultflow.notices import Notice
from consultflow.storage.sqlite import SQLiteStore
from consultflow.testing import append
from consultflow.vocabulary import Event
from store_support import T0, Schemas, opening, require_postgres

DECISION_DUE = T0 + timedelta(days=30, seconds=1)  # the kit's procedure: a decision within 30 days of notice


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "r.db", synchronous="NORMAL")
    yield s
    s.close()


def _notified(store: Any, cid: str = "m1") -> None:
    for step in opening(cid)[:2]:  # proposed, then notified: the meeting is at T0 + 1 h
        append(store, step)


def test_the_meeting_is_reminded_within_its_lead_and_not_after() -> None:
    record = opening("m")[1].record
    assert [r.kind for r in due_reminders(record, T0, Leads())] == ["meeting"]
    assert due_reminders(record, T0, Leads(meeting=timedelta(minutes=30))) == []  # not within 30 min yet
    assert due_reminders(record, T0 + timedelta(hours=2), Leads()) == []  # the meeting is past
    assert due_reminders(record, T0, Leads(meeting=None)) == []
    reminder = due_reminders(record, T0, Leads())[0]
    assert reminder.key == "meeting:1"
    assert set(reminder.audience) == {"a", "b", "c", "li"}


def test_a_decision_and_an_open_round_are_reminded_days_before() -> None:
    record = opening("m")[2].record  # a round is open
    now = DECISION_DUE - timedelta(hours=12)
    kinds = {r.kind: r for r in due_reminders(record, now, Leads())}
    assert set(kinds) == {"round", "decision"}
    assert kinds["decision"].due == DECISION_DUE
    assert "role:committee" in kinds["decision"].audience
    assert due_reminders(record, DECISION_DUE - timedelta(days=4), Leads()) == []  # three days: not yet


def test_each_reminder_is_added_once_however_often_it_runs(store: SQLiteStore) -> None:
    _notified(store)
    reminders = Reminders(store)
    assert reminders.run(T0) == 1
    assert reminders.run(T0 + timedelta(minutes=5)) == 0
    assert reminders.run(T0 + timedelta(minutes=50)) == 0
    keys = [n.key for n in store.outbox() if n.event is Event.REMINDER]
    assert keys == ["m1:remind:meeting:1"]


def test_many_schedulers_at_once_still_add_each_reminder_once(store: SQLiteStore, tmp_path: Path) -> None:
    for i in range(5):
        _notified(store, f"m{i}")
    added: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        with SQLiteStore(tmp_path / "r.db", synchronous="NORMAL") as own:
            n = Reminders(own).run(T0)
        with lock:
            added.append(n)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(added) == 5
    reminders = [n.key for n in store.outbox() if n.event is Event.REMINDER]
    assert sorted(reminders) == sorted(set(reminders))
    assert len(reminders) == 5


def test_the_dispatcher_sends_reminders_that_say_what_is_coming(store: SQLiteStore) -> None:
    _notified(store)
    clock = SimulatedClock(T0)
    channel = MemoryChannel()
    dispatcher = Dispatcher(store, sinks={"m": channel}, clock=clock, reminders=Reminders(store))
    report = dispatcher.run(until="ready")
    assert report.delivered == 2  # the notice of the meeting, then its reminder
    reminder = channel.accepted["m1:remind:meeting:1"]
    assert reminder.messages["en"].subject.endswith("reminder")
    assert "the consultation meeting is coming: come to it on 1 May 2026, 17:00 Beijing time" in (
        reminder.messages["en"].body
    )
    assert "协商会议即将召开" in reminder.messages["zh"].body
    clock.advance(minutes=10)
    assert dispatcher.run(until="ready").delivered == 0  # once per deadline


def test_a_community_sets_its_own_lead() -> None:
    store = MemoryStore()
    _notified(store)
    quiet = Reminders(store, communities={"east": Leads(meeting=None)})
    assert quiet.run(T0) == 0


def test_enqueue_refuses_what_is_not_a_new_notice() -> None:
    store = MemoryStore()
    _notified(store)
    n = Notice(
        key="m1:remind:x", consultation="m1", seq=2, event=Event.REMINDER, audience=("li",), title="t", created_at=T0
    )
    with pytest.raises(InvalidInput):
        store.enqueue([n, n])
    with pytest.raises(InvalidInput):
        store.enqueue([n.model_copy(update={"status": "delivered"})])
    assert store.enqueue([n]) == 1
    assert store.enqueue([n]) == 0


def test_a_reminder_renders_without_a_record() -> None:
    n = Notice(
        key="m1:remind:decision:1",
        consultation="m1",
        seq=2,
        event=Event.REMINDER,
        audience=(),
        title="t",
        created_at=T0,
    )
    assert Templates().render(n, None, "en").body.startswith("t\nreminder")


def test_postgres_adds_each_reminder_once() -> None:
    dsn = require_postgres()
    from consultflow.storage.postgres import PostgresStore

    schemas = Schemas(dsn)
    try:
        with PostgresStore(dsn, schema=schemas.new("remind")) as pg:
            _notified(pg)
            assert Reminders(pg).run(T0) == 1
            assert Reminders(pg).run(T0) == 0
            assert [n.key for n in pg.outbox(status="pending") if n.event is Event.REMINDER] == ["m1:remind:meeting:1"]
    finally:
        schemas.drop_all()


def test_a_later_meeting_is_reminded_like_the_first() -> None:
    # every meeting is announced with its notice (会议公告), and every one is reminded, not only the first
    from consultflow.testing.driver import Driver

    d = Driver()
    d.to("consulting_closed")  # round 1 held: the committee may announce the next meeting
    record = d.schedule_meeting()
    pending = record.pending_meeting
    assert pending is not None
    assert pending.number == 2
    now = pending.at - timedelta(hours=12)
    (reminder,) = [r for r in due_reminders(record, now, Leads()) if r.kind == "meeting"]
    assert reminder.key == f"meeting:{record.cycle}:2"
    assert reminder.due == pending.at
    assert "li" in reminder.audience
    assert [r for r in due_reminders(record, pending.at + timedelta(minutes=1), Leads()) if r.kind == "meeting"] == []
