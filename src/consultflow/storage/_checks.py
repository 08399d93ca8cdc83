"""Argument checks every store makes the same way (shared by the adapters, not part of the contract)."""

from __future__ import annotations

from datetime import datetime

from ..errors import InvalidInput, StoreUnavailable
from ..notices import NoticeStatus
from .base import Settlement

__all__ = ["aware", "closed", "settlement"]

_OUTCOMES: frozenset[str] = frozenset({"delivered", "retry", "dead"})


def aware(value: datetime, name: str) -> datetime:
    """``value`` if it is an aware datetime; else ``InvalidInput`` naming the argument."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{name} must be an aware datetime (with a time zone), e.g. datetime.now(UTC); got {value!r}"
        )
    return value


def settlement(
    outcome: Settlement, now: datetime, retry_at: datetime | None, error: str
) -> tuple[NoticeStatus, datetime | None, str]:
    """What ``settle`` writes: (status, not_before, last_error). Checks the arguments."""
    aware(now, "settle(now=...)")
    if retry_at is not None:
        aware(retry_at, "settle(retry_at=...)")
    if outcome not in _OUTCOMES:
        raise InvalidInput(f"settle() outcome must be 'delivered', 'retry' or 'dead', not {outcome!r}")
    if not isinstance(error, str):
        raise InvalidInput(f"settle() error must be a string, not {type(error).__name__}")
    if outcome == "delivered":
        return "delivered", None, ""
    if outcome == "retry":
        return "pending", retry_at if retry_at is not None else now, error
    return "dead", None, error


def closed(store: object) -> StoreUnavailable:
    """The error for a call on a closed store."""
    return StoreUnavailable(f"this {type(store).__name__} is closed; open a new one to go on")
