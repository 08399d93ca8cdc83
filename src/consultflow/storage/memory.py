"""The in-memory store: for tests, simulations and trying things out. Same contract as the others;
nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import JsonValue

from ..errors import Conflict, IntegrityError, NotFound
from ..funds import FundPosition, LedgerRow
from ..log import LogEntry
from ..notices import Notice, NoticeStatus
from ..records import Consultation, make
from ..step import Step
from .base import Query, Settlement
from .checks import (
    FINAL_NOTICE_STATES,
    check_aware,
    check_count,
    check_enqueue,
    check_key,
    check_notice_status,
    check_position,
    check_settled_again,
    check_settlement,
    check_step,
    closed_error,
    lease_until,
    leased_again_error,
    not_dead_error,
    release_error,
)
from .ledger import FundBook

__all__ = ["MemoryStore"]


def _copy(value: JsonValue) -> JsonValue:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value  # str, int, float, bool, None: immutable


def _own(entry: LogEntry) -> LogEntry:
    """A copy of ``entry`` that shares no mutable part with it: an entry's ``data`` is a dict, and
    what a caller does to the one it holds must never change the stored log (or the other way)."""
    values = entry.__dict__.copy()
    values["data"] = _copy(entry.data)
    return make(LogEntry, values)


class MemoryStore:
    """Consultations, logs and outbox in dicts, behind one lock.

    A step's entries and notices are in place before its record is, so a reader that sees a
    record always finds its log (the same guarantee a transaction gives the other stores). Entries
    go in and come out as copies: nothing a caller holds aliases the stored log.
    """

    def __init__(self) -> None:
        self._records: dict[str, Consultation] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._outbox: dict[str, Notice] = {}
        self._fund = FundBook()  # 微幸福: the fund ledger, a projection of the funds entries
        self._lock = threading.Lock()
        self._closed = False

    def load(self, consultation: str) -> Consultation:
        check_key(consultation, "load(consultation)")
        if self._closed:
            raise closed_error(self)
        try:
            return self._records[consultation]
        except KeyError:
            raise NotFound(consultation) from None

    def load_many(self, consultations: Iterable[str]) -> dict[str, Consultation]:
        """The records of ``consultations`` that exist, by id (what ``load`` gives; an id not stored
        is left out): the batch read a dispatcher uses when a store offers it."""
        ids = [check_key(c, "load_many(consultations)") for c in consultations]
        if self._closed:
            raise closed_error(self)
        records = self._records
        return {cid: records[cid] for cid in ids if cid in records}

    def append(self, step: Step, expected_version: int) -> None:
        with self._lock:
            if self._closed:
                raise closed_error(self)
            self._check(step, expected_version, self._records, set())
            rows = self._fund.check(step, expected_version)
            self._write(step)
            self._fund.add(rows)

    def append_many(self, steps: Iterable[Step]) -> None:
        """Append several steps (of one or many consultations) at once: all, or none. Each is
        expected at the version it was made from (``Step.expected_version``)."""
        batch = list(steps)
        with self._lock:
            if self._closed:
                raise closed_error(self)
            records = dict(self._records)
            keys: set[str] = set()
            taken: set[tuple[str, int, int]] = set()
            rows: list[LedgerRow] = []
            for step in batch:
                self._check(step, step.expected_version, records, keys)
                rows.extend(self._fund.check(step, step.expected_version, taken))
                records[step.record.id] = step.record
                keys.update(n.key for n in step.notices)
            for step in batch:
                self._write(step)
            self._fund.add(rows)

    def _check(self, step: Step, expected: int, records: dict[str, Consultation], keys: set[str]) -> None:
        cid = step.record.id
        current = records.get(cid)
        actual = None if current is None else current.version
        if (actual or 0) != expected or (current is None) != (expected == 0):
            raise Conflict(cid, expected, actual)
        check_step(step, expected, "" if current is None else current.head)
        for notice in step.notices:
            if notice.key in self._outbox or notice.key in keys:
                raise IntegrityError(
                    f"notice key {notice.key!r} of {cid!r} is already in the outbox; keys must be unique "
                    "(they are the idempotency keys channels deliver by)"
                )
            keys.add(notice.key)

    def _write(self, step: Step) -> None:
        record = step.record
        entries = [_own(e) for e in step.entries]  # the caller's step keeps its objects, the log its own
        log = self._logs.get(record.id)
        if log is None:
            self._logs[record.id] = entries
        else:
            log.extend(entries)
        for notice in step.notices:
            self._outbox[notice.key] = notice
        self._records[record.id] = record  # last: the step is visible once its record is

    def entries(self, consultation: str, after: int = 0) -> Sequence[LogEntry]:
        check_key(consultation, "entries(consultation)")
        check_position(after, "entries(after)")
        if self._closed:
            raise closed_error(self)
        log = self._logs.get(consultation)
        if log is None:
            raise NotFound(consultation)
        return tuple(_own(e) for e in (log[after:] if after > 0 else log))

    def find(self, query: Query) -> Sequence[Consultation]:
        if self._closed:
            raise closed_error(self)
        if query.due_before is not None:
            check_aware(query.due_before, "Query.due_before")
        found = sorted(
            (r for r in list(self._records.values()) if query.matches(r)), key=lambda r: (r.proposed_at, r.id)
        )
        return tuple(found if query.limit is None else found[: query.limit])

    def fund_position(self, community: str, year: int) -> FundPosition:
        """What the fund ledger holds for (community, year) (微幸福; ``storage.ledger.FundLedger``)."""
        check_key(community, "fund_position(community)")
        if self._closed:
            raise closed_error(self)
        with self._lock:
            return self._fund.position(community, year)

    def fund_entries(self, consultation: str) -> Sequence[LedgerRow]:
        """The fund ledger rows of one consultation, in log order."""
        check_key(consultation, "fund_entries(consultation)")
        if self._closed:
            raise closed_error(self)
        with self._lock:
            return self._fund.rows(consultation)

    def lease(self, limit: int, now: datetime, lease_for: timedelta = timedelta(minutes=5)) -> Sequence[Notice]:
        check_count(limit, "lease(limit)")
        until = lease_until(now, lease_for)
        leased: list[Notice] = []
        with self._lock:
            if self._closed:
                raise closed_error(self)
            for key, n in self._outbox.items():
                if len(leased) >= limit:
                    break
                ready = n.status == "pending" and (n.not_before is None or n.not_before <= now)
                expired = n.status == "leased" and n.not_before is not None and n.not_before <= now
                if ready or expired:
                    taken = n.model_copy(update={"status": "leased", "attempts": n.attempts + 1, "not_before": until})
                    self._outbox[key] = taken
                    leased.append(taken)
        return tuple(leased)

    def settle(
        self,
        key: str,
        outcome: Settlement,
        *,
        now: datetime,
        retry_at: datetime | None = None,
        error: str = "",
        attempt: int | None = None,
    ) -> None:
        check_key(key, "settle(key)")
        status, not_before, last_error = check_settlement(outcome, now, retry_at, error, attempt)
        with self._lock:
            if self._closed:
                raise closed_error(self)
            n = self._outbox.get(key)
            if n is None:
                raise NotFound(key, what="notice")
            if n.status in FINAL_NOTICE_STATES:
                check_settled_again(key, n.status, status)
                return
            if attempt is not None and n.attempts != attempt:
                raise leased_again_error(key, n.attempts, attempt)
            changes: dict[str, object] = {"status": status, "not_before": not_before, "last_error": last_error}
            if outcome == "release":  # not tried: the lease's attempt is given back, the last error kept
                if n.status != "leased":
                    raise release_error(key, n.status)
                changes = {"status": status, "not_before": not_before, "attempts": n.attempts - 1}
            self._outbox[key] = n.model_copy(update=changes)

    def outbox(self, *, status: NoticeStatus | None = None) -> Sequence[Notice]:
        """Every notice (or those in ``status``), in the order written (for tests and inspection)."""
        check_notice_status(status)
        with self._lock:
            return tuple(n for n in self._outbox.values() if status is None or n.status == status)

    def enqueue(self, notices: Sequence[Notice]) -> int:
        """Add notices that belong to no step (reminders: 提醒), each only if its key is not in the
        outbox yet; returns how many were added. Many callers may enqueue the same key at once: it
        is added once, so a reminder is sent once per deadline."""
        items = check_enqueue(notices)
        with self._lock:
            if self._closed:
                raise closed_error(self)
            added = 0
            for n in items:
                if n.key not in self._outbox:
                    self._outbox[n.key] = n
                    added += 1
            return added

    def requeue(self, key: str, *, now: datetime) -> None:
        """Send a dead letter again: pending from ``now``, its attempts counted afresh, its last
        error kept until the next attempt. ``NotFound`` for an unknown key, ``IntegrityError`` for a
        notice that is not dead."""
        check_key(key, "requeue(key)")
        check_aware(now, "requeue(now=...)")
        with self._lock:
            if self._closed:
                raise closed_error(self)
            n = self._outbox.get(key)
            if n is None:
                raise NotFound(key, what="notice")
            if n.status != "dead":
                raise not_dead_error(key, n.status)
            self._outbox[key] = n.model_copy(update={"status": "pending", "attempts": 0, "not_before": now})

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Refuse further calls (``StoreUnavailable``); the data stays readable via ``outbox()``."""
        self._closed = True
