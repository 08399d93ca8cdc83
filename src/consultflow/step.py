"""The step: what one command did to one consultation, and what a store appends in one transaction.

A records-floor type: the new record, its log entries and the outbox notices. Stores import it
from here and never see the core, the procedure or the engine.
"""

from __future__ import annotations

import attrs

from .log import LogEntry
from .notices import Notice
from .records import Consultation

__all__ = ["Step"]


@attrs.frozen(slots=True)
class Step:
    """What one command did: the new record, its log entries and the notices to send.
    ``record.version`` equals the seq of the last entry."""

    record: Consultation
    entries: tuple[LogEntry, ...]
    notices: tuple[Notice, ...]

    @property
    def expected_version(self) -> int:
        """The version the store must hold before this step (optimistic concurrency)."""
        return self.record.version - len(self.entries)
