"""The in-memory store: for tests, simulations and trying things out. Same contract as the others;
nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from ..core import Step
from ..errors import Conflict, NotFound
from ..log import LogEntry
from ..notices import Notice
from ..records import Consultation
from .base import Query, Settlement, check_step

__all__ = ["MemoryStore"]


class MemoryStore:
    """Consultations, logs and outbox in dicts, behind one lock."""

    def __init__(self) -> None:
        self._records: dict[str, Consultation] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._outbox: dict[str, Notice] = {}
        self._lock = threading.Lock()

    def load(self, consultation: str) -> Consultation:
        try:
            return self._records[consultation]
        except KeyError:
            raise NotFound(consultation) from None

    def append(self, step: Step, expected_version: int) -> None:
        record = step.record
        cid = record.id
        with self._lock:
            current = self._records.get(cid)
            actual = None if current is None else current.version
            if (actual or 0) != expected_version or (current is None) != (expected_version == 0):
                raise Conflict(cid, expected_version, actual)
            check_step(step, expected_version, "" if current is None else current.head)
            self._records[cid] = record
            log = self._logs.get(cid)
            if log is None:
                self._logs[cid] = list(step.entries)
            else:
                log.extend(step.entries)
            for notice in step.notices:
                self._outbox[notice.key] = notice

    def entries(self, consultation: str, after: int = 0) -> Sequence[LogEntry]:
        log = self._logs.get(consultation)
        if log is None:
            raise NotFound(consultation)
        return tuple(log[after:]) if after > 0 else tuple(log)

    def find(self, query: Query) -> Sequence[Consultation]:
        found = sorted(
            (r for r in list(self._records.values()) if query.matches(r)), key=lambda r: (r.proposed_at, r.id)
        )
        return tuple(found if query.limit is None else found[: query.limit])

    def lease(self, limit: int, now: datetime, lease_for: timedelta = timedelta(minutes=5)) -> Sequence[Notice]:
        leased: list[Notice] = []
        with self._lock:
            for key, n in self._outbox.items():
                if len(leased) >= limit:
                    break
                ready = n.status == "pending" and (n.not_before is None or n.not_before <= now)
                expired = n.status == "leased" and n.not_before is not None and n.not_before <= now
                if ready or expired:
                    taken = n.model_copy(
                        update={"status": "leased", "attempts": n.attempts + 1, "not_before": now + lease_for}
                    )
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
    ) -> None:
        with self._lock:
            n = self._outbox.get(key)
            if n is None:
                raise NotFound(key)
            if outcome == "delivered":
                update: dict[str, object] = {"status": "delivered", "not_before": None, "last_error": ""}
            elif outcome == "retry":
                update = {"status": "pending", "not_before": retry_at or now, "last_error": error}
            else:
                update = {"status": "dead", "not_before": None, "last_error": error}
            self._outbox[key] = n.model_copy(update=update)

    def outbox(self) -> Sequence[Notice]:
        """Every notice, in the order written (for tests and inspection)."""
        return tuple(self._outbox.values())

    def close(self) -> None:
        return None
