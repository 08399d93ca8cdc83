"""Retries: capped exponential backoff with jitter, and when to give up (死信).

Pure: the random draw is passed in, so the schedule is a function of the attempt and the draw.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from ..errors import InvalidInput

__all__ = ["RetryPolicy"]


def _positive(instance: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInput(f"RetryPolicy.{attribute.name} must be a positive timedelta, not {value!r}")


def _attempts(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidInput(f"RetryPolicy.max_attempts must be a whole number from 1 to 1000, not {value!r}")


@attrs.frozen(slots=True)
class RetryPolicy:
    """After attempt *n* fails transiently, wait between half and all of ``min(cap, base * 2**(n-1))``
    ("equal jitter": dispatchers that failed together do not retry together, and never at once);
    after ``max_attempts`` the notice is dead, with the last error."""

    max_attempts: int = attrs.field(default=8, validator=_attempts)
    base: timedelta = attrs.field(default=timedelta(seconds=2), validator=_positive)
    cap: timedelta = attrs.field(default=timedelta(minutes=15), validator=_positive)

    def delay(self, attempt: int, draw: float) -> timedelta:
        """How long to wait after failed attempt ``attempt`` (1, 2, ...), for a draw in [0, 1)."""
        exponent = min(max(attempt, 1) - 1, 60)
        ceiling = min(self.cap, self.base * (2**exponent)) if exponent < 40 else self.cap
        return ceiling * (0.5 + 0.5 * min(max(draw, 0.0), 1.0))

    def gives_up(self, attempt: int) -> bool:
        """Whether a transient failure on attempt ``attempt`` makes the notice dead."""
        return attempt >= self.max_attempts
