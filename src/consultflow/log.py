"""The log (公开制, 承诺制): one entry per event, each hash-chained to the one before.

The hash of an entry is SHA-256 over the canonical JSON (``consultflow.canonical``: sorted keys,
no spaces, UTF-8, integers only, times as UTC ``...ffffffZ``) of its hashed form: every field but
``hash`` and ``salt``, with person ids and private text as markers under one salted commitment
(``consultflow.privacy``), so that a public export without them still verifies. A store keeps each
entry as the canonical JSON of the whole entry, hash and salt included (``entry_json``);
``verify_stored`` checks those bytes themselves. Entries carry no names: participants appear by id.

What a step did is in its entries, so the record can be rebuilt from them (``consultflow.replay``):
the first entry of a step carries its ``input`` (the command and the roles its effect read), the last
one the ``record_digest`` of the record it left, which is how a load checks a record cheaply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs
from pydantic import AwareDatetime, Field, JsonValue
from pydantic_core import to_json

from .canonical import TIMESTAMP_PATTERN, canonical_json, parse_canonical, timestamp
from .privacy import LIBRARY_PREFIX, commitment, hidden_keys, mark, public_form, seal
from .records import SCHEMA_VERSION, Id, Record
from .vocabulary import Event, State

__all__ = [
    "GENESIS",
    "LogEntry",
    "Verification",
    "canonical_json",
    "chain_hash",
    "entry_fast_hash",
    "entry_hash",
    "entry_json",
    "verify",
    "verify_stored",
]

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
    input: dict[str, JsonValue] | None = None  # first entry of a step: what replay needs
    record_digest: str = ""  # last entry of a step: ``canonical.record_digest`` of the record it left
    prev: str
    hash: str
    # the free-text keys kept out of the hash (``Parameters.private_text``) and the step's salt for
    # the commitments that stand for personal values in it (``consultflow.privacy``; never exported)
    private: tuple[str, ...] = ()
    salt: str = Field(default="", pattern="^([0-9a-f]{2}){0,64}$")

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
            self.input,
            self.record_digest,
            self.prev,
            self.private,
            self.salt,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The exported shape: the body plus its hash."""
        out = self.body()
        out["hash"] = self.hash
        return out

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        return cls.model_validate(dict(data))


def entry_json(entry: LogEntry) -> str:
    """The entry's canonical JSON, hash included: the bytes a store keeps and an export carries."""
    return canonical_json(entry.to_json_dict()).decode("utf-8")


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
    input: Mapping[str, Any] | None,
    record_digest: str,
    prev: str,
    private: tuple[str, ...] = (),
    salt: str = "",
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
        "at": timestamp(at),
        "data": data,
        "input": input,
        "record_digest": record_digest,
        "prev": prev,
        "private": list(private),
        "salt": salt,
    }


def entry_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry body's hashed form (``privacy.public_form``:
    personal values as salted commitments, no salt); a body without ``salt`` is in that form already."""
    return hashlib.sha256(canonical_json(public_form(body))).hexdigest()


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
    input: Mapping[str, Any] | None,
    record_digest: str,
    prev: str,
    private: tuple[str, ...] = (),
    salt: str = "",
) -> str:
    """``entry_hash`` of the body these fields make, without building the body: the hot path's
    form. It writes the canonical JSON directly, keys in sorted order, and serialises ``data``
    with pydantic-core, whose compact UTF-8 output is the same bytes as ``canonical_json`` when
    the data's keys are already in sorted order - which the effects guarantee and ``verify``
    re-checks on every chain; so are ``input``'s (``core.step_input``).

    Only ``actor``, ``data`` and ``input`` can hold characters JSON must escape: the consultation
    id is validated against ``records.Id``, the states, events and roles are identifiers, ``at`` is
    a canonical time (``canonical.timestamp``) and ``prev`` and ``record_digest`` are hex. The tests
    hold this function to ``entry_hash`` byte for byte.
    """
    src = "null" if source is None else f'"{source}"'
    if not salt:  # unsalted (a simulation's): the values themselves, no commitment (privacy)
        who, bound, sealed = _quote(actor), record_digest, ""
        data_json = to_json(data)
        input_json = b"null" if input is None else to_json(input)
    else:
        keys = hidden_keys(private)
        found: list[Any] = []
        if actor.startswith(LIBRARY_PREFIX):
            who = _quote(actor)
        else:
            who = '"#0"'
            found.append(actor)
        data_json = to_json(seal(data, keys, found))
        # a step's input nearly always names someone (its people, a register, a chair)
        input_json = b"null" if input is None else to_json(seal(input, keys, found))
        if record_digest:
            bound = mark(len(found))
            found.append(record_digest)
        else:
            bound = ""
        sealed = commitment(bytes.fromhex(salt), found)
    return _sha256(
        b"".join(
            (
                f'{{"actor":{who},"at":"{at}","commitment":"{sealed}","consultation":"{consultation}","data":'.encode(),
                data_json,
                f',"event":"{event}","from":{src},"input":'.encode(),
                input_json,
                f',"prev":"{prev}","private":'.encode(),
                to_json(private),
                f',"record_digest":"{bound}","role":"{role}",'
                f'"schema_version":{schema_version:d},"seq":{seq:d},"to":"{target}"}}'.encode(),
            )
        )
    ).hexdigest()


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
    """Check a consultation's chain: every hash, every link, seq 1, 2, 3, ... in order, and every
    entry starting where the one before ended (its ``from`` is the previous ``to``).

    Finds the first entry that was changed (its hash no longer matches), removed (a gap in seq or a
    broken link) or reordered. Pass the record's ``head`` and ``version`` to catch a truncated tail.
    Accepts entries or their exported dicts (for the stored bytes themselves, ``verify_stored``).
    """
    prev = GENESIS
    consultation: str | None = None
    state: object = None
    count = 0
    for index, raw in enumerate(entries):
        count = index + 1
        if isinstance(raw, LogEntry):
            body, claimed = raw.body(), raw.hash
            actual: str | None = entry_fast_hash(raw)
        else:
            body = {k: v for k, v in raw.items() if k != "hash"}
            claimed = str(raw.get("hash", ""))
            actual = None
        found = _check_body(index, body, claimed, consultation, prev, state, None if actual != claimed else actual)
        if found is not None:
            return Verification(False, count, index, _int(body.get("seq")), found)
        consultation = body.get("consultation")
        state = body.get("to")
        prev = claimed
    return _check_tail(count, prev, head, version)


def verify_stored(
    rows: Iterable[str | bytes],
    *,
    head: str | None = None,
    version: int | None = None,
) -> Verification:
    """``verify`` on the bytes a store keeps (``entry_json``: one entry's canonical JSON, hash
    included), without parsing them into entries first: each row must be exactly the canonical
    JSON of what it holds (no duplicated key, no ``2.0`` for ``2``, no space, keys in order, times
    as ``...ffffffZ``), with its salt, and its hash must be the SHA-256 of its hashed form
    (``privacy.public_form``: those values, personal ones as commitments)."""
    prev = GENESIS
    consultation: object = None
    state: object = None
    count = 0
    for index, raw in enumerate(rows):
        count = index + 1
        obj, problem = parse_canonical(raw)
        if obj is None:
            return Verification(False, count, index, None, f"the stored entry is {problem}")
        claimed = obj.pop("hash", None)
        if not isinstance(claimed, str):
            return Verification(False, count, index, _int(obj.get("seq")), "the stored entry has no hash")
        if not isinstance(obj.get("salt"), str):  # a stored entry holds its values and their salt
            return Verification(False, count, index, _int(obj.get("seq")), "the stored entry has no salt")
        # the stored bytes are exactly the canonical JSON of ``obj`` (parse_canonical): its hashed form
        # (personal values as commitments, ``privacy.public_form``) is hashed - by the hot path's route
        # when every field has its type and no text to escape, else (or to confirm a mismatch) canonically
        fast = _stored_fast_hash(obj)
        found = _check_body(index, obj, claimed, consultation, prev, state, fast if fast == claimed else None)
        if found is None and not (isinstance(obj.get("at"), str) and TIMESTAMP_PATTERN.match(obj["at"])):
            found = "the entry's time is not a canonical UTC time (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
        if found is not None:
            return Verification(False, count, index, _int(obj.get("seq")), found)
        consultation = obj.get("consultation")
        state = obj.get("to")
        prev = claimed
    return _check_tail(count, prev, head, version)


def entry_fast_hash(entry: LogEntry) -> str:
    """``entry_hash`` of an entry object by the hot path's route (``chain_hash``); the same bytes when
    its data's keys are sorted, as every entry the core makes - ``_check_body`` falls back to the
    canonical form whenever the two could differ (the hash does not match)."""
    return chain_hash(
        entry.schema_version,
        entry.consultation,
        entry.seq,
        entry.event,
        entry.source,
        entry.target,
        entry.actor,
        entry.role,
        timestamp(entry.at),
        entry.data,
        entry.input,
        entry.record_digest,
        entry.prev,
        entry.private,
        entry.salt,
    )


def _check_body(
    index: int,
    body: Mapping[str, Any],
    claimed: str,
    consultation: object,
    prev: str,
    state: object,
    known: str | None = None,
) -> str | None:
    """Why entry ``index`` (its hashed body and claimed hash) does not continue the chain, or None.
    ``known`` is the body's hash when the caller has it already."""
    seq = body.get("seq")
    if consultation is not None and body.get("consultation") != consultation:
        return "entry belongs to another consultation"
    try:
        actual = known if known is not None else entry_hash(body)
    except (TypeError, ValueError) as exc:
        return f"entry cannot be hashed: {exc}"
    if actual != claimed:
        return "entry was changed: its hash does not match"
    if seq != index + 1 or isinstance(seq, bool):
        return f"expected seq {index + 1}, found {seq}: removed or reordered"
    if body.get("prev") != prev:
        return "link broken: prev is not the hash of the entry before"
    if index > 0 and body.get("from") != state:
        return f"the entry starts in {body.get('from')!r} but the entry before ended in {state!r}"
    if index == 0 and body.get("from") is not None:
        return f"the first entry starts in {body.get('from')!r}, not before the proposal"
    return None


def _check_tail(count: int, prev: str, head: str | None, version: int | None) -> Verification:
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


_STORED_KEYS = frozenset(
    {
        "actor", "at", "consultation", "data", "event", "from", "input", "prev", "private", "record_digest",
        "role", "salt", "schema_version", "seq", "to",
    }
)  # fmt: skip
_PLAIN = ("consultation", "event", "to", "role", "at", "prev", "record_digest", "salt")


def _plain(value: object) -> bool:
    """A string ``chain_hash`` writes between quotes as it stands: nothing JSON escapes."""
    return type(value) is str and value.isprintable() and '"' not in value and "\\" not in value


def _stored_fast_hash(obj: Mapping[str, Any]) -> str | None:
    """``entry_hash`` of a parsed stored entry by ``chain_hash``, when that is sure to be the same
    bytes: the keys of an entry, each field of its type, no text that JSON would escape where
    ``chain_hash`` writes text as it stands. None otherwise (the caller hashes canonically)."""
    if obj.keys() != _STORED_KEYS:
        return None
    seq, version, private, source = obj["seq"], obj["schema_version"], obj["private"], obj["from"]
    if type(seq) is not int or type(version) is not int or type(private) is not list:
        return None
    if type(obj["data"]) is not dict or not (obj["input"] is None or type(obj["input"]) is dict):
        return None
    if type(obj["actor"]) is not str:
        return None
    try:  # every text written as it stands: one check over all of them (a non-text is a TypeError)
        plain = "".join([obj[k] for k in _PLAIN]) + "".join(private) + ("" if source is None else source)
    except TypeError:
        return None
    if not _plain(plain):
        return None
    try:
        return chain_hash(
            version, obj["consultation"], seq, obj["event"], source, obj["to"], obj["actor"], obj["role"], obj["at"],
            obj["data"], obj["input"], obj["record_digest"], obj["prev"], tuple(private), obj["salt"],
        )  # fmt: skip
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
