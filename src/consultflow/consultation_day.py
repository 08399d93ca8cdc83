"""协商日 consultation day: a recurring community session that hosts several matters.

The seed: 小桃园社区 "将每月11日固定为‘协商日’，协商日轮值主席从社区工作人员扩大到30多位社区居民轮流参与".
A variant sets the day of the month (``Parameters.consultation_day``) and, if it keeps one, the
rota of rotating chairs (``Parameters.chair_rota``): an ordered list of people, one a month from
``Parameters.chair_rota_start``, round-robin. The rota is the community's own list as its committee
adopts it (it lives in the procedure variant's parameters, so a change is a new version of the
variant); the directory still has to grant each of them the rotating chair's role.

Every meeting of a consultation-day matter falls on that day and names its chair (``steps/notify``
guards it when the meeting is announced). This module is pure: ``session`` reads records and says
which matters meet on a day and who chairs them; ``rota_chair`` says whose month it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import attrs

from .parameters import Parameters
from .records import Consultation
from .vocabulary import Form, MeetingFormat, State

__all__ = ["Session", "SessionMatter", "rota_chair", "rota_index", "session", "session_day"]


def rota_index(params: Parameters, when: datetime | date) -> int | None:
    """The place on the rota of the month ``when`` falls in (in the parameters' time zone), or
    ``None`` without a rota. Round-robin from ``chair_rota_start``; months before it count back."""
    rota = params.chair_rota
    if not rota:
        return None
    local = when.astimezone(params.zone) if isinstance(when, datetime) else when
    year, month = (int(part) for part in params.chair_rota_start.split("-"))
    return ((local.year - year) * 12 + local.month - month) % len(rota)


def rota_chair(params: Parameters, when: datetime | date, proposer: str | None = None) -> str | None:
    """Who chairs the consultation day of ``when``'s month by the rota, or ``None`` without one.
    For a matter the chair proposed (回避, ``chair_not_proposer``) the next one on the rota stands in."""
    index = rota_index(params, when)
    if index is None:
        return None
    rota = params.chair_rota
    chair = rota[index]
    if proposer is not None and params.chair_not_proposer and chair == proposer and len(rota) > 1:
        chair = rota[(index + 1) % len(rota)]
    return chair


def session_day(params: Parameters, year: int, month: int) -> date | None:
    """The consultation day of a month, or ``None`` when the variant sets no day."""
    day = params.consultation_day
    return None if day is None else date(year, month, day)


@attrs.frozen(slots=True)
class SessionMatter:
    """One matter on a consultation day's agenda: its meeting that day."""

    consultation: str
    title: str
    topic: str
    state: State
    meeting: int
    at: datetime
    format: MeetingFormat | None
    venue: str
    agenda: str
    chair: str | None
    held: bool
    minutes: bool


@attrs.frozen(slots=True)
class Session:
    """A consultation day of a community (协商日): the day, the matters meeting on it in the order
    they meet, who chairs them, and whose month it is on the rota (``None`` without a rota)."""

    community: str
    day: date
    matters: tuple[SessionMatter, ...]
    chairs: tuple[str, ...]
    rota_chair: str | None


def session(records: Iterable[Consultation], community: str, day: date, params: Parameters) -> Session:
    """The consultation-day session of ``community`` on ``day``: every meeting of a consultation-day
    matter of that community that falls on ``day`` in the parameters' time zone. Pure: the caller
    reads the records (``Store.list`` or ``Engine.get``) and passes them in."""
    zone = params.zone
    found: list[SessionMatter] = []
    for rec in records:
        if rec.community != community or rec.form is not Form.CONSULTATION_DAY:
            continue
        for m in rec.meetings:
            if m.at.astimezone(zone).date() != day:
                continue
            found.append(
                SessionMatter(
                    consultation=rec.id,
                    title=rec.title,
                    topic=rec.topic,
                    state=rec.state,
                    meeting=m.number,
                    at=m.at,
                    format=m.format,
                    venue=m.venue,
                    agenda=m.agenda,
                    chair=m.chair,
                    held=m.held,
                    minutes=bool(m.minutes),
                )
            )
    found.sort(key=lambda s: (s.at, s.consultation, s.meeting))
    chairs = tuple(dict.fromkeys(s.chair for s in found if s.chair is not None))
    return Session(community, day, tuple(found), chairs, rota_chair(params, day))
