"""What each step does to the case file: the fields it changes and the events it logs.

One function per trigger, pure: (rules, record, command, context, role, target state) in, the
record's changed fields and the (event, data) pairs out. The core wraps them into log entries;
event data holds JSON values only (money as strings, times as ISO strings), never personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .commands import (
    Close,
    CloseRound,
    Command,
    Decide,
    Escalate,
    Inspect,
    Notify,
    OpenRound,
    Publish,
    RecordFeedback,
    RecordOpinion,
    Reject,
    ReportProgress,
    RequestReconsultation,
    Resume,
    ReviewLegality,
    Withdraw,
)
from .context import Context
from .deadlines import overdue
from .guards import tally
from .records import (
    Consultation,
    Decision,
    Inspection,
    LegalityReview,
    Opinion,
    ProgressReport,
    Publication,
    ResidentFeedback,
    Round,
    Schedule,
    evolve,
    make,
)
from .roles import Role
from .rules import Rules
from .vocabulary import Event, State, Verdict

__all__ = ["EFFECTS", "Effect", "Events"]

# Event data must be JSON values with keys in sorted order at every level: the hot path hashes it
# as it stands (``log.chain_hash``) and ``verify`` re-checks against sorted canonical JSON.
Events = list[tuple[Event, dict[str, Any]]]
Effect = tuple[dict[str, Any], Events]
EffectFn = Callable[[Rules, Consultation, Any, Context, str, State], Effect]

_RESIDENT_ROLES = frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE})


def _reject(rules: Rules, rec: Consultation, cmd: Reject, ctx: Context, role: str, to: State) -> Effect:
    return {}, [(Event.REJECTED, {"reason": cmd.reason})]


def _withdraw(rules: Rules, rec: Consultation, cmd: Withdraw, ctx: Context, role: str, to: State) -> Effect:
    update, events = _abandon_open_round(rules, rec, ctx, "withdrawn")
    events.append((Event.WITHDRAWN, {"reason": cmd.reason}))
    return update, events


def _notify(rules: Rules, rec: Consultation, cmd: Notify, ctx: Context, role: str, to: State) -> Effect:
    now = ctx.now
    notice_ends = now + rules.notice_period
    schedule = make(Schedule, {"notified_at": now, "notice_ends": notice_ends, "meeting_at": cmd.meeting_at})
    update = {
        "schedule": schedule,
        "invited": cmd.invite,
        "chair": cmd.chair,
        "decision_due": now + rules.decision_deadline,
    }
    data = {
        "chair": cmd.chair,
        "channels": [c.value for c in cmd.channels],
        "invited": len(cmd.invite),
        "meeting_at": cmd.meeting_at.isoformat(),
        "notice_ends": notice_ends.isoformat(),
        "venue": cmd.venue,
    }
    return update, [(Event.NOTIFIED, data)]


def _open_round(rules: Rules, rec: Consultation, cmd: OpenRound, ctx: Context, role: str, to: State) -> Effect:
    number = len(rec.rounds) + 1
    rnd = make(
        Round,
        {
            "number": number,
            "cycle": rec.cycle,
            "opened_at": ctx.now,
            "opened_by": ctx.actor.id,
            "agenda": cmd.agenda,
            "attendees": tuple(dict.fromkeys(cmd.attendees)),
            "resident_attended": False,
            "opinions": (),
            "closed_at": None,
            "summary": "",
            "tally": None,
        },
    )
    data = {"attendees": len(rnd.attendees), "cycle": rec.cycle, "round": number}
    return {"rounds": (*rec.rounds, rnd)}, [(Event.ROUND_OPENED, data)]


def _replace_last_round(rec: Consultation, rnd: Round) -> tuple[Round, ...]:
    return (*rec.rounds[:-1], rnd)


def _record_opinion(rules: Rules, rec: Consultation, cmd: RecordOpinion, ctx: Context, role: str, to: State) -> Effect:
    rnd = rec.rounds[-1]
    who = ctx.actor.id
    op = make(Opinion, {"participant": who, "role": role, "stance": cmd.stance, "text": cmd.text, "at": ctx.now})
    attendees = rnd.attendees if who in rnd.attendees else (*rnd.attendees, who)
    resident = rnd.resident_attended or not _RESIDENT_ROLES.isdisjoint(ctx.actor.roles)
    new = evolve(rnd, {"opinions": (*rnd.opinions, op), "attendees": attendees, "resident_attended": resident})
    data = {"round": rnd.number, "stance": cmd.stance.value, "text": cmd.text}
    return {"rounds": _replace_last_round(rec, new)}, [(Event.OPINION_RECORDED, data)]


def _close_open(rules: Rules, rec: Consultation, ctx: Context, summary: str, abandoned: bool) -> Effect:
    """Close the open round: tally it, stamp it, log ``round_closed`` with the figures."""
    rnd = rec.rounds[-1]
    t = tally(rules, rec, rnd)
    closed = evolve(rnd, {"closed_at": ctx.now, "summary": summary, "tally": t})
    data = {
        "abandoned": abandoned,
        "abstain": t.abstain,
        "amend": t.amend,
        "attended": t.attended,
        "consensus": t.consensus,
        "oppose": t.oppose,
        "quorum_met": t.quorum_met,
        "required": t.required,
        "round": rnd.number,
        "rule": t.rule,
        "summary": summary,
        "support": t.support,
    }
    return {"rounds": _replace_last_round(rec, closed)}, [(Event.ROUND_CLOSED, data)]


def _close_round(rules: Rules, rec: Consultation, cmd: CloseRound, ctx: Context, role: str, to: State) -> Effect:
    update, events = _close_open(rules, rec, ctx, cmd.summary, abandoned=False)
    if to is State.ESCALATED:
        events.append((Event.ESCALATED, {"reason": "no_consensus_at_round_limit", "rounds": rec.rounds_in_cycle}))
    return update, events


def _decide(rules: Rules, rec: Consultation, cmd: Decide, ctx: Context, role: str, to: State) -> Effect:
    number = len(rec.decisions) + 1
    d = make(
        Decision,
        {
            "number": number,
            "cycle": rec.cycle,
            "round": rec.rounds[-1].number,
            "resolution": cmd.resolution,
            "decided_by": ctx.actor.id,
            "decided_at": ctx.now,
            "measures": cmd.measures,
            "advice_adopted": cmd.advice_adopted,
            "hearing_record": cmd.hearing_record,
            "agreement_parties": cmd.agreement_parties,
        },
    )
    data = {
        "advice_adopted": cmd.advice_adopted,
        "agreement_parties": list(cmd.agreement_parties),
        "budget": str(d.budget),
        "decision": number,
        "hearing_record": bool(cmd.hearing_record),
        "measures": [
            {"budget": str(m.budget), "due": m.due.isoformat(), "owner": m.owner, "title": m.title}
            for m in cmd.measures
        ],
        "resolution": cmd.resolution,
        "round": d.round,
    }
    update = {"decisions": (*rec.decisions, d), "review_due": ctx.now + rules.review_deadline}
    return update, [(Event.DECIDED, data)]


def _review(rules: Rules, rec: Consultation, cmd: ReviewLegality, ctx: Context, role: str, to: State) -> Effect:
    decision = rec.decisions[-1].number
    review = make(
        LegalityReview,
        {
            "decision": decision,
            "reviewer": ctx.actor.id,
            "verdict": cmd.verdict,
            "legal_basis": cmd.legal_basis,
            "correction": cmd.correction,
            "education_note": cmd.education_note,
            "at": ctx.now,
        },
    )
    data = {
        "correction": cmd.correction,
        "decision": decision,
        "education_note": cmd.education_note,
        "legal_basis": cmd.legal_basis,
        "verdict": cmd.verdict.value,
    }
    events: Events = [(Event.LEGALITY_REVIEWED, data)]
    update: dict[str, Any] = {"reviews": (*rec.reviews, review), "review_due": None}
    if cmd.verdict is Verdict.UNLAWFUL:
        if to is State.ESCALATED:
            events.append((Event.ESCALATED, {"reason": "unlawful_at_round_limit", "rounds": rec.rounds_in_cycle}))
        else:
            # 依法纠正: the corrected decision gets a deadline of its own, counted from the verdict
            update["decision_due"] = ctx.now + rules.decision_deadline
    return update, events


def _publish(rules: Rules, rec: Consultation, cmd: Publish, ctx: Context, role: str, to: State) -> Effect:
    decision = rec.decisions[-1].number
    pub = make(
        Publication,
        {"decision": decision, "channels": cmd.channels, "summary": cmd.summary, "by": ctx.actor.id, "at": ctx.now},
    )
    data = {"channels": [c.value for c in cmd.channels], "decision": decision, "summary": cmd.summary}
    return {"publications": (*rec.publications, pub)}, [(Event.PUBLISHED, data)]


def _report_progress(
    rules: Rules, rec: Consultation, cmd: ReportProgress, ctx: Context, role: str, to: State
) -> Effect:
    decision = rec.decisions[-1].number
    rep = make(
        ProgressReport,
        {
            "decision": decision,
            "measure": cmd.measure,
            "seq": rec.version + 1,
            "percent": cmd.percent,
            "spent": cmd.spent,
            "note": cmd.note,
            "by": ctx.actor.id,
            "at": ctx.now,
        },
    )
    data = {
        "decision": decision,
        "measure": cmd.measure,
        "note": cmd.note,
        "percent": cmd.percent,
        "spent": str(cmd.spent),
    }
    return {"progress": (*rec.progress, rep)}, [(Event.PROGRESS_REPORTED, data)]


def _record_feedback(
    rules: Rules, rec: Consultation, cmd: RecordFeedback, ctx: Context, role: str, to: State
) -> Effect:
    decision = rec.decisions[-1].number
    fb = make(
        ResidentFeedback,
        {
            "decision": decision,
            "participant": ctx.actor.id,
            "satisfaction": cmd.satisfaction,
            "comment": cmd.comment,
            "at": ctx.now,
        },
    )
    data = {"comment": cmd.comment, "decision": decision, "satisfaction": cmd.satisfaction}
    return {"feedback": (*rec.feedback, fb)}, [(Event.FEEDBACK_RECEIVED, data)]


def _start_supervision(rules: Rules, rec: Consultation, cmd: Command, ctx: Context, role: str, to: State) -> Effect:
    return {}, [(Event.SUPERVISION_STARTED, {"decision": rec.decisions[-1].number})]


def _inspect(rules: Rules, rec: Consultation, cmd: Inspect, ctx: Context, role: str, to: State) -> Effect:
    ins = make(
        Inspection,
        {
            "cycle": rec.cycle,
            "seq": rec.version + 1,
            "inspector": ctx.actor.id,
            "passed": cmd.passed,
            "findings": cmd.findings,
            "at": ctx.now,
        },
    )
    data = {"cycle": rec.cycle, "findings": cmd.findings, "passed": cmd.passed}
    return {"inspections": (*rec.inspections, ins)}, [(Event.INSPECTED, data)]


def _new_cycle(rules: Rules, rec: Consultation, ctx: Context) -> dict[str, Any]:
    return {"cycle": rec.cycle + 1, "decision_due": ctx.now + rules.decision_deadline}


def _request_reconsultation(
    rules: Rules, rec: Consultation, cmd: RequestReconsultation, ctx: Context, role: str, to: State
) -> Effect:
    data = {"cycle": rec.cycle + 1, "problems": cmd.problems}
    return _new_cycle(rules, rec, ctx), [(Event.RECONSULTATION_REQUESTED, data)]


def _abandon_open_round(rules: Rules, rec: Consultation, ctx: Context, why: str) -> Effect:
    """Close a round left open when the matter leaves consultation (escalated or withdrawn), so
    the case file never keeps a round that can be neither closed nor replaced."""
    rnd = rec.current_round
    if rnd is None or rnd.closed_at is not None:
        return {}, []
    return _close_open(rules, rec, ctx, why, abandoned=True)


def _escalate(rules: Rules, rec: Consultation, cmd: Escalate, ctx: Context, role: str, to: State) -> Effect:
    update, events = _abandon_open_round(rules, rec, ctx, "escalated")
    events.append((Event.ESCALATED, {"reason": cmd.reason}))
    return update, events


def _resume(rules: Rules, rec: Consultation, cmd: Resume, ctx: Context, role: str, to: State) -> Effect:
    data = {"cycle": rec.cycle + 1, "instructions": cmd.instructions}
    return _new_cycle(rules, rec, ctx), [(Event.RESUMED, data)]


def _close(rules: Rules, rec: Consultation, cmd: Close, ctx: Context, role: str, to: State) -> Effect:
    return {}, [(Event.CLOSED, {"by_ruling": rec.state is State.ESCALATED, "summary": cmd.summary})]


def _mark_overdue(rules: Rules, rec: Consultation, cmd: Command, ctx: Context, role: str, to: State) -> Effect:
    missed = overdue(rec, ctx.now)
    events: Events = [
        (
            Event.DEADLINE_MISSED,
            {"deadline": d.key, "due": d.due.isoformat(), "kind": d.kind, "measure": d.measure},
        )
        for d in missed
    ]
    update: dict[str, Any] = {"missed": (*rec.missed, *(d.key for d in missed))}
    if to is State.ESCALATED:
        abandoned, closing = _abandon_open_round(rules, rec, ctx, "escalated: overdue")
        update.update(abandoned)
        events.extend(closing)
        events.append((Event.ESCALATED, {"deadlines": [d.key for d in missed], "reason": "overdue"}))
    return update, events


EFFECTS: Mapping[str, EffectFn] = {
    "reject": _reject,
    "withdraw": _withdraw,
    "notify": _notify,
    "open_round": _open_round,
    "record_opinion": _record_opinion,
    "close_round": _close_round,
    "decide": _decide,
    "review": _review,
    "publish": _publish,
    "report_progress": _report_progress,
    "record_feedback": _record_feedback,
    "start_supervision": _start_supervision,
    "inspect": _inspect,
    "request_reconsultation": _request_reconsultation,
    "escalate": _escalate,
    "resume": _resume,
    "close": _close,
    "mark_overdue": _mark_overdue,
}
