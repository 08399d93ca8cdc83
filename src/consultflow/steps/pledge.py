"""承诺制 (public pledges): publishing a decision in force (``Publish``, 公开制) makes each of its
measures a pledge - who answers for it, what, by when, with how much - that residents then hold its
owner to. Progress reports move a pledge on (100 % is done), the committee may move its date with a
reason (``DelayPledge``, 延期: at most ``pledge_delay_limit`` times and ``pledge_delay_max`` past the
date decided), and a pledge whose date passes undone is missed (决而不施, ``steps/overdue.py``).

The pledges live on the consultation (``Consultation.pledges``), so the roadmap (成果运用路线图,
``consultflow.roadmap``) is built from the records alone. The helpers here are the one place that
says how a pledge's status follows from what happened; ``feedback.py`` and ``overdue.py`` call them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints

from ..canonical import timestamp
from ..commands import ConsultationCommand
from ..context import Context
from ..deadlines import Deadline
from ..notices import PLEDGE_OWNER, PUBLIC
from ..parameters import Parameters
from ..records import Consultation, Decision, InputTime, Pledge, PledgeDelay, ProgressReport, evolve, make
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import IN_FORCE_STATES, Event, PledgeStatus, State, Trigger
from .base import Effect, Events, Governing, Guard, StepDefinition, days, transition

__all__ = [
    "STEP",
    "DelayPledge",
    "pledge_of",
    "pledges_after_progress",
    "pledges_missed",
    "publish_pledges",
]

_IN_FORCE = tuple(s for s in State if s in IN_FORCE_STATES)  # feedback, supervising

#: A reason residents are told: said, and not a book.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class DelayPledge(ConsultationCommand):
    """延期: the committee moves a published pledge's due date, saying why. ``measure`` is the
    measure's index from 0 (people read it numbered from 1). The decision is not rewritten."""

    trigger: ClassVar[Trigger] = Trigger.DELAY_PLEDGE
    measure: int = Field(ge=0, le=199)
    due: InputTime
    reason: Reason


# ---- the pledges and their status (pure helpers) ---------------------------------------------------------
def pledge_of(record: Consultation, decision: int, measure: int) -> Pledge | None:
    """The pledge made of measure ``measure`` of decision ``decision``, if it was published."""
    for p in record.pledges:
        if p.decision == decision and p.measure == measure:
            return p
    return None


def _latest(progress: tuple[ProgressReport, ...], decision: int, measure: int) -> ProgressReport | None:
    for p in reversed(progress):
        if p.decision == decision and p.measure == measure:
            return p
    return None


def _status(current: PledgeStatus, delayed: bool, percent: int | None) -> PledgeStatus:
    """A pledge's status after a report of ``percent`` (``None``: no report yet): done at 100 %;
    otherwise a missed pledge stays missed (until it is done or delayed), a delayed one delayed, and
    the others are in progress once something is reported."""
    if percent == 100:
        return PledgeStatus.DONE
    if current is PledgeStatus.MISSED:
        return current
    if delayed:
        return PledgeStatus.DELAYED
    return PledgeStatus.IN_PROGRESS if percent else PledgeStatus.PLEDGED


def publish_pledges(record: Consultation, decision: Decision, ctx: Context) -> tuple[dict[str, Any], Events]:
    """承诺制 at publication: each measure of ``decision`` becomes a pledge, once (a later
    publication of the same decision, on another channel, publishes none again); the pledges of an
    earlier decision that were not done are superseded by it (再次协商 took over what was left).
    The record's update and one ``pledge_published`` event per measure."""
    number = decision.number
    if not decision.measures or any(p.decision == number for p in record.pledges):
        return {}, []
    kept = tuple(
        p
        if p.status is PledgeStatus.DONE or p.status is PledgeStatus.SUPERSEDED
        else evolve(p, {"status": PledgeStatus.SUPERSEDED})
        for p in record.pledges
    )
    made: list[Pledge] = []
    events: Events = []
    for index, m in enumerate(decision.measures):
        latest = _latest(record.progress, number, index)
        status = _status(PledgeStatus.PLEDGED, False, None if latest is None else latest.percent)
        if status is not PledgeStatus.DONE and f"measure:{number}:{index}" in record.missed:
            status = PledgeStatus.MISSED  # its date passed before it was published
        made.append(
            make(
                Pledge,
                {
                    "decision": number,
                    "measure": index,
                    "title": m.title,
                    "owner": m.owner,
                    "budget": m.budget,
                    "pledged_due": m.due,
                    "due": m.due,
                    "published_at": ctx.now,
                    "status": status,
                    "delays": (),
                },
            )
        )
        events.append(
            (
                Event.PLEDGE_PUBLISHED,
                {
                    "budget": str(m.budget),
                    "decision": number,
                    "due": timestamp(m.due),
                    "measure": index,
                    "owner": m.owner,
                    "title": m.title,
                },
            )
        )
    return {"pledges": (*kept, *made)}, events


def pledges_after_progress(
    record: Consultation, decision: int, measure: int, percent: int
) -> tuple[Pledge, ...] | None:
    """The pledges once a report of ``percent`` on the measure is in, or ``None`` if nothing changes
    (the measure was not published as a pledge, or its status stays)."""
    found = pledge_of(record, decision, measure)
    if found is None:
        return None
    status = _status(found.status, bool(found.delays), percent)
    if status is found.status:
        return None
    return tuple(evolve(p, {"status": status}) if p is found else p for p in record.pledges)


def pledges_missed(record: Consultation, missed: Iterable[Deadline]) -> tuple[Pledge, ...] | None:
    """The pledges once the measure deadlines in ``missed`` are reported (决而不施): each one's pledge,
    if published and not done, is missed; ``None`` if nothing changes."""
    decision = record.current_decision
    if decision is None or not record.pledges:
        return None
    late = {d.measure for d in missed if d.kind == "measure"}
    if not late:
        return None
    keep = (PledgeStatus.DONE, PledgeStatus.MISSED)
    number = decision.number
    out = tuple(
        evolve(p, {"status": PledgeStatus.MISSED})
        if p.decision == number and p.measure in late and p.status not in keep
        else p
        for p in record.pledges
    )
    return out if any(a is not b for a, b in zip(out, record.pledges, strict=True)) else None


# ---- 延期: the committee moves a pledge's date ------------------------------------------------------------
def _pledge_delay(params: Parameters, record: Consultation, cmd: DelayPledge, ctx: Context) -> Failure | None:
    d = record.current_decision
    number = cmd.measure + 1
    found = pledge_of(record, d.number, cmd.measure) if d is not None else None
    if found is None:  # published before pledges were kept: publishing it again makes them
        return Failure("not_published")
    if found.status is PledgeStatus.DONE:
        return Failure("pledge_done", {"number": number, "title": found.title})
    limit = params.pledge_delay_limit
    if len(found.delays) >= limit:
        return Failure("delay_limit", {"number": number, "delays": len(found.delays), "limit": limit})
    if cmd.due <= found.due:
        return Failure("delay_not_later", {"number": number, "due": cmd.due, "current": found.due})
    if cmd.due <= ctx.now:
        return Failure("delay_in_past", {"number": number, "due": cmd.due})
    latest = found.pledged_due + params.pledge_delay_max
    if cmd.due > latest:
        return Failure(
            "delay_too_far",
            {
                "number": number,
                "due": cmd.due,
                "pledged": found.pledged_due,
                "days": days(params.pledge_delay_max),
                "latest": latest,
            },
        )
    return None


def _delay_pledge(proc: Governing, rec: Consultation, cmd: DelayPledge, ctx: Context, role: str, to: State) -> Effect:
    decision = rec.decisions[-1].number
    found = pledge_of(rec, decision, cmd.measure)
    assert found is not None  # the guard saw to it
    delay = make(
        PledgeDelay, {"from_due": found.due, "to_due": cmd.due, "reason": cmd.reason, "by": ctx.actor.id, "at": ctx.now}
    )
    moved = evolve(found, {"due": cmd.due, "delays": (*found.delays, delay), "status": PledgeStatus.DELAYED})
    data = {
        "decision": decision,
        "delays": len(moved.delays),
        "due": timestamp(cmd.due),
        "from_due": timestamp(found.due),
        "measure": cmd.measure,
        "owner": found.owner,
        "reason": cmd.reason,
        "title": found.title,
    }
    pledges = tuple(moved if p is found else p for p in rec.pledges)
    return {"pledges": pledges}, [(Event.PLEDGE_DELAYED, data)]


#: Who hears of a pledge: the public (residents hold its owner to it) and the owner named.
PLEDGE_AUDIENCE = (PUBLIC, PLEDGE_OWNER)

STEP = StepDefinition(
    name="pledge 承诺制",
    commands=(DelayPledge,),
    transitions=tuple(
        transition(Trigger.DELAY_PLEDGE, s, None, [Role.COMMITTEE], ["published", "measure_exists", "pledge_delay"])
        for s in _IN_FORCE
    ),
    guards=(
        Guard(
            "pledge_delay",
            _pledge_delay,
            ("not_published", "pledge_done", "delay_limit", "delay_not_later", "delay_in_past", "delay_too_far"),
            "a published pledge not yet done, moved later and into the future, at most pledge_delay_limit times "
            "and pledge_delay_max past the date decided (延期)",
            needs_command=True,
        ),
    ),
    effects={Trigger.DELAY_PLEDGE: _delay_pledge},
    audience={Event.PLEDGE_PUBLISHED: PLEDGE_AUDIENCE, Event.PLEDGE_DELAYED: PLEDGE_AUDIENCE},
)
