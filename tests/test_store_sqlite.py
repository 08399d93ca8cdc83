"""The conformance kit on SQLite (FULL and NORMAL), and what only SQLite has: the file, its schema
version and upgrade path, several store objects and processes on one file."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import consultflow as cf
from consultflow.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, migrate
from consultflow.testing import StepMaker, StoreContract, StoreOpener, append


class TestSQLiteFull(StoreContract):
    supports_processes = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        s = SQLiteStore(tmp_path / "store.db")
        yield s
        s.close()

    @pytest.fixture
    def open_store(self, tmp_path: Path) -> StoreOpener:
        return functools.partial(SQLiteStore, tmp_path / "store.db")


class TestSQLiteNormal(StoreContract):
    supports_processes = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        s = SQLiteStore(tmp_path / "store.db", synchronous="NORMAL")
        yield s
        s.close()

    @pytest.fixture
    def open_store(self, tmp_path: Path) -> StoreOpener:
        return functools.partial(SQLiteStore, tmp_path / "store.db", synchronous="NORMAL")


# ---- the file ---------------------------------------------------------------------------------------


def _story(store: cf.Store) -> str:
    from consultflow.demo import demo_engine, run_story

    engine, clock = demo_engine(store)
    return run_story(engine, clock)


def test_reopening_the_file_finds_everything(tmp_path: Path) -> None:
    path = tmp_path / "consult.db"
    first = SQLiteStore(path)
    cid = _story(first)
    record, entries = first.load(cid), first.entries(cid)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    leased = first.lease(3, now)
    first.settle(leased[0].key, "delivered", now=now)
    first.settle(leased[1].key, "retry", now=now, retry_at=datetime(2026, 6, 2, tzinfo=UTC), error="SMTP 451")
    outbox = first.outbox()
    first.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0, "close() checkpoints"

    again = SQLiteStore(path, synchronous="NORMAL")
    try:
        assert again.load(cid) == record
        assert again.entries(cid) == entries
        assert cf.verify(again.entries(cid), head=record.head, version=record.version).ok
        assert list(again.find(cf.Query(community=record.community))) == [record]
        assert again.outbox() == outbox
        assert [n.status for n in outbox[:3]] == ["delivered", "pending", "leased"]
        assert outbox[1].last_error == "SMTP 451"
        assert again.audit() == ()
    finally:
        again.close()


def test_settings_are_what_was_asked(tmp_path: Path) -> None:
    for sync in ("FULL", "NORMAL", "OFF"):
        store = SQLiteStore(tmp_path / "s.db", synchronous=sync, busy_timeout=2.5)
        try:
            assert store.settings() == {
                "journal_mode": "wal",
                "synchronous": sync,
                "busy_timeout_ms": 2500,
                "schema_version": SCHEMA_VERSION,
            }
        finally:
            store.close()


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(cf.InvalidInput, match="synchronous"):
        SQLiteStore(tmp_path / "x.db", synchronous="FAST")  # type: ignore[arg-type]
    with pytest.raises(cf.InvalidInput, match="MemoryStore"):
        SQLiteStore(":memory:")
    with pytest.raises(cf.InvalidInput, match="busy_timeout"):
        SQLiteStore(tmp_path / "x.db", busy_timeout=-1)
    assert not (tmp_path / "x.db").exists()


# ---- schema version and upgrades -----------------------------------------------------------------------


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM consultflow_schema ORDER BY version")]


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def test_a_new_file_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    assert _versions(path) == [m.version for m in MIGRATIONS]
    assert SCHEMA_VERSION == MIGRATIONS[-1].version >= 2
    assert {"consultations_by_time", "outbox_ready"} <= _indexes(path)


def test_an_older_file_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    cid = _story(store)
    record = store.load(cid)
    store.close()
    # Make it a file as version 1 left it: no indexes, version 1 recorded.
    with sqlite3.connect(path) as conn:
        for name in _indexes(path):
            conn.execute(f"DROP INDEX {name}")
        conn.execute("DROP TABLE fund_ledger")  # version 3's (the fund ledger): a version-1 file had none
        conn.execute("DELETE FROM consultflow_schema WHERE version > 1")
    assert _versions(path) == [1]
    assert _indexes(path) == set()

    upgraded = SQLiteStore(path)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        assert upgraded.load(cid) == record
        assert cf.verify(upgraded.entries(cid), head=record.head, version=record.version).ok
        assert [r.id for r in upgraded.find(cf.Query(states={record.state}))] == [cid]
    finally:
        upgraded.close()
    assert _versions(path) == [m.version for m in MIGRATIONS]
    assert {"consultations_by_time", "consultations_by_due", "outbox_ready"} <= _indexes(path)


def test_migrate_stops_at_a_target_and_goes_on_later(tmp_path: Path) -> None:
    path = tmp_path / "steps.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn, path, target=1) == 1
        assert migrate(conn, path, target=1) == 1, "migrating twice is harmless"
    finally:
        conn.close()
    assert _versions(path) == [1]
    store = SQLiteStore(path)
    try:
        append(store, StepMaker().propose("after-upgrade"))
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()


def test_a_newer_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO consultflow_schema VALUES (99, 'from the future', '2030-01-01')")
    with pytest.raises(cf.StoreUnavailable, match="newer"):
        SQLiteStore(path)
    assert _versions(path)[-1] == 99


def test_a_file_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(cf.StoreUnavailable, match="did not create"):
        SQLiteStore(path)


def test_files_that_are_not_databases_give_library_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(cf.ConsultflowError):
        SQLiteStore(junk)
    with pytest.raises(cf.StoreUnavailable, match="check the path"):
        SQLiteStore(tmp_path / "no" / "such" / "dir" / "x.db")


# ---- read-only -------------------------------------------------------------------------------------------


def test_a_read_only_store_reads_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    store = SQLiteStore(path)
    cid = _story(store)
    store.close()
    before = path.read_bytes()
    ro = SQLiteStore(path, readonly=True)
    try:
        record = ro.load(cid)
        assert cf.verify(ro.entries(cid), head=record.head, version=record.version).ok
        with pytest.raises(cf.StoreUnavailable, match="read-only"):
            ro.append(StepMaker().propose("nope"), 0)
        with pytest.raises(cf.StoreUnavailable, match="read-only"):
            ro.lease(1, datetime(2026, 6, 1, tzinfo=UTC))
    finally:
        ro.close()
    assert path.read_bytes() == before
    with pytest.raises(cf.StoreUnavailable, match="no SQLite file"):
        SQLiteStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


# ---- locks and several store objects ---------------------------------------------------------------------


def test_a_writer_held_past_busy_timeout_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = SQLiteStore(path, busy_timeout=0.2)
    maker = StepMaker()
    first = append(store, maker.propose("busy-1"))
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(cf.StoreUnavailable, match="busy_timeout"):
            store.append(maker.notify(first.record), 1)
        assert store.load("busy-1") == first.record, "readers go on while a writer holds the lock"
        blocker.execute("ROLLBACK")
        append(store, maker.notify(first.record))
        assert store.load("busy-1").version == 2
    finally:
        blocker.close()
        store.close()


def test_two_store_objects_on_one_file_race(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    maker = StepMaker()
    maker.consulting(stores[0], "shared")
    for i in range(4):
        maker.consulting(stores[i % 2], f"own-{i}")
    per_thread = 8
    conflicts = [0] * 4
    errors: list[BaseException] = []

    def work(i: int) -> None:
        store = stores[i % 2]
        try:
            for n in range(per_thread):
                # on its own consultation: never a conflict; on the shared one: retry on conflict
                own = store.load(f"own-{i}")
                append(store, maker.opinion(own, f"t{i}-{n}"))
                while True:
                    shared = store.load("shared")
                    try:
                        append(store, maker.opinion(shared, f"t{i}-{n}"))
                        break
                    except cf.Conflict:
                        conflicts[i] += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    if errors:
        raise errors[0]
    check = SQLiteStore(path, readonly=True)
    try:
        shared = check.load("shared")
        assert shared.version == 3 + 4 * per_thread, "a step on the shared consultation was lost or doubled"
        for i in range(4):
            assert check.load(f"own-{i}").version == 3 + per_thread
        assert check.audit() == (), "every chain verifies"
    finally:
        check.close()


def test_tampered_rows_are_integrity_errors_not_parse_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SQLiteStore(path)
    maker = StepMaker()
    maker.consulting(store, "tamper")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET body = substr(body, 1, 20) WHERE consultation = 'tamper' AND seq = 2")
        conn.execute("UPDATE consultations SET record = '{\"id\": 1}' WHERE id = 'tamper'")
    store.close()
    store = SQLiteStore(path)  # a fresh object: the first one keeps the records it wrote parsed
    with pytest.raises(cf.IntegrityError, match="seq 2"):
        store.entries("tamper")
    with pytest.raises(cf.IntegrityError, match="does not parse"):
        store.load("tamper")
    with pytest.raises(cf.IntegrityError):
        store.find(cf.Query())
    store.close()


def test_without_the_record_cache_every_read_parses(tmp_path: Path) -> None:
    path = tmp_path / "nocache.db"
    writer = SQLiteStore(path, cache_size=0)
    cid = _story(writer)
    record = writer.load(cid)
    assert writer.load(cid) is not record, "cache_size=0: each load parses the stored JSON"
    assert writer.load(cid) == record
    cached = SQLiteStore(path)
    try:
        first = cached.load(cid)
        assert cached.load(cid) is first, "a record read once is handed back while its version holds"
        maker = StepMaker()
        append(writer, maker.propose("newer"))
        assert [r.id for r in cached.find(cf.Query(community="east"))] == ["newer"]
    finally:
        writer.close()
        cached.close()


def test_load_many_gives_what_load_gives_in_one_query(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    writer = SQLiteStore(path)
    maker = StepMaker()
    ids = [f"m{i}" for i in range(5)]
    for cid in ids:
        maker.consulting(writer, cid)
    reader = SQLiteStore(path)
    try:
        wanted = [*ids, "nobody", ids[0]]  # one not stored (left out), one named twice
        assert reader.load_many(wanted) == {cid: writer.load(cid) for cid in ids}
        again = reader.load_many(ids)
        assert all(again[cid] is reader.load(cid) for cid in ids), "a cached record still stored is handed back"
        step = append(writer, maker.propose("m5"))
        assert reader.load_many(["m5"]) == {"m5": step.record}
        assert reader.load_many([]) == {}
        many = [f"x{i}" for i in range(450)]  # more ids than one query takes
        assert reader.load_many([*many, *ids]).keys() == set(ids)
        with pytest.raises(cf.InvalidInput):
            reader.load_many(["bad\x00id"])
    finally:
        writer.close()
        reader.close()
    with pytest.raises(cf.StoreUnavailable):
        reader.load_many([])


def test_a_lease_reads_the_ready_notices_by_their_index_not_the_whole_outbox(tmp_path: Path) -> None:
    """A lease must not grow with the outbox's history: a file without ANALYZE statistics got a plan
    that scanned every delivered notice at each lease."""
    from consultflow.storage.sqlite import _LEASE

    path = tmp_path / "lease.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + _LEASE, (0, 20)))
    assert "USING INDEX outbox_ready" in plan, plan


def test_a_step_that_cannot_be_stored_is_invalid_input(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "forged.db")
    try:
        step = StepMaker().propose("naive")
        naive = step.record.model_copy(update={"proposed_at": datetime(2026, 3, 1, 9, 0)})
        with pytest.raises(cf.InvalidInput, match="aware"):
            store.append(cf.Step(naive, step.entries, step.notices), 0)
        with pytest.raises(cf.NotFound):
            store.load("naive")
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connections(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fork.db")
    maker = StepMaker()
    first = append(store, maker.propose("parent"))
    child_step = maker.propose("child")
    pid = os.fork()
    if pid == 0:  # the child: use the inherited store object, never the parent's connections
        code = 1
        try:
            append(store, child_step)
            store.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's pooled connection still works, and sees the child's write
    append(store, maker.notify(first.record))
    assert store.load("child") == child_step.record
    assert store.load("parent").version == 2
    assert store.audit() == ()
    store.close()
