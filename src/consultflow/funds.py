"""The 微幸福 fund (便民服务公益金): "区政府每年向119个社区分别拨付30万便民服务公益金" - each community
gets a pool of money a year, and decisions in force spend it.

The pool is a parameter (``Parameters.fund_pool``, ``fund_pools`` for a year's own, ``None`` for no
pool). What a community's year has taken from it is cross-record state: the stores keep a *fund
ledger* (台账), a projection of the ``funds_allocated`` and ``funds_spent`` log entries written in
the same transaction as their step, and answer ``fund_position(community, year)``. The engine hands
that position to the pure core in ``Context.fund``; the step's logged input carries it, so replay
does the step again exactly.

- ``FundPosition``: what the ledger had for (community, year) when a step was taken: allocated,
  spent, spent beyond the measures' budgets (``overspent``), and how many allocations (``seq``: the
  next one takes ``seq + 1``, and a store's unique key on (community, year, seq) turns a race
  between two allocations into ``FundConflict``);
- ``LedgerRow`` and ``ledger_rows``: the rows a step's entries make (what a store writes, and what
  ``verify`` compares a store's ledger with);
- ``FundStatement``: pool, allocated, spent and balance, as ``consultflow fund`` prints them.

``allocate``, ``allocation_of`` and ``spent_on`` are what the steps (decide, vote, review,
feedback) do with it: pure, like every effect.

Balance is what is left to allocate: the pool less what was allocated and less what measures spent
beyond their budgets (where the variant allows it with a justification).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs
from pydantic import field_validator

from .log import LogEntry
from .records import Consultation, Decision, FundAllocation, Id, Money, Record, make
from .vocabulary import Event

if TYPE_CHECKING:
    from .context import Context
    from .parameters import Parameters

__all__ = [
    "FundPosition",
    "FundStatement",
    "LedgerRow",
    "allocate",
    "allocation_of",
    "ledger_rows",
    "position_of",
    "release",
    "spent_on",
    "spent_on_decision",
]

_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_CENTS = Decimal("0.00")


class FundPosition(Record):
    """What a community's fund ledger holds for one year: allocated to decisions in force, spent on
    their measures, spent beyond the measures' budgets, and how many allocations (``seq``)."""

    community: Id
    year: int
    allocated: Money = _CENTS
    spent: Money = _CENTS
    overspent: Money = _CENTS
    seq: int = 0

    @field_validator("allocated", "spent", "overspent")
    @classmethod
    def _in_cents(cls, value: Decimal) -> Decimal:
        """Amounts in yuan and fen (two places) whatever the store summed them in: the position is
        logged in the step's input, which must not depend on the store."""
        return value.quantize(_CENT)

    def left(self, pool: Decimal) -> Decimal:
        """What is left of ``pool`` for new decisions."""
        return pool - self.allocated - self.overspent


Kind = Literal["allocated", "spent", "released"]


@attrs.frozen(slots=True)
class LedgerRow:
    """One row of a fund ledger: a ``funds_allocated`` or ``funds_spent`` log entry. ``entry`` is
    the entry's seq in its consultation's log; ``seq`` an allocation's place in its year's ledger
    (``None`` for spending); ``over`` the part of spending beyond the measure's budget."""

    consultation: str
    entry: int
    community: str
    year: int
    kind: Kind
    amount: Decimal
    over: Decimal = _ZERO
    seq: int | None = None
    pool: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "consultation": self.consultation,
            "entry": self.entry,
            "community": self.community,
            "year": self.year,
            "kind": self.kind,
            "amount": str(self.amount),
            "over": str(self.over),
            "seq": self.seq,
            "pool": None if self.pool is None else str(self.pool),
        }


_FUND_EVENTS = frozenset({Event.FUNDS_ALLOCATED, Event.FUNDS_SPENT, Event.FUNDS_RELEASED})


def ledger_rows(entries: Iterable[LogEntry]) -> list[LedgerRow]:
    """The ledger rows ``entries`` make, in order: one per ``funds_allocated`` or ``funds_spent``."""
    out = []
    for e in entries:
        if e.event not in _FUND_EVENTS:
            continue
        d = e.data
        allocated = e.event is Event.FUNDS_ALLOCATED  # only an allocation takes a place (seq) and names the pool
        out.append(
            LedgerRow(
                e.consultation,
                e.seq,
                str(d["community"]),
                int(str(d["year"])),
                "allocated" if allocated else "spent" if e.event is Event.FUNDS_SPENT else "released",
                Decimal(str(d["amount"])),
                Decimal(str(d.get("over", "0"))),
                int(str(d["seq"])) if allocated else None,
                Decimal(str(d["pool"])) if allocated else None,
            )
        )
    return out


def position_of(community: str, year: int, rows: Iterable[LedgerRow]) -> FundPosition:
    """The position the rows of (community, year) add up to."""
    allocated = spent = overspent = _ZERO
    seq = 0
    for r in rows:
        if r.community != community or r.year != year:
            continue
        if r.kind == "allocated":
            allocated += r.amount
            seq = max(seq, r.seq or 0)
        elif r.kind == "released":
            allocated -= r.amount
        else:
            spent += r.amount
            overspent += r.over
    return FundPosition(community=community, year=year, allocated=allocated, spent=spent, overspent=overspent, seq=seq)


@attrs.frozen(slots=True)
class FundStatement:
    """A community's fund for one year (台账): the pool (``None``: no pool), what decisions in force
    were allocated, what their measures spent, what they spent beyond their budgets, the balance
    left to allocate, and how many allocations."""

    community: str
    year: int
    pool: Decimal | None
    allocated: Decimal
    spent: Decimal
    overspent: Decimal
    allocations: int

    @property
    def balance(self) -> Decimal | None:
        return None if self.pool is None else self.pool - self.allocated - self.overspent

    @classmethod
    def of(cls, position: FundPosition, pool: Decimal | None) -> FundStatement:
        return cls(
            position.community,
            position.year,
            pool,
            position.allocated,
            position.spent,
            position.overspent,
            position.seq,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, amounts as exact decimal strings (two places)."""

        def money(value: Decimal | None) -> str | None:
            return None if value is None else f"{value:.2f}"

        return {
            "community": self.community,
            "year": self.year,
            "pool": money(self.pool),
            "allocated": money(self.allocated),
            "spent": money(self.spent),
            "overspent": money(self.overspent),
            "balance": money(self.balance),
            "allocations": self.allocations,
        }


def pool_recorded(rows: Sequence[LedgerRow]) -> Decimal | None:
    """The pool the latest allocation among ``rows`` was checked against, if any."""
    for r in reversed(rows):
        if r.kind == "allocated" and r.pool is not None:
            return r.pool
    return None


# ---- in the steps: what a decision takes, what a measure spent ------------------------------------------
def allocate(
    params: Parameters, rec: Consultation, decision: Decision, ctx: Context
) -> tuple[dict[str, Any], list[tuple[Event, dict[str, Any]]]]:
    """The decision takes effect: its budget leaves the community's pool for the year (the
    ``funds_allocated`` event, the ``FundAllocation`` on the case file). Nothing where it has no
    budget or the year has no pool."""
    amount = decision.budget
    if amount <= 0:
        return {}, []
    year = params.fund_year(ctx.now)
    pool = params.pool_for(year)
    if pool is None:
        return {}, []
    fund = ctx.fund
    if fund is None:
        raise ValueError(f"the fund ledger of {rec.community!r} for {year} was not given: the engine looks it up")
    seq = fund.seq + 1
    allocation = make(
        FundAllocation,
        {
            "decision": decision.number,
            "year": year,
            "amount": amount,
            "pool": pool,
            "before": fund.allocated,
            "seq": seq,
            "at": ctx.now,
            "released": None,
        },
    )
    data: dict[str, Any] = {  # keys in sorted order: see base.Events
        "amount": str(amount),
        "before": str(fund.allocated),
        "community": rec.community,
        "decision": decision.number,
        "pool": str(pool),
        "seq": seq,
        "year": year,
    }
    return {"allocations": (*rec.allocations, allocation)}, [(Event.FUNDS_ALLOCATED, data)]


def allocation_of(rec: Consultation, decision: int) -> FundAllocation | None:
    """What decision ``decision`` took from the fund when it took effect, if anything."""
    return next((a for a in rec.allocations if a.decision == decision), None)


def spent_on(rec: Consultation, decision: int, measure: int) -> Decimal:
    """What the reports so far spent on one measure of one decision."""
    return sum((p.spent for p in rec.progress if p.decision == decision and p.measure == measure), _ZERO)


def release(rec: Consultation, ctx: Context) -> tuple[dict[str, Any], list[tuple[Event, dict[str, Any]]]]:
    """The matter is consulted again (再次协商, or resumed): what the decision in force took from the
    fund and did not spend goes back to its year's pool (``funds_released``), once; the measures
    already paid for stay paid. Nothing where the decision took nothing."""
    d = rec.current_decision
    allocation = allocation_of(rec, d.number) if d is not None else None
    if d is None or allocation is None or allocation.released is not None:
        return {}, []
    spent = spent_on_decision(rec, d.number)
    amount = max(allocation.amount - spent, _ZERO)
    released = allocation.model_copy(update={"released": amount})
    update = {"allocations": tuple(released if a is allocation else a for a in rec.allocations)}
    if amount <= 0:
        return update, []
    data: dict[str, Any] = {  # keys in sorted order: see steps.base.Events
        "amount": str(amount),
        "community": rec.community,
        "decision": d.number,
        "spent": str(spent),
        "year": allocation.year,
    }
    return update, [(Event.FUNDS_RELEASED, data)]


def spent_on_decision(rec: Consultation, decision: int) -> Decimal:
    """What the reports spent on all measures of one decision."""
    return sum((p.spent for p in rec.progress if p.decision == decision), _ZERO)
