"""``SQLiteDirectory``: the directory in a SQLite file - its own, or the store's.

Same API and meaning as ``MemoryDirectory``; what the file adds:

- **Grants are rows, never deleted.** ``directory_grants`` holds one row per grant: scope, person,
  role, ``since``, ``granted_by``, ``until``, ``revoked_by`` (times as integer microseconds since
  1970 UTC, ``NULL`` for "from the start" and "still held"). A revocation closes the open rows
  (``UPDATE ... WHERE until IS NULL``) in one transaction: all the roles named, or none. A unique
  index on the open rows keeps one open grant per scope, person and role, whoever grants at once.
- **Placements** (``directory_places``): a community, its sub-district's scope, its district's.
- **``roles()`` is one indexed query**: the community's own grants and its levels', at an instant.
- **Shares the store's file** if you like (``SQLiteDirectory("consult.db")`` beside
  ``SQLiteStore("consult.db")``): its tables are prefixed ``directory_`` and its schema version is
  kept in ``directory_schema``; either may open the file first.
- **Threads and processes**: WAL, a small pool of connections (one per call), writers wait for
  each other up to ``busy_timeout`` seconds; after ``fork`` the child opens its own connections.

Errors are the library's: ``InvalidInput`` for bad input, ``StoreUnavailable`` for a file that
cannot be used, ``IntegrityError`` for rows consultflow did not write.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import IntegrityError, InvalidInput, StoreUnavailable
from ..roles import Role
from ..storage.sqlite import Migration, SQLiteFile, Synchronous, _dt, _us, run_migrations
from .base import Grant, check_grant, check_instant, check_place, grants_filter, storable_id, wanted_roles

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteDirectory"]

#: The directory's schema changes, oldest first (its own versions, kept in ``directory_schema``).
#: Append to change the schema; never edit one that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "directory grants and placements",
        (
            """CREATE TABLE directory_grants (
                id         INTEGER PRIMARY KEY,
                scope      TEXT NOT NULL,
                person     TEXT NOT NULL,
                role       TEXT NOT NULL,
                since      INTEGER,
                granted_by TEXT NOT NULL DEFAULT '',
                until      INTEGER,
                revoked_by TEXT NOT NULL DEFAULT '',
                CHECK (since IS NULL OR until IS NULL OR since <= until)
            )""",
            # one open grant per scope, person and role
            "CREATE UNIQUE INDEX directory_grants_open ON directory_grants (scope, person, role) WHERE until IS NULL",
            # roles() (and grants(person=...)): a person's grants, covering, so roles() never reads the table
            "CREATE INDEX directory_grants_held ON directory_grants (person, scope, role, since, until)",
            # members() (and grants(scope=...)): a scope's grants, covering
            "CREATE INDEX directory_grants_scope ON directory_grants (scope, person, role, since, until)",
            """CREATE TABLE directory_places (
                community    TEXT PRIMARY KEY,
                sub_district TEXT,
                district     TEXT
            )""",
        ),
    ),
)

#: The directory schema version this code writes.
SCHEMA_VERSION: int = MIGRATIONS[-1].version

_OURS = frozenset({"consultflow_schema", "directory_schema"})

# The community's own grants and its levels', at one instant: a seek per scope in directory_grants_held.
_ROLES = """SELECT DISTINCT role FROM directory_grants
    WHERE scope IN (?1, (SELECT sub_district FROM directory_places WHERE community = ?1),
                        (SELECT district FROM directory_places WHERE community = ?1))
      AND person = ?2
      AND (since IS NULL OR since <= ?3) AND (until IS NULL OR until > ?3)"""
_MEMBERS = """SELECT DISTINCT person FROM directory_grants
    WHERE scope = ? AND (since IS NULL OR since <= ?) AND (until IS NULL OR until > ?)"""
_GRANT = """INSERT INTO directory_grants (scope, person, role, since, granted_by) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (scope, person, role) WHERE until IS NULL DO NOTHING"""
_REVOKE = """UPDATE directory_grants SET until = ?, revoked_by = ?
    WHERE scope = ? AND person = ? AND role = ? AND until IS NULL AND (since IS NULL OR since <= ?)"""
_OPEN = "SELECT since FROM directory_grants WHERE scope = ? AND person = ? AND role = ? AND until IS NULL"
_PLACE = """INSERT INTO directory_places (community, sub_district, district) VALUES (?, ?, ?)
    ON CONFLICT (community) DO UPDATE SET sub_district = excluded.sub_district, district = excluded.district"""
_GRANTS = "SELECT scope, person, role, since, granted_by, until, revoked_by FROM directory_grants"


class SQLiteDirectory(SQLiteFile):
    """Who holds which role where, in a SQLite file (created with its tables on first use).

    ``synchronous`` and ``busy_timeout`` mean what they mean for ``SQLiteStore``. The file may be
    the store's own. See the module docstring.
    """

    _kind = "directory"
    _integrity_hint = ""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Synchronous = "FULL", busy_timeout: float = 5.0
    ) -> None:
        super().__init__(path, synchronous=synchronous, busy_timeout=busy_timeout, readonly=False)
        try:
            with self._conn() as conn:
                self._prepare(conn)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteDirectory({str(self.path)!r})"

    # ---- the directory ----------------------------------------------------------------------------
    def place(self, community: str, *, sub_district: str | None = None, district: str | None = None) -> None:
        """Put ``community`` under a sub-district (街道) and a district (区), by their names: the
        officials granted a role there act in it. Placing it again replaces its levels."""
        levels = check_place(community, sub_district, district)
        sub = next((s for s in levels if s.startswith("sub-district:")), None)
        dis = next((s for s in levels if s.startswith("district:")), None)
        with self._transaction() as conn:
            conn.execute(_PLACE, (community, sub, dis))

    def grant(self, scope: str, person: str, *roles: Role | str, by: str = "", at: datetime | None = None) -> None:
        """``person`` holds ``roles`` in ``scope`` from ``at`` on (from the start if ``None``).
        Granting a role already held changes nothing."""
        pid, resolved = check_grant(scope, person, roles, at, by)
        since = None if at is None else _us(at)
        with self._transaction() as conn:
            conn.executemany(_GRANT, [(scope, pid, role.value, since, by) for role in resolved])

    def revoke(self, scope: str, person: str, *roles: Role | str, at: datetime, by: str = "") -> None:
        """``person`` no longer holds ``roles`` in ``scope`` from ``at`` on; before ``at`` they still
        did (the rows stay). Revoking a role not held is ``InvalidInput``, and then none is revoked."""
        if at is None:
            raise InvalidInput("a revocation needs 'at': from when the role is no longer held")
        pid, resolved = check_grant(scope, person, roles, at, by)
        until = _us(at)
        with self._transaction() as conn:  # an error rolls back every role of the call
            for role in resolved:
                if conn.execute(_REVOKE, (until, by, scope, pid, role.value, until)).rowcount:
                    continue
                row = conn.execute(_OPEN, (scope, pid, role.value)).fetchone()
                if row is None:
                    raise InvalidInput(f"{pid} does not hold {role.value} in {scope}: nothing to revoke")
                raise InvalidInput(f"a revocation at {at} comes before the grant it ends ({_dt(row[0])})")

    def roles(self, person: str, community: str, at: datetime) -> frozenset[Role]:
        """The roles ``person`` holds in ``community`` at ``at``, its levels' included: one query."""
        instant = _us(check_instant(at))
        if not (storable_id(person) and storable_id(community)):  # nobody holds anything there
            self._check_open()
            return frozenset()
        with self._conn() as conn:
            rows = conn.execute(_ROLES, (community, person, instant)).fetchall()
        return frozenset(_role(r[0], self.path) for r in rows)

    def grants(self, *, person: str | None = None, scope: str | None = None) -> tuple[Grant, ...]:
        """Every grant recorded (revoked ones too), optionally of one person or scope, oldest first."""
        found = grants_filter(person, scope, "?")
        if found is None:  # no grant can match
            self._check_open()
            return ()
        where, args = found
        sql = _GRANTS + where + " ORDER BY id"
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return tuple(_grant(row, self.path, _dt) for row in rows)

    def members(self, community: str, at: datetime, roles: Iterable[Role] | None = None) -> tuple[str, ...]:
        """Who holds a role (one of ``roles``, or any) in ``community`` itself at ``at``, sorted."""
        instant = _us(check_instant(at))
        wanted = wanted_roles(roles)
        sql, args = _MEMBERS, [community, instant, instant]
        if wanted is not None:
            sql += f" AND role IN ({', '.join('?' * len(wanted))})"
            args.extend(sorted(r.value for r in wanted))
        if not storable_id(community) or wanted == frozenset():
            self._check_open()
            return ()
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return tuple(sorted(str(r[0]) for r in rows))

    def schema_version(self) -> int:
        """The directory's schema version in the file (``SCHEMA_VERSION`` once opened)."""
        with self._conn() as conn:
            return int(conn.execute("SELECT coalesce(max(version), 0) FROM directory_schema").fetchone()[0])

    # ---- connections ------------------------------------------------------------------------------
    def _check_open(self) -> None:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("this SQLiteDirectory is closed; open a new one to go on")

    # ---- schema -----------------------------------------------------------------------------------
    def _prepare(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(
                f"{self.path} cannot use write-ahead logging (journal_mode={mode}); use a local disk"
            )
        migrate(conn, self.path)


def migrate(conn: sqlite3.Connection, path: Path | str = "", *, target: int = SCHEMA_VERSION) -> int:
    """Bring the directory's tables in ``conn``'s database to ``target`` (default: the latest), in
    one transaction holding the write lock. Returns the version reached. Refuses a file of a newer
    directory schema, or one that holds tables consultflow did not create."""
    return run_migrations(
        conn,
        path,
        MIGRATIONS,
        target=target,
        table="directory_schema",
        marks=_OURS,
        label="directory ",
        own_file="give the directory its own file, or the store's",
    )


def _role(value: Any, where: object) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise IntegrityError(f"{where}: a stored grant holds {value!r:.80}, which is no role") from None


def _grant(row: tuple[Any, ...], where: object, instant: Any) -> Grant:
    """A stored row as a ``Grant`` (``instant`` turns a stored time into a datetime)."""
    scope, person, role, since, granted_by, until, revoked_by = row
    try:
        return Grant(
            scope=scope,
            person=person,
            role=_role(role, where),
            since=None if since is None else instant(since),
            granted_by=granted_by,
            until=None if until is None else instant(until),
            revoked_by=revoked_by,
        )
    except (InvalidInput, OverflowError, TypeError) as exc:
        raise IntegrityError(
            f"{where}: a stored grant does not read ({exc}); it was changed outside consultflow"
        ) from exc
