"""The directory conformance kit on ``SQLiteDirectory``, and what only the file has: its schema and
version, sharing the store's file, the one indexed query, rows never deleted, errors."""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import consultflow as cf
from consultflow import IntegrityError, InvalidInput, Role, SQLiteDirectory, SQLiteStore, StoreUnavailable
from consultflow.directory import sqlite as dsq
from consultflow.storage.sqlite import Migration
from consultflow.testing import COMMUNITIES, TOPICS, DirectoryContract, StepMaker, append
from consultflow.testing.directory_contract import DirectoryOpener

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
C = Role.COMMITTEE


class TestSQLiteDirectory(DirectoryContract):
    supports_processes = True

    @pytest.fixture
    def directory(self, tmp_path: Path) -> Iterator[SQLiteDirectory]:
        d = SQLiteDirectory(tmp_path / "directory.db")
        yield d
        d.close()

    @pytest.fixture
    def open_directory(self, tmp_path: Path) -> DirectoryOpener:
        return functools.partial(SQLiteDirectory, tmp_path / "directory.db")


class TestSQLiteDirectoryInTheStoresFile(DirectoryContract):
    """The same contract with the directory in a store's file, the store open beside it."""

    supports_processes = True

    @pytest.fixture
    def directory(self, tmp_path: Path) -> Iterator[SQLiteDirectory]:
        with SQLiteStore(tmp_path / "consult.db", synchronous="NORMAL"):
            d = SQLiteDirectory(tmp_path / "consult.db", synchronous="NORMAL")
            yield d
            d.close()

    @pytest.fixture
    def open_directory(self, tmp_path: Path) -> DirectoryOpener:
        return functools.partial(SQLiteDirectory, tmp_path / "consult.db", synchronous="NORMAL")


def _rows(path: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _tables(path: Path) -> set[str]:
    return {str(r[0]) for r in _rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


# ---- the file ------------------------------------------------------------------------------------
def test_the_schema_is_created_with_its_version(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with SQLiteDirectory(path) as d:
        assert d.schema_version() == dsq.SCHEMA_VERSION
    assert {"directory_grants", "directory_places", "directory_schema"} <= _tables(path)
    assert _rows(path, "SELECT version FROM directory_schema") == [(dsq.SCHEMA_VERSION,)]
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]
    indexes = {str(r[0]) for r in _rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"directory_grants_open", "directory_grants_held", "directory_grants_scope"} <= indexes


def test_reopening_the_file_finds_everything(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with SQLiteDirectory(path) as d:
        d.place("taoyuan", sub_district="ninghai", district="gulou")
        d.grant("taoyuan", "li", C, by="admin", at=T0)
        d.grant(cf.sub_district("ninghai"), "zhou", Role.SUB_DISTRICT, at=T0)
        d.revoke("taoyuan", "li", C, at=T0 + timedelta(days=1), by="admin")
        grants = d.grants()
    with SQLiteDirectory(path, synchronous="NORMAL") as again:
        assert again.grants() == grants
        assert again.roles("zhou", "taoyuan", T0) == {Role.SUB_DISTRICT}
        assert again.roles("li", "taoyuan", T0) == {C}
        assert again.roles("li", "taoyuan", T0 + timedelta(days=1)) == frozenset()
        assert again.schema_version() == dsq.SCHEMA_VERSION


def test_rows_hold_utc_microseconds_and_a_revocation_updates_never_deletes(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with SQLiteDirectory(path) as d:
        d.grant("taoyuan", "li", C, W := Role.WORKING_COMMITTEE, by="a", at=T0)
        d.revoke("taoyuan", "li", C, W, at=T0 + timedelta(microseconds=1), by="b")
        d.grant("taoyuan", "li", C, by="c")
    micros = (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    rows = _rows(
        path, "SELECT scope, person, role, since, granted_by, until, revoked_by FROM directory_grants ORDER BY id"
    )
    assert rows == [
        ("taoyuan", "li", "committee", micros, "a", micros + 1, "b"),
        ("taoyuan", "li", "working_committee", micros, "a", micros + 1, "b"),
        ("taoyuan", "li", "committee", None, "c", None, ""),
    ]


def test_roles_is_one_indexed_query(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with SQLiteDirectory(path) as d:
        d.place("taoyuan", sub_district="ninghai")
        for n in range(200):
            d.grant("taoyuan", f"p{n}", Role.RESIDENT)
    conn = sqlite3.connect(path)
    try:
        plan = " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + dsq._ROLES, ("taoyuan", "p1", 0)))
        members = " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + dsq._MEMBERS, ("taoyuan", 0, 0)))
    finally:
        conn.close()
    # a seek on scope and person in a covering index (either one serves), never a scan
    seek = (
        r"SEARCH directory_grants USING COVERING INDEX directory_grants_\w+ "
        r"\((scope=\? AND person=\?|person=\? AND scope=\?)"
    )
    assert re.search(seek, plan), plan
    assert "SCAN directory_grants" not in plan, plan
    assert "SCAN directory_places" not in plan, plan
    assert "USING COVERING INDEX directory_grants_scope" in members, members


def test_the_directory_shares_the_stores_file_either_way(tmp_path: Path) -> None:
    maker = StepMaker()
    for first in ("store", "directory"):
        path = tmp_path / f"{first}-first.db"
        if first == "store":
            store = SQLiteStore(path)
            directory = SQLiteDirectory(path)
        else:
            directory = SQLiteDirectory(path)
            store = SQLiteStore(path)
        try:
            step = append(store, maker.propose(f"{first}-1"))
            directory.grant("taoyuan", "li", C)
            assert store.load(f"{first}-1") == step.record
            assert directory.roles("li", "taoyuan", T0) == {C}
            assert store.audit() == ()
            assert store.schema_version() == cf.storage.sqlite.SCHEMA_VERSION
            assert directory.schema_version() == dsq.SCHEMA_VERSION
        finally:
            store.close()
            directory.close()
        assert {"consultations", "entries", "outbox", "consultflow_schema"} <= _tables(path)
        assert {"directory_grants", "directory_places", "directory_schema"} <= _tables(path)
        with SQLiteStore(path, readonly=True) as readonly, SQLiteDirectory(path) as again:
            assert readonly.load(f"{first}-1").id == f"{first}-1"
            assert again.roles("li", "taoyuan", T0) == {C}


def test_a_store_and_a_directory_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "consult.db"
    store, directory = SQLiteStore(path), SQLiteDirectory(path)
    maker = StepMaker()
    errors: list[BaseException] = []

    def stores(prefix: str) -> None:
        try:
            for n in range(20):
                append(store, maker.propose(f"{prefix}-{n}"))
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            errors.append(exc)

    def grants(prefix: str) -> None:
        try:
            for n in range(40):
                directory.grant("taoyuan", f"{prefix}{n}", Role.RESIDENT)
                assert directory.roles(f"{prefix}{n}", "taoyuan", T0) == {Role.RESIDENT}
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            errors.append(exc)

    work = ((stores, "a"), (grants, "p"), (stores, "b"), (grants, "q"))
    threads = [threading.Thread(target=f, args=(prefix,)) for f, prefix in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        assert len(directory.members("taoyuan", T0)) == 80
        assert len(store.ids()) == 40
    finally:
        store.close()
        directory.close()


def test_a_file_of_other_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _rows(path, "CREATE TABLE people (id TEXT)")
    with pytest.raises(StoreUnavailable, match="did not create"):
        SQLiteDirectory(path)
    assert _tables(path) == {"people"}, "nothing was written"


def test_a_newer_directory_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    SQLiteDirectory(path).close()
    _rows(path, "INSERT INTO directory_schema VALUES (99, 'from the future', '2030-01-01')")
    with pytest.raises(StoreUnavailable, match="newer"):
        SQLiteDirectory(path)


def test_an_older_schema_is_upgraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.db"
    with SQLiteDirectory(path) as d:
        d.grant("taoyuan", "li", C)
    extra = Migration(
        2, "an index for the test", ("CREATE INDEX directory_grants_by ON directory_grants (granted_by)",)
    )
    monkeypatch.setattr(dsq, "MIGRATIONS", (*dsq.MIGRATIONS, extra))
    monkeypatch.setattr(dsq, "SCHEMA_VERSION", 2)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert dsq.migrate(conn, path, target=2) == 2
    finally:
        conn.close()
    assert _rows(path, "SELECT version FROM directory_schema ORDER BY version") == [(1,), (2,)]
    with SQLiteDirectory(path) as d:
        assert d.roles("li", "taoyuan", T0) == {C}


def test_paths_that_are_not_files_are_refused(tmp_path: Path) -> None:
    for bad in ("", ":memory:", "file:x.db?mode=memory"):
        with pytest.raises(InvalidInput):
            SQLiteDirectory(bad)
    with pytest.raises(InvalidInput):
        SQLiteDirectory(tmp_path / "d.db", synchronous="SOMETIMES")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        SQLiteDirectory(tmp_path / "d.db", busy_timeout=-1)
    with pytest.raises(StoreUnavailable):
        SQLiteDirectory(tmp_path / "no" / "such" / "dir" / "d.db")
    with pytest.raises(StoreUnavailable):
        SQLiteDirectory(tmp_path)  # a directory, not a file


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(IntegrityError, match="not a readable SQLite database"):
        SQLiteDirectory(path)


def test_a_writer_that_holds_the_lock_too_long_gives_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    d = SQLiteDirectory(path, busy_timeout=0.1)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            d.grant("taoyuan", "li", C)
        assert d.roles("li", "taoyuan", T0) == frozenset(), "readers are not blocked (WAL)"
        blocker.execute("ROLLBACK")
        d.grant("taoyuan", "li", C)
        assert d.roles("li", "taoyuan", T0) == {C}
    finally:
        blocker.close()
        d.close()


def test_rows_changed_outside_consultflow_are_an_integrity_error(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with SQLiteDirectory(path) as d:
        d.grant("taoyuan", "li", C)
        _rows(path, "UPDATE directory_grants SET role = 'mayor'")
        with pytest.raises(IntegrityError, match="mayor"):
            d.roles("li", "taoyuan", T0)
        with pytest.raises(IntegrityError):
            d.grants()
        _rows(path, "UPDATE directory_grants SET role = 'committee', person = 'li wang'")
        with pytest.raises(IntegrityError):
            d.grants()


def test_a_lost_table_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with SQLiteDirectory(path) as d:
        _rows(path, "DROP TABLE directory_places")
        with pytest.raises(StoreUnavailable):
            d.roles("li", "taoyuan", T0)
        with pytest.raises(StoreUnavailable):
            d.place("taoyuan")


def test_an_engine_takes_its_roles_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "consult.db"
    community, topic = COMMUNITIES[0], TOPICS[0]
    with SQLiteStore(path) as store, SQLiteDirectory(path) as directory:
        maker = StepMaker(T0)
        engine = cf.Engine(
            maker.procedure, store, clock=cf.SimulatedClock(T0), catalogue=maker.catalogue, directory=directory
        )
        command = cf.Propose(
            community=community, topic=topic, title="停车 parking", carrier=cf.Carrier.DECISION, form=cf.Form.COUNCIL
        )
        with pytest.raises(cf.Refused):
            engine.execute(command, by="li")
        directory.grant(community, "li", Role.RESIDENT, at=T0)
        directory.grant(COMMUNITIES[1], "wang", Role.RESIDENT, at=T0)
        with pytest.raises(cf.Refused):
            engine.execute(command, by="wang")  # a resident of another community
        record = engine.execute(command, by="LI")
        assert record.state is cf.State.PROPOSED
        assert store.entries(record.id)[0].actor == "li"
