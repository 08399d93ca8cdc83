"""A contact book in SQLite (通讯录): the people's contacts and the communities' notice boards,
kept beside the store and the directory (the same file or its own), for deployments with more
people than a config file should hold.

It builds on the store's SQLite handling (``SQLiteFile``: a connection pool safe across threads and
``fork``, ``BEGIN IMMEDIATE`` writes, errors translated into the library's) and keeps its own schema
version in ``contacts_schema``. What it reads back is checked again (``Contact``, ``Person``): a row
changed outside consultflow is ``IntegrityError``, never a bad delivery.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ..errors import IntegrityError, InvalidInput
from ..roles import person_id
from ..storage.sqlite import Migration, SQLiteFile, Synchronous, run_migrations
from .recipients import Contact, Person

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteContacts"]

#: The contact book's schema changes, oldest first (kept in ``contacts_schema``). Append; never edit
#: one that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "contacts of people and notice boards",
        (
            """CREATE TABLE contacts_people (
                person  TEXT PRIMARY KEY,
                lang    TEXT NOT NULL,
                offline INTEGER NOT NULL CHECK (offline IN (0, 1))
            )""",
            """CREATE TABLE contacts_addresses (
                kind     TEXT NOT NULL CHECK (kind IN ('person', 'board')),
                owner    TEXT NOT NULL,
                position INTEGER NOT NULL,
                channel  TEXT NOT NULL,
                address  TEXT NOT NULL,
                PRIMARY KEY (kind, owner, position)
            )""",
        ),
    ),
)
SCHEMA_VERSION: int = MIGRATIONS[-1].version

_OURS = frozenset({"consultflow_schema", "directory_schema", "contacts_schema"})


class SQLiteContacts(SQLiteFile):
    """People's contacts and notice boards in a SQLite file (created with its tables on first use).
    Implements ``ContactBook``; ``add``, ``remove`` and ``set_board`` write."""

    _kind = "contact book"
    _integrity_hint = ""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Synchronous = "FULL", busy_timeout: float = 5.0
    ) -> None:
        super().__init__(path, synchronous=synchronous, busy_timeout=busy_timeout, readonly=False)
        try:
            with self._conn() as conn:
                migrate(conn, self.path)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteContacts({str(self.path)!r})"

    # ---- writing ----------------------------------------------------------------------------------
    def add(self, person: Person) -> None:
        """Keep ``person`` (replacing what was kept for the same id)."""
        if not isinstance(person, Person):
            raise InvalidInput(f"expected a Person, not {type(person).__name__}")
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO contacts_people (person, lang, offline) VALUES (?, ?, ?) "
                "ON CONFLICT (person) DO UPDATE SET lang = excluded.lang, offline = excluded.offline",
                (person.id, person.lang, int(person.offline)),
            )
            self._write(conn, "person", person.id, person.contacts)

    def add_many(self, people: Iterable[Person]) -> int:
        """Keep many people in one transaction (an import from the app's user table); how many."""
        items = list(people)
        for p in items:
            if not isinstance(p, Person):
                raise InvalidInput(f"expected Person values, not {type(p).__name__}")
        with self._transaction() as conn:
            for p in items:
                conn.execute(
                    "INSERT INTO contacts_people (person, lang, offline) VALUES (?, ?, ?) "
                    "ON CONFLICT (person) DO UPDATE SET lang = excluded.lang, offline = excluded.offline",
                    (p.id, p.lang, int(p.offline)),
                )
                self._write(conn, "person", p.id, p.contacts)
        return len(items)

    def remove(self, person: str) -> None:
        """Forget a person's contacts (someone who moved away); harmless for an unknown id."""
        pid = person_id(person)
        with self._transaction() as conn:
            conn.execute("DELETE FROM contacts_people WHERE person = ?", (pid,))
            conn.execute("DELETE FROM contacts_addresses WHERE kind = 'person' AND owner = ?", (pid,))

    def set_board(self, community: str, *contacts: Contact) -> None:
        """The community's notice board contacts (公开栏): ``public:<community>`` and offline residents."""
        if not isinstance(community, str) or not community or len(community) > 128:
            raise InvalidInput(f"a community id is needed, not {community!r:.80}")
        if not all(isinstance(c, Contact) for c in contacts):
            raise InvalidInput("a notice board's contacts must be Contact values")
        with self._transaction() as conn:
            self._write(conn, "board", community, contacts)

    @staticmethod
    def _write(conn: sqlite3.Connection, kind: str, owner: str, contacts: Iterable[Contact]) -> None:
        conn.execute("DELETE FROM contacts_addresses WHERE kind = ? AND owner = ?", (kind, owner))
        conn.executemany(
            "INSERT INTO contacts_addresses (kind, owner, position, channel, address) VALUES (?, ?, ?, ?, ?)",
            [(kind, owner, i, c.channel, c.address) for i, c in enumerate(contacts)],
        )

    # ---- the contact book -----------------------------------------------------------------------------
    def person(self, person: str) -> Person | None:
        try:
            pid = person_id(person)
        except InvalidInput:
            return None
        with self._conn() as conn:
            row = conn.execute("SELECT lang, offline FROM contacts_people WHERE person = ?", (pid,)).fetchone()
            if row is None:
                return None
            contacts = self._read(conn, "person", pid)
        try:
            return Person(pid, contacts, lang=row[0], offline=bool(row[1]))
        except InvalidInput as exc:
            raise IntegrityError(f"{self.path}: the stored contacts of {pid!r} do not read ({exc})") from exc

    def board(self, community: str) -> tuple[Contact, ...]:
        if not isinstance(community, str):
            return ()
        with self._conn() as conn:
            return self._read(conn, "board", community)

    def _read(self, conn: sqlite3.Connection, kind: str, owner: str) -> tuple[Contact, ...]:
        rows = conn.execute(
            "SELECT channel, address FROM contacts_addresses WHERE kind = ? AND owner = ? ORDER BY position",
            (kind, owner),
        ).fetchall()
        try:
            return tuple(Contact(str(ch), str(addr)) for ch, addr in rows)
        except InvalidInput as exc:
            raise IntegrityError(f"{self.path}: a stored contact of {owner!r} does not read ({exc})") from exc


def migrate(conn: sqlite3.Connection, path: Path | str = "", *, target: int = SCHEMA_VERSION) -> int:
    """Bring the contact book's tables to ``target`` in one transaction; refuses a newer schema or a
    file holding tables consultflow did not create."""
    return run_migrations(
        conn,
        path,
        MIGRATIONS,
        target=target,
        table="contacts_schema",
        marks=_OURS,
        label="contact book ",
        own_file="give the contact book its own file, or the store's",
    )
