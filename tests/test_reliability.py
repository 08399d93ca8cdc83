"""Reliability, shown rather than claimed, on SQLite and on PostgreSQL:

- two writers racing on one consultation (threads, and separate spawned processes): for each
  version exactly one wins, the loser gets ``Conflict``, no entry is lost or duplicated, the chain
  verifies;
- a writer process killed with SIGKILL at random points of a stream of steps, many times: the
  store opens, every acknowledged step is there, no step is half-written, chains verify;
- a fault-injecting store (failing before commit, or after commit but before returning): the
  engine reports ``StoreUnavailable`` and a retry does not duplicate a step;
- tampering with a stored entry (any field, any byte), deleting one or reordering them is caught.

PostgreSQL parts need ``CONSULTFLOW_PG_DSN`` (skipped where no server answers, failing under
``CI=true``); SQLite parts need ``consultflow.storage.sqlite``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import random
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consultflow import (
    Carrier,
    Conflict,
    Engine,
    Form,
    IntegrityError,
    NotFound,
    Propose,
    Query,
    RecordOpinion,
    Refused,
    SimulatedClock,
    Stance,
    Step,
    StoreUnavailable,
    canonical_json,
    verify,
)
from consultflow.log import LogEntry
from consultflow.testing.driver import resident
from store_support import (
    COMMUNITY,
    PG_DSN,
    T0,
    TOPIC,
    Schemas,
    StoreSpec,
    catalogue,
    check_store_matches_stream,
    kill_writer,
    notices_of,
    open_store,
    opening,
    opinion,
    outbox_by_consultation,
    procedure,
    race_writer,
    require_sqlite,
    residents,
    schemas_fixture,
)

KINDS = ("sqlite", "postgres")
ROUNDS = 12


@pytest.fixture(scope="session")
def schemas() -> Iterator[Schemas]:
    yield from schemas_fixture()


@pytest.fixture
def make_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], StoreSpec]:
    """``make_spec(kind)``: a fresh, empty store of that kind, as a picklable spec."""

    def make(kind: str) -> StoreSpec:
        if kind == "sqlite":
            require_sqlite()
            return ("sqlite", str(tmp_path / "reliability.db"), "")
        if kind == "postgres":
            schemas: Schemas = request.getfixturevalue("schemas")
            return ("postgres", schemas.dsn, schemas.new("r"))
        if kind == "memory":
            return ("memory", "", "")
        raise ValueError(kind)

    return make


@pytest.fixture
def opened(make_spec: Callable[[str], StoreSpec]) -> Iterator[Callable[[str], Any]]:
    """``opened(kind)``: a fresh store of that kind, closed after the test."""
    stores: list[Any] = []

    def make(kind: str) -> Any:
        store = open_store(make_spec(kind))
        stores.append(store)
        return store

    yield make
    for s in stores:
        s.close()


def _prepare(store: Any, cid: str) -> list[Step]:
    steps = opening(cid)
    for s in steps:
        store.append(s, s.expected_version)
    return steps


# ---- two writers racing --------------------------------------------------------------------------------
def _judge_race(store: Any, cid: str, rows: list[tuple[int, int, str, str, str | None]], rounds: int) -> None:
    errors = [r for r in rows if r[2] == "error"]
    assert not errors, f"a writer failed: {errors[0][3]}"
    assert len(rows) == 2 * rounds
    winners: list[str] = []
    for r in range(rounds):
        row = sorted((x for x in rows if x[0] == r), key=lambda x: x[2])
        assert [x[2] for x in row] == ["conflict", "won"], f"version {3 + r}: outcomes {row}; exactly one must win"
        assert {x[1] for x in row} == {3 + r}, f"round {r}: the writers did not both load version {3 + r}"
        winners.append(row[1][3])
    record = store.load(cid)
    entries = list(store.entries(cid))
    assert record.version == 3 + rounds == len(entries), "an entry was lost or duplicated"
    assert [e.actor for e in entries[3:]] == winners, "the log holds exactly the winners' steps, in order"
    assert len({e.hash for e in entries}) == len(entries)
    check = verify(entries, head=record.head, version=record.version)
    assert check.ok, check


@pytest.mark.parametrize("kind", KINDS)
def test_two_threads_race_one_winner_per_version(kind: str, make_spec: Callable[[str], StoreSpec]) -> None:
    spec = make_spec(kind)
    store = open_store(spec)
    _prepare(store, "race-t")
    barrier = threading.Barrier(2)
    results: queue.Queue[Any] = queue.Queue()
    # One writer shares the test's store object (thread safety), the other opens its own handle.
    threads = [
        threading.Thread(target=race_writer, args=(spec, "race-t", w, ROUNDS, barrier, results), kwargs={"shared": s})
        for w, s in ((0, store), (1, None))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "the writers hang"
    rows = [results.get_nowait() for _ in range(results.qsize())]
    _judge_race(store, "race-t", rows, ROUNDS)
    store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_two_processes_race_one_winner_per_version(kind: str, make_spec: Callable[[str], StoreSpec]) -> None:
    spec = make_spec(kind)
    store = open_store(spec)
    _prepare(store, "race-p")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=race_writer, args=(spec, "race-p", w, ROUNDS, barrier, results)) for w in (0, 1)]
    for p in procs:
        p.start()
    rows = []
    try:
        for _ in range(2 * ROUNDS):
            rows.append(results.get(timeout=120))
            if rows[-1][2] == "error":
                break
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0] or any(r[2] == "error" for r in rows)
    _judge_race(store, "race-p", rows, ROUNDS)
    store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_engines_retrying_on_conflict_lose_nothing(kind: str, make_spec: Callable[[str], StoreSpec]) -> None:
    """Free-running writers, each with its own engine and store handle, retry on Conflict the way an
    application does (reload, decide again): every command lands exactly once."""
    spec = make_spec(kind)
    store = open_store(spec)
    _prepare(store, "free-1")
    per_writer, writers = 15, 3
    conflicts = [0] * writers
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        handle = open_store(spec)
        engine = Engine(
            procedure(),
            handle,
            clock=SimulatedClock(T0 + timedelta(hours=2)),
            catalogue=catalogue(),
            directory=residents(*(f"w{w}-{i}" for i in range(per_writer))),
        )
        try:
            for i in range(per_writer):
                while True:
                    try:
                        engine.execute(
                            RecordOpinion(consultation="free-1", stance=Stance.SUPPORT), by=resident(f"w{w}-{i}")
                        )
                        break
                    except Conflict:
                        conflicts[w] += 1
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised by the test
            errors.append(exc)
        finally:
            handle.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    record = store.load("free-1")
    entries = list(store.entries("free-1"))
    assert len(entries) == record.version == 3 + per_writer * writers
    actors = [e.actor for e in entries[3:]]
    assert sorted(actors) == sorted(f"w{w}-{i}" for w in range(writers) for i in range(per_writer))
    assert verify(entries, head=record.head, version=record.version).ok
    store.close()


# ---- a writer killed at random points -----------------------------------------------------------------
KILLS = 25
KILL_BUDGET = 20.0  # seconds per store; at least MIN_KILLS happen whatever the machine
MIN_KILLS = 8


def _drain_acks(conn: Any) -> list[tuple[str, int]]:
    acks: list[tuple[str, int]] = []
    while True:
        try:
            if not conn.poll():
                return acks
            acks.append(conn.recv())
        except (EOFError, OSError):
            return acks


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")
@pytest.mark.parametrize("kind", KINDS)
def test_a_writer_killed_at_random_points_loses_no_acknowledged_step(
    kind: str, make_spec: Callable[[str], StoreSpec]
) -> None:
    spec = make_spec(kind)
    # Each writer is forked (started in milliseconds; a spawned one needs a second to import).
    # The child opens its own store; the PostgreSQL pool never touches a parent's connection.
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "forkserver")
    rng = random.Random(20260501)
    started = time.monotonic()
    kills = 0
    acked_total = 0
    beyond = 0
    seen: dict[int, int] = {}  # iteration -> consultations written
    for iteration in range(KILLS):
        if kills >= MIN_KILLS and time.monotonic() - started > KILL_BUDGET:
            break
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=kill_writer, args=(spec, iteration, sender), daemon=True)  # type: ignore[attr-defined]
        proc.start()
        sender.close()
        assert receiver.poll(60), "the writer did not start"
        assert receiver.recv() == ("ready", 0)
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL, "the writer finished before it was killed; lengthen its stream"
        kills += 1
        acks = _drain_acks(receiver)
        receiver.close()
        acked = {cid: version for cid, version in acks}
        acked_total += len(acks)

        store = open_store(spec)  # the store opens after the kill
        try:
            last = max((int(cid.split("-c")[1]) for cid in acked), default=-1)
            outbox = outbox_by_consultation(store)
            for index in range(last + 3):
                version = check_store_matches_stream(store, iteration, index, outbox)
                cid = f"k{iteration}-c{index}"
                if cid in acked:
                    lost = f"kill {kills}: {cid} was acknowledged at version {acked[cid]} but the store has {version}"
                    assert version is not None, lost
                    assert version >= acked[cid], lost
                if version is not None and version > acked.get(cid, 0):
                    beyond += 1  # written, but killed before the acknowledgement: allowed
                if index > last + 1:
                    assert version is None, f"kill {kills}: {cid} exists, but the writer never got to it"
            seen[iteration] = last + 2
        finally:
            store.close()

    print(f"{kind}: {kills} kills, {acked_total} acknowledged, {beyond} written unacknowledged")
    assert kills >= MIN_KILLS
    assert acked_total > 0, "no step was ever acknowledged: the writers were killed too early to test anything"
    # Nothing written before an earlier kill changed afterwards.
    store = open_store(spec)
    try:
        outbox = outbox_by_consultation(store)
        for iteration, count in seen.items():
            for index in range(count):
                check_store_matches_stream(store, iteration, index, outbox)
        assert all(verify(store.entries(r.id), head=r.head, version=r.version).ok for r in store.find(Query()))
    finally:
        store.close()


# ---- a store that fails on purpose ----------------------------------------------------------------------
class FaultyStore:
    """Wraps a store. ``arm("before")`` makes the next append fail before anything is written (as
    when the connection drops before commit); ``arm("after")`` lets the append commit and then
    fails before returning (as when the reply to COMMIT is lost). Both raise ``StoreUnavailable``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.mode: str | None = None
        self.last: Step | None = None

    def arm(self, mode: str) -> None:
        self.mode = mode

    def append(self, step: Step, expected_version: int) -> None:
        mode, self.mode = self.mode, None
        self.last = step
        if mode == "before":
            raise StoreUnavailable("injected: the store failed before commit; nothing was written - retry")
        self.inner.append(step, expected_version)
        if mode == "after":
            raise StoreUnavailable("injected: the commit went through but its reply was lost")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _state(store: Any, cid: str) -> tuple[Any, list[LogEntry], list[str]]:
    return store.load(cid), list(store.entries(cid)), [n.key for n in notices_of(store, cid)]


def _engine(store: Any) -> Engine:
    """An engine on ``store``, in whose directory ``wu`` and ``li`` are residents of the community."""
    return Engine(
        procedure(),
        store,
        clock=SimulatedClock(T0 + timedelta(hours=2)),
        catalogue=catalogue(),
        directory=residents("wu", "li"),
    )


def _no_duplicates(store: Any, cid: str) -> None:
    record, entries, keys = _state(store, cid)
    assert len(entries) == record.version == len({e.hash for e in entries})
    assert len(keys) == len(set(keys))
    assert verify(entries, head=record.head, version=record.version).ok


FAULT_KINDS = ("memory", *KINDS)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_failure_before_commit_is_reported_and_the_retry_writes_once(kind: str, opened: Any) -> None:
    inner = opened(kind)
    _prepare(inner, "fb-1")
    store = FaultyStore(inner)
    engine = _engine(store)
    before = _state(inner, "fb-1")
    command = RecordOpinion(consultation="fb-1", stance=Stance.SUPPORT, text="first try")
    store.arm("before")
    with pytest.raises(StoreUnavailable):
        engine.execute(command, by=resident("wu"))
    assert _state(inner, "fb-1") == before, "a failure before commit left something behind"
    engine.execute(command, by=resident("wu"))  # the retry
    record, entries, _ = _state(inner, "fb-1")
    assert [e.actor for e in entries].count("wu") == 1
    assert record.version == 4
    _no_duplicates(inner, "fb-1")


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_failure_after_commit_is_reported_and_the_retry_does_not_duplicate(kind: str, opened: Any) -> None:
    inner = opened(kind)
    steps = _prepare(inner, "fa-1")
    store = FaultyStore(inner)
    engine = _engine(store)
    store.arm("after")
    with pytest.raises(StoreUnavailable):
        engine.execute(RecordOpinion(consultation="fa-1", stance=Stance.SUPPORT), by=resident("wu"))
    written = store.last
    assert written is not None
    # Retry 1: append the same step again at the version it was made from: Conflict, and a reload
    # shows the step there once (its head is the record's head).
    with pytest.raises(Conflict):
        inner.append(written, written.expected_version)
    record, entries, _ = _state(inner, "fa-1")
    assert record.head == written.record.head
    assert entries[-1] == written.entries[-1]
    # Retry 2: re-execute the same command after reloading: the procedure refuses a second opinion
    # from the same person in the round, so nothing is duplicated either.
    with pytest.raises(Refused) as refused:
        engine.execute(RecordOpinion(consultation="fa-1", stance=Stance.SUPPORT), by=resident("wu"))
    assert refused.value.code == "already_recorded"
    assert [e.actor for e in inner.entries("fa-1")].count("wu") == 1
    _no_duplicates(inner, "fa-1")
    assert len(entries) == len(steps) + 1


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_lost_reply_to_a_proposal_with_an_id_is_not_proposed_twice(kind: str, opened: Any) -> None:
    inner = opened(kind)
    store = FaultyStore(inner)
    engine = _engine(store)
    propose = Propose(
        id="fp-1", community=COMMUNITY, topic=TOPIC, title="停车", carrier=Carrier.DECISION, form=Form.COUNCIL
    )
    store.arm("after")
    with pytest.raises(StoreUnavailable):
        engine.execute(propose, by=resident("li"))
    with pytest.raises(Conflict) as caught:
        engine.execute(propose, by=resident("li"))
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert [r.id for r in inner.find(Query())] == ["fp-1"]
    _no_duplicates(inner, "fp-1")


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_lost_reply_to_a_step_with_notices_leaves_one_notice(kind: str, opened: Any) -> None:
    inner = opened(kind)
    steps = opening("fn-1")
    inner.append(steps[0], 0)
    store = FaultyStore(inner)
    store.arm("after")
    with pytest.raises(StoreUnavailable):
        store.append(steps[1], 1)
    with pytest.raises(Conflict):
        store.append(steps[1], 1)  # the naive retry
    assert [n.key for n in notices_of(inner, "fn-1")] == [steps[1].notices[0].key]
    _no_duplicates(inner, "fn-1")


# ---- tampering ---------------------------------------------------------------------------------------
class RawLog:
    """Direct access to the stored text of a consultation's log entries, past the store."""

    def close(self) -> None:
        return None

    def read(self, cid: str, seq: int) -> str:
        raise NotImplementedError

    def write(self, cid: str, seq: int, text: str) -> None:
        raise NotImplementedError

    def delete(self, cid: str, seq: int) -> None:
        raise NotImplementedError

    def swap(self, cid: str, a: int, b: int) -> None:
        raise NotImplementedError


class PostgresLog(RawLog):
    def __init__(self, schema: str) -> None:
        import psycopg

        self.table = f'"{schema}".entries'
        self.conn = psycopg.connect(PG_DSN, autocommit=True)

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        cur = self.conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []

    def read(self, cid: str, seq: int) -> str:
        ((text,),) = self._run(f"SELECT entry FROM {self.table} WHERE consultation = %s AND seq = %s", (cid, seq))
        return str(text)

    def write(self, cid: str, seq: int, text: str) -> None:
        self._run(f"UPDATE {self.table} SET entry = %s WHERE consultation = %s AND seq = %s", (text, cid, seq))

    def delete(self, cid: str, seq: int) -> None:
        self._run(f"DELETE FROM {self.table} WHERE consultation = %s AND seq = %s", (cid, seq))

    def swap(self, cid: str, a: int, b: int) -> None:
        with self.conn.transaction():
            self._run(f"UPDATE {self.table} SET seq = 1000000 WHERE consultation = %s AND seq = %s", (cid, a))
            self._run(f"UPDATE {self.table} SET seq = %s WHERE consultation = %s AND seq = %s", (a, cid, b))
            self._run(f"UPDATE {self.table} SET seq = %s WHERE consultation = %s AND seq = 1000000", (b, cid))

    def close(self) -> None:
        self.conn.close()


class SQLiteLog(RawLog):
    """Finds the SQLite store's log table by looking: the table with a consultation column, a seq
    column and a text column holding the entry's JSON."""

    def __init__(self, path: str, cid: str) -> None:
        self.path = path
        with sqlite3.connect(path) as db:
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                cols = [c[1] for c in db.execute(f'PRAGMA table_info("{table}")')]
                if "seq" not in cols or not any("consultation" in c for c in cols):
                    continue
                row = db.execute(f'SELECT * FROM "{table}" LIMIT 1').fetchone()
                if row is None:
                    continue
                for col, value in zip(cols, row, strict=True):
                    if isinstance(value, str | bytes) and ('"prev"' in str(value) or "prev" in str(value)):
                        self.table, self.body = table, col
                        self.cid_col = next(c for c in cols if "consultation" in c)
                        self.is_bytes = isinstance(value, bytes)
                        return
        raise AssertionError(f"cannot find the log table of the SQLite store in {tables}")

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        db = sqlite3.connect(self.path)
        try:
            with db:
                return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def read(self, cid: str, seq: int) -> str:
        ((text,),) = self._run(
            f'SELECT "{self.body}" FROM "{self.table}" WHERE "{self.cid_col}" = ? AND seq = ?', (cid, seq)
        )
        return text.decode() if isinstance(text, bytes) else str(text)

    def write(self, cid: str, seq: int, text: str) -> None:
        value: str | bytes = text.encode() if self.is_bytes else text
        self._run(
            f'UPDATE "{self.table}" SET "{self.body}" = ? WHERE "{self.cid_col}" = ? AND seq = ?', (value, cid, seq)
        )

    def delete(self, cid: str, seq: int) -> None:
        self._run(f'DELETE FROM "{self.table}" WHERE "{self.cid_col}" = ? AND seq = ?', (cid, seq))

    def swap(self, cid: str, a: int, b: int) -> None:
        table, col = self.table, self.cid_col
        self._run(f'UPDATE "{table}" SET seq = 1000000 WHERE "{col}" = ? AND seq = ?', (cid, a))
        self._run(f'UPDATE "{table}" SET seq = ? WHERE "{col}" = ? AND seq = ?', (a, cid, b))
        self._run(f'UPDATE "{table}" SET seq = ? WHERE "{col}" = ? AND seq = 1000000', (b, cid))


@pytest.fixture
def tampered(make_spec: Callable[[str], StoreSpec]) -> Iterator[Callable[[str], tuple[Any, RawLog, list[Step]]]]:
    """``tampered(kind)`` -> (store, raw log, steps): a consultation ``tm-1`` of eight steps."""
    stores: list[Any] = []
    raws: list[RawLog] = []

    def make(kind: str) -> tuple[Any, RawLog, list[Step]]:
        spec = make_spec(kind)
        store = open_store(spec)
        stores.append(store)
        steps = _prepare(store, "tm-1")
        for i in range(5):
            steps.append(opinion(steps[-1].record, f"t{i}", T0 + timedelta(hours=2, seconds=i)))
            store.append(steps[-1], steps[-1].expected_version)
        raw: RawLog = PostgresLog(spec[2]) if kind == "postgres" else SQLiteLog(spec[1], "tm-1")
        raws.append(raw)
        return store, raw, steps

    yield make
    for r in raws:
        r.close()
    for s in stores:
        s.close()


def _caught(store: Any, cid: str = "tm-1") -> bool:
    """Does reading and verifying the chain notice something wrong?"""
    try:
        record = store.load(cid)
        entries = store.entries(cid)
    except IntegrityError:
        return True  # unreadable: the store itself says the entry was changed
    return not verify(entries, head=record.head, version=record.version).ok


def _other(value: Any) -> Any:
    """A different value of the same JSON type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x" if not value else value[:-1] + ("y" if value[-1] != "y" else "z")
    if value is None:
        return "x"
    if isinstance(value, dict):
        return {**value, "extra": 1}
    if isinstance(value, list):  # an entry's ``private`` keys
        return [*value, "extra"]
    raise AssertionError(f"no other value for {value!r}")


@pytest.mark.parametrize("kind", KINDS)
def test_changing_any_field_of_an_entry_is_caught(kind: str, tampered: Any) -> None:
    store, raw, _ = tampered(kind)
    for seq in (1, 4, 8):
        original = raw.read("tm-1", seq)
        body = json.loads(original)
        for field in body:
            forged = dict(body)
            forged[field] = _other(body[field])
            raw.write("tm-1", seq, canonical_json(forged).decode())
            assert _caught(store), f"changing {field!r} of entry {seq} went unnoticed"
            raw.write("tm-1", seq, original)
            assert not _caught(store)


@pytest.mark.parametrize("kind", KINDS)
def test_changing_any_byte_of_an_entry_is_caught(kind: str, tampered: Any) -> None:
    """Every character of one stored entry, changed one at a time: the change is caught, or it
    does not change what the entry says (``-00:00`` for ``+00:00`` in a time is the same instant)."""
    store, raw, steps = tampered(kind)
    seq = 4
    original = raw.read("tm-1", seq)
    truth = steps[3].entries[0]
    harmless: list[str] = []
    for i, ch in enumerate(original):
        if ch.isdigit():
            repl = str((int(ch) + 1) % 10)
        elif ch.isalpha():
            repl = ch.swapcase() if ch.swapcase() != ch else "x"
        else:
            repl = "-" if ch != "-" else "+"
        raw.write("tm-1", seq, original[:i] + repl + original[i + 1 :])
        if not _caught(store):
            read = store.entries("tm-1")[seq - 1]
            unnoticed = f"changing character {i} ({ch!r} -> {repl!r}) of entry {seq} changed it and went unnoticed"
            assert read.body() == truth.body(), unnoticed
            assert read.hash == truth.hash, unnoticed
            harmless.append(original[i - 3 : i + 3])
    raw.write("tm-1", seq, original)
    assert not _caught(store)
    assert len(harmless) <= 2, f"too many changes read back unchanged: {harmless}"


@pytest.mark.parametrize("kind", KINDS)
def test_deleting_an_entry_is_caught(kind: str, tampered: Any) -> None:
    store, raw, _ = tampered(kind)
    raw.delete("tm-1", 5)
    assert _caught(store)


@pytest.mark.parametrize("kind", KINDS)
def test_deleting_the_last_entry_is_caught(kind: str, tampered: Any) -> None:
    store, raw, _ = tampered(kind)
    raw.delete("tm-1", 8)
    assert _caught(store), "a truncated tail must be caught against the record's head and version"


@pytest.mark.parametrize("kind", KINDS)
def test_reordering_entries_is_caught(kind: str, tampered: Any) -> None:
    store, raw, _ = tampered(kind)
    raw.swap("tm-1", 5, 6)
    assert _caught(store)


@pytest.mark.parametrize("kind", KINDS)
def test_an_untouched_log_verifies(kind: str, tampered: Any) -> None:
    store, _, steps = tampered(kind)
    assert not _caught(store)
    with pytest.raises(NotFound):
        store.entries("tm-2")
    assert list(store.entries("tm-1")) == [e for s in steps for e in s.entries]
