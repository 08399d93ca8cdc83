"""The store written in docs/storage.md ("Write your own store") passes the conformance kit, so
the walkthrough is tested."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from consultflow import Store
from consultflow.testing import StoreContract

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "json_store.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("json_store_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


json_store = _example()


class TestJsonStoreFromTheDocs(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        s = json_store.JsonStore()
        yield s
        s.close()


def test_the_example_is_a_store() -> None:
    assert isinstance(json_store.JsonStore(), Store)


def test_the_docs_show_the_example_as_it_is() -> None:
    """The walkthrough quotes the example file; they must not drift apart."""
    page = (EXAMPLE.parent.parent / "storage.md").read_text(encoding="utf-8")
    code = EXAMPLE.read_text(encoding="utf-8")
    body = code[code.index("class JsonStore:") :].strip()
    assert body in page, "docs/storage.md must show docs/examples/json_store.py's JsonStore verbatim"
