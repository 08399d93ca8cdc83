"""Run a scenario on the real rules: every step of every consultation goes through the pure core
(``consultflow.apply``) under the procedure, refusals included, with a simulated clock per
consultation.

What a simulation skips is only what persistence needs: no store, no engine, no directory look-up
(the cast's roles are handed to the core as the engine would), and commands are built trusted
(``records.make``) from values the simulation made, instead of validated again. Every guard, route
and effect runs; a refused command changes nothing and is counted.

Randomness and ids derive from the seed alone: each community draws its arrivals from its own
generator, each consultation from one seeded by (seed, its id), so a result does not depend on
the order or the process in which communities run: serial or parallel, byte for byte the same.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from random import Random
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import attrs

from ..catalogue import Catalogue, TopicItem
from ..commands import Command
from ..context import Context
from ..core import apply, seal
from ..funds import FundPosition, ledger_rows
from ..log import LogEntry
from ..procedure import Procedure
from ..records import Consultation, Measure, make
from ..refusals import Refused
from ..roles import BODY_MEMBERS, Actor, Role
from ..step import Step
from ..steps import (
    CallVote,
    CastVote,
    Close,
    CloseRound,
    CloseVote,
    Decide,
    Escalate,
    Inspect,
    MarkOverdue,
    Notify,
    OpenRound,
    Propose,
    Publish,
    RecordFeedback,
    RecordOpinion,
    Reject,
    ReportProgress,
    RequestReconsultation,
    Resume,
    ReviewLegality,
    ScheduleMeeting,
    StartSupervision,
    Withdraw,
)
from ..vocabulary import FINAL_STATES, Ballot, Body, Carrier, Channel, Event, Form, MeetingFormat, State, Verdict
from .people import Cast, cast_for, move, stance_of
from .results import Outcome, Results
from .scenario import CommunitySpec, Scenario

__all__ = ["Arrival", "Run", "arrivals", "simulate", "simulate_communities"]

C = TypeVar("C", bound=Command)
#: The commands that may take money from a community's fund (微幸福): the engine hands them the ledger.
_FUNDED: frozenset[type[Command]] = frozenset({Decide, CallVote, CloseVote, ReviewLegality})
#: The clock, as ``Engine.tick`` acts: the library's own id and the system role.
CLOCK = Actor.known("consultflow:clock", frozenset({Role.SYSTEM}))
_DAY = 86400.0
_MINUTE = timedelta(minutes=1)
#: The events a run counts (escalations) or books in its community's fund ledger.
_COUNTED = frozenset({Event.ESCALATED, Event.FUNDS_ALLOCATED, Event.FUNDS_SPENT, Event.FUNDS_RELEASED})
_CENT = Decimal("0.01")
_DEFAULTS: dict[type[Command], dict[str, Any]] = {}


def _cmd(cls: type[C], **values: Any) -> C:
    """A command built trusted: its defaults, then ``values``, not validated again (the
    simulation made every value itself). The core's guards still check everything they check."""
    base = _DEFAULTS.get(cls)
    if base is None:
        base = _DEFAULTS[cls] = {n: f.default for n, f in cls.model_fields.items() if not f.is_required()}
    data = base.copy()
    data.update(values)
    return make(cls, data)


def derive(seed: int, *parts: object) -> int:
    """A 64-bit seed for a part of the run, from the run's seed and the part's name."""
    text = ":".join((str(seed), *map(str, parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _poisson(rng: Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class _Mix:
    """A weighted choice prepared once (keys and cumulative weights)."""

    __slots__ = ("cum", "keys")

    def __init__(self, weights: dict[Any, float]) -> None:
        self.keys = [k for k, w in weights.items() if w > 0]
        total, self.cum = 0.0, []
        for k in self.keys:
            total += weights[k]
            self.cum.append(total)

    def draw(self, rng: Random) -> Any:
        return rng.choices(self.keys, cum_weights=self.cum)[0]


def _window(rng: Random, people: Sequence[Actor], n: int) -> list[Actor]:
    """``n`` people next to each other from a random place (wrapping round): neighbours who come
    together. One draw, where a sample of ``n`` would cost ``n``."""
    size = len(people)
    n = min(n, size)
    start = rng.randrange(size) if size else 0
    end = start + n
    return list(people[start:end]) if end <= size else [*people[start:], *people[: end - size]]


@attrs.frozen(slots=True)
class Arrival:
    """A proposal arriving: where, when, on what, with its own consultation id."""

    id: str
    community: str
    sub_district: str
    at: datetime
    topic: str


def arrivals(scenario: Scenario, seed: int, community: CommunitySpec, index: int) -> list[Arrival]:
    """The proposals of one community over the horizon, in time order: Poisson per month and
    category (``scenario.arrivals``), each at a uniform time in its month."""
    rng = Random(derive(seed, "arrivals", community.id))
    zone = ZoneInfo(scenario.procedure_parameters().timezone)
    found: list[Arrival] = []
    year, month = scenario.start.year, scenario.start.month
    for _ in range(scenario.months):
        begin = datetime(year, month, 1, tzinfo=zone)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        span = (end - begin).total_seconds()
        batch = []
        for category, rate in sorted(scenario.arrivals.items()):
            items = scenario.items[category] if rate > 0 else ()
            for _ in range(_poisson(rng, rate)):
                at = begin + timedelta(seconds=math.floor(rng.random() * span / 60) * 60)
                batch.append((at.astimezone(UTC), f"{category}/{rng.choice(items)}"))
        batch.sort(key=lambda a: a[0])
        for at, topic in batch:
            cid = f"{community.id}-{year}{month:02d}-{len(found) + 1:04d}"
            found.append(Arrival(cid, community.id, community.sub_district, at, topic))
        year, month = year + month // 12, month % 12 + 1
    return found


def catalogue_for(scenario: Scenario, communities: Sequence[CommunitySpec]) -> Catalogue:
    """Every community's second-level list: the scenario's items under each category."""
    items = tuple(
        TopicItem(community=c.id, category=category, slug=slug, name=slug)
        for c in communities
        for category, slugs in sorted(scenario.items.items())
        for slug in slugs
    )
    return Catalogue(items=items)


class Run:
    """One consultation driven through the core: the record, the clock, what was refused."""

    __slots__ = (
        "cast",
        "catalogue",
        "entries",
        "escalations",
        "keep",
        "kept",
        "lazy",
        "ledger",
        "now",
        "procedure",
        "record",
        "refusals",
        "steps",
    )

    def __init__(
        self, procedure: Procedure, catalogue: Catalogue, cast: Cast, at: datetime, keep: bool, lazy: bool = True
    ) -> None:
        self.lazy = lazy
        self.procedure = procedure
        self.catalogue = catalogue
        self.cast = cast
        self.now = at
        self.keep = keep
        self.record: Consultation | None = None
        self.entries: list[LogEntry] = []
        self.kept: list[Step] = []  # lazy and kept: the steps, for ``seal`` to finish the log
        self.refusals: list[str] = []
        self.escalations = 0
        self.steps = 0
        # 微幸福: the community's fund ledger by year, shared by its consultations (``_Community``)
        self.ledger: dict[int, FundPosition] = {}

    def later(self, days: float) -> None:
        """The clock moves on (never back): ``days`` later, at least a minute after the last step."""
        self.now += timedelta(seconds=max(60.0, round(days * _DAY)))

    def do(
        self, command: Command, actor: Actor, new_id: str | None = None, register: tuple[str, ...] | None = None
    ) -> bool:
        """Apply ``command`` as ``actor`` now; False (and counted) if the procedure refuses it.
        First the clock's own step, as ``Engine.tick`` would take it now: deadlines that passed
        are marked (议而不决, 决而不施) and escalate where the procedure says so."""
        record = self.record
        if record is not None:
            due = record.next_due
            if due is not None and due <= self.now and record.state not in FINAL_STATES:
                self.tick()
                record = self.record  # as the engine reads the record after its tick
        fund = self._fund(record, command) if record is not None and type(command) in _FUNDED else None
        ctx = Context(
            now=self.now,
            actor=actor,
            new_id=new_id,
            catalogue=self.catalogue,
            people=self.cast.roles,
            register=register,
            fund=fund,
        )
        result = apply(self.procedure, self.record, command, ctx, lazy=self.lazy)
        if isinstance(result, Refused):
            self.refusals.append(result.code)
            return False
        self._took(result)
        return True

    def _fund(self, record: Consultation, command: Command) -> FundPosition | None:
        """The community's fund ledger for the year now, as the engine's store would give it."""
        if command.funds_drawn(record) <= 0:
            return None
        params = self.procedure.parameters
        year = params.fund_year(self.now)
        if params.pool_for(year) is None:
            return None
        return self.fund_position(record.community, year)

    def fund_position(self, community: str, year: int) -> FundPosition:
        """What the community's ledger holds for ``year`` (微幸福)."""
        found = self.ledger.get(year)
        return found if found is not None else FundPosition(community=community, year=year)

    def _book(self, entry: LogEntry) -> None:
        """A funds entry goes into the community's ledger, as a store writes it with its step."""
        for r in ledger_rows((entry,)):
            pos = self.fund_position(r.community, r.year)
            allocated, spent, overspent, seq = pos.allocated, pos.spent, pos.overspent, pos.seq
            if r.kind == "allocated":
                allocated, seq = allocated + r.amount, max(seq, r.seq or 0)
            elif r.kind == "released":
                allocated -= r.amount
            else:
                spent, overspent = spent + r.amount, overspent + r.over
            # built trusted (in fen, as a validated one would be): the hot path of a simulation
            self.ledger[r.year] = make(
                FundPosition,
                {
                    "community": r.community,
                    "year": r.year,
                    "allocated": allocated.quantize(_CENT),
                    "spent": spent.quantize(_CENT),
                    "overspent": overspent.quantize(_CENT),
                    "seq": seq,
                },
            )

    def tick(self) -> None:
        """The clock's step now (``MarkOverdue`` as the clock), if the procedure finds anything overdue."""
        overdue = _cmd(MarkOverdue, consultation=self.rec.id)
        result = apply(
            self.procedure,
            self.record,
            overdue,
            Context(now=self.now, actor=CLOCK, catalogue=self.catalogue),
            lazy=self.lazy,
        )
        if not isinstance(result, Refused):
            self._took(result)

    def _took(self, step: Step) -> None:
        self.record = step.record
        entries = step.entries
        self.steps += len(entries)
        for entry in entries:
            event = entry.event
            if event in _COUNTED:
                if event is Event.ESCALATED:
                    self.escalations += 1
                else:
                    self._book(entry)
        if self.keep:
            if self.lazy:
                self.kept.append(step)
            else:
                self.entries.extend(entries)
        self.now += _MINUTE

    def state(self) -> State:
        """The consultation's state now (a call, so that type checkers do not narrow it)."""
        return self.rec.state

    @property
    def rec(self) -> Consultation:
        if self.record is None:  # pragma: no cover - every path proposes first
            raise RuntimeError("no consultation yet")
        return self.record


class _Community:
    """One community over the horizon: its cast, its fund by year, its consultations in turn."""

    def __init__(
        self,
        scenario: Scenario,
        procedure: Procedure,
        catalogue: Catalogue,
        spec: CommunitySpec,
        seed: int,
        keep: bool,
        lazy: bool = True,
        run_class: type[Run] | None = None,
    ) -> None:
        self.lazy = lazy
        self.run_class = run_class if run_class is not None else Run
        self.s = scenario
        self.procedure = procedure
        self.params = procedure.parameters
        self.catalogue = catalogue
        self.spec = spec
        self.seed = seed
        self.keep = keep
        self.cast = cast_for(spec.id, scenario.people)
        self.ledger: dict[int, FundPosition] = {}  # 微幸福: the fund ledger by year, in memory
        self.zone = self.params.zone
        self.forms, self.carriers, self.formats = _Mix(scenario.forms), _Mix(scenario.carriers), _Mix(scenario.formats)
        self.members: dict[Body, tuple[Actor, ...]] = {}

    # ---- helpers ------------------------------------------------------------------------------------
    def _meeting(self, run: Run, rng: Random, form: Form, days: float | None = None) -> datetime:
        """When the next meeting meets: ``days`` (the notice, by default) from now; on a consultation
        day (协商日), the first such day after that."""
        at = run.now + timedelta(seconds=round((self.s.times.notice if days is None else days) * _DAY))
        day = self.params.consultation_day
        if form is Form.CONSULTATION_DAY and day is not None:
            local = at.astimezone(self.zone)
            y, m = local.year, local.month
            while True:
                candidate = datetime.combine(datetime(y, m, day).date(), time(19, 0), tzinfo=self.zone)
                if candidate >= at:
                    return candidate.astimezone(UTC)
                y, m = y + m // 12, m % 12 + 1
        return at

    def _measures(self, run: Run, rng: Random) -> tuple[Measure, ...]:
        funds, params = self.s.funds, self.params
        year = params.fund_year(run.now)
        pool = params.pool_for(year)
        # what the year's fund has left (微幸福), and the matter's own cap, if any
        left = None if pool is None else run.fund_position(run.rec.community, year).left(pool)
        cap = run.rec.budget if run.rec.budget is not None else params.budget_cap
        if cap is not None:
            left = cap if left is None else min(left, cap)
        out = []
        due = run.now + timedelta(days=self.s.times.implementation + 30)
        for i in range(rng.randint(funds.measures_min, funds.measures_max)):
            factor = 1 + funds.budget_spread * (2 * rng.random() - 1)
            want = (funds.measure_budget * Decimal(repr(round(factor, 6)))).quantize(Decimal(1), ROUND_HALF_UP)
            budget = want if left is None else min(want, left)
            if left is not None:
                left -= budget
            owner = self.cast.stakeholders[0].id if self.cast.stakeholders else self.cast.committee[0].id
            measure = make(
                Measure,
                {
                    "title": f"measure {i + 1}",
                    "owner": owner,
                    "due": due,
                    "budget": max(budget, Decimal(0)),
                    "category": None,
                },
            )
            out.append(measure)
        return tuple(out)

    # ---- one consultation ------------------------------------------------------------------------------
    def consult(self, arrival: Arrival) -> tuple[Outcome, tuple[LogEntry, ...]]:
        s, cast = self.s, self.cast
        rng = Random(derive(self.seed, arrival.id))
        run = self.run_class(self.procedure, self.catalogue, cast, arrival.at, self.keep, self.lazy)
        run.ledger = self.ledger  # the community's fund ledger (微幸福), one for all its consultations
        committee = cast.committee[rng.randrange(len(cast.committee))]
        proposer = cast.residents[rng.randrange(len(cast.residents))]
        form: Form = self.forms.draw(rng)
        carrier: Carrier = self.carriers.draw(rng)
        major = rng.random() < s.major
        propose = _cmd(
            Propose,
            community=arrival.community,
            topic=arrival.topic,
            title=arrival.topic.partition("/")[2],
            carrier=carrier,
            form=form,
            major=major,
        )
        if run.do(propose, proposer, arrival.id):
            self._follow(run, rng, committee, proposer, form, carrier)
        logs = (seal(run.kept) if self.lazy else tuple(run.entries)) if self.keep else ()
        return self._outcome(run, arrival), logs

    def _follow(self, run: Run, rng: Random, committee: Actor, proposer: Actor, form: Form, carrier: Carrier) -> None:
        s, cast = self.s, self.cast
        cid = run.rec.id
        run.later(1)
        if rng.random() < s.rejected:
            run.do(_cmd(Reject, consultation=cid, reason="不予受理 not taken up"), committee)
            appeal_by = run.rec.respond_by
            if run.rec.state is State.APPEALABLE and appeal_by is not None:  # nobody appeals: it becomes final
                run.now = max(run.now, appeal_by + timedelta(minutes=1))
                run.tick()
            return
        k = rng.randint(s.attendance.invited_min, min(s.attendance.invited_max, len(cast.voices)))
        invited = rng.sample(cast.voices, k) if k <= len(cast.voices) else list(cast.voices)
        if form is Form.INVITATION and cast.think_tank:
            invited.append(cast.think_tank[rng.randrange(len(cast.think_tank))])
        chair = cast.chairs[rng.randrange(len(cast.chairs))] if form is Form.CONSULTATION_DAY else None
        notify = _cmd(
            Notify,
            consultation=cid,
            meeting_at=self._meeting(run, rng, form),
            invite=tuple(a.id for a in invited),
            chair=None if chair is None else chair.id,
        )
        if not run.do(notify, committee):
            run.do(_cmd(Withdraw, consultation=cid, reason="无法告知 notice failed"), committee)
            return
        if rng.random() < s.withdrawn:
            run.later(1)
            run.do(_cmd(Withdraw, consultation=cid, reason="已解决 solved"), proposer)
            return
        schedule = run.rec.schedule
        if schedule is not None and schedule.meeting_at > run.now:
            run.now = schedule.meeting_at
        convenor = chair if chair is not None else committee
        op = s.opinion
        positions = self._positions(rng, len(invited))
        # one cycle of consultation after another: rounds, a decision, its review, its effect
        correct_on_round = False
        while True:
            if correct_on_round and self._decide(run, rng, carrier, invited, positions, committee):
                # 依法纠正 with no rounds left: the decision is corrected on the same round
                outcome = "decided"
            else:
                outcome = self._rounds(run, rng, convenor, committee, invited, positions, form, carrier)
            correct_on_round = False
            if outcome == "escalated":
                if not self._ruling(run, rng):
                    return
                positions = self._positions(rng, len(invited))  # a new cycle: the matter looked at afresh
            elif outcome == "decided":
                verdict = self._review(run, rng)
                if verdict == "lawful":
                    if not self._carry_out(run, rng, committee):
                        return
                    positions = self._positions(rng, len(invited))  # 再次协商 on a new problem
                elif verdict == "escalated":
                    if not self._ruling(run, rng):
                        return
                    positions = self._positions(rng, len(invited))
                elif verdict == "unlawful":  # 依法纠正: corrected, consulted again in this cycle
                    positions = move(positions, op, rng)
                    correct_on_round = run.rec.rounds_in_cycle >= self.params.round_limit
                else:
                    return
            else:
                return
            if run.state() is not State.CONSULTING:
                return

    def _positions(self, rng: Random, n: int) -> list[float]:
        op = self.s.opinion
        return [max(-1.0, min(1.0, rng.gauss(op.mean, op.spread))) for _ in range(n)]

    def _rounds(
        self,
        run: Run,
        rng: Random,
        convenor: Actor,
        committee: Actor,
        invited: list[Actor],
        positions: list[float],
        form: Form,
        carrier: Carrier,
    ) -> str:
        """Rounds until a decision is taken (``decided``), the matter is escalated, or it stops."""
        s, params, cast = self.s, self.params, self.cast
        cid = run.rec.id
        att = s.attendance
        heard_out = carrier in (Carrier.HEARING, Carrier.ADVISORY)
        while True:
            if run.state() is State.ESCALATED:
                return "escalated"
            if run.rec.rounds_in_cycle >= params.round_limit:
                run.later(1)
                run.do(_cmd(Escalate, consultation=cid, reason="议而不决 no way forward"), committee)
                return "escalated" if run.state() is State.ESCALATED else "stuck"
            if run.rec.pending_meeting is None:  # every round is a meeting announced with its notice (会议)
                chair = run.rec.chair if form is Form.CONSULTATION_DAY else None
                after = max(s.times.between_rounds, s.times.notice)
                meeting = self._meeting(run, rng, form, after)
                scheduled = _cmd(ScheduleMeeting, consultation=cid, meeting_at=meeting, chair=chair)
                if not run.do(scheduled, committee):
                    return "escalated" if run.state() is State.ESCALATED else "stuck"
                run.now = max(run.now, meeting)
            fmt = (
                MeetingFormat.ONLINE
                if form is Form.CLOUD
                else MeetingFormat.HEARING
                if carrier is Carrier.HEARING
                else self.formats.draw(rng)
            )
            voices = [(a, x) for a, x in zip(invited, positions, strict=True) if rng.random() < att.show_up]
            crowd: list[Actor] = []
            if params.round_open_to == "invitees_and_residents":
                crowd = _window(rng, cast.residents, _poisson(rng, att.crowd))
            attendees = tuple(dict.fromkeys([a.id for a, _ in voices] + [a.id for a in crowd]))
            if fmt is MeetingFormat.ONLINE:
                online = attendees
            else:  # about online_share of them, next to each other in the list
                k = int(len(attendees) * att.online_share + rng.random())
                start = rng.randrange(len(attendees) - k + 1) if attendees else 0
                online = attendees[start : start + k]
            opened = _cmd(OpenRound, consultation=cid, agenda="", attendees=attendees, format=fmt, online=online)
            if not run.do(opened, convenor):
                return "escalated" if run.state() is State.ESCALATED else "stuck"
            for actor, x in voices:  # the hot loop: the command's every field given, built trusted
                opinion = {"consultation": cid, "stance": stance_of(x, s.opinion), "text": "", "on_behalf_of": None}
                run.do(make(RecordOpinion, opinion), actor)
            run.do(_cmd(CloseRound, consultation=cid, summary=""), convenor)
            if run.state() is State.ESCALATED:
                return "escalated"
            tally = run.rec.rounds[-1].tally
            if tally is not None and tally.quorum_met and (tally.consensus or heard_out):
                run.later(s.times.to_decision)
                if self._decide(run, rng, carrier, invited, positions, committee):
                    return "decided"
                if run.state() is State.ESCALATED:
                    return "escalated"
            if tally is not None and not tally.consensus:
                positions[:] = move(positions, s.opinion, rng)

    def _content(self, run: Run, rng: Random, carrier: Carrier, invited: list[Actor]) -> dict[str, Any]:
        """What the decision says, as its carrier needs it (for ``Decide`` or a body's ``CallVote``)."""
        cid = run.rec.id
        if carrier is Carrier.DECISION:
            return {"consultation": cid, "resolution": "决议 resolved", "measures": self._measures(run, rng)}
        if carrier is Carrier.HEARING:
            return {"consultation": cid, "resolution": "听证 heard", "hearing_record": "听证笔录 minutes"}
        if carrier is Carrier.COORDINATION:
            parties = tuple(a.id for a in invited[:2]) if len(invited) >= 2 else ()
            return {"consultation": cid, "resolution": "协议 agreed", "agreement_parties": parties}
        return {"consultation": cid, "resolution": "建议 advice", "advice_adopted": rng.random() < 0.8}

    def _decide(
        self, run: Run, rng: Random, carrier: Carrier, invited: list[Actor], positions: list[float], committee: Actor
    ) -> bool:
        """The committee decides, or - where the parameters give the matter to a body - puts the
        decision to the body's vote (表决): its members vote as their positions lean. True if decided."""
        content = self._content(run, rng, carrier, invited)
        body = self.params.body_for(run.rec.major)
        if body is Body.COMMITTEE:
            return run.do(_cmd(Decide, **content), committee)
        members = self._members(body)
        register = tuple(a.id for a in members)
        if not run.do(_cmd(CallVote, body=body, **content), committee, register=register):
            return False
        op, cid = self.s.opinion, run.rec.id
        mean = sum(positions) / len(positions) if positions else op.mean
        for member in members:
            if rng.random() >= self.s.vote_turnout:
                continue
            x = rng.gauss(mean, op.spread)
            ballot = Ballot.FOR if x > op.threshold else Ballot.AGAINST if x < -op.threshold else Ballot.ABSTAIN
            run.do(make(CastVote, {"consultation": cid, "ballot": ballot, "on_behalf_of": None}), member)
        run.do(_cmd(CloseVote, consultation=cid), committee)
        return run.state() is State.DECIDED

    def _members(self, body: Body) -> tuple[Actor, ...]:
        """The body's members in the community, in the order a directory lists them (by id)."""
        found = self.members.get(body)
        if found is None:
            roles = BODY_MEMBERS.get(body, frozenset())
            everyone = {a.id: a for a in (*self.cast.residents, *self.cast.voices)}
            found = tuple(everyone[p] for p in sorted(everyone) if not roles.isdisjoint(everyone[p].roles))
            self.members[body] = found
        return found

    def _review(self, run: Run, rng: Random) -> str:
        s, cast = self.s, self.cast
        if run.state() is State.FEEDBACK:  # the parameters exempt the matter from review: in force
            return "lawful"
        run.later(s.times.to_review)
        reviewer = cast.supervisors[rng.randrange(len(cast.supervisors))]
        unlawful = rng.random() < s.unlawful
        if unlawful:
            command = _cmd(
                ReviewLegality,
                consultation=run.rec.id,
                verdict=Verdict.UNLAWFUL,
                legal_basis="《城市居民委员会组织法》",
                correction="依法纠正 corrected",
                education_note="普法 legal education",
            )
        else:
            command = _cmd(ReviewLegality, consultation=run.rec.id, verdict=Verdict.LAWFUL)
        if not run.do(command, reviewer):
            return "stuck"
        state = run.rec.state
        return "lawful" if state is State.FEEDBACK else "escalated" if state is State.ESCALATED else "unlawful"

    def _carry_out(self, run: Run, rng: Random, committee: Actor) -> bool:
        """反馈 and 监督: publish, carry the measures out, hear residents, inspect; close or consult
        again. True when the matter goes back to consultation."""
        s, cast = self.s, self.cast
        cid = run.rec.id
        run.later(s.times.to_publication)
        run.do(_cmd(Publish, consultation=cid, channels=(Channel.NOTICE_BOARD, Channel.WECHAT), summary=""), committee)
        run.do(_cmd(StartSupervision, consultation=cid), committee)
        decision = run.rec.current_decision
        run.later(s.times.implementation)
        funds = s.funds
        if decision is not None:
            for i, m in enumerate(decision.measures):
                share = funds.spent_min + (funds.spent_max - funds.spent_min) * rng.random()
                spent = (m.budget * Decimal(repr(round(share, 6)))).quantize(_CENT, ROUND_HALF_UP)
                run.do(_cmd(ReportProgress, consultation=cid, measure=i, percent=100, spent=spent), committee)
        for resident in rng.sample(cast.residents, min(s.feedback, len(cast.residents))):
            run.do(_cmd(RecordFeedback, consultation=cid, satisfaction=rng.randint(3, 5)), resident)
        run.later(s.times.to_inspection)
        inspector = cast.inspectors[rng.randrange(len(cast.inspectors))]
        if rng.random() < s.new_problem:
            run.do(_cmd(Inspect, consultation=cid, passed=False, findings="新问题 a new problem"), inspector)
            if run.do(_cmd(RequestReconsultation, consultation=cid, problems="新问题 a new problem"), inspector):
                return True
            run.later(s.times.to_inspection)  # at the cycle limit: put right, inspected again
        run.do(_cmd(Inspect, consultation=cid, passed=True), inspector)
        run.do(_cmd(Close, consultation=cid, summary="办结 done"), committee)
        return False

    def _ruling(self, run: Run, rng: Random) -> bool:
        """The sub-district takes an escalated matter: back to consultation (True), or closed by ruling."""
        s, cast = self.s, self.cast
        run.later(s.times.to_ruling)
        official = cast.sub_district[rng.randrange(len(cast.sub_district))]
        cid = run.rec.id
        if rng.random() < s.resumed and run.do(
            _cmd(Resume, consultation=cid, instructions="重新协商 consult again"), official
        ):
            return True
        run.do(_cmd(Close, consultation=cid, summary="街道裁定 ruling"), official)
        return False

    # ---- the row ---------------------------------------------------------------------------------------
    def _outcome(self, run: Run, arrival: Arrival) -> Outcome:
        rec = run.rec
        formats = dict.fromkeys(MeetingFormat, 0)
        person_times = online = 0
        people: set[str] = set()
        for r in rec.rounds:
            if r.format is not None:
                formats[r.format] += 1
            person_times += len(r.attendees)
            online += len(r.online)
            people.update(r.attendees)
        reviewed = self.params.needs_review(rec.carrier, rec.major)
        in_force = next(
            (
                d
                for d in rec.decisions
                if not reviewed or any(v.decision == d.number and v.verdict is Verdict.LAWFUL for v in rec.reviews)
            ),
            None,
        )
        done: dict[tuple[int, int], Decimal] = {}
        spent = Decimal(0)
        for p in rec.progress:
            spent += p.spent
            if p.percent == 100:
                done[(p.decision, p.measure)] = done.get((p.decision, p.measure), Decimal(0)) + p.spent
        budget = sum((d.budget for d in rec.decisions if d is in_force), Decimal(0))
        measures = sum(len(d.measures) for d in rec.decisions)
        projects = sum(1 for v in done.values() if v > 0)
        start = rec.proposed_at
        local = start.astimezone(self.zone)
        return Outcome(
            id=rec.id,
            community=arrival.community,
            sub_district=arrival.sub_district,
            year=local.year,
            month=local.month,
            topic=rec.topic,
            category=rec.topic.partition("/")[0],
            form=rec.form.value,
            carrier=rec.carrier.value,
            major=rec.major,
            state=rec.state.value,
            ending="" if rec.ending is None else rec.ending.value,
            rounds=len(rec.rounds),
            cycles=rec.cycle,
            unlawful=sum(1 for v in rec.reviews if v.verdict is Verdict.UNLAWFUL),
            escalations=run.escalations,
            refusals=len(run.refusals),
            days_to_decision=None if in_force is None else _days(in_force.decided_at - start),
            days_to_close=None if rec.ended_at is None else _days(rec.ended_at - start),
            participants=len(people),
            person_times=person_times,
            online_person_times=online,
            round_table=formats[MeetingFormat.ROUND_TABLE],
            heart_to_heart=formats[MeetingFormat.HEART_TO_HEART],
            review=formats[MeetingFormat.REVIEW],
            hearing=formats[MeetingFormat.HEARING],
            deliberation=formats[MeetingFormat.DELIBERATION],
            online=formats[MeetingFormat.ONLINE],
            measures=measures,
            projects=projects,
            budget=budget,
            spent=spent,
            steps=rec.version,
        )


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / _DAY, 4)


def simulate_communities(
    scenario: Scenario,
    seed: int,
    indices: Sequence[int],
    *,
    procedure: Procedure | None = None,
    keep_logs: bool = False,
    lazy: bool = True,
    run_class: type[Run] | None = None,
) -> list[tuple[Outcome, tuple[LogEntry, ...]]]:
    """The consultations of the communities at ``indices`` (the unit of parallel work), in order.
    ``lazy=False`` chains every entry as the engine does (slower; the same logs once sealed);
    ``run_class`` drives each consultation another way (``baseline.EngineRun``: through an Engine)."""
    proc = procedure if procedure is not None else scenario.procedure()
    specs = scenario.community_specs()
    chosen = [specs[i] for i in indices]
    catalogue = catalogue_for(scenario, chosen)
    out: list[tuple[Outcome, tuple[LogEntry, ...]]] = []
    for spec in chosen:
        community = _Community(scenario, proc, catalogue, spec, seed, keep_logs, lazy, run_class)
        for arrival in arrivals(scenario, seed, spec, 0):
            out.append(community.consult(arrival))
    return out


def _chunks(n: int, parts: int) -> list[list[int]]:
    parts = max(1, min(parts, n))
    return [list(range(i, n, parts)) for i in range(parts)]


def _job(
    args: tuple[Scenario, int, list[int], Procedure | None, bool, bool],
) -> list[tuple[Outcome, tuple[LogEntry, ...]]]:
    scenario, seed, indices, procedure, keep, lazy = args
    return simulate_communities(scenario, seed, indices, procedure=procedure, keep_logs=keep, lazy=lazy)


def simulate(
    scenario: Scenario,
    seed: int = 0,
    *,
    executor: Executor | None = None,
    chunks: int | None = None,
    procedure: Procedure | None = None,
    keep_logs: bool = False,
    lazy: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Results:
    """Simulate ``scenario`` with ``seed``: serial, or on ``executor`` (any
    ``concurrent.futures.Executor``) in ``chunks`` of communities. The results are the same
    either way. ``procedure`` runs another variant than the scenario's; ``keep_logs`` keeps every
    consultation's log (for ``Results.logs``, e.g. to verify them); ``lazy=False`` chains each
    entry as it is made, as the engine does (slower, the same logs)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        from ..errors import InvalidInput

        raise InvalidInput(f"the seed is a whole number from 0 to 2**63 - 1, not {seed!r}", code="bad_seed")
    n = len(scenario.community_specs())
    if executor is None:
        parts: Iterator[list[tuple[Outcome, tuple[LogEntry, ...]]]] = iter(
            [simulate_communities(scenario, seed, range(n), procedure=procedure, keep_logs=keep_logs, lazy=lazy)]
        )
        groups = [list(range(n))]
    else:
        groups = _chunks(n, chunks or 8)
        parts = executor.map(_job, [(scenario, seed, g, procedure, keep_logs, lazy) for g in groups])
    by_community: dict[int, list[tuple[Outcome, tuple[LogEntry, ...]]]] = {}
    specs = scenario.community_specs()
    position = {c.id: i for i, c in enumerate(specs)}
    for group, part in zip(groups, parts, strict=True):
        for row in part:
            by_community.setdefault(position[row[0].community], []).append(row)
        if progress is not None:
            progress(len(group))
    rows = [row for i in sorted(by_community) for row in by_community[i]]
    return Results(
        scenario=scenario,
        seed=seed,
        outcomes=tuple(r[0] for r in rows),
        logs={r[0].id: r[1] for r in rows} if keep_logs else None,
    )
