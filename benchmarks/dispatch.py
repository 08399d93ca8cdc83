"""Dispatch benchmark: what the outbox, the lease and the settle cost over posting by hand.

Run from the project root:

    .venv/bin/python benchmarks/dispatch.py            # the report, about 30 s on 2 shared vCPUs
    .venv/bin/python benchmarks/dispatch.py --quick    # smoke run, a few seconds

The workload: notices written by real steps (``consultflow.testing.StepMaker``: propose, notify,
open a round; two notices per consultation) into a SQLite store, delivered to a webhook receiver on
loopback (``http.server`` in a process of its own, HTTP/1.1 keep-alive, counting each ``webhook-id``). Printed, as
notices per second and as ratios, medians of interleaved repetitions:

- **plain httpx**: the same signed bodies (made up front by ``WebhookChannel.request``: headers,
  signature, JSON), posted one after another with one ``httpx.Client`` - what a hand-written loop
  with no outbox would do. The baseline.
- **dispatcher, 1**: one ``Dispatcher`` as it comes (the default batch, 100) with a ``WebhookChannel``
  on the same file: lease a batch, load its records, render both languages, sign and post each
  notice, settle the batch in one transaction. Target: at least 0.8 of plain httpx.
- **paired chunks** (the target's figure): the notices in chunks of ``--chunk`` (default 100, the
  default batch; each chunk is one batch), each chunk posted plain and delivered by one dispatcher
  back to back, so both see the same machine; the median of the per-chunk ratios, with quartiles and
  range, and the client's CPU per notice on each side.
- **own cost**: one dispatcher into a ``MemoryChannel`` (no network): what the outbox adds per
  notice, printed beside the time of one plain post.
- **dispatchers, 4**: four dispatchers on the same file, as threads of one process (each with its own
  store handle and channel) and as four processes (as ``consultflow dispatch`` runs): the leases
  keep them apart; every notice must arrive exactly once. Threads share one interpreter lock, so
  against a fast receiver four threads are no faster than one; processes are. And:
- **a slow receiver**: one that answers each post after ``--delay`` seconds (default 0.02, a backend
  across a network), 1 and 4 dispatchers: what running several dispatchers is for.

``synchronous=NORMAL`` (WAL) for the store, as for any outbox you can re-deliver from; ``--full``
adds the figure under ``FULL`` (a disk sync per settled batch). The script is a report: it exits 0
whether the target is met or not, and non-zero only if it breaks (a notice lost or sent twice).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx

from _common import describe_machine, package_versions
from consultflow.delivery import Dispatcher, MemoryChannel, Templates, WebhookChannel
from consultflow.delivery.channel import Delivery, Message
from consultflow.delivery.dispatcher import SINK
from consultflow.delivery.messages import _date
from consultflow.i18n import LANGS
from consultflow.storage.sqlite import SQLiteStore
from consultflow.testing import COMMUNITIES, TOPICS, StepMaker
from consultflow.testing import append as append_step

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TARGET = 0.8


class _Handler(BaseHTTPRequestHandler):
    """Accepts each ``webhook-id`` once and counts every request; ``GET`` reports the counts and
    ``DELETE`` clears them (the benchmark's check that nothing was lost or sent twice)."""

    protocol_version = "HTTP/1.1"
    delay: ClassVar[float] = 0.0  # seconds before each answer: a backend across a network
    seen: ClassVar[Counter[str]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.seen[self.headers.get("webhook-id", "")] += 1
        self._answer(200)

    def do_GET(self) -> None:
        self._answer(200, json.dumps(dict(self.seen)).encode())

    def do_DELETE(self) -> None:
        self.seen.clear()
        self._answer(200)


def _serve(ports: Any, delay: float) -> None:
    _Handler.delay = delay
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)  # a thread per connection (keep-alive)
    server.daemon_threads = True
    ports.put(server.server_address[1])
    server.serve_forever()


class Sink:
    """The receiver, in a process of its own (as a backend is): the client's costs are measured,
    not the receiver's competing for the same interpreter."""

    def __init__(self, delay: float = 0.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        ports = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(ports, delay), daemon=True)
        self.process.start()
        self.port = int(ports.get(timeout=60))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def seen(self) -> Counter[str]:
        return Counter(httpx.get(self.url, timeout=30).json())

    def reset(self) -> None:
        httpx.delete(self.url, timeout=30)

    def close(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


def make_file(path: Path, consultations: int, synchronous: Literal["FULL", "NORMAL"]) -> list[str]:
    """A store with ``consultations`` openings (two notices each); the notice keys."""
    maker = StepMaker()
    with SQLiteStore(path, synchronous=synchronous) as store:
        for i in range(consultations):
            cid = f"b{i:06d}"
            step = append_step(
                store, maker.propose(cid, community=COMMUNITIES[0], topic=TOPICS[0], title="停车 parking")
            )
            step = append_step(store, maker.notify(step.record, invite=("a", "b", "c")))
            append_step(store, maker.open_round(step.record))
        keys = [n.key for n in store.outbox()]
    return keys


def signed_requests(path: Path, channel: WebhookChannel) -> list[tuple[str, dict[str, str], bytes]]:
    """The exact requests the dispatcher sends (rendered in both languages, signed), made up front."""
    templates = Templates()
    out = []
    with SQLiteStore(path, readonly=True) as store:
        for notice in store.outbox():
            record = store.load(notice.consultation)
            messages: dict[str, Message] = {lang: templates.render(notice, record, lang) for lang in LANGS}
            delivery = Delivery(notice.key, notice, SINK, "", messages["zh"], messages)
            out.append(channel.request(delivery))
    return out


def run_plain(requests: list[tuple[str, dict[str, str], bytes]]) -> float:
    with httpx.Client(timeout=10) as client:
        start = time.perf_counter()
        for url, headers, body in requests:
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"the sink answered {response.status_code}")
        return time.perf_counter() - start


def _dispatch_process(path: Path, url: str, ready: Any, go: Any, done: Any) -> None:
    """One dispatcher in a process of its own (as ``consultflow dispatch`` runs), timed from ``go``."""
    with SQLiteStore(path, synchronous="NORMAL") as store:
        channel = WebhookChannel(url, SECRET, timeout=10)
        dispatcher = Dispatcher(store, sinks={"hook": channel}, lease_for=timedelta(minutes=5))
        ready.put(1)
        go.wait()
        dispatcher.run(until="ready")
        channel.close()
    done.put(1)


def run_processes(path: Path, url: str, n: int) -> float:
    """``n`` dispatchers, each in its own process on the same file; the seconds from the start
    signal (each has imported consultflow and opened the store) until the last one is done."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_dispatch_process, args=(path, url, ready, go, done)) for _ in range(n)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start = time.perf_counter()
    go.set()
    for _ in procs:
        done.get(timeout=600)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise SystemExit(f"a dispatcher process failed (exit {p.exitcode}): the benchmark is broken")
    return elapsed


def run_dispatchers(path: Path, url: str, n: int, synchronous: Literal["FULL", "NORMAL"]) -> float:
    stores = [SQLiteStore(path, synchronous=synchronous) for _ in range(n)]
    channels = [WebhookChannel(url, SECRET, timeout=10) for _ in range(n)]
    dispatchers = [
        Dispatcher(s, sinks={"hook": c}, lease_for=timedelta(minutes=5)) for s, c in zip(stores, channels, strict=True)
    ]
    threads = [threading.Thread(target=d.run, kwargs={"until": "ready"}) for d in dispatchers]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for d, s, c in zip(dispatchers, stores, channels, strict=True):
        d.close()
        c.close()
        s.close()
    return elapsed


def run_paired(
    path: Path, url: str, requests: list[tuple[str, dict[str, str], bytes]], chunk: int
) -> list[tuple[float, float, float, float]]:
    """The target's measure, robust to a machine whose load changes from second to second: the
    notices in chunks of ``chunk``, each chunk posted by plain httpx and delivered by one dispatcher
    back to back (the order alternating), so both halves of a pair see the same machine. Returns,
    per pair, seconds per notice: plain, dispatcher, and the CPU time this process spent per notice
    on each half (``time.process_time``: the client's work, whatever share of the machine it got).
    The dispatcher (as it comes, but for ``batch=chunk``) delivers in order from where it stopped:
    at least ``chunk`` notices a turn (its first lease is smaller, so its batches need not line up
    with the chunks), the last turn what is left."""
    store = SQLiteStore(path, synchronous="NORMAL")
    channel = WebhookChannel(url, SECRET, timeout=10)
    dispatcher = Dispatcher(store, sinks={"hook": channel}, batch=chunk, lease_for=timedelta(minutes=5))
    pairs: list[tuple[float, float, float, float]] = []
    counted = [0]
    with httpx.Client(timeout=10) as client:
        for i in range(0, len(requests) - chunk + 1, chunk):

            def plain(part: list[tuple[str, dict[str, str], bytes]] = requests[i : i + chunk]) -> float:
                start = time.perf_counter()
                for u, headers, body in part:
                    if client.post(u, content=body, headers=headers).status_code != 200:
                        raise RuntimeError("the sink refused a plain post")
                return time.perf_counter() - start

            def dispatched() -> float:
                start, done = time.perf_counter(), 0
                while done < chunk:
                    report = dispatcher.run_once()
                    if report.retried or report.dead or report.lost or report.released:
                        raise RuntimeError(f"the dispatcher did not deliver everything: {report}")
                    if not report.delivered:
                        break  # the outbox is done
                    done += report.delivered
                counted[0] = done  # none: its earlier turns took it all (a pace below chunk a batch)
                return time.perf_counter() - start

            def timed(run: Callable[[], float]) -> tuple[float, float]:
                cpu = time.process_time()
                wall = run()
                return wall, time.process_time() - cpu

            if (i // chunk) % 2:
                (d, dc), (p, pc) = timed(dispatched), timed(plain)
            else:
                (p, pc), (d, dc) = timed(plain), timed(dispatched)
            n = counted[0]
            if n:
                pairs.append((p / chunk, d / n, pc / chunk, dc / n))
    dispatcher.close()
    channel.close()
    store.close()
    return pairs


def run_memory(path: Path) -> float:
    """The dispatcher's own cost: the same work into a memory channel, no network."""
    channel = MemoryChannel()
    with SQLiteStore(path, synchronous="NORMAL") as store:
        dispatcher = Dispatcher(store, sinks={"m": channel})
        start = time.perf_counter()
        dispatcher.run(until="ready")
        elapsed = time.perf_counter() - start
        dispatcher.close()
        total = len(store.outbox())
    if len(channel.accepted) != total:
        raise SystemExit("memory channel: a notice was lost: the benchmark is broken")
    return elapsed


def slow_report(delay: float, consultations: int, reps: int) -> str:
    """1 and 4 dispatchers against a receiver that takes ``delay`` seconds an answer: the waits of
    four overlap, so four deliver about four times as fast (every notice once, as ever)."""
    slow = Sink(delay)
    try:
        with tempfile.TemporaryDirectory(prefix="consultflow-bench-slow-") as tmp:
            template = Path(tmp) / "template.db"
            keys = make_file(template, consultations, "NORMAL")
            rates: dict[int, list[float]] = {1: [], 4: []}
            for r in range(reps):
                for n in (1, 4) if r % 2 else (4, 1):
                    path = Path(tmp) / f"slow-{n}-{r}.db"
                    path.write_bytes(template.read_bytes())
                    slow.reset()
                    rates[n].append(len(keys) / run_dispatchers(path, slow.url, n, "NORMAL"))
                    check(slow, keys, f"slow receiver, {n} dispatcher(s)")
    finally:
        slow.close()
    one, four = statistics.median(rates[1]), statistics.median(rates[4])
    return (
        f"a receiver answering in {delay * 1e3:.0f} ms ({len(keys)} notices): 1 dispatcher {one:,.0f}/s, "
        f"4 dispatchers {four:,.0f}/s: {four / one:.2f}x"
    )


def forget() -> None:
    """Start each timed run cold: the deadlines the messages remember from an earlier run of the
    same notices would be a saving no real dispatcher sees."""
    _date.cache_clear()


def check(sink: Sink, keys: list[str], what: str, times: int = 1) -> None:
    """Every notice reached the sink ``times`` times (once per sender), none lost, none more."""
    seen = sink.seen
    if set(seen) != set(keys) or any(v != times for v in seen.values()):
        lost = len(set(keys) - set(seen))
        twice = sum(1 for v in seen.values() if v > times)
        raise SystemExit(f"{what}: {lost} notice(s) lost, {twice} sent twice: the benchmark is broken")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, one repetition")
    parser.add_argument("--consultations", type=int, default=500, help="two notices each (default 500)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="also measure with synchronous=FULL")
    parser.add_argument("--delay", type=float, default=0.02, help="the slow receiver's seconds per answer")
    parser.add_argument(
        "--chunk",
        type=int,
        default=100,
        help="notices per paired chunk, one batch each (default 100, the default batch)",
    )
    args = parser.parse_args(argv)
    consultations, reps = (30, 1) if args.quick else (args.consultations, args.reps)
    print("dispatch benchmark: notices/s to a loopback webhook (medians of interleaved repetitions)")
    print(describe_machine())
    print(package_versions("httpx", "consultflow"))
    modes: list[Literal["FULL", "NORMAL"]] = ["NORMAL", "FULL"] if args.full else ["NORMAL"]
    sink = Sink()
    with tempfile.TemporaryDirectory(prefix="consultflow-bench-") as tmp:
        template = Path(tmp) / "template.db"
        keys = make_file(template, consultations, "NORMAL")
        signer = WebhookChannel(sink.url, SECRET)
        requests = signed_requests(template, signer)
        signer.close()
        print(f"{len(keys)} notices ({consultations} consultations), {reps} repetition(s)\n")
        variants: dict[str, Callable[[int], float]] = {"plain httpx": lambda r: run_plain(requests)}
        for mode in modes:
            for n in (1, 4):

                def variant(r: int, n: int = n, mode: Literal["FULL", "NORMAL"] = mode) -> float:
                    path = Path(tmp) / f"run-{mode}-{n}-{r}.db"
                    path.write_bytes(template.read_bytes())
                    return run_dispatchers(path, sink.url, n, mode)

                variants[f"dispatcher x{n} ({mode})"] = variant

        def processes(r: int) -> float:
            path = Path(tmp) / f"run-processes-{r}.db"
            path.write_bytes(template.read_bytes())
            return run_processes(path, sink.url, 4)

        variants["dispatcher x4, processes"] = processes
        rates: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        own: list[float] = []
        pairs: list[tuple[float, float, float, float]] = []
        chunk = 20 if args.quick else args.chunk
        if chunk < 1 or len(keys) % chunk:
            parser.error(f"--chunk must divide the {len(keys)} notices")
        for r in range(reps):
            path = Path(tmp) / f"memory-{r}.db"
            path.write_bytes(template.read_bytes())
            forget()
            own.append(run_memory(path) / len(keys))
            path = Path(tmp) / f"paired-{r}.db"
            path.write_bytes(template.read_bytes())
            sink.reset()
            forget()
            pairs.extend(run_paired(path, sink.url, requests, chunk))
            check(sink, keys, "paired chunks", times=2)
            for name in names[r % len(names) :] + names[: r % len(names)]:
                sink.reset()
                forget()
                elapsed = variants[name](r)
                check(sink, keys, name)
                rates[name].append(len(keys) / elapsed)
    base = statistics.median(rates["plain httpx"])
    print(f"{'variant':<28} {'notices/s':>10} {'vs plain':>9}")
    for name in names:
        rate = statistics.median(rates[name])
        print(f"{name:<28} {rate:>10,.0f} {rate / base:>8.2f}x")
    one = statistics.median(rates["dispatcher x1 (NORMAL)"])
    four = statistics.median(rates["dispatcher x4 (NORMAL)"])
    ratios = sorted(p / d for p, d, _, _ in pairs)  # dispatcher's rate over plain's, per pair
    plain_cpu = statistics.median(pc for _, _, pc, _ in pairs)
    disp_cpu = statistics.median(dc for _, _, _, dc in pairs)
    q1, mid, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    print(
        f"\npaired chunks ({len(ratios)} pairs of {chunk} notices, plain and dispatcher back to back): "
        f"dispatcher / plain median {mid:.2f}x, quartiles {q1:.2f}-{q3:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}"
    )
    print(
        f"client CPU per notice (median over chunks): plain {plain_cpu * 1e6:.0f} us, dispatcher "
        f"{disp_cpu * 1e6:.0f} us: {plain_cpu / disp_cpu:.2f}x, the ratio when the client's CPU is the limit"
    )
    verdict = "met" if mid >= TARGET else "NOT met"
    print(f"target: one dispatcher >= {TARGET:.1f}x plain httpx (paired median): {verdict} ({mid:.2f}x)")
    print(f"whole runs, ratio of medians: {one / base:.2f}x")
    procs = statistics.median(rates["dispatcher x4, processes"])
    print(f"4 dispatchers vs 1: {four / one:.2f}x as threads of one process, {procs / one:.2f}x as processes")
    print(slow_report(args.delay, 10 if args.quick else 100, reps))
    post = 1 / base
    print(
        f"the dispatcher's own work per notice (lease, load, render zh+en, settle; memory channel): "
        f"{statistics.median(own) * 1e3:.2f} ms, against {post * 1e3:.2f} ms per plain post"
    )
    sink.close()
    if args.quick:
        print("(--quick: counts too small for the figures to mean anything)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
