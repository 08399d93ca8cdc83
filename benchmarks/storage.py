"""Storage benchmark: what a durable store costs over writing the same rows by hand.

Run from the project root:

    .venv/bin/python benchmarks/storage.py            # the report, about 20 s on 2 shared vCPUs
    .venv/bin/python benchmarks/storage.py --quick    # smoke run, a few seconds
    .venv/bin/python benchmarks/storage.py --no-postgres
    .venv/bin/python benchmarks/storage.py --dir /data/bench   # SQLite files on another disk

The workload is the reference story (``consultflow.demo.run_story``: 64 steps, records growing to
~7 kB of JSON, 15 notices) on many consultations. Steps are made once, up front, by the real core
and replayed into each store, so every variant writes exactly the same rows. Printed, as steps per
second and as ratios:

- SQLite (WAL, ``synchronous=FULL`` and ``NORMAL``): ``SQLiteStore.append``, one transaction per
  step, against raw ``sqlite3`` inserts of the same rows into the same tables under the same
  settings and the same transaction-per-step pattern (target: at least 0.7 of raw); the engine end
  to end (load, ``consultflow.apply``, append); ``append_many`` in batches.
- PostgreSQL (``CONSULTFLOW_PG_DSN``, default ``postgresql://postgres@127.0.0.1:5432/test`` as in the
  tests): ``PostgresStore.append`` with 1 writer and with 8 concurrent writers (threads sharing one
  store, each on its own consultations), ``append_many``, the engine. Skipped, saying why, when no
  server answers there (or psycopg is missing); the SQLite part never needs one.

Variants run in interleaved repetitions (order rotated) and medians are reported. The script is a
report: it exits 0 whether targets are met or not. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import consultflow as cf
from _common import describe_machine
from consultflow.catalogue import Catalogue
from consultflow.demo import COMMUNITY, TOPIC, demo_directory, demo_procedure, run_story
from consultflow.storage.sqlite import SQLiteStore
from consultflow.storage.sqlite import _rows as sqlite_rows

PG_DSN = os.environ.get("CONSULTFLOW_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
STORY_STEPS = 64
TARGET = 0.7


# ================================================================================================
# The workload: real steps, made once
# ================================================================================================
class _Recorder(cf.MemoryStore):
    """A memory store that keeps every step appended, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[cf.Step] = []

    def append(self, step: cf.Step, expected_version: int) -> None:
        super().append(step, expected_version)
        self.steps.append(step)


def _catalogue() -> Catalogue:
    return Catalogue().with_community(
        COMMUNITY, {TOPIC: "夜间停车 night parking", "public-benefit/micro-greening": "微绿化"}
    )


#: The demo's procedure without a yearly pool (``fund_pool=None``): every story runs in one community in
#: 2026, each would take 155,000 of the 300,000 yuan a year its fund (微幸福) holds, and the steps are
#: made once and then written in other orders and by several writers at once, which a ledger's
#: sequence (each allocation the next of its community's year) does not allow.
PROCEDURE = demo_procedure().variant("storage-benchmark", "1", parameters={"fund_pool": None})


def story_engine(store: Any, cid: str) -> tuple[cf.Engine, cf.SimulatedClock]:
    """The demo's engine and clock, with the consultation id ``cid``."""
    clock = cf.SimulatedClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    engine = cf.Engine(
        PROCEDURE, store, clock=clock, catalogue=_catalogue(), ids=lambda: cid, directory=demo_directory()
    )
    return engine, clock


def make_steps(prefix: str, stories: int) -> list[cf.Step]:
    """``stories`` reference stories, ids ``{prefix}-00000``..., their steps story after story."""
    recorder = _Recorder()
    for i in range(stories):
        engine, clock = story_engine(recorder, f"{prefix}-{i:05d}")
        run_story(engine, clock)
    assert len(recorder.steps) == stories * STORY_STEPS, "the reference story changed length"
    return recorder.steps


# ================================================================================================
# SQLite: the store, the engine, and raw sqlite3
# ================================================================================================
# The raw baseline writes the SQLiteStore's rows into the same tables (its schema, copied from a file
# the store created) with the statements a careful hand-written adapter would use.
_RAW_UPSERT = """INSERT INTO consultations
    (id, community, state, topic, carrier, next_due, proposed_at, version, head, record)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET community = excluded.community, state = excluded.state,
    topic = excluded.topic, carrier = excluded.carrier, next_due = excluded.next_due,
    proposed_at = excluded.proposed_at, version = excluded.version, head = excluded.head,
    record = excluded.record"""
_RAW_ENTRY = "INSERT INTO entries (consultation, seq, hash, prev, body) VALUES (?, ?, ?, ?, ?)"
_RAW_NOTICE = """INSERT INTO outbox (key, consultation, seq, status, attempts, not_before, last_error, notice)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""


RawRows = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def raw_rows(step: cf.Step) -> RawRows:
    """The rows the SQLiteStore writes for ``step`` (the record, its entries, its notices), made
    by the store's own row builder with plain, whole-record serialisation."""
    _, (record,), entries, notices = sqlite_rows(((step, 0),))
    return record, entries, notices


def _schema_of_store(workdir: Path) -> list[str]:
    """The DDL of a file the SQLiteStore created (tables and indexes, in order)."""
    path = workdir / "schema-source.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        ddl = [sql for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return ddl


def _raw_db(path: Path, sync: str, ddl: Sequence[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    for statement in ddl:
        db.execute(statement)
    return db


def _raw_write(db: sqlite3.Connection, batch: Sequence[RawRows]) -> None:
    db.execute("BEGIN IMMEDIATE")
    for record, entries, notices in batch:
        db.execute(_RAW_UPSERT, record)
        db.executemany(_RAW_ENTRY, entries)
        if notices:
            db.executemany(_RAW_NOTICE, notices)
    db.execute("COMMIT")


def run_raw(
    path: Path, sync: str, ddl: Sequence[str], steps: Sequence[cf.Step], batch: int, json_in_loop: bool
) -> float:
    """Seconds to write ``steps`` with plain sqlite3, ``batch`` steps per transaction. With
    ``json_in_loop`` the JSON is made in the timed loop (as any adapter must), else beforehand."""
    db = _raw_db(path, sync, ddl)
    try:
        if json_in_loop:
            started = time.perf_counter()
            for i in range(0, len(steps), batch):
                _raw_write(db, [raw_rows(s) for s in steps[i : i + batch]])
            return time.perf_counter() - started
        rows = [raw_rows(s) for s in steps]
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            _raw_write(db, rows[i : i + batch])
        return time.perf_counter() - started
    finally:
        db.close()


def run_store(store: Any, steps: Sequence[cf.Step], batch: int) -> float:
    """Seconds to append ``steps`` to ``store``: one ``append`` per step, or ``append_many``."""
    started = time.perf_counter()
    if batch == 1:
        for step in steps:
            store.append(step, step.expected_version)
    else:
        for i in range(0, len(steps), batch):
            store.append_many(steps[i : i + batch])
    return time.perf_counter() - started


def run_engine(store: Any, prefix: str, stories: int) -> float:
    """Seconds to run ``stories`` reference stories through the engine on ``store`` (load,
    apply, append per step, commands built in the loop)."""
    started = time.perf_counter()
    for i in range(stories):
        engine, clock = story_engine(store, f"{prefix}-{i:05d}")
        run_story(engine, clock)
    return time.perf_counter() - started


# ================================================================================================
# PostgreSQL
# ================================================================================================
def pg_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'consultflow[postgres]')"
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"no server at CONSULTFLOW_PG_DSN ({str(exc).strip().splitlines()[0]})"
    return None


def run_pg_writers(store: Any, per_writer: Sequence[Sequence[cf.Step]], batch: int = 1) -> float:
    """Seconds for len(per_writer) threads, each appending its own steps, to finish."""
    barrier = threading.Barrier(len(per_writer) + 1)
    errors: list[BaseException] = []

    def writer(steps: Sequence[cf.Step]) -> None:
        try:
            barrier.wait()
            run_store(store, steps, batch)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in per_writer]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


# ================================================================================================
# The report
# ================================================================================================
class Figures:
    """Steps/s per variant over repetitions; medians on demand."""

    def __init__(self) -> None:
        self.rates: dict[str, list[float]] = {}

    def add(self, name: str, steps: int, seconds: float) -> None:
        self.rates.setdefault(name, []).append(steps / seconds)

    def median(self, name: str) -> float:
        return statistics.median(self.rates[name])

    def line(self, name: str, label: str, extra: str = "") -> str:
        rates = self.rates[name]
        spread = f"({min(rates):,.0f}-{max(rates):,.0f})" if len(rates) > 1 else ""
        return f"  {label:<44} {self.median(name):>9,.0f} steps/s {spread:<20} {extra}"


def _fresh(workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def bench_sqlite(workdir: Path, stories: int, reps: int, batch: int, figures: Figures) -> None:
    ddl = _schema_of_store(workdir)
    steps = make_steps("sq", stories)
    n = len(steps)

    def variants(sync: str) -> list[tuple[str, Callable[[], float]]]:
        return [
            (f"{sync} raw", lambda: run_raw(_fresh(workdir, "raw"), sync, ddl, steps, 1, False)),
            (f"{sync} raw+json", lambda: run_raw(_fresh(workdir, "rawj"), sync, ddl, steps, 1, True)),
            (f"{sync} store", lambda: _with_sqlite(workdir, sync, lambda st: run_store(st, steps, 1))),
            (f"{sync} engine", lambda: _with_sqlite(workdir, sync, lambda st: run_engine(st, "sq", stories))),
            (f"{sync} raw batched", lambda: run_raw(_fresh(workdir, "rawb"), sync, ddl, steps, batch, False)),
            (f"{sync} store batched", lambda: _with_sqlite(workdir, sync, lambda st: run_store(st, steps, batch))),
        ]

    for sync in ("FULL", "NORMAL"):
        runs = variants(sync)
        for rep in range(reps):
            shift = rep % len(runs)
            for name, run in runs[shift:] + runs[:shift]:
                figures.add(name, n, run())


def _with_sqlite(workdir: Path, sync: str, run: Callable[[Any], float]) -> float:
    store = SQLiteStore(_fresh(workdir, f"store-{sync}"), synchronous=sync)  # type: ignore[arg-type]
    try:
        return run(store)
    finally:
        store.close()


def bench_postgres(stories: int, reps: int, batch: int, figures: Figures) -> str:
    import psycopg

    from consultflow.storage.postgres import PostgresStore

    writers = 8
    one = make_steps("pg1", stories)
    many = [make_steps(f"pg8w{w}", max(1, stories // 2)) for w in range(writers)]
    prefix = f"cf_bench_{os.getpid()}"
    used: list[str] = []

    def store(label: str, connections: int = 1) -> Any:
        schema = f"{prefix}_{label}_{len(used)}"
        used.append(schema)
        s = PostgresStore(PG_DSN, schema=schema, max_connections=connections)
        s.migrate()
        return s

    def timed(label: str, connections: int, run: Callable[[Any], float]) -> float:
        s = store(label, connections)
        try:
            return run(s)
        finally:
            s.close()

    try:
        variants: list[tuple[str, int, Callable[[], float]]] = [
            ("pg 1 writer", len(one), lambda: timed("one", 1, lambda s: run_store(s, one, 1))),
            ("pg 8 writers", sum(map(len, many)), lambda: timed("eight", writers, lambda s: run_pg_writers(s, many))),
            ("pg batched", len(one), lambda: timed("batch", 1, lambda s: run_store(s, one, batch))),
            ("pg engine", len(one), lambda: timed("engine", 1, lambda s: run_engine(s, "pg1", stories))),
        ]
        for rep in range(reps):
            shift = rep % len(variants)
            for name, n, run in variants[shift:] + variants[:shift]:
                figures.add(name, n, run())
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            server = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            sync = str(conn.execute("SHOW synchronous_commit").fetchone()[0])  # type: ignore[index]
        return f"PostgreSQL {server}, synchronous_commit={sync}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in used:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _verdict(ratio: float) -> str:
    return "PASS" if ratio >= TARGET else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, a few seconds")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5, --quick 2)")
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    args = parser.parse_args(argv)
    quick = args.quick
    stories = 4 if quick else 12
    reps = args.reps or (2 if quick else 5)
    batch = STORY_STEPS  # a whole story per transaction
    started = time.perf_counter()
    figures = Figures()

    out = print
    out("consultflow storage benchmark" + (" (--quick smoke run)" if quick else ""))
    out(f"{describe_machine()}, SQLite {sqlite3.sqlite_version}")
    out(
        f"workload: {stories} consultations x {STORY_STEPS} steps of the reference story (records up to ~7 kB JSON), "
        f"medians of {reps} interleaved repetitions, min-max in brackets"
    )
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="cf-bench-") as tmp:
        workdir = Path(tmp)
        out(f"SQLite files in {workdir} (WAL)")
        bench_sqlite(workdir, stories, reps, batch, figures)
    for sync in ("FULL", "NORMAL"):
        raw, raw_json = figures.median(f"{sync} raw"), figures.median(f"{sync} raw+json")
        store, engine = figures.median(f"{sync} store"), figures.median(f"{sync} engine")
        raw_b, store_b = figures.median(f"{sync} raw batched"), figures.median(f"{sync} store batched")
        out(f"\nSQLite synchronous={sync}, one transaction per step unless batched")
        out(figures.line(f"{sync} raw", "raw sqlite3 inserts (JSON made beforehand)"))
        out(figures.line(f"{sync} raw+json", "raw sqlite3 inserts (JSON made in the loop)"))
        out(
            figures.line(
                f"{sync} store",
                "SQLiteStore.append",
                f"{store / raw:.2f} of raw [target >= {TARGET}: {_verdict(store / raw)}], "
                f"{store / raw_json:.2f} of raw+json",
            )
        )
        out(figures.line(f"{sync} engine", "Engine.execute on SQLiteStore (end to end)", f"{engine / raw:.2f} of raw"))
        out(figures.line(f"{sync} raw batched", f"raw sqlite3, {batch} steps per transaction"))
        out(
            figures.line(
                f"{sync} store batched",
                f"SQLiteStore.append_many, {batch} per batch",
                f"{store_b / raw_b:.2f} of raw batched, {store_b / store:.1f}x per-step append",
            )
        )
    if args.no_postgres:
        out("\nPostgreSQL skipped: --no-postgres")
    elif (problem := pg_problem()) is not None:
        out(f"\nPostgreSQL skipped: {problem}")
    else:
        pg_stories = 3 if quick else 8
        about = bench_postgres(pg_stories, reps, batch, figures)
        one, eight = figures.median("pg 1 writer"), figures.median("pg 8 writers")
        out(f"\n{about}; {pg_stories} consultations per single writer, {max(1, pg_stories // 2)} per writer of 8")
        out(figures.line("pg 1 writer", "PostgresStore.append, 1 writer"))
        out(figures.line("pg 8 writers", "PostgresStore.append, 8 writers (threads)", f"{eight / one:.1f}x one writer"))
        out(
            figures.line(
                "pg batched",
                f"PostgresStore.append_many, {batch} per batch",
                f"{figures.median('pg batched') / one:.1f}x per-step append",
            )
        )
        out(figures.line("pg engine", "Engine.execute on PostgresStore, 1 writer"))
    out(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
