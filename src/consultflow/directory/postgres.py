"""``PostgresDirectory``: the directory in PostgreSQL (psycopg 3, the extra ``consultflow[postgres]``).

Same API and meaning as ``MemoryDirectory``; what the server adds:

- **Grants are rows, never deleted** (``directory_grants``: scope, person, role, ``since``,
  ``granted_by``, ``until``, ``revoked_by``; times as ``timestamptz``, ``NULL`` for "from the
  start" and "still held"). A grant is one statement; a unique index on the open rows keeps one
  open grant per scope, person and role however many servers grant at once. A revocation closes
  the open rows (``UPDATE ... WHERE until IS NULL``) in one transaction: all the roles named, or
  none.
- **Placements** (``directory_places``): a community, its sub-district's scope, its district's.
- **``roles()`` is one indexed query**: the community's own grants and its levels', at an instant.
- **Beside the store**: tables prefixed ``directory_`` in ``schema`` (by default the store's,
  ``consultflow``), created on first use under the same advisory lock as the store's, with their
  own version table (``directory_schema_version``).
- **Threads and processes**: a small pool hands each call its own connection; a forked child
  opens fresh ones.

Errors are the library's: ``InvalidInput``, ``StoreUnavailable`` (server down, connection lost,
retryable), ``IntegrityError``; the psycopg exception is kept as ``__cause__``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConsultflowError, IntegrityError, InvalidInput, StoreUnavailable
from ..roles import Role
from ..storage.postgres import _SCHEMA_NAME, PostgresStore, _connector, _first_line, _Pool, _psycopg, run_migrations
from .base import Grant, check_grant, check_instant, check_place, grants_filter, storable_id, wanted_roles
from .sqlite import _grant, _role

if TYPE_CHECKING:
    from psycopg import Connection

    _Connection = Connection[tuple[Any, ...]]

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresDirectory"]

_T = TypeVar("_T")

#: The directory's schema changes, oldest first: (version, description, statements), ``{s}`` the
#: quoted schema. Append to change the schema; never edit one that has shipped.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "directory grants and placements",
        (
            """CREATE TABLE {s}.directory_grants (
                id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                scope      text COLLATE "C" NOT NULL,
                person     text COLLATE "C" NOT NULL,
                role       text COLLATE "C" NOT NULL,
                since      timestamptz,
                granted_by text NOT NULL DEFAULT '',
                until      timestamptz,
                revoked_by text NOT NULL DEFAULT '',
                CHECK (since IS NULL OR until IS NULL OR since <= until)
            )""",
            # one open grant per scope, person and role
            "CREATE UNIQUE INDEX directory_grants_open ON {s}.directory_grants (scope, person, role) "
            "WHERE until IS NULL",
            # roles() (and grants(person=...)): a person's grants, covering (index-only once vacuumed)
            "CREATE INDEX directory_grants_held ON {s}.directory_grants (person, scope, role, since, until)",
            # members() (and grants(scope=...)): a scope's grants, covering
            "CREATE INDEX directory_grants_scope ON {s}.directory_grants (scope, person, role, since, until)",
            """CREATE TABLE {s}.directory_places (
                community    text COLLATE "C" PRIMARY KEY,
                sub_district text COLLATE "C",
                district     text COLLATE "C"
            )""",
        ),
    ),
)

#: The directory schema version this code writes.
SCHEMA_VERSION: int = MIGRATIONS[-1][0]

_ROLES = """SELECT DISTINCT role FROM {s}.directory_grants
    WHERE scope IN (%(c)s::text, (SELECT sub_district FROM {s}.directory_places WHERE community = %(c)s::text),
                                 (SELECT district FROM {s}.directory_places WHERE community = %(c)s::text))
      AND person = %(p)s::text
      AND (since IS NULL OR since <= %(at)s::timestamptz) AND (until IS NULL OR until > %(at)s::timestamptz)"""
_MEMBERS = """SELECT DISTINCT person FROM {s}.directory_grants
    WHERE scope = %(c)s::text AND (since IS NULL OR since <= %(at)s::timestamptz)
      AND (until IS NULL OR until > %(at)s::timestamptz)"""
_GRANT = """INSERT INTO {s}.directory_grants (scope, person, role, since, granted_by)
    SELECT %(scope)s::text, %(person)s::text, x.role, %(since)s::timestamptz, %(by)s::text
    FROM unnest(%(roles)s::text[]) WITH ORDINALITY AS x(role, n) ORDER BY x.n
    ON CONFLICT (scope, person, role) WHERE until IS NULL DO NOTHING"""
_REVOKE = """UPDATE {s}.directory_grants SET until = %(at)s::timestamptz, revoked_by = %(by)s::text
    WHERE scope = %(scope)s::text AND person = %(person)s::text AND role = ANY(%(roles)s::text[])
      AND until IS NULL AND (since IS NULL OR since <= %(at)s::timestamptz)
    RETURNING role"""
_OPEN = """SELECT since FROM {s}.directory_grants
    WHERE scope = %s::text AND person = %s::text AND role = %s::text AND until IS NULL"""
_PLACE = """INSERT INTO {s}.directory_places (community, sub_district, district) VALUES (%s, %s, %s)
    ON CONFLICT (community) DO UPDATE SET sub_district = excluded.sub_district, district = excluded.district"""
_GRANTS = "SELECT scope, person, role, since, granted_by, until, revoked_by FROM {s}.directory_grants"


def _same(value: datetime) -> datetime:
    return value


class PostgresDirectory:
    """Who holds which role where, in PostgreSQL. ``dsn`` is a libpq connection string or URI;
    the tables live in ``schema`` (created on first use; the store's by default, so one database
    holds both). ``max_connections``, ``pool_timeout``, ``connect_timeout``, ``statement_timeout``,
    ``create_schema`` and ``connect_options`` mean what they mean for ``PostgresStore``.
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
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidInput(f"schema {schema!r} is not a plain identifier; use letters, digits and '_' (at most 63)")
        if not isinstance(max_connections, int) or max_connections < 1:
            raise InvalidInput("max_connections must be at least 1")
        self.schema = schema
        self.create_schema = create_schema
        self._where = PostgresStore._describe(psycopg, dsn)  # no password in messages
        s = f'"{schema}"'
        self._s = s
        self._sql = {
            name: sql.format(s=s)
            for name, sql in (
                ("roles", _ROLES),
                ("members", _MEMBERS),
                ("grant", _GRANT),
                ("revoke", _REVOKE),
                ("open", _OPEN),
                ("place", _PLACE),
                ("grants", _GRANTS),
            )
        }
        connect = _connector(dsn, self._where, connect_timeout, application_name, statement_timeout, connect_options)

        self._pool = _Pool(connect, max_connections, pool_timeout)
        self._closed = False
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresDirectory({self._where!r}, schema={self.schema!r})"

    # ---- the directory ----------------------------------------------------------------------------
    def place(self, community: str, *, sub_district: str | None = None, district: str | None = None) -> None:
        """Put ``community`` under a sub-district (街道) and a district (区), by their names: the
        officials granted a role there act in it. Placing it again replaces its levels."""
        levels = check_place(community, sub_district, district)
        sub = next((s for s in levels if s.startswith("sub-district:")), None)
        dis = next((s for s in levels if s.startswith("district:")), None)
        sql = self._sql["place"]

        def run(conn: _Connection) -> None:
            conn.execute(sql, (community, sub, dis))

        self._run("place", run, idempotent=True)

    def grant(self, scope: str, person: str, *roles: Role | str, by: str = "", at: datetime | None = None) -> None:
        """``person`` holds ``roles`` in ``scope`` from ``at`` on (from the start if ``None``).
        Granting a role already held changes nothing. One statement."""
        pid, resolved = check_grant(scope, person, roles, at, by)
        params = {"scope": scope, "person": pid, "since": at, "by": by, "roles": [r.value for r in resolved]}
        sql = self._sql["grant"]

        def run(conn: _Connection) -> None:
            conn.execute(sql, params)

        self._run("grant", run, idempotent=True)  # a grant repeated changes nothing

    def revoke(self, scope: str, person: str, *roles: Role | str, at: datetime, by: str = "") -> None:
        """``person`` no longer holds ``roles`` in ``scope`` from ``at`` on; before ``at`` they still
        did (the rows stay). Revoking a role not held is ``InvalidInput``, and then none is revoked."""
        if at is None:
            raise InvalidInput("a revocation needs 'at': from when the role is no longer held")
        pid, resolved = check_grant(scope, person, roles, at, by)
        params = {"scope": scope, "person": pid, "at": at, "by": by, "roles": [r.value for r in resolved]}
        revoke, open_ = self._sql["revoke"], self._sql["open"]

        def run(conn: _Connection) -> None:
            with conn.transaction():  # an error rolls back every role of the call
                closed = {str(r[0]) for r in conn.execute(revoke, params).fetchall()}
                for role in resolved:
                    if role.value in closed:
                        continue
                    row = conn.execute(open_, (scope, pid, role.value)).fetchone()
                    if row is None:
                        raise InvalidInput(f"{pid} does not hold {role.value} in {scope}: nothing to revoke")
                    raise InvalidInput(f"a revocation at {at} comes before the grant it ends ({row[0]})")

        self._run("revoke", run, idempotent=False)

    def roles(self, person: str, community: str, at: datetime) -> frozenset[Role]:
        """The roles ``person`` holds in ``community`` at ``at``, its levels' included: one query."""
        check_instant(at)
        self._check_open()
        if not (storable_id(person) and storable_id(community)):
            return frozenset()
        sql, params = self._sql["roles"], {"c": community, "p": person, "at": at}

        def run(conn: _Connection) -> frozenset[Role]:
            return frozenset(_role(r[0], self) for r in conn.execute(sql, params).fetchall())

        return self._run("roles", run, idempotent=True)

    def grants(self, *, person: str | None = None, scope: str | None = None) -> tuple[Grant, ...]:
        """Every grant recorded (revoked ones too), optionally of one person or scope, oldest first."""
        self._check_open()
        found = grants_filter(person, scope, "%s::text")
        if found is None:
            return ()
        where, args = found
        sql = self._sql["grants"] + where + " ORDER BY id"

        def run(conn: _Connection) -> tuple[Grant, ...]:
            return tuple(_grant(row, self, _same) for row in conn.execute(sql, args).fetchall())

        return self._run("grants", run, idempotent=True)

    def members(self, community: str, at: datetime, roles: Iterable[Role] | None = None) -> tuple[str, ...]:
        """Who holds a role (one of ``roles``, or any) in ``community`` itself at ``at``, sorted."""
        check_instant(at)
        wanted = wanted_roles(roles)
        self._check_open()
        if not storable_id(community) or wanted == frozenset():
            return ()
        sql = self._sql["members"]
        params: dict[str, Any] = {"c": community, "at": at}
        if wanted is not None:
            sql += " AND role = ANY(%(roles)s::text[])"
            params["roles"] = sorted(r.value for r in wanted)

        def run(conn: _Connection) -> tuple[str, ...]:
            return tuple(sorted(str(r[0]) for r in conn.execute(sql, params).fetchall()))

        return self._run("members", run, idempotent=True)

    def migrate(self) -> int:
        """Create the tables or bring them up to date now (otherwise done on first use); returns
        the directory's schema version."""
        self._check_open()
        self._ensure_schema()
        return SCHEMA_VERSION

    def close(self) -> None:
        """Close the connections; further calls raise ``StoreUnavailable``. Closing twice is harmless."""
        self._closed = True
        self._pool.close()

    def __enter__(self) -> PostgresDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals --------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("this PostgresDirectory is closed; open a new one to go on")

    def _run(self, what: str, fn: Callable[[_Connection], _T], *, idempotent: bool) -> _T:
        """Run ``fn`` on a pooled connection, translating psycopg's errors into the library's. An
        idempotent call is retried once on a fresh connection if its connection broke."""
        psycopg = _psycopg()
        self._check_open()
        if not self._ready:
            self._ensure_schema()
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            conn = self._acquire()
            try:
                return fn(conn)
            except psycopg.Error as exc:
                if conn.broken:
                    self._pool.drop_idle()  # a server restart breaks them all: reconnect afresh
                    if attempt + 1 < attempts:
                        continue
                raise self._translate(exc, what, conn.broken) from exc
            finally:
                self._pool.release(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _acquire(self) -> _Connection:
        try:
            return self._pool.acquire()
        except StoreUnavailable:
            self._check_open()  # closed meanwhile: say so in the directory's words
            raise

    def _translate(self, exc: Exception, what: str, broken: bool) -> ConsultflowError:
        psycopg = _psycopg()
        errors = psycopg.errors
        detail = _first_line(exc)
        if isinstance(exc, psycopg.DataError):
            return InvalidInput(f"PostgreSQL cannot take a value passed to {what}(): {detail}")
        if isinstance(exc, psycopg.IntegrityError):
            return IntegrityError(f"PostgreSQL refused {what}: {detail}; nothing was written")
        if isinstance(exc, errors.UndefinedTable | errors.InvalidSchemaName):
            return StoreUnavailable(
                f"the directory's tables in schema {self.schema!r} are missing at {self._where} ({detail}); "
                "create them with PostgresDirectory(..., create_schema=True) or directory.migrate()"
            )
        if isinstance(exc, errors.TransactionRollback | errors.LockNotAvailable | errors.QueryCanceled):
            return StoreUnavailable(f"PostgreSQL gave up on {what} ({detail}); nothing was written - retry")
        if broken or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return StoreUnavailable(f"lost PostgreSQL at {self._where} during {what} ({detail}); retry when it is back")
        return StoreUnavailable(f"PostgreSQL failed during {what} at {self._where}: {detail}")

    def _ensure_schema(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            psycopg = _psycopg()
            conn = self._acquire()
            try:
                self._migrate(conn)
            except psycopg.Error as exc:
                raise self._translate(exc, "creating the directory's tables", conn.broken) from exc
            finally:
                self._pool.release(conn)
            self._ready = True

    def _migrate(self, conn: _Connection) -> None:
        run_migrations(
            conn,
            MIGRATIONS,
            schema=self.schema,
            table=f"{self._s}.directory_schema_version",
            create=self.create_schema,
            not_current=(
                f"the directory's tables in schema {self.schema!r} at {self._where} are not at version "
                f"{SCHEMA_VERSION}; run PostgresDirectory(..., create_schema=True).migrate() once with a role "
                "that may create tables"
            ),
            newer=lambda version: (
                f"the directory's tables in schema {self.schema!r} at {self._where} are at version {version}, "
                f"newer than this consultflow knows ({SCHEMA_VERSION}); upgrade consultflow"
            ),
        )
