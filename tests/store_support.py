"""Support for the storage reliability and PostgreSQL tests: where PostgreSQL is, fresh schemas,
stores named by picklable specs (for child processes), deterministic step streams, and the
process entry points (writers that race, writers that get killed).

PostgreSQL comes from ``CONSULTFLOW_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Where no server answers, the tests skip and say why; under CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import functools
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consultflow import (
    Catalogue,
    Conflict,
    LogEntry,
    MemoryDirectory,
    MemoryStore,
    Notice,
    Procedure,
    Role,
    Step,
    Store,
)
from consultflow.testing import COMMUNITIES, TOPICS, StepMaker

PG_DSN = os.environ.get("CONSULTFLOW_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

try:  # the SQLite store is built in parallel; its parts of the tests skip until it exists
    from consultflow.storage.sqlite import SQLiteStore
except ImportError:  # pragma: no cover - depends on the checkout
    SQLiteStore = None  # type: ignore[assignment,misc]

COMMUNITY = COMMUNITIES[0]
TOPIC = TOPICS[0]  # "public-affairs/parking"
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)

# A store spec is picklable, so a child process can open the same store: ("postgres", dsn, schema),
# ("sqlite", path, "") or ("memory", "", "").
StoreSpec = tuple[str, str, str]


# ---- PostgreSQL ---------------------------------------------------------------------------------------
@functools.cache
def _pg_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'consultflow[postgres]')"
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL answers at CONSULTFLOW_PG_DSN={PG_DSN!r} ({first})"
    return None


def require_postgres() -> str:
    """The DSN, or skip (fail under CI) when no server answers."""
    problem = _pg_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem}; CI=true, where PostgreSQL must run - a missing server is a failure")
        pytest.skip(f"{problem}; set CONSULTFLOW_PG_DSN to run the PostgreSQL tests")
    return PG_DSN


def require_sqlite() -> None:
    if SQLiteStore is None:
        pytest.skip("consultflow.storage.sqlite is not there yet")


class Schemas:
    """Unique PostgreSQL schema names for one test session; ``drop_all`` removes them."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.prefix = f"cft_{os.getpid()}_{secrets.token_hex(3)}"
        self._n = 0
        self._lock = threading.Lock()

    def new(self, label: str = "s") -> str:
        with self._lock:
            self._n += 1
            return f"{self.prefix}_{label}{self._n}"

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (self.prefix + "_",)
            ).fetchall()
            for (name,) in rows:
                conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def schemas_fixture() -> Iterator[Schemas]:
    dsn = require_postgres()
    schemas = Schemas(dsn)
    yield schemas
    schemas.drop_all()


def pg_execute(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh autocommit connection (for tampering and inspection)."""
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []


# ---- stores by spec ------------------------------------------------------------------------------
def open_store(spec: StoreSpec) -> Any:
    kind, where, schema = spec
    if kind == "postgres":
        from consultflow.storage.postgres import PostgresStore

        return PostgresStore(where, schema=schema)
    if kind == "sqlite":
        assert SQLiteStore is not None
        return SQLiteStore(where)
    if kind == "memory":
        return MemoryStore()
    raise ValueError(f"unknown store kind {kind!r}")


def notices_of(store: Any, cid: str) -> tuple[Notice, ...]:
    """The outbox notices of one consultation (stores expose ``outbox()`` for inspection)."""
    try:
        found = store.outbox(cid)
    except TypeError:
        found = store.outbox()
    return tuple(n for n in found if n.consultation == cid)


# ---- steps, made by the real core (StepMaker) ---------------------------------------------------------
def procedure() -> Procedure:
    """The kit's procedure (no notice period), which made the steps: engines on these stores use it."""
    return _maker().procedure


def catalogue() -> Catalogue:
    return _maker().catalogue


def residents(*names: str) -> MemoryDirectory:
    """A directory in which each of ``names`` is a resident of ``COMMUNITY``: engines on these stores
    ask it for roles, so a resident gives an opinion in the open round (residents take part)."""
    directory = MemoryDirectory()
    for name in names:
        directory.grant(COMMUNITY, name, Role.RESIDENT, by="store_support")
    return directory


@functools.cache
def _maker() -> StepMaker:
    """One maker for the process; every step here is made with an explicit ``at``, so a stream is
    the same whichever process makes it."""
    return StepMaker(T0)


def opening(cid: str, at: datetime = T0) -> list[Step]:
    """Propose, notify (a notice) and open a round (a notice): ``cid`` ends consulting at version 3."""
    maker = _maker()
    steps = [maker.propose(cid, community=COMMUNITY, topic=TOPIC, title="停车 parking", at=at)]
    meeting = at + timedelta(hours=1)
    steps.append(
        maker.notify(steps[-1].record, invite=("a", "b", "c"), meeting_at=meeting, at=at + timedelta(seconds=1))
    )
    steps.append(maker.open_round(steps[-1].record, at=meeting))
    return steps


def opinion(record: Any, participant: str, at: datetime) -> Step:
    """``participant`` (a resident) supports, at ``at``; the opinion's text is the name."""
    return _maker().opinion(record, participant, text=participant, at=at)


def stream(iteration: int, index: int, opinions: int = 3) -> list[Step]:
    """A deterministic stream for consultation ``k{iteration}-c{index}``: the opening (three steps,
    two notices) and ``opinions`` opinions. Any process computes the same steps."""
    cid = f"k{iteration}-c{index}"
    at = T0 + timedelta(days=iteration, minutes=index)
    steps = opening(cid, at)
    for i in range(opinions):
        steps.append(opinion(steps[-1].record, f"p{i}", at + timedelta(hours=2, seconds=i)))
    return steps


def entries_of(steps: Sequence[Step]) -> list[LogEntry]:
    return [e for s in steps for e in s.entries]


def notices_from(steps: Sequence[Step]) -> list[Notice]:
    return [n for s in steps for n in s.notices]


# ---- process entry points (module level, so spawn and forkserver can import them) ---------------------
def race_writer(
    spec: StoreSpec, cid: str, writer: int, rounds: int, barrier: Any, results: Any, shared: Any = None
) -> None:
    """Each round: load, wait for the other writer to load too, then append an opinion made from
    that version. Reports (round, loaded version, outcome, participant, new head). ``shared`` is a
    store object to use instead of opening one from ``spec`` (threads sharing one store)."""
    store = shared if shared is not None else open_store(spec)
    try:
        for r in range(rounds):
            record = store.load(cid)
            barrier.wait(timeout=60)
            participant = f"r{r}-w{writer}"
            step = opinion(record, participant, record.proposed_at + timedelta(hours=2, seconds=r))
            try:
                store.append(step, record.version)
            except Conflict:
                results.put((r, record.version, "conflict", participant, None))
            else:
                results.put((r, record.version, "won", participant, step.record.head))
            barrier.wait(timeout=60)
    except BaseException as exc:
        barrier.abort()
        results.put((-1, -1, "error", repr(exc), None))
        raise
    finally:
        if shared is None:
            store.close()


def kill_writer(spec: StoreSpec, iteration: int, acks: Any, consultations: int = 100_000) -> None:
    """Append ``stream(iteration, j)`` for j = 0, 1, ... and acknowledge each step after
    ``append`` returned, until killed."""
    store = open_store(spec)
    acks.send(("ready", 0))
    for j in range(consultations):
        for step in stream(iteration, j):
            store.append(step, step.expected_version)
            acks.send((step.record.id, step.record.version))
    acks.send(("done", 0))
    store.close()


def outbox_by_consultation(store: Any) -> dict[str, list[Notice]]:
    """The whole outbox, read once, grouped by consultation."""
    grouped: dict[str, list[Notice]] = {}
    for n in store.outbox():
        grouped.setdefault(n.consultation, []).append(n)
    return grouped


def check_store_matches_stream(
    store: Store, iteration: int, index: int, outbox: dict[str, list[Notice]] | None = None
) -> int | None:
    """Compare what the store holds for ``k{iteration}-c{index}`` with the stream: the record, the
    log and the outbox must be exactly those of a whole number of steps. Returns the stored version
    (``None`` when the consultation is not there). ``outbox`` is ``outbox_by_consultation(store)``
    when the caller checks many consultations."""
    from consultflow import NotFound, verify

    steps = stream(iteration, index)
    cid = steps[0].record.id
    try:
        record = store.load(cid)
    except NotFound:
        return None
    whole = [i for i, s in enumerate(steps) if s.record.version == record.version]
    assert whole, f"{cid}: stored version {record.version} is not the end of any step (half-written)"
    done = steps[: whole[0] + 1]
    assert record == done[-1].record, f"{cid}: the stored record is not the one its step wrote"
    entries = list(store.entries(cid))
    assert entries == entries_of(done), f"{cid}: the log is not exactly the entries of {len(done)} steps"
    check = verify(entries, head=record.head, version=record.version)
    assert check.ok, f"{cid}: {check}"
    expected = notices_from(done)
    stored = notices_of(store, cid) if outbox is None else outbox.get(cid, [])
    assert [n.key for n in stored] == [n.key for n in expected], f"{cid}: outbox does not match the steps written"
    assert all(n.status == "pending" for n in stored)
    return record.version
