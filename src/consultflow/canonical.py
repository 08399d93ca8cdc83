"""The canonical form (规范形式): the one byte form that is hashed, defined here and nowhere else.

A value's canonical JSON is:

- UTF-8, no byte order mark; JSON as RFC 8259 with no insignificant whitespace (``,`` and ``:``
  alone as separators) and non-ASCII characters written as themselves (only ``"``, ``\\`` and
  control characters are escaped, as Python's ``json`` escapes them);
- object keys sorted by code point, each key once;
- numbers are integers only (no fraction, no exponent, no ``NaN``): a decimal amount is a
  string (``"1200.50"``), a float is refused;
- a time is a string in UTC with microseconds, always the same width:
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``timestamp``); input times in any zone, even one whose offset
  has seconds, are converted to it before hashing.

``docs/integrity.md`` states the form for readers in other languages, with a check that needs
only the Python standard library. ``record_digest`` binds a consultation record into its log.
"""

from __future__ import annotations

import hashlib
import json
import re
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .errors import InvalidInput

__all__ = [
    "CASE_FILE_LISTS",
    "TIMESTAMP_PATTERN",
    "canonical_json",
    "canonical_value",
    "parse_canonical",
    "record_digest",
    "same_digest",
    "timestamp",
]

#: A canonical time, as a regular expression (``timestamp`` writes it).
TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def timestamp(value: datetime) -> str:
    """``value`` in the canonical time form: UTC, microseconds, ``Z`` (``2026-03-02T01:00:00.000000Z``)."""
    offset = value.utcoffset() if value.tzinfo is not None else None
    if offset is None:
        raise InvalidInput(f"times must be aware datetimes (with a time zone), got {value!r}")
    if offset:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(f"{value!r} is out of range once converted to UTC") from None
    # isoformat() always writes a four-digit year and seconds; the fraction is written here
    return f"{value.isoformat()[:19]}.{value.microsecond:06d}Z"


_quote: Callable[[str], str] = json.encoder.encode_basestring

V = TypeVar("V")


class _ByIdentity(Generic[V]):
    """A value remembered for as long as an immutable object lives, by the object's identity (a weak
    reference: the cache never keeps an object alive, and forgets it when it goes). A cache only:
    what it answers is what would be computed without it."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref[object], V]] = {}

    def get(self, obj: object) -> V | None:
        hit = self._items.get(id(obj))
        return hit[1] if hit is not None and hit[0]() is obj else None

    def put(self, obj: object, value: V) -> None:
        key = id(obj)
        items = self._items

        def forget(_: weakref.ref[object]) -> None:
            items.pop(key, None)

        items[key] = (weakref.ref(obj, forget), value)


# A record's sub-records are immutable and shared between the record before a step and the one
# after: each one's canonical text is made once and remembered while the object lives.
_MODEL_TEXTS: _ByIdentity[str] = _ByIdentity()


_CACHED = 1  # a record or a time: immutable, its text remembered by identity
_OTHER = 2
_KINDS: dict[type, int] = {}


def _kind(kind: type) -> int:
    found = _KINDS.get(kind)
    if found is None:
        found = _KINDS[kind] = _CACHED if issubclass(kind, BaseModel | datetime) else _OTHER
    return found


def _text(value: object) -> str:
    kind = type(value)
    if kind is str:
        return _quote(value)  # type: ignore[arg-type]
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is dict:
        items: dict[Any, Any] = value  # type: ignore[assignment]
        return "{" + ",".join([f"{_quote(str(k))}:{_text(items[k])}" for k in sorted(items)]) + "}"
    if kind is tuple or kind is list:
        return "[" + ",".join([_text(v) for v in value]) + "]"  # type: ignore[attr-defined]
    if _kind(kind) == _CACHED:
        if isinstance(value, datetime):  # no weak references to times; cheap to write anyway
            return f'"{timestamp(value)}"'
        text = _MODEL_TEXTS.get(value)
        if text is None:
            fields = value.__dict__
            text = "{" + ",".join([f"{_quote(k)}:{_text(fields[k])}" for k in sorted(fields)]) + "}"
            _MODEL_TEXTS.put(value, text)
        return text
    return _other_text(value)


def _other_text(value: object) -> str:
    if isinstance(value, str):
        return _quote(value.value if isinstance(value, Enum) else value)
    if isinstance(value, bool | int):
        return _text(bool(value) if isinstance(value, bool) else int(value))
    if isinstance(value, Mapping):
        return _text({str(k): v for k, v in value.items()})
    if isinstance(value, list | tuple):
        return "[" + ",".join([_text(v) for v in value]) + "]"
    if isinstance(value, Decimal):
        return _quote(str(value))
    if isinstance(value, frozenset | set):
        return "[" + ",".join([_text(v) for v in sorted(canonical_value(v) for v in value)]) + "]"
    if isinstance(value, Enum):
        return _text(value.value)
    if isinstance(value, float):
        raise ValueError(f"canonical JSON has no floats ({value!r}); write a decimal as a string")
    raise TypeError(f"cannot put {type(value).__name__} into canonical JSON; use JSON values")


def canonical_json(obj: object) -> bytes:
    """The canonical bytes of ``obj`` (JSON values; records, datetimes, Decimals and enums are
    converted as ``canonical_value`` says). A float, NaN or another type is an error."""
    return _text(obj).encode("utf-8")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_canonical(raw: str | bytes) -> tuple[dict[str, Any] | None, str]:
    """The object in ``raw`` if ``raw`` is exactly its canonical JSON, else (None, why not).

    This is what makes a check hash the stored bytes rather than a re-serialisation: a duplicated
    key, a float for an integer, an escaped character, a space or another key order are all
    reported, even where a lenient parser would read the same value."""
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object"
    try:
        again = canonical_json(value)
    except (TypeError, ValueError) as exc:
        return None, f"not in canonical form: {exc}"
    if again != data:
        return None, "not in canonical form (sorted keys, no spaces, integers, UTF-8): the stored bytes were changed"
    return value, ""


def canonical_value(value: object) -> Any:
    """A record, command or value as canonical JSON values: models as objects of their fields (keys
    in sorted order, as in every object it returns), times as ``timestamp``, decimals as strings,
    enums as their values, tuples and sets as lists (sets sorted)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is tuple or kind is list:
        return [canonical_value(v) for v in value]  # type: ignore[attr-defined]
    if isinstance(value, BaseModel):
        fields = value.__dict__
        return {k: canonical_value(fields[k]) for k in sorted(fields)}
    if isinstance(value, str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, bool | int):
        return value
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [canonical_value(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(canonical_value(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): canonical_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, Enum):
        return canonical_value(value.value)
    raise TypeError(f"cannot put {type(value).__name__} into canonical JSON")


# ---- the record digest -----------------------------------------------------------------------------------
_sha256 = hashlib.sha256
# Per record (by identity): the canonical ``"key":value`` piece of each field, in key order, and the
# digest. A step changes a few fields; the others hold the very objects of the record before, whose
# pieces are reused.
_RECORDS: _ByIdentity[tuple[list[str], str]] = _ByIdentity()
_KEYS: dict[type, tuple[str, ...]] = {}
#: The case file's lists: in the digest, each item stands as the SHA-256 of its canonical JSON.
CASE_FILE_LISTS = frozenset(
    {"rounds", "decisions", "votes", "reviews", "publications", "progress", "feedback", "inspections"}
)
_ITEM_DIGESTS: _ByIdentity[str] = _ByIdentity()


def _item_digest(item: object) -> str:
    digest = _ITEM_DIGESTS.get(item)
    if digest is None:
        # the item's own text is not kept (its digest is); the texts of what it holds are
        fields = item.__dict__ if isinstance(item, BaseModel) else None
        if fields is None:
            text = _text(item)
        else:
            text = "{" + ",".join([f"{_quote(k)}:{_text(fields[k])}" for k in sorted(fields)]) + "}"
        digest = _sha256(text.encode()).hexdigest()
        _ITEM_DIGESTS.put(item, digest)
    return digest


def _piece(key: str, value: object) -> str:
    if key in CASE_FILE_LISTS and isinstance(value, tuple | list):
        return f"{_quote(key)}:[{','.join(f'{chr(34)}{_item_digest(v)}{chr(34)}' for v in value)}]"
    return f"{_quote(key)}:{_text(value)}"


def _keys(record: BaseModel) -> tuple[str, ...]:
    keys = _KEYS.get(type(record))
    if keys is None:
        keys = _KEYS[type(record)] = tuple(sorted(k for k in type(record).model_fields if k != "head"))
    return keys


def record_digest(record: BaseModel, base: BaseModel | None = None) -> str:
    """SHA-256 (hex) binding a consultation record into the last log entry of the step that made it
    (``LogEntry.record_digest``): of the record's canonical JSON without ``head`` (the hash of that
    very entry), in which each item of the case-file lists (``CASE_FILE_LISTS``: rounds, decisions,
    votes, reviews, publications, progress, feedback, inspections) stands as the SHA-256 (hex) of its
    own canonical JSON - so a step hashes what it changed, not the whole case file again.

    ``base``, the record this one was made from, only makes it faster: a field holding the very
    object it held in ``base`` is not written again."""
    hit = _RECORDS.get(record)
    if hit is not None:
        return hit[1]
    fields = record.__dict__
    keys = _keys(record)
    known = _RECORDS.get(base) if base is not None else None
    if known is not None and base is not None and type(base) is type(record):
        before = base.__dict__
        pieces = known[0].copy()
        for i, k in enumerate(keys):
            if fields[k] is not before[k]:
                pieces[i] = _piece(k, fields[k])
    else:
        pieces = [_piece(k, fields[k]) for k in keys]
    digest = _sha256(("{" + ",".join(pieces) + "}").encode()).hexdigest()
    _RECORDS.put(record, (pieces, digest))
    return digest


def same_digest(record: BaseModel, source: BaseModel) -> None:
    """Remember that ``record`` has the digest of ``source``, which differs from it in ``head`` only
    (a step stamps its record's head once the digest is in the log)."""
    hit = _RECORDS.get(source)
    if hit is not None:
        _RECORDS.put(record, hit)
