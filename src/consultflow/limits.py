"""The documented limits (docs/storage.md, "Limits"), in one place, checked at the boundary: what
a caller, a procedure file or a clock may hand the library. Beyond them a command or a record is
``InvalidInput`` (or a ``Refused`` for what depends on the consultation, like a full round), never an
``OverflowError`` deep inside or a store that grows without end.

- **Times**: aware datetimes from 1970-01-01 to 9000-01-01 (UTC). The latest time plus the longest
  deadline plus any UTC offset is still a date Python can hold, so no deadline arithmetic overflows.
- **Durations**: a deadline (proposal, decision, review) from one second to ten years; the notice
  period up to 90 days (``Parameters``).
- **Sizes**: ids 1 to 128 printable characters; titles 200 characters; texts (an opinion, a
  resolution, a reason) 10,000; at most 10,000 people invited to one consultation (at once or over
  several invitations), 10,000 attendees of a round, 10,000 opinions in one round, 200 measures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_DEADLINE",
    "MAX_INVITED",
    "MAX_OPINIONS_PER_ROUND",
    "MAX_TEXT",
    "time_problem",
]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_DEADLINE = timedelta(days=3650)
MAX_INVITED = 10_000
MAX_OPINIONS_PER_ROUND = 10_000
MAX_TEXT = 10_000


def time_problem(value: datetime) -> str | None:
    """What is wrong with ``value`` as a time consultflow takes, or ``None``."""
    if value.utcoffset() is None:
        return "a time needs a time zone (an aware datetime, e.g. datetime(2026, 3, 1, tzinfo=UTC))"
    try:
        inside = EARLIEST <= value < LATEST
    except OverflowError:  # an instant outside Python's datetimes once in UTC (year 1 or 9999 with an offset)
        inside = False
    if not inside:
        return f"{value.isoformat()} is outside the times consultflow takes: 1970-01-01 to 9000-01-01 (UTC)"
    return None
