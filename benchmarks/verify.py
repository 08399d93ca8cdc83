"""Verify benchmark: how fast a log is checked, by hash chain alone and by replay.

Run from the project root:

    .venv/bin/python benchmarks/verify.py            # the report (make bench)
    .venv/bin/python benchmarks/verify.py --quick    # smoke run of a few seconds (part of make test)

The workload is the lifecycle benchmark's (benchmarks/lifecycle.py): whole consultations, from
proposal to close, one in four consulting again. They are written once by an ``Engine`` into a
``MemoryStore`` and into a SQLite file; then, on one core, every consultation is checked four ways:

0. the baseline: the pure core (``consultflow.apply``) making the same steps, as the lifecycle
   benchmark runs it - replay does that work again, so it cannot be much faster;
1. ``cf.verify`` on the parsed entries: hashes, links, order, each entry starting where the one before
   ended, the record's head and version;
2. ``log.verify_stored`` on the stored lines (``entry_json``): the same on the bytes themselves;
3. ``replay.verify_consultation``: the chain, then replay through the procedure and the stored record
   against the record the log gives (what ``Engine.verify`` does);
4. what ``consultflow verify --db`` does for each consultation of a SQLite file: the file's rows (bytes,
   columns, chain, digest, outbox), then replay and the outbox against the notices replay makes.

Figures are entries per second (the median of interleaved repetitions), against the target of
25,000 entries per second for a check by replay. Nothing is asserted on timings: it is a report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import consultflow as cf
from _common import describe_machine, median, package_versions, reference_speed
from consultflow.cli import _check, _check_in_processes
from consultflow.log import entry_json, verify_stored
from consultflow.replay import verify_consultation
from lifecycle import CATALOGUE, T0, bench_procedure, cast_directory, run_core, script_for

TARGET = 25_000  # entries per second, by replay, on one core


def write(store: cf.Store, n: int, procedure: cf.Procedure) -> list[str]:
    """Run ``n`` lifecycles through an engine into ``store``; their ids."""
    clock = cf.SimulatedClock(T0)
    engine = cf.Engine(procedure, store, clock=clock, catalogue=CATALOGUE, directory=cast_directory())
    ids = []
    for i in range(n):
        for command, actor, when in script_for(i):
            clock.set(when)
            record = engine.execute(command, by=actor.id)
        ids.append(record.id)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, one repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 7; --quick 1)")
    parser.add_argument("--lifecycles", type=int, default=None, help="consultations (default 300; --quick 8)")
    args = parser.parse_args(argv)
    reps: int = args.reps or (1 if args.quick else 7)
    n: int = args.lifecycles or (8 if args.quick else 300)
    started = time.perf_counter()
    print("consultflow verify benchmark" + (" (--quick smoke run: the figures mean nothing)" if args.quick else ""))
    print(describe_machine())
    print(package_versions("consultflow", "pydantic", "pydantic-core"))
    print(reference_speed())

    procedure = bench_procedure()
    procedures = {procedure.key: procedure}
    memory = cf.MemoryStore()
    ids = write(memory, n, procedure)
    logs = {cid: tuple(memory.entries(cid)) for cid in ids}
    records = {cid: memory.load(cid) for cid in ids}
    lines = {cid: [entry_json(e) for e in log] for cid, log in logs.items()}
    total = sum(len(log) for log in logs.values())

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "verify.db"
        with cf.SQLiteStore(path, synchronous="OFF") as sqlite:
            write(sqlite, n, procedure)
        reader = cf.SQLiteStore(path, readonly=True, cache_size=0)

        def chain() -> None:
            for cid in ids:
                r = records[cid]
                assert cf.verify(logs[cid], head=r.head, version=r.version).ok

        def stored() -> None:
            for cid in ids:
                r = records[cid]
                assert verify_stored(lines[cid], head=r.head, version=r.version).ok

        def replay() -> None:
            for cid in ids:
                assert verify_consultation(records[cid], logs[cid], procedures).ok

        def cli() -> None:
            for cid in ids:
                assert _check(reader, cid, procedures, []) is None

        definition = Path(tmp) / "procedure.json"  # the workers build the procedure from its definition
        definition.write_text(json.dumps(procedure.to_dict()), encoding="utf-8")

        def cli_workers() -> None:
            found, unreplayed = _check_in_processes(str(path), (str(definition),), ids, 2)
            assert not found
            assert not unreplayed

        scripts = [script_for(i) for i in range(n)]

        def core() -> None:
            run_core(procedure, scripts)

        ways: list[tuple[str, Callable[[], None]]] = [
            ("baseline: the pure core making the same steps", core),
            ("cf.verify: the chain of parsed entries", chain),
            ("verify_stored: the chain on the stored bytes", stored),
            ("verify by replay (Engine.verify)", replay),
            ("consultflow verify --db, per consultation", cli),
            ("the same, --workers 2 (both cores, pool start)", cli_workers),
        ]
        seconds: dict[str, list[float]] = {name: [] for name, _ in ways}
        for rep in range(reps + 1):  # the first round warms up and is not reported
            order = ways[rep % len(ways) :] + ways[: rep % len(ways)]
            for name, run in order:
                t = time.perf_counter()
                run()
                if rep:
                    seconds[name].append(time.perf_counter() - t)
        reader.close()

    print(f"workload: {n} consultations, {total} log entries ({total / n:.1f} per consultation); one core")
    print(f"median of {reps} interleaved repetitions (time.perf_counter)")
    print("")
    print(f"  {'check':<46} {'entries/s':>10} {'us/entry':>9}")
    for name, _ in ways:
        med = median(seconds[name])
        print(f"  {name:<46} {total / med:>10,.0f} {med / total * 1e6:>9.1f}")
    by_replay = total / median(seconds["verify by replay (Engine.verify)"])
    chain_only = total / median(seconds["cf.verify: the chain of parsed entries"])
    making = total / median(seconds["baseline: the pure core making the same steps"])
    print("")
    print(f"replay vs the chain alone: {by_replay / chain_only:.2f}x the rate")
    print(f"replay vs the pure core making the log: {by_replay / making:.2f}x the rate (replay is the core again)")
    verdict = "meets" if by_replay >= TARGET else "is below"
    print(f"verify by replay: {by_replay:,.0f} entries/s {verdict} the target of {TARGET:,} entries/s")
    print(f"(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
