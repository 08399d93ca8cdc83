"""Time, injected: the core never reads a clock, the engine asks the one it was given.

Deadlines are data on the record; nothing sleeps. A simulated clock makes tests and simulations
exact and fast.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from .errors import InvalidInput

__all__ = ["Clock", "SimulatedClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now()`` returning an aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _aware(value: object, where: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInput(f"{where} needs an aware datetime, e.g. datetime(2026, 3, 1, tzinfo=UTC); got {value!r}")
    return value


class SimulatedClock:
    """A clock that moves only when told to; for tests, replays and simulations."""

    __slots__ = ("_now",)

    def __init__(self, start: datetime | None = None) -> None:
        start = start if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
        self._now = _aware(start, "SimulatedClock(start)")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; time never goes back."""
        try:
            step = delta if delta is not None else timedelta(**kwargs)
        except (TypeError, OverflowError) as exc:
            raise InvalidInput(f"advance() takes a timedelta or days=, hours=, ...: {exc}") from None
        if not isinstance(step, timedelta):
            raise InvalidInput(f"advance() takes a timedelta, not {type(step).__name__}")
        if step < timedelta(0):
            raise InvalidInput("a simulated clock only moves forward: advance by a positive amount")
        try:
            self._now += step
        except OverflowError:
            raise InvalidInput(f"advancing {self._now.isoformat()} by {step} goes beyond the year 9999") from None
        return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (not earlier than now)."""
        when = _aware(when, "set(when)")
        if when < self._now:
            raise InvalidInput(f"cannot go back from {self._now.isoformat()} to {when.isoformat()}")
        self._now = when
        return self._now
