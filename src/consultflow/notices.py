"""Notices: what the outbox carries to residents and officials after a step is committed.

The core decides who hears of which event; a dispatcher delivers after commit. Each notice has an
idempotency key (``key``), so a channel that is handed it twice can deliver it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import AwareDatetime, Field

from .records import Consultation, Record
from .roles import Role
from .vocabulary import Event

__all__ = ["Notice", "NoticeStatus", "audience_for"]

NoticeStatus = Literal["pending", "leased", "delivered", "dead"]


class Notice(Record):
    """One notice in the outbox. ``audience`` holds participant ids and groups (``role:<role>``,
    ``public:<community>``)."""

    key: str
    consultation: str
    seq: int = Field(ge=1)
    event: Event
    audience: tuple[str, ...]
    title: str
    created_at: AwareDatetime
    status: NoticeStatus = "pending"
    attempts: int = 0
    not_before: AwareDatetime | None = None
    last_error: str = ""


_PUBLIC = "public:"
_SUB_DISTRICT = f"role:{Role.SUB_DISTRICT.value}"
_COMMITTEE = f"role:{Role.COMMITTEE.value}"
_SUPERVISORS = f"role:{Role.SUPERVISOR.value}"

# event -> which groups hear of it; "invited" and "proposer" expand from the record.
_POLICY: Mapping[Event, tuple[str, ...]] = {
    Event.NOTIFIED: ("invited", "proposer", _PUBLIC),
    Event.ROUND_OPENED: ("invited",),
    Event.DECIDED: ("invited", "proposer", _SUPERVISORS),
    Event.LEGALITY_REVIEWED: ("proposer", _COMMITTEE),
    Event.PUBLISHED: (_PUBLIC,),
    Event.ESCALATED: (_SUB_DISTRICT, _COMMITTEE),
    Event.DEADLINE_MISSED: (_COMMITTEE, _SUB_DISTRICT),
    Event.RECONSULTATION_REQUESTED: ("invited", _COMMITTEE),
    Event.RESUMED: ("invited", _COMMITTEE),
    Event.REJECTED: ("proposer",),
    Event.WITHDRAWN: ("invited", _COMMITTEE),
    Event.CLOSED: ("invited", "proposer", _PUBLIC),
}


def audience_for(event: Event, record: Consultation) -> tuple[str, ...]:
    """Who hears of ``event`` on ``record``; empty when nobody needs to."""
    groups = _POLICY.get(event)
    if not groups:
        return ()
    out: list[str] = []
    for group in groups:
        if group == "invited":
            out.extend(record.invited)
        elif group == "proposer":
            out.append(record.proposer)
        elif group == _PUBLIC:
            out.append(_PUBLIC + record.community)
        else:
            out.append(group)
    return tuple(dict.fromkeys(out))
