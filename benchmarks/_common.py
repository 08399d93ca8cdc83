"""What both benchmarks print about where they ran, and how they summarise repeated timings."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["describe_machine", "git_commit", "median", "package_versions", "reference_speed", "spread"]

_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """The commit the working tree is on, with ``+changes`` when files differ from it; ``unknown``
    without git. Read-only: ``GIT_OPTIONAL_LOCKS=0`` keeps ``git status`` from refreshing the index."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            check=False,
            cwd=_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if head.returncode != 0:
            return "unknown"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False,
            cwd=_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = status.returncode == 0 and bool(status.stdout.strip())
    return head.stdout.strip() + (" +changes" if dirty else "")


def package_versions(*names: str) -> str:
    out = []
    for name in names:
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} ?")
    return ", ".join(out)


def describe_machine() -> str:
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, commit {git_commit()}"
    )


# a log entry's shape and size (about 800 bytes of JSON), for ``reference_speed``
_REFERENCE = {
    "actor": "#0",
    "at": "2026-03-11T11:00:00.000000Z",
    "commitment": "sha256:" + "0" * 64,
    "consultation": "taoyuan-2026-001",
    "data": {"round": 2, "stance": "support", "text": "停车位不够，晚上车停到消防通道上了" * 3},
    "event": "opinion_recorded",
    "from": "consulting",
    "input": {"actor_roles": ["resident"], "command": {"command": "record_opinion", "stance": "support"}, "people": {}},
    "prev": "1" * 64,
    "private": ["text"],
    "record_digest": "",
    "role": "resident",
    "schema_version": 9,
    "seq": 12,
    "to": "consulting",
}


def reference_speed() -> str:
    """How fast this machine is at fixed reference work, so that absolute figures can be set beside
    another machine's: the standard library's C JSON encoder writing one log entry's shape (sorted
    keys, about 800 bytes), its SHA-256, and a pure-Python loop over a dict (best of 300 each)."""
    encoder = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = encoder.encode(_REFERENCE).encode()
    table = {i: i for i in range(100)}

    def python_loop() -> int:
        return sum(table[i] for i in range(100))

    def best(work: Callable[[], object]) -> float:
        found = float("inf")
        for _ in range(300):
            t = time.perf_counter()
            work()
            found = min(found, time.perf_counter() - t)
        return found * 1e6

    encode = best(lambda: encoder.encode(_REFERENCE))
    digest = best(lambda: hashlib.sha256(text).hexdigest())
    loop = best(python_loop)
    return (
        f"reference work on this machine (best of 300): JSON of a {len(text)}-byte entry {encode:.1f} us, "
        f"its SHA-256 {digest:.1f} us, a 100-item Python dict loop {loop:.1f} us"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], fmt: str = ",.0f") -> str:
    """``(min-max)`` of repeated figures, or nothing for a single one."""
    if len(values) < 2:
        return ""
    return f"({min(values):{fmt}}-{max(values):{fmt}})"
