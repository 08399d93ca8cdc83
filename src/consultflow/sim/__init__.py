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

from .calibration import SEED, Calibration, Check, calibrate, fit
from .people import Cast, cast_for, move, stance_of
from .presets import PRESETS, gulou_2016, preset
from .results import COLUMNS, Outcome, Results, Timeline, Totals
from .runner import simulate, simulate_communities
from .scenario import CommunitySpec, Funds, OpinionModel, People, Scenario, Times, Turnout
from .sweep import Sweep, summarise, sweep

__all__ = [
    "COLUMNS",
    "PRESETS",
    "SEED",
    "Calibration",
    "Cast",
    "Check",
    "CommunitySpec",
    "Funds",
    "OpinionModel",
    "Outcome",
    "People",
    "Results",
    "Scenario",
    "Sweep",
    "Timeline",
    "Times",
    "Totals",
    "Turnout",
    "calibrate",
    "cast_for",
    "fit",
    "gulou_2016",
    "move",
    "preset",
    "simulate",
    "simulate_communities",
    "stance_of",
    "summarise",
    "sweep",
]
