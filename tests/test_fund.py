"""The 微幸福 fund (便民服务公益金): "区政府每年向119个社区分别拨付30万便民服务公益金" - a pool of 300,000
yuan per community per year, which decisions in force draw on and measures spend; and its ledger,
kept by the stores, racing allocations, the command line and replay."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import consultflow as cf
from consultflow.cli import main
from consultflow.errors import FundConflict, NoFundLedger
from consultflow.funds import FundPosition, FundStatement, ledger_rows
from consultflow.i18n import project_type_name
from consultflow.replay import verify_consultation
from consultflow.storage.sqlite import SQLiteStore
from consultflow.testing.driver import COMMUNITY, Driver
from consultflow.vocabulary import Event, ProjectType, State
from store_support import Schemas, require_postgres, schemas_fixture

YEAR = 2026  # the driver's clock starts on 2 March 2026


def _refused(call: object) -> cf.Refused:
    assert callable(call)
    with pytest.raises(cf.Refused) as info:
        call()
    return info.value


def _in_force(d: Driver, budget: str, **propose: object) -> cf.Consultation:
    """A new matter decided with one measure of ``budget`` and found lawful: in force."""
    d.to("consulting_closed", **propose)
    d.decide(measures=(d.measure(budget=budget),))
    return d.review()


# ---- the pool is a year's, per community, not a cap per matter --------------------------------------------


def test_five_matters_of_300000_in_one_community_the_second_is_refused() -> None:
    d = Driver()
    first = _in_force(d, "300000")
    assert first.state is State.FEEDBACK
    (allocation,) = first.allocations
    assert (allocation.year, allocation.amount, allocation.pool, allocation.before, allocation.seq) == (
        YEAR, Decimal(300000), Decimal(300000), Decimal(0), 1,
    )  # fmt: skip
    for _ in range(4):  # the next four: nothing is left this year
        d.to("consulting_closed")
        before = d.snapshot()
        r = _refused(lambda: d.decide(measures=(d.measure(budget="300000"),)))
        assert (r.code, r.guard) == ("over_fund", "fund_left")
        assert (r.data["left"], r.data["pool"], r.data["allocated"], r.data["year"]) == (0, 300000, 300000, YEAR)
        assert "what is left of the community's fund for 2026: 0.00 yuan of 300,000.00 yuan" in r.explain("en")
        assert "2026年便民服务公益金余额" in r.explain("zh")
        assert "尚余0.00元" in r.explain("zh")
        assert d.snapshot() == before, "a refused decision changes nothing"
    assert d.store.fund_position(COMMUNITY, YEAR).allocated == Decimal(300000)  # type: ignore[attr-defined]


def test_the_allocation_itself_is_refused_when_another_took_the_money_meanwhile() -> None:
    d = Driver()
    a = d.to("consulting_closed").id
    d.decide(cid=a, measures=(d.measure(budget="200000"),))
    b = d.to("consulting_closed").id
    d.decide(cid=b, measures=(d.measure(budget="200000"),))  # both decided: nothing is allocated yet
    assert d.review(cid=a).state is State.FEEDBACK
    r = _refused(lambda: d.review(cid=b))
    assert (r.code, r.data["amount"], r.data["left"]) == ("over_fund", Decimal(200000), Decimal(100000))
    assert d.get(b).state is State.DECIDED
    assert d.get(b).allocations == ()


def test_a_matter_decided_without_review_takes_its_money_when_decided() -> None:
    d = Driver(review_carriers=frozenset(), review_major=False)
    rec = d.to("consulting_closed")
    rec = d.decide(measures=(d.measure(budget="1000"), d.measure(budget="500", title="二")))
    assert rec.state is State.FEEDBACK
    step = d.history()[-2:]
    assert [e.event for e in step] == [Event.FUNDS_ALLOCATED, Event.DECIDED]
    assert step[0].data == {
        "amount": "1500", "before": "0.00", "community": COMMUNITY, "decision": 1, "pool": "300000", "seq": 1,
        "year": YEAR,
    }  # fmt: skip
    assert step[-1].target is State.FEEDBACK, "the decision's entry still takes the matter into feedback"


def test_a_body_whose_vote_carries_is_refused_where_the_fund_has_not_that_much() -> None:
    d = Driver(review_carriers=frozenset(), review_major=False, decided_by=cf.Body.COUNCIL)
    _in_force_by_vote = d.to("consulting_closed")
    d.vote(cf.Body.COUNCIL, measures=(d.measure(budget="250000"),))
    assert d.get(_in_force_by_vote.id).allocations[0].amount == Decimal(250000)
    d.to("consulting_closed")
    r = _refused(lambda: d.call_vote(cf.Body.COUNCIL, measures=(d.measure(budget="60000"),)))
    assert (r.code, r.data["left"]) == ("over_fund", Decimal(50000))  # heard early: when put to the vote


def test_a_proposal_over_the_whole_yearly_fund_is_refused_and_the_cap_is_a_communitys_choice() -> None:
    d = Driver()
    r = _refused(lambda: d.propose(budget=Decimal("300000.01")))
    assert (r.code, r.data["pool"], r.data["year"]) == ("over_fund_pool", Decimal(300000), YEAR)
    assert r.explain("zh") == "预算300000.01元超过本社区2026年便民服务公益金总额300000.00元"
    assert d.propose(budget=Decimal(300000)).state is State.PROPOSED
    assert cf.Parameters().budget_cap is None  # the seed's 300,000 is the yearly pool, not a cap per matter
    assert cf.Parameters().fund_pool == Decimal(300000)


# ---- years -------------------------------------------------------------------------------------------------


def test_a_new_year_has_a_fresh_pool_counted_in_the_procedures_zone() -> None:
    d = Driver()
    _in_force(d, "300000")
    d.clock.set(datetime(2027, 1, 4, 1, 0, tzinfo=UTC))
    rec = _in_force(d, "300000")  # the year 2026 has nothing left; 2027 has its own 300,000
    (allocation,) = rec.allocations
    assert (allocation.year, allocation.before, allocation.seq) == (2027, Decimal(0), 1)
    assert d.store.fund_position(COMMUNITY, 2026).allocated == Decimal(300000)  # type: ignore[attr-defined]
    assert d.store.fund_position(COMMUNITY, 2027).allocated == Decimal(300000)  # type: ignore[attr-defined]
    # 31 December 2026, 17:00 UTC is 1 January 2027, 01:00 in Shanghai: the new year's fund
    params = d.procedure.parameters
    assert params.fund_year(datetime(2026, 12, 31, 17, 0, tzinfo=UTC)) == 2027
    assert params.fund_year(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == 2026


def test_a_year_may_have_its_own_pool_or_none() -> None:
    d = Driver(fund_pools={2026: Decimal(100000), 2027: None})
    d.to("consulting_closed")
    r = _refused(lambda: d.decide(measures=(d.measure(budget="150000"),)))
    assert (r.code, r.data["pool"], r.data["left"]) == ("over_fund", Decimal(100000), Decimal(100000))
    d.clock.set(datetime(2027, 3, 1, tzinfo=UTC))
    d.to("decided", budget=None)
    rec = d.review()
    assert rec.state is State.FEEDBACK
    assert rec.allocations == ()
    assert Event.FUNDS_ALLOCATED not in d.events()
    assert cf.Parameters(fund_pools={2027: Decimal(1)}).pool_for(2027) == 1
    with pytest.raises(cf.ValidationError):
        cf.Parameters(fund_pools={12: Decimal(1)})


# ---- spending ------------------------------------------------------------------------------------------------


def test_999999_spent_on_a_1000_measure_is_refused() -> None:
    d = Driver()
    _in_force(d, "1000")
    before = d.snapshot()
    r = _refused(lambda: d.report(0, 100, spent=Decimal(999_999)))
    assert (r.code, r.guard) == ("over_measure_budget", "within_budget")
    assert (r.data["budget"], r.data["total"], r.data["left"]) == (Decimal(1000), Decimal(999_999), Decimal(1000))
    assert "measure 1 would spend 999,999.00 yuan, over its budget of 1,000.00 yuan" in r.explain("en")
    assert "1,000.00 yuan left" in r.explain("en")
    assert "第1项措施支出将达999999.00元，超出其预算1000.00元" in r.explain("zh")
    assert d.snapshot() == before
    d.report(0, 50, spent=Decimal(600))
    r = _refused(lambda: d.report(0, 100, spent=Decimal(401)))  # the reports add up
    assert (r.code, r.data["spent_before"], r.data["left"]) == ("over_measure_budget", Decimal(600), Decimal(400))
    rec = d.report(0, 100, spent=Decimal(400))
    assert sum(p.spent for p in rec.progress) == Decimal(1000)
    spent = [e for e in d.history() if e.event is Event.FUNDS_SPENT]
    assert [(e.data["amount"], e.data["over"], e.data["year"]) for e in spent] == [
        ("600", "0", YEAR),
        ("400", "0", YEAR),
    ]


def test_overspending_with_a_justification_where_the_variant_allows_it() -> None:
    d = Driver(overspend="justify")
    _in_force(d, "1000")
    r = _refused(lambda: d.report(0, 100, spent=Decimal(1500)))
    assert r.code == "overspend_needs_justification"
    assert "须说明超支理由" in r.explain("zh")
    why = "材料涨价 materials cost more"
    rec = d.report(0, 100, spent=Decimal(1500), justification=why)
    assert rec.progress[-1].justification == why  # it stays on the record
    progress, spent = d.history()[-2:]
    assert progress.data["justification"] == why
    assert (spent.event, spent.data["amount"], spent.data["over"]) == (Event.FUNDS_SPENT, "1500", "500")
    position = d.store.fund_position(COMMUNITY, YEAR)  # type: ignore[attr-defined]
    assert (position.allocated, position.spent, position.overspent) == (1000, 1500, 500)
    statement = FundStatement.of(position, Decimal(300000))
    assert statement.balance == Decimal(298500)  # what was overspent comes off the balance too


def test_spending_without_a_pool_is_still_held_to_the_measures_budget() -> None:
    d = Driver(fund_pool=None)
    rec = _in_force(d, "1000")
    assert rec.allocations == ()
    assert _refused(lambda: d.report(0, 100, spent=Decimal(1001))).code == "over_measure_budget"
    d.report(0, 100, spent=Decimal(1000))
    assert Event.FUNDS_SPENT not in d.events()  # no fund: nothing to account to it


# ---- the ledger, the stores, the engine ------------------------------------------------------------------------


def test_the_ledger_adds_up_allocations_and_spending() -> None:
    d = Driver()
    _in_force(d, "120000")
    d.report(0, 50, spent=Decimal("40000.50"))
    _in_force(d, "80000")
    d.report(0, 100, spent=Decimal(80000))
    position = d.store.fund_position(COMMUNITY, YEAR)  # type: ignore[attr-defined]
    assert position == FundPosition(
        community=COMMUNITY, year=YEAR, allocated=Decimal(200000), spent=Decimal("120000.50"), seq=2
    )
    figures = FundStatement.of(position, Decimal(300000)).to_dict()
    assert figures == {
        "community": COMMUNITY, "year": YEAR, "pool": "300000.00", "allocated": "200000.00", "spent": "120000.50",
        "overspent": "0.00", "balance": "100000.00", "allocations": 2,
    }  # fmt: skip
    assert d.store.fund_position("elsewhere", YEAR) == FundPosition(community="elsewhere", year=YEAR)  # type: ignore[attr-defined]


class _NoLedger:
    """A store that keeps the contract but no fund ledger."""

    def __init__(self) -> None:
        self._inner = cf.MemoryStore()
        self.load, self.append, self.entries = self._inner.load, self._inner.append, self._inner.entries
        self.find, self.lease, self.settle, self.close = (
            self._inner.find, self._inner.lease, self._inner.settle, self._inner.close,
        )  # fmt: skip
        self.outbox = self._inner.outbox


def test_a_store_without_a_ledger_is_told_what_to_implement() -> None:
    d = Driver(store=_NoLedger())
    d.to("consulting_closed")
    with pytest.raises(NoFundLedger) as info:
        d.decide()
    assert "fund_position(community, year)" in str(info.value)
    assert "docs/storage.md" in str(info.value)
    unfunded = Driver(store=_NoLedger(), fund_pool=None)
    assert unfunded.to("feedback").state is State.FEEDBACK  # without a pool, no ledger is needed


def test_verify_replays_fund_checked_steps_and_compares_the_ledger() -> None:
    d = Driver()
    cid = _in_force(d, "300000").id
    d.report(0, 100, spent=Decimal(299_000))
    entries = d.history()
    review = next(e for e in entries if e.event is Event.FUNDS_ALLOCATED)
    assert review.input is not None
    assert review.input["fund"] == {
        "allocated": "0.00",
        "community": COMMUNITY,
        "overspent": "0.00",
        "seq": 0,
        "spent": "0.00",
        "year": YEAR,
    }
    assert d.engine.verify(cid).ok
    procedures = {d.procedure.key: d.procedure}
    rows = ledger_rows(entries)
    assert verify_consultation(d.get(), entries, procedures, ledger=rows).ok
    lost = verify_consultation(d.get(), entries, procedures, ledger=rows[:1])
    assert not lost.ok
    assert "fund ledger lacks the row" in lost.reason


def test_measures_name_their_micro_project_type() -> None:
    d = Driver(review_carriers=frozenset(), review_major=False)
    d.to("consulting_closed")
    greening = d.measure(budget="5000", title="种树 plant trees", category=ProjectType.GREENING)
    rec = d.decide(measures=(greening,))
    assert rec.decisions[-1].measures[0].category is ProjectType.GREENING
    assert d.engine.verify(rec.id).ok
    assert [project_type_name(p.value, "zh") for p in ProjectType] == [
        "微路网", "微绿化", "微广场", "微设施", "微爱心", "微文化", "微旅游",
    ]  # fmt: skip
    assert project_type_name("greening", "en") == "micro greening"


# ---- the command line ----------------------------------------------------------------------------------------


def _sqlite_story(path: Path) -> None:
    store = SQLiteStore(path)
    try:
        d = Driver(store=store)
        _in_force(d, "120000")
        d.report(0, 100, spent=Decimal("100000"))
    finally:
        store.close()


def test_the_fund_command_prints_the_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fund.db"
    _sqlite_story(path)
    assert main(["fund", "--db", str(path), "--community", COMMUNITY, "--year", str(YEAR), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures == {
        "community": COMMUNITY, "year": YEAR, "pool": "300000.00", "allocated": "120000.00", "spent": "100000.00",
        "overspent": "0.00", "balance": "180000.00", "allocations": 1,
    }  # fmt: skip
    assert main(["fund", "--db", str(path), "--community", COMMUNITY, "--year", "2027"]) == 0
    out = capsys.readouterr().out
    assert "balance" in out
    assert "300,000.00 yuan" in out
    assert main(["fund", "--db", str(path), "--community", COMMUNITY, "--year", str(YEAR), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "余额" in out
    assert "180000.00元" in out
    assert "已安排" in out
    assert main(["fund", "--db", str(path), "--community", "nowhere", "--year", str(YEAR)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["fund", "--db", str(tmp_path / "missing.db"), "--community", COMMUNITY, "--year", "2026"]) == 2
    assert main(["fund", "--db", str(path), "--community", COMMUNITY, "--year", "99"]) == 2


def test_verify_finds_a_ledger_that_disagrees_with_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    path = tmp_path / "fund.db"
    _sqlite_story(path)
    assert main(["verify", "--db", str(path)]) == 0
    capsys.readouterr()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE fund_ledger SET amount = '1.00' WHERE kind = 'allocated'")
    assert main(["verify", "--db", str(path)]) == 1
    assert "fund ledger" in capsys.readouterr().out


# ---- racing allocations: SQLite and PostgreSQL ---------------------------------------------------------------


class _Barrier:
    """Holds every handle's ``fund_position`` until both decisions have read the ledger."""

    def __init__(self) -> None:
        self.barrier: threading.Barrier | None = None


def _slow(base: type[cf.Store]) -> type[cf.Store]:
    class Slow(base):  # type: ignore[valid-type,misc]
        gate: _Barrier

        def fund_position(self, community: str, year: int) -> FundPosition:
            found: FundPosition = super().fund_position(community, year)
            if self.gate.barrier is not None:
                self.gate.barrier.wait(timeout=20)
            return found

    return Slow


def _race(first: cf.Store, second: cf.Store, gate: _Barrier) -> None:
    """Two decisions of 200,000 each, in one community, checked against the same ledger at once:
    exactly one passes, the other is a Conflict; retried, it is refused (100,000 left)."""
    d = Driver(store=first, review_carriers=frozenset(), review_major=False)
    a = d.to("consulting_closed").id
    b = d.to("consulting_closed").id
    other = cf.Engine(d.procedure, second, clock=d.clock, catalogue=d.catalogue, directory=d.directory)
    commands = [d.decide_command(cid=cid, measures=(d.measure(budget="200000"),)) for cid in (a, b)]
    gate.barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def decide(i: int, engine: cf.Engine) -> None:
        try:
            outcomes[i] = engine.execute(commands[i], by="wang")
        except Exception as exc:  # noqa: BLE001 - the outcome is judged below
            outcomes[i] = exc

    threads = [threading.Thread(target=decide, args=(0, d.engine)), threading.Thread(target=decide, args=(1, other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    gate.barrier = None
    won = [o for o in outcomes if isinstance(o, cf.Consultation)]
    lost = [o for o in outcomes if isinstance(o, Exception)]
    assert (len(won), len(lost)) == (1, 1), outcomes
    assert isinstance(lost[0], FundConflict), lost[0]
    assert isinstance(lost[0], cf.Conflict)
    assert "fund ledger" in str(lost[0])
    ledger = first.fund_position(COMMUNITY, YEAR)  # type: ignore[attr-defined]
    assert (ledger.allocated, ledger.seq) == (Decimal(200000), 1), "only the winner's money left the pool"
    loser = b if won[0].id == a else a
    assert first.load(loser).state is State.CONSULTING
    assert first.load(loser).allocations == ()
    retry = _refused(lambda: other.execute(commands[[a, b].index(loser)], by="wang"))
    assert (retry.code, retry.data["left"]) == ("over_fund", Decimal(100000))


def test_racing_allocations_conflict_on_sqlite(tmp_path: Path) -> None:
    gate = _Barrier()
    slow = _slow(SQLiteStore)
    slow.gate = gate  # type: ignore[attr-defined]
    first, second = slow(tmp_path / "race.db"), slow(tmp_path / "race.db")  # type: ignore[call-arg]
    try:
        _race(first, second, gate)
    finally:
        first.close()
        second.close()


@pytest.fixture(scope="module")
def schemas() -> Iterator[Schemas]:
    yield from schemas_fixture()


def test_racing_allocations_conflict_on_postgres(schemas: Schemas) -> None:
    dsn = require_postgres()
    gate = _Barrier()
    slow = _slow(cf.PostgresStore)
    slow.gate = gate  # type: ignore[attr-defined]
    schema = schemas.new("fund")
    first, second = slow(dsn, schema=schema), slow(dsn, schema=schema)  # type: ignore[call-arg]
    try:
        _race(first, second, gate)
        assert tuple(first.fund_entries(first.find(cf.Query())[0].id)) is not None  # type: ignore[attr-defined]
    finally:
        first.close()
        second.close()


def test_consulting_again_gives_back_what_the_decision_did_not_spend() -> None:
    d = Driver()
    _in_force(d, "300000")
    d.report(0, 40, spent=Decimal(100000))
    d.publish()
    d.start_supervision()
    rec = d.reconsult()  # 再次协商: a new problem; the measures already paid for stay paid
    released, requested = d.history()[-2:]
    assert (released.event, requested.event) == (Event.FUNDS_RELEASED, Event.RECONSULTATION_REQUESTED)
    assert (released.data["amount"], released.data["spent"], released.data["year"]) == ("200000", "100000", YEAR)
    assert rec.allocations[0].released == Decimal(200000)
    position = d.store.fund_position(COMMUNITY, YEAR)  # type: ignore[attr-defined]
    assert (position.allocated, position.spent) == (Decimal(100000), Decimal(100000))
    d.hold_round()
    d.decide(measures=(d.measure(budget="200000"),))  # what came back can be decided on again
    assert d.review().allocations[-1].before == Decimal(100000)
    assert d.engine.verify(rec.id).ok
