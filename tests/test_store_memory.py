"""The conformance kit on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consultflow import MemoryStore
from consultflow.testing import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        s = MemoryStore()
        yield s
        s.close()
