"""The directory contract: who holds which role in which community, at which moment.

The directory is the one source of roles. The caller authenticates a person (the app's login);
the engine asks the directory what that person may be in the consultation's community at the
moment of the step, and never believes roles a caller claims - unless the engine is given
``TrustCallerRoles()``, which says so in the code.

Scopes: a community (its id), or a level above it - ``sub_district("ninghai")``,
``district("gulou")`` - whose officials act in every community placed under it, but only in the
roles a level holds (``LEVEL_ROLES``: the sub-district's 督办 and the legal adviser's review).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import ClassVar, Protocol, runtime_checkable

from pydantic import AwareDatetime, Field

from ..errors import InvalidInput
from ..records import Id, Record
from ..roles import NEVER_GRANTED, RESERVED_PREFIX, Role, person_id, valid_id

__all__ = [
    "LEVEL_ROLES",
    "Directory",
    "Grant",
    "Register",
    "TrustCallerRoles",
    "check_grant",
    "district",
    "level_of",
    "register_of",
    "sub_district",
]

_SUB_DISTRICT = "sub-district:"
_DISTRICT = "district:"

#: Roles a level above the community may hold there: the sub-district's officials (街道, 督办)
#: and the legal adviser (法律顾问 / 司法所). Everything else is held in a community.
LEVEL_ROLES: frozenset[Role] = frozenset({Role.SUB_DISTRICT, Role.LEGAL_ADVISER})


def sub_district(name: str) -> str:
    """The scope of a sub-district (街道): ``sub-district:<name>``."""
    return _scope(_SUB_DISTRICT, name)


def district(name: str) -> str:
    """The scope of a district (区): ``district:<name>``."""
    return _scope(_DISTRICT, name)


def _scope(prefix: str, name: str) -> str:
    if not storable_id(name) or ":" in name:
        raise InvalidInput(f"{name!r} is not a name for a {prefix[:-1]}: use an id without ':'")
    return prefix + name


def as_person(value: object) -> str | None:
    """A person named in a question (``grants(person=...)``) as the directory keeps them - ``LI``
    and ``ｌｉ`` ask about ``li`` - or ``None`` when no one could have that id (nothing to find)."""
    try:
        pid = person_id(value)
    except InvalidInput:
        return None
    return pid if storable_id(pid) else None


def grants_filter(person: str | None, scope: str | None, placeholder: str) -> tuple[str, list[str]] | None:
    """The ``WHERE`` clause (with ``placeholder`` for each value) and its values that a database
    directory's ``grants(person=..., scope=...)`` asks with, or ``None`` when no grant can match (a
    person or scope no one could have): every directory filters the same way."""
    where: list[str] = []
    args: list[str] = []
    if person is not None:
        person = as_person(person)  # LI and ｌｉ ask about li
        if person is None:  # no one has that id
            return None
    for column, value in (("person", person), ("scope", scope)):
        if value is None:
            continue
        if not storable_id(value):
            return None
        where.append(f"{column} = {placeholder}")
        args.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), args


def storable_id(value: object) -> bool:
    """An id a directory can keep: ``valid_id``, and text every database can store (a lone
    surrogate is not Unicode text: no file or server can hold it)."""
    if not isinstance(value, str) or not valid_id(value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def level_of(scope: str) -> str:
    """``community``, ``sub-district`` or ``district``."""
    if scope.startswith(_SUB_DISTRICT):
        return "sub-district"
    if scope.startswith(_DISTRICT):
        return "district"
    return "community"


class Grant(Record):
    """A role held by a person in a scope, from ``since`` (``None``: from the start) until it was
    revoked (``until``). Grants are never deleted: a revocation closes one, so the directory can say
    who held what at any moment ("was she on the committee when she decided?")."""

    scope: Id
    person: Id
    role: Role
    since: AwareDatetime | None = None
    granted_by: str = Field(default="", max_length=128)
    until: AwareDatetime | None = None
    revoked_by: str = Field(default="", max_length=128)

    def holds_at(self, at: datetime) -> bool:
        return (self.since is None or self.since <= at) and (self.until is None or at < self.until)


def check_grant(
    scope: str, person: str, roles: tuple[Role | str, ...], at: datetime | None, by: str = ""
) -> tuple[str, list[Role]]:
    """The normalised person and the roles (each once) of a grant or revocation, or
    ``InvalidInput``. Every directory makes these checks the same way."""
    if not storable_id(scope):
        raise InvalidInput(f"{scope!r} is not a scope: give a community id, sub_district(...) or district(...)")
    pid = person_id(person)
    if pid.startswith(RESERVED_PREFIX):
        raise InvalidInput(f"{pid!r} is the library's own id (ids starting {RESERVED_PREFIX!r} are kept for it)")
    if not roles:
        raise InvalidInput("name at least one role to grant or revoke")
    try:
        resolved = list(dict.fromkeys(Role(r) for r in roles))
    except (ValueError, TypeError):
        raise InvalidInput(f"unknown role in {roles!r:.200}; known roles: {', '.join(r.value for r in Role)}") from None
    never = [r.value for r in resolved if r in NEVER_GRANTED]
    if never:
        raise InvalidInput(
            f"{', '.join(never)} cannot be granted: the proposer and the invited follow from the "
            "consultation, and only the library's clock is the system"
        )
    if level_of(scope) != "community":
        beyond = [r.value for r in resolved if r not in LEVEL_ROLES]
        if beyond:
            raise InvalidInput(
                f"{', '.join(beyond)} is held in a community, not at the {level_of(scope)} level; "
                f"a level holds only {', '.join(sorted(r.value for r in LEVEL_ROLES))}"
            )
    if at is not None:
        check_instant(at)
        try:
            at.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(f"'at' ({at!r}) has no instant in UTC (beyond the year 1 or 9999)") from None
    if not isinstance(by, str) or len(by) > 128 or any(unicodedata.category(c) in {"Cc", "Cs"} for c in by):
        raise InvalidInput(f"'by' says who granted or revoked: text of at most 128 characters, not {by!r:.80}")
    return pid, resolved


def check_instant(at: object) -> datetime:
    """``at`` if it is an aware datetime, else ``InvalidInput``."""
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise InvalidInput(f"'at' must be an aware datetime (with a time zone), not {at!r:.80}")
    return at


def check_place(community: str, sub_district: str | None, district: str | None) -> tuple[str, ...]:
    """The scopes above ``community`` (its sub-district's, its district's), or ``InvalidInput``."""
    if not storable_id(community) or level_of(community) != "community":
        raise InvalidInput(f"{community!r:.80} is not a community id")
    levels = []
    if sub_district is not None:
        levels.append(_scope(_SUB_DISTRICT, sub_district))
    if district is not None:
        levels.append(_scope(_DISTRICT, district))
    return tuple(levels)


def wanted_roles(roles: Iterable[Role | str] | None) -> frozenset[Role] | None:
    """The roles ``members(..., roles=...)`` asks for (``None``: any); names no role knows match nothing."""
    if roles is None:
        return None
    if isinstance(roles, str):
        raise InvalidInput(f"roles must be a collection of roles, e.g. {{Role.RESIDENT}}, not the text {roles!r:.80}")
    try:
        asked = frozenset(roles)
    except TypeError:
        raise InvalidInput(f"roles must be a collection of roles, not {roles!r:.80}") from None
    return frozenset(r for r in Role if r in asked)


@runtime_checkable
class Directory(Protocol):
    """The one question the engine asks: which roles does ``person`` hold in ``community`` at
    ``at`` - the community's own grants and those of the levels it is placed under.

    ``person`` is already normalised (``roles.person_id``); an unknown person or community holds
    no roles. Implementations must be safe to call from several threads.
    """

    def roles(self, person: str, community: str, at: datetime) -> frozenset[Role]: ...


@runtime_checkable
class Register(Protocol):
    """A directory that can also list who holds a role (every reference directory can): the engine
    then counts a voting body's members itself, so the figure a vote is counted against is the
    directory's, not one a caller states."""

    def members(self, community: str, at: datetime, roles: Iterable[Role] | None = None) -> tuple[str, ...]: ...


class TrustCallerRoles:
    """A directory that says the app decides roles itself: the engine then takes an ``Actor``'s
    roles as the caller gives them (the system role excepted, which only the library's clock holds).

    The roles of the other people a command names (attendees, a proxy's resident, a chair) come from
    ``others`` if given, else nobody else holds any. Use it only where the caller's authentication
    already establishes roles in the community - the engine cannot check them, and the log will name
    whatever role the caller claimed.
    """

    trusts_caller: ClassVar[bool] = True

    def __init__(self, others: Directory | None = None) -> None:
        self.others = others

    def roles(self, person: str, community: str, at: datetime) -> frozenset[Role]:
        """The roles of someone other than the caller: from ``others``, else none."""
        return self.others.roles(person, community, at) if self.others is not None else frozenset()

    def __repr__(self) -> str:
        return "TrustCallerRoles()" if self.others is None else f"TrustCallerRoles(others={self.others!r})"


def register_of(directory: Directory) -> Register | None:
    """Who can list a voting body's members for ``directory``: itself, or the directory a trusting
    one defers to - ``None`` if neither can list them (the caller then states the count)."""
    lister = directory.others if isinstance(directory, TrustCallerRoles) else directory
    return lister if isinstance(lister, Register) else None
