"""Simulation benchmark: consultations simulated per second on one core against the same scenario
driven through ``Engine.run`` on a ``MemoryStore``, the ``gulou-2016`` district-year's wall time,
and the speed-up of 2 workers over 1.

Run from the project root:

    .venv/bin/python benchmarks/simulate.py            # the report, about a minute on 2 shared vCPUs
    .venv/bin/python benchmarks/simulate.py --quick    # smoke run, a few seconds
    .venv/bin/python benchmarks/simulate.py --profile  # and where the simulation's time goes

1. **One core.** The ``gulou-2016`` preset cut to a few communities, simulated (``consultflow.sim``:
   the pure core, trusted commands, lazy hashes) and, interleaved, driven through
   ``sim.baseline.EngineRun``: every command validated and run by ``Engine.run`` on a ``MemoryStore``
   with a ``MemoryDirectory``, ``Engine.tick`` before each, one engine per consultation - what a user
   writes today. Before timing, the script stops unless both give the same table (the same rules).
2. **The district-year**: ``simulate(preset("gulou-2016"), seed)``, serial, wall time.
3. **2 workers vs 1**: a sweep (the round limit x seeds on the preset) serial and on a
   ``ProcessPoolExecutor(2)``, and the district-year on 1 and 2 processes.

Targets: >= 100,000 consultations per minute on one core and >= 3.5x the Engine driver; the
district-year in <= 2 s; 2 workers >= 1.8x one. A report: it exits 0 whether targets are met or not.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from _common import describe_machine, median, package_versions, reference_speed, spread
from consultflow import sim
from consultflow.sim.baseline import simulate_with_engine
from consultflow.sim.runner import simulate_communities

TARGET_PER_MINUTE = 100_000
TARGET_RATIO = 3.5
TARGET_YEAR_SECONDS = 2.0
TARGET_SPEEDUP = 1.8


def out(text: str = "") -> None:
    print(text, flush=True)


def one_core(scenario: sim.Scenario, seed: int, reps: int) -> tuple[int, list[float], list[float]]:
    n = len(scenario.community_specs())
    fast = simulate_communities(scenario, seed, range(n))
    engine = simulate_with_engine(scenario, seed, range(n))
    if [r[0] for r in fast] != [r[0] for r in engine]:
        raise SystemExit("the simulation and the Engine driver disagree: not the same rules; fix before timing")
    sims, engines = [], []
    for i in range(reps):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            started = time.perf_counter()
            if which == 0:
                simulate_communities(scenario, seed + i, range(n))
                sims.append(time.perf_counter() - started)
            else:
                simulate_with_engine(scenario, seed + i, range(n))
                engines.append(time.perf_counter() - started)
    return len(fast), sims, engines


def district_year(scenario: sim.Scenario, seed: int, reps: int, workers: int) -> tuple[int, list[float]]:
    times, count = [], 0
    for i in range(reps):
        started = time.perf_counter()
        if workers == 1:
            results = sim.simulate(scenario, seed + i)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = sim.simulate(scenario, seed + i, executor=pool, chunks=workers * 4)
        times.append(time.perf_counter() - started)
        count = len(results)
    return count, times


def sweep_speedup(scenario: sim.Scenario, grid: dict[str, list[Any]], seeds: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    serial = sim.sweep(scenario, grid, seeds, progress=False)
    one = time.perf_counter() - started
    with ProcessPoolExecutor(max_workers=2) as pool:
        pool.submit(int).result()  # the workers are up before the clock starts
        started = time.perf_counter()
        pooled = sim.sweep(scenario, grid, seeds, executor=pool, progress=False)
        two = time.perf_counter() - started
    if pooled.rows != serial.rows:
        raise SystemExit("a sweep on 2 workers differs from the serial one")
    return one, two, len(serial.rows)


def profile(scenario: sim.Scenario, seed: int) -> str:
    """Where the simulation's time goes: the core's parts (cumulative, from cProfile) against the
    whole, and the functions with the most time of their own."""
    n = len(scenario.community_specs())
    prof = cProfile.Profile()
    prof.enable()
    simulate_communities(scenario, seed, range(n))
    prof.disable()
    stats = pstats.Stats(prof)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]

    def cumulative(path: str, name: str) -> float:
        return float(sum(v[3] for k, v in table.items() if k[0].endswith(path) and k[2] == name))

    whole = cumulative("sim/runner.py", "simulate_communities")
    core = cumulative("consultflow/core.py", "apply")
    select = cumulative("consultflow/core.py", "_select")
    assemble = cumulative("consultflow/core.py", "_assemble")
    effects = cumulative("consultflow/core.py", "enact") - assemble
    lines = [
        f"  the pure core (apply), every rule          {core / whole:6.1%}",
        f"    choosing and checking (roles, routes, guards) {select / whole:6.1%}",
        f"    the steps' effects                      {effects / whole:6.1%}",
        f"    the new record, log entries, deadlines   {assemble / whole:6.1%}",
        f"  the rest: the simulation's behaviour (draws, commands, the row) {1 - core / whole:6.1%}",
        "  (cProfile inflates the many small Python calls of the rest, random's included; timed without",
        "  it, the core was 56-57 % of the whole)",
        "",
    ]
    buffer = io.StringIO()
    pstats.Stats(prof, stream=buffer).sort_stats("tottime").print_stats(15)
    return "\n".join(lines) + buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts, figures mean nothing")
    parser.add_argument("--profile", action="store_true", help="also print where the simulation's time goes")
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.perf_counter()
    out(f"simulation benchmark - {describe_machine()}")
    out(f"  {package_versions('pydantic', 'transitions')}")
    out(f"  {reference_speed()}")
    gulou = sim.preset("gulou-2016")
    small = gulou.replace(communities=2 if quick else 12, sub_districts=1 if quick else 2)
    reps = 1 if quick else 5

    count, sims, engines = one_core(small, 1, reps)
    rate = count / median(sims)
    engine_rate = count / median(engines)
    ratios = [e / s for s, e in zip(sims, engines, strict=True)]
    out("")
    out(f"1. one core: {count} consultations ({len(small.community_specs())} communities of gulou-2016), "
        f"median of {reps} interleaved repetitions")  # fmt: skip
    out(f"  consultflow.sim (pure core, lazy hashes)  {rate:>9,.0f} /s  = {rate * 60:>11,.0f} /min  "
        f"{spread([count / s for s in sims])}")  # fmt: skip
    out(f"  Engine.run on a MemoryStore (baseline)    {engine_rate:>9,.0f} /s  = {engine_rate * 60:>11,.0f} /min  "
        f"{spread([count / s for s in engines])}")  # fmt: skip
    out(f"  ratio {rate / engine_rate:.2f}x (per repetition {spread(ratios, '.2f')});"
        f" targets >= {TARGET_PER_MINUTE:,}/min and >= {TARGET_RATIO}x")  # fmt: skip

    year = small if quick else gulou
    consultations, serial = district_year(year, 2016, 1 if quick else 3, 1)
    _, pooled = district_year(year, 2016, 1 if quick else 3, 2)
    out("")
    out(f"2. the district-year ({year.name}, {consultations:,} consultations): serial {median(serial):.2f} s "
        f"{spread(serial, '.2f')}; on 2 processes {median(pooled):.2f} s ({median(serial) / median(pooled):.2f}x, "
        f"pool start included); target <= {TARGET_YEAR_SECONDS} s")  # fmt: skip

    grid: dict[str, list[Any]] = {"parameters.round_limit": [2, 3] if quick else [2, 3, 4, 5]}
    swept_on = small if quick else gulou.replace(communities=30, sub_districts=4)
    one, two, runs = sweep_speedup(swept_on, grid, 1 if quick else 2)
    out("")
    out(f"3. a sweep of {runs} runs (round limit x seeds, {len(swept_on.community_specs())} communities each): "
        f"1 worker {one:.2f} s, 2 workers {two:.2f} s: {one / two:.2f}x; target >= {TARGET_SPEEDUP}x")  # fmt: skip
    if args.profile:
        out("")
        out("where the simulation's time goes (cProfile, by own time):")
        out(profile(small, 3))
    out(f"(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
