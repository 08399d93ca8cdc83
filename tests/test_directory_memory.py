"""The directory conformance kit on ``MemoryDirectory``, the reference the others mean the same as."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consultflow import MemoryDirectory
from consultflow.testing import DirectoryContract


class TestMemoryDirectory(DirectoryContract):
    @pytest.fixture
    def directory(self) -> Iterator[MemoryDirectory]:
        d = MemoryDirectory()
        yield d
        d.close()
