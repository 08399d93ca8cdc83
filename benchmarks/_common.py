"""What both benchmarks print about where they ran, and how they summarise repeated timings."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["describe_machine", "git_commit", "median", "package_versions", "spread"]

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


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], fmt: str = ",.0f") -> str:
    """``(min-max)`` of repeated figures, or nothing for a single one."""
    if len(values) < 2:
        return ""
    return f"({min(values):{fmt}}-{max(values):{fmt}})"
