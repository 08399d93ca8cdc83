"""Process workers of the conformance kit. They live in the package so a spawned process can
import them; each opens its own handle on the store with the opener it is given."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from typing import Any

from ..errors import Conflict
from ..storage.base import Store
from .steps import StepMaker

__all__ = ["lease_worker", "race_worker", "run_processes"]

Opener = Callable[[], Store]
Worker = Callable[[int, Opener, str, int, Barrier], Any]

_WAIT = 60.0


def race_worker(index: int, opener: Opener, cid: str, rounds: int, barrier: Barrier) -> list[tuple[int, int, str, str]]:
    """For each round: wait for all, load, make an opinion, wait for all, append. Returns
    (round, version loaded, "won" | "lost", the entry as JSON) per round."""
    store = opener()
    maker = StepMaker()
    rows: list[tuple[int, int, str, str]] = []
    try:
        for r in range(rounds):
            barrier.wait(_WAIT)
            record = store.load(cid)
            step = maker.opinion(record, f"proc{index}-r{r}")
            barrier.wait(_WAIT)
            try:
                store.append(step, record.version)
                outcome = "won"
            except Conflict:
                outcome = "lost"
            rows.append((r, record.version, outcome, step.entries[0].model_dump_json()))
    finally:
        store.close()
    return rows


def lease_worker(index: int, opener: Opener, cid: str, rounds: int, barrier: Barrier) -> list[str]:
    """Lease two at a time until nothing is left; returns the keys leased."""
    store = opener()
    now = datetime(2026, 5, 1, tzinfo=UTC)
    keys: list[str] = []
    try:
        barrier.wait(_WAIT)
        while batch := store.lease(2, now, timedelta(minutes=5)):
            keys.extend(n.key for n in batch)
    finally:
        store.close()
    return keys


def _main(worker: Worker, index: int, opener: Opener, cid: str, rounds: int, barrier: Barrier, out: Any) -> None:
    try:
        out.put((index, True, worker(index, opener, cid, rounds, barrier)))
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test with it
        barrier.abort()
        out.put((index, False, traceback.format_exc()))


def _context() -> Any:
    """Fresh processes that share nothing with the test process (no inherited connections):
    children of a fork server that has this module loaded (fast), or spawned where there is none."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def run_processes(count: int, worker: Worker, opener: Opener, cid: str, rounds: int, *, timeout: float) -> list[Any]:
    """Run ``worker`` in ``count`` spawned processes; their results in index order. Raises
    ``AssertionError`` with the child's traceback if one failed, or if they hang."""
    ctx = _context()
    barrier = ctx.Barrier(count)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_main, args=(worker, i, opener, cid, rounds, barrier, out), name=f"contract-{i}")
        for i in range(count)
    ]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    failures: list[str] = []
    try:
        for _ in range(count):
            try:
                index, ok, payload = out.get(timeout=timeout)
            except queue_module.Empty:
                raise AssertionError(f"store processes gave no answer within {timeout:.0f} s: a deadlock?") from None
            if ok:
                results[index] = payload
            else:
                failures.append(f"process {index} failed:\n{payload}")
    finally:
        for p in procs:
            p.join(timeout)
            if p.is_alive():
                p.kill()
                p.join()
    real = [f for f in failures if "BrokenBarrierError" not in f.splitlines()[-1]]
    if failures:
        raise AssertionError((real or failures)[0])
    return [results[i] for i in range(count)]


def run_threads(
    count: int,
    target: Callable[[int], None],
    barrier: threading.Barrier | None = None,
    *,
    what: str = "the store",
    timeout: float = 60.0,
) -> None:
    """Run ``target(i)`` in ``count`` threads; re-raise the first error any of them met (a broken
    barrier only if nothing else went wrong). ``what`` names the thing under test in a hang."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread and re-raised there
            errors.append(exc)
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=run, args=(i,), name=f"contract-{i}") for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if any(t.is_alive() for t in threads):
        raise AssertionError(f"threads still running after {timeout:.0f} s: {what} deadlocked or hangs")
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
