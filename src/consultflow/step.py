"""The step: what one command did to one consultation, and what a store appends in one transaction.

A records-floor type: the new record, its log entries and the outbox notices. Stores import it
from here and never see the core, the procedure or the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    #: A lazy step's (``apply(..., lazy=True)``) first entry is made without its input; this makes
    #: it when ``core.seal`` finishes the log. ``None`` for every step a store is given.
    pending_input: Callable[[], dict[str, Any]] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def expected_version(self) -> int:
        """The version the store must hold before this step (optimistic concurrency)."""
        return self.record.version - len(self.entries)
