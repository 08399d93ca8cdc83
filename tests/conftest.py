"""Shared fixtures and helpers: an engine on a simulated clock, a cast with every role, and a
driver that takes a fresh consultation to any state of the six-step procedure.

Use the ``world`` fixture (default six-step procedure) or ``make_world(procedure=..., **parameters)``.
``world.to("decided")`` returns the record of a new consultation in that state; see ``STATES``.

The defaults: community ``COMMUNITY`` with topics ``TOPIC`` and ``OTHER_TOPIC``; the proposer is
``li`` (resident); notices invite ``INVITED`` (4 people, quorum 3) with ``chen`` as rotating chair;
rounds are opened and closed by the committee (``wang``); ``sun`` (supervisor) reviews; ``zhou``
(inspection group) inspects; ``jie`` (sub-district) handles escalations.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from consultflow import (
    Actor,
    Carrier,
    Catalogue,
    Channel,
    Close,
    CloseRound,
    Consultation,
    Decide,
    Escalate,
    Form,
    Inspect,
    Measure,
    MemoryStore,
    Notify,
    OpenRound,
    Procedure,
    Propose,
    Publish,
    RecordOpinion,
    Reject,
    ReportProgress,
    ReviewLegality,
    Role,
    SimulatedClock,
    Stance,
    StartSupervision,
    Verdict,
    Withdraw,
    six_step,
)
from consultflow.engine import Engine

__all__ = [
    "CAST",
    "COMMUNITY",
    "INVITED",
    "OTHER_TOPIC",
    "STATES",
    "T0",
    "TOPIC",
    "World",
    "new_world",
    "only",
    "snapshot",
]

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
COMMUNITY = "taoyuan"
TOPIC = "public-affairs/night-parking"
OTHER_TOPIC = "public-benefit/micro-greening"

# Named people. Everyone holds exactly the role(s) shown.
CAST: dict[str, Actor] = {
    "wang": Actor("wang", roles={Role.COMMITTEE}),  # convenor, decides
    "wc": Actor("wc", roles={Role.WORKING_COMMITTEE}),
    "council": Actor("council", roles={Role.COUNCIL_MEMBER}),
    "li": Actor("li", roles={Role.RESIDENT}),  # the proposer
    "wu": Actor("wu", roles={Role.RESIDENT}),
    "zhang": Actor("zhang", roles={Role.RESIDENT_REPRESENTATIVE}),
    "zhao": Actor("zhao", roles={Role.PROPERTY_MANAGEMENT}),
    "unit": Actor("unit", roles={Role.UNIT}),
    "ngo": Actor("ngo", roles={Role.SOCIAL_ORGANISATION}),
    "deputy": Actor("deputy", roles={Role.DEPUTY}),
    "liu": Actor("liu", roles={Role.EXPERT}),
    "tech": Actor("tech", roles={Role.TECHNICIAN}),
    "third": Actor("third", roles={Role.THIRD_PARTY}),
    "police": Actor("police", roles={Role.POLICE}),
    "sun": Actor("sun", roles={Role.SUPERVISOR}),  # legality reviewer
    "zhou": Actor("zhou", roles={Role.INSPECTION_GROUP}),
    "chen": Actor("chen", roles={Role.ROTATING_CHAIR}),  # chair named at notify
    "other_chair": Actor("other_chair", roles={Role.ROTATING_CHAIR}),  # a chair, not this one's
    "jie": Actor("jie", roles={Role.SUB_DISTRICT}),
    "clock": Actor("clock", roles={Role.SYSTEM}),
    "nobody": Actor("nobody", roles=set()),
}

INVITED: tuple[str, ...] = ("li", "wu", "zhang", "zhao")  # quorum: max(3, ceil(0.5 * 4)) = 3
CONSENSUS_VOTERS: tuple[str, ...] = ("li", "wu", "zhang")

# Every state ``World.to`` can reach. "consulting" has an open round (no opinions yet);
# "consulting_closed" has a closed round that reached consensus.
STATES: tuple[str, ...] = (
    "proposed",
    "notified",
    "consulting",
    "consulting_closed",
    "decided",
    "feedback",
    "supervising",
    "escalated",
    "closed",
    "rejected",
    "withdrawn",
)


def only(role: Role, name: str | None = None) -> Actor:
    """An actor holding only ``role`` (named after it unless ``name`` is given)."""
    return Actor(name or f"only-{role.value}", roles={role})


@dataclass
class World:
    """An engine with its store, clock and catalogue, plus step helpers that use the cast."""

    engine: Engine
    clock: SimulatedClock
    store: MemoryStore
    catalogue: Catalogue

    # ---- single steps (each returns the record after it) -----------------------------------------
    def run(self, command: Any, by: str | Actor) -> Consultation:
        return self.engine.execute(command, by=CAST[by] if isinstance(by, str) else by)

    def propose(self, by: str | Actor = "li", **fields: Any) -> Consultation:
        data: dict[str, Any] = {
            "community": COMMUNITY,
            "topic": TOPIC,
            "title": "夜间停车 Night parking",
            "carrier": Carrier.DECISION,
            "form": Form.INVITATION,
        }
        data.update(fields)
        return self.run(Propose(**data), by)

    def notify(self, cid: str, by: str | Actor = "wang", **fields: Any) -> Consultation:
        data: dict[str, Any] = {
            "consultation": cid,
            "meeting_at": self.clock.now() + timedelta(days=4),
            "invite": INVITED,
            "chair": "chen",
        }
        data.update(fields)
        return self.run(Notify(**data), by)

    def after_notice(self, cid: str) -> None:
        """Move the clock to the announced meeting, which is after the notice period (no earlier than now)."""
        schedule = self.engine.get(cid).schedule
        assert schedule is not None
        if schedule.meeting_at > self.clock.now():
            self.clock.set(schedule.meeting_at)

    def open_round(self, cid: str, by: str | Actor = "wang", **fields: Any) -> Consultation:
        return self.run(OpenRound(consultation=cid, **fields), by)

    def opine(self, cid: str, who: str | Actor, stance: Stance = Stance.SUPPORT, text: str = "") -> Consultation:
        return self.run(RecordOpinion(consultation=cid, stance=stance, text=text), who)

    def close_round(self, cid: str, by: str | Actor = "wang", summary: str = "") -> Consultation:
        return self.run(CloseRound(consultation=cid, summary=summary), by)

    def hold_round(
        self,
        cid: str,
        opinions: Iterable[tuple[str, Stance]] | None = None,
        by: str | Actor = "wang",
    ) -> Consultation:
        """Open a round, record ``opinions`` (default: three supporters), close it."""
        self.open_round(cid, by=by)
        for who, stance in opinions if opinions is not None else [(v, Stance.SUPPORT) for v in CONSENSUS_VOTERS]:
            self.opine(cid, who, stance)
        return self.close_round(cid, by=by)

    def measure(self, days: int = 30, budget: str = "1000", title: str = "划线 mark the bays") -> Measure:
        return Measure(title=title, owner="zhao", due=self.clock.now() + timedelta(days=days), budget=Decimal(budget))

    def decide(self, cid: str, by: str | Actor = "wang", **fields: Any) -> Consultation:
        data: dict[str, Any] = {"consultation": cid, "resolution": "东侧空地夜间开放 open the east lot"}
        record = self.engine.get(cid)
        if record.carrier is Carrier.DECISION:
            data["measures"] = (self.measure(),)
        elif record.carrier is Carrier.HEARING:
            data["hearing_record"] = "听证笔录 hearing minutes"
        elif record.carrier is Carrier.COORDINATION:
            data["agreement_parties"] = ("zhao", "li")
        else:
            data["advice_adopted"] = True
        data.update(fields)
        return self.run(Decide(**data), by)

    def review(self, cid: str, verdict: Verdict = Verdict.LAWFUL, by: str | Actor = "sun") -> Consultation:
        if verdict is Verdict.LAWFUL:
            cmd = ReviewLegality(consultation=cid, verdict=verdict)
        else:
            cmd = ReviewLegality(consultation=cid, verdict=verdict, legal_basis="《民法典》", correction="依法纠正")
        return self.run(cmd, by)

    def publish(self, cid: str, by: str | Actor = "wang") -> Consultation:
        return self.run(Publish(consultation=cid, channels=(Channel.NOTICE_BOARD,), summary="公示"), by)

    def finish_measures(self, cid: str, by: str | Actor = "wang") -> Consultation:
        record = self.engine.get(cid)
        decision = record.current_decision
        assert decision is not None
        for i in range(len(decision.measures)):
            record = self.run(ReportProgress(consultation=cid, measure=i, percent=100, note="done"), by)
        return record

    def start_supervision(self, cid: str, by: str | Actor = "wang") -> Consultation:
        return self.run(StartSupervision(consultation=cid), by)

    def inspect(self, cid: str, passed: bool = True, by: str | Actor = "zhou") -> Consultation:
        return self.run(Inspect(consultation=cid, passed=passed, findings="" if passed else "问题"), by)

    # ---- whole paths ----------------------------------------------------------------------------------
    def to(self, state: str, **propose_fields: Any) -> Consultation:
        """A new consultation driven to ``state`` (one of ``STATES``); returns its record."""
        if state not in STATES:
            raise ValueError(f"unknown target {state!r}; use one of {STATES}")
        rec = self.propose(**propose_fields)
        cid = rec.id
        if state == "proposed":
            return rec
        if state == "rejected":
            return self.run(Reject(consultation=cid, reason="不在本社区 not ours"), "wang")
        if state == "withdrawn":
            return self.run(Withdraw(consultation=cid, reason="已解决 solved"), "li")
        rec = self.notify(cid)
        if state == "notified":
            return rec
        if state == "escalated":
            return self.run(Escalate(consultation=cid, reason="久拖不决 stalled"), "wang")
        self.after_notice(cid)
        rec = self.open_round(cid)
        if state == "consulting":
            return rec
        for who in CONSENSUS_VOTERS:
            self.opine(cid, who, Stance.SUPPORT)
        rec = self.close_round(cid)
        if state == "consulting_closed":
            return rec
        self.clock.advance(hours=1)
        rec = self.decide(cid)
        if state == "decided":
            return rec
        self.clock.advance(hours=1)
        rec = self.review(cid)
        if state == "feedback":
            return rec
        self.publish(cid)
        rec = self.start_supervision(cid)
        if state == "supervising":
            return rec
        # closed: carry out every measure, then an inspection after the latest report, then close
        self.finish_measures(cid)
        self.clock.advance(hours=1)
        self.inspect(cid, passed=True)
        return self.run(Close(consultation=cid, summary="办结"), "wang")


def default_catalogue() -> Catalogue:
    return Catalogue().with_community(COMMUNITY, {TOPIC: "夜间停车", OTHER_TOPIC: "微绿化"})


def new_world(procedure: Procedure | None = None, *, start: datetime = T0, **parameters: Any) -> World:
    """A fresh world. ``parameters`` (if any) make a variant of ``procedure`` (default ``six_step()``)."""
    proc = procedure if procedure is not None else six_step()
    if parameters:
        proc = proc.variant(f"{proc.name}-test", "t1", parameters=parameters)
    clock = SimulatedClock(start)
    store = MemoryStore()
    catalogue = default_catalogue()
    counter = itertools.count(1)
    engine = Engine(proc, store, clock=clock, catalogue=catalogue, ids=lambda: f"c-{next(counter):03d}")
    return World(engine=engine, clock=clock, store=store, catalogue=catalogue)


@pytest.fixture
def world() -> World:
    return new_world()


@pytest.fixture
def make_world() -> Callable[..., World]:
    """``make_world(procedure=None, start=T0, **parameters)`` -> a fresh ``World``."""
    return new_world


def snapshot(world: World, cid: str) -> tuple[Consultation, tuple[Any, ...], Sequence[Any]]:
    """Everything a refused command must leave untouched: record, history, outbox."""
    return world.engine.get(cid), world.engine.history(cid), tuple(world.store.outbox())
