"""Simulation for researchers (模拟): scenarios run on the real rules, reproducible and fast.

    import consultflow.sim as sim

    results = sim.simulate(sim.preset("gulou-2016"), seed=1)
    results.totals()                 # consultations, activities, round tables, person-times, projects
    results.to_pandas()              # a row per consultation (pandas: the ``sim`` extra)

Every step of every consultation goes through the pure core (``consultflow.apply``) under the
procedure, refusals included, on a simulated clock; ids and randomness derive from the seed, so
the same scenario and seed give the same bytes, serial or on any ``concurrent.futures.Executor``.
"""

from __future__ import annotations

from .people import Cast, cast_for, move, stance_of
from .results import COLUMNS, Outcome, Results, Totals
from .runner import simulate, simulate_communities
from .scenario import CommunitySpec, Funds, OpinionModel, People, Scenario, Times, Turnout

__all__ = [
    "COLUMNS",
    "Cast",
    "CommunitySpec",
    "Funds",
    "OpinionModel",
    "Outcome",
    "People",
    "Results",
    "Scenario",
    "Times",
    "Totals",
    "Turnout",
    "cast_for",
    "move",
    "simulate",
    "simulate_communities",
    "stance_of",
]
