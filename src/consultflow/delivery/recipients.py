"""Recipients: who a notice reaches, and how (接收人).

A notice names its audience as people, ``role:<role>`` and ``public:<community>``. At send time
``Recipients.resolve`` turns that into concrete targets: each person's contacts (a channel name and
an address) and language from a ``ContactBook``; role groups through the directory of who holds
which role where; ``public:<community>`` through the community's notice board contacts (公开栏, a
WeChat group, ...). Offline residents (no phone, no e-mail) are reached through the notice board,
as the seed does with round tables and notice boards for older residents. A person with no
reachable channel is reported as ``Unreachable``, never silently skipped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from ..directory.base import Directory, Grant, level_of
from ..errors import InvalidInput
from ..i18n import LANGS, Lang
from ..notices import PUBLIC
from ..roles import Role, person_id

__all__ = [
    "ROLE_PREFIX",
    "Contact",
    "ContactBook",
    "MemoryContacts",
    "Person",
    "Recipients",
    "Resolution",
    "Target",
    "Unreachable",
]

ROLE_PREFIX = "role:"
_MAX_ADDRESS = 2048
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _channel_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(f"a channel name is 1-64 letters, digits, '-' or '_', not {value!r}")


def _address(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or len(value) > _MAX_ADDRESS or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"a contact address is text of at most {_MAX_ADDRESS} characters without control characters")


def _lang(value: object) -> Lang:
    if value not in LANGS:
        raise InvalidInput(f"language must be one of {', '.join(LANGS)}, not {value!r}")
    return value


@attrs.frozen(slots=True)
class Contact:
    """One way to reach someone: the name of a configured channel (``email``, ``wecom``, ...) and
    the address on it (empty for a channel with a fixed endpoint)."""

    channel: str = attrs.field(validator=_channel_name)
    address: str = attrs.field(default="", validator=_address)


def _contacts(value: Iterable[Contact]) -> tuple[Contact, ...]:
    out = tuple(value)
    if not all(isinstance(c, Contact) for c in out):
        raise InvalidInput("a person's contacts must be Contact values")
    return out


@attrs.frozen(slots=True)
class Person:
    """A person's contacts and language. ``offline``: reached through the notice board of the
    consultation's community (older residents without a phone or e-mail)."""

    id: str = attrs.field(converter=person_id)
    contacts: tuple[Contact, ...] = attrs.field(default=(), converter=_contacts)
    lang: Lang = attrs.field(default="zh", converter=_lang)
    offline: bool = False


@runtime_checkable
class ContactBook(Protocol):
    """Where contacts come from: a person's, and a community's notice board."""

    def person(self, person: str) -> Person | None: ...

    def board(self, community: str) -> tuple[Contact, ...]: ...


class MemoryContacts:
    """A contact book kept in memory (tests, small deployments, the config file's ``[people]``)."""

    def __init__(self, people: Iterable[Person] = (), boards: Mapping[str, Iterable[Contact]] | None = None) -> None:
        self._people: dict[str, Person] = {}
        self._boards: dict[str, tuple[Contact, ...]] = {}
        self._lock = threading.Lock()
        for p in people:
            self.add(p)
        for community, contacts in (boards or {}).items():
            self.set_board(community, *contacts)

    def add(self, person: Person) -> None:
        if not isinstance(person, Person):
            raise InvalidInput(f"expected a Person, not {type(person).__name__}")
        with self._lock:
            self._people[person.id] = person

    def set_board(self, community: str, *contacts: Contact) -> None:
        """The community's notice board (公开栏): where ``public:<community>`` and offline residents go."""
        if not all(isinstance(c, Contact) for c in contacts):
            raise InvalidInput("a notice board's contacts must be Contact values")
        with self._lock:
            self._boards[community] = tuple(contacts)

    def person(self, person: str) -> Person | None:
        with self._lock:
            return self._people.get(person)

    def board(self, community: str) -> tuple[Contact, ...]:
        with self._lock:
            return self._boards.get(community, ())


@attrs.frozen(slots=True)
class Target:
    """One recipient on one contact, in their language."""

    recipient: str
    contact: Contact
    lang: Lang


@attrs.frozen(slots=True)
class Unreachable:
    """A recipient nobody could reach, and why (reported by the dispatcher, never skipped silently)."""

    recipient: str
    reason: str


@attrs.frozen(slots=True)
class Resolution:
    targets: tuple[Target, ...]
    unreachable: tuple[Unreachable, ...]


@runtime_checkable
class _Members(Protocol):
    def members(self, community: str, at: datetime, roles: Iterable[Role] | None = None) -> tuple[str, ...]: ...


@runtime_checkable
class _Grants(Protocol):
    def grants(self, *, person: str | None = None, scope: str | None = None) -> tuple[Grant, ...]: ...


class Recipients:
    """Resolves audiences into targets. ``directory`` answers ``role:<role>`` (its ``members`` and,
    for the roles held above the community - the sub-district's, the legal adviser's - its
    ``grants``); ``board_lang`` is the language of notice boards."""

    def __init__(self, contacts: ContactBook, directory: Directory | None = None, *, board_lang: Lang = "zh") -> None:
        if not isinstance(contacts, ContactBook):
            raise InvalidInput("contacts must have person(id) and board(community)")
        self.contacts = contacts
        self.directory = directory
        self.board_lang = _lang(board_lang)

    def resolve(self, audience: Iterable[str], community: str, at: datetime) -> Resolution:
        targets: dict[tuple[str, str], Target] = {}
        unreachable: dict[str, Unreachable] = {}
        people: list[str] = []
        for group in audience:
            if group.startswith(PUBLIC):
                self._board(group[len(PUBLIC) :], group, targets, unreachable)
            elif group.startswith(ROLE_PREFIX):
                holders = self._holders(group[len(ROLE_PREFIX) :], community, at, unreachable, group)
                if holders is not None and not holders:
                    unreachable[group] = Unreachable(group, f"nobody holds {group} in {community}")
                people.extend(holders or ())
            else:
                people.append(group)
        for pid in dict.fromkeys(people):
            self._person(pid, community, targets, unreachable)
        return Resolution(tuple(targets.values()), tuple(unreachable.values()))

    def _board(
        self, community: str, recipient: str, targets: dict[tuple[str, str], Target], out: dict[str, Unreachable]
    ) -> bool:
        contacts = self.contacts.board(community)
        if not contacts:
            out[recipient] = Unreachable(recipient, f"community {community!r} has no notice board contact")
            return False
        board = PUBLIC + community
        for c in contacts:
            targets.setdefault((c.channel, c.address), Target(board, c, self.board_lang))
        return True

    def _person(
        self, pid: str, community: str, targets: dict[tuple[str, str], Target], out: dict[str, Unreachable]
    ) -> None:
        person = self.contacts.person(pid)
        if person is not None and person.contacts:
            for c in person.contacts:
                targets.setdefault((c.channel, c.address), Target(pid, c, person.lang))
            return
        if person is not None and person.offline:
            if not self._board(community, PUBLIC + community, targets, out):
                out[pid] = Unreachable(pid, f"offline, and community {community!r} has no notice board contact")
            return
        why = "not in the contact book" if person is None else "has no contact and is not marked offline"
        out[pid] = Unreachable(pid, why)

    def _holders(
        self, role_text: str, community: str, at: datetime, out: dict[str, Unreachable], group: str
    ) -> tuple[str, ...] | None:
        try:
            role = Role(role_text)
        except ValueError:
            out[group] = Unreachable(group, f"{role_text!r} is not a role")
            return None
        directory = self.directory
        if directory is None or not isinstance(directory, _Members):
            out[group] = Unreachable(group, "no directory with members() to say who holds the role")
            return None
        found = set(directory.members(community, at, [role]))
        if isinstance(directory, _Grants):  # officials placed above the community act in it too
            for g in directory.grants():
                above = g.role is role and level_of(g.scope) != "community" and g.person not in found
                if above and role in directory.roles(g.person, community, at):
                    found.add(g.person)
        return tuple(sorted(found))
