"""The memory channel: keeps what it is sent, for tests and trying things out."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..channel import Delivery, Outcome

__all__ = ["MemoryChannel"]


class MemoryChannel:
    """Records every delivery. It honours the key: ``accepted`` holds each key once, however often it
    was sent; ``sent`` holds every call. ``script`` (optional) decides the outcome of each call, to
    fake a failing receiver."""

    def __init__(self, script: Callable[[Delivery], Outcome] | None = None) -> None:
        self.sent: list[Delivery] = []
        self.accepted: dict[str, Delivery] = {}
        self._script = script
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> Outcome:
        outcome = self._script(delivery) if self._script is not None else Outcome.delivered()
        with self._lock:
            self.sent.append(delivery)
            if outcome.kind == "delivered":
                self.accepted.setdefault(delivery.key, delivery)
        return outcome
