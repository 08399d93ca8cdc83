"""``consultflow simulate``: run a preset or a TOML scenario and print its totals or the
calibration report. Timing goes to stderr, so stdout is the same for any ``--workers``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

__all__ = ["register"]

MAX_WORKERS = 64


def _simulate(args: argparse.Namespace) -> int:
    from .calibration import calibrate
    from .presets import preset
    from .runner import simulate
    from .scenario import Scenario

    if not 1 <= args.workers <= MAX_WORKERS:
        raise InvalidInput(f"--workers is a number from 1 to {MAX_WORKERS}, not {args.workers}")
    if not 0 <= args.seed < 2**63:
        raise InvalidInput(f"--seed is a whole number from 0 to 2**63 - 1, not {args.seed}")
    scenario = Scenario.from_toml(Path(args.scenario)) if args.scenario else preset(args.preset)
    started = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            results = simulate(scenario, args.seed, executor=pool, chunks=args.workers * 4)
    else:
        results = simulate(scenario, args.seed)
    seconds = time.perf_counter() - started
    print(
        f"simulated {len(results):,} consultations in {seconds:.2f} s on {args.workers} worker(s) "
        f"({len(results) / max(seconds, 1e-9):,.0f}/s)",
        file=sys.stderr,
    )
    if args.csv:
        results.to_csv(args.csv)
    if args.calibration:
        report = calibrate(results)
        print(json.dumps(report.as_dict(), ensure_ascii=False) if args.json else report.text())
        return 0 if report.ok else 1
    totals: dict[str, Any] = {"scenario": scenario.name, "seed": args.seed, **results.totals().as_dict()}
    if args.json:
        print(json.dumps(totals, ensure_ascii=False))
    else:
        for key, value in totals.items():
            print(f"{key:<14} {value:,}" if isinstance(value, int | float) else f"{key:<14} {value}")
    return 0


def register(sub: Any) -> None:
    """Add ``simulate`` to the command line's subcommands."""
    parser = sub.add_parser(
        "simulate",
        help="simulate a district's consultations on the real rules (a preset or a TOML scenario)",
        description=(
            "Simulate consultations on the real rules: every step through the procedure, refusals\n"
            "included, on a simulated clock; the same scenario and seed give the same output for\n"
            "any --workers. Timing goes to stderr.\n\n"
            "exit status: 0 done (with --calibration: every figure within its tolerance); 1 with\n"
            "--calibration, a figure outside its tolerance (a finding, on stdout); 2 a usage or\n"
            "input problem (an unknown preset, a scenario that does not validate)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default="gulou-2016", help="a ready scenario (default: gulou-2016)")
    source.add_argument("--scenario", metavar="FILE", help="a scenario in TOML")
    parser.add_argument("--seed", type=int, default=0, help="the seed: ids and randomness derive from it (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes to run on (default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--calibration", action="store_true", help="the calibration report against the seed")
    parser.add_argument("--csv", metavar="PATH", help="also write a row per consultation to PATH")
    parser.set_defaults(func=_simulate)
