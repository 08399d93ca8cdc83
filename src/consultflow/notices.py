"""Notices: what the outbox carries to residents and officials after a step is committed.

Each step says who hears of its events as *groups* (``steps/*.py``, ``audience``); this module
holds the notice record and turns groups into recipients for one record. A dispatcher delivers
after commit. Each notice has an idempotency key (``key``), so a channel that is handed it twice
can deliver it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import AwareDatetime, Field

from .records import Consultation, Record
from .roles import BODY_MEMBERS, Role
from .vocabulary import Body, Event

__all__ = [
    "INVITED",
    "PLEDGE_OWNER",
    "PROPOSER",
    "PUBLIC",
    "REMINDER_MARK",
    "VOTERS",
    "Notice",
    "NoticeStatus",
    "expand",
    "reminder_deadline",
    "role_group",
]

NoticeStatus = Literal["pending", "leased", "delivered", "dead"]

#: Audience groups a step may name: everyone invited, the proposer, the community's public channel
#: (``public:<community>``), the members of the body whose vote is open or last closed (``VOTERS``),
#: or everyone holding a role (``role_group``).
INVITED = "invited"
PROPOSER = "proposer"
PUBLIC = "public:"
VOTERS = "voters"
#: 承诺制: the person a pledge names as answering for it, read from the event's own ``owner``.
PLEDGE_OWNER = "pledge_owner"


#: A reminder (提醒) is no step's notice: its key goes on from its consultation's id with this mark and
#: the deadline it is about (``{consultation}:remind:{deadline}``), where a step's is
#: ``{consultation}:{seq}``.
REMINDER_MARK = ":remind:"


def reminder_deadline(notice: Notice) -> str | None:
    """The deadline a reminder notice is about (``meeting:1``, ``measure:2:0``, ...); ``None`` for
    any other notice. The one test of "is this a reminder" for the dispatcher and ``verify`` alike."""
    prefix = notice.consultation + REMINDER_MARK
    if notice.event is not Event.REMINDER or not notice.key.startswith(prefix):
        return None
    return notice.key[len(prefix) :]


def role_group(role: Role) -> str:
    """The group of everyone holding ``role``: ``role:<role>``."""
    return f"role:{role.value}"


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


def expand(groups: Iterable[str], record: Consultation, data: Mapping[str, object] | None = None) -> tuple[str, ...]:
    """The recipients ``groups`` name on ``record``: the invited and the proposer by id, the public
    channel of its community, role groups as they are; the voters of its current vote as the
    owners in the register (an owners' meeting) or the role groups of the body's members (and the
    public channel for a residents' meeting, which every resident may attend); the owner a pledge
    event names (``data["owner"]``); each once, in order."""
    out: list[str] = []
    for group in groups:
        if group == PLEDGE_OWNER:
            owner = data.get("owner") if data is not None else None
            if isinstance(owner, str) and owner:
                out.append(owner)
        elif group == VOTERS:
            out.extend(_voters(record))
        elif group == INVITED:
            out.extend(record.invited)
        elif group == PROPOSER:
            out.append(record.proposer)
        elif group == PUBLIC:
            out.append(PUBLIC + record.community)
        else:
            out.append(group)
    return tuple(dict.fromkeys(out))


def _voters(record: Consultation) -> list[str]:
    vote = record.current_vote
    if vote is None:
        return []
    if vote.owners:
        return [s.owner for s in vote.owners]
    out = [role_group(r) for r in sorted(BODY_MEMBERS.get(vote.body, ()))]
    if vote.body is Body.RESIDENTS_MEETING:
        out.append(PUBLIC + record.community)
    return out
