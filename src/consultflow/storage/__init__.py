"""Storage adapters behind one contract (``Store``)."""

from .base import Query, Settlement, Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["MemoryStore", "Query", "SQLiteStore", "Settlement", "Store"]
