"""The fund ledger (微幸福便民服务公益金台账) a store keeps beside the log: one row per
``funds_allocated`` and ``funds_spent`` entry, written in the same transaction as its step, so
that the engine can ask what a community's year has taken from its pool (``fund_position``).

- ``FundLedger``: the two methods a store adds to the contract when the procedure gives
  communities a pool (``Parameters.fund_pool``, the default): ``fund_position(community, year)``
  and ``fund_entries(consultation)`` (for ``verify``). An engine whose procedure has a pool and
  whose store has no ledger raises ``NoFundLedger`` at the first decision with a budget.
- the promise that makes allocations safe under concurrency: an allocation row carries its place
  in the year's ledger (``seq``, one more than the position the step was checked against), and the
  store keeps (community, year, seq) unique - a step whose allocation's place is taken raises
  ``FundConflict`` (a ``Conflict``) and writes nothing, so two decisions racing for the same pool
  never both pass;
- ``FundBook``: that ledger in memory, for stores that keep their data in dicts (the memory store,
  the JSON example of docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from ..errors import FundConflict
from ..funds import FundPosition, LedgerRow, ledger_rows, position_of
from ..step import Step

__all__ = ["FundBook", "FundLedger", "step_rows"]


@runtime_checkable
class FundLedger(Protocol):
    """What a store answers about the 微幸福 fund (see the module docstring)."""

    def fund_position(self, community: str, year: int) -> FundPosition:
        """What the ledger holds for (community, year): allocated, spent, overspent, allocations
        (``seq``); zeros for a year with no rows."""
        ...

    def fund_entries(self, consultation: str) -> Sequence[LedgerRow]:
        """The ledger rows of one consultation's log, in log order (empty when none)."""
        ...


def step_rows(step: Step) -> list[LedgerRow]:
    """The ledger rows a step writes (its ``funds_allocated`` and ``funds_spent`` entries)."""
    return ledger_rows(step.entries)


class FundBook:
    """A fund ledger in memory. Not locked: the store that holds it calls it under its own lock."""

    def __init__(self) -> None:
        self._years: dict[tuple[str, int], list[LedgerRow]] = {}
        self._taken: set[tuple[str, int, int]] = set()
        self._by_consultation: dict[str, list[LedgerRow]] = {}

    def check(self, step: Step, expected: int, taken: set[tuple[str, int, int]] | None = None) -> list[LedgerRow]:
        """The rows ``step`` writes, or ``FundConflict`` when an allocation's place is taken (here, or
        in ``taken``: the places a batch written with it takes first)."""
        rows = step_rows(step)
        for r in rows:
            if r.seq is None:
                continue
            key = (r.community, r.year, r.seq)
            if key in self._taken or (taken is not None and key in taken):
                raise FundConflict(step.record.id, expected, r.community, r.year, r.seq)
            if taken is not None:
                taken.add(key)
        return rows

    def add(self, rows: Iterable[LedgerRow]) -> None:
        for r in rows:
            self._years.setdefault((r.community, r.year), []).append(r)
            self._by_consultation.setdefault(r.consultation, []).append(r)
            if r.seq is not None:
                self._taken.add((r.community, r.year, r.seq))

    def position(self, community: str, year: int) -> FundPosition:
        return position_of(community, year, self._years.get((community, year), ()))

    def rows(self, consultation: str) -> tuple[LedgerRow, ...]:
        return tuple(self._by_consultation.get(consultation, ()))
