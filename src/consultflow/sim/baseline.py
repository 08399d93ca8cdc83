"""The same scenario through ``Engine.execute`` on a ``MemoryStore``, as an application would run it
today: validated commands, the roles from a ``MemoryDirectory``, a store that checks versions and
chains, and one engine, store and simulated clock per consultation (an engine's clock never goes
back, and ``tick`` acts on every consultation in its store).

It is the benchmark's baseline, and the tests' proof that the simulation runs the engine's rules:
both give the same table and the same log hashes for the same scenario and seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..catalogue import Catalogue
from ..clock import SimulatedClock
from ..commands import Command
from ..directory import MemoryDirectory
from ..engine import Engine
from ..funds import FundPosition
from ..log import LogEntry
from ..procedure import Procedure
from ..refusals import Refused
from ..roles import NEVER_GRANTED, Actor
from ..storage.memory import MemoryStore
from .people import Cast
from .results import Outcome
from .runner import Run, simulate_communities
from .scenario import Scenario

__all__ = ["EngineRun", "simulate_with_engine"]

_DIRECTORIES: dict[tuple[int, str], MemoryDirectory] = {}


def _directory(cast: Cast) -> MemoryDirectory:
    """The community's directory, every person granted their roles (once per cast)."""
    key = (id(cast), cast.community)
    found = _DIRECTORIES.get(key)
    if found is None:
        found = MemoryDirectory()
        for person, roles in cast.roles.items():
            granted = roles - NEVER_GRANTED
            if granted:
                found.grant(cast.community, person, *granted, by="baseline")
        _DIRECTORIES.clear()  # one community at a time
        _DIRECTORIES[key] = found
    return found


class _ConsultationStore(MemoryStore):
    """One consultation's store, whose fund ledger (微幸福) is its community's: what the run's
    ledger holds, shared by the community's consultations as one store's would be."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self._run = run

    def fund_position(self, community: str, year: int) -> FundPosition:
        return self._run.fund_position(community, year)


class EngineRun(Run):
    """A ``Run`` whose every command goes through its own ``Engine.execute``."""

    __slots__ = ("clock", "engine")

    def __init__(
        self, procedure: Procedure, catalogue: Catalogue, cast: Cast, at: datetime, keep: bool, lazy: bool = True
    ) -> None:
        super().__init__(procedure, catalogue, cast, at, keep, lazy=False)
        self.clock = SimulatedClock(at)
        self.engine: Engine | None = None

    def do(
        self, command: Command, actor: Actor, new_id: str | None = None, register: tuple[str, ...] | None = None
    ) -> bool:
        """As ``Run.do``, through the engine (which counts a body's members in its own directory)."""
        validated = type(command).model_validate(command.model_dump())  # as a caller builds it
        if self.engine is None:
            cid = new_id or ""
            self.engine = Engine(
                self.procedure,
                _ConsultationStore(self),
                clock=self.clock,
                catalogue=self.catalogue,
                ids=lambda: cid,
                directory=_directory(self.cast),
                salts=str,  # a simulation's logs are unsalted, as the runner makes them (never exported)
            )
        self.clock.set(self.now)
        if self.record is not None:
            for ticked in self.engine.tick():  # what is overdue now (an app runs tick on a schedule)
                self._took(ticked)
                self.clock.set(self.now)
        try:
            step = self.engine.run(validated, by=actor.id)
        except Refused as refused:
            self.refusals.append(refused.code)
            return False
        self._took(step)
        return True

    def tick(self) -> None:
        """As ``Run.tick``, through the engine's ``tick``."""
        if self.engine is None:
            return
        self.clock.set(self.now)
        for ticked in self.engine.tick():
            self._took(ticked)


def simulate_with_engine(
    scenario: Scenario, seed: int, indices: Sequence[int], *, keep_logs: bool = False
) -> list[tuple[Outcome, tuple[LogEntry, ...]]]:
    """``runner.simulate_communities`` with every consultation run through an ``Engine``."""
    return simulate_communities(scenario, seed, indices, keep_logs=keep_logs, lazy=False, run_class=EngineRun)
