"""``MemoryDirectory``: the directory in memory, for tests, simulations and small apps."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..errors import InvalidInput, StoreUnavailable
from ..records import make
from ..roles import Role
from .base import Grant, as_person, check_grant, check_instant, check_place, wanted_roles

__all__ = ["MemoryDirectory"]

_NONE: frozenset[Role] = frozenset()


class MemoryDirectory:
    """Who holds which role where, kept in memory. Thread-safe.

    ``place`` puts a community under a sub-district and a district; ``grant`` and ``revoke`` record
    roles with who did it and when (``at``; ``None``: from the start); ``roles`` answers the engine.
    """

    def __init__(self) -> None:
        self._grants: dict[tuple[str, str], list[Grant]] = defaultdict(list)  # (scope, person) -> grants
        self._order: list[tuple[tuple[str, str], int]] = []  # every grant, in the order recorded
        self._levels: dict[str, tuple[str, ...]] = {}  # community -> its higher scopes
        # what roles() reads, kept beside the grants: the roles held from the start and never
        # revoked (no time to compare), and the grants with a date (compared at each question)
        self._always: dict[tuple[str, str], frozenset[Role]] = {}
        self._dated: dict[tuple[str, str], tuple[Grant, ...]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def place(self, community: str, *, sub_district: str | None = None, district: str | None = None) -> None:
        """Put ``community`` under a sub-district (街道) and a district (区), by their names: the
        officials granted a role there (``grant(sub_district("ninghai"), ...)``) act in it."""
        levels = check_place(community, sub_district, district)
        with self._lock:
            self._check_open()
            self._levels[community] = levels

    def grant(self, scope: str, person: str, *roles: Role | str, by: str = "", at: datetime | None = None) -> None:
        """``person`` holds ``roles`` in ``scope`` from ``at`` on (from the start if ``None``).
        Granting a role already held changes nothing."""
        pid, resolved = check_grant(scope, person, roles, at, by)
        with self._lock:
            self._check_open()
            held = self._grants[(scope, pid)]
            for role in resolved:
                if any(g.role is role and g.until is None for g in held):
                    continue
                self._order.append(((scope, pid), len(held)))
                held.append(
                    make(
                        Grant,
                        {
                            "scope": scope,
                            "person": pid,
                            "role": role,
                            "since": at,
                            "granted_by": by,
                            "until": None,
                            "revoked_by": "",
                        },
                    )
                )
            self._reindex((scope, pid))

    def revoke(self, scope: str, person: str, *roles: Role | str, at: datetime, by: str = "") -> None:
        """``person`` no longer holds ``roles`` in ``scope`` from ``at`` on; before ``at`` they still
        did (the history stays). Revoking a role not held is ``InvalidInput``, and then none of
        ``roles`` is revoked."""
        if at is None:
            raise InvalidInput("a revocation needs 'at': from when the role is no longer held")
        pid, resolved = check_grant(scope, person, roles, at, by)
        with self._lock:
            self._check_open()
            held = self._grants.get((scope, pid), [])
            closing = []
            for role in resolved:
                open_ = [i for i, g in enumerate(held) if g.role is role and g.until is None]
                if not open_:
                    raise InvalidInput(f"{pid} does not hold {role.value} in {scope}: nothing to revoke")
                for i in open_:
                    since = held[i].since
                    if since is not None and at < since:
                        raise InvalidInput(f"a revocation at {at} comes before the grant it ends ({since})")
                closing.extend(open_)
            for i in closing:  # all checked: revoke them all, or (above) none
                held[i] = held[i].model_copy(update={"until": at, "revoked_by": by})
            self._reindex((scope, pid))

    def _reindex(self, key: tuple[str, str]) -> None:
        held = self._grants.get(key, [])
        self._always[key] = frozenset(g.role for g in held if g.since is None and g.until is None)
        self._dated[key] = tuple(g for g in held if g.since is not None or g.until is not None)

    def roles(self, person: str, community: str, at: datetime) -> frozenset[Role]:
        """The roles ``person`` holds in ``community`` at ``at``, its levels' included."""
        tz = getattr(at, "tzinfo", None)
        if type(at) is not datetime or not (tz is UTC or isinstance(tz, ZoneInfo)):  # else known aware
            check_instant(at)
        with self._lock:
            self._check_open()
            key = (community, person)
            always = self._always.get(key, _NONE)
            dated = self._dated.get(key, ())
            levels = self._levels.get(community, ())
            if levels:
                above = [(self._always.get((s, person), _NONE), self._dated.get((s, person), ())) for s in levels]
        if not dated and not levels:  # the usual question: roles held from the start, no dates
            return always
        found = set(always)
        found.update(g.role for g in dated if g.holds_at(at))
        for level_always, level_dated in above if levels else ():
            found.update(level_always)
            found.update(g.role for g in level_dated if g.holds_at(at))
        return frozenset(found)

    def grants(self, *, person: str | None = None, scope: str | None = None) -> tuple[Grant, ...]:
        """Every grant recorded (revoked ones too), optionally of one person or scope, oldest first."""
        if person is not None:
            person = as_person(person)
            if person is None:  # an id that cannot be anyone's holds nothing
                self._check_open()
                return ()
        with self._lock:
            self._check_open()
            out = [
                self._grants[key][i]
                for key, i in self._order
                if (scope is None or key[0] == scope) and (person is None or key[1] == person)
            ]
        return tuple(out)

    def members(self, community: str, at: datetime, roles: Iterable[Role] | None = None) -> tuple[str, ...]:
        """Who holds a role (one of ``roles``, or any) in ``community`` itself at ``at``, sorted."""
        check_instant(at)
        wanted = wanted_roles(roles)
        with self._lock:
            self._check_open()
            people = {
                p
                for (s, p), held in self._grants.items()
                if s == community
                for g in held
                if g.holds_at(at) and (wanted is None or g.role in wanted)
            }
        return tuple(sorted(people))

    def close(self) -> None:
        """Forget nothing, but answer no more: later calls raise ``StoreUnavailable`` (like the
        directories in a database). Closing twice is harmless."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> MemoryDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("this MemoryDirectory is closed; make a new one to go on")
