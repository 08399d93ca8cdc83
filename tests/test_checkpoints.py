"""Signed checkpoints (公开制 you can check): a checkpoint signs every consultation's (id, version,
head) under an RFC 6962 Merkle root; checked later, it shows any consultation deleted, truncated or
rewritten since, and passes a store that only grew. On the memory, SQLite and PostgreSQL stores
(PostgreSQL: skipped where no server answers, a failure under CI), through the API and the CLI.

The attacker here writes to the store directly: deletes rows, replaces a consultation's rows with a
shorter history that still holds together, or with a different history re-hashed end to end (made
by a second engine, so every hash and link is right and ``verify`` alone passes it).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import consultflow as cf
from consultflow.checkpoints import (
    FORMAT,
    leaf_hash,
    load_private_key,
    load_public_key,
    merkle_root,
    node_hash,
    write_key_pair,
)
from consultflow.cli import main
from consultflow.storage.memory import MemoryStore
from consultflow.testing.driver import Driver
from store_support import Schemas, pg_execute, require_postgres, schemas_fixture

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
KINDS = ("memory", "sqlite", "postgres")

# RFC 6962's reference tree (the certificate-transparency test vectors): leaf inputs and the root of
# the first n leaves, n = 0..8. A root nobody else computes proves nothing to anyone.
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# ---- the Merkle tree ---------------------------------------------------------------------------------------
def test_the_root_is_rfc_6962s_for_every_reference_size() -> None:
    hashes = [leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES]
    for n in range(9):
        assert merkle_root(hashes[:n]).hex() == CT_ROOTS[n], n


def _recursive_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, word for word: split at the largest power of two below n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_recursive_root(leaves[:k]), _recursive_root(leaves[k:]))


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
def test_the_bottom_up_root_is_the_recursive_definition(data: list[bytes]) -> None:
    leaves = [leaf_hash(d) for d in data]
    assert merkle_root(leaves) == _recursive_root(leaves)


def test_a_leaf_never_passes_for_a_node() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(a + b) != node_hash(a, b)  # the 0x00 / 0x01 prefixes


# ---- stores ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def schemas() -> Iterator[Schemas]:
    yield from schemas_fixture()


class Stores:
    """Opens stores of one kind and tampers with them as someone with write access would."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.request = request
        self.n = 0
        self.opened: list[Any] = []

    def new(self) -> Any:
        self.n += 1
        store: Any
        if self.kind == "memory":
            store = MemoryStore()
        elif self.kind == "sqlite":
            store = cf.SQLiteStore(self.tmp_path / f"s{self.n}.db")
        else:
            require_postgres()
            schemas: Schemas = self.request.getfixturevalue("schemas")
            store = cf.PostgresStore(schemas.dsn, schema=schemas.new("cp"))
        self.opened.append(store)
        return store

    def delete(self, store: Any, cid: str) -> None:
        if self.kind == "memory":
            del store._records[cid], store._logs[cid]
        elif self.kind == "sqlite":
            with sqlite3.connect(store.path) as conn:
                conn.execute("DELETE FROM entries WHERE consultation = ?", (cid,))
                conn.execute("DELETE FROM outbox WHERE consultation = ?", (cid,))
                conn.execute("DELETE FROM consultations WHERE id = ?", (cid,))
        else:
            for table in ("outbox", "entries"):
                pg_execute(f'DELETE FROM "{store.schema}".{table} WHERE consultation = %s', (cid,))
            pg_execute(f'DELETE FROM "{store.schema}".consultations WHERE id = %s', (cid,))

    def replace(self, store: Any, other: Any, cid: str) -> None:
        """Put ``other``'s record and log of ``cid`` in place of ``store``'s (a history that holds together)."""
        if self.kind == "memory":
            store._records[cid] = other._records[cid]
            store._logs[cid] = list(other._logs[cid])
            return
        self.delete(store, cid)
        if self.kind == "sqlite":
            with sqlite3.connect(other.path) as src, sqlite3.connect(store.path) as dst:
                for table, key in (("consultations", "id"), ("entries", "consultation")):
                    rows = src.execute(f"SELECT * FROM {table} WHERE {key} = ?", (cid,)).fetchall()
                    for row in rows:
                        dst.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
            return
        for table, key in (("consultations", "id"), ("entries", "consultation")):
            rows = pg_execute(f'SELECT * FROM "{other.schema}".{table} WHERE {key} = %s', (cid,))
            for row in rows:
                marks = ", ".join(["%s"] * len(row))
                pg_execute(f'INSERT INTO "{store.schema}".{table} VALUES ({marks})', row)

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=KINDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    s = Stores(request.param, tmp_path, request)
    yield s
    s.close()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def story(store: Any, consultations: int = 3, *, title: str = "夜间停车 Night parking") -> Driver:
    """``consultations`` consultations, each proposed and notified (c-001, c-002, ...)."""
    d = Driver(store=store)
    for _ in range(consultations):
        d.propose(title=title)
        d.notify()
    return d


def kinds(report: cf.CheckpointReport) -> list[tuple[str, str | None]]:
    return [(f.kind, f.consultation) for f in report.findings]


# ---- only grew --------------------------------------------------------------------------------------------------
def test_a_store_that_only_grew_passes(stores: Stores, key: Ed25519PrivateKey) -> None:
    store = stores.new()
    d = story(store)
    cp = cf.sign_checkpoint(store, key, now=NOW)
    assert cp.consultations == 3
    assert [leaf.id for leaf in cp.leaves] == ["c-001", "c-002", "c-003"]
    assert all(leaf.version == 2 for leaf in cp.leaves)
    assert cf.verify_checkpoint(store, cp, key.public_key()).ok  # nothing changed
    d.hold_round(cid="c-002")  # a consultation appended to
    d.propose()  # a new one
    report = cf.verify_checkpoint(store, cp.to_json(), key.public_key())
    assert report.ok, report.findings
    assert report.grown == ("c-002",)
    assert report.new == ("c-004",)
    assert report.checked == 3


def test_an_empty_store_has_the_empty_root(stores: Stores, key: Ed25519PrivateKey) -> None:
    store = stores.new()
    cp = cf.sign_checkpoint(store, key, now=NOW)
    assert (cp.consultations, cp.root) == (0, CT_ROOTS[0])
    story(store, 1)
    assert cf.verify_checkpoint(store, cp, key.public_key()).new == ("c-001",)


# ---- what an attacker with write access does --------------------------------------------------------------------
def test_a_deleted_consultation_is_reported(stores: Stores, key: Ed25519PrivateKey) -> None:
    store = stores.new()
    story(store)
    cp = cf.sign_checkpoint(store, key, now=NOW)
    stores.delete(store, "c-002")
    report = cf.verify_checkpoint(store, cp, key.public_key())
    assert kinds(report) == [("deleted", "c-002")]


def test_a_truncated_chain_whose_record_was_adjusted_is_reported(stores: Stores, key: Ed25519PrivateKey) -> None:
    store, shorter = stores.new(), stores.new()
    d = story(store)
    d.hold_round(cid="c-001")
    story(shorter)  # the same story, stopped before the round: a prefix that holds together
    cp = cf.sign_checkpoint(store, key, now=NOW)
    stores.replace(store, shorter, "c-001")
    assert cf.verify(store.entries("c-001"), head=store.load("c-001").head).ok  # the chain alone passes
    report = cf.verify_checkpoint(store, cp, key.public_key())
    assert kinds(report) == [("truncated", "c-001")]


def test_a_rewritten_and_rehashed_log_is_reported(stores: Stores, key: Ed25519PrivateKey) -> None:
    store, forged = stores.new(), stores.new()
    story(store)
    story(forged, title="另一个标题 Another title")  # every entry re-hashed, every link right
    d = Driver(store=forged)  # and grown past the checkpoint, so it is not merely shorter
    d.hold_round(cid="c-003")
    cp = cf.sign_checkpoint(store, key, now=NOW)
    stores.replace(store, forged, "c-003")
    assert cf.verify(store.entries("c-003"), head=store.load("c-003").head).ok
    report = cf.verify_checkpoint(store, cp, key.public_key())
    assert kinds(report) == [("rewritten", "c-003")]


# ---- the checkpoint itself -----------------------------------------------------------------------------------------
def test_a_tampered_checkpoint_or_a_wrong_key_is_a_finding(key: Ed25519PrivateKey) -> None:
    store = MemoryStore()
    story(store)
    cp = cf.sign_checkpoint(store, key, now=NOW)
    good = json.loads(cp.to_json())
    other = Ed25519PrivateKey.generate().public_key()
    wrong = cf.verify_checkpoint(store, good, other)
    assert kinds(wrong) == [("signature", None)]
    assert "not signed by the key you gave" in wrong.findings[0].reason

    def changed(**fields: Any) -> list[tuple[str, str | None]]:
        return kinds(cf.verify_checkpoint(store, {**good, **fields}, key.public_key()))

    assert changed(consultations=2) == [("signature", None)]
    assert changed(time="2027-06-01T08:00:00.000000Z") == [("signature", None)]
    assert changed(root="0" * 64) == [("signature", None)]
    assert changed(signature="0" * 128) == [("signature", None)]
    # the list of leaves is covered by the signed root
    assert changed(leaves=good["leaves"][:2]) == [("checkpoint", None)]
    assert changed(leaves=[[*good["leaves"][0][:2], "0" * 64], *good["leaves"][1:]]) == [("checkpoint", None)]
    assert changed(leaves=[["c-000", 1, "0" * 64], *good["leaves"]]) == [("checkpoint", None)]
    # fields that are not what a checkpoint holds
    assert changed(consultations="3") == [("checkpoint", None)]
    assert changed(leaves="everything") == [("checkpoint", None)]
    assert changed(format="consultflow-checkpoint/9") == [("checkpoint", None)]
    assert changed(extra=1) == [("checkpoint", None)]
    text = cp.to_json()
    doubled = text.replace('"root": ', f'"root": "{"0" * 64}",\n  "root": ', 1)  # which root does a reader see?
    assert kinds(cf.verify_checkpoint(store, doubled, key.public_key())) == [("checkpoint", None)]
    # what is no checkpoint at all is an input problem, not a finding
    for junk in ("not json", b"\xff\xfe", "[1, 2]", json.dumps({"time": 1}), "[" * 100_000):
        with pytest.raises(cf.InvalidInput):
            cf.verify_checkpoint(store, junk, key.public_key())


def test_keys_that_are_no_keys_are_input_problems(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = MemoryStore()
    cp = cf.sign_checkpoint(store, key, now=NOW)
    private, public = write_key_pair(tmp_path / "k")
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert load_public_key(public) == load_private_key(private).public_key()
    posted = tmp_path / "notice-board.txt"  # the 64 hex digits a notice board shows
    posted.write_text(cp.key.upper() + "\n", encoding="ascii")
    assert cf.verify_checkpoint(store, cp, posted).ok
    assert cf.verify_checkpoint(store, cp, cp.key.encode()).ok
    assert not cf.verify_checkpoint(store, cp, ("0" * 63 + "1").encode()).ok  # another (valid) key
    with pytest.raises(cf.InvalidInput, match="exists already"):
        write_key_pair(tmp_path / "k")
    for bad in (b"nonsense", str(tmp_path), str(tmp_path / "missing"), private):
        with pytest.raises(cf.InvalidInput):
            cf.verify_checkpoint(store, cp, bad)
    with pytest.raises(cf.InvalidInput):
        cf.sign_checkpoint(store, public)
    with pytest.raises(cf.InvalidInput):
        cf.sign_checkpoint(store, key, now=datetime(2026, 1, 1))  # naive
    with pytest.raises(cf.InvalidInput):
        cf.sign_checkpoint(store, key, now=datetime.max.replace(tzinfo=UTC))


def test_a_store_that_does_not_verify_is_never_signed(key: Ed25519PrivateKey) -> None:
    store = MemoryStore()
    story(store)
    store._logs["c-002"].pop()
    with pytest.raises(cf.IntegrityError, match="c-002"):
        cf.sign_checkpoint(store, key)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.integers(1, 4),
    grow=st.lists(st.sampled_from(["round", "new", "nothing"]), max_size=4),
    attack=st.sampled_from(["none", "delete", "truncate"]),
)
def test_growth_passes_and_loss_is_found(key: Ed25519PrivateKey, before: int, grow: list[str], attack: str) -> None:
    store, shorter = MemoryStore(), MemoryStore()
    d = story(store, before)
    d.hold_round(cid="c-001")
    story(shorter, before)
    cp = cf.sign_checkpoint(store, key, now=NOW)
    for step in grow:
        if step == "round":
            d.notify(cid=d.propose().id)
        elif step == "new":
            d.propose()
    if attack == "delete":
        del store._records["c-001"], store._logs["c-001"]
    elif attack == "truncate":
        store._records["c-001"] = shorter._records["c-001"]
        store._logs["c-001"] = list(shorter._logs["c-001"])
    report = cf.verify_checkpoint(store, cp, key.public_key())
    expected = {"none": [], "delete": [("deleted", "c-001")], "truncate": [("truncated", "c-001")]}[attack]
    assert kinds(report) == expected
    assert len(report.new) == len([s for s in grow if s != "nothing"])


# ---- the command line -------------------------------------------------------------------------------------------
def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_keygen_checkpoint_verify_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, k = tmp_path / "c.db", tmp_path / "k"
    store = cf.SQLiteStore(db)
    d = story(store)
    code, out, _ = run(["keygen", "--out", str(k)], capsys)
    assert code == 0
    posted = out.splitlines()[-1].rsplit(" ", 1)[1]
    assert posted == load_public_key(f"{k}.pub").public_bytes_raw().hex()
    assert run(["keygen", "--out", str(k)], capsys)[0] == 2  # never overwrites a key
    code, out, _ = run(["checkpoint", "--db", str(db), "--key", str(k)], capsys)
    assert code == 0
    assert json.loads(out)["format"] == FORMAT
    (tmp_path / "cp.json").write_text(out, encoding="utf-8")
    verify = ["verify", "--db", str(db), "--checkpoint", str(tmp_path / "cp.json"), "--public-key", f"{k}.pub"]
    d.hold_round(cid="c-001")
    d.propose()
    code, out, _ = run(verify, capsys)
    assert code == 0, out
    assert "1 grew since, 1 new" in out
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM entries WHERE consultation = 'c-002'")
        conn.execute("DELETE FROM outbox WHERE consultation = 'c-002'")
        conn.execute("DELETE FROM consultations WHERE id = 'c-002'")
    code, out, _ = run(verify, capsys)
    assert code == 1
    assert "DELETED consultation 'c-002'" in out
    store.close()


def test_the_command_line_reports_a_tampered_checkpoint_and_refuses_what_is_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    with cf.SQLiteStore(db) as store:
        story(store)
    write_key_pair(tmp_path / "k")
    write_key_pair(tmp_path / "other")
    code, out, _ = run(["checkpoint", "--db", str(db), "--key", str(tmp_path / "k")], capsys)
    assert code == 0
    cp = tmp_path / "cp.json"
    cp.write_text(out.replace('"consultations": 3', '"consultations": 2'), encoding="utf-8")
    base = ["verify", "--db", str(db), "--checkpoint", str(cp)]
    code, out, _ = run([*base, "--public-key", str(tmp_path / "k.pub")], capsys)
    assert (code, out.split()[0]) == (1, "SIGNATURE")
    cp.write_text(out, encoding="utf-8")  # not JSON any more
    assert run([*base, "--public-key", str(tmp_path / "k.pub")], capsys)[0] == 2
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args in (
        ["verify", "--db", str(db), "--checkpoint", str(fifo), "--public-key", str(tmp_path / "k.pub")],
        ["verify", "--db", str(db), "--checkpoint", str(cp), "--public-key", str(fifo)],
        ["checkpoint", "--db", str(fifo), "--key", str(tmp_path / "k")],
        ["checkpoint", "--db", str(db), "--key", str(tmp_path / "k.pub")],
        ["verify", "--db", str(db), "--checkpoint", str(cp)],  # no key
        ["keygen", "--out", str(tmp_path / "no" / "such" / "dir" / "k")],
    ):
        code, _, err = run(args, capsys)
        assert code == 2, args
        assert err.startswith("consultflow: ")
