"""Delivery under failure, with real servers on loopback (no mocks): a receiver that verifies every
request with the ``standardwebhooks`` package and honours the key (``tests/webhook_receiver.py``).

Half the requests failing, a receiver hanging past the timeout, bad signatures and old timestamps,
a dispatcher SIGKILLed 25 times, two dispatchers racing on SQLite and on PostgreSQL: every notice
is accepted exactly once per key and none is lost (the store never says "delivered" for a notice the
receiver did not accept); what cannot be delivered is in the dead letters with the reason.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from consultflow import Conflict, ConsultflowError, Engine, MemoryDirectory, Refused, Role, SimulatedClock
from consultflow.delivery import Dispatcher, MemoryChannel, RetryPolicy, WebhookChannel
from consultflow.delivery.channels.webhook import sign
from consultflow.steps import Decide, OpenRound
from consultflow.storage.sqlite import SQLiteStore
from delivery_support import OTHER_SECRET, QUICK, SECRET, dispatch_worker, seed, statuses
from store_support import COMMUNITY, T0, Schemas, catalogue, opening, procedure, require_postgres
from webhook_receiver import Receiver

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "outbox.db", synchronous="NORMAL")
    yield s
    s.close()


def _dispatch(store: Any, url: str, *, secret: str = SECRET, policy: RetryPolicy = QUICK, **kw: Any) -> Any:
    channel = WebhookChannel(url, secret, timeout=kw.pop("timeout", 5.0), clock=kw.pop("clock", None))
    dispatcher = Dispatcher(store, sinks={"hook": channel}, policy=policy, **kw)
    try:
        return dispatcher.run(until="empty", poll=0.05)
    finally:
        dispatcher.close()
        channel.close()


def _no_loss(store: Any, receiver: Receiver, keys: list[str]) -> None:
    """Nothing lost, nothing twice: each key accepted at most once; every delivered notice accepted;
    nothing left pending or leased."""
    final = statuses(store)
    assert set(final) == set(keys)
    assert all(count == 1 for count in receiver.acceptances.values())
    delivered = {k for k, s in final.items() if s == "delivered"}
    assert delivered <= set(receiver.accepted)
    assert not {k for k, s in final.items() if s in {"pending", "leased"}}


# ---- failing receivers ----------------------------------------------------------------------------------
def test_half_the_requests_failing_every_notice_is_accepted_once(store: SQLiteStore) -> None:
    keys = seed(store, 15)
    with Receiver(SECRET, fail_every=2) as receiver:
        report = _dispatch(store, receiver.url)
    assert set(receiver.accepted) == set(keys)
    assert report.delivered == len(keys)
    assert report.dead == 0
    assert report.retried >= len(keys) // 2 - 1
    assert receiver.requests > len(keys)  # the failures were real, and were retried
    assert set(statuses(store).values()) == {"delivered"}
    _no_loss(store, receiver, keys)


def test_half_failing_with_one_attempt_dead_letters_the_rest_with_the_reason(store: SQLiteStore) -> None:
    keys = seed(store, 10)
    with Receiver(SECRET, fail_every=2) as receiver:
        _dispatch(store, receiver.url, policy=RetryPolicy(max_attempts=1))
    final = statuses(store)
    dead = {k for k, s in final.items() if s == "dead"}
    assert len(dead) == len(keys) // 2
    assert set(receiver.accepted) == set(keys) - dead
    for n in store.outbox(status="dead"):
        assert "HTTP 503" in n.last_error
        assert "try again later" in n.last_error
        assert n.attempts == 1
    _no_loss(store, receiver, keys)


def test_a_receiver_hanging_past_the_timeout_gets_each_notice_once(store: SQLiteStore) -> None:
    keys = seed(store, 3)
    with Receiver(SECRET, hang=1.0) as receiver:
        # the first request of each key outlives the 0.3 s timeout; the receiver accepts it late,
        # the dispatcher sends again, and the receiver answers the known key without accepting twice
        report = _dispatch(store, receiver.url, timeout=0.3)
    assert report.delivered == len(keys)
    assert report.retried >= len(keys)
    assert all(receiver.receipts[k] >= 2 for k in keys)
    assert set(receiver.accepted) == set(keys)
    _no_loss(store, receiver, keys)


def test_a_receiver_that_never_answers_in_time_dead_letters_with_timeouts(store: SQLiteStore) -> None:
    keys = seed(store, 2)
    with Receiver(SECRET, hang=0.6, hang_always=True) as receiver:
        report = _dispatch(store, receiver.url, timeout=0.2, policy=RetryPolicy(2, QUICK.base, QUICK.cap))
    assert report.dead == len(keys)
    assert report.delivered == 0
    for n in store.outbox(status="dead"):
        assert "timed out" in n.last_error
        assert n.attempts == 2
    _no_loss(store, receiver, keys)


def test_a_wrong_secret_is_rejected_and_dead_lettered_at_once(store: SQLiteStore) -> None:
    keys = seed(store, 2)
    with Receiver(OTHER_SECRET) as receiver:
        report = _dispatch(store, receiver.url)
    assert report.dead == len(keys)
    assert not receiver.accepted
    assert receiver.rejected
    assert all("signature" in r.lower() for r in receiver.rejected)
    for n in store.outbox(status="dead"):
        assert "HTTP 400" in n.last_error
        assert n.attempts == 1


def test_an_old_timestamp_is_rejected(store: SQLiteStore) -> None:
    keys = seed(store, 1)
    stale = SimulatedClock(datetime.now(UTC) - timedelta(minutes=10))
    with Receiver(SECRET) as receiver:
        report = _dispatch(store, receiver.url, clock=stale)
    assert report.dead == len(keys)
    assert not receiver.accepted
    assert receiver.rejected
    assert all("too old" in r.lower() for r in receiver.rejected)


def test_a_send_prepared_in_an_earlier_second_is_signed_when_it_is_sent() -> None:
    """The dispatcher builds and signs a batch before it sends it; the timestamp must still say when
    each request left, or a slow batch would reach the receiver with signatures it refuses as old."""
    from consultflow.testing.channel_contract import kit_delivery

    clock = SimulatedClock(datetime.now(UTC) - timedelta(minutes=10))
    with Receiver(SECRET) as receiver:
        channel = WebhookChannel(receiver.url, SECRET, clock=clock)
        send = channel.prepare(kit_delivery("c:1"))
        clock.advance(minutes=10)
        outcome = send()
        channel.close()
    assert outcome.kind == "delivered", outcome.reason
    assert list(receiver.accepted) == ["c:1"]


def test_a_tampered_body_or_key_is_rejected() -> None:
    from consultflow.delivery.channels.webhook import check_secret

    key = check_secret(SECRET)
    now = int(time.time())
    body = b'{"type":"consultflow.notified"}'
    with Receiver(SECRET) as receiver:
        good = {"webhook-id": "c:1", "webhook-timestamp": str(now), "webhook-signature": sign(key, "c:1", now, body)}
        assert httpx.post(receiver.url, content=body, headers=good).status_code == 200
        assert httpx.post(receiver.url, content=body + b" ", headers=good).status_code == 400
        other = {**good, "webhook-id": "c:2"}  # the signature covers the id: another key is a forgery
        assert httpx.post(receiver.url, content=body, headers=other).status_code == 400
    assert list(receiver.accepted) == ["c:1"]


# ---- killed and racing dispatchers -------------------------------------------------------------------------
def _cli(db: Path | list[str], url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONSULTFLOW_WEBHOOK_SECRET": SECRET}
    where = [str(db)] if isinstance(db, Path) else db
    cmd = [sys.executable, "-m", "consultflow", "dispatch", "--db", *where, "--webhook", url, *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(params=["sqlite", "postgres"])
def killed_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[str], Callable[[], Any]]]:
    """Where the killed dispatchers work: ``--db`` (and ``--schema``) for the CLI, and a way to open
    the store afterwards. PostgreSQL: a fresh schema on the test server (skipped when no server
    answers, a failure under CI=true)."""
    if request.param == "sqlite":
        db = tmp_path / "killed.db"
        SQLiteStore(db).close()
        yield [str(db)], lambda: SQLiteStore(db)
        return
    dsn = require_postgres()
    from consultflow.storage.postgres import PostgresStore

    schemas = Schemas(dsn)
    schema = schemas.new("killed")
    PostgresStore(dsn, schema=schema).close()
    try:
        yield [dsn, "--schema", schema], lambda: PostgresStore(dsn, schema=schema)
    finally:
        schemas.drop_all()


def test_a_dispatcher_sigkilled_25_times_loses_nothing_and_sends_nothing_twice(
    killed_store: tuple[list[str], Callable[[], Any]],
) -> None:
    where, reopen = killed_store
    with reopen() as s:
        keys = seed(s, 60)
    rng = random.Random(20260309)
    with Receiver(SECRET, delay=0.05) as receiver:
        for _ in range(25):
            before = sum(receiver.receipts.values())
            proc = _cli(where, receiver.url, "--until-empty", "--lease", "0.5", "--batch", "4")
            # Killed at a random moment once it is sending (mid-batch: sent, not yet settled), however
            # long a busy machine takes to start Python: a kill before the first send proves nothing.
            deadline = time.monotonic() + 60
            while sum(receiver.receipts.values()) == before and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
        killed_receipts = sum(receiver.receipts.values())
        proc = _cli(where, receiver.url, "--until-empty", "--lease", "0.5")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with reopen() as s:
        assert set(statuses(s).values()) == {"delivered"}
        _no_loss(s, receiver, keys)
        if isinstance(s, SQLiteStore):
            assert s.audit() == ()
    assert set(receiver.accepted) == set(keys)
    assert killed_receipts > 0  # the killed runs did deliver some


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_gracefully_releasing_what_it_had_not_sent(tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "term.db"
    with SQLiteStore(db) as s:
        keys = seed(s, 30)
    with Receiver(SECRET, delay=0.02) as receiver:
        proc = _cli(db, receiver.url)  # forever, until a signal; batches of about a dozen at 20 ms an answer
        deadline = time.monotonic() + 30
        while not receiver.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert "(stopped)" in err.decode()
    assert "released untried" in err.decode()
    with SQLiteStore(db) as s:
        final = statuses(s)
        attempts = {n.key: n.attempts for n in s.outbox()}
    assert "leased" not in final.values()  # what was sent was settled, the rest released, before leaving
    delivered = {k for k, v in final.items() if v == "delivered"}
    assert delivered == set(receiver.accepted)
    assert 0 < len(delivered) < len(keys)
    assert {attempts[k] for k in keys if k not in delivered} == {0}, "released untried: no attempt counted"


def _race(spec: Any, keys: list[str], receiver: Receiver) -> list[tuple[int, ...]]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=dispatch_worker, args=(spec, receiver.url, SECRET, 3, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        assert p.exitcode == 0
    return [results.get(timeout=5) for _ in procs]


def test_two_dispatchers_racing_on_sqlite_send_each_notice_once(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    with SQLiteStore(db) as s:
        keys = seed(s, 40)
    with Receiver(SECRET, delay=0.005) as receiver:
        reports = _race(("sqlite", str(db), ""), keys, receiver)
    assert sum(r[0] for r in reports) == len(keys)  # each notice delivered by exactly one of them
    assert all(r[0] > 0 for r in reports), reports  # and both took part
    assert all(receiver.receipts[k] == 1 for k in keys)  # leases held: not even a duplicate request
    with SQLiteStore(db) as s:
        _no_loss(s, receiver, keys)


def test_two_dispatchers_racing_on_postgres_send_each_notice_once() -> None:
    dsn = require_postgres()
    from consultflow.storage.postgres import PostgresStore

    schemas = Schemas(dsn)
    try:
        schema = schemas.new("deliver")
        with PostgresStore(dsn, schema=schema) as s:
            keys = seed(s, 40)
        with Receiver(SECRET, delay=0.005) as receiver:
            reports = _race(("postgres", dsn, schema), keys, receiver)
        assert sum(r[0] for r in reports) == len(keys)
        assert all(r[0] > 0 for r in reports), reports
        assert all(receiver.receipts[k] == 1 for k in keys)
        with PostgresStore(dsn, schema=schema) as s:
            _no_loss(s, receiver, keys)
    finally:
        schemas.drop_all()


# ---- no notice without its step --------------------------------------------------------------------------
def _engine(store: Any, clock: SimulatedClock) -> Engine:
    directory = MemoryDirectory()
    directory.grant(COMMUNITY, "li", Role.RESIDENT)
    return Engine(procedure(), store, clock=clock, catalogue=catalogue(), directory=directory)


def test_a_step_whose_transaction_fails_leaves_no_notice(tmp_path: Path) -> None:
    db = tmp_path / "fails.db"
    steps = opening("t1")
    with SQLiteStore(db) as s:
        for step in steps[:2]:
            s.append(step, step.expected_version)
    # the database refuses the third entry in the middle of the step's transaction
    with sqlite3.connect(db) as raw:
        raw.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON entries WHEN NEW.seq = 3 "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    with SQLiteStore(db) as s:
        before = s.outbox()
        with pytest.raises(ConsultflowError):
            s.append(steps[2], steps[2].expected_version)
        assert s.outbox() == before  # the round's notice went down with its step
        assert s.load("t1").version == 2
        channel = MemoryChannel()
        Dispatcher(s, sinks={"m": channel}).run(until="ready")
        assert sorted(d.key for d in channel.sent) == sorted(n.key for n in before)
        assert "t1:3" not in channel.accepted


def test_a_conflicting_step_leaves_no_notice(store: SQLiteStore) -> None:
    steps = opening("t2")
    store.append(steps[0], 0)
    with pytest.raises(Conflict):
        store.append(steps[1], 5)
    assert store.outbox() == ()


def test_a_refused_command_produces_no_notice(store: SQLiteStore) -> None:
    clock = SimulatedClock(T0)
    engine = _engine(store, clock)
    for step in opening("t3"):
        store.append(step, step.expected_version)
    before = store.outbox()
    clock.set(T0 + timedelta(hours=3))
    with pytest.raises(Refused):
        engine.execute(Decide(consultation="t3", resolution="我说了算 I decide"), by="li")
    with pytest.raises(Refused):
        engine.execute(OpenRound(consultation="t3"), by="li")
    assert store.outbox() == before
    channel = MemoryChannel()
    report = Dispatcher(store, sinks={"m": channel}).run(until="ready")
    assert report.delivered == len(before)
    assert {d.key for d in channel.sent} == {n.key for n in before}
