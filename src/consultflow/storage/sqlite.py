"""The SQLite store: the embedded default, on the standard library's ``sqlite3``.

- **One file, WAL.** Readers never block the writer nor each other; writers take the lock up front
  (``BEGIN IMMEDIATE``) and wait for each other up to ``busy_timeout`` seconds, then get
  ``StoreUnavailable`` (nothing written; retry). Several processes may share the file (on a local
  disk: WAL needs shared memory, so not on a network file system).
- **Durable by default.** ``synchronous="FULL"`` syncs the WAL on every commit: an acknowledged
  step survives a power cut, which is what an audit trail needs. ``"NORMAL"`` (still crash-safe for
  the process, may lose the last commits on power loss) and ``"OFF"`` are for bulk work and
  simulations. See ``docs/storage.md``.
- **Thread-safe.** The store keeps a small pool of connections; each call borrows one for its
  duration, so threads never share a connection and readers run in parallel. After ``fork`` the
  child opens fresh connections (it never touches the parent's).
- **Schema on first use**, with a version table (``consultflow_schema``) and an upgrade path:
  ``MIGRATIONS`` lists every change; opening a file applies the missing ones in one transaction. A
  file written by a newer consultflow is refused rather than damaged.
- **Records as JSON** (pydantic), with the columns queries need beside them: times as integer
  microseconds since 1970 UTC, so order and comparisons are by instant whatever the time zone.

Every ``sqlite3`` error comes out as the library's own: ``Conflict``, ``NotFound``,
``IntegrityError`` (the file holds something consultflow did not write) or ``StoreUnavailable``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal, Self

import attrs

from ..canonical import record_digest
from ..errors import (
    Conflict,
    ConsultflowError,
    FundConflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from ..funds import FundPosition, LedgerRow, position_of
from ..log import LogEntry, verify_stored
from ..notices import Notice, NoticeStatus, reminder_deadline
from ..records import SCHEMA_VERSION as ENTRY_SCHEMA
from ..records import Consultation
from ..step import Step
from ..vocabulary import Event
from .base import Query, Settlement, SettleOrder
from .checks import (
    check_aware,
    check_count,
    check_enqueue,
    check_key,
    check_notice_status,
    check_position,
    check_settlement,
    check_step,
    closed_error,
    lease_until,
    not_dead_error,
    unsettled_error,
)
from .encoding import RecordEncoder, entry_json
from .ledger import step_rows

__all__ = [
    "MIGRATIONS",
    "RECORD_CHANGED",
    "SCHEMA_VERSION",
    "Audited",
    "Finding",
    "Migration",
    "SQLiteFile",
    "SQLiteStore",
    "Synchronous",
    "migrate",
    "run_migrations",
]

Synchronous = Literal["FULL", "NORMAL", "OFF"]


@attrs.frozen(slots=True)
class Migration:
    """One step of the schema: its version, what it does, its statements (run in one transaction)."""

    version: int
    description: str
    statements: tuple[str, ...]


#: Every schema change, oldest first. Append a new ``Migration`` to change the schema; never edit
#: one that has shipped. Opening a file applies those it lacks.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "consultations, log entries and outbox",
        (
            """CREATE TABLE consultations (
                id          TEXT PRIMARY KEY,
                community   TEXT NOT NULL,
                state       TEXT NOT NULL,
                topic       TEXT NOT NULL,
                carrier     TEXT NOT NULL,
                next_due    INTEGER,
                proposed_at INTEGER NOT NULL,
                version     INTEGER NOT NULL CHECK (version >= 1),
                head        TEXT NOT NULL,
                record      TEXT NOT NULL
            )""",
            """CREATE TABLE entries (
                consultation TEXT NOT NULL,
                seq          INTEGER NOT NULL CHECK (seq >= 1),
                hash         TEXT NOT NULL,
                prev         TEXT NOT NULL,
                body         TEXT NOT NULL,
                PRIMARY KEY (consultation, seq)
            )""",
            """CREATE TABLE outbox (
                key          TEXT PRIMARY KEY,
                consultation TEXT NOT NULL,
                seq          INTEGER NOT NULL,
                status       TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'delivered', 'dead')),
                attempts     INTEGER NOT NULL DEFAULT 0,
                not_before   INTEGER,
                last_error   TEXT NOT NULL DEFAULT '',
                notice       TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "indexes for find() and lease()",
        (
            "CREATE INDEX consultations_by_time ON consultations (proposed_at, id)",
            "CREATE INDEX consultations_by_community ON consultations (community, proposed_at, id)",
            "CREATE INDEX consultations_by_state ON consultations (state, proposed_at, id)",
            "CREATE INDEX consultations_by_topic ON consultations (topic)",
            "CREATE INDEX consultations_by_due ON consultations (next_due) WHERE next_due IS NOT NULL",
            "CREATE INDEX outbox_ready ON outbox (not_before) WHERE status IN ('pending', 'leased')",
        ),
    ),
    Migration(
        3,
        "the fund ledger (微幸福台账): a row per funds_allocated, funds_spent and funds_released entry",
        (
            """CREATE TABLE fund_ledger (
                consultation TEXT NOT NULL,
                entry        INTEGER NOT NULL,
                community    TEXT NOT NULL,
                year         INTEGER NOT NULL,
                kind         TEXT NOT NULL CHECK (kind IN ('allocated', 'spent', 'released')),
                amount       TEXT NOT NULL,
                over         TEXT NOT NULL DEFAULT '0',
                seq          INTEGER CHECK (seq IS NULL OR seq >= 1),
                pool         TEXT,
                PRIMARY KEY (consultation, entry)
            )""",
            # two allocations from one community's pool for one year never take the same place
            "CREATE UNIQUE INDEX fund_ledger_allocation ON fund_ledger (community, year, seq) WHERE seq IS NOT NULL",
            "CREATE INDEX fund_ledger_year ON fund_ledger (community, year)",
        ),
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION: int = MIGRATIONS[-1].version

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS consultflow_schema (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ALLOCATED, _SPENT, _RELEASED = Event.FUNDS_ALLOCATED, Event.FUNDS_SPENT, Event.FUNDS_RELEASED
_MICRO = timedelta(microseconds=1)


def _us(value: datetime) -> int:
    """Microseconds since 1970 UTC: one integer per instant, whatever the time zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"times must be aware datetimes (with a time zone), got {value!r}")
    return (value - _EPOCH) // _MICRO


def _dt(value: int) -> datetime:
    return _EPOCH + value * _MICRO


@attrs.frozen(slots=True)
class Finding:
    """A problem ``SQLiteStore.audit`` found: which consultation, which entry (``seq``; ``None``
    when the record itself is at fault) and why."""

    consultation: str
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"consultation {self.consultation!r}"
        if self.seq is not None:
            where += f", entry seq {self.seq}"
        return f"{where}: {self.reason}"


@attrs.frozen(slots=True)
class Audited:
    """What ``SQLiteStore.audit_consultation`` read of one consultation and held: the record (it parses
    and agrees with its columns), the entries (each row exactly its entry's canonical bytes, the
    chain verified on those bytes against the record's head and version) and the outbox notices
    (``None`` when the audit stopped before reading them). ``verify`` replays from these, so nothing
    is read, parsed or hashed twice."""

    record: Consultation
    entries: tuple[LogEntry, ...]
    outbox: tuple[Notice, ...] | None


#: The finding for a record whose digest is not the one its last log entry binds.
RECORD_CHANGED = "the record is not the one its last log entry was written with: it was changed"

_COLUMNS = (
    "community = ?, state = ?, topic = ?, carrier = ?, next_due = ?, proposed_at = ?, version = ?, head = ?, record = ?"
)
_INSERT_NEW = """INSERT INTO consultations
    (id, community, state, topic, carrier, next_due, proposed_at, version, head, record)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"""
_UPDATE_IF_CURRENT = f"UPDATE consultations SET {_COLUMNS} WHERE id = ? AND version = ? AND head = ?"
_UPSERT = """INSERT INTO consultations
    (id, community, state, topic, carrier, next_due, proposed_at, version, head, record)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
    community = excluded.community, state = excluded.state, topic = excluded.topic,
    carrier = excluded.carrier, next_due = excluded.next_due, proposed_at = excluded.proposed_at,
    version = excluded.version, head = excluded.head, record = excluded.record"""
_LOAD = """SELECT version, head, CASE WHEN version = ? AND head = ? THEN NULL ELSE record END
    FROM consultations WHERE id = ?"""
#: The ready notices, oldest first, read through the index of pending and leased ones: without
#: statistics (a file nobody ran ANALYZE on) SQLite's planner scanned the whole outbox instead, every
#: delivered notice ever included, at each lease (40 ms a lease with 200,000 delivered ones).
_LEASE = """SELECT rowid, attempts, last_error, notice FROM outbox INDEXED BY outbox_ready
    WHERE status IN ('pending', 'leased') AND (not_before IS NULL OR not_before <= ?)
    ORDER BY rowid LIMIT ?"""
#: ``load_many``: each wanted (id, cached version, cached head), and the record's JSON only where the
#: cached one is not the stored one.
_LOAD_MANY = """WITH wanted(id, version, head) AS (VALUES {})
    SELECT c.id, c.version, c.head, CASE WHEN c.version = w.version AND c.head = w.head THEN NULL ELSE c.record END
    FROM wanted w JOIN consultations c ON c.id = w.id"""
_MANY = 200
_INSERT_ENTRY = "INSERT INTO entries (consultation, seq, hash, prev, body) VALUES (?, ?, ?, ?, ?)"
_INSERT_LEDGER = """INSERT INTO fund_ledger (consultation, entry, community, year, kind, amount, over, seq, pool)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_INSERT_NOTICE = """INSERT INTO outbox (key, consultation, seq, status, attempts, not_before, last_error, notice)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""


class SQLiteFile:
    """One SQLite file's connections, for the store and the directory alike: a pool safe across
    threads and ``fork`` (a child never uses nor closes its parent's connections), write
    transactions that take the lock at once (``BEGIN IMMEDIATE``), and every ``sqlite3`` error
    translated into the library's."""

    _kind = "store"  # what the messages call the owner
    _integrity_hint = " (a duplicate key or a forged step?)"

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Synchronous, busy_timeout: float, readonly: bool
    ) -> None:
        name = type(self).__name__
        if not isinstance(path, str | os.PathLike):
            raise InvalidInput(f"{name} needs a file path (str or Path), not {type(path).__name__}")
        text = os.fspath(path)
        if not isinstance(text, str):
            raise InvalidInput(f"{name} needs a text path, not {type(text).__name__}")
        if text in {"", ":memory:"} or text.startswith("file:"):
            twin = "Memory" + name.removeprefix("SQLite")
            raise InvalidInput(
                f"{name} needs a file path, got {text!r}; for a {self._kind} in memory use consultflow.{twin}"
            )
        sync = str(synchronous).upper()
        if sync not in {"FULL", "NORMAL", "OFF"}:
            raise InvalidInput(f"synchronous must be 'FULL' (default), 'NORMAL' or 'OFF', not {synchronous!r}")
        if not isinstance(busy_timeout, int | float) or busy_timeout < 0:
            raise InvalidInput(f"busy_timeout is in seconds and cannot be negative: {busy_timeout!r}")
        self.path = Path(text)
        self.synchronous: Synchronous = sync  # type: ignore[assignment]  # checked just above
        self.busy_timeout = float(busy_timeout)
        self.readonly = readonly
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._forked: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (in-use ones when their call ends). Further calls raise
        ``StoreUnavailable``. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            mine = os.getpid() == self._pid
        if mine:
            for conn in idle:
                conn.close()

    # ---- connections ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        with self._lock:
            if self._closed:
                raise closed_error(self)

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            return self._connect_readonly()
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        """Read-only: ``mode=ro`` (it sees what other processes commit). A copy on read-only media
        or in a directory this user cannot write cannot keep WAL's shared-memory file; it is opened
        ``immutable`` instead - safe because nothing else writes a read-only copy - unless a
        non-empty ``-wal`` file holds commits that only a WAL reader would see."""
        uri = self.path.resolve().as_uri()
        timeout = self.busy_timeout
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                uri + "?mode=ro", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
            if "unable to open" not in str(exc).lower() and "readonly" not in str(exc).lower():
                raise
            wal = Path(f"{self.path}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise StoreUnavailable(
                    f"{self.path} cannot be read here: its write-ahead log {wal.name} holds commits and this "
                    "directory is not writable (WAL readers need it); copy both files to a writable directory"
                ) from exc
        return sqlite3.connect(
            uri + "?mode=ro&immutable=1", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for one call; every ``sqlite3`` error leaves as a library error."""
        with self._lock:
            if self._closed:
                raise closed_error(self)
            if os.getpid() != self._pid:
                # Forked: the parent's connections must never be used, nor closed, here.
                self._forked.extend(self._idle)
                self._idle = []
                self._pid = os.getpid()
            conn = self._idle.pop() if self._idle else None
        healthy = True
        try:
            if conn is None:
                conn = self._connect()
            yield conn
        except sqlite3.Error as exc:
            healthy = False
            raise self._error(exc) from exc
        except UnicodeError as exc:  # a safety net: every text is checked before it gets here
            raise InvalidInput(f"text that is not valid Unicode cannot be stored ({exc})") from exc
        finally:
            if conn is not None:
                self._release(conn, healthy)

    def _release(self, conn: sqlite3.Connection, healthy: bool) -> None:
        with self._lock:
            if healthy and not self._closed and os.getpid() == self._pid and not conn.in_transaction:
                self._idle.append(conn)
                return
        if os.getpid() == self._pid:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: the write lock is taken at once (``BEGIN IMMEDIATE``)."""
        if self.readonly:
            raise StoreUnavailable(f"{self!r} was opened read-only; open it without readonly=True to write")
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _error(self, exc: sqlite3.Error) -> ConsultflowError:
        message = str(exc)
        low = message.lower()
        if isinstance(exc, sqlite3.IntegrityError):
            return IntegrityError(f"{self.path}: {message}; nothing was written{self._integrity_hint}")
        if "locked" in low or "busy" in low:
            return StoreUnavailable(
                f"{self.path} stayed locked by another writer for busy_timeout={self.busy_timeout:g}s; "
                f"nothing was written - retry, or open the {self._kind} with a longer busy_timeout"
            )
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return IntegrityError(
                f"{self.path} is not a readable SQLite database ({message}); restore it from a backup, "
                "or check the path"
            )
        if "unable to open" in low or "readonly" in low or "read-only" in low:
            return StoreUnavailable(
                f"cannot open or write {self.path} ({message}); check the path exists and is writable"
            )
        if "no such table" in low:
            return StoreUnavailable(f"{self.path} lost the {self._kind}'s tables ({message}); open the file again")
        if "disk" in low and "full" in low:
            return StoreUnavailable(f"{self.path}: the disk is full ({message}); nothing was written")
        if isinstance(exc, sqlite3.ProgrammingError):
            return StoreUnavailable(f"{self.path}: {message}; open a new {self._kind}")
        return StoreUnavailable(f"SQLite failed on {self.path}: {message}; the operation may be retried")


class SQLiteStore(SQLiteFile):
    """Consultations, logs and outbox in one SQLite file. See the module docstring for the settings.

    ``SQLiteStore("consult.db")`` creates the file and its schema on first use. ``readonly=True``
    opens an existing file without writing anything (no schema upgrade either): for ``verify`` and
    inspection. ``cache_size`` records (default 256, 0 for none) are kept parsed: ``load`` and
    ``find`` hand back the record this store last wrote or read when the stored version and head
    are still the same, instead of parsing its JSON again (records are immutable). ``audit``
    always reads the file itself.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 5.0,
        readonly: bool = False,
        cache_size: int = 256,
    ) -> None:
        super().__init__(path, synchronous=synchronous, busy_timeout=busy_timeout, readonly=readonly)
        self._cache: OrderedDict[str, Consultation] = OrderedDict()
        self._cache_size = max(int(cache_size), 0)
        self._encoder = RecordEncoder(self._cache_size)
        if readonly and not self.path.exists():
            raise StoreUnavailable(
                f"no SQLite file at {self.path}; check the path (read-only stores are never created)"
            )
        try:
            with self._conn() as conn:
                self._prepare(conn)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    # ---- schema ---------------------------------------------------------------------------------
    def _prepare(self, conn: sqlite3.Connection) -> None:
        if self.readonly:
            version = self._schema_version(conn)
            if version == 0:
                raise StoreUnavailable(f"{self.path} is not a consultflow store (no consultflow tables)")
            if version != SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"{self.path} has schema version {version}, this consultflow reads {SCHEMA_VERSION}; "
                    "open it once without readonly=True to upgrade it"
                )
            return
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(
                f"{self.path} cannot use write-ahead logging (journal_mode={mode}); use a local disk"
            )
        migrate(conn, self.path)

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'consultflow_schema'"
        ).fetchone()
        if exists is None:
            return 0
        row = conn.execute("SELECT max(version) FROM consultflow_schema").fetchone()
        return int(row[0] or 0)

    def schema_version(self) -> int:
        """The schema version of the file (``SCHEMA_VERSION`` once opened writable)."""
        with self._conn() as conn:
            return self._schema_version(conn)

    def settings(self) -> dict[str, object]:
        """What the file and a connection run with: journal mode, synchronous, busy timeout (ms),
        schema version. For diagnostics and tests."""
        with self._conn() as conn:
            sync = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            return {
                "journal_mode": str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower(),
                "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync)),
                "busy_timeout_ms": int(conn.execute("PRAGMA busy_timeout").fetchone()[0]),
                "schema_version": self._schema_version(conn),
            }

    # ---- the contract ---------------------------------------------------------------------------
    def load(self, consultation: str) -> Consultation:
        check_key(consultation, "load(consultation)")
        # The record's JSON is read only when the cached record is not the stored one.
        with self._lock:
            cached = self._cache.get(consultation)
        version, head = (cached.version, cached.head) if cached is not None else (-1, "")
        with self._conn() as conn:
            row = conn.execute(_LOAD, (version, head, consultation)).fetchone()
        if row is None:
            raise NotFound(consultation)
        if row[2] is None and cached is not None:
            return cached
        return self._record(consultation, row[2], row[0], row[1])

    def load_many(self, consultations: Iterable[str]) -> dict[str, Consultation]:
        """The records of ``consultations`` that exist, by id, in one query (a dispatcher's batch names
        several); what ``load`` would give for each, an id not stored is left out. A cached record's
        JSON is not read when it is the stored one, as in ``load``."""
        ids = list(dict.fromkeys(check_key(c, "load_many(consultations)") for c in consultations))
        if not ids:
            self._check_open()
            return {}
        with self._lock:
            cached = [self._cache.get(cid) for cid in ids]
        wanted = [
            v for cid, c in zip(ids, cached, strict=True) for v in (cid, *((c.version, c.head) if c else (-1, "")))
        ]
        out: dict[str, Consultation] = {}
        with self._conn() as conn:
            for start in range(0, len(ids), _MANY):  # at most _MANY ids (3 parameters each) a query
                part = wanted[start * 3 : (start + _MANY) * 3]
                sql = _LOAD_MANY.format(", ".join(["(?, ?, ?)"] * (len(part) // 3)))
                for cid, version, head, text in conn.execute(sql, part).fetchall():
                    out[cid] = self._cache_or_parse(cid, version, head, text)
        return out

    def _cache_or_parse(self, cid: str, version: int, head: str, text: str | None) -> Consultation:
        if text is None:  # the query saw the cached record is the stored one
            with self._lock:
                cached = self._cache.get(cid)
            if cached is not None and cached.version == version and cached.head == head:
                return cached
            return self.load(cid)  # another thread changed the cache since the query: read it again
        return self._record(cid, text, version, head)

    def append(self, step: Step, expected_version: int) -> None:
        """One step, one transaction, no read before the write: the version check is the ``WHERE``
        of the record's own ``UPDATE`` (or the ``INSERT`` of a new one), so a stale writer changes
        no row and the transaction is rolled back before its entries are written."""
        try:
            (record_row,), entries, notices = _rows(((step, expected_version),), self._encoder.encode)[1:]
        except ConsultflowError:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"this step cannot be stored ({exc}); build steps with consultflow.apply") from exc
        cid = step.record.id
        prev = step.entries[0].prev if step.entries else ""
        ledger = _has_funds(step)
        with self._transaction() as conn:  # an exception rolls everything back
            if expected_version == 0:
                written = conn.execute(_INSERT_NEW, record_row).rowcount
            else:
                written = conn.execute(_UPDATE_IF_CURRENT, (*record_row[1:], cid, expected_version, prev)).rowcount
            if written != 1:
                raise self._why_not(conn, cid, expected_version)
            # the row matched version and head; a new record's chain must start from nothing
            check_step(step, expected_version, "" if expected_version == 0 else prev)
            conn.executemany(_INSERT_ENTRY, entries)
            if notices:
                self._insert_notices(conn, notices)
            if ledger:
                self._insert_ledger(conn, ((step, expected_version),))
        self._remember((step.record,))

    @staticmethod
    def _why_not(conn: sqlite3.Connection, cid: str, expected: int) -> ConsultflowError:
        """Why a conditional write changed no row: someone else's version, or a forged chain."""
        row = conn.execute("SELECT version FROM consultations WHERE id = ?", (cid,)).fetchone()
        if row is None or int(row[0]) != expected:
            return Conflict(cid, expected, None if row is None else int(row[0]))
        return IntegrityError(
            f"step for {cid!r} does not continue its log at version {expected}: its first entry's prev is "
            "not the stored head; nothing was written"
        )

    @staticmethod
    def _insert_notices(conn: sqlite3.Connection, notices: list[_NoticeRow]) -> None:
        try:
            conn.executemany(_INSERT_NOTICE, notices)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(
                f"a notice key of this step is already in the outbox ({exc}); keys must be unique "
                "(they are the idempotency keys channels deliver by); nothing was written"
            ) from exc

    @staticmethod
    def _insert_ledger(conn: sqlite3.Connection, steps: Iterable[tuple[Step, int]]) -> None:
        """The fund ledger's rows of the steps (微幸福), in their transaction. An allocation whose
        place in its year's ledger is taken lost a race: ``FundConflict``, nothing written."""
        for step, expected in steps:
            for r in step_rows(step):
                row = (
                    r.consultation, r.entry, r.community, r.year, r.kind, str(r.amount), str(r.over), r.seq,
                    None if r.pool is None else str(r.pool),
                )  # fmt: skip
                try:
                    conn.execute(_INSERT_LEDGER, row)
                except sqlite3.IntegrityError as exc:
                    if r.seq is not None and _seq_taken(conn, r):
                        raise FundConflict(step.record.id, expected, r.community, r.year, r.seq) from exc
                    raise

    def fund_position(self, community: str, year: int) -> FundPosition:
        """What the fund ledger holds for (community, year) (微幸福; ``storage.ledger.FundLedger``)."""
        check_key(community, "fund_position(community)")
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT kind, amount, over, seq FROM fund_ledger WHERE community = ? AND year = ?",
                (community, int(year)),
            ).fetchall()
        return position_of(community, year, (_ledger_row("", 0, community, year, *r) for r in rows))

    def fund_entries(self, consultation: str) -> Sequence[LedgerRow]:
        """The fund ledger rows of one consultation, in log order (for ``verify``)."""
        check_key(consultation, "fund_entries(consultation)")
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT entry, community, year, kind, amount, over, seq, pool FROM fund_ledger "
                "WHERE consultation = ? ORDER BY entry",
                (consultation,),
            ).fetchall()
        return tuple(
            _ledger_row(consultation, entry, community, year, kind, amount, over, seq, pool)
            for entry, community, year, kind, amount, over, seq, pool in rows
        )

    def fund_rows(self, community: str, year: int) -> tuple[LedgerRow, ...]:
        """Every fund ledger row of (community, year), in the order written (for ``consultflow fund``)."""
        check_key(community, "fund_rows(community)")
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT consultation, entry, kind, amount, over, seq, pool FROM fund_ledger "
                "WHERE community = ? AND year = ? ORDER BY rowid",
                (community, int(year)),
            ).fetchall()
        return tuple(
            _ledger_row(cid, entry, community, year, kind, amount, over, seq, pool)
            for cid, entry, kind, amount, over, seq, pool in rows
        )

    def append_many(self, steps: Iterable[Step]) -> None:
        """Append several steps (of one or many consultations) in one transaction: all or none.
        Each is expected at the version it was made from (``Step.expected_version``); a conflict
        anywhere writes nothing. Much faster than one transaction per step under ``FULL``."""
        self._append([(s, s.expected_version) for s in steps])

    def _append(self, steps: Sequence[tuple[Step, int]]) -> None:
        if not steps:
            return
        try:
            records, rows, entries, notices = _rows(steps, self._encoder.encode)
        except ConsultflowError:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"this step cannot be stored ({exc}); build steps with consultflow.apply") from exc
        with self._transaction() as conn:
            known: dict[str, tuple[int, str]] = {}
            for step, expected in steps:
                cid = step.record.id
                current = known.get(cid)
                if current is None:
                    row = conn.execute("SELECT version, head FROM consultations WHERE id = ?", (cid,)).fetchone()
                    current = (0, "") if row is None else (int(row[0]), str(row[1]))
                    exists = row is not None
                else:
                    exists = True
                if current[0] != expected or exists != (expected != 0):
                    raise Conflict(cid, expected, current[0] if exists else None)
                check_step(step, expected, current[1])
                known[cid] = (step.record.version, step.record.head)
            conn.executemany(_UPSERT, rows)
            conn.executemany(_INSERT_ENTRY, entries)
            if notices:
                self._insert_notices(conn, notices)
            if any(_has_funds(step) for step, _ in steps):
                self._insert_ledger(conn, steps)
        self._remember(records)

    def entries(self, consultation: str, after: int = 0) -> Sequence[LogEntry]:
        check_key(consultation, "entries(consultation)")
        check_position(after, "entries(after)")
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT seq, hash, prev, body FROM entries WHERE consultation = ? AND seq > ? ORDER BY seq",
                (consultation, after),
            ).fetchall()
            if (
                not rows
                and conn.execute("SELECT 1 FROM consultations WHERE id = ?", (consultation,)).fetchone() is None
            ):
                raise NotFound(consultation)
        out = []
        for seq, digest, prev, body in rows:
            entry, problem = _entry(consultation, seq, digest, prev, body)
            if entry is None:
                raise IntegrityError(
                    f"{self.path}: consultation {consultation!r}, entry seq {seq}: {problem}; the file was changed "
                    f"outside consultflow - run `consultflow verify --db {self.path}`"
                )
            out.append(entry)
        return tuple(out)

    def find(self, query: Query) -> Sequence[Consultation]:
        where: list[str] = []
        args: list[object] = []
        if query.community is not None:
            where.append("community = ?")
            args.append(query.community)
        if query.states is not None:
            if not query.states:
                return ()
            where.append(f"state IN ({', '.join('?' * len(query.states))})")
            args.extend(sorted(s.value for s in query.states))
        if query.topic is not None:
            if query.topic.endswith("/"):
                # A category: every topic that starts with it. A range, so no LIKE wildcards, and indexed.
                where.append("topic >= ? AND topic < ?")
                args.extend((query.topic, query.topic[:-1] + "0"))
            else:
                where.append("topic = ?")
                args.append(query.topic)
        if query.carrier is not None:
            where.append("carrier = ?")
            args.append(query.carrier.value)
        if query.due_before is not None:
            where.append("next_due IS NOT NULL AND next_due <= ?")
            args.append(_us(check_aware(query.due_before, "Query.due_before")))
        sql = "SELECT id, record, version, head FROM consultations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY proposed_at, id"
        if query.limit is not None:
            if query.limit <= 0:
                return ()
            sql += " LIMIT ?"
            args.append(query.limit)
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return tuple(self._record(cid, text, version, head) for cid, text, version, head in rows)

    def lease(self, limit: int, now: datetime, lease_for: timedelta = timedelta(minutes=5)) -> Sequence[Notice]:
        check_count(limit, "lease(limit)")
        until = lease_until(now, lease_for)
        if limit <= 0:
            if self._closed:
                raise closed_error(self)
            return ()
        with self._transaction() as conn:
            rows = conn.execute(_LEASE, (_us(now), limit)).fetchall()
            conn.executemany(
                "UPDATE outbox SET status = 'leased', attempts = attempts + 1, not_before = ? WHERE rowid = ?",
                [(_us(until), row[0]) for row in rows],
            )
        out = []
        for _, attempts, last_error, text in rows:
            notice = self._notice(text)
            out.append(
                notice.model_copy(
                    update={"status": "leased", "attempts": attempts + 1, "not_before": until, "last_error": last_error}
                )
            )
        return tuple(out)

    def settle(
        self,
        key: str,
        outcome: Settlement,
        *,
        now: datetime,
        retry_at: datetime | None = None,
        error: str = "",
        attempt: int | None = None,
    ) -> None:
        check_key(key, "settle(key)")
        status, not_before, last_error = check_settlement(outcome, now, retry_at, error, attempt)
        with self._transaction() as conn:
            problem = _settle_row(conn, key, status, not_before, last_error, attempt, outcome == "release")
        if problem is not None:
            raise problem

    def settle_many(self, settles: Sequence[SettleOrder], *, now: datetime) -> tuple[ConsultflowError | None, ...]:
        """Several settles in one transaction (a dispatcher's batch: one commit instead of one per
        notice). Each ``(key, outcome, retry_at, error, attempt)`` is checked and applied as
        ``settle`` would; the answer holds, per settle, ``None`` or the error ``settle`` would have
        raised (``NotFound``, a stale lease's ``IntegrityError``), and that one changed nothing.
        An argument ``settle`` refuses (``InvalidInput``) is raised before anything is written."""
        checked = []
        for key, outcome, retry_at, error, attempt in settles:
            check_key(key, "settle(key)")
            checked.append(
                (key, *check_settlement(outcome, now, retry_at, error, attempt), attempt, outcome == "release")
            )
        if not checked:
            self._check_open()
            return ()
        with self._transaction() as conn:
            # the usual batch settles every row: one executemany, checked by its count of changed
            # rows; when one is refused (a stale lease), undo it and settle row by row for the reasons
            conn.execute("SAVEPOINT settle_many")
            if conn.executemany(_SETTLE, [_settle_args(*args) for args in checked]).rowcount == len(checked):
                conn.execute("RELEASE settle_many")
                return (None,) * len(checked)
            conn.execute("ROLLBACK TO settle_many")
            conn.execute("RELEASE settle_many")
            return tuple(_settle_row(conn, *args) for args in checked)

    # ---- beyond the contract ----------------------------------------------------------------------
    def outbox(self, *, status: NoticeStatus | None = None) -> Sequence[Notice]:
        """Every notice (or those in ``status``) as it stands, in the order written (for tests,
        inspection and ``consultflow outbox``)."""
        check_notice_status(status)
        sql = "SELECT status, attempts, not_before, last_error, notice FROM outbox"
        args: tuple[str, ...] = ()
        if status is not None:
            sql, args = sql + " WHERE status = ?", (status,)
        with self._conn() as conn:
            rows = conn.execute(sql + " ORDER BY rowid", args).fetchall()
        return tuple(
            self._notice(text).model_copy(
                update={
                    "status": status,
                    "attempts": attempts,
                    "not_before": None if not_before is None else _dt(not_before),
                    "last_error": last_error,
                }
            )
            for status, attempts, not_before, last_error, text in rows
        )

    def enqueue(self, notices: Sequence[Notice]) -> int:
        """Add notices that belong to no step (reminders: 提醒), each only if its key is not in the
        outbox yet; returns how many were added. Many callers may enqueue the same key at once: it
        is added once, so a reminder is sent once per deadline."""
        items = check_enqueue(notices)
        rows = [(n.key, n.consultation, n.seq, n.status, n.attempts, None, "", n.model_dump_json()) for n in items]
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT_NOTICE.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1), rows)
            return conn.total_changes - before

    def requeue(self, key: str, *, now: datetime) -> None:
        """Send a dead letter again: pending from ``now``, its attempts counted afresh, its last
        error kept until the next attempt. ``NotFound`` for an unknown key, ``IntegrityError`` for a
        notice that is not dead."""
        check_key(key, "requeue(key)")
        check_aware(now, "requeue(now=...)")
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, not_before = ? WHERE key = ? AND status = 'dead'",
                (_us(now), key),
            )
            if cursor.rowcount == 0:
                row = conn.execute("SELECT status FROM outbox WHERE key = ?", (key,)).fetchone()
                if row is None:
                    raise NotFound(key, what="notice")
                raise not_dead_error(key, str(row[0]))

    def ids(self) -> tuple[str, ...]:
        """Every consultation id with a record or log entries, in order."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id FROM consultations UNION SELECT DISTINCT consultation FROM entries ORDER BY 1"
            ).fetchall()
        return tuple(str(r[0]) for r in rows)

    def audit(self, consultation: str | None = None) -> tuple[Finding, ...]:
        """Check what is stored, without trusting it: SQLite's own integrity check (pages,
        indexes), every record parses and agrees with its columns, every entry row holds its
        entry's canonical bytes exactly and agrees with its columns, every chain verifies on those
        bytes against its record (hashes, links, order, each entry starting where the one before
        ended, head, version, the state it ends in, the record's digest), every outbox row parses
        and agrees with its columns and with the log, no log or notice lacks its record.

        Replaying the log through the procedure needs the procedure: ``consultflow verify`` does
        that on top (``consultflow.replay``). Returns one ``Finding`` per broken consultation (its
        first problem), file-wide problems first under the name ``"(file)"``; an empty tuple when
        everything holds. ``NotFound`` if ``consultation`` is given and unknown.
        """
        findings = list(self.audit_file()) if consultation is None else []
        ids = self.ids() if consultation is None else (consultation,)
        for cid in ids:
            finding = self._audit_one(cid)
            if finding is not None:
                findings.append(finding)
        return tuple(findings)

    def audit_file(self) -> tuple[Finding, ...]:
        """SQLite's ``integrity_check`` (a damaged page or index, in any table) and outbox rows whose
        consultation has no record."""
        with self._conn() as conn:
            problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
            orphans = conn.execute(
                "SELECT key FROM outbox WHERE consultation NOT IN (SELECT id FROM consultations) ORDER BY key"
            ).fetchall()
        out = []
        if problems != ["ok"]:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            out.append(Finding("(file)", None, f"SQLite's integrity check fails: {shown}"))
        if orphans:
            out.append(Finding("(file)", None, f"outbox notice {orphans[0][0]!r} belongs to no consultation"))
        return tuple(out)

    def _audit_one(self, cid: str) -> Finding | None:
        return self.audit_consultation(cid)[0]

    def audit_consultation(self, cid: str) -> tuple[Finding | None, Audited | None]:
        """``audit`` of one consultation (its first problem, or ``None``) and what it read and held
        (``Audited``), when the record and every entry parse and the chain holds on the stored bytes:
        with no finding, or with ``RECORD_CHANGED`` or an outbox finding. ``NotFound`` if unknown."""
        with self._conn() as conn:
            row = conn.execute(
                """SELECT community, state, topic, carrier, next_due, proposed_at, version, head, record
                   FROM consultations WHERE id = ?""",
                (cid,),
            ).fetchone()
            rows = conn.execute(
                "SELECT seq, hash, prev, body FROM entries WHERE consultation = ? ORDER BY seq", (cid,)
            ).fetchall()
            notices = conn.execute(
                "SELECT key, seq, status, attempts, notice FROM outbox WHERE consultation = ? ORDER BY rowid",
                (cid,),
            ).fetchall()
        if row is None:
            if not rows:
                raise NotFound(cid)
            deleted = f"{len(rows)} log entries but no consultation record: the record was deleted"
            return Finding(cid, None, deleted), None
        try:
            record = Consultation.model_validate_json(row[8])
        except ValidationError as exc:
            return Finding(cid, None, f"the stored record does not parse: {_first(exc)}"), None
        columns = {
            "id": (cid, record.id),
            "community": (row[0], record.community),
            "state": (row[1], record.state.value),
            "topic": (row[2], record.topic),
            "carrier": (row[3], record.carrier.value),
            "next_due": (row[4], None if record.next_due is None else _us(record.next_due)),
            "proposed_at": (row[5], _us(record.proposed_at)),
            "version": (row[6], record.version),
            "head": (row[7], record.head),
        }
        for name, (column, value) in columns.items():
            if column != value:
                return Finding(cid, None, f"column {name} holds {column!r} but the record says {value!r}"), None
        entries = []
        for seq, digest, prev, body in rows:
            entry, problem = _entry(cid, seq, digest, prev, body)
            if entry is None:
                return Finding(cid, seq, problem), None
            entries.append(entry)
        check = verify_stored([body for _, _, _, body in rows], head=record.head, version=record.version)
        if not check.ok:
            return Finding(cid, check.seq, check.reason), None
        if entries and entries[-1].target is not record.state:
            found = f"the record is {record.state.value!r} but its log ends in {entries[-1].target.value!r}"
            return Finding(cid, entries[-1].seq, found), None
        held = tuple(entries)
        if entries and record_digest(record) != entries[-1].record_digest:
            return Finding(cid, None, RECORD_CHANGED), Audited(record, held, None)
        events = {e.seq: e.event for e in entries}
        outbox: list[Notice] = []
        for key, seq, status, attempts, text in notices:
            try:
                notice = Notice.model_validate_json(text)
            except ValidationError as exc:
                return Finding(cid, seq, f"outbox notice {key!r} does not parse: {_first(exc)}"), None
            reminder = reminder_deadline(notice) is not None  # no step's (提醒): keyed by its deadline
            expected = reminder or key == f"{cid}:{seq}"
            wrong: str | None = None
            if (notice.key, notice.consultation, notice.seq) != (key, cid, seq) or not expected:
                wrong = f"outbox notice {key!r} disagrees with its columns (key, consultation, seq)"
            elif not reminder and events.get(seq) is not notice.event:
                wrong = f"outbox notice {key!r} is for {notice.event.value!r}, not for its log entry"
            elif status not in ("pending", "leased", "delivered", "dead") or not isinstance(attempts, int):
                wrong = f"outbox notice {key!r} has a status or attempt count consultflow never writes"
            if wrong is not None:
                return Finding(cid, seq, wrong), Audited(record, held, None)
            outbox.append(notice)
        return None, Audited(record, held, tuple(outbox))

    def stored_outbox(self, consultation: str) -> tuple[Notice, ...]:
        """The outbox notices of one consultation as stored, in the order written (for ``verify``
        to compare with the notices its log gives)."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT notice FROM outbox WHERE consultation = ? ORDER BY rowid", (consultation,)
            ).fetchall()
        return tuple(self._notice(text) for (text,) in rows)

    # ---- decoding ----------------------------------------------------------------------------------
    def _record(self, cid: str, text: str, version: int, head: str) -> Consultation:
        """The stored record: the one this store last wrote or read at that version and head (records
        are immutable), else parsed and validated in full."""
        with self._lock:
            cached = self._cache.get(cid)
        if cached is not None and cached.version == version and cached.head == head:
            return cached
        try:
            record = Consultation.model_validate_json(text)
        except ValidationError as exc:
            raise IntegrityError(
                f"{self.path}: the stored record of {cid!r} does not parse ({_first(exc)}); the file was changed "
                f"outside consultflow or by a newer version - run `consultflow verify --db {self.path}`"
            ) from exc
        self._remember((record,))
        return record

    def _remember(self, records: Iterable[Consultation]) -> None:
        if not self._cache_size:
            return
        with self._lock:
            cache = self._cache
            for record in records:
                cache[record.id] = record
                cache.move_to_end(record.id)
            while len(cache) > self._cache_size:
                cache.popitem(last=False)

    def _notice(self, text: str) -> Notice:
        try:
            return Notice.model_validate_json(text)
        except ValidationError as exc:
            raise IntegrityError(f"{self.path}: a stored outbox notice does not parse ({_first(exc)})") from exc


# a release (the notice was not tried) gives the lease's attempt back, keeps the last error and
# applies only to a leased notice: the same statement, so a batch with releases is one executemany
_SETTLE = """UPDATE outbox SET status = ?, not_before = ?, last_error = coalesce(?, last_error),
    attempts = attempts - ?
    WHERE key = ? AND status NOT IN ('delivered', 'dead') AND (? = 0 OR status = 'leased')
    AND (? IS NULL OR attempts = ?)"""


def _settle_args(
    key: str, status: NoticeStatus, not_before: datetime | None, last_error: str, attempt: int | None, release: bool
) -> tuple[object, ...]:
    nb = None if not_before is None else _us(not_before)
    return (status, nb, None if release else last_error, int(release), key, int(release), attempt, attempt)


def _settle_row(
    conn: sqlite3.Connection,
    key: str,
    status: NoticeStatus,
    not_before: datetime | None,
    last_error: str,
    attempt: int | None,
    release: bool,
) -> ConsultflowError | None:
    """Settle one notice inside the caller's transaction; the error ``settle`` raises, or ``None``."""
    cursor = conn.execute(_SETTLE, _settle_args(key, status, not_before, last_error, attempt, release))
    if cursor.rowcount:
        return None
    row = conn.execute("SELECT status, attempts FROM outbox WHERE key = ?", (key,)).fetchone()
    return unsettled_error(key, row, status, attempt, release=release)


def _has_funds(step: Step) -> bool:
    return any(e.event is _ALLOCATED or e.event is _SPENT or e.event is _RELEASED for e in step.entries)


def _seq_taken(conn: sqlite3.Connection, r: LedgerRow) -> bool:
    found = conn.execute(
        "SELECT 1 FROM fund_ledger WHERE community = ? AND year = ? AND seq = ?", (r.community, r.year, r.seq)
    ).fetchone()
    return found is not None


def _ledger_row(
    consultation: str,
    entry: int,
    community: str,
    year: int,
    kind: str,
    amount: str,
    over: str,
    seq: int | None,
    pool: str | None = None,
) -> LedgerRow:
    """A ledger row as stored; amounts are exact decimals kept as text."""
    try:
        return LedgerRow(
            consultation,
            int(entry),
            str(community),
            int(year),
            "allocated" if kind == "allocated" else "released" if kind == "released" else "spent",
            Decimal(amount),
            Decimal(over),
            None if seq is None else int(seq),
            None if pool is None else Decimal(pool),
        )
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise IntegrityError(f"a fund ledger row of {consultation or community!r} does not parse ({exc})") from exc


_EntryRow = tuple[str, int, str, str, str]
_NoticeRow = tuple[str, str, int, str, int, int | None, str, str]
_RecordRow = tuple[str, str, str, str, str, int | None, int, int, str, str]


def _rows(
    steps: Sequence[tuple[Step, int]], encode: Callable[[Consultation], str] = Consultation.model_dump_json
) -> tuple[list[Consultation], list[_RecordRow], list[_EntryRow], list[_NoticeRow]]:
    """The rows a batch of steps writes: each consultation's last record, every entry, every notice."""
    records: dict[str, Consultation] = {}
    entries: list[_EntryRow] = []
    notices: list[_NoticeRow] = []
    for step, _ in steps:
        record = step.record
        cid = record.id
        records[cid] = record
        entries.extend((cid, e.seq, e.hash, e.prev, entry_json(e)) for e in step.entries)
        notices.extend(
            (
                n.key,
                n.consultation,
                n.seq,
                n.status,
                n.attempts,
                None if n.not_before is None else _us(n.not_before),
                n.last_error,
                n.model_dump_json(),
            )
            for n in step.notices
        )
    rows = [
        (
            r.id,
            r.community,
            r.state.value,
            r.topic,
            r.carrier.value,
            None if r.next_due is None else _us(r.next_due),
            _us(r.proposed_at),
            r.version,
            r.head,
            encode(r),
        )
        for r in records.values()
    ]
    return list(records.values()), rows, entries, notices


def _entry(cid: str, seq: int, digest: str, prev: str, body: str) -> tuple[LogEntry | None, str]:
    """The entry in a row, or (None, what is wrong with the row). The row must hold the entry's
    canonical bytes exactly (``entry_json``): a re-serialisation that reads the same is not enough."""
    try:
        entry = LogEntry.model_validate_json(body)
    except ValidationError as exc:
        return None, f"the entry does not parse (changed outside consultflow?): {_first(exc)}"
    if entry.schema_version < ENTRY_SCHEMA:
        return None, (
            f"the entry was written by an older consultflow (entry schema {entry.schema_version}); this one "
            f"checks entries of schema {ENTRY_SCHEMA} (docs/integrity.md)"
        )
    try:
        canonical = entry_json(entry) == body
    except (InvalidInput, TypeError, ValueError):
        canonical = False
    if not canonical:
        return None, "the stored entry is not in canonical form (its bytes were changed outside consultflow)"
    if entry.consultation != cid:
        return None, f"the row belongs to {cid!r} but its entry to {entry.consultation!r}"
    if entry.seq != seq:
        return None, f"the row is at seq {seq} but holds the entry of seq {entry.seq}: rows moved or reordered"
    if entry.hash != digest or entry.prev != prev:
        return None, "the row's hash or prev column disagrees with its entry: changed outside consultflow"
    return entry, ""


def _first(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    field, _, msg = exc.problems[0]
    return f"{field if field != '-' else 'value'}: {msg}"


def migrate(conn: sqlite3.Connection, path: Path | str = "", *, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema of ``conn``'s database to ``target`` (default: the latest), in one
    transaction that holds the write lock, so processes opening a new file at once agree.
    Returns the version reached. Refuses a file of a newer schema, or one that holds other tables."""
    return run_migrations(
        conn, path, MIGRATIONS, target=target, table="consultflow_schema", marks=frozenset({"consultflow_schema"}),
        label="", own_file="give the store its own file",
    )  # fmt: skip


def run_migrations(
    conn: sqlite3.Connection,
    path: Path | str,
    migrations: Sequence[Migration],
    *,
    target: int,
    table: str,
    marks: frozenset[str],
    label: str,
    own_file: str,
) -> int:
    """Apply the ``migrations`` a file lacks, up to ``target``, recording each in its version
    ``table``, in one transaction holding the write lock: the one way every consultflow SQLite
    schema (the store's, the directory's, the contact book's) is made and moved on. A file with
    tables but none of ``marks`` is someone else's (``own_file`` says what to do); one at a newer
    version than ``migrations`` know needs a newer consultflow. Every file gets the store's version
    table, so a store opening it later knows it for consultflow's own."""
    latest = migrations[-1].version
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        if not tables & marks and tables - {"sqlite_sequence"}:
            raise StoreUnavailable(
                f"{path} holds tables that consultflow did not create ({', '.join(sorted(tables))}); {own_file}"
            )
        conn.execute(_SCHEMA_TABLE)
        if table != "consultflow_schema":
            conn.execute(_SCHEMA_TABLE.replace("consultflow_schema", table, 1))
        current = int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()[0])
        if current > latest:
            raise StoreUnavailable(
                f"{path} has {label}schema version {current}, newer than this consultflow knows ({latest}); "
                "upgrade consultflow to open it"
            )
        for m in migrations:
            if current < m.version <= target:
                for statement in m.statements:
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {table} (version, description, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.description, datetime.now(UTC).isoformat(timespec="seconds")),
                )
                current = m.version
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return current
