"""Shared fixtures. Every test drives consultations with ``consultflow.testing.driver.Driver``: one
cast (``CAST``), one standard community, one clock policy (see the ``Driver`` docstring).

``driver`` is a fresh ``Driver()`` (the default six-step procedure); ``make_driver`` is ``Driver``
itself, for ``make_driver(procedure=..., **parameters)``. The six-step order oracle the tests check
logs against lives in ``tests/oracle.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consultflow.testing.driver import Driver


@pytest.fixture
def driver() -> Driver:
    return Driver()


@pytest.fixture
def make_driver() -> Callable[..., Driver]:
    """``make_driver(procedure=None, *, store=None, clock=None, start=T0, pace=PACE, **parameters)``."""
    return Driver
