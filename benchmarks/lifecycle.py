"""Full-lifecycle benchmark: consultflow against a transitions Machine per record and a plain dict table.

Run from the project root:

    .venv/bin/python benchmarks/lifecycle.py            # about a minute
    .venv/bin/python benchmarks/lifecycle.py --quick    # smoke run, a few seconds
    .venv/bin/python benchmarks/lifecycle.py --profile  # cProfile of the consultflow Engine lifecycle

One lifecycle is 17 commands on one consultation (decision carrier, major matter, consultation day):
propose, notify, open round, 5 opinions, close round, decide (2 measures), legality review lawful,
publish, progress 100% on each measure, start supervision, inspect passed, close. Every variant
writes the same 17 hash-chained log entries (SHA-256 over the same canonical JSON; a start-up check
asserts the baselines' chains are byte for byte the Engine's) and ends in ``closed``.

Throughput variants are run in interleaved repetitions (one batch of each per repetition, the order
rotated each time), and medians are reported, so a noisy shared machine affects all alike. See
``benchmarks/README.md`` for what each figure includes. The script always exits 0: it is a report.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import math
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import version
from typing import Any, NamedTuple

from transitions import Machine

import consultflow as cf
from consultflow.procedure import NEW, six_step_transitions

# ================================================================================================
# The story every variant runs
# ================================================================================================

COMMUNITY = "xiaotaoyuan"
TOPIC = "public-affairs/night-parking"
DESCRIPTION = "Open the east lot for night parking"
BUDGET = Decimal("120000")
INVITE = ("li", "zhang", "zhao", "wu", "chen", "liu")
OPINIONS = (  # 5 opinions: 3 support, 1 amend, 1 abstain -> consensus under the 2/3 rule
    ("li", cf.Stance.SUPPORT, "no parking at night"),
    ("zhang", cf.Stance.SUPPORT, ""),
    ("zhao", cf.Stance.AMEND, "mark the bays first"),
    ("wu", cf.Stance.SUPPORT, ""),
    ("liu", cf.Stance.ABSTAIN, ""),
)
M0_BUDGET, M1_BUDGET = Decimal("80000"), Decimal("30000")
M0_SPENT, M1_SPENT = Decimal("79000"), Decimal("29500")
STEPS_PER_LIFECYCLE = 12 + len(OPINIONS)

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "wang": ("committee",),
    "li": ("resident",),
    "zhang": ("resident_representative",),
    "zhao": ("property_management",),
    "wu": ("resident",),
    "chen": ("rotating_chair", "resident"),
    "liu": ("expert",),
    "sun": ("supervisor",),
    "zhou": ("inspection_group",),
}
CAST: dict[str, cf.Actor] = {name: cf.Actor(name, roles=set(roles)) for name, roles in ROLE_NAMES.items()}

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
SPAN = timedelta(days=15)  # lifecycle i starts at T0 + i * SPAN, so one clock only moves forward
H, D = timedelta(hours=1), timedelta(days=1)


class Times(NamedTuple):
    """When each step of one lifecycle happens (and the dates its commands carry)."""

    propose: datetime
    notify: datetime
    meeting: datetime
    open: datetime
    close_round: datetime
    decide: datetime
    review: datetime
    publish: datetime
    progress0: datetime
    progress1: datetime
    supervise: datetime
    inspect: datetime
    close: datetime
    due0: datetime
    due1: datetime


_OFFSETS = (0 * H, 1 * H, 4 * D, 4 * D, 4 * D + 2 * H, 4 * D + 3 * H, 4 * D + 4 * H, 4 * D + 5 * H)
_OFFSETS += (10 * D, 11 * D, 12 * D, 13 * D, 14 * D, 60 * D, 90 * D)


def times_for(i: int) -> Times:
    base = T0 + i * SPAN
    return Times(*(base + off for off in _OFFSETS))


# ================================================================================================
# consultflow
# ================================================================================================

Script = list[tuple[cf.Command, cf.Actor, datetime]]


def cf_catalogue() -> cf.Catalogue:
    return cf.Catalogue().with_community(COMMUNITY, {TOPIC: "night parking"})


def cf_propose(title: str = "Night parking", cid: str | None = None) -> cf.Propose:
    return cf.Propose(
        community=COMMUNITY,
        topic=TOPIC,
        title=title,
        description=DESCRIPTION,
        carrier=cf.Carrier.DECISION,
        form=cf.Form.CONSULTATION_DAY,
        major=True,
        budget=BUDGET,
        id=cid,
    )


def cf_commands(cid: str, t: Times) -> Script:
    """The 16 commands after the proposal, built (and validated by pydantic) here."""
    c = CAST
    return [
        (
            cf.Notify(
                consultation=cid,
                meeting_at=t.meeting,
                invite=INVITE,
                chair="chen",
                venue="studio",
                channels=(cf.Channel.NOTICE_BOARD, cf.Channel.WECHAT),
            ),
            c["wang"],
            t.notify,
        ),
        (cf.OpenRound(consultation=cid, agenda="night parking"), c["chen"], t.open),
        *(
            (cf.RecordOpinion(consultation=cid, stance=stance, text=text), c[who], t.open)
            for who, stance, text in OPINIONS
        ),
        (cf.CloseRound(consultation=cid, summary="consensus"), c["chen"], t.close_round),
        (
            cf.Decide(
                consultation=cid,
                resolution="open the east lot at night, 100 yuan a month",
                measures=(
                    cf.Measure(title="mark the bays", owner="zhao", due=t.due0, budget=M0_BUDGET),
                    cf.Measure(title="install the gate", owner="wang", due=t.due1, budget=M1_BUDGET),
                ),
            ),
            c["wang"],
            t.decide,
        ),
        (cf.ReviewLegality(consultation=cid, verdict=cf.Verdict.LAWFUL), c["sun"], t.review),
        (
            cf.Publish(consultation=cid, channels=(cf.Channel.NOTICE_BOARD, cf.Channel.WECHAT), summary="plan"),
            c["wang"],
            t.publish,
        ),
        (
            cf.ReportProgress(consultation=cid, measure=0, percent=100, spent=M0_SPENT, note="bays marked"),
            c["wang"],
            t.progress0,
        ),
        (
            cf.ReportProgress(consultation=cid, measure=1, percent=100, spent=M1_SPENT, note="gate in use"),
            c["wang"],
            t.progress1,
        ),
        (cf.StartSupervision(consultation=cid), c["wang"], t.supervise),
        (cf.Inspect(consultation=cid, passed=True, findings="signed off"), c["zhou"], t.inspect),
        (cf.Close(consultation=cid, summary="done"), c["wang"], t.close),
    ]


def cf_script(i: int, t: Times) -> Script:
    cid = f"bench-{i:06d}"
    return [(cf_propose(cid=cid), CAST["li"], t.propose), *cf_commands(cid, t)]


def cf_engine() -> tuple[cf.Engine, cf.SimulatedClock]:
    clock = cf.SimulatedClock(T0)
    counter = iter(range(1, 1 << 62))
    engine = cf.Engine(
        cf.six_step(), cf.MemoryStore(), clock=clock, catalogue=cf_catalogue(), ids=lambda: f"cf-{next(counter):06d}"
    )
    return engine, clock


def cf_engine_lifecycle(engine: cf.Engine, clock: cf.SimulatedClock, t: Times) -> str:
    """What an application does: build each command, execute it (commands built in the loop)."""
    clock.set(t.propose)
    cid = engine.execute(cf_propose(), by=CAST["li"]).id
    for cmd, actor, at in cf_commands(cid, t):
        clock.set(at)
        engine.execute(cmd, by=actor)
    return cid


def cf_engine_replay(engine: cf.Engine, clock: cf.SimulatedClock, script: Script) -> None:
    for cmd, actor, at in script:
        clock.set(at)
        engine.execute(cmd, by=actor)


def cf_core_lifecycle(
    procedure: cf.Procedure, catalogue: cf.Catalogue, cid: str, t: Times, log: list[cf.LogEntry]
) -> cf.Consultation:
    """What a simulation does: build commands, chain records through ``decide``, keep the log."""
    decide, context = cf.decide, cf.Context
    step = decide(procedure, None, cf_propose(), context(t.propose, CAST["li"], cid, catalogue))
    if isinstance(step, cf.Refused):
        raise step
    record = step.record
    log.extend(step.entries)
    for cmd, actor, at in cf_commands(cid, t):
        step = decide(procedure, record, cmd, context(at, actor, None, catalogue))
        if isinstance(step, cf.Refused):
            raise step
        record = step.record
        log.extend(step.entries)
    return record


def cf_core_replay(
    procedure: cf.Procedure, catalogue: cf.Catalogue, script: Script, log: list[cf.LogEntry]
) -> cf.Consultation:
    decide, context = cf.decide, cf.Context
    record = None
    for cmd, actor, at in script:
        step = decide(procedure, record, cmd, context(at, actor, None, catalogue))
        if isinstance(step, cf.Refused):
            raise step
        record = step.record
        log.extend(step.entries)
    assert record is not None
    return record


# ================================================================================================
# Baselines: the same procedure by hand. Shared by both baselines below: the rules (as plain
# functions over a dict of fields), the effects (mutating that dict), the hash-chained log and the
# outbox. Records hold the same fields as ``consultflow.Consultation``, with the same value types
# (tuples for sub-records, datetimes, Decimal), so memory figures compare like with like.
# ================================================================================================

NOTICE_PERIOD = timedelta(days=3)
PROPOSAL_DEADLINE = timedelta(days=14)
DECISION_DEADLINE = timedelta(days=30)
MIN_ATTENDANCE, QUORUM_RATIO, THRESHOLD = 3, 0.5, 2 / 3
ROUND_LIMIT = CYCLE_LIMIT = 3
BUDGET_CAP = Decimal(300_000)
CATALOGUE = frozenset({(COMMUNITY, TOPIC)})
ROLE_ORDER = {r.value: i for i, r in enumerate(cf.Role)}
RELATIONAL = frozenset({"proposer", "rotating_chair"})
RESIDENTS = frozenset({"resident", "resident_representative"})
UNDECIDED, CARRYING_OUT = frozenset({"notified", "consulting"}), frozenset({"feedback", "supervising"})


class Who(NamedTuple):
    id: str
    roles: frozenset[str]


WHO: dict[str, Who] = {name: Who(name, frozenset(roles)) for name, roles in ROLE_NAMES.items()}

Rec = dict[str, Any]  # the record's fields: a dict record itself, or a Machine model's __dict__
Args = Mapping[str, Any]


class BaselineStore:
    """Records, logs and outbox in dicts (what MemoryStore keeps, without its checks)."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.outbox: dict[str, dict[str, Any]] = {}


def blank(cid: str) -> Rec:
    return {
        "schema_version": 1,
        "id": cid,
        "community": "",
        "topic": "",
        "title": "",
        "description": "",
        "proposer": "",
        "form": "",
        "carrier": "",
        "major": False,
        "budget": None,
        "state": NEW,
        "version": 0,
        "head": "",
        "procedure": "six-step",
        "procedure_version": "1",
        "cycle": 1,
        "proposed_at": None,
        "respond_by": None,
        "schedule": None,
        "decision_due": None,
        "invited": (),
        "chair": None,
        "rounds": (),
        "decisions": (),
        "reviews": (),
        "publications": (),
        "progress": (),
        "feedback": (),
        "inspections": (),
        "missed": (),
        "next_due": None,
    }


def authorise(allowed: frozenset[str], r: Rec, who: Who) -> str | None:
    best = None
    for role in who.roles & allowed:
        if role not in RELATIONAL and (best is None or ROLE_ORDER[role] < ROLE_ORDER[best]):
            best = role
    if best is not None:
        return best
    if "proposer" in allowed and r["proposer"] == who.id:
        return "proposer"
    if "rotating_chair" in allowed and "rotating_chair" in who.roles and r["chair"] == who.id:
        return "rotating_chair"
    return None


def _rounds_in_cycle(r: Rec) -> int:
    cycle = r["cycle"]
    return sum(1 for rnd in r["rounds"] if rnd["cycle"] == cycle)


def _tally(r: Rec, rnd: Rec) -> dict[str, Any]:
    counts = {"support": 0, "oppose": 0, "abstain": 0, "amend": 0}
    for op in rnd["opinions"]:
        counts[op["stance"]] += 1
    attended = len(rnd["attendees"])
    required = max(MIN_ATTENDANCE, math.ceil(QUORUM_RATIO * len(r["invited"]) - 1e-9))
    quorum_met = attended >= required
    s, o, a = counts["support"], counts["oppose"], counts["amend"]
    consensus = quorum_met and s > 0 and s >= THRESHOLD * (s + o + a) - 1e-9
    return {"attended": attended, "required": required, **counts, "rule": "threshold"} | {
        "quorum_met": quorum_met,
        "consensus": consensus,
    }


def _measure_done(r: Rec, decision: int, index: int) -> bool:
    return any(p["decision"] == decision and p["measure"] == index and p["percent"] == 100 for p in r["progress"])


def _deadlines(r: Rec) -> Iterable[tuple[str, str, datetime]]:
    state, missed = r["state"], r["missed"]
    if state == "proposed" and r["respond_by"] is not None and "proposal" not in missed:
        yield "proposal", "proposal", r["respond_by"]
    elif state in UNDECIDED and r["decision_due"] is not None:
        key = f"decision:{r['cycle']}"
        if key not in missed:
            yield key, "decision", r["decision_due"]
    elif state in CARRYING_OUT and r["decisions"]:
        d = r["decisions"][-1]
        for i, m in enumerate(d["measures"]):
            key = f"measure:{d['number']}:{i}"
            if key not in missed and not _measure_done(r, d["number"], i):
                yield key, "measure", m["due"]


def _next_due(r: Rec) -> datetime | None:
    return min((due for _, _, due in _deadlines(r)), default=None)


def _overdue(r: Rec, now: datetime) -> list[tuple[str, str, datetime]]:
    return [d for d in _deadlines(r) if d[2] <= now]


# ---- rules: (fields, args, now, who) -> bool -------------------------------------------------------


def topic_in_catalogue(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return (a["community"], a["topic"]) in CATALOGUE


def budget_within_cap(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return a.get("budget") is None or a["budget"] <= BUDGET_CAP


def notice_long_enough(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return a["meeting_at"] >= now + NOTICE_PERIOD


def consultation_day_rules(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return r["form"] != "consultation_day" or a.get("chair") is not None


def notice_served(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return r["schedule"] is None or now >= r["schedule"]["notice_ends"]


def previous_round_closed(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return not r["rounds"] or r["rounds"][-1]["closed_at"] is not None


def rounds_left(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return _rounds_in_cycle(r) < ROUND_LIMIT


def round_is_open(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    rnd = r["rounds"][-1] if r["rounds"] else None
    return rnd is not None and rnd["closed_at"] is None and rnd["cycle"] == r["cycle"]


def first_opinion_in_round(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return not r["rounds"] or all(op["participant"] != who.id for op in r["rounds"][-1]["opinions"])


def no_consensus_at_limit(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    rnd = r["rounds"][-1] if r["rounds"] else None
    if rnd is None or rnd["closed_at"] is not None:
        return False
    return _rounds_in_cycle(r) >= ROUND_LIMIT and not _tally(r, rnd)["consensus"]


def round_held(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    rnd = r["rounds"][-1] if r["rounds"] else None
    if rnd is None or rnd["cycle"] != r["cycle"] or rnd["closed_at"] is None:
        return False
    return not r["decisions"] or r["decisions"][-1]["round"] < rnd["number"]


def quorum_met(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    t = r["rounds"][-1]["tally"] if r["rounds"] else None
    return t is None or t["quorum_met"]


def consensus_reached(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    if r["carrier"] in ("hearing", "advisory"):
        return True
    t = r["rounds"][-1]["tally"] if r["rounds"] else None
    return t is None or t["consensus"]


def residents_heard(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    cycle = r["cycle"]
    return not r["major"] or any(rnd["cycle"] == cycle and rnd["resident_attended"] for rnd in r["rounds"])


def carrier_outcome(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    carrier = r["carrier"]
    if carrier == "decision":
        measures = a.get("measures", ())
        if not measures or any(m["due"] <= now for m in measures):
            return False
        limit = r["budget"] if r["budget"] is not None else BUDGET_CAP
        return sum((m["budget"] for m in measures), Decimal(0)) <= limit
    if carrier == "hearing":
        return bool(a.get("hearing_record", "").strip())
    if carrier == "coordination":
        return len(a.get("agreement_parties", ())) >= 2
    return a.get("advice_adopted") is not None


def lawful(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return a["verdict"] == "lawful"


def unlawful(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return a["verdict"] == "unlawful"


def has_rounds_left(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return _rounds_in_cycle(r) < ROUND_LIMIT


def independent_reviewer(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return not r["decisions"] or r["decisions"][-1]["decided_by"] != who.id


def measure_exists(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return bool(r["decisions"]) and a["measure"] < len(r["decisions"][-1]["measures"])


def published(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    d = r["decisions"][-1] if r["decisions"] else None
    return d is not None and any(p["decision"] == d["number"] for p in r["publications"])


def measures_done(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    d = r["decisions"][-1] if r["decisions"] else None
    return d is None or all(_measure_done(r, d["number"], i) for i in range(len(d["measures"])))


def signed_off(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    cycle = r["cycle"]
    last = next((i for i in reversed(r["inspections"]) if i["cycle"] == cycle), None)
    if last is None or not last["passed"]:
        return False
    d = r["decisions"][-1] if r["decisions"] else None
    if d is None:
        return True
    latest = max((p["at"] for p in r["progress"] if p["decision"] == d["number"]), default=None)
    return latest is None or latest <= last["at"]


def cycles_left(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return r["cycle"] < CYCLE_LIMIT


def something_overdue(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return bool(_overdue(r, now))


def undecided_escalates(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return any(kind == "decision" for _, kind, _ in _overdue(r, now))


def unimplemented_escalates(r: Rec, a: Args, now: datetime, who: Who) -> bool:
    return False  # escalate_unimplemented is off by default


RuleFn = Callable[[Rec, Args, datetime, Who], bool]
RULES: dict[str, RuleFn] = {
    f.__name__: f
    for f in (
        topic_in_catalogue,
        budget_within_cap,
        notice_long_enough,
        consultation_day_rules,
        notice_served,
        previous_round_closed,
        rounds_left,
        round_is_open,
        first_opinion_in_round,
        no_consensus_at_limit,
        round_held,
        quorum_met,
        consensus_reached,
        residents_heard,
        carrier_outcome,
        lawful,
        unlawful,
        has_rounds_left,
        independent_reviewer,
        measure_exists,
        published,
        measures_done,
        signed_off,
        cycles_left,
        something_overdue,
        undecided_escalates,
        unimplemented_escalates,
    )
}


# ---- effects: mutate the fields, return the (event, data) pairs to log ---------------------------

Events = list[tuple[str, dict[str, Any]]]


def e_propose(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    respond_by = now + PROPOSAL_DEADLINE
    r.update(
        community=a["community"],
        topic=a["topic"],
        title=a["title"],
        description=a.get("description", ""),
        proposer=who.id,
        form=a["form"],
        carrier=a["carrier"],
        major=a.get("major", False),
        budget=a.get("budget"),
        proposed_at=now,
        respond_by=respond_by,
    )
    data = {
        "community": a["community"],
        "topic": a["topic"],
        "title": a["title"],
        "carrier": a["carrier"],
        "form": a["form"],
        "major": r["major"],
        "budget": None if r["budget"] is None else str(r["budget"]),
        "procedure": r["procedure"],
        "procedure_version": r["procedure_version"],
    }
    return [("proposed", data)]


def e_reject(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    return [("rejected", {"reason": a["reason"]})]


def e_withdraw(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    return [*_close_open_round(r, now, "withdrawn", abandoned=True), ("withdrawn", {"reason": a["reason"]})]


def e_notify(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    notice_ends = now + NOTICE_PERIOD
    r["schedule"] = {"notified_at": now, "notice_ends": notice_ends, "meeting_at": a["meeting_at"]}
    r["invited"] = a["invite"]
    r["chair"] = a.get("chair")
    r["decision_due"] = now + DECISION_DEADLINE
    data = {
        "meeting_at": a["meeting_at"].isoformat(),
        "notice_ends": notice_ends.isoformat(),
        "invited": len(a["invite"]),
        "chair": a.get("chair"),
        "venue": a.get("venue", ""),
        "channels": list(a["channels"]),
    }
    return [("notified", data)]


def e_open_round(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    number = len(r["rounds"]) + 1
    rnd = {
        "number": number,
        "cycle": r["cycle"],
        "opened_at": now,
        "opened_by": who.id,
        "agenda": a.get("agenda", ""),
        "attendees": tuple(dict.fromkeys(a.get("attendees", ()))),
        "resident_attended": False,
        "opinions": (),
        "closed_at": None,
        "summary": "",
        "tally": None,
    }
    r["rounds"] = (*r["rounds"], rnd)
    return [("round_opened", {"round": number, "cycle": r["cycle"], "attendees": len(rnd["attendees"])})]


def e_record_opinion(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    rnd = r["rounds"][-1]
    op = {"participant": who.id, "role": role, "stance": a["stance"], "text": a.get("text", ""), "at": now}
    rnd["opinions"] = (*rnd["opinions"], op)
    if who.id not in rnd["attendees"]:
        rnd["attendees"] = (*rnd["attendees"], who.id)
    rnd["resident_attended"] = rnd["resident_attended"] or not RESIDENTS.isdisjoint(who.roles)
    return [("opinion_recorded", {"round": rnd["number"], "stance": a["stance"], "text": op["text"]})]


def _close_open_round(r: Rec, now: datetime, summary: str, abandoned: bool) -> Events:
    rnd = r["rounds"][-1] if r["rounds"] else None
    if rnd is None or rnd["closed_at"] is not None:
        return []
    t = _tally(r, rnd)
    rnd.update(closed_at=now, summary=summary, tally=t)
    return [("round_closed", {"abandoned": abandoned, "round": rnd["number"], **t, "summary": summary})]


def e_close_round(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    events = _close_open_round(r, now, a.get("summary", ""), abandoned=False)
    if to == "escalated":
        events.append(("escalated", {"reason": "no_consensus_at_round_limit", "rounds": _rounds_in_cycle(r)}))
    return events


def e_decide(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    number = len(r["decisions"]) + 1
    measures = tuple(a.get("measures", ()))
    d = {
        "number": number,
        "cycle": r["cycle"],
        "round": r["rounds"][-1]["number"],
        "resolution": a["resolution"],
        "decided_by": who.id,
        "decided_at": now,
        "measures": measures,
        "advice_adopted": a.get("advice_adopted"),
        "hearing_record": a.get("hearing_record", ""),
        "agreement_parties": tuple(a.get("agreement_parties", ())),
    }
    r["decisions"] = (*r["decisions"], d)
    data = {
        "decision": number,
        "round": d["round"],
        "resolution": d["resolution"],
        "measures": [
            {"title": m["title"], "owner": m["owner"], "due": m["due"].isoformat(), "budget": str(m["budget"])}
            for m in measures
        ],
        "budget": str(sum((m["budget"] for m in measures), Decimal(0))),
        "advice_adopted": d["advice_adopted"],
        "agreement_parties": list(d["agreement_parties"]),
        "hearing_record": bool(d["hearing_record"]),
    }
    return [("decided", data)]


def e_review(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    decision = r["decisions"][-1]["number"]
    review = {
        "decision": decision,
        "reviewer": who.id,
        "verdict": a["verdict"],
        "legal_basis": a.get("legal_basis", ""),
        "correction": a.get("correction", ""),
        "education_note": a.get("education_note", ""),
        "at": now,
    }
    r["reviews"] = (*r["reviews"], review)
    data = {k: review[k] for k in ("decision", "verdict", "legal_basis", "correction", "education_note")}
    events: Events = [("legality_reviewed", data)]
    if a["verdict"] == "unlawful" and to == "escalated":
        events.append(("escalated", {"reason": "unlawful_at_round_limit", "rounds": _rounds_in_cycle(r)}))
    return events


def e_publish(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    decision = r["decisions"][-1]["number"]
    pub = {"decision": decision, "channels": a["channels"], "summary": a.get("summary", ""), "by": who.id, "at": now}
    r["publications"] = (*r["publications"], pub)
    return [("published", {"decision": decision, "channels": list(a["channels"]), "summary": pub["summary"]})]


def e_report_progress(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    decision = r["decisions"][-1]["number"]
    rep = {
        "decision": decision,
        "measure": a["measure"],
        "percent": a["percent"],
        "spent": a.get("spent", Decimal(0)),
        "note": a.get("note", ""),
        "by": who.id,
        "at": now,
    }
    r["progress"] = (*r["progress"], rep)
    data = {
        "decision": decision,
        "measure": rep["measure"],
        "percent": rep["percent"],
        "spent": str(rep["spent"]),
        "note": rep["note"],
    }
    return [("progress_reported", data)]


def e_record_feedback(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    fb = {"participant": who.id, "satisfaction": a["satisfaction"], "comment": a.get("comment", ""), "at": now}
    r["feedback"] = (*r["feedback"], fb)
    return [("feedback_received", {"satisfaction": fb["satisfaction"], "comment": fb["comment"]})]


def e_start_supervision(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    return [("supervision_started", {"decision": r["decisions"][-1]["number"]})]


def e_inspect(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    ins = {
        "cycle": r["cycle"],
        "inspector": who.id,
        "passed": a["passed"],
        "findings": a.get("findings", ""),
        "at": now,
    }
    r["inspections"] = (*r["inspections"], ins)
    return [("inspected", {"cycle": r["cycle"], "passed": ins["passed"], "findings": ins["findings"]})]


def _new_cycle(r: Rec, now: datetime) -> None:
    r["cycle"] += 1
    r["decision_due"] = now + DECISION_DEADLINE


def e_request_reconsultation(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    _new_cycle(r, now)
    return [("reconsultation_requested", {"problems": a["problems"], "cycle": r["cycle"]})]


def e_escalate(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    return [*_close_open_round(r, now, "escalated", abandoned=True), ("escalated", {"reason": a["reason"]})]


def e_resume(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    _new_cycle(r, now)
    return [("resumed", {"instructions": a["instructions"], "cycle": r["cycle"]})]


def e_close(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    return [("closed", {"summary": a.get("summary", ""), "by_ruling": r["state"] == "escalated"})]


def e_mark_overdue(r: Rec, a: Args, now: datetime, who: Who, role: str, to: str) -> Events:
    missed = _overdue(r, now)
    r["missed"] = (*r["missed"], *(key for key, _, _ in missed))
    events: Events = [
        ("deadline_missed", {"deadline": key, "kind": kind, "due": due.isoformat(), "measure": None})
        for key, kind, due in missed
    ]
    if to == "escalated":
        events.append(("escalated", {"reason": "overdue", "deadlines": [key for key, _, _ in missed]}))
    return events


EffectFn = Callable[[Rec, Args, datetime, Who, str, str], Events]
EFFECTS: dict[str, EffectFn] = {
    f.__name__[2:]: f
    for f in (
        e_propose,
        e_reject,
        e_withdraw,
        e_notify,
        e_open_round,
        e_record_opinion,
        e_close_round,
        e_decide,
        e_review,
        e_publish,
        e_report_progress,
        e_record_feedback,
        e_start_supervision,
        e_inspect,
        e_request_reconsultation,
        e_escalate,
        e_resume,
        e_close,
        e_mark_overdue,
    )
}

_POLICY: dict[str, tuple[str, ...]] = {
    "notified": ("invited", "proposer", "public:"),
    "round_opened": ("invited",),
    "decided": ("invited", "proposer", "role:supervisor"),
    "legality_reviewed": ("proposer", "role:committee"),
    "published": ("public:",),
    "escalated": ("role:sub_district", "role:committee"),
    "deadline_missed": ("role:committee", "role:sub_district"),
    "reconsultation_requested": ("invited", "role:committee"),
    "resumed": ("invited", "role:committee"),
    "rejected": ("proposer",),
    "withdrawn": ("invited", "role:committee"),
    "closed": ("invited", "proposer", "public:"),
}


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def commit(
    store: BaselineStore, r: Rec, events: Events, source: str, target: str, who: Who, role: str, now: datetime
) -> None:
    """Append the hash-chained log entries and the outbox notices; move version, head, next_due."""
    cid, at, prev, seq = r["id"], now.isoformat(), r["head"], r["version"]
    log = store.logs[cid]
    last = len(events) - 1
    for i, (event, data) in enumerate(events):
        seq += 1
        entry = {
            "schema_version": 1,
            "consultation": cid,
            "seq": seq,
            "event": event,
            "from": None if source == NEW else source,
            "to": target if i == last else source,
            "actor": who.id,
            "role": role,
            "at": at,
            "data": data,
            "prev": prev,
        }
        canonical = json.dumps(
            entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
        )
        prev = entry["hash"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        log.append(entry)
        groups = _POLICY.get(event)
        if groups:
            audience: list[str] = []
            for g in groups:
                if g == "invited":
                    audience.extend(r["invited"])
                elif g == "proposer":
                    audience.append(r["proposer"])
                elif g == "public:":
                    audience.append("public:" + r["community"])
                else:
                    audience.append(g)
            key = f"{cid}:{seq}"
            store.outbox[key] = {
                "key": key,
                "consultation": cid,
                "seq": seq,
                "event": event,
                "audience": tuple(dict.fromkeys(audience)),
                "title": r["title"],
                "created_at": now,
                "status": "pending",
                "attempts": 0,
            }
    r["state"] = target
    r["version"] = seq
    r["head"] = prev
    r["next_due"] = _next_due(r)


class Refusal(Exception):
    """A baseline step was not allowed (never expected in the benchmark)."""


# The same definition as consultflow's six-step procedure, as plain data a user would write once.
DEFINITION = tuple(
    (t.trigger.value, t.source, t.target, frozenset(r.value for r in t.roles), (*t.routes, *t.guards))
    for t in six_step_transitions()
)
STATES = [NEW, *(s.value for s in cf.State)]


def baseline_script(t: Times, title: str = "Night parking", cid: str = "") -> list[tuple[str, Who, datetime, dict]]:
    """The same 17 steps as (trigger, actor, time, arguments); arguments built here, like commands."""
    w = WHO
    return [
        (
            "propose",
            w["li"],
            t.propose,
            {
                "id": cid,
                "community": COMMUNITY,
                "topic": TOPIC,
                "title": title,
                "description": DESCRIPTION,
                "carrier": "decision",
                "form": "consultation_day",
                "major": True,
                "budget": BUDGET,
            },
        ),
        (
            "notify",
            w["wang"],
            t.notify,
            {
                "meeting_at": t.meeting,
                "invite": INVITE,
                "chair": "chen",
                "venue": "studio",
                "channels": ("notice_board", "wechat"),
            },
        ),
        ("open_round", w["chen"], t.open, {"agenda": "night parking"}),
        *(("record_opinion", w[who], t.open, {"stance": stance.value, "text": text}) for who, stance, text in OPINIONS),
        ("close_round", w["chen"], t.close_round, {"summary": "consensus"}),
        (
            "decide",
            w["wang"],
            t.decide,
            {
                "resolution": "open the east lot at night, 100 yuan a month",
                "measures": (
                    {"title": "mark the bays", "owner": "zhao", "due": t.due0, "budget": M0_BUDGET},
                    {"title": "install the gate", "owner": "wang", "due": t.due1, "budget": M1_BUDGET},
                ),
            },
        ),
        ("review", w["sun"], t.review, {"verdict": "lawful"}),
        ("publish", w["wang"], t.publish, {"channels": ("notice_board", "wechat"), "summary": "plan"}),
        (
            "report_progress",
            w["wang"],
            t.progress0,
            {"measure": 0, "percent": 100, "spent": M0_SPENT, "note": "bays marked"},
        ),
        (
            "report_progress",
            w["wang"],
            t.progress1,
            {"measure": 1, "percent": 100, "spent": M1_SPENT, "note": "gate in use"},
        ),
        ("start_supervision", w["wang"], t.supervise, {}),
        ("inspect", w["zhou"], t.inspect, {"passed": True, "findings": "signed off"}),
        ("close", w["wang"], t.close, {"summary": "done"}),
    ]


# ---- baseline A: one transitions.Machine per record (the naive way) -------------------------------


class MachineCase:
    """The model a naive user attaches a Machine to: the consultation's fields as attributes."""

    def __init__(self, cid: str) -> None:
        for name, value in blank(cid).items():
            setattr(self, name, value)


class _RoleCheck:
    """Condition: the actor holds a role the transition allows (default deny); remembers the role."""

    def __init__(self, roles: frozenset[str]) -> None:
        self.roles = roles

    def __call__(self, ev: Any) -> bool:
        role = authorise(self.roles, ev.model.__dict__, ev.kwargs["who"])
        ev.kwargs["role"] = role
        return role is not None


class _Rule:
    """Condition: one of the procedure's rules, evaluated on the model's fields."""

    def __init__(self, fn: RuleFn) -> None:
        self.fn = fn

    def __call__(self, ev: Any) -> bool:
        k = ev.kwargs
        return self.fn(ev.model.__dict__, k["args"], k["now"], k["who"])


class _Apply:
    """``after`` callback: the step's effect, then the hash-chained log entry and the notices."""

    def __init__(self, trigger: str) -> None:
        self.effect = EFFECTS[trigger]

    def __call__(self, ev: Any) -> None:
        k, tr = ev.kwargs, ev.transition
        r = ev.model.__dict__
        target = tr.dest or tr.source
        events = self.effect(r, k["args"], k["now"], k["who"], k["role"], target)
        commit(k["store"], r, events, tr.source, target, k["who"], k["role"], k["now"])


# Built once at import, as a user would write it at module level; every Machine reads this list.
MACHINE_TRANSITIONS = [
    {
        "trigger": trigger,
        "source": source,
        "dest": dest,
        "conditions": [_RoleCheck(roles), *(_Rule(RULES[name]) for name in rules)],
        "after": _Apply(trigger),
    }
    for trigger, source, dest, roles, rules in DEFINITION
]


def machine_new(cid: str) -> MachineCase:
    case = MachineCase(cid)
    Machine(
        model=case,
        states=STATES,
        transitions=MACHINE_TRANSITIONS,
        initial=NEW,
        auto_transitions=False,  # as consultflow's own Machine: fewer triggers, so cheaper
        send_event=True,
    )
    return case


def machine_lifecycle(store: BaselineStore, cid: str, t: Times, title: str = "Night parking") -> MachineCase:
    case = machine_new(cid)
    store.records[cid] = case
    store.logs[cid] = []
    for trigger, who, now, args in baseline_script(t, title, cid):
        if not getattr(case, trigger)(store=store, who=who, now=now, args=args):
            raise Refusal(trigger)
    return case


def machine_propose(store: BaselineStore, cid: str, t: Times, title: str) -> MachineCase:
    case = machine_new(cid)
    store.logs[cid] = []
    trigger, who, now, args = baseline_script(t, title, cid)[0]
    if not case.propose(store=store, who=who, now=now, args=args):  # type: ignore[attr-defined]
        raise Refusal(trigger)
    return case


# ---- baseline B: a plain dict table (state, trigger) -> options; records are dicts -----------------

TABLE: dict[tuple[str, str], tuple[tuple[str | None, frozenset[str], tuple[RuleFn, ...]], ...]] = {}
for _trigger, _source, _dest, _roles, _rules in DEFINITION:
    TABLE[(_source, _trigger)] = (*TABLE.get((_source, _trigger), ()), (_dest, _roles, tuple(RULES[n] for n in _rules)))


def fire(store: BaselineStore, r: Rec, trigger: str, who: Who, now: datetime, args: Args) -> None:
    source = r["state"]
    options = TABLE.get((source, trigger))
    if options is None:
        raise Refusal(f"{trigger} not allowed in {source}")
    for dest, roles, rules in options:
        role = authorise(roles, r, who)
        if role is not None and all(rule(r, args, now, who) for rule in rules):
            target = dest or source
            events = EFFECTS[trigger](r, args, now, who, role, target)
            commit(store, r, events, source, target, who, role, now)
            return
    raise Refusal(trigger)


def dict_lifecycle(store: BaselineStore, cid: str, t: Times, title: str = "Night parking") -> Rec:
    r = store.records[cid] = blank(cid)
    store.logs[cid] = []
    for trigger, who, now, args in baseline_script(t, title, cid):
        fire(store, r, trigger, who, now, args)
    return r


def dict_propose(store: BaselineStore, cid: str, t: Times, title: str) -> Rec:
    r = blank(cid)
    store.logs[cid] = []
    trigger, who, now, args = baseline_script(t, title, cid)[0]
    fire(store, r, trigger, who, now, args)
    return r


# ================================================================================================
# Harness
# ================================================================================================


class Variant:
    """One throughput variant: ``prepare(n)`` builds what may be built before timing (untimed),
    ``run(prepared)`` runs ``n`` lifecycles (timed)."""

    def __init__(self, key: str, label: str, prepare: Callable[[int], Any], run: Callable[[Any], None]) -> None:
        self.key, self.label, self.prepare, self.run = key, label, prepare, run
        self.cpu_rates: list[float] = []  # lifecycles per CPU-second of this process
        self.wall_rates: list[float] = []  # lifecycles per wall-clock second

    def time_batch(self, n: int) -> tuple[float, float]:
        """(CPU seconds, wall seconds) to run ``n`` lifecycles on fresh state."""
        prepared = self.prepare(n)
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        self.run(prepared)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        del prepared
        return cpu, wall


def variants() -> list[Variant]:
    procedure, catalogue = cf.six_step(), cf_catalogue()
    scripts: dict[int, list[Script]] = {}
    times: dict[int, list[Times]] = {}

    def times_n(n: int) -> list[Times]:
        if n not in times:
            times[n] = [times_for(i) for i in range(n)]
        return times[n]

    def scripts_n(n: int) -> list[Script]:  # pre-built commands, reused by every repetition
        if n not in scripts:
            scripts[n] = [cf_script(i, t) for i, t in enumerate(times_n(n))]
        return scripts[n]

    def engine_build(p: tuple[cf.Engine, cf.SimulatedClock, list[Times]]) -> None:
        engine, clock, ts = p
        for t in ts:
            cf_engine_lifecycle(engine, clock, t)

    def engine_replay(p: tuple[cf.Engine, cf.SimulatedClock, list[Script]]) -> None:
        engine, clock, ss = p
        for s in ss:
            cf_engine_replay(engine, clock, s)

    def core_build(ts: list[Times]) -> None:
        log: list[cf.LogEntry] = []
        for i, t in enumerate(ts):
            cf_core_lifecycle(procedure, catalogue, f"sim-{i:06d}", t, log)

    def core_replay(ss: list[Script]) -> None:
        log: list[cf.LogEntry] = []
        for s in ss:
            cf_core_replay(procedure, catalogue, s, log)

    def machine_run(ts: list[Times]) -> None:
        store = BaselineStore()
        for i, t in enumerate(ts):
            machine_lifecycle(store, f"m-{i:06d}", t)

    def dict_run(ts: list[Times]) -> None:
        store = BaselineStore()
        for i, t in enumerate(ts):
            dict_lifecycle(store, f"d-{i:06d}", t)

    return [
        Variant(
            "engine",
            "consultflow Engine + MemoryStore, commands built in the loop",
            lambda n: (*cf_engine(), times_n(n)),
            engine_build,
        ),
        Variant(
            "engine_pre",
            "consultflow Engine + MemoryStore, commands pre-built",
            lambda n: (*cf_engine(), scripts_n(n)),
            engine_replay,
        ),
        Variant("core", "consultflow pure core (decide), commands built in the loop", times_n, core_build),
        Variant("core_pre", "consultflow pure core (decide), commands pre-built", scripts_n, core_replay),
        Variant("machine", "transitions: one Machine per record", times_n, machine_run),
        Variant("dict", "plain dict table (state, trigger) -> next", times_n, dict_run),
    ]


def sanity_check() -> list[str]:
    """Every variant ends in 'closed' with the same 17 entries: the baselines' logs, run under the
    consultation id the Engine gave, are byte for byte the Engine's (same hashes), and
    ``consultflow.verify`` accepts every chain. Returns the problems found (none expected)."""
    problems = []
    engine, clock = cf_engine()
    cid = cf_engine_lifecycle(engine, clock, times_for(0))
    history = engine.history(cid)
    if engine.get(cid).state is not cf.State.CLOSED or len(history) != STEPS_PER_LIFECYCLE:
        problems.append(f"Engine: ended in {engine.get(cid).state} with {len(history)} entries")
    if not engine.verify(cid).ok:
        problems.append(f"Engine: {engine.verify(cid).reason}")
    log: list[cf.LogEntry] = []
    rec = cf_core_replay(cf.six_step(), cf_catalogue(), cf_script(0, times_for(0)), log)
    if rec.state is not cf.State.CLOSED or not cf.verify(log, head=rec.head, version=rec.version).ok:
        problems.append("pure core: did not close with a valid chain")
    for lifecycle in (machine_lifecycle, dict_lifecycle):
        store = BaselineStore()
        r = lifecycle(store, cid, times_for(0))
        fields = r.__dict__ if isinstance(r, MachineCase) else r
        entries = store.logs[cid]
        name = lifecycle.__name__
        if fields["state"] != "closed" or not cf.verify(entries, head=fields["head"], version=fields["version"]).ok:
            problems.append(f"{name}: did not close with a valid chain")
        theirs, ours = [e["event"] for e in entries], [e.event.value for e in history]
        if theirs != ours:
            problems.append(f"{name}: events differ from the Engine's: {theirs} != {ours}")
        elif [e["hash"] for e in entries] != [e.hash for e in history]:
            bad = next(e["event"] for e, o in zip(entries, history, strict=True) if e["hash"] != o.hash)
            problems.append(f"{name}: same events, but entry bytes differ from the Engine's from '{bad}' on")
    return problems


def measure_throughput(vs: list[Variant], reps: int, batch_seconds: float, fixed: int | None = None) -> int:
    """Interleaved repetitions; every batch of every variant runs the same number of lifecycles
    (so each ends holding as many live records), sized for the slowest to take ~batch_seconds
    unless ``fixed`` gives the size."""
    slowest = 0.0
    for v in vs:  # calibration, which doubles as warm-up
        n = 2
        while True:
            cpu, _ = v.time_batch(n)
            if cpu >= batch_seconds / 4 or n >= 100_000:
                break
            n *= 4
        slowest = max(slowest, cpu / n)
    batch = fixed or max(3, round(batch_seconds / max(slowest, 1e-9)))
    for rep in range(reps):
        k = rep % len(vs)
        for v in vs[k:] + vs[:k]:  # rotate the order every repetition
            cpu, wall = v.time_batch(batch)
            v.cpu_rates.append(batch / max(cpu, 1e-6))
            v.wall_rates.append(batch / max(wall, 1e-6))
    return batch


def bytes_per_record(fill: Callable[[list[Any]], Callable[[], None] | None], n: int) -> tuple[float, float]:
    """tracemalloc: bytes held per record after ``fill`` put ``n`` records into a pre-allocated list.

    ``fill`` may return a ``release`` callable that drops what else it kept (stores, logs); the
    first figure is with it kept, the second after releasing it (records only).
    """
    holder: list[Any] = [None] * n  # allocated before tracing: the list's slots are not counted
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        release = fill(holder)
        gc.collect()
        with_rest = tracemalloc.get_traced_memory()[0] - base
        if release is not None:
            release()
        gc.collect()
        only = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert all(x is not None for x in holder)
    return with_rest / n, only / n


def measure_memory(n_bare: int, n_machine: int, n_lived: int) -> dict[str, tuple[float, float]]:
    procedure, catalogue = cf.six_step(), cf_catalogue()
    li = CAST["li"]

    def cf_bare(holder: list[Any]) -> None:
        for i in range(len(holder)):
            t = times_for(i)
            cmd = cf_propose(title=f"Night parking #{i}")
            step = cf.decide(procedure, None, cmd, cf.Context(t.propose, li, f"xiaotaoyuan-2026-{i:06d}", catalogue))
            assert isinstance(step, cf.Step)
            holder[i] = step.record

    def machine_bare(holder: list[Any]) -> Callable[[], None]:
        store = BaselineStore()
        for i in range(len(holder)):
            holder[i] = machine_propose(store, f"xiaotaoyuan-2026-{i:06d}", times_for(i), f"Night parking #{i}")
        return store.__dict__.clear

    def dict_bare(holder: list[Any]) -> Callable[[], None]:
        store = BaselineStore()
        for i in range(len(holder)):
            holder[i] = dict_propose(store, f"xiaotaoyuan-2026-{i:06d}", times_for(i), f"Night parking #{i}")
        return store.__dict__.clear

    def cf_lived(holder: list[Any]) -> Callable[[], None]:
        engine, clock = cf_engine()
        for i in range(len(holder)):
            t = times_for(i)
            clock.set(t.propose)
            cid = engine.execute(cf_propose(title=f"Night parking #{i}"), by=li).id
            for cmd, actor, at in cf_commands(cid, t):
                clock.set(at)
                engine.execute(cmd, by=actor)
            holder[i] = engine.get(cid)
        return engine.__dict__.clear

    def machine_lived(holder: list[Any]) -> Callable[[], None]:
        store = BaselineStore()
        for i in range(len(holder)):
            holder[i] = machine_lifecycle(store, f"xiaotaoyuan-2026-{i:06d}", times_for(i), f"Night parking #{i}")
        return store.__dict__.clear

    def dict_lived(holder: list[Any]) -> Callable[[], None]:
        store = BaselineStore()
        for i in range(len(holder)):
            holder[i] = dict_lifecycle(store, f"xiaotaoyuan-2026-{i:06d}", times_for(i), f"Night parking #{i}")
        return store.__dict__.clear

    plan = [
        ("cf_bare", cf_bare, n_bare),
        ("machine_bare", machine_bare, n_machine),
        ("dict_bare", dict_bare, n_bare),
        ("cf_lived", cf_lived, n_lived),
        ("machine_lived", machine_lived, n_lived),
        ("dict_lived", dict_lived, n_lived),
    ]
    for _, fill, _ in plan:  # warm up: first-use caches must not be charged to the records
        release = fill([None] * 20)
        if release is not None:
            release()
    return {key: bytes_per_record(fill, n) for key, fill, n in plan}


def profile_engine(n: int, top: int, per_engine: int = 100) -> str:
    """cProfile of ``n`` Engine lifecycles, commands built in the loop, on fresh engines of
    ``per_engine`` lifecycles each (as the throughput batches), after a warm-up."""
    ts = [times_for(i) for i in range(per_engine)]
    engine, clock = cf_engine()
    for t in ts[:20]:
        cf_engine_lifecycle(engine, clock, t)
    profiler = cProfile.Profile()
    for _ in range(max(1, n // per_engine)):
        engine, clock = cf_engine()
        gc.collect()
        profiler.enable()
        for t in ts:
            cf_engine_lifecycle(engine, clock, t)
        profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf).strip_dirs()
    buf.write(f"cProfile of {max(1, n // per_engine) * per_engine} Engine lifecycles (commands built in the loop, ")
    buf.write(f"{per_engine} per fresh engine), by own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    buf.write("... and by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run (a few seconds)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the Engine lifecycle")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 31, quick 3)")
    parser.add_argument("--batch", type=int, help="lifecycles per batch, instead of the calibrated size")
    opts = parser.parse_args(argv)
    quick = opts.quick
    reps = opts.reps or (3 if quick else 31)
    batch_seconds = 0.05 if quick else 0.15
    n_bare, n_machine, n_lived = (1_000, 200, 100) if quick else (10_000, 1_000, 300)

    def out(line: str = "") -> None:
        print(line, flush=True)

    started = time.perf_counter()
    out("consultflow lifecycle benchmark" + (" (--quick smoke run)" if quick else ""))
    out(
        f"  Python {platform.python_version()} on {platform.machine()}, {_cpus()} CPUs; consultflow {cf.__version__}, "
        f"pydantic {version('pydantic')}, transitions {version('transitions')}"
    )
    out(
        f"  1 lifecycle = {STEPS_PER_LIFECYCLE} steps: propose, notify, open round, {len(OPINIONS)} opinions, "
        "close round, decide (2 measures), review lawful, publish, progress 100% x2, start supervision, "
        "inspect passed, close"
    )
    problems = sanity_check()
    if problems:
        out("  WARNING: the variants no longer do the same work; figures below may not compare:")
        for p in problems:
            out(f"    - {p}")
    else:
        out(
            "  sanity: every variant ends 'closed'; the baselines' logs are byte for byte the Engine's "
            "(same 17 hashes); consultflow.verify accepts every chain"
        )
    out()

    vs = variants()
    section = time.perf_counter()
    batch = measure_throughput(vs, reps, batch_seconds, opts.batch)
    took = time.perf_counter() - section
    out(
        f"Throughput: {reps} interleaved repetitions, each one batch of {batch} lifecycles per variant on fresh "
        "state; medians [min-max]"
    )
    out("  rates are lifecycles per CPU-second of this process (steady under other load); wall clock alongside")
    med = {v.key: statistics.median(v.cpu_rates) for v in vs}
    wall = {v.key: statistics.median(v.wall_rates) for v in vs}
    width = max(len(v.label) for v in vs)
    out(
        f"  {'variant':<{width}}  {'lifecycles/s':>12}  {'range':>17}  {'us/lifecycle':>12}  {'us/step':>7}  "
        f"{'wall lc/s':>9}"
    )
    for v in vs:
        m = med[v.key]
        rng = f"[{min(v.cpu_rates):,.0f}-{max(v.cpu_rates):,.0f}]"
        out(
            f"  {v.label:<{width}}  {m:>12,.0f}  {rng:>17}  {1e6 / m:>12,.0f}  "
            f"{1e6 / m / STEPS_PER_LIFECYCLE:>7,.1f}  {wall[v.key]:>9,.0f}"
        )
    out(f"  ({took:.0f} s)")
    out()

    out(
        f"Memory: bytes per record held (tracemalloc; bare: {n_bare:,} consultflow and dict records, "
        f"{n_machine:,} Machine records; fully lived: {n_lived:,} each)"
    )
    section = time.perf_counter()
    mem = measure_memory(n_bare, n_machine, n_lived)
    took = time.perf_counter() - section
    out(f"  {'record':<62}  {'record only':>11}  {'+ log/outbox':>12}")
    rows = [
        ("cf_bare", "consultflow Consultation, freshly proposed"),
        ("machine_bare", "transitions model + its Machine, freshly proposed"),
        ("dict_bare", "dict record, freshly proposed"),
        ("cf_lived", "consultflow Consultation after the whole lifecycle"),
        ("machine_lived", "transitions model + Machine after the whole lifecycle"),
        ("dict_lived", "dict record after the whole lifecycle"),
    ]
    for key, label in rows:
        with_rest, only = mem[key]
        out(f"  {label:<62}  {only:>11,.0f}  {with_rest:>12,.0f}")
    out(f"  ({took:.0f} s)")
    out()

    by = {v.key: v for v in vs}
    speed = med["engine"] / med["machine"]
    paired = statistics.median(e / m for e, m in zip(by["engine"].cpu_rates, by["machine"].cpu_rates, strict=True))
    size = mem["machine_bare"][1] / mem["cf_bare"][1]
    out("Ratios (targets: speed >= 10x, memory >= 20x)")
    out(
        f"  speed   consultflow Engine (commands built in the loop) / Machine per record: "
        f"{med['engine']:,.0f} / {med['machine']:,.0f} = {speed:.2f}x  -> {verdict(speed >= 10)}"
    )
    out(
        f"          same on wall-clock medians: {wall['engine'] / wall['machine']:.2f}x; "
        f"median of per-repetition ratios: {paired:.2f}x"
    )
    for key, label in (
        ("engine_pre", "Engine, commands pre-built"),
        ("core", "pure core, commands built"),
        ("core_pre", "pure core, commands pre-built"),
    ):
        out(f"          for information: {label} / Machine per record = {med[key] / med['machine']:.2f}x")
    out(
        f"          for information: dict table / Machine per record = {med['dict'] / med['machine']:.2f}x "
        "(what hand-written code doing the same log reaches)"
    )
    out(f"          for information: Engine (commands built) / dict table = {med['engine'] / med['dict']:.2f}x")
    out(
        f"  memory  Machine per record / consultflow bare record: {mem['machine_bare'][1]:,.0f} / "
        f"{mem['cf_bare'][1]:,.0f} B = {size:.1f}x  -> {verdict(size >= 20)}"
    )
    cf_vs_dict = mem["cf_bare"][1] / mem["dict_bare"][1]
    out(f"          for information: consultflow bare record / dict record = {cf_vs_dict:.2f}x")
    out()
    if opts.profile:
        out(profile_engine(200 if quick else 2_000, 30))
    out(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def _cpus() -> int | str:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or "?"


if __name__ == "__main__":
    sys.exit(main())
