"""A log that proves itself (issue 8, points 1, 2 and 6): each bullet of the issue's "Why" that these
points answer, on every store where a store is involved - memory, SQLite and PostgreSQL.

The attacker has write access to the stored data (a memory store's dicts, the SQLite file, the
PostgreSQL tables) but not to the running engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import consultflow as cf
from consultflow.canonical import record_digest, timestamp
from consultflow.cli import main
from consultflow.demo import CAST, COMMUNITY, TOPIC, demo_engine, run_story
from consultflow.log import entry_json, verify_stored
from consultflow.storage.sqlite import RECORD_CHANGED
from consultflow.testing import Driver
from store_support import pg_execute, require_postgres

KINDS = ("memory", "sqlite", "postgres")


class Tamper:
    """One store, and the attacker's hands on what it keeps."""

    def __init__(self, kind: str, store: Any, where: str) -> None:
        self.kind, self.store, self.where = kind, store, where

    def record(self, cid: str, change: Callable[[dict[str, Any]], None]) -> None:
        if self.kind == "memory":
            doc = self.store._records[cid].model_dump(mode="json")
            change(doc)
            self.store._records[cid] = cf.Consultation.model_validate(doc)
            return
        (text,) = self._rows("SELECT record FROM {t}consultations WHERE id = {p}", (cid,))[0]
        doc = json.loads(text)
        change(doc)
        self._exec("UPDATE {t}consultations SET record = {p} WHERE id = {p}", (json.dumps(doc), cid))

    def entry_text(self, cid: str, seq: int) -> str:
        column = "body" if self.kind == "sqlite" else "entry"
        return str(
            self._rows(f"SELECT {column} FROM {{t}}entries WHERE consultation = {{p}} AND seq = {{p}}", (cid, seq))[0][
                0
            ]
        )

    def set_entry_text(self, cid: str, seq: int, text: str) -> None:
        column = "body" if self.kind == "sqlite" else "entry"
        self._exec(
            f"UPDATE {{t}}entries SET {column} = {{p}} WHERE consultation = {{p}} AND seq = {{p}}", (text, cid, seq)
        )

    def _sql(self, sql: str) -> str:
        if self.kind == "sqlite":
            return sql.format(t="", p="?")
        return sql.format(t=f'"{self.where}".', p="%s")

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.where) as conn:
                return conn.execute(self._sql(sql), params).fetchall()
        return pg_execute(self._sql(sql), params)

    def _exec(self, sql: str, params: tuple[Any, ...]) -> None:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.where)
            with conn:
                conn.execute(self._sql(sql), params)
            conn.close()
            self.store._cache.clear()  # another process wrote the file; this one had the old record cached
        else:
            pg_execute(self._sql(sql), params)


@pytest.fixture(params=KINDS)
def tamper(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tamper]:
    kind = request.param
    if kind == "memory":
        yield Tamper(kind, cf.MemoryStore(), "")
        return
    if kind == "sqlite":
        path = tmp_path / "store.db"
        sqlite = cf.SQLiteStore(path, synchronous="OFF")
        yield Tamper(kind, sqlite, str(path))
        sqlite.close()
        return
    dsn = require_postgres()
    schema = "integrity_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    store = cf.PostgresStore(dsn, schema=schema)
    yield Tamper(kind, store, schema)
    store.close()
    pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _round_open_with_two_opposed(tamper: Tamper) -> tuple[cf.Engine, Driver, str]:
    engine, clock = demo_engine(tamper.store)
    d = Driver(engine=engine, clock=clock, cast=CAST, pace=timedelta(0))
    cid = d.propose(by="li", community=COMMUNITY, topic=TOPIC, title="夜间停车难 Night parking").id
    clock.advance(days=1)
    d.notify(
        meeting_at=datetime(2026, 3, 11, 10, tzinfo=timezone(timedelta(hours=8))),
        invite=("li", "zhang", "zhao", "wu"),
        chair="chen",
    )
    clock.set(datetime(2026, 3, 11, 10, tzinfo=timezone(timedelta(hours=8))))
    d.open_round(by="chen")
    for who, stance in (
        ("li", cf.Stance.OPPOSE),
        ("zhang", cf.Stance.OPPOSE),
        ("zhao", cf.Stance.SUPPORT),
        ("wu", cf.Stance.SUPPORT),
    ):
        d.opinion(who, stance, "")
    return engine, d, cid


# ---- Why: "Record edits pass" ---------------------------------------------------------------------------


def test_an_edited_record_is_refused_by_execute_and_named_by_verify(tamper: Tamper) -> None:
    engine, _d, cid = _round_open_with_two_opposed(tamper)
    before = len(engine.history(cid))

    def flip(doc: dict[str, Any]) -> None:
        for opinion in doc["rounds"][-1]["opinions"]:
            opinion["stance"] = "support"

    tamper.record(cid, flip)
    fresh, _ = demo_engine(tamper.store)  # a new engine: nothing of this one's memory helps
    with pytest.raises(cf.IntegrityError) as caught:
        fresh.execute(cf.CloseRound(consultation=cid, summary=""), by="chen")
    assert caught.value.consultation == cid
    assert cid in str(caught.value)
    assert isinstance(caught.value, cf.ConsultflowError)
    assert len(fresh.history(cid)) == before  # nothing was written
    found = fresh.verify(cid)
    assert not found.ok
    assert "rounds#1.opinions#1.stance: stored 'support', the log gives 'oppose'" in found.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "Edited"), ("major", True), ("budget", "999999.00"), ("description", "x")],
)
def test_any_edited_field_of_a_record_is_caught(tamper: Tamper, field: str, value: object) -> None:
    _engine, _, cid = _round_open_with_two_opposed(tamper)
    tamper.record(cid, lambda doc: doc.__setitem__(field, value))
    fresh, _ = demo_engine(tamper.store)
    with pytest.raises(cf.IntegrityError):
        fresh.execute(cf.CloseRound(consultation=cid, summary=""), by="chen")
    result = fresh.verify(cid)
    assert not result.ok
    assert f"first difference at {field}:" in result.reason


# ---- Why: "The engine trusts what it loads" ------------------------------------------------------------


def test_a_closed_consultation_edited_back_to_supervising_cannot_be_reopened(tamper: Tamper) -> None:
    engine, clock = demo_engine(tamper.store)
    cid = run_story(engine, clock)
    assert engine.get(cid).state is cf.State.CLOSED
    tamper.record(cid, lambda doc: doc.__setitem__("state", "supervising"))
    fresh, _ = demo_engine(tamper.store)
    command = cf.RequestReconsultation(consultation=cid, problems="reopen")
    with pytest.raises(cf.IntegrityError, match=cid):
        fresh.execute(command, by="zhou")
    assert len(fresh.history(cid)) == 77
    assert not fresh.verify(cid).ok


def test_an_entry_that_does_not_start_where_the_one_before_ended_is_caught() -> None:
    engine, clock = demo_engine()
    cid = run_story(engine, clock)
    chain = [e.to_json_dict() for e in engine.history(cid)]
    # the attacker rewrites entry 20's "from" and re-hashes it and everything after (no checkpoint:
    # the chain alone holds; this is what the from/to rule catches)
    chain[19]["from"] = "supervising"
    prev = chain[18]["hash"]
    for doc in chain[19:]:
        doc["prev"] = prev
        body = {k: v for k, v in doc.items() if k != "hash"}
        doc["hash"] = prev = cf.entry_hash(body)
    found = cf.verify(chain)
    assert not found.ok
    assert found.seq == 20
    assert "starts in 'supervising'" in found.reason


# ---- Why: "Stored bytes are not what is hashed" ----------------------------------------------------------

BYTE_EDITS: dict[str, Callable[[str], str]] = {
    "T to t": lambda s: s.replace("T", "t", 1) if '"at":"' in s else s,
    "Z to +00:00": lambda s: s.replace('Z"', '+00:00"', 1),
    "no microseconds": lambda s: s.replace('.000000Z"', 'Z"', 1),
    "seq as 2.0": lambda s: s.replace('"seq":2,', '"seq":2.0,', 1),
    "a duplicated key": lambda s: s.replace('{"actor":', '{"role":"x","actor":', 1),
    "a space": lambda s: s.replace(',"at":', ', "at":', 1),
}


@pytest.mark.parametrize("edit", sorted(BYTE_EDITS))
def test_stored_bytes_are_what_is_checked(tamper: Tamper, edit: str) -> None:
    if tamper.kind == "memory":
        pytest.skip("a memory store keeps objects, not bytes")
    engine, _, cid = _round_open_with_two_opposed(tamper)
    text = tamper.entry_text(cid, 2)
    changed = BYTE_EDITS[edit](text)
    assert changed != text
    assert json.loads(changed)["seq"] == 2  # a lenient reader still reads the same entry
    tamper.set_entry_text(cid, 2, changed)
    assert not verify_stored([tamper.entry_text(cid, s) for s in range(1, engine.get(cid).version + 1)]).ok
    fresh, _ = demo_engine(tamper.store)
    assert not fresh.verify(cid).ok
    if tamper.kind == "sqlite":
        tamper.store.close()
        assert main(["verify", "--db", tamper.where]) == 1


def test_a_clock_whose_offset_has_seconds_writes_a_log_that_verifies(tamper: Tamper) -> None:
    odd = timezone(timedelta(hours=5, minutes=30, seconds=15))
    engine, clock = demo_engine(tamper.store, cf.SimulatedClock(datetime(2026, 3, 2, 9, 0, 7, tzinfo=odd)))
    d = Driver(engine=engine, clock=clock, cast=CAST, pace=timedelta(0))
    cid = d.propose(by="li", community=COMMUNITY, topic=TOPIC, title="夜间停车难 Night parking").id
    clock.advance(days=1)
    d.notify(meeting_at=datetime(2026, 3, 11, 10, 0, 3, tzinfo=odd), invite=("li", "zhang"), chair="chen")
    fresh, _ = demo_engine(tamper.store)
    assert fresh.verify(cid).ok, fresh.verify(cid).reason
    record = fresh.get(cid)
    assert record.schedule is not None
    assert record.schedule.meeting_at == datetime(2026, 3, 11, 10, 0, 3, tzinfo=odd)  # not 15 s off
    assert fresh.history(cid)[0].body()["at"] == "2026-03-02T03:29:52.000000Z"
    if tamper.kind != "memory":
        stored = [tamper.entry_text(cid, s) for s in (1, 2)]
        assert verify_stored(stored, head=record.head, version=2).ok


def test_the_canonical_time_is_utc_microseconds_and_z() -> None:
    assert timestamp(datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=8)))) == "2026-03-02T01:00:00.000000Z"
    assert timestamp(datetime(1, 1, 1, 0, 0, tzinfo=UTC)) == "0001-01-01T00:00:00.000000Z"
    with pytest.raises(cf.InvalidInput):
        timestamp(datetime(2026, 3, 2))


# ---- Why: "show says chain verified on files verify rejects"; index and outbox damage -------------------


@pytest.fixture
def demo_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--db", "d.db"]) == 0
    return tmp_path / "d.db"


CID = f"{COMMUNITY}-2026-001"


def _sql(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    with conn:
        rows = conn.execute(sql, params).fetchall()
    conn.close()
    return rows


TAMPERS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "T to t in an entry": ("UPDATE entries SET body = replace(body, 'T02:00', 't02:00') WHERE seq = 3", ()),
    "an opinion in the record": (
        'UPDATE consultations SET record = replace(record, \'"stance":"oppose"\', \'"stance":"support"\')',
        (),
    ),
    "an outbox audience": ("UPDATE outbox SET notice = replace(notice, '\"li\"', '\"li2\"') WHERE seq = 2", ()),
    "an outbox row deleted": ("DELETE FROM outbox WHERE seq = 2", ()),
}


@pytest.mark.parametrize("what", sorted(TAMPERS))
def test_show_and_verify_agree(demo_db: Path, capsys: pytest.CaptureFixture[str], what: str) -> None:
    sql, params = TAMPERS[what]
    _sql(demo_db, sql, params)
    capsys.readouterr()
    assert main(["verify", "--db", str(demo_db)]) == 1
    verified = capsys.readouterr().out.splitlines()[0]
    assert main(["show", "--db", str(demo_db), CID]) == 1
    shown = capsys.readouterr().out
    assert verified in shown.splitlines()
    assert "chain verified" not in shown


def test_the_audit_hands_verify_what_it_read_and_held(demo_db: Path) -> None:
    # verify replays what the audit parsed and checked on the stored bytes, not a second reading
    store = cf.SQLiteStore(demo_db)
    finding, held = store.audit_consultation(CID)
    assert finding is None
    assert held is not None
    assert held.record == store.load(CID)
    assert held.entries == tuple(store.entries(CID))
    assert held.outbox == store.stored_outbox(CID)
    store.close()
    # an edited record: named, and what was read still handed over so that replay names the field
    _sql(demo_db, *TAMPERS["an opinion in the record"])
    store = cf.SQLiteStore(demo_db)
    finding, held = store.audit_consultation(CID)
    assert finding is not None
    assert finding.reason == RECORD_CHANGED
    assert held is not None
    assert held.outbox is None
    assert len(held.entries) == held.record.version
    store.close()
    # a changed entry: its bytes are not what was hashed; nothing is handed over
    _sql(demo_db, *TAMPERS["T to t in an entry"])
    store = cf.SQLiteStore(demo_db)
    finding, held = store.audit_consultation(CID)
    assert finding is not None
    assert finding.seq == 3
    assert held is None
    store.close()


def _page_of(db: Path, name: str) -> tuple[int, int]:
    (page_size,) = _sql(db, "PRAGMA page_size")[0]
    (root,) = _sql(db, "SELECT rootpage FROM sqlite_master WHERE name = ?", (name,))[0]
    return int(page_size), int(root)


@pytest.mark.parametrize("index", ["consultations_by_state", "outbox_ready"])
def test_a_damaged_index_page_is_reported(demo_db: Path, capsys: pytest.CaptureFixture[str], index: str) -> None:
    _sql(demo_db, "PRAGMA wal_checkpoint(TRUNCATE)")
    if index == "outbox_ready":  # the partial index needs rows: make two notices ready again
        _sql(demo_db, "UPDATE outbox SET status = 'pending' WHERE seq IN (2, 3)")
        _sql(demo_db, "PRAGMA wal_checkpoint(TRUNCATE)")
    page_size, root = _page_of(demo_db, index)
    data = bytearray(demo_db.read_bytes())
    start = (root - 1) * page_size
    # the cell content sits at the end of the page: change one byte of an indexed key
    data[start + page_size - 3] ^= 0x01
    demo_db.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", "--db", str(demo_db)]) == 1
    out = capsys.readouterr().out
    # SQLite's integrity check names the damage; a page too damaged to read is reported as such
    assert "BROKEN consultation '(file)'" in out
    assert "SQLite's integrity check fails" in out or "malformed" in out


def test_a_read_only_copy_can_be_verified(demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_dir = tmp_path / "media"
    copy_dir.mkdir()
    shutil.copy(demo_db, copy_dir / "d.db")
    (copy_dir / "d.db").chmod(stat.S_IRUSR | stat.S_IRGRP)
    copy_dir.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        before = (copy_dir / "d.db").read_bytes()
        assert main(["verify", "--db", str(copy_dir / "d.db")]) == 0, capsys.readouterr()
        assert main(["show", "--db", str(copy_dir / "d.db"), CID]) == 0
        assert (copy_dir / "d.db").read_bytes() == before
        if os.geteuid() != 0:  # root writes anywhere; elsewhere nothing may appear beside the copy
            assert sorted(p.name for p in copy_dir.iterdir()) == ["d.db"]
    finally:
        copy_dir.chmod(stat.S_IRWXU)


def test_the_immutable_fallback_reads_a_copy_it_cannot_lock(demo_db: Path) -> None:
    store = cf.SQLiteStore(demo_db, readonly=True)
    try:
        conn = store._connect_readonly()
        assert conn.execute("SELECT count(*) FROM consultations").fetchone() == (1,)
        conn.close()
    finally:
        store.close()


def test_entry_json_is_what_every_store_keeps(tamper: Tamper) -> None:
    if tamper.kind == "memory":
        pytest.skip("a memory store keeps objects, not bytes")
    engine, _, cid = _round_open_with_two_opposed(tamper)
    for entry in engine.history(cid):
        assert tamper.entry_text(cid, entry.seq) == entry_json(entry)
    record = engine.get(cid)
    assert engine.history(cid)[-1].record_digest == record_digest(record)


# ---- docs/integrity.md: the check needs nothing but the standard library --------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "integrity.md"


def _stdlib_check() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("# check_log.py")
    return text[start : text.index("# ---- trying it", start)]


def test_the_documented_check_uses_only_the_standard_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ast
    import subprocess
    import sys

    code = _stdlib_check()
    assert len([line for line in code.splitlines() if line.strip() and not line.startswith("#")]) <= 30
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert all(n.split(".")[0] in sys.stdlib_module_names for n in names), names
    os.chdir(tmp_path)
    assert main(["demo", "--db", "d.db"]) == 0
    assert main(["keygen", "--out", "k"]) == 0
    (tmp_path / "secret").write_bytes(b"s" * 32)
    capsys.readouterr()
    # the public export (person ids as commitments and pseudonyms) is what anyone checks
    assert main(["export", "--db", "d.db", "--public", "--secret-file", "secret", "--key", "k"]) == 0
    exported = [line for line in capsys.readouterr().out.splitlines() if f'"consultation":"{CID}"' in line]
    assert len(exported) == 77
    assert '"actor":"li"' not in exported[0]
    (tmp_path / "log.jsonl").write_text("".join(line + "\n" for line in exported), encoding="utf-8")
    script = code + (
        "\nimport sys\nlines = open(sys.argv[1], encoding='utf-8').read().splitlines()\n"
        "print(check(lines))\nlines[9] = lines[9].replace('\"seq\":10,', '\"seq\":10, ', 1)\nprint(check(lines))\n"
    )
    (tmp_path / "check_log.py").write_text(script, encoding="utf-8")
    # -I -S: no site-packages, so no consultflow and no pydantic, only the standard library
    done = subprocess.run(
        [sys.executable, "-I", "-S", "check_log.py", "log.jsonl"], capture_output=True, text=True, check=True
    )
    head = cf.SQLiteStore(tmp_path / "d.db", readonly=True).load(CID).head
    assert done.stdout.splitlines() == [f"ok: 77 entries, head {head[:12]}", "entry 10: not in canonical form"]


def test_a_copy_that_cannot_hold_wal_shared_memory_is_read_immutable(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a read-only directory does to a WAL reader (it cannot create ``-shm``), made to happen
    whoever runs the test (root may write anywhere): the plain read-only open fails, the immutable one
    reads the copy."""
    real = sqlite3.connect
    opened: list[str] = []

    def connect(database: str, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(str(database))
        if "mode=ro" in str(database) and "immutable=1" not in str(database):
            raise sqlite3.OperationalError("unable to open database file")
        conn: sqlite3.Connection = real(database, *args, **kwargs)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    assert main(["verify", "--db", str(demo_db)]) == 0, capsys.readouterr()
    assert any("immutable=1" in uri for uri in opened)
    # a -wal file holding commits is not silently ignored
    Path(f"{demo_db}-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 28)
    assert main(["verify", "--db", str(demo_db)]) == 2
    assert "write-ahead log" in capsys.readouterr().err


def test_reminders_in_the_outbox_are_no_finding_but_a_forged_notice_is(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reminder (提醒) is the dispatcher's, not a step's: verify passes a store with reminders in
    its outbox; a notice under any other key that no step made is still reported."""
    from consultflow.delivery.reminders import Reminders

    store = cf.SQLiteStore(demo_db)
    try:
        record = store.load(CID)
        reminder = cf.Notice(
            key=f"{CID}:remind:measure:2:0",
            consultation=CID,
            seq=record.version,
            event=cf.Event.REMINDER,
            audience=("wang",),
            title=record.title,
            created_at=datetime(2026, 5, 20, tzinfo=UTC),
        )
        assert store.enqueue([reminder]) == 1
        assert isinstance(Reminders(store), Reminders)  # the shipped producer writes through the same call
    finally:
        store.close()
    capsys.readouterr()
    assert main(["verify", "--db", str(demo_db)]) == 0
    assert "every chain verifies" in capsys.readouterr().out
    forged = reminder.model_copy(update={"key": f"{CID}:999", "event": cf.Event.DECIDED})
    store = cf.SQLiteStore(demo_db)
    try:
        assert store.enqueue([forged]) == 1
    finally:
        store.close()
    assert main(["verify", "--db", str(demo_db)]) == 1
    assert f"BROKEN consultation '{CID}', entry seq 77: outbox notice '{CID}:999'" in capsys.readouterr().out
