"""The PostgreSQL store: the conformance kit, then what only PostgreSQL does (schema creation under
an advisory lock, migrations, SKIP LOCKED leases, lost connections, the pool, error mapping).

Needs a server at ``CONSULTFLOW_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``):
skipped with the reason where none answers, a failure under ``CI=true``. Every test gets its own
schema, named after this session and dropped at its end.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

try:
    import psycopg
except ImportError:  # pragma: no cover - psycopg comes with the test extra
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        raise
    pytest.skip("psycopg is not installed: pip install -e '.[test]'", allow_module_level=True)


import consultflow
from consultflow import Conflict, IntegrityError, InvalidInput, NotFound, Query, State, StoreUnavailable, verify
from consultflow.storage import postgres as pg
from consultflow.storage.postgres import PostgresStore
from consultflow.testing import StepMaker, StoreContract, append
from store_support import (
    COMMUNITY,
    Schemas,
    entries_of,
    notices_from,
    opening,
    opinion,
    pg_execute,
    require_postgres,
    schemas_fixture,
)

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def schemas() -> Iterator[Schemas]:
    yield from schemas_fixture()


@pytest.fixture
def schema(schemas: Schemas) -> str:
    return schemas.new("t")


@pytest.fixture
def pg_store(schemas: Schemas, schema: str) -> Iterator[PostgresStore]:
    s = PostgresStore(schemas.dsn, schema=schema)
    yield s
    s.close()


# ---- the conformance kit ----------------------------------------------------------------------------
class TestPostgresContract(StoreContract):
    supports_processes = True

    @pytest.fixture
    def store(self, schemas: Schemas, schema: str) -> Iterator[PostgresStore]:
        s = PostgresStore(schemas.dsn, schema=schema)
        yield s
        s.close()

    @pytest.fixture
    def open_store(self, schemas: Schemas, schema: str) -> Callable[[], PostgresStore]:
        return functools.partial(PostgresStore, schemas.dsn, schema=schema)


# ---- the schema -------------------------------------------------------------------------------------
def _versions(schema: str) -> list[int]:
    return [v for (v,) in pg_execute(f'SELECT version FROM "{schema}".schema_version ORDER BY version')]


def test_the_schema_is_created_on_first_use(schemas: Schemas, schema: str) -> None:
    store = PostgresStore(schemas.dsn, schema=schema)
    try:
        assert pg_execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == []
        with pytest.raises(NotFound):
            store.load("nothing")
        assert _versions(schema) == [m[0] for m in pg.MIGRATIONS]  # every migration, applied at once
        indexes = {name for (name,) in pg_execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,))}
        for wanted in ("community", "state", "topic", "carrier", "next_due"):
            assert f"consultations_{wanted}" in indexes
        assert "outbox_ready" in indexes
    finally:
        store.close()


def test_concurrent_first_uses_do_not_race(schemas: Schemas, schema: str) -> None:
    stores = [PostgresStore(schemas.dsn, schema=schema) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def first_use(store: PostgresStore) -> None:
        try:
            barrier.wait(timeout=30)
            store.find(Query())
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    assert not errors, errors
    assert _versions(schema) == [m[0] for m in pg.MIGRATIONS]


def test_an_older_schema_is_upgraded(schemas: Schemas, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PostgresStore(schemas.dsn, schema=schema) as old:
        old.append(opening("up-1")[0], 0)
    latest = pg.SCHEMA_VERSION
    extra = (
        latest + 1,
        "an index for the test",
        ("CREATE INDEX consultations_written ON {s}.consultations (written_at)",),
    )
    monkeypatch.setattr(pg, "MIGRATIONS", (*pg.MIGRATIONS, extra))
    monkeypatch.setattr(pg, "SCHEMA_VERSION", latest + 1)
    with PostgresStore(schemas.dsn, schema=schema) as new:
        assert new.load("up-1").version == 1
    assert _versions(schema) == [*range(1, latest + 1), latest + 1]
    assert pg_execute(
        "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'consultations_written'", (schema,)
    )


def test_a_newer_schema_is_refused(schemas: Schemas, schema: str) -> None:
    PostgresStore(schemas.dsn, schema=schema).migrate()
    pg_execute(f"INSERT INTO \"{schema}\".schema_version (version, description) VALUES (99, 'from the future')")
    with (
        PostgresStore(schemas.dsn, schema=schema) as store,
        pytest.raises(StoreUnavailable, match="upgrade consultflow"),
    ):
        store.load("x")


def test_create_schema_false_needs_a_migrated_schema(schemas: Schemas, schema: str) -> None:
    with (
        PostgresStore(schemas.dsn, schema=schema, create_schema=False) as store,
        pytest.raises(StoreUnavailable, match="migrate"),
    ):
        store.load("x")
    assert pg_execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == []
    PostgresStore(schemas.dsn, schema=schema).migrate()
    with PostgresStore(schemas.dsn, schema=schema, create_schema=False) as store, pytest.raises(NotFound):
        store.load("x")


def test_schema_names_must_be_plain_identifiers() -> None:
    for bad in ('x"; DROP SCHEMA public; --', "1abc", "", "a" * 64, "with space"):
        with pytest.raises(InvalidInput):
            PostgresStore(require_postgres(), schema=bad)


# ---- what PostgreSQL adds to the contract -------------------------------------------------------------
def test_append_is_one_statement_and_writes_rows_in_their_columns(pg_store: PostgresStore, schema: str) -> None:
    steps = opening("col-1")
    for s in steps:
        pg_store.append(s, s.expected_version)
    row = pg_execute(
        f'SELECT version, head, community, state, topic, carrier, next_due FROM "{schema}".consultations WHERE id = %s',
        ("col-1",),
    )
    r = steps[-1].record
    assert row == [(3, r.head, r.community, "consulting", r.topic, "decision", r.next_due)]
    texts = [t for (t,) in pg_execute(f'SELECT entry FROM "{schema}".entries ORDER BY seq')]
    assert texts == [consultflow.canonical_json(e.to_json_dict()).decode() for e in entries_of(steps)], (
        "entries are stored as the bytes that are hashed"
    )
    assert [n.key for n in pg_store.outbox("col-1")] == [n.key for n in notices_from(steps)]


def test_notices_keep_every_field_they_were_appended_with(pg_store: PostgresStore) -> None:
    steps = opening("nf-1")
    pg_store.append(steps[0], 0)
    (sent,) = steps[1].notices
    odd = sent.model_copy(
        update={"status": "leased", "attempts": 2, "not_before": NOW + timedelta(days=1), "last_error": 'SMTP 451 "x"'}
    )
    pg_store.append(type(steps[1])(steps[1].record, steps[1].entries, (odd,)), 1)
    assert pg_store.outbox("nf-1") == (odd,)
    assert pg_store.lease(5, NOW) == ()
    (again,) = pg_store.lease(5, NOW + timedelta(days=1))
    assert (again.key, again.attempts, again.last_error) == (sent.key, 3, odd.last_error)


def test_append_many_writes_a_batch_in_one_transaction(pg_store: PostgresStore) -> None:
    steps = opening("batch-1")
    for i in range(20):
        steps.append(opinion(steps[-1].record, f"b{i}", NOW + timedelta(seconds=i)))
    pg_store.append_many(steps)
    record = pg_store.load("batch-1")
    assert record == steps[-1].record
    entries = pg_store.entries("batch-1")
    assert list(entries) == entries_of(steps)
    assert verify(entries, head=record.head, version=record.version).ok
    pg_store.append_many([])  # nothing to do


def test_append_many_with_a_clash_in_the_middle_writes_nothing(pg_store: PostgresStore) -> None:
    base = opening("batch-2")
    pg_store.append_many(base)
    mine = opinion(base[-1].record, "mine", NOW)
    pg_store.append(opinion(base[-1].record, "theirs", NOW), 3)
    other = opening("batch-3")
    with pytest.raises(Conflict) as caught:
        pg_store.append_many([*other, mine])
    assert (caught.value.consultation, caught.value.expected, caught.value.actual) == ("batch-2", 3, 4)
    with pytest.raises(NotFound):
        pg_store.load("batch-3")
    assert [n.consultation for n in pg_store.outbox()] == ["batch-2", "batch-2"]


def test_append_many_with_a_duplicate_notice_key_writes_nothing(pg_store: PostgresStore) -> None:
    a = opening("batch-4")
    pg_store.append_many(a)
    b = opening("batch-5")
    clash = b[1].notices[0].model_copy(update={"key": a[1].notices[0].key})
    forged = type(b[1])(b[1].record, b[1].entries, (clash,))
    with pytest.raises(IntegrityError, match="nothing was written"):
        pg_store.append_many([b[0], forged, b[2]])
    with pytest.raises(NotFound):
        pg_store.load("batch-5")
    assert [n.consultation for n in pg_store.outbox()] == ["batch-4", "batch-4"]
    pg_store.append_many(b)  # the connection is fine afterwards
    assert pg_store.load("batch-5") == b[-1].record


def test_a_failure_inside_the_statement_writes_nothing(pg_store: PostgresStore, schema: str) -> None:
    """Fail before commit, in the database: a trigger refuses the outbox row, after the record row
    and the entries were written in the same statement. Nothing of the step may remain."""
    steps = opening("trg-1")
    pg_store.append(steps[0], 0)
    pg_execute(
        f"""CREATE FUNCTION "{schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"""
    )
    pg_execute(
        f'CREATE TRIGGER refuse BEFORE INSERT ON "{schema}".outbox FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse()'
    )
    with pytest.raises(StoreUnavailable, match="injected failure"):
        pg_store.append(steps[1], 1)
    assert pg_store.load("trg-1") == steps[0].record
    assert list(pg_store.entries("trg-1")) == list(steps[0].entries)
    assert pg_store.outbox() == ()
    pg_execute(f'DROP TRIGGER refuse ON "{schema}".outbox')
    pg_store.append(steps[1], 1)  # the retry writes the step once
    assert list(pg_store.entries("trg-1")) == entries_of(steps[:2])
    assert len(pg_store.outbox()) == 1


def test_leases_skip_locked_rows_instead_of_waiting(pg_store: PostgresStore, schema: str) -> None:
    steps = opening("sk-1")
    pg_store.append_many(steps)
    first, second = (n.key for n in notices_from(steps))
    with psycopg.connect(require_postgres()) as other:  # a dispatcher in the middle of its transaction
        other.execute(f'SELECT 1 FROM "{schema}".outbox WHERE key = %s FOR UPDATE', (first,))
        started = time.monotonic()
        leased = pg_store.lease(10, NOW)
        assert time.monotonic() - started < 2, "lease() waited for a locked notice"
        assert [n.key for n in leased] == [second]
        other.rollback()
    assert [n.key for n in pg_store.lease(10, NOW)] == [first]


def test_many_dispatchers_lease_each_notice_once(pg_store: PostgresStore, schemas: Schemas, schema: str) -> None:
    for i in range(30):
        pg_store.append_many(opening(f"dp-{i:02d}", NOW + timedelta(minutes=i)))
    keys = {n.key for n in pg_store.outbox()}
    assert len(keys) == 60
    workers = [PostgresStore(schemas.dsn, schema=schema) for _ in range(8)]
    taken: list[list[str]] = [[] for _ in workers]
    barrier = threading.Barrier(len(workers))

    def dispatcher(i: int) -> None:
        barrier.wait(timeout=30)
        while batch := workers[i].lease(3, NOW + timedelta(days=1)):
            taken[i].extend(n.key for n in batch)
            for n in batch:
                workers[i].settle(n.key, "delivered", now=NOW)

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for w in workers:
        w.close()
    every = [k for keys_ in taken for k in keys_]
    assert sorted(every) == sorted(keys), "each notice leased exactly once"
    assert {n.status for n in pg_store.outbox()} == {"delivered"}


def test_find_uses_the_indexes(pg_store: PostgresStore, schema: str) -> None:
    pg_store.append_many(opening("ix-1"))
    plans = {
        "community": "community = 'x'",
        "state": "state = ANY('{consulting}'::text[])",
        "topic": "topic LIKE 'public-affairs/%'",
        "carrier": "carrier = 'decision'",
        "next_due": "next_due <= now()",
    }
    with psycopg.connect(require_postgres()) as conn:
        conn.execute("SET enable_seqscan = off")
        for index, where in plans.items():
            plan = "\n".join(
                r[0] for r in conn.execute(f'EXPLAIN SELECT record FROM "{schema}".consultations WHERE {where}')
            )
            assert f"consultations_{index}" in plan, plan


# ---- connections, errors ------------------------------------------------------------------------------
def test_an_absent_server_is_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    with pytest.raises(StoreUnavailable, match=r"cannot connect to PostgreSQL at postgres@127\.0\.0\.1:1/test"):
        store.load("x")
    store.close()


def test_messages_never_show_the_password() -> None:
    store = PostgresStore("postgresql://postgres:s3cret@127.0.0.1:1/test", connect_timeout=1)
    assert "s3cret" not in repr(store)
    with pytest.raises(StoreUnavailable) as caught:
        store.load("x")
    assert "s3cret" not in str(caught.value)


def _backend_pids(application_name: str) -> list[int]:
    return [
        p for (p,) in pg_execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,))
    ]


def test_a_lost_connection_is_reported_and_replaced(schemas: Schemas, schema: str) -> None:
    name = f"cf-lost-{os.getpid()}"
    store = PostgresStore(schemas.dsn, schema=schema, application_name=name)
    try:
        steps = opening("lost-1")
        store.append(steps[0], 0)
        held = [store._pool.acquire() for _ in range(3)]  # three pooled connections, as after a busy spell
        for conn in held:
            store._pool.release(conn)
        for pid in _backend_pids(name):
            pg_execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert store.load("lost-1") == steps[0].record, "a read is retried once on a fresh connection"
        for pid in _backend_pids(name):
            pg_execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable, match="may or may not have been written"):
            store.append(steps[1], 1)  # a write is never retried behind the caller's back
        assert store.load("lost-1").version == 1
        store.append(steps[1], 1)
        assert store.load("lost-1") == steps[1].record
    finally:
        store.close()


def test_a_small_pool_serves_many_threads(schemas: Schemas, schema: str) -> None:
    store = PostgresStore(schemas.dsn, schema=schema, max_connections=2)
    store.append_many(opening("pool-1"))
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(20):
                assert store.load("pool-1").version == 3
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    store.close()
    assert not errors, errors


def test_an_exhausted_pool_says_what_to_do(schemas: Schemas, schema: str) -> None:
    store = PostgresStore(schemas.dsn, schema=schema, max_connections=1, pool_timeout=0.2)
    store.migrate()
    held = store._pool.acquire()
    try:
        with pytest.raises(StoreUnavailable, match="max_connections"):
            store.load("x")
    finally:
        store._pool.release(held)
        store.close()


def test_a_statement_timeout_is_store_unavailable(schemas: Schemas, schema: str) -> None:
    store = PostgresStore(schemas.dsn, schema=schema, statement_timeout=0.2)
    store.append_many(opening("slow-1"))
    with psycopg.connect(require_postgres()) as other:
        other.execute(f'SELECT 1 FROM "{schema}".consultations WHERE id = %s FOR UPDATE', ("slow-1",))
        with pytest.raises(StoreUnavailable, match="retry"):
            store.append(opinion(store.load("slow-1"), "late", NOW), 3)
        other.rollback()
    assert store.load("slow-1").version == 3
    store.close()


def test_a_forked_child_opens_its_own_connections(pg_store: PostgresStore) -> None:
    pg_store.append_many(opening("fork-1"))
    assert pg_store.load("fork-1").version == 3  # the parent's pool holds a connection now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            record = pg_store.load("fork-1")
            pg_store.append(opinion(record, "child", NOW), record.version)
            pg_store.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    record = pg_store.load("fork-1")  # the parent's connection still works
    assert record.version == 4
    assert pg_store.entries("fork-1")[-1].actor == "child"


def test_unreadable_rows_are_integrity_errors(pg_store: PostgresStore, schema: str) -> None:
    pg_store.append_many(opening("bad-1"))
    pg_execute(f'UPDATE "{schema}".consultations SET record = %s WHERE id = %s', ('{"id": 1}', "bad-1"))
    with pytest.raises(IntegrityError, match="changed outside consultflow"):
        pg_store.load("bad-1")
    pg_execute(f'UPDATE "{schema}".entries SET entry = %s WHERE consultation = %s AND seq = 2', ("{", "bad-1"))
    with pytest.raises(IntegrityError, match="log entry 2"):
        pg_store.entries("bad-1")


def test_queries_and_settle_check_their_arguments(pg_store: PostgresStore) -> None:
    steps = opening("args-1")
    pg_store.append_many(steps)
    with pytest.raises(NotFound):
        pg_store.entries("nobody")
    assert pg_store.entries("args-1", after=3) == ()
    with pytest.raises(InvalidInput):
        pg_store.append(steps[0], -1)
    found = pg_store.find(Query(states={State.CONSULTING}, topic="public-affairs/", community=COMMUNITY))
    assert [r.id for r in found] == ["args-1"]
    with pytest.raises(NotFound):
        pg_store.settle("args-1:99", "dead", now=NOW)


def test_import_consultflow_without_psycopg() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import consultflow\n"
        "from consultflow.storage.postgres import PostgresStore\n"
        "try:\n"
        "    PostgresStore('postgresql://x@127.0.0.1/db')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "pip install 'consultflow[postgres]'" in out.stdout


def test_the_store_satisfies_the_protocol(pg_store: PostgresStore) -> None:
    assert isinstance(pg_store, consultflow.Store)
    maker = StepMaker()
    step = append(pg_store, maker.propose("proto-1"))
    assert pg_store.load("proto-1") == step.record
