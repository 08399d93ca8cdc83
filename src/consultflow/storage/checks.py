"""The checks every store makes the same way, public for anyone writing a store.

A store that calls these refuses what the shipped stores refuse, with the same errors and words:
``check_step`` (a step must continue the stored log), ``check_settlement`` (what a ``settle``
writes), the argument checks (``check_aware``, ``check_count``, ``check_position``) and the errors
for a closed store and a stale lease. See docs/storage.md, "Write your own store".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..errors import ConsultflowError, IntegrityError, InvalidInput, NotFound, StoreUnavailable
from ..notices import Notice, NoticeStatus
from ..step import Step
from .base import Settlement

__all__ = [
    "FINAL_NOTICE_STATES",
    "check_aware",
    "check_count",
    "check_enqueue",
    "check_key",
    "check_notice_status",
    "check_position",
    "check_settled_again",
    "check_settlement",
    "check_step",
    "closed_error",
    "lease_until",
    "leased_again_error",
    "not_dead_error",
    "release_error",
    "unsettled_error",
]

#: A notice in these states never changes again.
FINAL_NOTICE_STATES: frozenset[str] = frozenset({"delivered", "dead"})


_NOTICE_STATES: frozenset[str] = frozenset({"pending", "leased", "delivered", "dead"})


def check_notice_status(status: NoticeStatus | None) -> NoticeStatus | None:
    """``status`` if it is a notice status (or ``None``: all); else ``InvalidInput``."""
    if status is not None and status not in _NOTICE_STATES:
        raise InvalidInput(f"a notice status is pending, leased, delivered or dead, not {status!r}")
    return status


def check_enqueue(notices: object) -> list[Notice]:
    """The notices ``enqueue`` writes: new (pending, no attempts), each key once."""
    items = list(notices) if isinstance(notices, list | tuple) else None
    if items is None or not all(isinstance(n, Notice) for n in items):
        raise InvalidInput("enqueue() takes a list of Notice records")
    if len({n.key for n in items}) != len(items):
        raise InvalidInput("enqueue(): a key is given twice")
    for n in items:
        if n.status != "pending" or n.attempts != 0:
            raise InvalidInput(f"enqueue(): notice {n.key!r} must be new (pending, no attempts)")
    return items


def not_dead_error(key: str, status: str) -> IntegrityError:
    """The error for ``requeue`` on a notice that is not a dead letter."""
    return IntegrityError(f"notice {key!r} is {status}, not dead; only a dead letter can be sent again")


def leased_again_error(key: str, attempts: int, attempt: int) -> IntegrityError:
    """The error for a settle whose lease expired and was taken by another worker since."""
    return IntegrityError(
        f"notice {key!r} was leased again (attempt {attempts}); this settle from attempt {attempt} "
        "comes from an expired lease and changes nothing"
    )


def check_settled_again(key: str, current: str, wanted: str) -> None:
    """A settle that reached a notice already delivered or dead: the same outcome again is a
    harmless repeat; any other is a stale lease and is refused (nothing changes)."""
    if current != wanted:
        raise IntegrityError(
            f"notice {key!r} is already {current}; a settle from a stale lease cannot make it {wanted} "
            "(nothing was changed)"
        )


def release_error(key: str, status: str) -> IntegrityError:
    """The error for releasing a notice that is not leased (nothing was tried, nothing to give back)."""
    return IntegrityError(
        f"notice {key!r} is {status}, not leased: only a leased notice can be released (nothing was changed)"
    )


def unsettled_error(
    key: str, stored: tuple[object, object] | None, status: str, attempt: int | None, *, release: bool = False
) -> ConsultflowError | None:
    """Why a settle changed no row, from the notice's stored (status, attempts) (``None``: no such
    notice): ``NotFound``, a stale lease's ``IntegrityError``, or ``None`` for a harmless repeat of
    the outcome a notice already has. The SQL stores' settles share it."""
    if stored is None:
        return NotFound(key, what="notice")
    current = str(stored[0])
    if current in FINAL_NOTICE_STATES:
        try:
            check_settled_again(key, current, status)
        except IntegrityError as exc:
            return exc
        return None
    if release and current != "leased":
        return release_error(key, current)
    return leased_again_error(key, int(str(stored[1])), attempt if attempt is not None else -1)


_MAX_COUNT = 2**62  # fits every store's integers (SQLite and PostgreSQL: 64-bit)


def check_position(value: int, name: str) -> int:
    """``value`` if it is a whole number within +-2**62 (a log position; below 1 means "from the
    start"); else ``InvalidInput``."""
    if isinstance(value, bool) or not isinstance(value, int) or not -_MAX_COUNT <= value <= _MAX_COUNT:
        raise InvalidInput(f"{name} must be a whole number (a log position), not {value!r}")
    return value


def check_count(value: int, name: str) -> int:
    """``value`` if it is a whole number from 0 to 2**62; else ``InvalidInput`` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise InvalidInput(f"{name} must be a whole number from 0 to 2**62, not {value!r}")
    return value


def check_key(value: str, name: str) -> str:
    """``value`` if it is text a store can look up (a consultation id, a notice key): a string that is
    valid Unicode (no lone surrogate, as a web app may pass on) without NUL; else ``InvalidInput``.
    Any other text that names nothing (too long, odd characters) is the store's ``NotFound``."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text (an id), not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput(f"{name} holds a NUL character: no id does ({value[:40]!r})")
    try:
        value.encode("utf-8")
    except UnicodeError:
        raise InvalidInput(
            f"{name} {value[:80]!r} is not valid Unicode text (a lone surrogate): no id is; "
            "check how your app decodes it"
        ) from None
    return value


_OUTCOMES: frozenset[str] = frozenset({"delivered", "retry", "dead", "release"})


def check_aware(value: datetime, name: str) -> datetime:
    """``value`` if it is an aware datetime; else ``InvalidInput`` naming the argument."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{name} must be an aware datetime (with a time zone), e.g. datetime.now(UTC); got {value!r}"
        )
    return value


def lease_until(now: datetime, lease_for: timedelta) -> datetime:
    """When a lease taken at ``now`` for ``lease_for`` ends; ``InvalidInput`` for a naive ``now``, a
    ``lease_for`` that is no non-negative timedelta, or an end beyond what a datetime holds."""
    check_aware(now, "lease(now)")
    if not isinstance(lease_for, timedelta) or lease_for < timedelta(0):
        raise InvalidInput(f"lease(lease_for) must be a timedelta of zero or more, not {lease_for!r}")
    try:
        return now + lease_for
    except OverflowError:
        raise InvalidInput(f"a lease from {now.isoformat()} for {lease_for} ends beyond the year 9999") from None


def check_settlement(
    outcome: Settlement, now: datetime, retry_at: datetime | None, error: str, attempt: int | None = None
) -> tuple[NoticeStatus, datetime | None, str]:
    """What ``settle`` writes: (status, not_before, last_error). Checks the arguments.

    A ``"release"`` (the lease's notice was not tried: a dispatcher stopping, or its lease running
    short) writes ``pending`` with no ``not_before`` (ready at once, whatever another dispatcher's
    clock says); the store also takes back the attempt the lease counted, keeps the last error, and
    refuses it unless the notice is leased (``release_error``)."""
    check_aware(now, "settle(now=...)")
    if attempt is not None:
        check_count(attempt, "settle(attempt)")
    if retry_at is not None:
        check_aware(retry_at, "settle(retry_at=...)")
    if outcome not in _OUTCOMES:
        raise InvalidInput(f"settle() outcome must be 'delivered', 'retry', 'dead' or 'release', not {outcome!r}")
    if not isinstance(error, str):
        raise InvalidInput(f"settle() error must be a string, not {type(error).__name__}")
    if outcome == "delivered":
        return "delivered", None, ""
    if outcome == "retry":
        return "pending", retry_at if retry_at is not None else now, error
    if outcome == "release":
        return "pending", None, error
    return "dead", None, error


def closed_error(store: object) -> StoreUnavailable:
    """The error for a call on a closed store."""
    return StoreUnavailable(f"this {type(store).__name__} is closed; open a new one to go on")


def check_step(step: Step, expected_version: int, head: str) -> None:
    """Refuse a step that does not continue the stored chain (a bug or a forged step): its first
    entry must follow ``expected_version`` and link to ``head`` (the stored record's, ``""`` for a
    new consultation), and its record must end where its entries end."""
    entries = step.entries
    if not entries:
        raise IntegrityError("a step must carry at least one log entry")
    if entries[0].seq != expected_version + 1 or entries[0].prev != head:
        raise IntegrityError(f"step for {step.record.id!r} does not continue its log at version {expected_version}")
    if step.record.version != entries[-1].seq or step.record.head != entries[-1].hash:
        raise IntegrityError(f"record {step.record.id!r} disagrees with the entries of its step")
