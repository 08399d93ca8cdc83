"""Reminders (提醒): the meeting tomorrow, a decision or a measure due in N days, a round about to
close - each sent once per deadline, through the same outbox.

A reminder is not a step of the procedure, so it is not logged: ``Reminders.run(now)`` finds the
consultations with a deadline coming up and adds one notice per deadline to the outbox with
``enqueue`` (every shipped store has it), keyed ``{consultation}:remind:{deadline}``. The store adds
a key once, so any number of dispatchers (or cron jobs beside ``Engine.tick``) may run it: each
reminder is sent once. Which deadlines and how long before is ``Leads`` (a community's variant may
set its own, ``Reminders(..., leads={"xiaotaoyuan": Leads(...)})``); ``due_reminders`` is the pure
part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import attrs

from ..deadlines import record_deadlines
from ..errors import InvalidInput
from ..notices import INVITED, PROPOSER, REMINDER_MARK, Notice, expand, reminder_deadline, role_group
from ..records import Consultation
from ..roles import Role
from ..storage.base import Query, Store
from ..storage.checks import check_aware
from ..vocabulary import ACTIVE_STATES, Event, State

__all__ = ["Leads", "Reminder", "ReminderOutbox", "Reminders", "due_reminders", "reminder_kind"]


def _lead(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, timedelta) or not timedelta(0) < value <= timedelta(days=90)):
        raise InvalidInput(f"Leads.{attribute.name} is a timedelta from 0 to 90 days, or None (no reminder)")


@attrs.frozen(slots=True)
class Leads:
    """How long before each kind of deadline people are reminded; ``None``: not at all."""

    meeting: timedelta | None = attrs.field(default=timedelta(days=1), validator=_lead)  # the meeting tomorrow
    round: timedelta | None = attrs.field(default=timedelta(days=1), validator=_lead)  # an open round must close
    decision: timedelta | None = attrs.field(default=timedelta(days=3), validator=_lead)  # 议而不决
    review: timedelta | None = attrs.field(default=timedelta(days=2), validator=_lead)
    measure: timedelta | None = attrs.field(default=timedelta(days=3), validator=_lead)  # 决而不施
    proposal: timedelta | None = attrs.field(default=timedelta(days=2), validator=_lead)

    def longest(self) -> timedelta:
        found = [v for v in attrs.astuple(self) if v is not None]
        return max(found) if found else timedelta(0)


@attrs.frozen(slots=True)
class Reminder:
    """One reminder: its deadline's key and kind, when it falls due, who hears of it."""

    key: str
    kind: str
    due: datetime
    audience: tuple[str, ...]


def _audience(kind: str, record: Consultation) -> tuple[str, ...]:
    committee = role_group(Role.COMMITTEE)
    if kind in {"meeting", "round"}:
        return expand((INVITED, PROPOSER), record)
    if kind == "decision":
        return (committee, *record.invited)
    if kind == "review":
        return (role_group(Role.SUPERVISOR), role_group(Role.LEGAL_ADVISER))
    if kind == "measure":
        return (committee,)
    return (committee,)  # a proposal to answer


_MEETING_STATES = frozenset({State.NOTIFIED, State.CONSULTING})


def due_reminders(record: Consultation, now: datetime, leads: Leads) -> list[Reminder]:
    """The reminders ``record`` is owed at ``now``: deadlines not yet passed that fall due within
    their lead. Pure: the same record and time give the same reminders."""
    out: list[Reminder] = []

    def owe(key: str, kind: str, due: datetime, lead: timedelta | None) -> None:
        if lead is not None and now < due <= now + lead:
            out.append(Reminder(key, kind, due, _audience(kind, record)))

    # the meeting the next round opens at (会议): the notice's (key ``meeting:<cycle>``, as ever), or a
    # later one announced with its own notice (``meeting:<cycle>:<number>``)
    pending = record.pending_meeting
    schedule = record.schedule
    if pending is not None and record.state in _MEETING_STATES:
        key = f"meeting:{record.cycle}" if pending.number == 1 else f"meeting:{record.cycle}:{pending.number}"
        owe(key, "meeting", pending.at, leads.meeting)
    elif record.state is State.NOTIFIED and schedule is not None and not record.meetings:
        owe(f"meeting:{record.cycle}", "meeting", schedule.meeting_at, leads.meeting)
    current = record.current_round
    for d in record_deadlines(record):
        if d.kind == "decision" and current is not None and current.is_open:
            owe(f"round:{current.number}", "round", d.due, leads.round)
        owe(d.key, d.kind, d.due, getattr(leads, d.kind, None))
    return out


def reminder_kind(notice: Notice) -> str | None:
    """The kind of deadline a reminder notice is about (``meeting``, ``decision``, ...); ``None``
    for any other notice."""
    deadline = reminder_deadline(notice)
    return None if deadline is None else deadline.split(":", 1)[0]


@runtime_checkable
class ReminderOutbox(Protocol):
    """A store that adds notices without a step, once per key (every shipped store)."""

    def enqueue(self, notices: Sequence[Notice]) -> int: ...


class Reminders:
    """Adds the reminders that are due to the outbox. Run it on a schedule: the dispatcher does
    (``Dispatcher(..., reminders=...)``), or call ``run(now)`` beside ``Engine.tick``."""

    def __init__(
        self,
        store: Store,
        leads: Leads | None = None,
        *,
        communities: Mapping[str, Leads] | None = None,
        every: timedelta = timedelta(minutes=5),
    ) -> None:
        if not isinstance(store, ReminderOutbox):
            raise InvalidInput("reminders need a store with enqueue(notices) (every shipped store has it)")
        self.store = store
        self.leads = leads if leads is not None else Leads()
        self.communities = dict(communities or {})
        self.every = every
        self._horizon = max([self.leads.longest(), *(v.longest() for v in self.communities.values())])

    def notices(self, records: Iterable[Consultation], now: datetime) -> list[Notice]:
        """The reminder notices ``records`` are owed at ``now``."""
        out = []
        for record in records:
            leads = self.communities.get(record.community, self.leads)
            for r in due_reminders(record, now, leads):
                if not r.audience:
                    continue
                out.append(
                    Notice(
                        key=f"{record.id}{REMINDER_MARK}{r.key}",
                        consultation=record.id,
                        seq=max(record.version, 1),
                        event=Event.REMINDER,
                        audience=r.audience,
                        title=record.title,
                        created_at=now,
                    )
                )
        return out

    def run(self, now: datetime) -> int:
        """Add every reminder due at ``now``; returns how many were new."""
        check_aware(now, "Reminders.run(now)")
        if self._horizon <= timedelta(0):
            return 0
        found: dict[str, Consultation] = {}
        for query in (
            Query(states=ACTIVE_STATES, due_before=now + self._horizon),
            Query(states=frozenset({State.NOTIFIED})),  # meetings are not deadlines: look at each
        ):
            for record in self.store.find(query):
                found.setdefault(record.id, record)
        notices = self.notices(found.values(), now)
        return self.store.enqueue(notices) if notices else 0
