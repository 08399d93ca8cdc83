"""Real steps for testing stores, made by the real core (``consultflow.apply``), never forged.

``StepMaker`` holds a procedure, a catalogue and a clock of its own; each method turns a command
into the ``Step`` a store is asked to append. It does not touch a store: the caller appends, so a
test says exactly what it writes. ``append`` is the one-liner for the usual case. Its people are
the driver's cast (``COMMITTEE`` is ``wang``, ``PROPOSER`` is ``li``) and its clock follows the
driver's clock policy (``ClockPolicy``), one second a step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..catalogue import DEFAULT_CATEGORIES, Catalogue, Category
from ..clock import SimulatedClock
from ..commands import Command
from ..context import Context
from ..core import apply
from ..procedure import Procedure, six_step
from ..records import Consultation
from ..refusals import Refused
from ..roles import Actor
from ..step import Step
from ..steps import CloseRound, Notify, OpenRound, Propose, RecordOpinion, Reject, Withdraw
from ..storage.base import Store
from ..vocabulary import Carrier, Form, Stance
from .driver import CAST, ClockPolicy, resident

__all__ = [
    "COMMITTEE",
    "COMMUNITIES",
    "PROPOSER",
    "TOPICS",
    "StepMaker",
    "append",
    "conformance_catalogue",
    "conformance_procedure",
]

#: Communities of the kit's catalogue (one of them non-ASCII, as real ones are).
COMMUNITIES: tuple[str, ...] = ("east", "west", "北苑")

#: Topics every kit community may consult on. ``night_parking`` and ``nightxparking`` catch a store
#: that matches topics with SQL ``LIKE`` (where ``_`` is a wildcard); ``public`` and
#: ``public-affairs`` catch a category prefix match that forgets the ``/``.
TOPICS: tuple[str, ...] = (
    "public-affairs/parking",
    "public-affairs/night_parking",
    "public-affairs/nightxparking",
    "public-affairs/电梯",
    "public-benefit/greening",
    "public/Benches",
    "policy/fees",
)

#: Who gives notice, opens and closes rounds and rejects: the cast's committee member.
COMMITTEE = CAST["wang"]
#: Who proposes and withdraws: the cast's proposer.
PROPOSER = CAST["li"]

_START = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def conformance_procedure() -> Procedure:
    """The six-step procedure without a notice period (a round can open right after notice), with
    one round a cycle (closing a round without consensus escalates: a two-entry step) and no appeal
    of a rejection (a rejection is final at once)."""
    return six_step().variant(
        "conformance", "1", parameters={"notice_period": timedelta(0), "round_limit": 1, "appeal_period": None}
    )


def conformance_catalogue() -> Catalogue:
    """The default categories plus ``public``, with ``TOPICS`` listed for every community."""
    categories = (*DEFAULT_CATEGORIES, Category(slug="public", name_en="Public", name_zh="公共"))
    catalogue = Catalogue(categories=categories)
    for community in COMMUNITIES:
        catalogue = catalogue.with_community(community, {t: t for t in TOPICS})
    return catalogue


class StepMaker:
    """Turns commands into steps with ``consultflow.apply``. Thread-safe.

    The maker's clock (``clock``, starting 2026-04-01 09:00 UTC) follows the driver's policy
    (``ClockPolicy``): each step made without ``at`` happens ``pace`` (one second) after the previous one,
    or at the clock's reading if the caller moved the clock since; a step made with ``at`` happens
    then, and the clock moves on to it if it is later. Steps are ordered and reproducible.
    """

    def __init__(self, start: datetime = _START, *, pace: timedelta = timedelta(seconds=1)) -> None:
        if start.tzinfo is None:
            raise ValueError("StepMaker needs an aware start time, e.g. datetime(2026, 4, 1, tzinfo=UTC)")
        self.procedure = conformance_procedure()
        self.catalogue = conformance_catalogue()
        self.clock = SimulatedClock(start)
        self.policy = ClockPolicy(self.clock, pace)

    def now(self) -> datetime:
        """The time for one step made now, without ``at``: each call takes one (the clock moves on)."""
        return self.policy.take()

    def make(self, record: Consultation | None, command: Command, by: Actor, *, at: datetime | None = None) -> Step:
        """The step ``command`` makes on ``record`` (``None`` for a proposal).

        Raises ``AssertionError`` if the procedure refuses: the kit only asks for allowed steps.
        """
        when = self.policy.given(at) if at is not None else self.policy.take()
        ctx = Context(now=when, actor=by, catalogue=self.catalogue)
        result = apply(self.procedure, record, command, ctx)
        if isinstance(result, Refused):
            raise AssertionError(f"the procedure refused a step the conformance kit needs: {result.explain('en')}")
        return result

    def propose(
        self,
        cid: str,
        *,
        community: str = COMMUNITIES[0],
        topic: str = TOPICS[0],
        carrier: Carrier = Carrier.DECISION,
        title: str = "Night parking 夜间停车",
        description: str = "",
        at: datetime | None = None,
    ) -> Step:
        """A new consultation with id ``cid`` (version 1)."""
        command = Propose(
            id=cid,
            community=community,
            topic=topic,
            title=title,
            description=description,
            carrier=carrier,
            form=Form.COUNCIL,
        )
        return self.make(None, command, PROPOSER, at=at)

    def notify(
        self,
        record: Consultation,
        *,
        invite: tuple[str, ...] = ("p1", "p2", "p3"),
        meeting_at: datetime | None = None,
        at: datetime | None = None,
    ) -> Step:
        """Notice of a meeting (at once, unless ``meeting_at``: the kit's procedure has no notice
        period); makes one outbox notice (to the invited, the proposer and the public)."""
        when = at if at is not None else self.now()
        command = Notify(consultation=record.id, meeting_at=when if meeting_at is None else meeting_at, invite=invite)
        return self.make(record, command, COMMITTEE, at=when)

    def open_round(self, record: Consultation, *, at: datetime | None = None) -> Step:
        """Open a round (the record must be notified, or consulting with no open round)."""
        return self.make(record, OpenRound(consultation=record.id, agenda="agenda"), COMMITTEE, at=at)

    def opinion(self, record: Consultation, participant: str, text: str = "", *, at: datetime | None = None) -> Step:
        """``participant`` (a resident) gives an opinion in the open round: one entry, no notice.
        Any number of distinct participants may, which makes it the kit's step for races."""
        command = RecordOpinion(consultation=record.id, stance=Stance.SUPPORT, text=text)
        return self.make(record, command, resident(participant), at=at)

    def close_round(self, record: Consultation, *, at: datetime | None = None) -> Step:
        """Close the open round. Without consensus this escalates the matter: one step with two
        entries (round closed, escalated) and a notice."""
        return self.make(record, CloseRound(consultation=record.id, summary="closed"), COMMITTEE, at=at)

    def reject(self, record: Consultation, *, at: datetime | None = None) -> Step:
        """The committee rejects a proposal: ends it, with a notice to the proposer."""
        return self.make(record, Reject(consultation=record.id, reason="not in scope"), COMMITTEE, at=at)

    def withdraw(self, record: Consultation, *, at: datetime | None = None) -> Step:
        """The proposer withdraws the matter (before a decision)."""
        return self.make(record, Withdraw(consultation=record.id, reason="solved otherwise"), PROPOSER, at=at)

    def consulting(
        self, store: Store, cid: str, *, community: str = COMMUNITIES[0], topic: str = TOPICS[0]
    ) -> list[Step]:
        """Propose, notify and open a round on ``store``: ``cid`` ends consulting, at version 3."""
        steps = [self.propose(cid, community=community, topic=topic)]
        append(store, steps[-1])
        steps.append(self.notify(steps[-1].record))
        append(store, steps[-1])
        steps.append(self.open_round(steps[-1].record))
        append(store, steps[-1])
        return steps


def append(store: Store, step: Step) -> Step:
    """Append ``step`` at the version it was made from; return it."""
    store.append(step, step.expected_version)
    return step
