"""The JSON a store writes, public for anyone writing a store.

- ``entry_json(entry)``: a log entry in its canonical exported form (sorted keys, no spaces, UTF-8,
  ``from``/``to``): the bytes ``verify`` hashes, and what ``LogEntry.model_validate_json`` reads back;
- ``RecordEncoder``: a record's JSON, re-serialising only what changed since the consultation's
  last record.

A step changes a record in one or two places: the rest of the case file (earlier rounds, decisions,
reviews, ...) is the very same immutable objects as in the record before. Serialising a whole
record costs about as much as the database write itself, so the encoder remembers, per
consultation, the JSON of each sub-record it last wrote and reuses it when the object is the same
one (``is``: frozen records never change, so the same object has the same JSON). The output parses
back to a record equal to ``model_dump_json``'s; only the key order differs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pydantic_core import to_json

from ..log import entry_json
from ..records import Consultation, Record

__all__ = ["RecordEncoder", "entry_json"]

_CASE_FILE = ("rounds", "decisions", "reviews", "publications", "progress", "feedback", "inspections")
_EXCLUDE = set(_CASE_FILE)

_Parts = dict[int, tuple[Record, str]]  # id(sub-record) -> (sub-record, its JSON)


class RecordEncoder:
    """``encode(record)`` gives the record's JSON; remembers up to ``size`` consultations."""

    def __init__(self, size: int = 256) -> None:
        self._size = max(size, 0)
        self._parts: OrderedDict[str, _Parts] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, record: Consultation) -> str:
        if not self._size:
            return record.model_dump_json()
        with self._lock:
            known = self._parts.pop(record.id, None) or {}
        fresh: _Parts = {}
        pieces = [record.model_dump_json(exclude=_EXCLUDE)[:-1]]
        values = record.__dict__
        for name in _CASE_FILE:
            items = values[name]
            texts = []
            for item in items:
                hit = known.get(id(item))
                if hit is None or hit[0] is not item:
                    hit = (item, to_json(item).decode())
                fresh[id(item)] = hit
                texts.append(hit[1])
            pieces.append(f',"{name}":[{",".join(texts)}]')
        pieces.append("}")
        with self._lock:
            self._parts[record.id] = fresh
            while len(self._parts) > self._size:
                self._parts.popitem(last=False)
        return "".join(pieces)

    def forget(self) -> None:
        with self._lock:
            self._parts.clear()
