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
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

from .errors import InvalidInput

__all__ = [
    "TIMESTAMP_PATTERN",
    "canonical_json",
    "canonical_value",
    "parse_canonical",
    "record_digest",
    "timestamp",
]

#: A canonical time, as a regular expression (``timestamp`` writes it).
TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def timestamp(value: datetime) -> str:
    """``value`` in the canonical time form: UTC, microseconds, ``Z`` (``2026-03-02T01:00:00.000000Z``)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"times must be aware datetimes (with a time zone), got {value!r}")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{value!r} is out of range once converted to UTC") from None
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} into canonical JSON; use JSON values")


def _check_no_floats(obj: object) -> None:
    stack = [obj]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            raise ValueError(f"canonical JSON has no floats ({v!r}); write a decimal as a string")
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)


def canonical_json(obj: object) -> bytes:
    """The canonical bytes of ``obj`` (JSON values; datetimes and Decimals are converted)."""
    _check_no_floats(obj)
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    ).encode("utf-8")


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
    """A record, command or value as canonical JSON values: models as objects of their fields,
    times as ``timestamp``, decimals as strings, enums as their values, tuples and sets as lists
    (sets sorted)."""
    if isinstance(value, BaseModel):
        return {k: canonical_value(v) for k, v in value.__dict__.items()}
    if isinstance(value, str):
        return value.value if isinstance(value, Enum) else value
    if value is None or isinstance(value, bool | int):
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
        return {str(k): canonical_value(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return canonical_value(value.value)
    raise TypeError(f"cannot put {type(value).__name__} into canonical JSON")


# ---- the record digest -----------------------------------------------------------------------------
# The case file's lists grow one item at a time and their items are immutable: each item's digest
# is computed once and remembered by identity (the object is kept, so its id is never reused).
_LISTS = ("rounds", "decisions", "votes", "reviews", "publications", "progress", "feedback", "inspections")
_ITEM_DIGESTS: dict[int, tuple[object, str]] = {}
_MAX_ITEMS = 65_536
_sha256 = hashlib.sha256


def _item_digest(item: object) -> str:
    hit = _ITEM_DIGESTS.get(id(item))
    if hit is not None and hit[0] is item:
        return hit[1]
    digest = _sha256(canonical_json(canonical_value(item))).hexdigest()
    if len(_ITEM_DIGESTS) >= _MAX_ITEMS:
        _ITEM_DIGESTS.clear()
    _ITEM_DIGESTS[id(item)] = (item, digest)
    return digest


def record_digest(record: BaseModel) -> str:
    """SHA-256 (hex) binding a consultation record into the last log entry of the step that made
    it (``LogEntry.record_digest``).

    It is the SHA-256 of the record's canonical JSON without ``head`` (the hash of that very entry),
    in which each item of the case-file lists (rounds, decisions, votes, reviews, publications,
    progress, feedback, inspections) is replaced by the SHA-256 (hex) of the item's own canonical JSON.
    """
    values = record.__dict__
    top: dict[str, Any] = {}
    for name, value in values.items():
        if name == "head":
            continue
        if name in _LISTS:
            top[name] = [_item_digest(item) for item in value]
        else:
            top[name] = canonical_value(value)
    return _sha256(canonical_json(top)).hexdigest()
