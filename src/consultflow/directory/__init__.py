"""Who may act: the directory of who holds which role where (the one source of roles), and the
directories that ship with the library (in memory, in SQLite, in PostgreSQL). Conformance tests
for your own directory are in ``consultflow.testing`` (``DirectoryContract``)."""

from .base import (
    LEVEL_ROLES,
    Directory,
    Grant,
    Register,
    TrustCallerRoles,
    check_grant,
    district,
    level_of,
    sub_district,
)
from .memory import MemoryDirectory
from .postgres import PostgresDirectory
from .sqlite import SQLiteDirectory

__all__ = [
    "LEVEL_ROLES",
    "Directory",
    "Grant",
    "MemoryDirectory",
    "PostgresDirectory",
    "Register",
    "SQLiteDirectory",
    "TrustCallerRoles",
    "check_grant",
    "district",
    "level_of",
    "sub_district",
]
