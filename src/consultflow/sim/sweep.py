"""Sweeps: a grid of scenario parameters x seeds, serial or on any ``concurrent.futures.Executor``
(a process pool, Dask's ``Client.get_executor()``...), one tidy table out.

Each point of the grid is a whole simulation (``simulate(scenario.replace(**point), seed)``),
summarised in one row. The executor is the caller's: nothing here changes global
multiprocessing settings. A progress bar (tqdm) shows on a terminal or in a notebook.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, as_completed
from typing import Any

import attrs

from ..errors import InvalidInput
from .results import Results, need
from .runner import simulate
from .scenario import Scenario

__all__ = ["Sweep", "summarise", "sweep"]

MAX_RUNS = 100_000


def summarise(results: Results) -> dict[str, Any]:
    """One row for one simulation: the totals and the outcome measures a sweep compares."""
    t = results.totals()
    o = results.outcomes
    n = max(len(o), 1)
    decided = [x.days_to_decision for x in o if x.days_to_decision is not None]
    return {
        **t.as_dict(),
        "decided_share": round(len(decided) / n, 6),
        "escalated_share": round(sum(1 for x in o if x.escalations) / n, 6),
        "closed_share": round(sum(1 for x in o if x.state == "closed") / n, 6),
        "mean_rounds": round(sum(x.rounds for x in o) / n, 6),
        "mean_days_to_decision": round(sum(decided) / len(decided), 6) if decided else None,
        "refusals": sum(x.refusals for x in o),
    }


def _one(scenario: Scenario, seed: int) -> dict[str, Any]:
    return summarise(simulate(scenario, seed))


@attrs.frozen(slots=True)
class Sweep:
    """A sweep's table: a row per (point, seed), the swept parameters first."""

    parameters: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    def to_pandas(self) -> Any:
        return need("pandas").DataFrame(list(self.rows))

    def plot(self, x: str, y: str, by: str | None = None) -> Any:
        """``y`` against ``x`` (mean over seeds), one line per value of ``by``; the Figure."""
        plt = need("matplotlib.pyplot")
        fig, ax = plt.subplots(figsize=(5, 3))
        groups: dict[Any, dict[Any, list[float]]] = {}
        for row in self.rows:
            if row[y] is None:
                continue
            groups.setdefault(row[by] if by else None, {}).setdefault(row[x], []).append(float(row[y]))
        for key in sorted(groups, key=repr):
            points = sorted(groups[key].items())
            ax.plot([p[0] for p in points], [sum(v) / len(v) for _, v in points], marker="o", label=f"{by}={key}")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if by:
            ax.legend()
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        return str(self.to_pandas()._repr_html_())


def _progress(total: int, show: bool | None) -> Any:
    if show is False:
        return None
    if show is None and not (sys.stderr.isatty() or "ipykernel" in sys.modules):
        return None
    try:
        auto = importlib.import_module("tqdm.auto")
    except ImportError:
        return None
    return auto.tqdm(total=total, desc="simulations", unit="run")


def sweep(
    scenario: Scenario,
    grid: Mapping[str, Sequence[Any]],
    seeds: int | Iterable[int] = 1,
    *,
    executor: Executor | None = None,
    progress: bool | None = None,
) -> Sweep:
    """Simulate every combination of ``grid`` (dotted scenario fields, e.g.
    ``{"parameters.round_limit": [3, 5], "parameters.quorum_ratio": [0.3, 0.5]}``) for each seed
    (``seeds`` a count, 0..n-1, or the seeds). Serial unless ``executor`` is given; rows in the
    grid's order whatever order they finish in."""
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise InvalidInput("a sweep needs at least one seed", code="no_seeds")
    for seed in seed_list:
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise InvalidInput(f"a seed is a whole number from 0 to 2**63 - 1, not {seed!r}", code="bad_seed")
    names = tuple(grid)
    points = [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]
    if len(points) * len(seed_list) > MAX_RUNS:
        raise InvalidInput(f"a sweep of more than {MAX_RUNS:,} runs; split it", code="sweep_too_large")
    variants = [scenario.replace(**p) for p in points]  # validated here, before anything runs
    jobs = [(i, s) for i in range(len(points)) for s in seed_list]
    bar = _progress(len(jobs), progress)
    found: dict[int, dict[str, Any]] = {}
    try:
        if executor is None:
            for k, (i, s) in enumerate(jobs):
                found[k] = _one(variants[i], s)
                if bar is not None:
                    bar.update(1)
        else:
            futures: dict[Future[dict[str, Any]], int] = {
                executor.submit(_one, variants[i], s): k for k, (i, s) in enumerate(jobs)
            }
            for future in as_completed(futures):
                found[futures[future]] = future.result()
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    rows = tuple({**points[i], "seed": s, **found[k]} for k, (i, s) in enumerate(jobs))
    return Sweep(names, rows)
