"""The conformance kit for store adapters, shipped with the library (needs pytest).

Run it on your store by subclassing ``StoreContract`` in a test module::

    import pytest
    from consultflow.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path / "data")
            yield s
            s.close()

``StepMaker`` makes real steps with the core (for your own store tests); ``append`` appends one at
the version it was made from. See ``docs/storage.md``.
"""

from .contract import StoreContract, StoreOpener
from .steps import COMMITTEE, COMMUNITIES, PROPOSER, TOPICS, StepMaker, append, conformance_procedure

__all__ = [
    "COMMITTEE",
    "COMMUNITIES",
    "PROPOSER",
    "TOPICS",
    "StepMaker",
    "StoreContract",
    "StoreOpener",
    "append",
    "conformance_procedure",
]
