"""Argument checks every store makes the same way (shared by the adapters, not part of the contract)."""

from __future__ import annotations

from datetime import datetime

from ..errors import IntegrityError, InvalidInput, StoreUnavailable
from ..notices import NoticeStatus
from .base import Settlement

__all__ = ["FINAL", "aware", "closed", "count", "leased_again", "position", "settled_already", "settlement"]

FINAL: frozenset[str] = frozenset({"delivered", "dead"})  # a notice in these states never changes again


def leased_again(key: str, attempts: int, attempt: int) -> IntegrityError:
    return IntegrityError(
        f"notice {key!r} was leased again (attempt {attempts}); this settle from attempt {attempt} "
        "comes from an expired lease and changes nothing"
    )


def settled_already(key: str, current: str, wanted: str) -> None:
    """A settle that reached a notice already delivered or dead: the same outcome again is a
    harmless repeat; any other is a stale lease and is refused (nothing changes)."""
    if current != wanted:
        raise IntegrityError(
            f"notice {key!r} is already {current}; a settle from a stale lease cannot make it {wanted} "
            "(nothing was changed)"
        )


_MAX_COUNT = 2**62  # fits every store's integers (SQLite and PostgreSQL: 64-bit)


def position(value: int, name: str) -> int:
    """``value`` if it is a whole number within +-2**62 (a log position; below 1 means "from the
    start"); else ``InvalidInput``."""
    if isinstance(value, bool) or not isinstance(value, int) or not -_MAX_COUNT <= value <= _MAX_COUNT:
        raise InvalidInput(f"{name} must be a whole number (a log position), not {value!r}")
    return value


def count(value: int, name: str) -> int:
    """``value`` if it is a whole number from 0 to 2**62; else ``InvalidInput`` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise InvalidInput(f"{name} must be a whole number from 0 to 2**62, not {value!r}")
    return value


_OUTCOMES: frozenset[str] = frozenset({"delivered", "retry", "dead"})


def aware(value: datetime, name: str) -> datetime:
    """``value`` if it is an aware datetime; else ``InvalidInput`` naming the argument."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{name} must be an aware datetime (with a time zone), e.g. datetime.now(UTC); got {value!r}"
        )
    return value


def settlement(
    outcome: Settlement, now: datetime, retry_at: datetime | None, error: str, attempt: int | None = None
) -> tuple[NoticeStatus, datetime | None, str]:
    """What ``settle`` writes: (status, not_before, last_error). Checks the arguments."""
    aware(now, "settle(now=...)")
    if attempt is not None:
        count(attempt, "settle(attempt)")
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
