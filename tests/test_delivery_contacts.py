"""The SQLite contact book: people's contacts and notice boards beside the store and the directory,
checked again when read, shared by threads."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consultflow import IntegrityError, InvalidInput, Role, StoreUnavailable
from consultflow.delivery import Contact, ContactBook, Person, Recipients, SQLiteContacts
from consultflow.directory.sqlite import SQLiteDirectory
from consultflow.storage.sqlite import SQLiteStore
from delivery_support import seed

AT = datetime(2026, 3, 3, tzinfo=UTC)


def test_people_and_boards_are_kept_and_read_back(tmp_path: Path) -> None:
    with SQLiteContacts(tmp_path / "c.db") as book:
        assert isinstance(book, ContactBook)
        book.add(Person("Li", [Contact("email", "li@x.example"), Contact("sms", "+8613800000000")], lang="en"))
        book.add(Person("zhao", offline=True))
        book.set_board("xiaotaoyuan", Contact("wecom", "wecombot://board"))
    with SQLiteContacts(tmp_path / "c.db") as book:  # another handle: it is on disk
        li = book.person("li")
        assert li == Person("li", [Contact("email", "li@x.example"), Contact("sms", "+8613800000000")], lang="en")
        assert book.person("zhao") == Person("zhao", offline=True)
        assert book.person("nobody") is None
        assert book.person("not an id") is None
        assert book.board("xiaotaoyuan") == (Contact("wecom", "wecombot://board"),)
        assert book.board("elsewhere") == ()
        book.add(Person("li", [Contact("email", "li@new.example")]))  # replaces
        assert book.person("li") == Person("li", [Contact("email", "li@new.example")])
        book.remove("li")
        assert book.person("li") is None


def test_one_file_holds_the_store_the_directory_and_the_contacts(tmp_path: Path) -> None:
    path = tmp_path / "consult.db"
    with SQLiteContacts(path) as book:
        book.add(Person("wang", [Contact("email", "wang@x.example")]))
    with SQLiteStore(path) as store, SQLiteDirectory(path) as directory, SQLiteContacts(path) as book:
        keys = seed(store, 1)
        directory.grant("east", "wang", Role.COMMITTEE)
        got = Recipients(book, directory).resolve(("role:committee",), "east", AT)
        assert [(t.recipient, t.contact.address) for t in got.targets] == [("wang", "wang@x.example")]
        assert [n.key for n in store.outbox()] == keys


def test_a_row_changed_outside_consultflow_is_an_integrity_error(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with SQLiteContacts(path) as book:
        book.add(Person("li", [Contact("email", "li@x.example")]))
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE contacts_addresses SET address = 'li@x.example' || char(13, 10) || 'Bcc: all'")
    with SQLiteContacts(path) as book, pytest.raises(IntegrityError):
        book.person("li")


def test_a_file_of_someone_elses_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreUnavailable, match="did not create"):
        SQLiteContacts(path)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with SQLiteContacts(tmp_path / "c.db") as book:
        with pytest.raises(InvalidInput):
            book.add("li")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            book.set_board("", Contact("board"))
        with pytest.raises(InvalidInput):
            book.set_board("east", "wecombot://x")  # type: ignore[arg-type]


def test_threads_importing_at_once_lose_nobody(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with SQLiteContacts(path) as book:

        def load(part: int) -> None:
            book.add_many(Person(f"p{part}-{i}", [Contact("email", f"p{part}-{i}@x.example")]) for i in range(50))

        threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert all(book.person(f"p{k}-{i}") is not None for k in range(4) for i in range(50))
