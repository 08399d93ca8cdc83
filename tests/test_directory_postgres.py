"""The directory conformance kit on ``PostgresDirectory``, and what only PostgreSQL has: tables made
on first use under the store's advisory lock, beside the store in one schema, the one indexed
query, rows never deleted, lost servers and the library's errors.

Needs a server at ``CONSULTFLOW_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``):
skipped with the reason where none answers, a failure under ``CI=true``. Every test gets its own
schema and drops it.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

try:
    import psycopg
except ImportError:  # pragma: no cover - psycopg comes with the test extra
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        raise
    pytest.skip("psycopg is not installed: pip install -e '.[test]'", allow_module_level=True)

import consultflow as cf
from consultflow import IntegrityError, InvalidInput, PostgresDirectory, PostgresStore, Role, StoreUnavailable
from consultflow.directory import postgres as dpg
from consultflow.testing import DirectoryContract, StepMaker, append
from consultflow.testing.directory_contract import DirectoryOpener
from store_support import Schemas, pg_execute, schemas_fixture

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
C = Role.COMMITTEE


@pytest.fixture(scope="session")
def schemas() -> Iterator[Schemas]:
    yield from schemas_fixture()


@pytest.fixture
def schema(schemas: Schemas) -> Iterator[str]:
    """A fresh schema for one test, dropped at its end."""
    name = schemas.new("d")
    yield name
    pg_execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def directory(schemas: Schemas, schema: str) -> Iterator[PostgresDirectory]:
    d = PostgresDirectory(schemas.dsn, schema=schema)
    yield d
    d.close()


class TestPostgresDirectory(DirectoryContract):
    supports_processes = True

    @pytest.fixture
    def directory(self, schemas: Schemas, schema: str) -> Iterator[PostgresDirectory]:
        d = PostgresDirectory(schemas.dsn, schema=schema)
        yield d
        d.close()

    @pytest.fixture
    def open_directory(self, schemas: Schemas, schema: str) -> DirectoryOpener:
        return functools.partial(PostgresDirectory, schemas.dsn, schema=schema)


class TestPostgresDirectoryBesideTheStore(DirectoryContract):
    """The same contract with the directory in a store's schema, the store open beside it."""

    @pytest.fixture
    def directory(self, schemas: Schemas, schema: str) -> Iterator[PostgresDirectory]:
        with PostgresStore(schemas.dsn, schema=schema) as store:
            store.migrate()
            d = PostgresDirectory(schemas.dsn, schema=schema, max_connections=3)
            yield d
            d.close()

    @pytest.fixture
    def open_directory(self, schemas: Schemas, schema: str) -> DirectoryOpener:
        return functools.partial(PostgresDirectory, schemas.dsn, schema=schema, max_connections=3)


def _tables(schema: str) -> set[str]:
    return {str(t) for (t,) in pg_execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}


# ---- the schema -------------------------------------------------------------------------------------
def test_the_tables_are_created_on_first_use(schemas: Schemas, schema: str) -> None:
    d = PostgresDirectory(schemas.dsn, schema=schema)
    try:
        assert pg_execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == [], "nothing before use"
        assert d.roles("li", "taoyuan", T0) == frozenset()
        assert _tables(schema) == {"directory_grants", "directory_places", "directory_schema_version"}
        assert pg_execute(f'SELECT version FROM "{schema}".directory_schema_version') == [(dpg.SCHEMA_VERSION,)]
        indexes = {i for (i,) in pg_execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,))}
        assert {"directory_grants_open", "directory_grants_held", "directory_grants_scope"} <= indexes
        assert d.migrate() == dpg.SCHEMA_VERSION
    finally:
        d.close()


def test_stores_and_directories_starting_together_do_not_race(schemas: Schemas, schema: str) -> None:
    handles: list[PostgresDirectory | PostgresStore] = []
    for n in range(8):
        handles.append(
            PostgresDirectory(schemas.dsn, schema=schema) if n % 2 else PostgresStore(schemas.dsn, schema=schema)
        )
    barrier = threading.Barrier(len(handles))
    errors: list[BaseException] = []

    def first_use(handle: PostgresDirectory | PostgresStore) -> None:
        try:
            barrier.wait(timeout=30)
            handle.migrate()
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for h in handles:
        h.close()
    assert not errors, errors
    assert pg_execute(f'SELECT version FROM "{schema}".directory_schema_version') == [(dpg.SCHEMA_VERSION,)]
    assert {"consultations", "entries", "outbox", "schema_version", "directory_grants"} <= _tables(schema)


def test_the_directory_lives_beside_the_store(schemas: Schemas, schema: str) -> None:
    maker = StepMaker()
    with PostgresDirectory(schemas.dsn, schema=schema) as d, PostgresStore(schemas.dsn, schema=schema) as store:
        d.grant("taoyuan", "li", C)
        step = append(store, maker.propose("beside-1"))
        assert store.load("beside-1") == step.record
        assert d.roles("li", "taoyuan", T0) == {C}
    assert pg_execute(f'SELECT max(version) FROM "{schema}".schema_version') == [(cf.storage.postgres.SCHEMA_VERSION,)]


def test_create_schema_false_refuses_missing_tables(schemas: Schemas, schema: str) -> None:
    with (
        PostgresDirectory(schemas.dsn, schema=schema, create_schema=False) as d,
        pytest.raises(StoreUnavailable, match="create_schema=True"),
    ):
        d.roles("li", "taoyuan", T0)
    assert pg_execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == []


def test_a_newer_schema_is_refused(schemas: Schemas, schema: str) -> None:
    PostgresDirectory(schemas.dsn, schema=schema).migrate()
    pg_execute(f"INSERT INTO \"{schema}\".directory_schema_version (version, description) VALUES (99, 'future')")
    with PostgresDirectory(schemas.dsn, schema=schema) as d, pytest.raises(StoreUnavailable, match="newer"):
        d.grants()


def test_rows_hold_instants_and_a_revocation_updates_never_deletes(directory: PostgresDirectory, schema: str) -> None:
    shanghai = datetime(2026, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=8)))  # T0
    directory.grant("taoyuan", "li", C, Role.WORKING_COMMITTEE, by="a", at=shanghai)
    directory.revoke("taoyuan", "li", C, Role.WORKING_COMMITTEE, at=T0 + timedelta(microseconds=1), by="b")
    directory.grant("taoyuan", "li", C, by="c")
    rows = pg_execute(
        f'SELECT scope, person, role, since, granted_by, until, revoked_by FROM "{schema}".directory_grants ORDER BY id'
    )
    later = T0 + timedelta(microseconds=1)
    assert rows == [
        ("taoyuan", "li", "committee", T0, "a", later, "b"),
        ("taoyuan", "li", "working_committee", T0, "a", later, "b"),
        ("taoyuan", "li", "committee", None, "c", None, ""),
    ]


def test_roles_is_one_indexed_query(directory: PostgresDirectory, schemas: Schemas, schema: str) -> None:
    directory.place("taoyuan", sub_district="ninghai")
    for n in range(50):
        directory.grant("taoyuan", f"p{n}", Role.RESIDENT)
    sql = dpg._ROLES.format(s=f'"{schema}"')
    params = {"c": "taoyuan", "p": "p1", "at": T0}
    with psycopg.connect(schemas.dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # tiny tables: ask whether an index *can* answer
        plan = "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql, params).fetchall())
    assert "directory_grants_held" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_rows_changed_outside_consultflow_are_an_integrity_error(directory: PostgresDirectory, schema: str) -> None:
    directory.grant("taoyuan", "li", C)
    pg_execute(f"UPDATE \"{schema}\".directory_grants SET role = 'mayor'")
    with pytest.raises(IntegrityError, match="mayor"):
        directory.roles("li", "taoyuan", T0)
    with pytest.raises(IntegrityError):
        directory.grants()


def test_a_lost_table_is_store_unavailable(directory: PostgresDirectory, schema: str) -> None:
    directory.grant("taoyuan", "li", C)
    pg_execute(f'DROP TABLE "{schema}".directory_places')
    with pytest.raises(StoreUnavailable, match="missing"):
        directory.roles("li", "taoyuan", T0)


def test_no_server_is_store_unavailable() -> None:
    with PostgresDirectory("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1) as d:
        with pytest.raises(StoreUnavailable, match="cannot connect"):
            d.roles("li", "taoyuan", T0)
        with pytest.raises(StoreUnavailable):
            d.grant("taoyuan", "li", C)


def test_a_lost_connection_is_retried_for_reads(directory: PostgresDirectory) -> None:
    directory.grant("taoyuan", "li", C)
    conn = directory._pool.acquire()  # the one idle connection: find its server process
    pid = conn.info.backend_pid
    directory._pool.release(conn)
    assert pg_execute("SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    assert directory.roles("li", "taoyuan", T0) == {C}, "a read on a dead connection is retried on a fresh one"
    assert directory.roles("li", "taoyuan", T0) == {C}


def test_a_write_on_a_lost_connection_is_store_unavailable(directory: PostgresDirectory) -> None:
    directory.grant("taoyuan", "li", C)
    conn = directory._pool.acquire()
    pid = conn.info.backend_pid
    directory._pool.release(conn)
    pg_execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StoreUnavailable, match="lost PostgreSQL"):
        directory.revoke("taoyuan", "li", C, at=T0)  # not retried: it may have gone through
    directory.revoke("taoyuan", "li", C, at=T0)
    assert directory.roles("li", "taoyuan", T0) == frozenset()


def test_bad_arguments_are_invalid_input(schemas: Schemas) -> None:
    for schema in ("", "a-b", 'x"; DROP SCHEMA public; --', "1abc", "x" * 64, "abc\n", "ab\u0131"):
        with pytest.raises(InvalidInput):
            PostgresDirectory(schemas.dsn, schema=schema)
    with pytest.raises(InvalidInput):
        PostgresDirectory(schemas.dsn, max_connections=0)
    with pytest.raises(InvalidInput):
        PostgresDirectory("host=localhost port='unterminated")


def test_the_dsn_password_stays_out_of_messages() -> None:
    d = PostgresDirectory("postgresql://postgres:s3cret@127.0.0.1:1/test", connect_timeout=1)
    try:
        assert "s3cret" not in repr(d)
        with pytest.raises(StoreUnavailable) as caught:
            d.roles("li", "taoyuan", T0)
        assert "s3cret" not in str(caught.value)
    finally:
        d.close()
