"""The procedure's rules, one named function each. A procedure definition refers to them by name.

Two kinds:
- *guards* must hold or the command is refused; they return ``None`` or a ``Failure`` with data;
- *routes* choose between transitions of one trigger (``close_round`` ends in another round or in
  an escalation); they return a bool and never refuse on their own.

All are pure: (rules, record, command, context) in, a verdict out. ``needs_command`` marks the ones
that read the command, so ``Engine.allowed`` can check the rest without one. ``bounds_loop`` marks
the ones that bound a loop of the procedure: the definition check requires one on every cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from .commands import (
    Command,
    Decide,
    Notify,
    Propose,
    RecordOpinion,
    ReportProgress,
    ReviewLegality,
)
from .context import Context
from .deadlines import measure_done, overdue
from .records import Consultation, Round, Tally, make
from .refusals import Failure
from .roles import Role
from .rules import Rules
from .vocabulary import Carrier, Verdict

__all__ = ["GUARDS", "ROUTES", "Guard", "Route", "tally"]

GuardFn = Callable[[Rules, Any, Any, Context], Failure | None]
RouteFn = Callable[[Rules, Any, Any, Context], bool]

_RESIDENTS = frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE})
_HEARD_OUT = frozenset({Carrier.HEARING, Carrier.ADVISORY})  # carriers that conclude without consensus


@attrs.frozen(slots=True)
class Guard:
    name: str
    check: GuardFn
    needs_command: bool = False
    bounds_loop: bool = False
    doc: str = ""


@attrs.frozen(slots=True)
class Route:
    name: str
    test: RouteFn
    needs_command: bool = False
    bounds_loop: bool = False
    doc: str = ""


def _days(period: timedelta) -> int | float:
    days = period.total_seconds() / 86400
    return int(days) if days.is_integer() else round(days, 2)


def tally(rules: Rules, record: Consultation, rnd: Round) -> Tally:
    """Count a round: attendance against quorum, stances against the consensus rule."""
    support = oppose = abstain = amend = 0
    for op in rnd.opinions:
        s = op.stance.value
        if s == "support":
            support += 1
        elif s == "oppose":
            oppose += 1
        elif s == "amend":
            amend += 1
        else:
            abstain += 1
    attended = len(rnd.attendees)
    required = rules.quorum(len(record.invited))
    quorum_met = attended >= required
    consensus = quorum_met and rules.consensus.reached(support, oppose, amend)
    return make(
        Tally,
        {
            "attended": attended,
            "required": required,
            "support": support,
            "oppose": oppose,
            "abstain": abstain,
            "amend": amend,
            "rule": rules.consensus.kind,
            "quorum_met": quorum_met,
            "consensus": consensus,
        },
    )


# ---- proposal and notice -------------------------------------------------------------------------


def _topic_in_catalogue(rules: Rules, record: None, cmd: Propose, ctx: Context) -> Failure | None:
    cat = ctx.catalogue
    if cat.find(cmd.community, cmd.topic) is not None:
        return None
    if not cat.has_community(cmd.community):
        return Failure("unknown_community", {"community": cmd.community})
    return Failure("unknown_topic", {"topic": cmd.topic, "community": cmd.community})


def _budget_within_cap(rules: Rules, record: None, cmd: Propose, ctx: Context) -> Failure | None:
    cap = rules.budget_cap
    if cap is not None and cmd.budget is not None and cmd.budget > cap:
        return Failure("over_budget_cap", {"budget": cmd.budget, "cap": cap})
    return None


def _notice_long_enough(rules: Rules, record: Consultation, cmd: Notify, ctx: Context) -> Failure | None:
    earliest = ctx.now + rules.notice_period
    if cmd.meeting_at < earliest:
        return Failure("notice_too_short", {"days": _days(rules.notice_period), "earliest": earliest})
    return None


def _consultation_day_rules(rules: Rules, record: Consultation, cmd: Notify, ctx: Context) -> Failure | None:
    if record.form.value != "consultation_day":
        return None
    if cmd.chair is None:
        return Failure("chair_required")
    day = rules.consultation_day
    if day is not None and cmd.meeting_at.astimezone(rules.zone).day != day:
        return Failure("not_consultation_day", {"day": day, "meeting": cmd.meeting_at.astimezone(rules.zone)})
    return None


# ---- rounds ----------------------------------------------------------------------------------------


def _notice_served(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    s = record.schedule
    if s is None:
        return None
    if ctx.now < s.notice_ends:
        return Failure("notice_period", {"ends_at": s.notice_ends})
    if not record.rounds and ctx.now < s.meeting_at:
        # residents were told when the meeting is: the first round is that meeting (告知)
        return Failure("before_meeting", {"meeting_at": s.meeting_at})
    return None


def _previous_round_closed(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    if r is not None and r.closed_at is None:
        return Failure("round_still_open", {"round": r.number})
    return None


def _rounds_left(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    used = record.rounds_in_cycle
    if used >= rules.round_limit:
        return Failure("round_limit", {"used": used, "limit": rules.round_limit})
    return None


def _round_is_open(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    if r is None or r.closed_at is not None or r.cycle != record.cycle:
        return Failure("no_open_round")
    return None


def _first_opinion_in_round(rules: Rules, record: Consultation, cmd: RecordOpinion, ctx: Context) -> Failure | None:
    r = record.current_round
    if r is None:
        return None
    who = ctx.actor.id
    for op in r.opinions:
        if op.participant == who:
            return Failure("already_recorded", {"participant": who, "round": r.number})
    return None


def _no_consensus_at_limit(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> bool:
    # Hearings and advisory consultations need no consensus to conclude: their last round just closes.
    if record.carrier in _HEARD_OUT:
        return False
    r = record.current_round
    if r is None or r.closed_at is not None:
        return False
    return record.rounds_in_cycle >= rules.round_limit and not tally(rules, record, r).consensus


# ---- decision ------------------------------------------------------------------------------------


def _round_held(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    if r is None or r.cycle != record.cycle:
        return Failure("no_round")
    if r.closed_at is None:
        return Failure("round_open", {"round": r.number})
    d = record.current_decision
    if d is not None and d.round >= r.number:
        return Failure("needs_new_round", {"round": r.number})
    return None


def _quorum_met(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    r = record.current_round
    t = r.tally if r is not None else None
    if r is not None and t is not None and not t.quorum_met:
        return Failure("quorum_not_met", {"round": r.number, "attended": t.attended, "required": t.required})
    return None


def _consensus_reached(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    # Hearings and advisory consultations hear people out; they need no consensus to conclude.
    if record.carrier in _HEARD_OUT:
        return None
    r = record.current_round
    t = r.tally if r is not None else None
    if r is not None and t is not None and not t.consensus:
        return Failure(
            "no_consensus",
            {
                "round": r.number,
                "rule": t.rule,
                "support": t.support,
                "oppose": t.oppose,
                "amend": t.amend,
                "abstain": t.abstain,
            },
        )
    return None


def _residents_heard(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if not (record.major and rules.major_needs_residents):
        return None
    cycle = record.cycle
    if any(r.cycle == cycle and r.resident_attended for r in record.rounds):
        return None
    return Failure("major_needs_residents")


def _carrier_outcome(rules: Rules, record: Consultation, cmd: Decide, ctx: Context) -> Failure | None:
    carrier = record.carrier
    if carrier is Carrier.DECISION:
        if not cmd.measures:
            return Failure("measures_required")
        total = Decimal(0)
        for i, m in enumerate(cmd.measures):
            if m.due <= ctx.now:
                return Failure("measure_due_in_past", {"measure": i, "number": i + 1, "due": m.due})
            total += m.budget
        limit = record.budget if record.budget is not None else rules.budget_cap
        if limit is not None and total > limit:
            return Failure("over_budget", {"total": total, "budget": limit})
    elif carrier is Carrier.HEARING:
        if not cmd.hearing_record.strip():
            return Failure("hearing_record_required")
    elif carrier is Carrier.COORDINATION:
        if len(cmd.agreement_parties) < 2:
            return Failure("agreement_parties_required")
    elif cmd.advice_adopted is None:
        return Failure("advice_adoption_required")
    return None


# ---- legality review -------------------------------------------------------------------------------


def _lawful(rules: Rules, record: Consultation, cmd: ReviewLegality, ctx: Context) -> bool:
    return cmd.verdict is Verdict.LAWFUL


def _unlawful(rules: Rules, record: Consultation, cmd: ReviewLegality, ctx: Context) -> bool:
    return cmd.verdict is Verdict.UNLAWFUL


def _has_rounds_left(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> bool:
    return record.rounds_in_cycle < rules.round_limit


def _independent_reviewer(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    d = record.current_decision
    if rules.independent_review and d is not None and d.decided_by == ctx.actor.id:
        return Failure("reviewer_not_independent", {"reviewer": ctx.actor.id})
    return None


# ---- feedback and supervision ----------------------------------------------------------------------


def _measure_exists(rules: Rules, record: Consultation, cmd: ReportProgress, ctx: Context) -> Failure | None:
    d = record.current_decision
    count = len(d.measures) if d is not None else 0
    if cmd.measure >= count:
        return Failure("unknown_measure", {"measure": cmd.measure, "number": cmd.measure + 1, "count": count})
    return None


def _first_feedback(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    d = record.current_decision
    who = ctx.actor.id
    if d is not None and any(f.participant == who and f.decision == d.number for f in record.feedback):
        return Failure("feedback_given", {"participant": who})
    return None


def _published(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    d = record.current_decision
    if d is None or not any(p.decision == d.number for p in record.publications):
        return Failure("not_published")
    return None


def _measures_done(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    d = record.current_decision
    if d is None:
        return None
    pending = [m.title for i, m in enumerate(d.measures) if not measure_done(record.progress, d.number, i)]
    if pending:
        return Failure("measures_unfinished", {"pending": pending})
    return None


def _signed_off(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    cycle = record.cycle
    last = next((i for i in reversed(record.inspections) if i.cycle == cycle), None)
    if last is None or not last.passed:
        return Failure("inspection_pending")
    d = record.current_decision
    if d is not None:
        latest_report = max((p.seq for p in record.progress if p.decision == d.number), default=0)
        if latest_report > last.seq:  # log order, not clock time: clocks tie and drift
            return Failure("inspection_pending")
    return None


def _cycles_left(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if record.cycle >= rules.cycle_limit:
        return Failure("cycle_limit", {"used": record.cycle, "limit": rules.cycle_limit})
    return None


# ---- deadlines -------------------------------------------------------------------------------------


def _something_overdue(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if not overdue(record, ctx.now):
        return Failure("nothing_overdue")
    return None


def _undecided_escalates(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> bool:
    return rules.escalate_undecided and any(d.kind == "decision" for d in overdue(record, ctx.now))


def _unimplemented_escalates(rules: Rules, record: Consultation, cmd: Command, ctx: Context) -> bool:
    return rules.escalate_unimplemented and any(d.kind == "measure" for d in overdue(record, ctx.now))


GUARDS: Mapping[str, Guard] = {
    g.name: g
    for g in (
        Guard("topic_in_catalogue", _topic_in_catalogue, True, doc="the topic is an item of the catalogue"),
        Guard("budget_within_cap", _budget_within_cap, True, doc="the budget is within the cap"),
        Guard("notice_long_enough", _notice_long_enough, True, doc="the meeting leaves the notice period"),
        Guard("consultation_day_rules", _consultation_day_rules, True, doc="chair and fixed day"),
        Guard("notice_served", _notice_served, doc="the notice period has ended; a first round waits for the meeting"),
        Guard("previous_round_closed", _previous_round_closed, doc="no round is open"),
        Guard("rounds_left", _rounds_left, bounds_loop=True, doc="the round limit is not reached"),
        Guard("round_is_open", _round_is_open, doc="a round is open"),
        Guard("first_opinion_in_round", _first_opinion_in_round, doc="one opinion per person a round"),
        Guard("round_held", _round_held, doc="a closed round not yet used for a decision"),
        Guard("quorum_met", _quorum_met, doc="the round had its quorum"),
        Guard("consensus_reached", _consensus_reached, doc="the round reached consensus"),
        Guard("residents_heard", _residents_heard, doc="a major matter had residents in a round"),
        Guard("carrier_outcome", _carrier_outcome, True, doc="the decision holds what its carrier needs"),
        Guard("independent_reviewer", _independent_reviewer, doc="the reviewer did not decide"),
        Guard("measure_exists", _measure_exists, True, doc="the measure is one of the decision's"),
        Guard("first_feedback", _first_feedback, doc="one rating per resident and decision"),
        Guard("published", _published, doc="the outcome was made public"),
        Guard("measures_done", _measures_done, doc="every measure is carried out"),
        Guard("signed_off", _signed_off, doc="an inspection passed after the latest report"),
        Guard("cycles_left", _cycles_left, bounds_loop=True, doc="the re-consultation limit is not reached"),
        Guard("something_overdue", _something_overdue, doc="a deadline has passed"),
    )
}

ROUTES: Mapping[str, Route] = {
    r.name: r
    for r in (
        Route("no_consensus_at_limit", _no_consensus_at_limit, doc="the last allowed round failed"),
        Route("lawful", _lawful, True, doc="the verdict is lawful"),
        Route("unlawful", _unlawful, True, doc="the verdict is unlawful"),
        Route("has_rounds_left", _has_rounds_left, bounds_loop=True, doc="another round is allowed"),
        Route("undecided_escalates", _undecided_escalates, doc="an undecided matter is overdue"),
        Route("unimplemented_escalates", _unimplemented_escalates, doc="a measure is overdue"),
    )
}
