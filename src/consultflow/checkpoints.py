"""Signed checkpoints (公开制 you can check): a community publishes, now and then, a short signed
statement of what its store holds; anyone holding one can later check that nothing it covered was
deleted, cut short or rewritten - the store may only have grown.

A checkpoint names every consultation by ``(id, version, head)``: how many log entries it had and
the hash of the last one. The leaves are hashed into one Merkle root the RFC 6962 way (certificate
transparency): a leaf is ``SHA-256(0x00 || leaf)``, an inner node ``SHA-256(0x01 || left || right)``,
the tree over ``n`` leaves splits at the largest power of two below ``n``, the empty tree's root is
``SHA-256("")``. A leaf is the canonical JSON (UTF-8, no spaces) of ``[id, version, head]``, and the
leaves are sorted by id (Unicode code points, which is UTF-8 byte order). The key signs (Ed25519)
the canonical JSON of ``{"consultations", "format", "key", "root", "time"}``; the file also lists
the leaves, so it is enough, with the public key, to check a store. See docs/checkpoints.md.

"Only grew" is checked per consultation: the store still has the entry at the checkpointed version,
its hash is the checkpointed head, and the chain from the first entry to today's head verifies - so
every entry the checkpoint covered is still there, unchanged, whatever was appended since.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import attrs
from pydantic import ConfigDict, Field, StringConstraints, model_serializer, model_validator

from .errors import ConsultflowError, IntegrityError, InvalidInput, NotFound, ValidationError
from .files import read_file
from .limits import time_problem
from .log import verify
from .records import Record
from .storage.base import Query, Store

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointFinding",
    "CheckpointReport",
    "Leaf",
    "leaf_hash",
    "load_private_key",
    "load_public_key",
    "merkle_root",
    "node_hash",
    "sign_checkpoint",
    "verify_checkpoint",
    "write_key_pair",
]

#: The format this module writes and reads; a later format gets a new name.
FORMAT: Literal["consultflow-checkpoint/1"] = "consultflow-checkpoint/1"

_MAX_KEY_FILE = 64 * 1024  # a PEM key is a few hundred bytes: anything larger is not one


def _canonical(value: object) -> bytes:
    """The bytes that are hashed and signed: JSON, sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# ---- the Merkle tree (RFC 6962, section 2.1) -----------------------------------------------------------
def leaf_hash(data: bytes) -> bytes:
    """A leaf's hash: ``SHA-256(0x00 || data)`` (the prefix keeps a leaf from passing for a node)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An inner node's hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's Merkle Tree Hash of the leaf hashes ``leaves``, in order. Bottom up: pair
    neighbours, carry an odd last node up unchanged - the same root as the RFC's recursive split
    at the largest power of two below ``n``."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


_Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


class Leaf(Record):
    """One consultation as a checkpoint saw it: its id, how many log entries it had (its version),
    the hash of the last one. In the file, the row ``[id, version, head]``."""

    model_config = _STRICT

    id: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    version: int = Field(ge=1)
    head: _Hex64

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if isinstance(data, list | tuple) and len(data) == 3:
            return {"id": data[0], "version": data[1], "head": data[2]}
        return data

    @model_serializer
    def _row(self) -> list[str | int]:
        return [self.id, self.version, self.head]

    def data(self) -> bytes:
        """The leaf's bytes: the canonical JSON of ``[id, version, head]``."""
        return _canonical([self.id, self.version, self.head])


def _root(leaves: Sequence[Leaf]) -> str:
    return merkle_root([leaf_hash(leaf.data()) for leaf in leaves]).hex()


# ---- the checkpoint --------------------------------------------------------------------------------------
class Checkpoint(Record):
    """A signed statement of a store's contents (what ``consultflow checkpoint`` prints). ``signed()``
    is what the signature covers; ``to_json()`` the file. Strict: a field of another type (a count
    as text) is a changed checkpoint, not something to coerce."""

    model_config = _STRICT

    format: Literal["consultflow-checkpoint/1"] = FORMAT
    time: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")]
    consultations: int = Field(ge=0)
    root: _Hex64
    key: _Hex64  # the signer's raw public key: says which key signed, never trusted for checking
    signature: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
    leaves: tuple[Leaf, ...]

    def signed(self) -> bytes:
        return _signed(self.format, self.time, self.consultations, self.root, self.key)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """The file form: indented JSON with one leaf per line, readable and diffable."""
        head = self.to_dict()
        rows = ",\n".join("    " + json.dumps(row, ensure_ascii=False) for row in head.pop("leaves"))
        body = json.dumps(head, ensure_ascii=False, indent=2)[: -len("\n}")]
        return body + ',\n  "leaves": [' + (f"\n{rows}\n  " if rows else "") + "]\n}"


def _signed(form: str, time: str, consultations: int, root: str, key: str) -> bytes:
    return _canonical({"consultations": consultations, "format": form, "key": key, "root": root, "time": time})


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _leaves_of(store: Store) -> list[Leaf]:
    """Every consultation of ``store`` as a leaf, after checking its chain: a checkpoint never signs
    a store that does not hold together."""
    leaves = []
    for record in store.find(Query()):
        check = verify(store.entries(record.id), head=record.head, version=record.version)
        if not check.ok:
            raise IntegrityError(
                f"consultation {record.id!r} does not verify (entry seq {check.seq}: {check.reason}); a checkpoint "
                "signs only a store that holds together - find out what happened first (consultflow verify)"
            )
        leaves.append(Leaf(id=record.id, version=record.version, head=record.head))
    leaves.sort(key=lambda leaf: leaf.id)
    return leaves


def sign_checkpoint(
    store: Store, key: Ed25519PrivateKey | bytes | str | os.PathLike[str], *, now: datetime | None = None
) -> Checkpoint:
    """Sign what ``store`` holds now: every consultation's ``(id, version, head)`` under one Merkle
    root. ``key`` is an Ed25519 private key, its PEM bytes or the path of its PEM file (``consultflow
    keygen``); ``now`` (default: the system clock) is the time the checkpoint states.

    Every chain is verified first; a store that does not hold together is ``IntegrityError``."""
    private = _private(key)
    when = datetime.now(UTC) if now is None else now
    if not isinstance(when, datetime):
        raise InvalidInput(f"sign_checkpoint(now=...) needs an aware datetime, not {when!r}")
    problem = time_problem(when)
    if problem is not None:
        raise InvalidInput(f"sign_checkpoint(now=...): {problem}")
    leaves = tuple(_leaves_of(store))
    public = _raw_public(private.public_key())
    root = _root(leaves)
    time = _time(when)
    signature = private.sign(_signed(FORMAT, time, len(leaves), root, public)).hex()
    return Checkpoint(time=time, consultations=len(leaves), root=root, key=public, signature=signature, leaves=leaves)


# ---- reading a checkpoint --------------------------------------------------------------------------------
def _parse(data: Checkpoint | Mapping[str, Any] | str | bytes) -> Checkpoint | str:
    """The checkpoint in ``data``, or what is wrong with it (a finding: the file was changed).
    Data that is no checkpoint at all is ``InvalidInput``."""
    if isinstance(data, Checkpoint):
        return data
    twice: list[str] = []
    if isinstance(data, bytes | str):
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            parsed = json.loads(text, object_pairs_hook=lambda pairs: _object(pairs, twice))
        except (UnicodeError, ValueError, RecursionError) as exc:
            raise InvalidInput(f"this is not a consultflow checkpoint: not JSON ({exc})") from None
    else:
        parsed = data
    if not isinstance(parsed, Mapping) or "format" not in parsed:
        raise InvalidInput("this is not a consultflow checkpoint: a JSON object with a 'format' key is expected")
    if twice:  # a reader and a program could each see another value
        return f"it gives {', '.join(repr(k) for k in dict.fromkeys(twice))} twice"
    try:
        text = json.dumps(dict(parsed), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"this is not a consultflow checkpoint: not JSON data ({exc})") from None
    try:
        return Checkpoint.model_validate_json(text)
    except ValidationError as exc:
        return exc.problems[0][0] + ": " + exc.problems[0][2] if exc.problems else str(exc)


def _object(pairs: list[tuple[str, Any]], twice: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            twice.append(key)
        out[key] = value
    return out


# ---- checking a store against a checkpoint -----------------------------------------------------------------
FindingKind = Literal["checkpoint", "signature", "deleted", "truncated", "rewritten", "broken"]


@attrs.frozen(slots=True)
class CheckpointFinding:
    """Something the checkpoint shows: the checkpoint itself does not hold (``checkpoint``,
    ``signature``), or a consultation it covers was ``deleted``, ``truncated``, ``rewritten``, or its
    chain is ``broken`` now."""

    kind: FindingKind
    consultation: str | None
    reason: str

    def __str__(self) -> str:
        where = "the checkpoint" if self.consultation is None else f"consultation {self.consultation!r}"
        return f"{self.kind.upper()} {where}: {self.reason}"


@attrs.frozen(slots=True)
class CheckpointReport:
    """What ``verify_checkpoint`` found. ``ok``: the checkpoint is genuine and the store only grew
    since. ``grown`` lists the consultations with entries appended since, ``new`` those not in the
    checkpoint; neither is a finding."""

    findings: tuple[CheckpointFinding, ...]
    checked: int = 0
    grown: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    time: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings

    def __bool__(self) -> bool:
        return self.ok


def verify_checkpoint(
    store: Store,
    checkpoint: Checkpoint | Mapping[str, Any] | str | bytes,
    public_key: Ed25519PublicKey | bytes | str | os.PathLike[str],
) -> CheckpointReport:
    """Check ``store`` against ``checkpoint`` (a ``Checkpoint``, its JSON text or parsed JSON),
    signed by ``public_key`` (an Ed25519 public key, its PEM bytes or the path of its PEM file).

    A checkpoint that was changed, or signed by another key, is a finding (``kind`` ``checkpoint``
    or ``signature``), and nothing else is checked then. Otherwise every consultation it covers must
    still have its checkpointed entry with the checkpointed hash, on a chain that verifies to today's
    head. Data that is no checkpoint at all is ``InvalidInput``; a key that is no key too."""
    public = _public(public_key)
    parsed = _parse(checkpoint)
    if isinstance(parsed, str):
        return CheckpointReport((CheckpointFinding("checkpoint", None, f"the checkpoint was changed: {parsed}"),))
    problem = _check_signature(parsed, public)
    if problem is not None:
        return CheckpointReport((problem,), time=parsed.time)
    findings: list[CheckpointFinding] = []
    grown: list[str] = []
    covered: set[str] = set()
    for leaf in parsed.leaves:
        covered.add(leaf.id)
        finding, grew = _check_leaf(store, leaf)
        if finding is not None:
            findings.append(finding)
        elif grew:
            grown.append(leaf.id)
    new = tuple(sorted(r.id for r in store.find(Query()) if r.id not in covered))
    return CheckpointReport(tuple(findings), len(parsed.leaves), tuple(grown), new, parsed.time)


def _check_signature(cp: Checkpoint, public: Ed25519PublicKey) -> CheckpointFinding | None:
    from cryptography.exceptions import InvalidSignature

    given = _raw_public(public)
    try:
        public.verify(bytes.fromhex(cp.signature), cp.signed())
    except InvalidSignature:
        if cp.key != given:
            reason = (
                f"it was not signed by the key you gave ({given[:16]}...): it names key {cp.key[:16]}...; "
                "check that you have the public key of whoever published it"
            )
        else:
            reason = "its signature does not match its contents: the time, count or root was changed after signing"
        return CheckpointFinding("signature", None, reason)
    leaves = cp.leaves
    ids = [leaf.id for leaf in leaves]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        return CheckpointFinding("checkpoint", None, "its leaves are not sorted by id, or list an id twice")
    if len(leaves) != cp.consultations or _root(leaves) != cp.root:
        return CheckpointFinding(
            "checkpoint", None, "its list of consultations does not hash to the signed root: the list was changed"
        )
    return None


def _check_leaf(store: Store, leaf: Leaf) -> tuple[CheckpointFinding | None, bool]:
    """(a finding, or None; whether the consultation grew since)."""
    cid = leaf.id
    try:
        record = store.load(cid)
        entries = store.entries(cid)
    except NotFound:
        return CheckpointFinding("deleted", cid, f"it had {leaf.version} entries at the checkpoint; it is gone"), False
    except (IntegrityError, InvalidInput) as exc:
        return CheckpointFinding("broken", cid, f"what is stored cannot be read back: {exc}"), False
    if record.version < leaf.version or len(entries) < leaf.version:
        have = min(record.version, len(entries))
        return (
            CheckpointFinding("truncated", cid, f"it had {leaf.version} entries at the checkpoint, now {have}"),
            False,
        )
    if entries[leaf.version - 1].hash != leaf.head:
        return (
            CheckpointFinding(
                "rewritten",
                cid,
                f"entry seq {leaf.version} is not the one the checkpoint covers (its hash differs): the log was "
                "rewritten",
            ),
            False,
        )
    check = verify(entries, head=record.head, version=record.version)
    if not check.ok:
        return CheckpointFinding(
            "broken", cid, f"its chain does not verify (entry seq {check.seq}: {check.reason})"
        ), False
    return None, record.version > leaf.version


# ---- keys ---------------------------------------------------------------------------------------------------
def _raw_public(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _read_key_file(path: str | os.PathLike[str], what: str) -> bytes:
    return read_file(path, limit=_MAX_KEY_FILE, what=what)


def _private(key: Ed25519PrivateKey | bytes | str | os.PathLike[str]) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, str | os.PathLike):
        key = _read_key_file(key, "private key")
    if not isinstance(key, bytes):
        raise InvalidInput(f"a private key is an Ed25519PrivateKey, PEM bytes or a file path, not {type(key).__name__}")
    try:
        loaded = load_pem_private_key(key, password=None)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidInput(
            f"this is not an unencrypted PEM private key ({_first(exc)}); make one with `consultflow keygen`"
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InvalidInput(f"checkpoints are signed with Ed25519 keys, not {type(loaded).__name__}")
    return loaded


def _public(key: Ed25519PublicKey | bytes | str | os.PathLike[str]) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("give the public key (KEY.pub) to verify, not the private one")
    if isinstance(key, str | os.PathLike):
        key = _read_key_file(key, "public key")
    if not isinstance(key, bytes):
        raise InvalidInput(f"a public key is an Ed25519PublicKey, PEM bytes or a file path, not {type(key).__name__}")
    if b"PRIVATE KEY" in key:
        raise InvalidInput("this is a private key; give the public key (KEY.pub) to verify")
    raw = key.strip()
    if len(raw) == 64 and all(c in b"0123456789abcdefABCDEF" for c in raw):
        # the 64 hex digits a notice board can show (the checkpoint's "key" field, keygen's last line)
        try:
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(raw.decode("ascii")))
        except ValueError as exc:
            raise InvalidInput(f"these 64 hex digits are no Ed25519 public key ({_first(exc)})") from None
    try:
        loaded = load_pem_public_key(key)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidInput(
            f"this is not a PEM public key ({_first(exc)}); use the KEY.pub of `consultflow keygen`"
        ) from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise InvalidInput(f"checkpoints are signed with Ed25519 keys, not {type(loaded).__name__}")
    return loaded


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file (``InvalidInput`` if it is none)."""
    return _private(_read_key_file(path, "private key"))


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The Ed25519 public key in a file: PEM (``KEY.pub``) or its 64 hex digits on one line, as a
    notice board shows it (``InvalidInput`` if it is neither)."""
    return _public(_read_key_file(path, "public key"))


def write_key_pair(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Make a new Ed25519 key pair: the private key to ``path`` (PEM, readable by its owner only),
    the public one to ``path.pub``. Refuses to overwrite either file (``InvalidInput``)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private_path = Path(path)
    public_path = Path(f"{private_path}.pub")
    for file in (private_path, public_path):
        if file.exists() or file.is_symlink():
            raise InvalidInput(f"{file} exists already; keygen never overwrites a key - choose another --out")
    key = Ed25519PrivateKey.generate()
    secret = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    _write_new(private_path, secret, 0o600)
    try:
        _write_new(public_path, public, 0o644)
    except ConsultflowError:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise InvalidInput(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(data)
