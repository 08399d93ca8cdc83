"""Storage adapters behind one contract (``Store``)."""

from .base import Query, Settlement, Store
from .memory import MemoryStore
from .postgres import PostgresStore
from .sqlite import SQLiteStore

__all__ = ["MemoryStore", "PostgresStore", "Query", "SQLiteStore", "Settlement", "Store"]
