"""Kits for testing with consultflow: a driver for consultations, and the conformance kit for
store adapters.

``Driver`` runs the six steps through a real engine with a cast and one clock policy (see
``consultflow.testing.driver``); it needs nothing beyond consultflow. ``StepMaker`` makes real steps
with the core (for your own store tests); ``append`` appends one at the version it was made from.

The conformance kit needs pytest (``pip install 'consultflow[testing]'``); it is loaded only when
``StoreContract`` or ``StoreOpener`` is asked for. Run it on your store by subclassing
``StoreContract`` in a test module::

    import pytest
    from consultflow.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path / "data")
            yield s
            s.close()

See ``docs/storage.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .driver import CAST, STATES, ClockPolicy, Driver
from .steps import COMMITTEE, COMMUNITIES, PROPOSER, TOPICS, StepMaker, append, conformance_procedure

if TYPE_CHECKING:
    from .contract import StoreContract, StoreOpener

__all__ = [
    "CAST",
    "COMMITTEE",
    "COMMUNITIES",
    "PROPOSER",
    "STATES",
    "TOPICS",
    "ClockPolicy",
    "Driver",
    "StepMaker",
    "StoreContract",
    "StoreOpener",
    "append",
    "conformance_procedure",
]

_LAZY = frozenset({"StoreContract", "StoreOpener"})


def __getattr__(name: str) -> Any:
    """``StoreContract`` and ``StoreOpener`` import pytest: load them on first use (PEP 562)."""
    if name in _LAZY:
        try:
            from . import contract
        except ImportError as exc:
            raise ImportError(
                f"consultflow.testing.{name} is the conformance kit, which runs under pytest: "
                "pip install 'consultflow[testing]'"
            ) from exc
        value = getattr(contract, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
