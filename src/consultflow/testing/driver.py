"""One driver for consultations in tests, simulations and the kit: a cast, a standard community,
one clock policy, and a ``Driver`` that runs each command of the six steps through a real ``Engine``.

Needs nothing beyond consultflow itself (no pytest)::

    from consultflow.testing import Driver

    d = Driver()                        # six-step procedure, memory store, simulated clock at T0
    d.propose()                         # li proposes; d.cid is the new consultation
    d.notify()                          # wang gives notice of a meeting in four days, chen chairs
    d.hold_round()                      # waits for the meeting, opens a round, three support, closes
    d.decide()                          # wang decides, with the carrier's content (one measure)
    d.review()                          # sun finds it lawful
    d.to("supervising")                 # or: a NEW consultation taken straight to a state

People are named by their key in ``CAST`` (or given as an ``Actor``). Every role the procedure
knows is held by someone; each holds exactly the roles shown there.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ..catalogue import Catalogue
from ..clock import SimulatedClock
from ..commands import Command
from ..consultation_day import rota_chair
from ..directory import MemoryDirectory
from ..directory.base import register_of
from ..engine import Engine
from ..log import LogEntry
from ..notices import Notice
from ..procedure import Procedure, six_step
from ..records import Consultation, Measure
from ..roles import BODY_MEMBERS, NEVER_GRANTED, Actor, Role
from ..step import Step
from ..steps import (
    AddTopic,
    Appeal,
    CallVote,
    CastVote,
    Close,
    CloseRound,
    CloseVote,
    CoSign,
    Decide,
    DelayPledge,
    EditProposal,
    Escalate,
    Inspect,
    Notify,
    OpenRound,
    Propose,
    Publish,
    Reconsider,
    RecordFeedback,
    RecordMinutes,
    RecordOpinion,
    Reject,
    ReportProgress,
    RequestReconsultation,
    Resume,
    ReviewLegality,
    ScheduleMeeting,
    StartSupervision,
    Submit,
    Withdraw,
)
from ..storage.base import Store
from ..storage.memory import MemoryStore
from ..vocabulary import Ballot, Body, Carrier, Channel, Event, Form, ProjectType, Stance, State, Verdict

__all__ = [
    "CAST",
    "COMMUNITY",
    "CONSENSUS",
    "INVITED",
    "NO_CONSENSUS",
    "OTHER_TOPIC",
    "PACE",
    "STATES",
    "T0",
    "TOPIC",
    "ClockPolicy",
    "Driver",
    "only",
    "resident",
    "standard_catalogue",
]

#: When a driver's clock starts: Monday 2 March 2026, 09:00 in Shanghai (01:00 UTC).
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
#: How long after the previous command each command happens, unless the clock was moved.
PACE = timedelta(hours=1)

#: The standard community and the topics of its catalogue.
COMMUNITY = "taoyuan"
TOPIC = "public-affairs/night-parking"
OTHER_TOPIC = "public-benefit/micro-greening"


def _cast(*people: tuple[str, Role | None]) -> Mapping[str, Actor]:
    return MappingProxyType({name: Actor(name, roles=set() if role is None else {role}) for name, role in people})


#: The cast: one person per role the tests need, each holding exactly the role shown.
CAST: Mapping[str, Actor] = _cast(
    ("wang", Role.COMMITTEE),  # convenes, decides, publishes, reports progress, closes
    ("wc", Role.WORKING_COMMITTEE),
    ("council", Role.COUNCIL_MEMBER),
    ("li", Role.RESIDENT),  # the proposer
    ("wu", Role.RESIDENT),
    ("zhang", Role.RESIDENT_REPRESENTATIVE),
    ("zhao", Role.PROPERTY_MANAGEMENT),  # owns the measures
    ("unit", Role.UNIT),
    ("ngo", Role.SOCIAL_ORGANISATION),
    ("deputy", Role.DEPUTY),
    ("liu", Role.EXPERT),  # the think tank
    ("tech", Role.TECHNICIAN),
    ("third", Role.THIRD_PARTY),
    ("police", Role.POLICE),
    ("sun", Role.SUPERVISOR),  # the legality reviewer
    ("zhou", Role.INSPECTION_GROUP),  # inspects, asks for re-consultation
    ("chen", Role.ROTATING_CHAIR),  # the chair named at notice
    ("other_chair", Role.ROTATING_CHAIR),  # a rotating chair, not this consultation's
    ("jie", Role.SUB_DISTRICT),  # takes escalations, resumes, rules
    ("lawyer", Role.LEGAL_ADVISER),  # 法律顾问: may review legality
    ("owner", Role.OWNER),  # 业主: votes in the owners' meeting
    ("system", Role.SYSTEM),
    ("nobody", None),  # holds no role at all
)

#: Invited by ``Driver.notify``: four people, so the quorum is max(3, ceil(0.5 * 4)) = 3.
INVITED: tuple[str, ...] = ("li", "wu", "zhang", "zhao")
#: ``Driver.hold_round()``: the quorum, all in support.
CONSENSUS: tuple[tuple[str, Stance], ...] = (("li", Stance.SUPPORT), ("wu", Stance.SUPPORT), ("zhang", Stance.SUPPORT))
#: ``Driver.hold_round(consensus=False)``: the quorum is met (four opinions), one in support.
NO_CONSENSUS: tuple[tuple[str, Stance], ...] = (
    ("li", Stance.SUPPORT),
    ("wu", Stance.OPPOSE),
    ("zhang", Stance.OPPOSE),
    ("zhao", Stance.AMEND),
)

#: ``call_vote`` fields that are the vote's, not the decision's.
_VOTE_ONLY = frozenset({"members", "owners"})

#: Every state ``Driver.to`` reaches. "consulting" has a round open and no opinions yet;
#: "consulting_closed" has a closed round that reached consensus.
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
    # proposal intake (提议): a draft; a rejection open to appeal; an appeal before the sub-district
    "draft",
    "appealable",
    "appealed",
)


def standard_catalogue() -> Catalogue:
    """``COMMUNITY`` with ``TOPIC`` (night parking) and ``OTHER_TOPIC`` (micro-greening)."""
    return Catalogue().with_community(
        COMMUNITY, {TOPIC: "夜间停车 night parking", OTHER_TOPIC: "微绿化 micro-greening"}
    )


def only(role: Role, name: str | None = None) -> Actor:
    """Someone holding only ``role`` (named ``only-<role>`` unless ``name`` is given)."""
    return Actor(name or f"only-{role.value}", roles={role})


def resident(name: str) -> Actor:
    """A resident called ``name``: for the many distinct participants a race or a stream needs."""
    return Actor(name, roles={Role.RESIDENT})


class ClockPolicy:
    """The clock policy of the ``Driver`` and of ``StepMaker``, on a clock of its own. Thread-safe.

    Each step happens ``pace`` after the previous one, unless the clock was moved since (by the
    caller), in which case it happens at the clock's reading; the first step happens at the
    clock's reading. The policy only ever moves the clock forward.
    """

    def __init__(self, clock: SimulatedClock, pace: timedelta) -> None:
        if pace < timedelta(0):
            raise ValueError("the pace is how long after the previous step the next one happens: not negative")
        self.clock = clock
        self.pace = pace
        self._last: datetime | None = None  # the clock's reading at the last step; None: next time fixed
        self._lock = threading.Lock()

    def next(self) -> datetime:
        """The time of the next step: the clock moves there and stays fixed there until ``happened``."""
        with self._lock:
            return self._next()

    def happened(self) -> None:
        """A step happened at the clock's reading; the next one is ``pace`` later unless the clock moves."""
        with self._lock:
            self._last = self.clock.now()

    def take(self) -> datetime:
        """``next`` and ``happened`` at once: the time of a step made right now."""
        with self._lock:
            at = self._next()
            self._last = at
            return at

    def given(self, at: datetime) -> datetime:
        """A step at ``at``, a time the caller chose: the clock moves there if that is later (never back)."""
        with self._lock:
            if at > self.clock.now():
                self.clock.set(at)
            self._last = self.clock.now()
            return at

    def _next(self) -> datetime:
        now = self.clock.now()
        if self._last is not None and now == self._last:
            now = self.clock.advance(self.pace)
        self._last = None
        return now


class Driver:
    """Drives consultations through a real ``Engine`` with a cast, on a ``SimulatedClock``.

    **The clock policy.** Every command the driver runs (allowed or refused) happens ``pace``
    (default one hour) after the driver's previous command, unless the clock was moved since - by
    the caller (``clock.set``/``clock.advance``), by ``serve_notice`` or by ``moment()`` - in which
    case it happens at the clock's reading. The first command happens at the start (``T0``). The
    driver never moves the clock backwards. Commands given straight to ``engine`` happen at the
    clock as it stands (the instant of the driver's previous command), and do not count as the
    driver's. Times in a command's content (a meeting in four days, a measure due in thirty) are
    counted from the moment that command happens.

    **The consultation.** ``cid`` is the consultation the driver works on: the last one proposed
    (by ``propose`` or ``to``). Every command takes ``cid=`` to work on another one, and ``by=``
    (a name in the cast, or an ``Actor``) to have someone other than the usual person act.

    ``Driver(round_limit=1)`` runs a variant of the procedure with those parameters; ``store``,
    ``clock``, ``catalogue``, ``cast`` and ``ids`` replace the defaults (a ``MemoryStore``, a
    ``SimulatedClock`` at ``start``, ``standard_catalogue()``, ``CAST``, ids ``c-001``, ``c-002``...).
    ``Driver(engine=e, clock=c)`` drives an engine built elsewhere (the reference story does).
    """

    def __init__(
        self,
        procedure: Procedure | None = None,
        *,
        store: Store | None = None,
        clock: SimulatedClock | None = None,
        start: datetime = T0,
        pace: timedelta = PACE,
        catalogue: Catalogue | None = None,
        cast: Mapping[str, Actor] = CAST,
        ids: Callable[[], str] | None = None,
        engine: Engine | None = None,
        directory: MemoryDirectory | None = None,
        community: str = COMMUNITY,
        **parameters: Any,
    ) -> None:
        self.clock = clock if clock is not None else SimulatedClock(start)
        self.cast = cast
        self.community = community
        if engine is not None:  # an engine built elsewhere (the demo's): drive it as it is
            if clock is None or engine.clock is not clock:
                raise ValueError("Driver(engine=...) needs the engine's own SimulatedClock as clock=")
            if procedure is not None or store is not None or catalogue is not None or ids is not None or parameters:
                raise ValueError("Driver(engine=...) drives that engine: give its procedure, store and ids to it")
            if directory is not None:
                raise ValueError("Driver(engine=...) uses that engine's directory")
            self.engine = engine
            self.store = engine.store
            self.catalogue = engine.catalogue
            self.directory = engine.directory if isinstance(engine.directory, MemoryDirectory) else None
        else:
            proc = procedure if procedure is not None else six_step()
            if parameters:
                proc = proc.variant(f"{proc.name}-test", "t1", parameters=parameters)
            counter = itertools.count(1)
            salts = itertools.count(1)
            self.store = store if store is not None else MemoryStore()
            self.catalogue = catalogue if catalogue is not None else standard_catalogue()
            self.directory = directory if directory is not None else MemoryDirectory()
            self.engine = Engine(
                proc,
                self.store,
                clock=self.clock,
                catalogue=self.catalogue,
                ids=ids if ids is not None else lambda: f"c-{next(counter):03d}",
                directory=self.directory,
                # reproducible salts, so that a story gives the same log twice (a test's engine: never
                # for a store that is exported publicly, whose salts must be unguessable)
                salts=lambda: f"{next(salts):032x}",
            )
            for person in cast.values():
                self.enrol(person)
        self.policy = ClockPolicy(self.clock, pace)
        self.cid = ""

    # ---- plumbing ---------------------------------------------------------------------------------
    @property
    def procedure(self) -> Procedure:
        return self.engine.procedure

    def enrol(self, person: Actor, community: str | None = None) -> None:
        """Grant ``person`` the roles it shows, in ``community`` (the driver's by default), in the
        driver's directory: the driver is the tests' administrator. Roles nobody is granted (the
        system, the proposer, the invited) are left out: the engine never takes them from a caller."""
        if self.directory is None:
            return
        roles = person.roles - NEVER_GRANTED
        if roles:
            self.directory.grant(community or self.community, person.id, *roles, by="driver")

    def co_signers(self, count: int | None = None, *, prefix: str = "neighbour") -> tuple[str, ...]:
        """``count`` residents of the community (by default as many as the parameters ask of a
        resident's request to consult again, 联名), enrolled in the directory; their ids."""
        n = self.engine.procedure.parameters.reconsultation_co_signers if count is None else count
        people = tuple(Actor(f"{prefix}-{i}", roles={Role.RESIDENT}) for i in range(1, n + 1))
        for person in people:
            self.enrol(person)
        return tuple(p.id for p in people)

    def actor(self, who: str | Actor) -> Actor:
        """``who`` as an ``Actor``: a name in the cast, or an ``Actor`` - enrolled in the driver's
        directory with the roles it shows, so that the engine finds them there."""
        if isinstance(who, Actor):
            if who not in self.cast.values():
                self.enrol(who)
            return who
        try:
            return self.cast[who]
        except KeyError:
            raise KeyError(f"{who!r} is not in the cast; use one of {sorted(self.cast)} or pass an Actor") from None

    def moment(self) -> datetime:
        """The moment the next command happens under the clock policy. The clock moves there and the
        next command happens exactly then (for a command whose content counts from its own time)."""
        return self.policy.next()

    def step(self, command: Command, by: str | Actor) -> Step:
        """Run ``command`` as ``by`` under the clock policy; the whole step."""
        actor = self.actor(by)
        self.policy.next()
        try:
            step = self.engine.run(command, by=actor)
        finally:
            self.policy.happened()
        if isinstance(command, Propose):
            self.cid = step.record.id
        return step

    def run(self, command: Command, by: str | Actor) -> Consultation:
        """Run ``command`` as ``by`` under the clock policy; the consultation after it."""
        return self.step(command, by).record

    def _person(self, pid: str) -> str | Actor:
        """A person the directory lists: their cast name, or an ``Actor`` the cast does not know."""
        return pid if pid in self.cast else Actor(pid)

    def _id(self, cid: str | None) -> str:
        found = cid if cid is not None else self.cid
        if not found:
            raise ValueError("no consultation yet: propose one (or use to()), or pass cid=")
        return found

    def get(self, cid: str | None = None) -> Consultation:
        return self.engine.get(self._id(cid))

    @property
    def record(self) -> Consultation:
        """The current consultation as stored."""
        return self.get()

    @property
    def state(self) -> State:
        return self.get().state

    def history(self, cid: str | None = None) -> tuple[LogEntry, ...]:
        return self.engine.history(self._id(cid))

    def events(self, cid: str | None = None) -> list[Event]:
        return [e.event for e in self.history(cid)]

    def outbox(self, consultation: str | None = None) -> tuple[Notice, ...]:
        """Every notice in the store's outbox, in the order written (or only those of
        ``consultation``); uses the ``outbox()`` inspection method every bundled store has."""
        notices: Sequence[Notice] = self.store.outbox()  # type: ignore[attr-defined]
        return tuple(n for n in notices if consultation is None or n.consultation == consultation)

    def snapshot(self, cid: str | None = None) -> tuple[Consultation, tuple[LogEntry, ...], tuple[Notice, ...]]:
        """Everything a refused command must leave untouched: the record, its log, the whole outbox."""
        return self.get(cid), self.history(cid), self.outbox()

    # ---- 提议 propose ---------------------------------------------------------------------------------
    def propose(self, *, by: str | Actor = "li", **fields: Any) -> Consultation:
        """A new consultation on ``TOPIC`` in ``COMMUNITY`` (a decision, by invitation); it becomes ``cid``."""
        data: dict[str, Any] = {
            "community": COMMUNITY,
            "topic": TOPIC,
            "title": "夜间停车 Night parking",
            "carrier": Carrier.DECISION,
            "form": Form.INVITATION,
        }
        data.update(fields)
        return self.run(Propose(**data), by)

    def reject(
        self, *, cid: str | None = None, by: str | Actor = "wang", reason: str = "不在本社区 not ours"
    ) -> Consultation:
        return self.run(Reject(consultation=self._id(cid), reason=reason), by)

    # ---- 提议 intake: drafts, edits, co-signers, the catalogue, appeals -----------------------------------
    def draft(self, *, by: str | Actor = "li", **fields: Any) -> Consultation:
        """A draft (草稿) like ``propose`` makes a proposal; it becomes ``cid``."""
        return self.propose(by=by, draft=True, **fields)

    def submit(self, *, cid: str | None = None, by: str | Actor = "li") -> Consultation:
        return self.run(Submit(consultation=self._id(cid)), by)

    def edit(self, *, cid: str | None = None, by: str | Actor = "li", **fields: Any) -> Consultation:
        """Edit the draft or proposal: ``title=``, ``budget=``, ``topic=``, ... (``EditProposal``)."""
        return self.run(EditProposal(consultation=self._id(cid), **fields), by)

    def co_sign(self, by: str | Actor, *, cid: str | None = None) -> Consultation:
        return self.run(CoSign(consultation=self._id(cid)), by)

    def add_topic(
        self,
        slug: str = "stray-cats",
        name: str = "流浪猫 stray cats",
        *,
        cid: str | None = None,
        by: str | Actor = "wang",
    ) -> Consultation:
        """列入二级目录: the committee makes the "other" matter an item of the catalogue."""
        return self.run(AddTopic(consultation=self._id(cid), slug=slug, name=name), by)

    def appeal(
        self, *, cid: str | None = None, by: str | Actor = "li", grounds: str = "本社区事务 it is ours"
    ) -> Consultation:
        return self.run(Appeal(consultation=self._id(cid), grounds=grounds), by)

    def reconsider(
        self, upheld: bool, *, cid: str | None = None, by: str | Actor = "jie", ruling: str = "复核 reconsidered"
    ) -> Consultation:
        return self.run(Reconsider(consultation=self._id(cid), upheld=upheld, ruling=ruling), by)

    def lapse_appeal(self, *, cid: str | None = None) -> Consultation:
        """Let the time to appeal run out and the clock mark it (``Engine.tick``): the rejection is final."""
        rec = self.get(cid)
        if rec.state is not State.APPEALABLE or rec.respond_by is None:
            raise ValueError(f"{rec.id} is {rec.state.value}, not a rejection open to appeal")
        if rec.respond_by >= self.clock.now():
            self.clock.set(rec.respond_by + timedelta(minutes=1))
        self.engine.tick()
        return self.get(cid)

    def withdraw(
        self, *, cid: str | None = None, by: str | Actor = "li", reason: str = "已解决 solved"
    ) -> Consultation:
        return self.run(Withdraw(consultation=self._id(cid), reason=reason), by)

    # ---- 告知 notify ----------------------------------------------------------------------------------
    def notify(self, *, cid: str | None = None, by: str | Actor = "wang", **fields: Any) -> Consultation:
        """Notice of a meeting four days after this command, inviting ``INVITED``, chaired by ``chen``."""
        data: dict[str, Any] = {"consultation": self._id(cid), "invite": INVITED, "chair": "chen"}
        data.update(fields)
        if "meeting_at" not in data:
            data["meeting_at"] = self.moment() + timedelta(days=4)
        return self.run(Notify(**data), by)

    def serve_notice(self, *, cid: str | None = None) -> None:
        """Let the notice period run: the clock moves to the meeting announced and not yet held (the
        notice's, or a later one's) if it is still ahead, and the next command happens at it."""
        record = self.get(cid)
        pending = record.pending_meeting
        if pending is not None:
            at = pending.at
        elif record.schedule is not None and not record.meetings:
            at = record.schedule.meeting_at
        else:
            raise ValueError("no meeting was announced: nothing to wait for")
        if at > self.clock.now():
            self.clock.set(at)

    def next_meeting_time(self, *, cid: str | None = None) -> datetime:
        """When ``schedule_meeting`` puts the next meeting by default: the notice period after the
        moment the command happens - for a consultation-day matter, the first consultation day (10:00
        local time) after that."""
        record = self.get(cid)
        params = self.engine.procedure_of(record).parameters
        at = self.moment() + params.notice_period
        day = params.consultation_day
        if record.form is not Form.CONSULTATION_DAY or day is None:
            return at
        zone = params.zone
        local = at.astimezone(zone)
        year, month = local.year, local.month
        while True:
            candidate = datetime.combine(datetime(year, month, day).date(), time(10, 0), tzinfo=zone)
            if candidate >= at:
                return candidate.astimezone(UTC)
            year, month = year + month // 12, month % 12 + 1

    def schedule_meeting(self, *, cid: str | None = None, by: str | Actor = "wang", **fields: Any) -> Consultation:
        """Announce the next meeting (``ScheduleMeeting``), by default at ``next_meeting_time``; a
        consultation-day matter is chaired by the rota's chair of that month, or else by the
        consultation's chair (``chen`` by default)."""
        cid = self._id(cid)
        data: dict[str, Any] = {"consultation": cid, "agenda": "夜间停车 night parking"}
        data.update(fields)
        if "meeting_at" not in data:
            data["meeting_at"] = self.next_meeting_time(cid=cid)
        record = self.get(cid)
        if "chair" not in data and record.form is Form.CONSULTATION_DAY:
            params = self.engine.procedure_of(record).parameters
            data["chair"] = rota_chair(params, data["meeting_at"], record.proposer) or record.chair or "chen"
        return self.run(ScheduleMeeting(**data), by)

    def needs_meeting(self, *, cid: str | None = None) -> bool:
        """Whether the next round waits for a meeting to be announced: the matter is consulting, no
        round or vote is open, rounds are left, and no meeting announced is still to be held."""
        record = self.get(cid)
        if record.state is not State.CONSULTING or record.pending_meeting is not None:
            return False
        rnd, vote = record.current_round, record.current_vote
        if (rnd is not None and rnd.closed_at is None) or (vote is not None and vote.closed_at is None):
            return False
        return record.rounds_in_cycle < self.engine.procedure_of(record).parameters.round_limit

    def record_minutes(
        self,
        meeting: int | None = None,
        text: str = "会议纪要 minutes",
        *,
        cid: str | None = None,
        by: str | Actor = "wang",
        correction: bool = False,
    ) -> Consultation:
        """The minutes of ``meeting`` (by default the one the last round was held at)."""
        cid = self._id(cid)
        if meeting is None:
            rnd = self.get(cid).current_round
            if rnd is None or rnd.meeting is None:
                raise ValueError("no round was held at a meeting: name the meeting")
            meeting = rnd.meeting
        return self.run(RecordMinutes(consultation=cid, meeting=meeting, text=text, correction=correction), by)

    # ---- 协商 consult ---------------------------------------------------------------------------------
    def open_round(self, *, cid: str | None = None, by: str | Actor = "wang", **fields: Any) -> Consultation:
        """Open a round. Every round is held at a meeting announced with its notice: where none is
        (``needs_meeting``), the committee announces the next one first (``schedule_meeting``) and
        the clock moves to it, so a story with several rounds reads as it always did."""
        if self.needs_meeting(cid=cid):
            self.schedule_meeting(cid=cid)
            self.serve_notice(cid=cid)
        data: dict[str, Any] = {"consultation": self._id(cid), "agenda": "夜间停车 night parking"}
        data.update(fields)
        return self.run(OpenRound(**data), by)

    def opinion(
        self, who: str | Actor, stance: Stance = Stance.SUPPORT, text: str = "", *, cid: str | None = None
    ) -> Consultation:
        return self.run(RecordOpinion(consultation=self._id(cid), stance=stance, text=text), who)

    def close_round(self, *, cid: str | None = None, by: str | Actor = "wang", summary: str = "小结") -> Consultation:
        return self.run(CloseRound(consultation=self._id(cid), summary=summary), by)

    def hold_round(
        self,
        consensus: bool = True,
        *,
        opinions: Iterable[tuple[str | Actor, Stance]] | None = None,
        cid: str | None = None,
        by: str | Actor = "wang",
    ) -> Consultation:
        """A whole round: waits for the meeting if the matter is only notified, opens a round, records
        ``opinions`` (default ``CONSENSUS``, or ``NO_CONSENSUS`` with ``consensus=False``), closes it."""
        cid = self._id(cid)
        if self.get(cid).state is State.NOTIFIED:
            self.serve_notice(cid=cid)
        self.open_round(cid=cid, by=by)
        chosen = opinions if opinions is not None else CONSENSUS if consensus else NO_CONSENSUS
        for who, stance in chosen:
            self.opinion(who, stance, cid=cid)
        return self.close_round(cid=cid, by=by)

    # ---- 决策 decide ----------------------------------------------------------------------------------
    def measure(
        self,
        days: float = 30,
        budget: str = "1000",
        title: str = "划线 mark the bays",
        owner: str = "zhao",
        category: ProjectType | None = None,
    ) -> Measure:
        """A measure due ``days`` after the clock's reading (``category``: its 微 project type)."""
        due = self.clock.now() + timedelta(days=days)
        return Measure(title=title, owner=owner, due=due, budget=Decimal(budget), category=category)

    def decide_command(self, *, cid: str | None = None, **fields: Any) -> Decide:
        """The decision the carrier needs, made at the clock's reading: one ``measure()`` for a
        decision, a hearing record, two parties to an agreement, or advice adopted."""
        cid = self._id(cid)
        data: dict[str, Any] = {"consultation": cid, "resolution": "东侧空地夜间开放 open the east lot at night"}
        carrier = self.engine.get(cid).carrier
        if carrier is Carrier.DECISION:
            data["measures"] = (self.measure(),)
        elif carrier is Carrier.HEARING:
            data["hearing_record"] = "听证笔录 hearing minutes"
        elif carrier is Carrier.COORDINATION:
            data["agreement_parties"] = ("zhao", "li")
        else:
            data["advice_adopted"] = True
        data.update(fields)
        return Decide(**data)

    def decide(self, *, cid: str | None = None, by: str | Actor = "wang", **fields: Any) -> Consultation:
        """Decide with ``decide_command``'s content (``fields`` replace parts of it): the committee
        itself, or - where the parameters give the matter to a body (a major matter: the residents'
        representatives' meeting, by default) - by the body's vote (``vote``), every member for."""
        record = self.get(cid)
        body = self.engine.procedure_of(record).parameters.body_for(record.major)
        if body is not Body.COMMITTEE:
            return self.vote(body, cid=cid, by=by, **fields)
        self.moment()
        return self.run(self.decide_command(cid=cid, **fields), by)

    def members(self, body: Body, *, cid: str | None = None) -> tuple[str, ...]:
        """Who the engine's directory lists as members of ``body`` in the consultation's community now."""
        lister = register_of(self.engine.directory)
        if lister is None:
            raise ValueError("the engine's directory cannot list members; give vote() its ballots")
        return lister.members(self.get(cid).community, self.clock.now(), BODY_MEMBERS[body])

    def call_vote(self, body: Body, *, cid: str | None = None, by: str | Actor = "wang", **fields: Any) -> Consultation:
        """Put ``decide_command``'s content (``fields`` replace parts of it) to ``body``'s vote; the
        engine counts the members in its directory unless ``members=`` is given."""
        self.moment()
        content = self.decide_command(cid=cid, **{k: v for k, v in fields.items() if k not in _VOTE_ONLY})
        extra = {k: v for k, v in fields.items() if k in _VOTE_ONLY}
        return self.run(CallVote(body=body, **content.model_dump(), **extra), by)

    def cast_vote(
        self, who: str | Actor, ballot: Ballot = Ballot.FOR, *, cid: str | None = None, clerk: str | Actor | None = None
    ) -> Consultation:
        """``who``'s ballot: cast themselves, or recorded by ``clerk`` on their behalf (代为记录)."""
        cid = self._id(cid)
        if clerk is None:
            return self.run(CastVote(consultation=cid, ballot=ballot), who)
        voter = who.id if isinstance(who, Actor) else self.actor(who).id
        return self.run(CastVote(consultation=cid, ballot=ballot, on_behalf_of=voter), clerk)

    def close_vote(self, *, cid: str | None = None, by: str | Actor = "wang") -> Consultation:
        return self.run(CloseVote(consultation=self._id(cid)), by)

    def vote(
        self,
        body: Body,
        *,
        cid: str | None = None,
        by: str | Actor = "wang",
        ballots: Iterable[tuple[str | Actor, Ballot]] | None = None,
        **fields: Any,
    ) -> Consultation:
        """A body decides: ``call_vote``, the ballots (default: every member the directory lists,
        for), ``close_vote``. Returns the consultation after the close (decided if it carried)."""
        self.call_vote(body, cid=cid, by=by, **fields)
        chosen = (
            ballots if ballots is not None else [(self._person(p), Ballot.FOR) for p in self.members(body, cid=cid)]
        )
        for who, ballot in chosen:
            self.cast_vote(who, ballot, cid=cid)
        return self.close_vote(cid=cid, by=by)

    # ---- 合法性审查 review ------------------------------------------------------------------------------
    def review(
        self,
        lawful: bool = True,
        *,
        cid: str | None = None,
        by: str | Actor = "sun",
        legal_basis: str = "《民法典》第二百七十八条",
        correction: str = "提交业主大会表决",
        education_note: str = "普法宣讲",
    ) -> Consultation:
        """The legality review: lawful, or unlawful with a legal basis and a correction (依法纠正)."""
        cid = self._id(cid)
        if lawful:
            command = ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL)
        else:
            command = ReviewLegality(
                consultation=cid,
                verdict=Verdict.UNLAWFUL,
                legal_basis=legal_basis,
                correction=correction,
                education_note=education_note,
            )
        return self.run(command, by)

    # ---- 反馈 feedback --------------------------------------------------------------------------------
    def publish(self, *, cid: str | None = None, by: str | Actor = "wang", **fields: Any) -> Consultation:
        data: dict[str, Any] = {"consultation": self._id(cid), "channels": (Channel.NOTICE_BOARD,), "summary": "公示"}
        data.update(fields)
        return self.run(Publish(**data), by)

    def report(
        self,
        measure: int = 0,
        percent: int = 100,
        *,
        cid: str | None = None,
        by: str | Actor = "wang",
        note: str = "",
        spent: Decimal = Decimal(0),
        photos: Sequence[str] = (),
        justification: str = "",
    ) -> Consultation:
        """Progress on one measure: ``measure`` is its index from 0 (people read it as measure 1);
        ``photos``: the SHA-256 hashes of photos of the work (承诺制); ``justification`` says why it
        spends beyond its budget, where the variant allows it (微幸福)."""
        command = ReportProgress(
            consultation=self._id(cid),
            measure=measure,
            percent=percent,
            spent=spent,
            note=note,
            photos=tuple(photos),
            justification=justification,
        )
        return self.run(command, by)

    def delay_pledge(
        self,
        measure: int = 0,
        days: float = 30,
        *,
        cid: str | None = None,
        by: str | Actor = "wang",
        reason: str = "材料延误 materials late",
    ) -> Consultation:
        """承诺制, 延期: move the pledge of ``measure`` (from 0) ``days`` past its date now, with a reason."""
        record = self.get(cid)
        decision = record.current_decision
        pledge = next(
            (
                p
                for p in record.pledges
                if decision is not None and (p.decision, p.measure) == (decision.number, measure)
            ),
            None,
        )
        if pledge is None:
            raise ValueError(f"measure {measure + 1} is not a published pledge: publish the decision first")
        command = DelayPledge(
            consultation=record.id, measure=measure, due=pledge.due + timedelta(days=days), reason=reason
        )
        return self.run(command, by)

    def rate(
        self, satisfaction: int = 5, comment: str = "", *, cid: str | None = None, by: str | Actor = "li"
    ) -> Consultation:
        """A resident's rating of the decision in force (居民评议, 1 to 5)."""
        return self.run(RecordFeedback(consultation=self._id(cid), satisfaction=satisfaction, comment=comment), by)

    def finish_measures(self, *, cid: str | None = None, by: str | Actor = "wang") -> Consultation:
        """Report every measure of the current decision done, one report each."""
        record = self.get(cid)
        decision = record.current_decision
        if decision is None:
            raise ValueError("no decision: nothing to carry out")
        for i in range(len(decision.measures)):
            record = self.report(i, 100, cid=record.id, by=by, note="done")
        return record

    # ---- 监督 supervise -------------------------------------------------------------------------------
    def start_supervision(self, *, cid: str | None = None, by: str | Actor = "wang") -> Consultation:
        return self.run(StartSupervision(consultation=self._id(cid)), by)

    def inspect(
        self, passed: bool = True, *, cid: str | None = None, by: str | Actor = "zhou", findings: str | None = None
    ) -> Consultation:
        if findings is None:
            findings = "" if passed else "消防通道被占用 the fire lane is blocked"
        return self.run(Inspect(consultation=self._id(cid), passed=passed, findings=findings), by)

    def reconsult(
        self,
        *,
        cid: str | None = None,
        by: str | Actor = "zhou",
        problems: str = "新问题 a new problem",
        co_signers: tuple[str, ...] = (),
    ) -> Consultation:
        """再次协商: supervision (or, with ``co_signers``, residents) sends the matter back for a new cycle."""
        command = RequestReconsultation(consultation=self._id(cid), problems=problems, co_signers=co_signers)
        return self.run(command, by)

    def close(self, *, cid: str | None = None, by: str | Actor = "wang", summary: str = "办结") -> Consultation:
        return self.run(Close(consultation=self._id(cid), summary=summary), by)

    # ---- 提请街道督办 escalate --------------------------------------------------------------------------
    def escalate(self, *, cid: str | None = None, by: str | Actor = "wang") -> Consultation:
        return self.run(Escalate(consultation=self._id(cid), reason="久拖不决 stalled"), by)

    def resume(self, *, cid: str | None = None, by: str | Actor = "jie") -> Consultation:
        return self.run(Resume(consultation=self._id(cid), instructions="重新协商 consult again"), by)

    # ---- whole paths --------------------------------------------------------------------------------
    def to(self, state: str, **propose_fields: Any) -> Consultation:
        """A NEW consultation (proposed with ``propose_fields``) taken to ``state``, one of ``STATES``,
        by the usual people; it becomes ``cid``. Returns its record."""
        if state not in STATES:
            raise ValueError(f"unknown target {state!r}; use one of {STATES}")
        if state == "draft":
            return self.draft(**propose_fields)
        rec = self.propose(**propose_fields)
        if state == "proposed":
            return rec
        if state in ("rejected", "appealable", "appealed"):
            rec = self.reject()
            if state == "appealed":
                return self.appeal()
            if state == "rejected" and rec.state is State.APPEALABLE:  # the time to appeal runs out
                return self.lapse_appeal()
            return rec
        if state == "withdrawn":
            return self.withdraw()
        rec = self.notify()
        if state == "notified":
            return rec
        if state == "escalated":
            return self.escalate()
        self.serve_notice()
        rec = self.open_round()
        if state == "consulting":
            return rec
        for who, stance in CONSENSUS:
            self.opinion(who, stance)
        rec = self.close_round()
        if state == "consulting_closed":
            return rec
        rec = self.decide()
        if rec.state is State.DECIDED:
            if state == "decided":
                return rec
            rec = self.review()
        elif state == "decided":  # the parameters exempt the matter from review: in force at once
            raise ValueError(f"{rec.id} takes effect without a legality review; it never waits in 'decided'")
        if state == "feedback":
            return rec
        self.publish()
        rec = self.start_supervision()
        if state == "supervising":
            return rec
        self.finish_measures()
        self.inspect()
        return self.close()
