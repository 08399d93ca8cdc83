"""Storage adapters behind one contract (``Store``), and what an adapter author needs.

- ``Store`` (the protocol), ``Query``, ``Settlement``;
- the shipped stores: ``MemoryStore``, ``SQLiteStore`` (the embedded default), ``PostgresStore``;
- ``checks``: the checks every store makes the same way (``check_step``, ``check_settlement``, ...);
- ``encoding``: the JSON a store writes (``entry_json``, ``RecordEncoder``);
- ``ledger``: the fund ledger (微幸福台账) a store keeps beside the log (``FundLedger``, ``FundBook``);
- the conformance kit that proves an adapter right is ``consultflow.testing.StoreContract``
  (``pip install 'consultflow[testing]'``).

Nothing here imports the core, the procedure or the engine: a store sees records, log entries,
notices and the ``Step`` that carries them.
"""

from . import checks, encoding
from .base import Query, Settlement, Store
from .checks import check_settlement, check_step
from .encoding import RecordEncoder, entry_json
from .ledger import FundBook, FundLedger
from .memory import MemoryStore
from .postgres import PostgresStore
from .sqlite import SQLiteStore

__all__ = [
    "FundBook",
    "FundLedger",
    "MemoryStore",
    "PostgresStore",
    "Query",
    "RecordEncoder",
    "SQLiteStore",
    "Settlement",
    "Store",
    "check_settlement",
    "check_step",
    "checks",
    "encoding",
    "entry_json",
]
