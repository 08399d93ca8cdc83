"""Deadlines as data (议而不决, 决而不施): which are pending, which have passed. Pure functions of the
record and a time; ``Engine.tick`` asks the store for records whose ``next_due`` has passed and
lets the core mark them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import attrs

from .records import Consultation, Decision, Pledge, ProgressReport
from .vocabulary import State

__all__ = ["Deadline", "measure_done", "measure_due", "next_due", "overdue", "pending_deadlines", "record_deadlines"]

_UNDECIDED = frozenset({State.NOTIFIED, State.CONSULTING})
_CARRYING_OUT = frozenset({State.FEEDBACK, State.SUPERVISING})


@attrs.frozen(slots=True)
class Deadline:
    """One deadline: a stable key (so it is reported once), its kind and when it falls due."""

    key: str
    kind: str  # "proposal" (unanswered), "decision" (议而不决), "review" (legality review), "measure" (决而不施),
    # "appeal" (the time to appeal a rejection runs out), "reconsideration" (an appeal unanswered)
    due: datetime
    measure: int | None = None


def measure_done(progress: tuple[ProgressReport, ...], decision: int, index: int) -> bool:
    """Whether the latest report on the measure says it is carried out (a later report can say
    it is not, any more)."""
    for p in reversed(progress):
        if p.decision == decision and p.measure == index:
            return p.percent == 100
    return False


def measure_due(decision: Decision, index: int, pledges: tuple[Pledge, ...]) -> tuple[str, datetime]:
    """A measure's deadline key and due date: the decision's, or - once the measure was published as a
    pledge and delayed (承诺制, 延期) - the pledge's latest date, under a key of its own so that the
    moved date is reported if it passes too."""
    key = f"measure:{decision.number}:{index}"
    for p in pledges:
        if p.decision == decision.number and p.measure == index:
            return (f"{key}:{len(p.delays)}", p.due) if p.delays else (key, p.due)
    return key, decision.measures[index].due


def pending_deadlines(
    state: State,
    cycle: int,
    respond_by: datetime | None,
    decision_due: datetime | None,
    review_due: datetime | None,
    decision: Decision | None,
    progress: tuple[ProgressReport, ...],
    missed: tuple[str, ...],
    pledges: tuple[Pledge, ...] = (),
) -> Iterator[Deadline]:
    """Deadlines that still apply in ``state`` and have not been reported yet."""
    if state is State.PROPOSED and respond_by is not None:
        key = "proposal"
        if key not in missed:
            yield Deadline(key, "proposal", respond_by)
    elif state is State.APPEALABLE and respond_by is not None:  # 申请复核: the proposer's time to appeal
        if "appeal" not in missed:
            yield Deadline("appeal", "appeal", respond_by)
    elif state is State.APPEALED and respond_by is not None:  # the sub-district's time to reconsider
        if "reconsideration" not in missed:
            yield Deadline("reconsideration", "reconsideration", respond_by)
    elif state in _UNDECIDED and decision_due is not None:
        key = f"decision:{cycle}"
        if key not in missed:
            yield Deadline(key, "decision", decision_due)
    elif state is State.DECIDED and review_due is not None and decision is not None:
        key = f"review:{decision.number}"
        if key not in missed:
            yield Deadline(key, "review", review_due)
    elif state in _CARRYING_OUT and decision is not None:
        for index in range(len(decision.measures)):
            key, due = (
                measure_due(decision, index, pledges)
                if pledges
                else (f"measure:{decision.number}:{index}", decision.measures[index].due)
            )
            if key not in missed and not measure_done(progress, decision.number, index):
                yield Deadline(key, "measure", due, index)


def next_due(
    state: State,
    cycle: int,
    respond_by: datetime | None,
    decision_due: datetime | None,
    review_due: datetime | None,
    decision: Decision | None,
    progress: tuple[ProgressReport, ...],
    missed: tuple[str, ...],
    pledges: tuple[Pledge, ...] = (),
) -> datetime | None:
    """The earliest pending deadline, stored on the record so stores can index it."""
    best: datetime | None = None
    for d in pending_deadlines(state, cycle, respond_by, decision_due, review_due, decision, progress, missed, pledges):
        if best is None or d.due < best:
            best = d.due
    return best


def record_deadlines(record: Consultation) -> Iterator[Deadline]:
    """The record's deadlines not reported yet (``pending_deadlines`` over its fields)."""
    return pending_deadlines(
        record.state,
        record.cycle,
        record.respond_by,
        record.decision_due,
        record.review_due,
        record.current_decision,
        record.progress,
        record.missed,
        record.pledges,
    )


def overdue(record: Consultation, now: datetime) -> list[Deadline]:
    """The record's deadlines that have passed by ``now`` and were not reported yet."""
    return [d for d in record_deadlines(record) if d.due <= now]
