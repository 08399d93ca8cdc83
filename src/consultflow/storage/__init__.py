"""Storage adapters behind one contract (``Store``)."""

from .base import Query, Settlement, Store
from .memory import MemoryStore

__all__ = ["MemoryStore", "Query", "Settlement", "Store"]
