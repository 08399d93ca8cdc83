"""A store that keeps everything as JSON strings in dicts: the shape of any key-value backend
(Redis, a document store, a government platform's API). It passes ``consultflow.testing``.

Swap the dicts for your backend and keep the order: check everything before writing anything, then
write the step whole; refuse a stale version with ``Conflict``; raise only the library's errors.
The checks and the JSON come from ``consultflow.storage``, so this store refuses what the shipped
stores refuse, in the same words.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from consultflow import Conflict, Consultation, IntegrityError, LogEntry, NotFound, Notice, Query, Step
from consultflow.funds import FundPosition, LedgerRow
from consultflow.storage import FundBook, RecordEncoder, Settlement, check_settlement, check_step, entry_json
from consultflow.storage.checks import (
    FINAL_NOTICE_STATES,
    check_aware,
    check_count,
    check_position,
    check_settled_again,
    closed_error,
    leased_again_error,
    release_error,
)


class JsonStore:
    def __init__(self) -> None:
        self._records: dict[str, str] = {}  # id -> Consultation as JSON
        self._logs: dict[str, list[str]] = {}  # id -> its entries' canonical JSON, in seq order
        self._outbox: dict[str, str] = {}  # key -> Notice as JSON, in the order written
        self._encoder = RecordEncoder()  # re-serialises only the parts of a record a step changed
        self._fund = FundBook()  # the fund ledger (微幸福台账): a row per funds entry, written with its step
        self._lock = threading.Lock()  # one writer at a time: this is the "transaction"
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error(self)

    def load(self, consultation: str) -> Consultation:
        with self._lock:
            self._check_open()
            text = self._records.get(consultation)
        if text is None:
            raise NotFound(consultation)
        return Consultation.model_validate_json(text)

    def append(self, step: Step, expected_version: int) -> None:
        cid = step.record.id
        # Serialise first: nothing may fail once writing has begun.
        record = self._encoder.encode(step.record)
        entries = [entry_json(e) for e in step.entries]  # the very bytes the hash chain covers
        notices = {n.key: n.model_dump_json() for n in step.notices}
        with self._lock:
            self._check_open()
            stored = self._records.get(cid)
            current = None if stored is None else Consultation.model_validate_json(stored)
            actual = None if current is None else current.version
            if (actual or 0) != expected_version or (current is None) != (expected_version == 0):
                raise Conflict(cid, expected_version, actual)
            check_step(step, expected_version, "" if current is None else current.head)
            if len(notices) != len(step.notices) or any(key in self._outbox for key in notices):
                raise IntegrityError(f"a notice key of {cid!r} is already in the outbox; nothing was written")
            rows = self._fund.check(step, expected_version)  # an allocation's place taken: FundConflict
            self._logs.setdefault(cid, []).extend(entries)
            self._outbox.update(notices)
            self._fund.add(rows)
            self._records[cid] = record  # last: once the record shows, its log is there

    def entries(self, consultation: str, after: int = 0) -> Sequence[LogEntry]:
        check_position(after, "entries(after)")
        with self._lock:
            self._check_open()
            log = self._logs.get(consultation)
            texts = None if log is None else log[max(after, 0) :]
        if texts is None:
            raise NotFound(consultation)
        return [LogEntry.model_validate_json(t) for t in texts]

    def find(self, query: Query) -> Sequence[Consultation]:
        if query.due_before is not None:
            check_aware(query.due_before, "Query.due_before")
        with self._lock:
            self._check_open()
            texts = list(self._records.values())
        found = sorted(
            (r for r in map(Consultation.model_validate_json, texts) if query.matches(r)),
            key=lambda r: (r.proposed_at, r.id),
        )
        return found if query.limit is None else found[: query.limit]

    def fund_position(self, community: str, year: int) -> FundPosition:
        with self._lock:
            self._check_open()
            return self._fund.position(community, year)

    def fund_entries(self, consultation: str) -> Sequence[LedgerRow]:
        with self._lock:
            self._check_open()
            return self._fund.rows(consultation)

    def lease(self, limit: int, now: datetime, lease_for: timedelta = timedelta(minutes=5)) -> Sequence[Notice]:
        check_count(limit, "lease(limit)")
        check_aware(now, "lease(now)")
        leased: list[Notice] = []
        with self._lock:
            self._check_open()
            for key, text in self._outbox.items():
                if len(leased) >= limit:
                    break
                n = Notice.model_validate_json(text)
                due = n.not_before is None or n.not_before <= now
                if n.status in ("pending", "leased") and due:
                    n = n.model_copy(
                        update={"status": "leased", "attempts": n.attempts + 1, "not_before": now + lease_for}
                    )
                    self._outbox[key] = n.model_dump_json()
                    leased.append(n)
        return leased

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
        # check_settlement checks the arguments and says what to write: (status, not_before, last_error)
        status, not_before, last_error = check_settlement(outcome, now, retry_at, error, attempt)
        with self._lock:
            self._check_open()
            text = self._outbox.get(key)
            if text is None:
                raise NotFound(key, what="notice")
            notice = Notice.model_validate_json(text)
            if notice.status in FINAL_NOTICE_STATES:  # only the same outcome again is accepted
                check_settled_again(key, notice.status, status)
                return
            if attempt is not None and notice.attempts != attempt:  # leased again since: a stale lease
                raise leased_again_error(key, notice.attempts, attempt)
            changes: dict[str, object] = {"status": status, "not_before": not_before, "last_error": last_error}
            if outcome == "release":  # it was not tried: give the lease's attempt back, keep the last error
                if notice.status != "leased":
                    raise release_error(key, notice.status)
                changes = {"status": status, "not_before": not_before, "attempts": notice.attempts - 1}
            self._outbox[key] = notice.model_copy(update=changes).model_dump_json()

    def close(self) -> None:
        self._closed = True
