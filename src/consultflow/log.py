"""The log (公开制, 承诺制): one entry per step, each hash-chained to the one before.

The hash of an entry is SHA-256 over its canonical JSON (sorted keys, no spaces, UTF-8) without the
``hash`` field. Anyone holding an export can check it with ``verify`` and nothing but this module.
Entries never carry personal data; participants appear by id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from pydantic import AwareDatetime, Field, JsonValue
from pydantic_core import to_json

from .records import SCHEMA_VERSION, Id, Record, make
from .vocabulary import Event, State

__all__ = ["GENESIS", "LogEntry", "Verification", "canonical_json", "chain_hash", "entry_hash", "seal", "verify"]

GENESIS = ""  # ``prev`` of the first entry


class LogEntry(Record):
    """One step of one consultation. ``from``/``to`` are the states before and after."""

    schema_version: int = SCHEMA_VERSION
    consultation: Id
    seq: int = Field(ge=1)
    event: Event
    source: State | None = Field(default=None, alias="from")
    target: State = Field(alias="to")
    actor: str
    role: str
    at: AwareDatetime
    data: dict[str, JsonValue] = Field(default_factory=dict)
    prev: str
    hash: str

    model_config = Record.model_config | {"populate_by_name": True}

    def body(self) -> dict[str, Any]:
        """The hashed part of the entry, in its exported shape (``from``/``to``, ISO times)."""
        return entry_body(
            self.schema_version,
            self.consultation,
            self.seq,
            self.event,
            self.source,
            self.target,
            self.actor,
            self.role,
            self.at,
            self.data,
            self.prev,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The exported shape: the body plus its hash."""
        out = self.body()
        out["hash"] = self.hash
        return out

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        return cls.model_validate(dict(data))


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} into a log entry; use JSON values")


def canonical_json(obj: object) -> bytes:
    """The one byte form that is hashed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    ).encode("utf-8")


def entry_body(
    schema_version: int,
    consultation: str,
    seq: int,
    event: str,
    source: str | None,
    target: str,
    actor: str,
    role: str,
    at: datetime,
    data: Mapping[str, Any],
    prev: str,
) -> dict[str, Any]:
    return {
        "schema_version": schema_version,
        "consultation": consultation,
        "seq": seq,
        "event": str(event),
        "from": None if source is None else str(source),
        "to": str(target),
        "actor": actor,
        "role": role,
        "at": at.isoformat(),
        "data": data,
        "prev": prev,
    }


def entry_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an entry body's canonical JSON."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


_quote: Callable[[str], str] = json.encoder.encode_basestring
_sha256 = hashlib.sha256


def chain_hash(
    schema_version: int,
    consultation: str,
    seq: int,
    event: str,
    source: str | None,
    target: str,
    actor: str,
    role: str,
    at: str,
    data: Mapping[str, Any],
    prev: str,
) -> str:
    """``entry_hash`` of the body these fields make, without building the body: the hot path's
    form. It writes the canonical JSON directly, keys in sorted order, and serialises ``data``
    with pydantic-core, whose compact UTF-8 output is the same bytes as ``canonical_json`` when
    the data's keys are already in sorted order - which the effects guarantee and ``verify``
    re-checks on every chain.

    Only ``actor`` and ``data`` can hold characters JSON must escape: the consultation id is
    validated against ``records.Id``, the states, events and roles are identifiers, ``at`` is an
    ISO time and ``prev`` is hex. The tests hold this function to ``entry_hash`` byte for byte.
    """
    src = "null" if source is None else f'"{source}"'
    digest = _sha256(f'{{"actor":{_quote(actor)},"at":"{at}","consultation":"{consultation}","data":'.encode())
    digest.update(to_json(data))
    digest.update(
        f',"event":"{event}","from":{src},"prev":"{prev}","role":"{role}",'
        f'"schema_version":{schema_version:d},"seq":{seq:d},"to":"{target}"}}'.encode()
    )
    return digest.hexdigest()


def seal(entries: Iterable[LogEntry]) -> tuple[LogEntry, ...]:
    """Chain entries the core left unchained (``apply(..., lazy=True)``, a simulation's mode): each
    entry's ``prev`` and ``hash`` as the core would have set them, from the first entry on."""
    prev = GENESIS
    out = []
    for e in entries:
        digest = chain_hash(
            e.schema_version, e.consultation, e.seq, e.event, e.source, e.target, e.actor, e.role,
            e.at.isoformat(), e.data, prev,
        )  # fmt: skip
        values = e.__dict__.copy()
        values["prev"], values["hash"] = prev, digest
        out.append(make(LogEntry, values))
        prev = digest
    return tuple(out)


@attrs.frozen(slots=True)
class Verification:
    """What ``verify`` found. ``ok`` or the first bad position (0-based), its seq and why."""

    ok: bool
    checked: int
    index: int | None = None
    seq: int | None = None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def verify(
    entries: Iterable[LogEntry | Mapping[str, Any]],
    *,
    head: str | None = None,
    version: int | None = None,
) -> Verification:
    """Check a consultation's chain: every hash, every link, seq 1, 2, 3, ... in order.

    Finds the first entry that was changed (its hash no longer matches), removed (a gap in seq or a
    broken link) or reordered. Pass the record's ``head`` and ``version`` to catch a truncated tail.
    Accepts entries or their exported dicts.
    """
    prev = GENESIS
    consultation: str | None = None
    count = 0
    for index, raw in enumerate(entries):
        count = index + 1
        if isinstance(raw, LogEntry):
            body, claimed = raw.body(), raw.hash
        else:
            body = {k: v for k, v in raw.items() if k != "hash"}
            claimed = str(raw.get("hash", ""))
        seq = body.get("seq")
        if consultation is None:
            consultation = body.get("consultation")
        elif body.get("consultation") != consultation:
            return Verification(False, count, index, _int(seq), "entry belongs to another consultation")
        if entry_hash(body) != claimed:
            return Verification(False, count, index, _int(seq), "entry was changed: its hash does not match")
        if seq != index + 1:
            return Verification(
                False, count, index, _int(seq), f"expected seq {index + 1}, found {seq}: removed or reordered"
            )
        if body.get("prev") != prev:
            return Verification(False, count, index, _int(seq), "link broken: prev is not the hash of the entry before")
        prev = claimed
    if version is not None and count != version:
        return Verification(
            False,
            count,
            count,
            count + 1,
            f"the record is at version {version} but the log has {count} entries",
        )
    if head is not None and prev != head:
        return Verification(
            False,
            count,
            count - 1 if count else None,
            count or None,
            "the last hash is not the record's head",
        )
    return Verification(True, count)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
