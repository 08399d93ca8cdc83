"""The PostgreSQL store: for many application servers and dispatcher workers at once.

Same contract as every store (``consultflow.storage.base.Store``), on psycopg 3 (the optional
extra ``consultflow[postgres]``). How it keeps its promises:

- **One step, one statement.** ``append`` writes the record, its log entries and its outbox
  notices in a single SQL statement (data-modifying CTEs), so it is one transaction and one round
  trip. The record row carries the version: an existing consultation is written with
  ``UPDATE ... WHERE id = %s AND version = %s AND head = %s`` and a new one with
  ``INSERT ... ON CONFLICT DO NOTHING``; when no row was written, neither were the entries nor the
  notices, and the caller gets ``Conflict``. A concurrent writer blocks on the row, then finds the
  version moved on: for each version exactly one writer wins.
- **Outbox leases** use ``FOR UPDATE SKIP LOCKED``: any number of dispatcher workers lease
  disjoint notices without waiting for each other.
- **Schema on first use**, under a transaction-level advisory lock so that servers starting
  together do not race; a ``schema_version`` table records which migrations ran, and newer code
  applies the missing ones (``MIGRATIONS``). A database migrated by a newer consultflow is refused.
- **Exact bytes.** Log entries are stored as their canonical JSON (the bytes that are hashed), in
  ``text`` columns, so what ``verify`` checks is what was written; records and notices are pydantic
  JSON. Indexed columns beside them serve ``find`` and ``lease``.
- **Threads and processes.** A small built-in pool hands each thread its own connection; a forked
  child opens fresh connections and never touches its parent's.
- **The library's errors only**: ``Conflict``, ``NotFound``, ``IntegrityError``,
  ``StoreUnavailable`` (server down, connection lost, deadlock, serialization failure: retryable),
  ``InvalidInput``; the psycopg exception is kept as ``__cause__``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

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
from ..funds import FundPosition, Kind, LedgerRow, position_of
from ..log import LogEntry
from ..notices import Notice, NoticeStatus
from ..records import Consultation
from ..step import Step
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
    lease_until,
    not_dead_error,
    unsettled_error,
)
from .encoding import RecordEncoder, entry_json
from .ledger import step_rows

if TYPE_CHECKING:
    from psycopg import Connection, Cursor

    _Connection = Connection[tuple[Any, ...]]

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "PostgresStore"]

_T = TypeVar("_T")

_KINDS: dict[str, Kind] = {"allocated": "allocated", "released": "released", "spent": "spent"}
_INSTALL_HINT = "PostgresStore needs psycopg 3: pip install 'consultflow[postgres]'"
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _psycopg() -> Any:
    """psycopg, imported on first use so that ``import consultflow`` works without it."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(_INSTALL_HINT) from exc
    return psycopg


# ---- the schema ----------------------------------------------------------------------------------
# Each migration is (version, description, statements); ``{s}`` is the quoted schema name. Add new
# migrations at the end and never edit one that has shipped: stores upgrade by running the ones
# their ``schema_version`` table does not list yet.
Migration = tuple[int, str, tuple[str, ...]]

MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        "consultations, log entries, outbox",
        (
            """CREATE TABLE {s}.consultations (
                id          text COLLATE "C" PRIMARY KEY,
                version     integer NOT NULL CHECK (version >= 1),
                head        text NOT NULL,
                community   text COLLATE "C" NOT NULL,
                state       text NOT NULL,
                topic       text COLLATE "C" NOT NULL,
                carrier     text NOT NULL,
                proposed_at timestamptz NOT NULL,
                next_due    timestamptz,
                record      text NOT NULL,
                written_at  timestamptz NOT NULL DEFAULT now()
            )""",
            "CREATE INDEX consultations_order ON {s}.consultations (proposed_at, id)",
            "CREATE INDEX consultations_community ON {s}.consultations (community, proposed_at, id)",
            "CREATE INDEX consultations_state ON {s}.consultations (state, proposed_at, id)",
            "CREATE INDEX consultations_topic ON {s}.consultations (topic)",
            "CREATE INDEX consultations_carrier ON {s}.consultations (carrier, proposed_at, id)",
            "CREATE INDEX consultations_next_due ON {s}.consultations (next_due) WHERE next_due IS NOT NULL",
            """CREATE TABLE {s}.entries (
                consultation text COLLATE "C" NOT NULL REFERENCES {s}.consultations (id),
                seq          integer NOT NULL CHECK (seq >= 1),
                entry        text NOT NULL,
                PRIMARY KEY (consultation, seq)
            )""",
            """CREATE TABLE {s}.outbox (
                pos          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                key          text COLLATE "C" PRIMARY KEY,
                consultation text COLLATE "C" NOT NULL REFERENCES {s}.consultations (id),
                seq          integer NOT NULL,
                status       text NOT NULL CHECK (status IN ('pending', 'leased', 'delivered', 'dead')),
                attempts     integer NOT NULL DEFAULT 0,
                not_before   timestamptz,
                last_error   text NOT NULL DEFAULT '',
                notice       text NOT NULL
            )""",
            "CREATE INDEX outbox_ready ON {s}.outbox (pos) WHERE status IN ('pending', 'leased')",
            "CREATE INDEX outbox_consultation ON {s}.outbox (consultation, seq)",
        ),
    ),
    (
        2,
        "the fund ledger (微幸福台账): a row per funds_allocated and funds_spent entry",
        (
            """CREATE TABLE {s}.fund_ledger (
                consultation text COLLATE "C" NOT NULL REFERENCES {s}.consultations (id),
                entry        integer NOT NULL,
                community    text COLLATE "C" NOT NULL,
                year         integer NOT NULL,
                kind         text NOT NULL CHECK (kind IN ('allocated', 'spent', 'released')),
                amount       numeric(16, 2) NOT NULL,
                over         numeric(16, 2) NOT NULL DEFAULT 0,
                seq          integer CHECK (seq IS NULL OR seq >= 1),
                pool         numeric(16, 2),
                PRIMARY KEY (consultation, entry)
            )""",
            # two allocations from one community's pool for one year never take the same place
            "CREATE UNIQUE INDEX fund_ledger_allocation ON {s}.fund_ledger (community, year, seq) "
            "WHERE seq IS NOT NULL",
            "CREATE INDEX fund_ledger_year ON {s}.fund_ledger (community, year)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]
"""The storage schema this code writes (not the records' ``SCHEMA_VERSION``)."""

_COLS = "id, version, head, community, state, topic, carrier, proposed_at, next_due, record"

# One statement per step: the record row decides; entries and notices join on it, so when the row
# was not written (a conflict) nothing else is either. The FKs are checked at the end of the statement.
_TAIL = """,
e AS (
    INSERT INTO {s}.entries (consultation, seq, entry)
    SELECT c.id, x.seq, x.entry
    FROM c, unnest(%(seqs)b::integer[], %(entries)b::text[]) AS x(seq, entry)
),
o AS (
    INSERT INTO {s}.outbox (key, consultation, seq, status, attempts, not_before, last_error, notice)
    SELECT x.key, c.id, x.seq, x.status, x.attempts, x.not_before, x.last_error, x.notice
    FROM c, unnest(%(n_keys)b::text[], %(n_seqs)b::integer[], %(n_status)b::text[], %(n_attempts)b::integer[],
                   %(n_not_before)b::timestamptz[], %(n_errors)b::text[], %(n_notices)b::text[])
            WITH ORDINALITY AS x(key, seq, status, attempts, not_before, last_error, notice, ord)
    ORDER BY x.ord
),
f AS (
    INSERT INTO {s}.fund_ledger (consultation, entry, community, year, kind, amount, over, seq, pool)
    SELECT c.id, x.entry, x.community, x.year, x.kind, x.amount, x.over, x.seq, x.pool
    FROM c, unnest(%(f_entries)b::integer[], %(f_communities)b::text[], %(f_years)b::integer[],
                   %(f_kinds)b::text[], %(f_amounts)b::numeric[], %(f_over)b::numeric[], %(f_seqs)b::integer[],
                   %(f_pools)b::numeric[])
            AS x(entry, community, year, kind, amount, over, seq, pool)
)
SELECT count(*) FROM c"""

_INSERT_STEP = (
    """WITH c AS (
    INSERT INTO {s}.consultations ("""
    + _COLS
    + """)
    VALUES (%(id)s, %(version)s, %(head)s, %(community)s, %(state)s, %(topic)s, %(carrier)s,
            %(proposed_at)s, %(next_due)s, %(record)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)"""
    + _TAIL
)

_UPDATE_STEP = (
    """WITH c AS (
    UPDATE {s}.consultations
    SET version = %(version)s, head = %(head)s, community = %(community)s, state = %(state)s,
        topic = %(topic)s, carrier = %(carrier)s, proposed_at = %(proposed_at)s, next_due = %(next_due)s,
        record = %(record)s, written_at = now()
    WHERE id = %(id)s AND version = %(expected)s AND head = %(prev)s
    RETURNING id
)"""
    + _TAIL
)

_LEASE = """WITH picked AS (
    SELECT key FROM {s}.outbox
    WHERE status IN ('pending', 'leased')
      AND ((status = 'pending' AND (not_before IS NULL OR not_before <= %(now)s))
           OR (status = 'leased' AND not_before <= %(now)s))
    ORDER BY pos
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {s}.outbox AS o
SET status = 'leased', attempts = o.attempts + 1, not_before = %(until)s
FROM picked
WHERE o.key = picked.key
RETURNING o.pos, o.notice, o.status, o.attempts, o.not_before, o.last_error"""

# a release (the notice was not tried) gives the lease's attempt back, keeps the last error and
# applies only to a leased notice
_SETTLE = (
    "UPDATE {s}.outbox SET status = %s, not_before = %s, last_error = coalesce(%s, last_error), "
    "attempts = attempts - %s "
    "WHERE key = %s AND status NOT IN ('delivered', 'dead') AND (NOT %s OR status = 'leased') "
    "AND (%s::integer IS NULL OR attempts = %s::integer)"
)


def _connector(
    dsn: str,
    where: str,
    connect_timeout: float,
    application_name: str,
    statement_timeout: float | None,
    connect_options: Mapping[str, Any] | None,
) -> Callable[[], _Connection]:
    """How the store and the directory open a PostgreSQL session: autocommit, the timeouts given,
    the session in UTC; a failure is ``StoreUnavailable`` saying where and what to check."""
    psycopg = _psycopg()
    options: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": max(1, round(connect_timeout)),
        "application_name": application_name,
    }
    if statement_timeout is not None:
        options["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    options.update(connect_options or {})

    def connect() -> _Connection:
        try:
            conn: _Connection = psycopg.connect(dsn, **options)
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {where}: {_first_line(exc)}; check that the server "
                "runs and that the DSN (CONSULTFLOW_PG_DSN in the tests) is right"
            ) from exc
        try:
            conn.execute("SET TIME ZONE 'UTC'")
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailable(f"PostgreSQL at {where} failed a new session: {_first_line(exc)}") from exc
        return conn

    return connect


def _lock_key(schema: str) -> int:
    """A stable advisory-lock key for this schema's migrations (signed 64-bit)."""
    return int.from_bytes(hashlib.sha256(f"consultflow:{schema}".encode()).digest()[:8], "big", signed=True)


def run_migrations(
    conn: _Connection,
    migrations: Sequence[Migration],
    *,
    schema: str,
    table: str,
    create: bool,
    not_current: str,
    newer: Callable[[int], str],
) -> None:
    """Bring the tables of ``schema`` to the last of ``migrations``, recording each in its version
    ``table``: the one way the store's and the directory's PostgreSQL tables are made and moved on.
    At the latest version it does nothing (no lock, no DDL). Else, unless ``create`` (refused with
    ``not_current``), it takes the schema's advisory lock - servers, stores and directories starting
    together take turns - and applies what is missing; a newer version than known is ``newer``'s."""
    latest = migrations[-1][0]
    if _schema_version(conn, table, latest, newer) == latest:
        return
    if not create:
        raise StoreUnavailable(not_current)
    quoted = table.rpartition(".")[0]
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(schema),))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (version integer PRIMARY KEY, description text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = _schema_version(conn, table, latest, newer) or 0
        for version, description, statements in migrations:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement.format(s=quoted))
            conn.execute(f"INSERT INTO {table} (version, description) VALUES (%s, %s)", (version, description))


def _schema_version(conn: _Connection, table: str, latest: int, newer: Callable[[int], str]) -> int | None:
    """The version recorded in ``table``, ``None`` if there is no such table yet."""
    if _scalar(conn.execute("SELECT to_regclass(%s)", (table,))) is None:
        return None
    version = int(_scalar(conn.execute(f"SELECT max(version) FROM {table}")) or 0)
    if version > latest:
        raise StoreUnavailable(newer(version))
    return version


def _step_params(
    step: Step, expected_version: int, encode: Callable[[Consultation], str] = Consultation.model_dump_json
) -> dict[str, Any]:
    record = step.record
    notices = step.notices
    return {
        "id": record.id,
        "version": record.version,
        "head": record.head,
        "community": record.community,
        "state": record.state.value,
        "topic": record.topic,
        "carrier": record.carrier.value,
        "proposed_at": record.proposed_at,
        "next_due": record.next_due,
        "record": encode(record),
        "expected": expected_version,
        "prev": step.entries[0].prev,
        "seqs": [e.seq for e in step.entries],
        "entries": [entry_json(e) for e in step.entries],
        "n_keys": [n.key for n in notices],
        "n_seqs": [n.seq for n in notices],
        "n_status": [n.status for n in notices],
        "n_attempts": [n.attempts for n in notices],
        "n_not_before": [n.not_before for n in notices],
        "n_errors": [n.last_error for n in notices],
        "n_notices": [n.model_dump_json() for n in notices],
        **_ledger_params(step),
    }


def _ledger_params(step: Step) -> dict[str, list[Any]]:
    """The fund ledger's rows of the step (微幸福), as the statement's arrays."""
    rows = step_rows(step)
    return {
        "f_entries": [r.entry for r in rows],
        "f_communities": [r.community for r in rows],
        "f_years": [r.year for r in rows],
        "f_kinds": [r.kind for r in rows],
        "f_amounts": [r.amount for r in rows],
        "f_over": [r.over for r in rows],
        "f_seqs": [r.seq for r in rows],
        "f_pools": [r.pool for r in rows],
    }


class _Pool:
    """At most ``size`` connections, shared by threads: each call takes one, uses it alone, and
    gives it back. Broken connections are dropped; after a fork the child starts afresh and leaves
    its parent's connections alone (closing them would close the parent's sessions)."""

    def __init__(self, connect: Callable[[], _Connection], size: int, timeout: float) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._idle: list[_Connection] = []
        self._open = 0
        self._closed = False

    def acquire(self) -> _Connection:
        if self._pid != os.getpid():
            self._reset()
        deadline = time.monotonic() + self._timeout
        with self._cond:
            while True:
                if self._closed:
                    raise StoreUnavailable("this PostgresStore is closed; open a new one to go on")
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size:
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        f"all {self._size} PostgreSQL connections stayed busy for {self._timeout:g} s; "
                        "raise max_connections or pool_timeout, or use fewer threads"
                    )
                self._cond.wait(left)
        try:
            return self._connect()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def release(self, conn: _Connection) -> None:
        if self._pid != os.getpid():
            return  # a connection of the parent process: forget it, never close it
        psycopg = _psycopg()
        keep = not conn.closed and not conn.broken
        if keep and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:  # failed or abandoned
            try:
                conn.rollback()
            except psycopg.Error:
                keep = False  # a connection that cannot roll back is dropped below
        with self._cond:
            if keep and not self._closed:
                self._idle.append(conn)
            else:
                self._open -= 1
                if not conn.closed:
                    conn.close()
            self._cond.notify()

    def drop_idle(self) -> None:
        """Close the idle connections (after one broke: the server may have restarted)."""
        if self._pid != os.getpid():
            return
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()

    def close(self) -> None:
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()


class PostgresStore:
    """Consultations, logs and outbox in PostgreSQL (psycopg 3).

    ``dsn`` is a libpq connection string or URI (``postgresql://user@host:5432/db``). Tables live
    in ``schema`` (created on first use, with its migrations); several stores, apps or test runs
    can share one database with different schemas. ``max_connections`` bounds this store's pool;
    a thread waits up to ``pool_timeout`` seconds for a free connection. ``statement_timeout``
    (seconds) caps any statement; ``connect_options`` go to ``psycopg.connect`` as they are.
    With ``create_schema=False`` the store refuses to run DDL and expects a migrated schema.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "consultflow",
        max_connections: int = 10,
        pool_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        statement_timeout: float | None = None,
        application_name: str = "consultflow",
        create_schema: bool = True,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        psycopg = _psycopg()
        if not _SCHEMA_NAME.match(schema):
            raise InvalidInput(f"schema {schema!r} is not a plain identifier; use letters, digits and '_' (at most 63)")
        if max_connections < 1:
            raise InvalidInput("max_connections must be at least 1")
        self._dsn = dsn  # private: it may hold a password
        self._encoder = RecordEncoder()
        self.schema = schema
        self.create_schema = create_schema
        self._where = self._describe(psycopg, dsn)
        s = f'"{schema}"'
        self._s = s
        self._insert_step = _INSERT_STEP.format(s=s)
        self._update_step = _UPDATE_STEP.format(s=s)
        self._lease = _LEASE.format(s=s)
        self._settle = _SETTLE.format(s=s)
        connect = _connector(dsn, self._where, connect_timeout, application_name, statement_timeout, connect_options)
        self._pool = _Pool(connect, max_connections, pool_timeout)
        self._ready = False
        self._ready_lock = threading.Lock()

    # ---- the contract ------------------------------------------------------------------------------
    def load(self, consultation: str) -> Consultation:
        check_key(consultation, "load(consultation)")
        sql = f"SELECT record FROM {self._s}.consultations WHERE id = %s"

        def run(conn: _Connection) -> Consultation:
            row = conn.execute(sql, (consultation,)).fetchone()
            if row is None:
                raise NotFound(consultation)
            return _decode_record(consultation, row[0])

        return self._run("load", run, idempotent=True)

    def load_many(self, consultations: Iterable[str]) -> dict[str, Consultation]:
        """The records of ``consultations`` that exist, by id, in one query (a dispatcher's batch names
        several); what ``load`` would give for each, an id not stored is left out."""
        ids = list(dict.fromkeys(check_key(c, "load_many(consultations)") for c in consultations))
        sql = f"SELECT id, record FROM {self._s}.consultations WHERE id = ANY(%s)"

        def run(conn: _Connection) -> dict[str, Consultation]:
            if not ids:
                return {}
            return {cid: _decode_record(cid, text) for cid, text in conn.execute(sql, (ids,)).fetchall()}

        return self._run("load_many", run, idempotent=True)

    def append(self, step: Step, expected_version: int) -> None:
        self._append_many(((step, expected_version),))

    def append_many(self, steps: Iterable[Step]) -> None:
        """Append several steps in one transaction (all or nothing), each at its own expected
        version (``step.expected_version``); steps of one consultation must come in order. A
        conflict on any of them raises ``Conflict`` and writes none. For imports and simulations:
        one commit for the batch instead of one per step."""
        self._append_many(tuple((s, s.expected_version) for s in steps))

    def entries(self, consultation: str, after: int = 0) -> Sequence[LogEntry]:
        check_key(consultation, "entries(consultation)")
        check_position(after, "entries(after)")
        sql = f"SELECT seq, entry FROM {self._s}.entries WHERE consultation = %s AND seq > %s ORDER BY seq"
        exists = f"SELECT 1 FROM {self._s}.consultations WHERE id = %s"

        def run(conn: _Connection) -> Sequence[LogEntry]:
            rows = conn.execute(sql, (consultation, after)).fetchall()
            if not rows and conn.execute(exists, (consultation,)).fetchone() is None:
                raise NotFound(consultation)
            return tuple(_decode_entry(consultation, seq, text) for seq, text in rows)

        return self._run("entries", run, idempotent=True)

    def find(self, query: Query) -> Sequence[Consultation]:
        where: list[str] = []
        params: list[Any] = []
        if query.community is not None:
            where.append("community = %s")
            params.append(query.community)
        if query.states is not None:
            where.append("state = ANY(%s::text[])")
            params.append(sorted(s.value for s in query.states))
        if query.topic is not None:
            if query.topic.endswith("/"):
                where.append("topic LIKE %s")
                params.append(_like_prefix(query.topic))
            else:
                where.append("topic = %s")
                params.append(query.topic)
        if query.carrier is not None:
            where.append("carrier = %s")
            params.append(query.carrier.value)
        if query.due_before is not None:
            where.append("next_due <= %s")
            params.append(check_aware(query.due_before, "Query.due_before"))
        sql = f"SELECT id, record FROM {self._s}.consultations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY proposed_at, id"
        if query.limit is not None:
            sql += " LIMIT %s"
            params.append(max(0, query.limit))

        def run(conn: _Connection) -> Sequence[Consultation]:
            return tuple(_decode_record(cid, text) for cid, text in conn.execute(sql, params).fetchall())

        return self._run("find", run, idempotent=True)

    def lease(self, limit: int, now: datetime, lease_for: timedelta = timedelta(minutes=5)) -> Sequence[Notice]:
        check_count(limit, "lease(limit)")
        until = lease_until(now, lease_for)
        if limit <= 0:
            return ()
        params = {"now": now, "until": until, "limit": limit}

        def run(conn: _Connection) -> Sequence[Notice]:
            rows = conn.execute(self._lease, params).fetchall()
            rows.sort(key=lambda r: r[0])
            return tuple(_decode_notice(text, status, attempts, nb, err) for _, text, status, attempts, nb, err in rows)

        return self._run("lease", run, idempotent=False)

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

        def run(conn: _Connection) -> None:
            problem = self._settle_row(conn, key, status, not_before, last_error, attempt, outcome == "release")
            if problem is not None:
                raise problem

        self._run("settle", run, idempotent=True)

    def settle_many(self, settles: Sequence[SettleOrder], *, now: datetime) -> tuple[ConsultflowError | None, ...]:
        """Several settles in one transaction (a dispatcher's batch: one round trip and commit
        instead of one per notice), as ``SQLiteStore.settle_many``: per settle ``None`` or the error
        ``settle`` would have raised (that one changed nothing); bad arguments raise first."""
        checked = []
        for key, outcome, retry_at, error, attempt in settles:
            check_key(key, "settle(key)")
            checked.append(
                (key, *check_settlement(outcome, now, retry_at, error, attempt), attempt, outcome == "release")
            )

        def run(conn: _Connection) -> tuple[ConsultflowError | None, ...]:
            with conn.transaction():
                return tuple(self._settle_row(conn, *args) for args in checked)

        return self._run("settle", run, idempotent=True) if checked else ()

    def _settle_row(
        self,
        conn: _Connection,
        key: str,
        status: NoticeStatus,
        not_before: datetime | None,
        last_error: str,
        attempt: int | None,
        release: bool,
    ) -> ConsultflowError | None:
        """Settle one notice on ``conn``; the error ``settle`` raises for it, or ``None``."""
        error = None if release else last_error
        args = (status, not_before, error, int(release), key, release, attempt, attempt)
        if conn.execute(self._settle, args).rowcount:
            return None
        row = conn.execute(f"SELECT status, attempts FROM {self._s}.outbox WHERE key = %s", (key,)).fetchone()
        return unsettled_error(key, row, status, attempt, release=release)

    def fund_position(self, community: str, year: int) -> FundPosition:
        """What the fund ledger holds for (community, year) (微幸福; ``storage.ledger.FundLedger``)."""
        check_key(community, "fund_position(community)")
        sql = (
            "SELECT coalesce(sum(amount) FILTER (WHERE kind = 'allocated'), 0) "
            "- coalesce(sum(amount) FILTER (WHERE kind = 'released'), 0), "
            "coalesce(sum(amount) FILTER (WHERE kind = 'spent'), 0), coalesce(sum(over), 0), coalesce(max(seq), 0) "
            f"FROM {self._s}.fund_ledger WHERE community = %s AND year = %s"
        )

        def run(conn: _Connection) -> FundPosition:
            row = conn.execute(sql, (community, int(year))).fetchone()
            if row is None:  # pragma: no cover - an aggregate always returns a row
                return position_of(community, year, ())
            allocated, spent, over, seq = row
            return FundPosition(
                community=community, year=year, allocated=allocated, spent=spent, overspent=over, seq=int(seq)
            )

        return self._run("fund_position", run, idempotent=True)

    def fund_entries(self, consultation: str) -> Sequence[LedgerRow]:
        """The fund ledger rows of one consultation, in log order (for ``verify``)."""
        check_key(consultation, "fund_entries(consultation)")
        sql = (
            "SELECT entry, community, year, kind, amount, over, seq, pool "
            f"FROM {self._s}.fund_ledger WHERE consultation = %s ORDER BY entry"
        )

        def run(conn: _Connection) -> Sequence[LedgerRow]:
            return tuple(
                LedgerRow(
                    consultation,
                    int(entry),
                    str(community),
                    int(year),
                    _KINDS.get(kind, "spent"),
                    amount,
                    over,
                    None if seq is None else int(seq),
                    pool,
                )
                for entry, community, year, kind, amount, over, seq, pool in conn.execute(sql, (consultation,))
            )

        return self._run("fund_entries", run, idempotent=True)

    def close(self) -> None:
        self._pool.close()

    # ---- beyond the contract -----------------------------------------------------------------------
    def outbox(self, consultation: str | None = None, *, status: NoticeStatus | None = None) -> Sequence[Notice]:
        """Every notice (of one consultation, or all; in ``status``, or any), in the order written;
        for tests, inspection and dispatchers waiting for the outbox to empty."""
        check_notice_status(status)
        sql = f"SELECT notice, status, attempts, not_before, last_error FROM {self._s}.outbox"
        where: list[str] = []
        params: tuple[Any, ...] = ()
        if consultation is not None:
            where.append("consultation = %s")
            params = (consultation,)
        if status is not None:
            where.append("status = %s")
            params = (*params, status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY pos"

        def run(conn: _Connection) -> Sequence[Notice]:
            return tuple(_decode_notice(*row) for row in conn.execute(sql, params).fetchall())

        return self._run("outbox", run, idempotent=True)

    def enqueue(self, notices: Sequence[Notice]) -> int:
        """Add notices that belong to no step (reminders: 提醒), each only if its key is not in the
        outbox yet; returns how many were added. Many callers may enqueue the same key at once: it
        is added once, so a reminder is sent once per deadline."""
        items = check_enqueue(notices)
        sql = (
            f"INSERT INTO {self._s}.outbox (key, consultation, seq, status, attempts, not_before, last_error, notice) "
            "VALUES (%s, %s, %s, 'pending', 0, NULL, '', %s) ON CONFLICT (key) DO NOTHING"
        )

        def run(conn: _Connection) -> int:
            added = 0
            for n in items:
                added += conn.execute(sql, (n.key, n.consultation, n.seq, n.model_dump_json())).rowcount
            return added

        return self._run("enqueue", run, idempotent=True)

    def requeue(self, key: str, *, now: datetime) -> None:
        """Send a dead letter again: pending from ``now``, its attempts counted afresh, its last
        error kept until the next attempt. ``NotFound`` for an unknown key, ``IntegrityError`` for a
        notice that is not dead."""
        check_key(key, "requeue(key)")
        check_aware(now, "requeue(now=...)")
        update = (
            f"UPDATE {self._s}.outbox SET status = 'pending', attempts = 0, not_before = %s "
            "WHERE key = %s AND status = 'dead'"
        )

        def run(conn: _Connection) -> None:
            if conn.execute(update, (now, key)).rowcount == 0:
                row = conn.execute(f"SELECT status FROM {self._s}.outbox WHERE key = %s", (key,)).fetchone()
                if row is None:
                    raise NotFound(key, what="notice")
                raise not_dead_error(key, str(row[0]))

        self._run("requeue", run, idempotent=True)

    def migrate(self) -> int:
        """Create the schema or bring it up to date now (otherwise done on first use); returns the
        storage schema version."""
        self._ensure_schema()
        return SCHEMA_VERSION

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r}, schema={self.schema!r})"

    # ---- internals ---------------------------------------------------------------------------------
    def _append_many(self, batch: Sequence[tuple[Step, int]]) -> None:
        if not batch:
            return
        checked: list[tuple[Step, int, str, dict[str, Any]]] = []
        for step, expected in batch:
            if expected < 0:
                raise InvalidInput(f"expected_version must be 0 or more, got {expected}")
            try:
                check_step(step, expected, step.entries[0].prev if step.entries and expected else "")
            except IntegrityError as refusal:
                # A step that does not fit its expected version: say Conflict when the stored version
                # is not the one expected either (like every store), else why the step is wrong.
                self._raise_conflict_or(step.record.id, expected, refusal)
            sql = self._insert_step if expected == 0 else self._update_step
            checked.append((step, expected, sql, _step_params(step, expected, self._encoder.encode)))

        def run(conn: _Connection) -> None:
            if len(checked) == 1:
                step, expected, sql, params = checked[0]
                if _scalar(conn.execute(sql, params)) != 1:
                    self._diagnose(conn, step, expected)
                return
            with conn.transaction():
                if psycopg.Pipeline.is_supported():
                    with conn.pipeline():
                        cursors = [conn.execute(sql, params) for _, _, sql, params in checked]
                    counts = [_scalar(cur) for cur in cursors]
                else:  # pragma: no cover - libpq older than 14
                    counts = [_scalar(conn.execute(sql, params)) for _, _, sql, params in checked]
                for (step, expected, _, _), count in zip(checked, counts, strict=True):
                    if count != 1:
                        self._diagnose(conn, step, expected)  # raises; the transaction rolls back

        psycopg = _psycopg()
        try:
            self._run("append", run, idempotent=False)
        except IntegrityError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.errors.UniqueViolation):
                self._fund_conflict(cause, checked)
            raise

    @staticmethod
    def _fund_conflict(exc: Exception, checked: Sequence[tuple[Step, int, str, dict[str, Any]]]) -> None:
        """A unique violation on the fund ledger's allocations: the step lost a race for its place in
        a community's year (微幸福) - ``FundConflict``. Returns for any other violation."""
        diag = getattr(exc, "diag", None)
        if getattr(diag, "constraint_name", None) != "fund_ledger_allocation":
            return
        for step, expected, _, _ in checked:
            for r in step_rows(step):
                if r.seq is not None:
                    raise FundConflict(step.record.id, expected, r.community, r.year, r.seq) from exc

    def _diagnose(self, conn: _Connection, step: Step, expected: int) -> None:
        """No row was written for ``step``: say why (always raises)."""
        cid = step.record.id
        row = conn.execute(f"SELECT version FROM {self._s}.consultations WHERE id = %s", (cid,)).fetchone()
        actual = None if row is None else int(row[0])
        if actual != expected or expected == 0:
            raise Conflict(cid, expected, actual)
        raise IntegrityError(
            f"step for {cid!r} does not continue its log at version {expected}: its first entry's prev "
            "is not the stored head; build steps from the loaded record (Engine.execute or consultflow.apply)"
        )

    def _raise_conflict_or(self, cid: str, expected: int, refusal: IntegrityError) -> None:
        sql = f"SELECT version FROM {self._s}.consultations WHERE id = %s"

        def run(conn: _Connection) -> int | None:
            row = conn.execute(sql, (cid,)).fetchone()
            return None if row is None else int(row[0])

        actual = self._run("append", run, idempotent=True)
        if (actual or 0) != expected or (actual is None) != (expected == 0):
            raise Conflict(cid, expected, actual)
        raise refusal

    def _run(self, what: str, fn: Callable[[_Connection], _T], *, idempotent: bool) -> _T:
        """Run ``fn`` on a pooled connection, translating psycopg's errors into the library's.
        An idempotent call (a read, a settle) is retried once on a fresh connection if its
        connection broke; an append or a lease never is (it may have gone through)."""
        psycopg = _psycopg()
        if not self._ready:
            self._ensure_schema()
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            conn = self._pool.acquire()
            try:
                return fn(conn)
            except psycopg.Error as exc:
                if conn.broken:
                    self._pool.drop_idle()  # a server restart breaks them all: reconnect afresh
                    if attempt + 1 < attempts:
                        continue
                raise self._translate(exc, what, conn.broken) from exc
            except UnicodeError as exc:  # a safety net: text that is no valid Unicode never reaches the server
                raise InvalidInput(f"text passed to {what}() is not valid Unicode (a lone surrogate?): {exc}") from exc
            finally:
                self._pool.release(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, exc: Exception, what: str, broken: bool) -> ConsultflowError:
        psycopg = _psycopg()
        errors = psycopg.errors
        detail = _first_line(exc)
        if isinstance(exc, psycopg.IntegrityError):
            return IntegrityError(
                f"PostgreSQL refused {what}: {detail}; nothing was written. The step clashes with stored "
                "data (a notice key or log entry that exists already): build steps from the loaded record"
            )
        if isinstance(exc, psycopg.DataError):
            return InvalidInput(f"PostgreSQL cannot take a value passed to {what}(): {detail}")
        if isinstance(exc, errors.UndefinedTable | errors.InvalidSchemaName):
            return StoreUnavailable(
                f"the consultflow tables in schema {self.schema!r} are missing at {self._where} ({detail}); "
                "create them with PostgresStore(..., create_schema=True) or store.migrate()"
            )
        if isinstance(exc, errors.TransactionRollback | errors.LockNotAvailable | errors.QueryCanceled):
            return StoreUnavailable(f"PostgreSQL gave up on {what} ({detail}); nothing was written - retry")
        if broken or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            outcome = (
                "the step may or may not have been written: reload and retry (a retry of a written step gets Conflict)"
                if what == "append"
                else "retry when the server is back"
            )
            return StoreUnavailable(f"lost PostgreSQL at {self._where} during {what} ({detail}); {outcome}")
        return StoreUnavailable(f"PostgreSQL failed during {what} at {self._where}: {detail}")

    def _ensure_schema(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            psycopg = _psycopg()
            conn = self._pool.acquire()
            try:
                self._migrate(conn)
            except psycopg.Error as exc:
                raise self._translate(exc, "creating the schema", conn.broken) from exc
            finally:
                self._pool.release(conn)
            self._ready = True

    def _migrate(self, conn: _Connection) -> None:
        run_migrations(
            conn,
            MIGRATIONS,
            schema=self.schema,
            table=f"{self._s}.schema_version",
            create=self.create_schema,
            not_current=(
                f"schema {self.schema!r} at {self._where} is not at storage version {SCHEMA_VERSION}; "
                "run PostgresStore(..., create_schema=True).migrate() once with a role that may create tables"
            ),
            newer=lambda version: (
                f"schema {self.schema!r} at {self._where} is at storage version {version}, newer than this "
                f"consultflow knows ({SCHEMA_VERSION}); upgrade consultflow"
            ),
        )

    @staticmethod
    def _describe(psycopg: Any, dsn: str) -> str:
        """Where the store points, without the password (for messages)."""
        try:
            params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise InvalidInput(f"not a PostgreSQL connection string: {_first_line(exc)}") from exc
        host = params.get("host") or params.get("hostaddr") or "localhost"
        port = params.get("port") or "5432"
        user = params.get("user")
        db = params.get("dbname") or user or ""
        return f"{user + '@' if user else ''}{host}:{port}/{db}"


def _scalar(cursor: Cursor[tuple[Any, ...]]) -> Any:
    """The first column of the one row a statement returns."""
    row = cursor.fetchone()
    if row is None:
        raise StoreUnavailable("PostgreSQL returned no row where one was due; check the server and the schema")
    return row[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _decode_record(cid: str, text: str) -> Consultation:
    try:
        return Consultation.model_validate_json(text)
    except ValidationError as exc:
        raise IntegrityError(
            f"the stored record of {cid!r} cannot be read ({exc.error_count()} problems, first: "
            f"{exc.errors()[0]['msg']}); it was changed outside consultflow - restore it from a backup"
        ) from exc


def _decode_entry(cid: str, seq: int, text: str) -> LogEntry:
    """The entry in a row, which must hold its canonical bytes exactly (``entry_json``), belong to
    this consultation and sit at its own seq."""
    try:
        entry = LogEntry.model_validate_json(text)
    except ValidationError as exc:
        raise IntegrityError(
            f"log entry {seq} of {cid!r} cannot be read ({exc.errors()[0]['msg']}); it was changed outside "
            "consultflow - the chain is broken at this entry"
        ) from exc
    try:
        canonical = entry_json(entry) == text
    except (InvalidInput, TypeError, ValueError):
        canonical = False
    if not canonical or entry.consultation != cid or entry.seq != seq:
        raise IntegrityError(
            f"log entry {seq} of {cid!r} is not the canonical bytes of an entry of {cid!r} at seq {seq}; it was "
            "changed outside consultflow - the chain is broken at this entry"
        )
    return entry


def _decode_notice(text: str, status: str, attempts: int, not_before: datetime | None, last_error: str) -> Notice:
    try:
        notice = Notice.model_validate_json(text)
    except ValidationError as exc:
        raise IntegrityError(f"a stored outbox notice cannot be read ({exc.errors()[0]['msg']})") from exc
    return notice.model_copy(
        update={"status": status, "attempts": attempts, "not_before": not_before, "last_error": last_error}
    )
