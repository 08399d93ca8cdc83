"""The command line on SQLite: ``demo`` writes a file, ``verify`` catches every kind of tampering
and names the entry, ``show`` prints a stored timeline."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

import consultflow as cf
from consultflow.cli import DEMO_DB, main
from consultflow.testing import StepMaker, append

CID = "xiaotaoyuan-2026-001"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo file with the reference story, plus two small consultations beside it (built once)."""
    path = tmp_path_factory.mktemp("template") / "demo.db"
    assert main(["demo", "--db", str(path)]) == 0
    store = cf.SQLiteStore(path)
    maker = StepMaker()
    maker.consulting(store, "other-1")
    append(store, maker.propose("other-2"))
    store.close()
    assert not Path(f"{path}-wal").exists(), "closing the last connection folds the WAL into the file"
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A fresh copy of the template, to tamper with."""
    path = tmp_path / "demo.db"
    shutil.copyfile(template, path)
    capsys.readouterr()
    return path


def _sql(path: Path, statement: str, *args: object) -> int:
    with sqlite3.connect(path) as conn:
        changed = conn.execute(statement, args).rowcount
    conn.close()
    return changed


def _verify(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["verify", "--db", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# ---- demo --------------------------------------------------------------------------------------------------


def test_demo_writes_its_file_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "77 entries, chain verified; state: closed" in out
    assert f"consultflow verify --db {DEMO_DB}" in out
    store = cf.SQLiteStore(tmp_path / DEMO_DB, readonly=True)
    try:
        assert store.ids() == (CID,)
        assert len(store.entries(CID)) == 77
        assert store.load(CID).state is cf.State.CLOSED
    finally:
        store.close()
    # recreated each run: a second run starts from an empty file, not from a conflict
    assert main(["demo"]) == 0
    assert "77 entries, chain verified" in capsys.readouterr().out
    assert _verify(Path(DEMO_DB), capsys) == (
        0,
        f"1 consultation checked in {DEMO_DB}: every chain verifies and agrees with its record\n",
    )


def test_demo_in_memory_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--store", "memory", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "77 条记录，哈希链完整" in out
    assert list(tmp_path.iterdir()) == []


def test_demo_json_stays_one_entry_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json", "--db", str(tmp_path / "j.db")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 77
    parsed = [json.loads(line) for line in lines]
    assert cf.verify(parsed, version=77).ok


def test_demo_never_clobbers_a_file_that_is_not_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "precious.db"
    store = cf.SQLiteStore(precious)
    append(store, StepMaker().propose("real-case"))
    store.close()
    before = precious.read_bytes()
    assert main(["demo", "--db", str(precious)]) == 2
    assert "not the demo's" in capsys.readouterr().err
    assert precious.read_bytes() == before
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database")
    assert main(["demo", "--db", str(notes)]) == 2
    assert "give --db another path" in capsys.readouterr().err
    assert notes.read_text() == "my notes, not a database"


# ---- verify --------------------------------------------------------------------------------------------------


def test_verify_passes_an_untouched_file_and_leaves_it_untouched(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = db.read_bytes()
    code, out = _verify(db, capsys)
    assert code == 0, out
    assert "3 consultations checked" in out
    assert _verify(db, capsys, CID)[0] == 0
    assert db.read_bytes() == before


def test_a_flipped_byte_in_the_file_is_caught_and_named(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = db.read_bytes()
    marker = b'"invited":6'  # only in the body of entry 2 (the notice); the record keeps the list of ids
    assert raw.count(marker) == 1
    db.write_bytes(raw.replace(marker, b'"invited":7'))
    code, out = _verify(db, capsys)
    assert code == 1
    assert f"BROKEN consultation '{CID}', entry seq 2: entry was changed" in out
    assert "1 of 3 consultations do not hold" in out


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "someone-else"),
        ("role", "sub_district"),
        ("at", "2026-03-11T11:00:00+08:00"),
        ("to", "closed"),
        ("event", "rejected"),
        ("data", {"stance": "oppose", "round": 1, "text": ""}),
        ("prev", "0" * 64),
        ("schema_version", 1),
    ],
)
def test_any_field_changed_in_an_entry_is_caught(
    db: Path, capsys: pytest.CaptureFixture[str], field: str, value: object
) -> None:
    with sqlite3.connect(db) as conn:
        (body,) = conn.execute("SELECT body FROM entries WHERE consultation = ? AND seq = 5", (CID,)).fetchone()
        doc = json.loads(body)
        assert doc[field] != value
        doc[field] = value
        conn.execute("UPDATE entries SET body = ? WHERE consultation = ? AND seq = 5", (json.dumps(doc), CID))
    conn.close()
    code, out = _verify(db, capsys)
    assert code == 1
    assert f"BROKEN consultation '{CID}', entry seq 5:" in out


def test_a_changed_hash_is_caught(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(db, "UPDATE entries SET hash = ? WHERE consultation = ? AND seq = 9", "f" * 64, CID)
    code, out = _verify(db, capsys)
    assert (code, f"'{CID}', entry seq 9:" in out) == (1, True), out


def test_a_deleted_entry_is_caught(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _sql(db, "DELETE FROM entries WHERE consultation = ? AND seq = 12", CID) == 1
    code, out = _verify(db, capsys)
    assert code == 1
    assert f"'{CID}', entry seq 13: expected seq 12, found 13: removed or reordered" in out


def test_a_deleted_last_entry_is_caught(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _sql(db, "DELETE FROM entries WHERE consultation = 'other-1' AND seq = 3") == 1
    code, out = _verify(db, capsys, "other-1")
    assert code == 1
    assert "'other-1', entry seq 3: the record is at version 3 but the log has 2 entries" in out


def test_a_deleted_record_is_caught(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _sql(db, "DELETE FROM consultations WHERE id = 'other-2'") == 1
    code, out = _verify(db, capsys)
    assert code == 1
    assert "consultation 'other-2': 1 log entries but no consultation record" in out


def test_swapped_seqs_are_caught(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE entries SET seq = 100000 WHERE consultation = ? AND seq = 20", (CID,))
        conn.execute("UPDATE entries SET seq = 20 WHERE consultation = ? AND seq = 21", (CID,))
        conn.execute("UPDATE entries SET seq = 21 WHERE consultation = ? AND seq = 100000", (CID,))
    conn.close()
    code, out = _verify(db, capsys)
    assert code == 1
    assert f"'{CID}', entry seq 20: the row is at seq 20 but holds the entry of seq 21" in out


def test_swapped_bodies_are_caught(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reordering the rows consistently (seq column and body together) still breaks the chain."""
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT seq, body FROM entries WHERE consultation = ? AND seq IN (6, 7)", (CID,)))
        for seq, other in ((6, 7), (7, 6)):
            doc = json.loads(rows[other])
            doc["seq"] = seq
            conn.execute(
                "UPDATE entries SET body = ?, hash = ?, prev = ? WHERE consultation = ? AND seq = ?",
                (json.dumps(doc), doc["hash"], doc["prev"], CID, seq),
            )
    conn.close()
    code, out = _verify(db, capsys)
    assert code == 1
    assert f"'{CID}', entry seq 6:" in out


def test_a_record_that_disagrees_with_its_log_is_caught(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT record FROM consultations WHERE id = ?", (CID,)).fetchone()
        doc = json.loads(text)
        doc["state"] = "supervising"
        conn.execute("UPDATE consultations SET record = ?, state = 'supervising' WHERE id = ?", (json.dumps(doc), CID))
    conn.close()
    code, out = _verify(db, capsys)
    assert code == 1
    assert "the record is 'supervising' but its log ends in 'closed'" in out
    _sql(db, "UPDATE consultations SET state = 'closed' WHERE id = ?", CID)
    code, out = _verify(db, capsys, CID)
    assert code == 1
    assert "column state holds 'closed' but the record says 'supervising'" in out


def test_verify_one_id_checks_only_that_one(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(db, "DELETE FROM entries WHERE consultation = 'other-1' AND seq = 2")
    assert _verify(db, capsys, CID)[0] == 0
    assert _verify(db, capsys, "other-2")[0] == 0
    code, out = _verify(db, capsys, "other-1")
    assert code == 1
    assert "'other-1', entry seq 3:" in out


def test_verify_on_several_processes_reports_the_same(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # consultations are checked independently: the report is the same, line for line, for any --workers
    untouched = [_verify(db, capsys, "--workers", str(k)) for k in (1, 2, 3)]
    assert untouched[0][0] == 0
    assert untouched[1:] == [untouched[0]] * 2
    _sql(db, "DELETE FROM entries WHERE consultation = 'other-1' AND seq = 2")
    _sql(db, 'UPDATE consultations SET record = replace(record, \'"stance":"oppose"\', \'"stance":"support"\')')
    serial = _verify(db, capsys)
    assert serial[0] == 1
    assert "'other-1', entry seq 3:" in serial[1]
    assert f"consultation '{CID}': the record is not what its log gives" in serial[1]
    assert [_verify(db, capsys, "--workers", str(k)) for k in (2, 3)] == [serial] * 2


@pytest.mark.parametrize("workers", ["0", "65", "-1"])
def test_verify_workers_out_of_range_is_a_usage_error(
    db: Path, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    code, out = _verify(db, capsys, "--workers", workers)
    assert code == 2
    assert "--workers is a number from 1 to 64" in out


def test_verify_cannot_check_what_is_not_there(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(db, capsys, "no-such-case")
    assert (code, "no consultation 'no-such-case'" in out) == (2, True)
    code, out = _verify(tmp_path / "missing.db", capsys)
    assert (code, "no SQLite file" in out) == (2, True)
    assert not (tmp_path / "missing.db").exists()


# ---- show ----------------------------------------------------------------------------------------------------


def test_show_prints_the_stored_timeline(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--db", str(db), CID]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the store holds no catalogue: the topic shows by its category's name, the state by its name
    assert lines[0] == "夜间停车难 Night parking · community xiaotaoyuan · Public affairs: night-parking · closed"
    assert sum(1 for line in lines if re.match(r"^\s*\d+  2026-", line)) == 77
    assert lines[-1] == "77 entries, chain verified; state: closed"
    assert main(["show", "--db", str(db), CID, "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "77 条记录，哈希链完整；状态：已办结" in out
    assert "公共事务" in out.splitlines()[0]


def test_show_json_is_the_stored_log(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--db", str(db), "other-1", "--json"]) == 0
    parsed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["seq"] for p in parsed] == [1, 2, 3]
    store = cf.SQLiteStore(db, readonly=True)
    try:
        assert [p["hash"] for p in parsed] == [e.hash for e in store.entries("other-1")]
    finally:
        store.close()


def test_show_says_what_is_wrong(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--db", str(db), "nobody"]) == 2  # a usage problem, on stderr
    assert "no consultation 'nobody'" in capsys.readouterr().err
    _sql(db, "UPDATE entries SET body = '{' WHERE consultation = ? AND seq = 3", CID)
    assert main(["show", "--db", str(db), CID]) == 1  # a finding, on stdout
    assert "entry seq 3" in capsys.readouterr().out
    _sql(db, "DELETE FROM entries WHERE consultation = 'other-1' AND seq = 3")
    assert main(["show", "--db", str(db), "other-1"]) == 1
    assert "BROKEN consultation 'other-1'" in capsys.readouterr().out


def test_procedure_command_checks_a_file_and_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "ok.toml"
    good.write_text('name = "x"\nversion = "1"\n[parameters]\nround_limit = 4\n', encoding="utf-8")
    assert main(["procedure", str(good)]) == 0
    assert '"round_limit": 4' in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "version": "1", "roles": {"decide": ["nobody"]}}', encoding="utf-8")
    assert main(["procedure", str(bad)]) == 1  # a finding, on stdout
    assert "unknown role" in capsys.readouterr().out
    assert main(["procedure", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["procedure", "--mermaid"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2")
