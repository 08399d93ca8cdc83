"""Kits for testing with consultflow: a driver for consultations, and the conformance kits for
store adapters and directories.

``Driver`` runs the six steps through a real engine with a cast and one clock policy (see
``consultflow.testing.driver``); it needs nothing beyond consultflow. ``StepMaker`` makes real steps
with the core (for your own store tests); ``append`` appends one at the version it was made from.

The conformance kits need pytest (``pip install 'consultflow[testing]'``); they are loaded only when
``StoreContract``, ``StoreOpener`` or ``DirectoryContract`` is asked for. Run the store kit on your
store by subclassing ``StoreContract`` in a test module::

    import pytest
    from consultflow.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path / "data")
            yield s
            s.close()

See ``docs/storage.md``. ``DirectoryContract`` does the same for a directory (who holds which
role where): subclass it and give it a ``directory`` fixture. ``ChannelContract`` does it for a
notification channel: give it ``channel`` and ``received`` fixtures (docs/notifications.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .driver import CAST, STATES, ClockPolicy, Driver
from .steps import COMMITTEE, COMMUNITIES, PROPOSER, TOPICS, StepMaker, append, conformance_procedure

if TYPE_CHECKING:
    from .channel_contract import ChannelContract
    from .contract import StoreContract, StoreOpener
    from .directory_contract import DirectoryContract

__all__ = [
    "CAST",
    "COMMITTEE",
    "COMMUNITIES",
    "PROPOSER",
    "STATES",
    "TOPICS",
    "ChannelContract",
    "ClockPolicy",
    "DirectoryContract",
    "Driver",
    "StepMaker",
    "StoreContract",
    "StoreOpener",
    "append",
    "conformance_procedure",
]

# name -> the module of the kit that defines it
_LAZY = {
    "StoreContract": "contract",
    "StoreOpener": "contract",
    "DirectoryContract": "directory_contract",
    "ChannelContract": "channel_contract",
}


def __getattr__(name: str) -> Any:
    """The conformance kits (``StoreContract``, ``StoreOpener``, ``DirectoryContract``,
    ``ChannelContract``) import pytest: load them on first use (PEP 562)."""
    if name in _LAZY:
        try:
            kit = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        except ImportError as exc:
            raise ImportError(
                f"consultflow.testing.{name} is the conformance kit, which runs under pytest: "
                "pip install 'consultflow[testing]'"
            ) from exc
        value = getattr(kit, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
