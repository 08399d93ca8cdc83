"""A public export without personal data (公开制 without 个人信息): every entry of a store, as JSON Lines,
that anyone can check against a checkpoint and nobody can read a person's id or private text from.

Each entry line is the entry's **hashed form** (``privacy.public_form``: person ids, private text and
the record digest as markers ``#0``, ``#1``…, and one salted commitment to them; no salt) with its
``hash``, plus ``people``: for each marker that stands for people, their **pseudonyms** - ``p-`` and
the first 20 hex digits of HMAC-SHA256(secret, id), the secret kept by the operator: the same person
has the same pseudonym throughout an export, and across exports made with the same secret. Private
text has no entry in ``people``: it is gone, only the commitment covers it.

The hash of an entry line is SHA-256 of its canonical JSON less ``hash`` and ``people`` - the very
hash of the stored entry - so every chain can be checked, and compared with a checkpoint's heads,
without consultflow (docs/integrity.md). The pseudonyms are not in the hash (nobody without the ids
could check them): the last line signs the export (Ed25519, the community's checkpoint key) - its
format, time, counts and the SHA-256 of every line before it - so a pseudonym changed after
signing, like anything else, is reported.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .canonical import TIMESTAMP_PATTERN, canonical_json, parse_canonical
from .checkpoints import Checkpoint, _check_signature, _parse, _private, _public, _raw_public
from .errors import IntegrityError, InvalidInput
from .log import LogEntry, verify
from .privacy import PERSON_KEYS, mark, public_form
from .storage.base import Query, Store

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "EXPORT_FORMAT",
    "ExportFinding",
    "ExportReport",
    "export_public",
    "pseudonym",
    "verify_export",
]

EXPORT_FORMAT = "consultflow-public-export/1"
MIN_SECRET = 16  # bytes: a pseudonym's key must not be guessable either


def pseudonym(secret: bytes, person: str) -> str:
    """A person's pseudonym under ``secret``: ``p-`` and 20 hex digits of HMAC-SHA256(secret, id)."""
    return "p-" + hmac.new(secret, person.encode("utf-8"), hashlib.sha256).hexdigest()[:20]


def _pseudonymise(key: str, value: Any, name: Callable[[str], str]) -> Any:
    """``value`` (under a person key) with every person id replaced by its pseudonym: a people/roles
    map's keys, a list's ids, a nested record's person fields (a measure's owner)."""
    if isinstance(value, str):
        return name(value)
    if isinstance(value, list | tuple | set | frozenset):
        return (
            sorted(_pseudonymise(key, v, name) for v in value)
            if isinstance(value, set | frozenset)
            else [_pseudonymise(key, v, name) for v in value]
        )
    if isinstance(value, dict):
        if key == "people":  # {person: roles}
            return {name(k): v for k, v in value.items()}
        return {k: _pseudonymise(k, v, name) if k in PERSON_KEYS else v for k, v in value.items()}
    return value


def public_line(entry: LogEntry, secret: bytes) -> str:
    """One entry of a public export: its hashed form, its hash and the pseudonyms of its people."""

    def name(person: str) -> str:
        return pseudonym(secret, person)

    names: list[str] = []
    found: list[Any] = []
    out = public_form(entry.body(), names, found)
    people: dict[str, Any] = {}
    for i, key in enumerate(names):
        if key == "actor" and i == 0:
            people[mark(0)] = name(found[0])
        elif key in PERSON_KEYS:
            people[mark(i)] = _pseudonymise(key, found[i], name)
    out["hash"] = entry.hash
    out["people"] = people
    return canonical_json(out).decode("utf-8")


def _signed(fields: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in fields.items() if k != "signature"})


def export_public(
    store: Store,
    secret: bytes,
    key: Ed25519PrivateKey | bytes | str | os.PathLike[str],
    *,
    now: datetime | None = None,
) -> list[str]:
    """The public export of ``store``: one line per entry (consultations by id, entries by seq), then
    the signed trailer. ``secret`` keys the pseudonyms (at least 16 bytes; keep it: another secret
    gives other pseudonyms); ``key`` signs (the checkpoint key: an ``Ed25519PrivateKey``, its PEM
    bytes or the path of its PEM file). Every chain is verified first: a store that does not hold
    together is never exported (``IntegrityError``)."""
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET:
        raise InvalidInput(f"the pseudonym secret must be at least {MIN_SECRET} bytes")
    signer = _private(key)
    lines: list[str] = []
    records = sorted(store.find(Query()), key=lambda r: r.id)
    for record in records:
        entries = store.entries(record.id)
        check = verify(entries, head=record.head, version=record.version)
        if not check.ok:
            raise IntegrityError(
                f"consultation {record.id!r} does not verify (entry seq {check.seq}: {check.reason}); "
                "nothing was exported",
                consultation=record.id,
            )
        for e in entries:
            if not e.salt:
                raise InvalidInput(
                    f"consultation {record.id!r} entry seq {e.seq} was written without a salt (a simulation's "
                    "log): its commitments could be tried against guessed ids; it is not exported"
                )
            lines.append(public_line(e, secret))
    when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    trailer: dict[str, Any] = {
        "consultations": len(records),
        "digest": _digest(lines),
        "entries": len(lines),
        "export": EXPORT_FORMAT,
        "key": _raw_public(signer.public_key()),
        "time": when,
    }
    trailer["signature"] = signer.sign(_signed(trailer)).hex()
    lines.append(canonical_json(trailer).decode("utf-8"))
    return lines


def _digest(lines: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


# ---- checking an export ---------------------------------------------------------------------------------
ExportFindingKind = Literal["export", "signature", "checkpoint", "broken", "deleted", "truncated", "rewritten"]


@attrs.frozen(slots=True)
class ExportFinding:
    """What ``verify_export`` found: the export does not hold (``export``: a line is not what an
    export writes; ``signature``: it was changed after signing, or another key signed it), the
    checkpoint does not (``checkpoint``, ``signature``), a chain is ``broken``, or a consultation
    the checkpoint covers is missing (``deleted``), shorter (``truncated``) or ``rewritten``."""

    kind: ExportFindingKind
    consultation: str | None
    reason: str

    def __str__(self) -> str:
        where = "the export" if self.consultation is None else f"consultation {self.consultation!r}"
        return f"{self.kind.upper()} {where}: {self.reason}"


@attrs.frozen(slots=True)
class ExportReport:
    """What ``verify_export`` found; ``ok`` when nothing. ``consultations`` and ``entries`` count
    what the export holds; ``new`` the consultations the checkpoint does not cover."""

    findings: tuple[ExportFinding, ...]
    consultations: int = 0
    entries: int = 0
    new: tuple[str, ...] = ()
    time: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings

    def __bool__(self) -> bool:
        return self.ok


def _lines_of(export: str | bytes | Iterable[str]) -> list[str]:
    if isinstance(export, bytes):
        try:
            export = export.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"an export is UTF-8 text: {exc}") from None
    if isinstance(export, str):
        return export.splitlines()
    return [str(line).rstrip("\n") for line in export]


def _check_trailer(lines: list[str], public: Ed25519PublicKey) -> tuple[ExportFinding | None, str]:
    from cryptography.exceptions import InvalidSignature

    if not lines:
        return ExportFinding("export", None, "it is empty: no signed last line"), ""
    trailer, problem = parse_canonical(lines[-1])
    if trailer is None or trailer.get("export") != EXPORT_FORMAT:
        return ExportFinding("export", None, f"its last line is not a signed trailer ({problem or 'no format'})"), ""
    fields = {"consultations": int, "digest": str, "entries": int, "export": str, "key": str, "time": str}
    if set(trailer) != {*fields, "signature"} or not all(type(trailer[k]) is t for k, t in fields.items()):
        return ExportFinding("export", None, "its trailer does not have the fields of a trailer"), ""
    time = trailer["time"]
    signature = trailer["signature"]
    try:
        public.verify(bytes.fromhex(signature) if isinstance(signature, str) else b"", _signed(trailer))
    except (InvalidSignature, ValueError):
        given = _raw_public(public)
        if trailer["key"] != given:
            why = f"it was not signed by the key you gave ({given[:16]}...): it names key {str(trailer['key'])[:16]}..."
        else:
            why = "its signature does not match its trailer: the time, counts or digest were changed after signing"
        return ExportFinding("signature", None, why), time if isinstance(time, str) else ""
    if not TIMESTAMP_PATTERN.match(time):
        return ExportFinding("export", None, "its time is not a canonical UTC time"), ""
    body = lines[:-1]
    if trailer["entries"] != len(body) or _digest(body) != trailer["digest"]:
        return (
            ExportFinding(
                "signature", None, "its lines are not the ones signed: a line was changed, added, removed or moved"
            ),
            time,
        )
    return None, time


_MARK = re.compile(r"#(0|[1-9][0-9]{0,5})")


def _people_hold(row: Mapping[str, Any]) -> bool:
    """Every marker ``people`` gives pseudonyms for stands in the entry's hashed form, which has a
    commitment."""
    people = row["people"]
    if not people:
        return True
    if not row.get("commitment"):
        return False
    hashed = canonical_json({k: v for k, v in row.items() if k != "people"}).decode("utf-8")
    return all(isinstance(k, str) and _MARK.fullmatch(k) and f'"{k}"' in hashed for k in people)


def verify_export(
    export: str | bytes | Iterable[str],
    checkpoint: Checkpoint | Mapping[str, Any] | str | bytes,
    public_key: Ed25519PublicKey | bytes | str | os.PathLike[str],
) -> ExportReport:
    """Check a public export (its text or lines) offline, against ``checkpoint`` signed by
    ``public_key`` (the community's key: the checkpoint's and the export's).

    The export's signature covers every line (a changed field, pseudonym or order, a line removed or
    added); each consultation's entries must form a chain (every hash from the hashed form, every
    link, seq 1, 2, 3, …, each entry starting where the one before ended); and every consultation
    the checkpoint covers must be in it with its checkpointed entry. Data that is no checkpoint, or
    a key that is no key, is ``InvalidInput``."""
    public = _public(public_key)
    parsed = _parse(checkpoint)
    if isinstance(parsed, str):
        return ExportReport((ExportFinding("checkpoint", None, f"the checkpoint was changed: {parsed}"),))
    cp_problem = _check_signature(parsed, public)
    if cp_problem is not None:
        return ExportReport((ExportFinding(cp_problem.kind, None, f"the checkpoint: {cp_problem.reason}"),))
    lines = _lines_of(export)
    findings: list[ExportFinding] = []
    problem, time = _check_trailer(lines, public)
    if problem is not None:
        findings.append(problem)
    chains: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []
    for n, line in enumerate(lines[:-1], 1):
        obj, why = parse_canonical(line)
        if obj is None or not isinstance(obj.get("consultation"), str) or not isinstance(obj.get("people"), dict):
            findings.append(ExportFinding("export", None, f"line {n} is not an exported entry ({why or 'its fields'})"))
            continue
        if "salt" in obj:
            findings.append(ExportFinding("export", obj["consultation"], f"line {n} carries a salt"))
        cid = obj["consultation"]
        if cid not in chains:
            order.append(cid)
        chains.setdefault(cid, []).append(obj)
    if order != sorted(order) or len(order) != len(set(order)):
        findings.append(ExportFinding("export", None, "its consultations are not each together, in order of id"))
    heads: dict[str, list[str]] = {}
    for cid, rows in chains.items():
        people_problem = next((r.get("seq") for r in rows if not _people_hold(r)), None)
        if people_problem is not None:
            findings.append(
                ExportFinding("export", cid, f"entry seq {people_problem} names people by no marker of its commitment")
            )
        check = verify({k: v for k, v in r.items() if k != "people"} for r in rows)
        if not check.ok:
            findings.append(
                ExportFinding("broken", cid, f"its chain does not verify (entry seq {check.seq}: {check.reason})")
            )
        heads[cid] = [str(r.get("hash")) for r in rows]
    covered = set()
    for leaf in parsed.leaves:
        covered.add(leaf.id)
        have = heads.get(leaf.id)
        if have is None:
            findings.append(
                ExportFinding("deleted", leaf.id, f"the checkpoint covers {leaf.version} entries; the export has none")
            )
        elif len(have) < leaf.version:
            findings.append(
                ExportFinding(
                    "truncated", leaf.id, f"the checkpoint covers {leaf.version} entries; the export has {len(have)}"
                )
            )
        elif have[leaf.version - 1] != leaf.head:
            findings.append(
                ExportFinding("rewritten", leaf.id, f"entry seq {leaf.version} is not the one the checkpoint covers")
            )
    new = tuple(sorted(c for c in chains if c not in covered))
    return ExportReport(tuple(findings), len(chains), sum(len(r) for r in chains.values()), new, time)
