"""The store conformance suite: subclass ``StoreContract`` and give it a ``store`` fixture.

    from consultflow.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path / "data")
            yield s
            s.close()

Every test builds its steps with the real core (``StepMaker`` calls ``consultflow.apply``); only the
negative cases forge a step. A failing test names the part of the contract the store broke.

Optional, for stores that several handles or processes share:

- override ``open_store`` to return a callable that opens *another* handle on the same data (a
  ``functools.partial(MyStore, path)``); the kit then races handles against each other and checks
  that one sees what another wrote;
- set ``supports_processes = True`` when that callable can be pickled and used in another process
  (a fresh one from a fork server, or spawned; never a fork of the test process): the kit then
  races processes too.

The class is not named ``Test*``, so pytest collects only your subclass.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest

from ..context import Context
from ..core import apply
from ..demo import demo_engine, demo_procedure, run_story
from ..errors import Conflict, ConsultflowError, IntegrityError, InvalidInput, NotFound, StoreUnavailable
from ..funds import FundPosition, ledger_rows, position_of
from ..log import LogEntry, entry_hash, verify
from ..notices import Notice
from ..records import Consultation
from ..replay import check_loaded, verify_consultation
from ..roles import Actor, Role
from ..step import Step
from ..storage.base import Query, Store
from ..storage.ledger import FundLedger
from ..storage.memory import MemoryStore
from ..vocabulary import Carrier, Event, State
from . import _workers
from ._workers import run_threads
from .driver import COMMUNITY, Driver
from .steps import COMMUNITIES, StepMaker, append

__all__ = ["StoreContract", "StoreOpener"]

#: Opens another handle on the store under test; must be picklable when processes are raced.
StoreOpener = Callable[[], Store]

_LEASE = timedelta(minutes=5)
_FAR = datetime(2100, 1, 1, tzinfo=UTC)
_SHANGHAI = timezone(timedelta(hours=8))
_NEW_YORK = timezone(timedelta(hours=-5))
_TIMEOUT = 60.0


def _drain(store: Store, now: datetime = _FAR) -> dict[str, Notice]:
    """Every notice that is pending or leased (leasing them all at ``now``), by key."""
    found: dict[str, Notice] = {}
    while True:
        batch = store.lease(100, now, timedelta(days=1))
        if not batch:
            return found
        for n in batch:
            assert n.key not in found, f"lease() handed out notice {n.key!r} again while its lease held"
            found[n.key] = n


def _same_notice(got: Notice, sent: Notice) -> bool:
    """Equal but for the fields the outbox changes (status, attempts, not_before, last_error)."""
    keep = {"status", "attempts", "not_before", "last_error"}
    return got.model_dump(exclude=keep) == sent.model_dump(exclude=keep)


def _snapshot(store: Store, cid: str) -> tuple[Consultation, tuple[LogEntry, ...]]:
    return store.load(cid), tuple(store.entries(cid))


class StoreContract:
    """The contract every ``consultflow.Store`` keeps. Subclass it in a ``Test*`` class and override
    the ``store`` fixture (and, optionally, ``open_store`` and ``supports_processes``)."""

    #: Set to True when ``open_store`` works from other (spawned) processes on the same data.
    supports_processes: ClassVar[bool] = False
    #: How many threads (and processes) race, and for how many versions.
    race_workers: ClassVar[int] = 4
    race_rounds: ClassVar[int] = 8

    # ---- fixtures an adapter author overrides -------------------------------------------------
    @pytest.fixture
    def store(self) -> Store:
        """An empty store. Override this fixture in your subclass."""
        pytest.fail(
            f"{type(self).__name__} must override the 'store' fixture: "
            "@pytest.fixture def store(self, tmp_path): s = MyStore(...); yield s; s.close()",
            pytrace=False,
        )

    @pytest.fixture
    def open_store(self) -> StoreOpener | None:
        """Override to return a callable opening another handle on the data of ``store``."""
        return None

    @pytest.fixture
    def maker(self) -> StepMaker:
        return StepMaker()

    def _opener(self, open_store: StoreOpener | None, *, processes: bool = False) -> StoreOpener:
        if processes and not self.supports_processes:
            pytest.skip("the store does not declare supports_processes = True")
        if open_store is None:
            if processes:
                pytest.fail("supports_processes = True needs an 'open_store' fixture returning a picklable opener")
            pytest.skip("no 'open_store' fixture: the store has a single handle")
        return open_store

    # ---- round trips --------------------------------------------------------------------------
    def test_load_returns_the_record_appended(self, store: Store, maker: StepMaker) -> None:
        step = append(store, maker.propose("rt-1", description="东侧空地 east lot"))
        loaded = store.load("rt-1")
        assert loaded == step.record, "load() must return a record equal to the one appended"
        assert isinstance(loaded, Consultation)
        assert tuple(store.entries("rt-1")) == step.entries, "entries() must return the entries appended"

    def test_a_whole_story_round_trips(self, store: Store) -> None:
        reference, clock = demo_engine(MemoryStore())
        cid = run_story(reference, clock)
        engine, clock = demo_engine(store)
        assert run_story(engine, clock) == cid
        want = reference.get(cid)
        got = store.load(cid)
        assert got == want, "a record with rounds, decisions, money and Chinese text must load unchanged"
        entries = tuple(store.entries(cid))
        assert entries == reference.history(cid), "the story's log must load unchanged"
        check = verify(entries, head=got.head, version=got.version)
        assert check.ok, f"the stored chain must verify: {check.reason} at seq {check.seq}"
        assert list(store.find(Query(community=want.community))) == [want]

    # ---- integrity: the record is what its log says (docs/integrity.md) ----------------------------
    def test_a_stored_story_replays_to_the_stored_record(self, store: Store) -> None:
        engine, clock = demo_engine(store)
        cid = run_story(engine, clock)
        record, entries = store.load(cid), tuple(store.entries(cid))
        assert check_loaded(record, entries[-1:]) is None, (
            "a loaded record must carry the digest its last entry binds: the store must give back the "
            "record it was given (every field, every time to the microsecond, every decimal as written)"
        )
        check = verify_consultation(record, entries, {demo_procedure().key: demo_procedure()})
        assert check.ok, f"the stored log must replay to the stored record: {check.reason}"
        for entry in entries:
            assert entry_hash(entry.body()) == entry.hash, f"entry {entry.seq} must hash to its own hash"

    def test_times_in_any_zone_load_as_the_same_instant_and_digest(self, store: Store, maker: StepMaker) -> None:
        odd = timezone(timedelta(hours=5, minutes=30, seconds=15))  # an offset with seconds (old LMT zones)
        first = append(store, maker.propose("tz-1", at=datetime(2026, 4, 2, 9, 0, 0, 250_001, tzinfo=odd)))
        step = append(store, maker.notify(first.record, at=datetime(2026, 4, 3, 9, 0, tzinfo=_SHANGHAI)))
        loaded = store.load("tz-1")
        assert loaded == step.record
        assert check_loaded(loaded, tuple(store.entries("tz-1", after=1))) is None, (
            "the loaded record's digest must be the one its last entry binds, whatever zone its times came in"
        )

    def test_long_and_unicode_text_round_trips(self, store: Store, maker: StepMaker) -> None:
        text = ("小区东门夜间停车 \"quotes\" 'single' \\ back\\slash \n newline \t tab ✓ 🚗 " * 150)[:10_000]
        step = append(store, maker.propose("rt-long", title="标题 " + "é" * 150, description=text))
        assert store.load("rt-long") == step.record

    def test_outbox_notices_round_trip(self, store: Store, maker: StepMaker) -> None:
        first = append(store, maker.propose("rt-n"))
        step = append(store, maker.notify(first.record))
        (sent,) = step.notices
        leased = store.lease(10, _FAR)
        assert [n.key for n in leased] == [sent.key]
        assert _same_notice(leased[0], sent), f"the leased notice differs from the one appended: {leased[0]!r}"

    # ---- atomicity of a step -------------------------------------------------------------------
    def test_a_step_writes_record_entries_and_notices_together(self, store: Store, maker: StepMaker) -> None:
        steps = maker.consulting(store, "at-1")
        assert store.load("at-1") == steps[-1].record
        assert tuple(store.entries("at-1")) == tuple(e for s in steps for e in s.entries)
        assert set(_drain(store)) == {n.key for s in steps for n in s.notices}

    def test_a_step_of_several_entries_is_written_whole(self, store: Store, maker: StepMaker) -> None:
        steps = maker.consulting(store, "at-2")
        step = maker.close_round(steps[-1].record)
        assert len(step.entries) == 2, "the kit expected closing the last round to escalate"
        append(store, step)
        record = store.load("at-2")
        assert record == step.record
        assert record.state is State.ESCALATED
        entries = store.entries("at-2")
        assert tuple(entries[-2:]) == step.entries
        assert verify(entries, head=record.head, version=record.version).ok
        assert {n.key for n in step.notices} <= set(_drain(store))

    def test_steps_that_do_not_continue_the_log_write_nothing(self, store: Store, maker: StepMaker) -> None:
        first = append(store, maker.propose("at-3"))
        second = append(store, maker.notify(first.record))
        before = _snapshot(store, "at-3")
        notices_before = {n.key for n in second.notices}
        nxt = maker.open_round(second.record)
        forged: dict[str, Step] = {
            "a step without entries": Step(nxt.record, (), nxt.notices),
            "a record whose head is not its last entry's hash": Step(
                nxt.record.model_copy(update={"head": "0" * 64}), nxt.entries, nxt.notices
            ),
            "a record whose version is not its last entry's seq": Step(
                nxt.record.model_copy(update={"version": 7}), nxt.entries, nxt.notices
            ),
            "an entry linked to another head": Step(
                nxt.record, (nxt.entries[0].model_copy(update={"prev": "f" * 64}),), nxt.notices
            ),
        }
        for what, step in forged.items():
            with pytest.raises(IntegrityError):
                store.append(step, 2)
            assert _snapshot(store, "at-3") == before, f"{what} was refused but something was written"
        # A real step made from version 1, offered as continuing version 2: the versions agree, the log does not.
        with pytest.raises(IntegrityError):
            store.append(maker.reject(first.record), 2)
        assert _snapshot(store, "at-3") == before
        assert set(_drain(store)) == notices_before, "a refused step must not leave notices in the outbox"

    def test_a_new_consultation_must_start_the_chain(self, store: Store, maker: StepMaker) -> None:
        step = maker.propose("at-4")
        forged = Step(step.record, (step.entries[0].model_copy(update={"seq": 2}),), ())
        with pytest.raises(IntegrityError):
            store.append(forged, 0)
        with pytest.raises(NotFound):
            store.load("at-4")

    def test_a_duplicate_notice_key_writes_nothing(self, store: Store, maker: StepMaker) -> None:
        a = append(store, maker.notify(append(store, maker.propose("at-5")).record))
        b1 = append(store, maker.propose("at-6"))
        b2 = maker.notify(b1.record)
        clash = Step(b2.record, b2.entries, (b2.notices[0].model_copy(update={"key": a.notices[0].key}),))
        with pytest.raises(IntegrityError):
            store.append(clash, 1)
        assert store.load("at-6") == b1.record, "a step whose notice key exists was refused but its record written"
        assert len(store.entries("at-6")) == 1
        outbox = _drain(store)
        assert set(outbox) == {a.notices[0].key}
        assert _same_notice(outbox[a.notices[0].key], a.notices[0]), "the existing notice must stay as it was"

    # ---- conflicts -----------------------------------------------------------------------------
    def test_a_stale_version_conflicts_and_writes_nothing(self, store: Store, maker: StepMaker) -> None:
        steps = maker.consulting(store, "cf-1")
        base = steps[-1].record
        mine, theirs = maker.opinion(base, "p-mine"), maker.opinion(base, "p-theirs")
        append(store, theirs)
        with pytest.raises(Conflict) as caught:
            store.append(mine, base.version)
        assert isinstance(caught.value, ConsultflowError)
        assert (caught.value.consultation, caught.value.expected, caught.value.actual) == ("cf-1", 3, 4)
        assert store.load("cf-1") == theirs.record
        assert tuple(store.entries("cf-1"))[-1] == theirs.entries[0]
        assert len(store.entries("cf-1")) == 4

    def test_the_loser_notices_are_not_written(self, store: Store, maker: StepMaker) -> None:
        first = append(store, maker.propose("cf-2"))
        winner = append(store, maker.notify(first.record, invite=("p1",)))
        loser = maker.reject(first.record)
        with pytest.raises(Conflict):
            store.append(loser, 1)
        assert set(_drain(store)) == {n.key for n in winner.notices}

    def test_creating_an_existing_id_conflicts(self, store: Store, maker: StepMaker) -> None:
        first = append(store, maker.propose("cf-3"))
        again = maker.propose("cf-3", title="Another matter", community=COMMUNITIES[1])
        with pytest.raises(Conflict) as caught:
            store.append(again, 0)
        assert caught.value.expected == 0
        assert caught.value.actual == 1, "Conflict.actual must be the stored version"
        assert store.load("cf-3") == first.record
        assert len(store.entries("cf-3")) == 1

    def test_an_expected_version_ahead_of_the_store_conflicts(self, store: Store, maker: StepMaker) -> None:
        first = append(store, maker.propose("cf-4"))
        nxt = maker.notify(first.record)
        with pytest.raises(Conflict):
            store.append(nxt, 5)
        with pytest.raises(Conflict) as caught:
            store.append(maker.notify(maker.propose("cf-missing").record), 1)
        assert caught.value.actual is None, "for a consultation that does not exist, Conflict.actual is None"
        assert store.load("cf-4") == first.record
        with pytest.raises(NotFound):
            store.load("cf-missing")

    # ---- ordering ------------------------------------------------------------------------------
    def test_entries_come_in_seq_order_and_after_skips(self, store: Store, maker: StepMaker) -> None:
        steps = maker.consulting(store, "or-1")
        for i in range(6):
            steps.append(append(store, maker.opinion(steps[-1].record, f"p{i}")))
        want = tuple(e for s in steps for e in s.entries)
        got = tuple(store.entries("or-1"))
        assert [e.seq for e in got] == list(range(1, len(want) + 1))
        assert got == want
        for after in range(-1, len(want) + 3):
            assert tuple(store.entries("or-1", after=after)) == want[max(after, 0) :], f"entries(after={after})"

    def test_logs_of_interleaved_consultations_stay_apart(self, store: Store, maker: StepMaker) -> None:
        a = maker.consulting(store, "or-a")
        b = maker.consulting(store, "or-b")
        for i in range(4):
            a.append(append(store, maker.opinion(a[-1].record, f"pa{i}")))
            b.append(append(store, maker.opinion(b[-1].record, f"pb{i}")))
        for cid, steps in (("or-a", a), ("or-b", b)):
            entries = store.entries(cid)
            assert tuple(entries) == tuple(e for s in steps for e in s.entries)
            assert {e.consultation for e in entries} == {cid}
            assert verify(entries, head=steps[-1].record.head, version=steps[-1].record.version).ok

    # ---- queries -------------------------------------------------------------------------------
    def _population(self, store: Store, maker: StepMaker) -> list[Consultation]:
        """Consultations in five states, three communities, all carriers, topics that trip LIKE and
        prefix bugs, times in three zones (local clock order differs from instant order), equal
        times broken by ids whose code-point order differs from a locale's ("Zeta" < "alpha")."""
        t0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)

        def when(hours: float, zone: timezone = UTC) -> datetime:
            return (t0 + timedelta(hours=hours)).astimezone(zone)

        D, H, A, C = Carrier.DECISION, Carrier.HEARING, Carrier.ADVISORY, Carrier.COORDINATION
        sh, ny = _SHANGHAI, _NEW_YORK
        specs: list[tuple[str, str, str, Carrier, datetime, str]] = [
            ("q-01", "east", "public-affairs/parking", D, when(1), "proposed"),
            ("q-02", "east", "public-affairs/night_parking", H, when(2, sh), "notified"),
            ("q-03", "west", "public-affairs/nightxparking", A, when(0.5, ny), "consulting"),
            ("Zeta", "west", "public/Benches", C, when(3), "rejected"),
            ("alpha", "west", "public/Benches", D, when(3, sh), "proposed"),
            ("北苑-1", "北苑", "public-affairs/电梯", D, when(3), "withdrawn"),
            ("q-07", "北苑", "public-benefit/greening", D, when(26), "escalated"),
            ("q-08", "east", "policy/fees", H, when(5, ny), "consulting"),
            ("q-09", "west", "public-affairs/parking", C, when(50), "notified"),
            ("q-10", "east", "public-benefit/greening", D, when(4), "proposed"),
            ("q-11", "北苑", "public/Benches", H, when(4, sh), "rejected"),
            ("q-12", "west", "policy/fees", D, when(72), "proposed"),
        ]
        records: list[Consultation] = []
        for cid, community, topic, carrier, at, fate in specs:
            step = append(store, maker.propose(cid, community=community, topic=topic, carrier=carrier, at=at))
            if fate == "rejected":
                step = append(store, maker.reject(step.record))
            elif fate == "withdrawn":
                step = append(store, maker.withdraw(step.record))
            elif fate in {"notified", "consulting", "escalated"}:
                step = append(store, maker.notify(step.record))
                if fate != "notified":
                    step = append(store, maker.open_round(step.record))
                if fate == "escalated":
                    step = append(store, maker.close_round(step.record))
            records.append(step.record)
        fates = {"proposed", "notified", "consulting", "rejected", "withdrawn", "escalated"}
        assert {r.state.value for r in records} == fates, "the kit's population did not reach every state"
        return records

    @staticmethod
    def _reference(records: Sequence[Consultation], query: Query) -> list[Consultation]:
        found = sorted((r for r in records if query.matches(r)), key=lambda r: (r.proposed_at, r.id))
        return found if query.limit is None else found[: query.limit]

    def _check_find(self, store: Store, records: Sequence[Consultation], query: Query) -> None:
        got = list(store.find(query))
        want = self._reference(records, query)
        assert [r.id for r in got] == [r.id for r in want], f"find({query!r}) (ids in order; want per Query.matches)"
        assert got == want, f"find({query!r}) returned records that differ from those appended"

    def test_find_follows_query_matches(self, store: Store, maker: StepMaker) -> None:
        records = self._population(store, maker)
        dues = sorted({r.next_due for r in records if r.next_due is not None})
        tiny = timedelta(microseconds=1)
        values: dict[str, list[Any]] = {
            "community": [None, "east", "west", "北苑", "nowhere"],
            "states": [
                None,
                {State.PROPOSED},
                {State.NOTIFIED, State.CONSULTING},
                {State.REJECTED, State.WITHDRAWN, State.CLOSED},
                {"escalated"},
                set(),
            ],
            "topic": [
                None,
                "public-affairs/parking",
                "public-affairs/night_parking",
                "public-affairs/电梯",
                "public/",
                "public-affairs/",
                "publ_c/",
                "public%/",
                "Public-affairs/",
                "policy/",
                "public-affairs",
                "public/benches",
            ],
            "carrier": [None, *Carrier],
            "due_before": [
                None,
                dues[0] - tiny,
                *dues,
                *(d - tiny for d in dues),
                *(d.astimezone(_SHANGHAI) for d in dues),
                _FAR,
            ],
            "limit": [None, 0, 1, 3, 100],
        }
        queries = [Query()]
        for field, options in values.items():
            queries.extend(Query(**{field: v}) for v in options if v is not None)
        rng = random.Random(20260311)
        for _ in range(300):
            queries.append(Query(**{field: rng.choice(options) for field, options in values.items()}))
        for query in queries:
            self._check_find(store, records, query)

    def test_find_orders_by_instant_then_id(self, store: Store, maker: StepMaker) -> None:
        records = self._population(store, maker)
        got = [r.id for r in store.find(Query())]
        assert got == [r.id for r in self._reference(records, Query())]
        assert got.index("q-03") < got.index("q-01") < got.index("q-02"), "order by instant, not by local clock text"
        assert got.index("Zeta") < got.index("alpha") < got.index("北苑-1"), "equal times: order by id, code points"

    def test_find_sees_the_latest_version(self, store: Store, maker: StepMaker) -> None:
        first = append(store, maker.propose("fv-1"))
        assert [r.id for r in store.find(Query(states={State.PROPOSED}))] == ["fv-1"]
        second = append(store, maker.notify(first.record))
        assert list(store.find(Query(states={State.PROPOSED}))) == []
        assert list(store.find(Query(states={State.NOTIFIED}))) == [second.record]
        assert list(store.find(Query(due_before=first.record.next_due))) == []
        assert list(store.find(Query(due_before=second.record.next_due))) == [second.record]

    def test_find_on_an_empty_store(self, store: Store) -> None:
        assert list(store.find(Query())) == []
        assert list(store.find(Query(community="east", states=set(), topic="public/", limit=5))) == []

    # ---- outbox --------------------------------------------------------------------------------
    def _notices(self, store: Store, maker: StepMaker, count: int, prefix: str = "ob") -> list[Notice]:
        """``count`` notices, in the order written (one notify step each)."""
        sent: list[Notice] = []
        for i in range(count):
            step = append(store, maker.notify(append(store, maker.propose(f"{prefix}-{i:03d}")).record))
            sent.extend(step.notices)
        assert len(sent) == count
        return sent

    def test_lease_marks_leased_and_counts_attempts(self, store: Store, maker: StepMaker) -> None:
        sent = self._notices(store, maker, 2)
        now = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
        leased = store.lease(10, now, _LEASE)
        assert [n.key for n in leased] == [n.key for n in sent], "lease() hands out the oldest notices first"
        for n in leased:
            assert n.status == "leased"
            assert n.attempts == 1
            assert n.not_before == now + _LEASE, "a leased notice is held until now + lease_for"
        assert list(store.lease(10, now + _LEASE / 2, _LEASE)) == [], "a notice under lease must not be handed out"

    def test_lease_respects_the_limit_and_the_order(self, store: Store, maker: StepMaker) -> None:
        sent = self._notices(store, maker, 7)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        assert list(store.lease(0, now)) == []
        got: list[str] = []
        for size in (3, 3, 3):
            batch = store.lease(size, now)
            assert len(batch) <= size, f"lease({size}) returned {len(batch)} notices"
            got.extend(n.key for n in batch)
        assert got == [n.key for n in sent]

    def test_an_expired_lease_is_leased_again(self, store: Store, maker: StepMaker) -> None:
        (sent,) = self._notices(store, maker, 1)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        store.lease(1, now, _LEASE)
        assert list(store.lease(1, now + _LEASE - timedelta(microseconds=1), _LEASE)) == []
        again = store.lease(1, now + _LEASE, _LEASE)
        assert [(n.key, n.attempts, n.status) for n in again] == [(sent.key, 2, "leased")], "expired at not_before"
        assert again[0].not_before == now + 2 * _LEASE

    def test_settle_delivered_and_dead_are_final(self, store: Store, maker: StepMaker) -> None:
        a, b, c = self._notices(store, maker, 3)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        store.lease(3, now)
        store.settle(a.key, "delivered", now=now)
        store.settle(b.key, "dead", now=now, error="no such recipient")
        assert set(_drain(store)) == {c.key}, "delivered and dead notices are never leased again"

    def test_a_stale_lease_cannot_undo_a_final_settle(self, store: Store, maker: StepMaker) -> None:
        a, b = self._notices(store, maker, 2)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        first = {n.key: n for n in store.lease(2, now, timedelta(minutes=1))}
        taken = {n.key: n for n in store.lease(2, now + timedelta(minutes=2))}  # the first leases expired
        assert set(first) == set(taken) == {a.key, b.key}
        store.settle(a.key, "delivered", now=now + timedelta(minutes=3))
        store.settle(b.key, "dead", now=now + timedelta(minutes=3), error="no such recipient")
        for key, outcome in ((a.key, "retry"), (a.key, "dead"), (b.key, "delivered"), (b.key, "retry")):
            with pytest.raises(IntegrityError):
                store.settle(key, outcome, now=now + timedelta(minutes=4), error="late")  # type: ignore[arg-type]
        store.settle(a.key, "delivered", now=now + timedelta(minutes=5))  # the same outcome again is harmless
        store.settle(b.key, "dead", now=now + timedelta(minutes=5), error="again")
        assert _drain(store) == {}, "a delivered or dead notice is never leased again"

    def test_a_settle_carrying_its_attempt_is_refused_once_the_notice_was_leased_again(
        self, store: Store, maker: StepMaker
    ) -> None:
        (a,) = self._notices(store, maker, 1)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        (first,) = store.lease(1, now, timedelta(minutes=1))
        (second,) = store.lease(1, now + timedelta(minutes=2))  # the first lease expired
        assert (first.key, first.attempts, second.attempts) == (a.key, 1, 2)
        with pytest.raises(IntegrityError):
            store.settle(a.key, "retry", now=now + timedelta(minutes=3), error="late", attempt=first.attempts)
        store.settle(a.key, "delivered", now=now + timedelta(minutes=3), attempt=second.attempts)
        assert _drain(store) == {}, "the current lease holder's settle counts; the stale one changed nothing"

    def test_settle_retry_waits_for_retry_at(self, store: Store, maker: StepMaker) -> None:
        a, b = self._notices(store, maker, 2)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        store.lease(2, now)
        store.settle(a.key, "retry", now=now, retry_at=now + timedelta(minutes=10), error="SMTP 451")
        store.settle(b.key, "retry", now=now, error="timeout")
        early = store.lease(10, now + timedelta(seconds=1))
        assert [n.key for n in early] == [b.key], "a retry without retry_at is ready at once; with it, not before"
        assert early[0].last_error == "timeout"
        store.settle(b.key, "delivered", now=now + timedelta(seconds=1))
        assert list(store.lease(10, now + timedelta(minutes=9))) == []
        later = store.lease(10, now + timedelta(minutes=10))
        assert [(n.key, n.attempts, n.last_error) for n in later] == [(a.key, 2, "SMTP 451")]
        store.settle(a.key, "delivered", now=now + timedelta(minutes=10))
        assert a.key not in _drain(store)

    def test_release_gives_the_attempt_back_and_keeps_the_last_error(self, store: Store, maker: StepMaker) -> None:
        a, b = self._notices(store, maker, 2)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        store.lease(2, now, _LEASE)
        store.settle(a.key, "retry", now=now, error="HTTP 503")
        (again,) = store.lease(1, now, _LEASE)
        assert (again.key, again.attempts) == (a.key, 2)
        store.settle(a.key, "release", now=now, attempt=2)  # a dispatcher stopping before it tried a
        store.settle(b.key, "release", now=now)
        ready = {n.key: n for n in store.lease(10, now, _LEASE)}
        assert set(ready) == {a.key, b.key}, "a released notice is ready again at once, before its lease ends"
        assert (ready[a.key].attempts, ready[a.key].last_error) == (2, "HTTP 503"), (
            "a release takes back the attempt its lease counted (a notice never tried must not die of it) "
            "and keeps the last real error"
        )
        assert ready[b.key].attempts == 1

    def test_a_released_lease_counts_as_never_made(self, store: Store, maker: StepMaker) -> None:
        (a,) = self._notices(store, maker, 1)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        (first,) = store.lease(1, now, timedelta(minutes=1))  # worker A, whose lease runs out
        (second,) = store.lease(1, now + timedelta(minutes=2), _LEASE)  # worker B takes it over...
        store.settle(a.key, "release", now=now + timedelta(minutes=2), attempt=second.attempts)  # ...untried
        store.settle(a.key, "delivered", now=now + timedelta(minutes=3), attempt=first.attempts)
        assert _drain(store) == {}, (
            "A really tried the notice and no attempt was made since (B's was taken back): A's settle applies"
        )

    def test_only_the_current_lease_can_release(self, store: Store, maker: StepMaker) -> None:
        a, b, c = self._notices(store, maker, 3)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        with pytest.raises(IntegrityError):
            store.settle(a.key, "release", now=now)  # pending: nothing was leased, nothing to give back
        store.lease(3, now, timedelta(minutes=1))
        store.settle(a.key, "delivered", now=now)
        with pytest.raises(IntegrityError):
            store.settle(a.key, "release", now=now)  # delivered stays delivered
        store.settle(b.key, "retry", now=now, error="timeout")
        with pytest.raises(IntegrityError):
            store.settle(b.key, "release", now=now, attempt=1)  # settled already: not leased any more
        taken = store.lease(2, now + timedelta(minutes=2), _LEASE)  # b's retry is due, c's lease expired
        assert {(n.key, n.attempts) for n in taken} == {(b.key, 2), (c.key, 2)}
        with pytest.raises(IntegrityError):
            store.settle(c.key, "release", now=now + timedelta(minutes=2), attempt=1)  # from the stale lease
        left = _drain(store)
        assert a.key not in left
        assert (left[b.key].attempts, left[c.key].attempts) == (3, 3), "a refused release changed nothing"

    def test_settle_rejects_what_it_cannot_record(self, store: Store, maker: StepMaker) -> None:
        (a,) = self._notices(store, maker, 1)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        with pytest.raises(NotFound):
            store.settle("no-such-key:1", "delivered", now=now)
        with pytest.raises(InvalidInput):
            store.settle(a.key, "delivred", now=now)  # type: ignore[arg-type]
        assert set(_drain(store)) == {a.key}, "a refused settle must change nothing"

    def test_concurrent_leases_hand_out_each_notice_once(self, store: Store, maker: StepMaker) -> None:
        sent = self._notices(store, maker, 24)
        now = datetime(2026, 5, 1, tzinfo=UTC)
        taken: list[list[str]] = [[] for _ in range(self.race_workers)]
        barrier = threading.Barrier(self.race_workers, timeout=_TIMEOUT)

        def worker(i: int) -> None:
            barrier.wait()
            while batch := store.lease(2, now, _LEASE):
                taken[i].extend(n.key for n in batch)

        run_threads(self.race_workers, worker, barrier)
        every = [k for keys in taken for k in keys]
        assert len(every) == len(set(every)), "a notice was leased twice while its lease held"
        assert set(every) == {n.key for n in sent}

    # ---- concurrency ---------------------------------------------------------------------------
    def _race(self, stores: Sequence[Store], maker: StepMaker, cid: str) -> None:
        """Each worker (one per store handle) loads, makes an opinion, waits for the others, appends:
        for each version exactly one must win and the others get ``Conflict``."""
        steps = maker.consulting(stores[0], cid)
        workers, rounds = len(stores), self.race_rounds
        outcomes: list[list[tuple[int, str, Step]]] = [[] for _ in range(rounds)]
        lock = threading.Lock()
        barrier = threading.Barrier(workers, timeout=_TIMEOUT)

        def worker(i: int) -> None:
            store = stores[i]
            for r in range(rounds):
                barrier.wait()
                record = store.load(cid)
                step = maker.opinion(record, f"w{i}-r{r}")
                barrier.wait()
                try:
                    store.append(step, record.version)
                    outcome = "won"
                except Conflict:
                    outcome = "lost"
                with lock:
                    outcomes[r].append((record.version, outcome, step))

        run_threads(workers, worker, barrier)
        self._judge_race(stores[0], cid, len(steps), [[(v, o, s.entries[0]) for v, o, s in row] for row in outcomes])

    @staticmethod
    def _judge_race(store: Store, cid: str, base: int, rounds: Sequence[Sequence[tuple[int, str, LogEntry]]]) -> None:
        record = store.load(cid)
        entries = tuple(store.entries(cid))
        for r, row in enumerate(rounds):
            versions = {v for v, _, _ in row}
            assert versions == {base + r}, f"round {r}: workers loaded versions {versions}, expected {base + r}"
            winners = [e for _, o, e in row if o == "won"]
            assert len(winners) == 1, f"version {base + r}: {len(winners)} writers won; exactly one must"
            assert entries[base + r] == winners[0], f"seq {base + r + 1} is not the winner's entry"
        assert len(entries) == base + len(rounds), "an entry was lost or duplicated"
        check = verify(entries, head=record.head, version=record.version)
        assert check.ok, f"the chain does not verify after the race: {check.reason} at seq {check.seq}"

    def test_threads_race_one_winner_per_version(self, store: Store, maker: StepMaker) -> None:
        self._race([store] * self.race_workers, maker, "race-t")

    def test_handles_race_one_winner_per_version(
        self, store: Store, open_store: StoreOpener | None, maker: StepMaker
    ) -> None:
        opener = self._opener(open_store)
        handles = [store, *(opener() for _ in range(self.race_workers - 1))]
        try:
            self._race(handles, maker, "race-h")
        finally:
            for h in handles[1:]:
                h.close()

    def test_threads_appending_freely_lose_nothing(self, store: Store, maker: StepMaker) -> None:
        maker.consulting(store, "race-f")
        per_worker = 6
        conflicts = [0] * self.race_workers

        def worker(i: int) -> None:
            done = 0
            while done < per_worker:
                record = store.load("race-f")
                try:
                    store.append(maker.opinion(record, f"f{i}-{done}"), record.version)
                    done += 1
                except Conflict:
                    conflicts[i] += 1

        run_threads(self.race_workers, worker)
        record = store.load("race-f")
        entries = store.entries("race-f")
        assert len(entries) == 3 + per_worker * self.race_workers, "a step was lost or duplicated"
        participants = [e.actor for e in entries[3:]]
        assert sorted(participants) == sorted(f"f{i}-{n}" for i in range(self.race_workers) for n in range(per_worker))
        assert verify(entries, head=record.head, version=record.version).ok

    def test_readers_never_see_a_record_ahead_of_its_log(self, store: Store, maker: StepMaker) -> None:
        steps = maker.consulting(store, "rd-1")
        done = threading.Event()
        seen: list[int] = []

        def worker(i: int) -> None:
            if i == 0:
                try:
                    record = steps[-1].record
                    for n in range(25):
                        record = append(store, maker.opinion(record, f"r{n}")).record
                finally:
                    done.set()
                return
            while not done.is_set():
                record = store.load("rd-1")
                entries = store.entries("rd-1")
                assert len(entries) >= record.version, (
                    f"a reader saw version {record.version} but only {len(entries)} entries: a step is not atomic"
                )
                check = verify(entries[: record.version], head=record.head, version=record.version)
                assert check.ok, f"record and log disagree mid-write: {check.reason}"
                seen.append(record.version)

        run_threads(3, worker)
        assert store.load("rd-1").version == 28

    def test_another_handle_sees_committed_steps(
        self, store: Store, open_store: StoreOpener | None, maker: StepMaker
    ) -> None:
        opener = self._opener(open_store)
        steps = maker.consulting(store, "hd-1")
        other = opener()
        try:
            assert other.load("hd-1") == steps[-1].record
            step = append(other, maker.opinion(steps[-1].record, "from-the-other-handle"))
            assert store.load("hd-1") == step.record
            assert store.entries("hd-1", after=3) == other.entries("hd-1", after=3)
        finally:
            other.close()

    def test_processes_race_one_winner_per_version(
        self, store: Store, open_store: StoreOpener | None, maker: StepMaker
    ) -> None:
        opener = self._opener(open_store, processes=True)
        maker.consulting(store, "race-p")
        workers, rounds = min(self.race_workers, 3), min(self.race_rounds, 5)
        results = _workers.run_processes(workers, _workers.race_worker, opener, "race-p", rounds, timeout=_TIMEOUT * 2)
        table: list[list[tuple[int, str, LogEntry]]] = [[] for _ in range(rounds)]
        for row in results:
            for r, version, outcome, entry_json in row:
                table[r].append((version, outcome, LogEntry.model_validate_json(entry_json)))
        self._judge_race(store, "race-p", 3, table)

    def test_processes_lease_each_notice_once(
        self, store: Store, open_store: StoreOpener | None, maker: StepMaker
    ) -> None:
        opener = self._opener(open_store, processes=True)
        sent = self._notices(store, maker, 30, prefix="pl")
        workers = min(self.race_workers, 3)
        results = _workers.run_processes(workers, _workers.lease_worker, opener, "", 0, timeout=_TIMEOUT * 2)
        every = [key for keys in results for key in keys]
        assert len(every) == len(set(every)), "two processes leased the same notice"
        assert set(every) == {n.key for n in sent}

    # ---- batches (optional) --------------------------------------------------------------------
    def test_append_many_is_all_or_nothing(self, store: Store, maker: StepMaker) -> None:
        append_many = getattr(store, "append_many", None)
        if append_many is None:
            pytest.skip("the store has no append_many()")
        a1 = maker.propose("bt-a")
        a2 = maker.notify(a1.record)
        b1 = maker.propose("bt-b")
        append_many([a1, a2, b1])
        assert store.load("bt-a") == a2.record
        assert store.load("bt-b") == b1.record
        b2 = maker.notify(b1.record)
        c1 = maker.propose("bt-c")
        stale = maker.reject(a1.record)  # made from version 1; the batch finds version 2
        with pytest.raises(Conflict):
            append_many([c1, b2, stale])
        with pytest.raises(NotFound):
            store.load("bt-c")
        assert store.load("bt-b") == b1.record, "a failed batch must write none of its steps"
        assert set(_drain(store)) == {n.key for n in a2.notices}

    def test_load_many_gives_what_load_gives(self, store: Store, maker: StepMaker) -> None:
        # optional (a dispatcher loads a batch's records in one query when the store offers it)
        load_many = getattr(store, "load_many", None)
        if load_many is None:
            pytest.skip("the store has no load_many()")
        ids = [f"lm-{i}" for i in range(4)]
        for cid in ids:
            maker.consulting(store, cid)
        wanted = [*ids, "lm-nobody", ids[0]]  # one not stored (left out), one named twice
        assert load_many(wanted) == {cid: store.load(cid) for cid in ids}
        assert load_many([]) == {}
        many = [f"lm-x{i}" for i in range(450)]  # more ids than one statement may take
        assert load_many([*many, *ids]).keys() == set(ids)
        with pytest.raises(InvalidInput):
            load_many(["bad\x00id"])

    # ---- errors --------------------------------------------------------------------------------
    def test_unknown_ids_are_not_found(self, store: Store, maker: StepMaker) -> None:
        append(store, maker.propose("known"))
        odd = ["unknown", "KNOWN", "known ", "", "x'; DROP TABLE consultations; --", "%", "_nown", "k" * 5000]
        for cid in [*odd, "nul\x00byte"]:
            with pytest.raises((NotFound, InvalidInput)):
                store.load(cid)
            with pytest.raises((NotFound, InvalidInput)):
                store.entries(cid)
        for cid in odd:
            with pytest.raises(NotFound):
                store.load(cid)
        assert store.load("known").id == "known"

    def test_ids_that_are_no_unicode_are_typed_errors(self, store: Store, maker: StepMaker) -> None:
        """A lone surrogate (what a web framework hands on from a badly encoded URL) is a typed error
        - ``InvalidInput``, or ``NotFound`` - from every call that takes an id, never a driver's
        ``UnicodeEncodeError``; the store works on afterwards."""
        append(store, maker.propose("known"))
        now = datetime(2026, 5, 1, tzinfo=UTC)
        for bad in ("c-\ud800", "\udfff", "known\udcff"):
            with pytest.raises((NotFound, InvalidInput)):
                store.load(bad)
            with pytest.raises((NotFound, InvalidInput)):
                store.entries(bad)
            with pytest.raises((NotFound, InvalidInput)):
                store.settle(bad, "delivered", now=now)
        assert store.load("known").version == 1

    def test_naive_times_are_refused(self, store: Store, maker: StepMaker) -> None:
        (a,) = self._notices(store, maker, 1)
        naive = datetime(2026, 5, 1, 12, 0)
        with pytest.raises(InvalidInput):
            store.lease(1, naive)
        with pytest.raises(InvalidInput):
            store.settle(a.key, "retry", now=datetime(2026, 5, 1, tzinfo=UTC), retry_at=naive)
        with pytest.raises(InvalidInput):
            store.find(Query(due_before=naive))
        assert set(_drain(store)) == {a.key}

    def test_a_closed_store_says_so(self, store: Store, maker: StepMaker) -> None:
        step = append(store, maker.propose("cl-1"))
        store.close()
        store.close()  # closing twice is harmless
        now = datetime(2026, 5, 1, tzinfo=UTC)
        calls: dict[str, Callable[[], object]] = {
            "load": lambda: store.load("cl-1"),
            "append": lambda: store.append(maker.notify(step.record), 1),
            "entries": lambda: store.entries("cl-1"),
            "find": lambda: store.find(Query()),
            "lease": lambda: store.lease(1, now),
            "settle": lambda: store.settle("cl-1:2", "delivered", now=now),
        }
        for name, call in calls.items():
            try:
                call()
            except StoreUnavailable:
                continue
            except Exception as exc:
                raise AssertionError(f"{name}() on a closed store raised {exc!r}; expected StoreUnavailable") from exc
            raise AssertionError(f"{name}() on a closed store went through; expected StoreUnavailable")

    # ---- the fund ledger (微幸福台账): docs/storage.md, consultflow.storage.ledger ---------------------
    @staticmethod
    def _ledger(store: Store) -> FundLedger:
        if not isinstance(store, FundLedger):
            pytest.fail(
                f"{type(store).__name__} keeps no fund ledger: implement fund_position(community, year) and "
                "fund_entries(consultation), and write the rows of funds_allocated and funds_spent entries in "
                "append's transaction (consultflow.storage.ledger, docs/storage.md)",
                pytrace=False,
            )
        return store

    def test_the_fund_ledger_is_what_the_log_gives(self, store: Store) -> None:
        engine, clock = demo_engine(store)
        cid = run_story(engine, clock)
        ledger = self._ledger(store)
        entries = tuple(store.entries(cid))
        rows = ledger_rows(entries)
        assert rows, "the reference story allocates and spends funds"
        assert tuple(ledger.fund_entries(cid)) == tuple(rows), (
            "fund_entries() must return one row per funds_allocated / funds_spent entry, as the log gives it"
        )
        record = store.load(cid)
        for year in {r.year for r in rows}:
            assert ledger.fund_position(record.community, year) == position_of(record.community, year, rows), (
                "fund_position() must add up the ledger's rows of the community's year"
            )
        assert ledger.fund_position(record.community, 1999) == FundPosition(community=record.community, year=1999)
        assert ledger.fund_position("nowhere", 2026) == FundPosition(community="nowhere", year=2026)
        assert tuple(ledger.fund_entries("nothing-here")) == ()

    def test_two_allocations_racing_for_one_place_conflict(self, store: Store) -> None:
        ledger = self._ledger(store)
        driver = Driver(store=store, review_carriers=frozenset(), review_major=False)  # decisions take effect
        first, second = (driver.to("consulting_closed").id for _ in range(2))
        now = driver.moment()
        year = driver.procedure.parameters.fund_year(now)
        seen = ledger.fund_position(COMMUNITY, year)  # both decisions are checked against the same position
        actor = Actor.known("wang", frozenset({Role.COMMITTEE}))
        steps = []
        for cid in (first, second):
            ctx = Context(now=now, actor=actor, catalogue=driver.catalogue, fund=seen)
            made = apply(driver.procedure, store.load(cid), driver.decide_command(cid=cid), ctx)
            assert isinstance(made, Step), f"the kit expected the decision to pass: {made}"
            assert Event.FUNDS_ALLOCATED in [e.event for e in made.entries]
            steps.append(made)
        append(store, steps[0])
        before = _snapshot(store, second)
        with pytest.raises(Conflict):
            append(store, steps[1])
        assert _snapshot(store, second) == before, "the losing step must write nothing"
        after = ledger.fund_position(COMMUNITY, year)
        assert after.seq == seen.seq + 1, "exactly one of the two allocations is in the ledger"
        assert tuple(ledger.fund_entries(second)) == ()
