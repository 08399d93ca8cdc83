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

import contextlib
import hashlib
import json
import operator
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_core import TzInfo

from .errors import InvalidInput

__all__ = [
    "CASE_FILE_LISTS",
    "TIMESTAMP_PATTERN",
    "canonical_json",
    "canonical_value",
    "fields_digest",
    "parse_canonical",
    "record_digest",
    "remember_digest",
    "timestamp",
]

#: A canonical time, as a regular expression (``timestamp`` writes it).
TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


# Equal fixed-offset times are the same instant and have the same canonical text: remembered by value
# (a bounded cache). Only a fixed offset (``timezone``, pydantic's ``TzInfo``): two times in one zone
# with daylight saving compare by wall clock and could be equal yet an hour apart (``fold``).
_TIMES: dict[datetime, str] = {}
_FIXED_ZONES = (timezone, TzInfo)
_MAX_CACHED = 4096


def timestamp(value: datetime) -> str:
    """``value`` in the canonical time form: UTC, microseconds, ``Z`` (``2026-03-02T01:00:00.000000Z``)."""
    fixed = type(value) is datetime and type(value.tzinfo) in _FIXED_ZONES
    if fixed:
        hit = _TIMES.get(value)
        if hit is not None:
            return hit
    offset = value.utcoffset() if value.tzinfo is not None else None
    if offset is None:
        raise InvalidInput(f"times must be aware datetimes (with a time zone), got {value!r}")
    if offset:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(f"{value!r} is out of range once converted to UTC") from None
    # isoformat() always writes a four-digit year and seconds; the fraction is written here
    text = f"{value.isoformat()[:19]}.{value.microsecond:06d}Z"
    if fixed:
        if len(_TIMES) >= _MAX_CACHED:
            _TIMES.clear()
        _TIMES[value] = text
    return text


_quote: Callable[[str], str] = json.encoder.encode_basestring

V = TypeVar("V")


class _ByIdentity(Generic[V]):
    """A value remembered for as long as an immutable object lives, by the object's identity (a weak
    reference: the cache never keeps an object alive, and forgets it when it goes). A cache only:
    what it answers is what would be computed without it."""

    def __init__(self) -> None:
        self._items: dict[int, _Ref[V]] = {}

    def get(self, obj: object) -> V | None:
        hit = self._items.get(id(obj))
        return hit.value if hit is not None and hit() is obj else None

    def put(self, obj: object, value: V) -> None:
        ref: _Ref[V] = _Ref(obj, self._forget)
        ref.key = key = id(obj)
        ref.value = value
        self._items[key] = ref

    def _forget(self, ref: weakref.ref[object]) -> None:
        if isinstance(ref, _Ref) and self._items.get(ref.key) is ref:
            del self._items[ref.key]


class _Ref(weakref.ref[object], Generic[V]):
    """A weak reference that carries the key it is filed under and the value remembered."""

    __slots__ = ("key", "value")
    key: int
    value: V


# ---- the writers -------------------------------------------------------------------------------------------
# ``_text`` writes a value by its type alone, so each type's writer is chosen once (``_writer_for``) and
# looked up by type after that: no chain of type tests per value. Each writer does exactly what the rules
# in the module docstring say; tests/test_canonical.py holds them to a plain definition byte for byte.
Writer = Callable[[Any], str]
_WRITERS: dict[type, Writer] = {}


def _text(value: object) -> str:
    kind = type(value)
    return (_WRITERS.get(kind) or _writer_for(kind))(value)


def _null(_: object) -> str:
    return "null"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _dict_text(items: dict[Any, Any]) -> str:
    return "{" + ",".join([f"{_quote(str(k))}:{_text(items[k])}" for k in sorted(items)]) + "}"


def _seq_text(values: tuple[Any, ...] | list[Any]) -> str:
    writers = _WRITERS
    return "[" + ",".join([(writers.get(type(v)) or _writer_for(type(v)))(v) for v in values]) + "]"


def _time_text(value: datetime) -> str:
    return f'"{timestamp(value)}"'


def _generic_fields(fields: dict[str, Any]) -> str:
    return "{" + ",".join([f"{_quote(k)}:{_text(fields[k])}" for k in sorted(fields)]) + "}"


class _Fields:
    """How a record class is written: its field names in key order, each with its ``"key":`` prefix
    made once. A record whose fields are not exactly the class's is written the generic way."""

    __slots__ = ("count", "get", "keys", "prefixes")

    def __init__(self, kind: type[BaseModel]) -> None:
        self.keys = tuple(sorted(kind.model_fields))
        self.prefixes = tuple(f"{_quote(k)}:" for k in self.keys)
        self.count = len(self.keys)
        self.get = operator.itemgetter(*self.keys) if self.count > 1 else None

    def values(self, fields: dict[str, Any]) -> tuple[Any, ...] | None:
        """A record's field values in key order, or ``None`` if its fields are not the class's."""
        if self.get is None or len(fields) != self.count:
            return None
        try:
            found: tuple[Any, ...] = self.get(fields)
        except KeyError:  # as many fields, not the same ones
            return None
        return found

    def pieces(self, values: tuple[Any, ...]) -> list[str]:
        """The ``"key":value`` piece of each field, given ``values()``."""
        writers = _WRITERS
        return [
            p + (writers.get(type(v)) or _writer_for(type(v)))(v) for p, v in zip(self.prefixes, values, strict=True)
        ]

    def text(self, fields: dict[str, Any]) -> str:
        """The canonical JSON of a record's ``__dict__``."""
        values = self.values(fields)
        if values is None:
            return _generic_fields(fields)
        return "{" + ",".join(self.pieces(values)) + "}"


_FIELDS: dict[type, _Fields] = {}


def _fields_of(kind: type[BaseModel]) -> _Fields:
    found = _FIELDS.get(kind)
    if found is None:
        if len(_FIELDS) >= _MAX_CACHED:
            _FIELDS.clear()
        found = _FIELDS[kind] = _Fields(kind)
    return found


def _model_writer(kind: type[BaseModel]) -> Writer:
    fields = _fields_of(kind)

    def write(value: BaseModel) -> str:
        return fields.text(value.__dict__)

    return write


def _enum_writer(kind: type[Enum]) -> Writer:
    texts: dict[object, str] = {}
    for member in kind:
        with contextlib.suppress(TypeError, ValueError):  # written (and refused) when met
            texts[member] = _other_text(member)

    def write(value: Enum) -> str:
        found = texts.get(value) if type(value) is kind else None
        return _other_text(value) if found is None else found

    return write


def _writer_for(kind: type) -> Writer:
    """The writer of every value of type ``kind``, chosen as the rules say and remembered."""
    writer: Writer
    if kind is str:
        writer = _quote
    elif kind is int:
        writer = int.__repr__
    elif kind is type(None):
        writer = _null
    elif kind is bool:
        writer = _bool
    elif kind is dict:
        writer = _dict_text
    elif kind is tuple or kind is list:
        writer = _seq_text
    elif issubclass(kind, datetime):  # no weak references to times; their texts are cached by value
        writer = _time_text
    elif issubclass(kind, BaseModel):
        writer = _model_writer(kind)
    elif issubclass(kind, Enum) and issubclass(kind, str | int):
        writer = _enum_writer(kind)
    else:
        writer = _other_text
    if len(_WRITERS) >= _MAX_CACHED:
        _WRITERS.clear()
    _WRITERS[kind] = writer
    return writer


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


_STDLIB = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))


def parse_canonical(raw: str | bytes) -> tuple[dict[str, Any] | None, str]:
    """The object in ``raw`` if ``raw`` is exactly its canonical JSON, else (None, why not).

    This is what makes a check hash the stored bytes rather than a re-serialisation: a duplicated
    key, a float for an integer, an escaped character, a space or another key order are all
    reported, even where a lenient parser would read the same value."""
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    floats: list[str] = []

    def number(text: str) -> float:
        floats.append(text)  # never canonical: the writer below says why
        return float(text)

    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_no_constant, parse_float=number
        )
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object"
    if not floats:
        # JSON values without a float: the standard library's C encoder, keys sorted, writes exactly the
        # canonical bytes (the same string escaping, ``json.encoder.encode_basestring``; the stdlib check
        # of docs/integrity.md is this very definition) - fast; anything else takes the writer below
        try:
            if _STDLIB.encode(value).encode("utf-8") == data:
                return value, ""
        except (TypeError, ValueError):
            pass
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
    return (_VALUES.get(kind) or _value_for(kind))(value)


Converter = Callable[[Any], Any]
_VALUES: dict[type, Converter] = {}


def _seq_value(value: tuple[Any, ...] | list[Any]) -> list[Any]:
    return [canonical_value(v) for v in value]


def _model_value_of(kind: type[BaseModel]) -> Converter:
    fields = _fields_of(kind)

    def convert(value: BaseModel) -> dict[str, Any]:
        found = value.__dict__
        if len(found) != fields.count or not all(k in found for k in fields.keys):
            return {k: canonical_value(found[k]) for k in sorted(found)}
        return {k: canonical_value(found[k]) for k in fields.keys}

    return convert


def _enum_value_of(kind: type[Enum]) -> Converter:
    values = {member: member.value for member in kind}

    def convert(value: Enum) -> Any:
        try:
            return values[value]
        except KeyError:  # not a member made with the class
            return value.value

    return convert


def _same(value: object) -> object:
    return value


def _other_value(value: object) -> Any:
    if isinstance(value, tuple | list):
        return [canonical_value(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(canonical_value(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): canonical_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, Enum):
        return canonical_value(value.value)
    raise TypeError(f"cannot put {type(value).__name__} into canonical JSON")


def _value_for(kind: type) -> Converter:
    """The converter of every value of type ``kind`` (``canonical_value``), chosen once."""
    convert: Converter
    if kind is tuple or kind is list:
        convert = _seq_value
    elif issubclass(kind, BaseModel):
        convert = _model_value_of(kind)
    elif issubclass(kind, str):
        convert = _enum_value_of(kind) if issubclass(kind, Enum) else _same
    elif issubclass(kind, bool | int):
        convert = _same
    elif issubclass(kind, datetime):
        convert = timestamp
    elif issubclass(kind, Decimal):
        convert = str
    else:
        convert = _other_value
    if len(_VALUES) >= _MAX_CACHED:
        _VALUES.clear()
    _VALUES[kind] = convert
    return convert


# ---- the record digest -----------------------------------------------------------------------------------
_sha256 = hashlib.sha256
#: The case file's lists: in the digest, each item stands as the SHA-256 of its canonical JSON.
CASE_FILE_LISTS = frozenset(
    {"rounds", "decisions", "votes", "reviews", "publications", "progress", "feedback", "inspections"}
)
# Per item (by identity): its digest, as the JSON string that stands for it, and - for the last item
# of its list, the one the next step is likely to replace (the open round, the current decision) - the
# pieces of its text, so that the item replacing it writes only the fields it changed (and of a tuple
# that grew, an opinion added to a round, only the new members). Nothing else is remembered: a record
# an item holds is written when its item is, once a step.
# Kept as tuples of strings, which the cyclic garbage collector stops tracking.
_ITEM_DIGESTS: _ByIdentity[tuple[str, tuple[str, ...] | None]] = _ByIdentity()


def _differing(values: tuple[Any, ...], before: tuple[Any, ...]) -> list[int]:
    """The positions where ``values`` holds another object than ``before`` (found without a Python
    loop over the fields: a step changes one or two of them)."""
    flags = list(map(operator.is_not, values, before))
    found: list[int] = []
    i = -1
    for _ in range(flags.count(True)):
        i = flags.index(True, i + 1)
        found.append(i)
    return found


def _seq_piece(prefix: str, value: Any, old: Any, old_piece: str) -> str:
    """The piece of a field that holds a tuple, given the tuple it held before and that one's piece:
    a tuple that only added items to the old one writes only those (an opinion added to a round)."""
    if type(value) is tuple and type(old) is tuple and 0 < len(old) < len(value) and all(map(operator.is_, value, old)):
        return f"{old_piece[:-1]},{','.join([_text(v) for v in value[len(old) :]])}]"
    return prefix + _text(value)


def _item_digest(item: object, prior: object = None, keep: bool = False) -> str:
    """``item``'s digest; ``prior``, the item it replaced in its list, only makes it faster."""
    if not isinstance(item, BaseModel):
        return f'"{_sha256(_text(item).encode()).hexdigest()}"'
    hit = _ITEM_DIGESTS.get(item)
    if hit is not None:
        return hit[0]
    layout = _fields_of(type(item))
    values = layout.values(item.__dict__)
    if values is None:
        text = _generic_fields(item.__dict__)
        pieces = None
    else:
        known = _ITEM_DIGESTS.get(prior) if prior is not None and type(prior) is type(item) else None
        kept = known[1] if known is not None else None
        before = layout.values(prior.__dict__) if kept is not None else None
        if kept is not None and before is not None:
            pieces = list(kept)
            prefixes = layout.prefixes
            for i in _differing(values, before):
                pieces[i] = _seq_piece(prefixes[i], values[i], before[i], pieces[i])
        else:
            pieces = layout.pieces(values)
        text = "{" + ",".join(pieces) + "}"
    digest = f'"{_sha256(text.encode()).hexdigest()}"'
    _ITEM_DIGESTS.put(item, (digest, tuple(pieces) if keep and pieces is not None else None))
    return digest


class _Layout:
    """A record class as its digest is written: the fields but ``head`` in key order, and for each
    the writer of its ``"key":value`` piece."""

    __slots__ = ("index", "keys", "pieces")

    def __init__(self, kind: type[BaseModel]) -> None:
        self.keys = tuple(sorted(k for k in kind.model_fields if k != "head"))
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.pieces: tuple[PieceWriter, ...] = tuple(_piece_writer(k) for k in self.keys)


#: Writes a field's ``"key":value`` piece, given the value, and the value the record before held and
#: its piece (or None, "").
PieceWriter = Callable[[object, object, str], str]
_DIGEST_WIDTH = 66  # a digest in a case-file list: '"' + 64 hex digits + '"'


def _piece_writer(key: str) -> PieceWriter:
    prefix = f"{_quote(key)}:"

    def piece(value: object, old: object, old_piece: str) -> str:
        kind = type(value)
        return prefix + (_WRITERS.get(kind) or _writer_for(kind))(value)

    def listed(value: Any, old: Any, old_piece: str) -> str:
        if not isinstance(value, tuple | list):
            return piece(value, old, old_piece)
        last = len(value) - 1
        if not isinstance(old, tuple | list):
            return f"{prefix}[{','.join([_item_digest(v, None, i == last) for i, v in enumerate(value)])}]"
        count = len(old)
        # the items it shares, in front, with the list before keep their digests in its piece
        flags = list(map(operator.is_not, value, old))
        same = flags.index(True) if True in flags else len(flags)
        if same > 0 and old_piece.startswith(prefix):
            kept = old_piece[: len(prefix) + (_DIGEST_WIDTH + 1) * same]
            rest = [_item_digest(value[i], old[i] if i < count else None, i == last) for i in range(same, last + 1)]
            return f"{kept}{',' if rest else ''}{','.join(rest)}]"
        digests = [_item_digest(v, old[i] if i < count else None, i == last) for i, v in enumerate(value)]
        return f"{prefix}[{','.join(digests)}]"

    return listed if key in CASE_FILE_LISTS else piece


_LAYOUTS: dict[type, _Layout] = {}


def _layout(kind: type[BaseModel]) -> _Layout:
    found = _LAYOUTS.get(kind)
    if found is None:
        if len(_LAYOUTS) >= _MAX_CACHED:
            _LAYOUTS.clear()
        found = _LAYOUTS[kind] = _Layout(kind)
    return found


# Per record (by identity): the canonical ``"key":value`` piece of each field, in key order, and the
# digest. A step changes a few fields; the others hold the very objects of the record before, whose
# pieces are reused.
Pieces = tuple[tuple[str, ...], str]
_RECORDS: _ByIdentity[Pieces] = _ByIdentity()


def fields_digest(
    kind: type[BaseModel],
    fields: Mapping[str, Any],
    base: BaseModel | None = None,
    changed: Iterable[str] | None = None,
) -> Pieces:
    """``record_digest`` of the record of class ``kind`` with these ``fields`` (every field of the
    class), with the pieces it was made of (for ``remember_digest``) - before the record is made.

    ``base``, the record these fields were made from, only makes it faster: a field holding the
    very object it held in ``base`` is not written again. ``changed`` (with ``base``) names the
    fields that may not: the caller vouches that every other one holds ``base``'s very object."""
    layout = _layout(kind)
    known = _RECORDS.get(base) if base is not None and type(base) is kind else None
    if known is None or base is None:
        pieces = [write(fields[k], None, "") for k, write in zip(layout.keys, layout.pieces, strict=True)]
    else:
        pieces = list(known[0])
        writers, index = layout.pieces, layout.index
        before = base.__dict__
        if changed is None:
            for i, k in enumerate(layout.keys):
                if fields[k] is not before[k]:
                    pieces[i] = writers[i](fields[k], before[k], pieces[i])
        else:
            for k in changed:
                i = index.get(k, -1)
                if i >= 0 and fields[k] is not before.get(k):
                    pieces[i] = writers[i](fields[k], before.get(k), pieces[i])
    # a tuple of strings: the cyclic garbage collector stops tracking it
    return tuple(pieces), _sha256(("{" + ",".join(pieces) + "}").encode()).hexdigest()


def remember_digest(record: BaseModel, known: Pieces) -> None:
    """Remember ``fields_digest``'s answer for the record made of those fields (or one that differs
    from them in ``head`` only): the next step's digest starts from it."""
    _RECORDS.put(record, known)


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
    known = fields_digest(type(record), record.__dict__, base)
    _RECORDS.put(record, known)
    return known[1]
