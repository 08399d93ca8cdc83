"""The directory conformance suite: subclass ``DirectoryContract`` and give it a ``directory`` fixture.

    import pytest
    from consultflow.testing import DirectoryContract

    class TestMyDirectory(DirectoryContract):
        @pytest.fixture
        def directory(self, tmp_path):
            d = MyDirectory(tmp_path / "roles")
            yield d
            d.close()

A directory under test has ``MemoryDirectory``'s API: ``place``, ``grant``, ``revoke``, ``roles``,
``grants``, ``members``, ``close``. The kit proves it means the same: grants and revocations over
time (a grant holds on ``[since, until)``), the history kept, re-grants that change nothing,
revocations of what is not held refused (and then nothing revoked), levels (sub-district and
district officials act only in the communities placed under them, only in ``LEVEL_ROLES``), roles
never granted, person ids normalised and invisible characters refused, hostile input (huge, SQL
wildcards and quotes, naive or unrepresentable times) refused or answered as plain text, threads
granting and revoking at once, and a closed directory that says so.

Optional, for directories that several handles or processes share:

- override ``open_directory`` to return a callable that opens *another* handle on the same data
  (a ``functools.partial(MyDirectory, path)``); the kit checks that one sees what another wrote;
- set ``supports_processes = True`` when that callable can be pickled and used in another process
  (a fresh one from a fork server, or spawned): the kit then grants from several processes at once.

The class is not named ``Test*``, so pytest collects only your subclass.
"""

from __future__ import annotations

import queue as queue_module
import threading
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol

import pytest

from ..directory.base import LEVEL_ROLES, Directory, Grant, district, sub_district
from ..errors import ConsultflowError, InvalidInput, StoreUnavailable
from ..roles import NEVER_GRANTED, Role
from . import _workers
from ._workers import run_threads

__all__ = ["DirectoryContract", "DirectoryOpener", "ManagedDirectory"]


class ManagedDirectory(Protocol):
    """What the kit tests: ``MemoryDirectory``'s API."""

    def place(self, community: str, *, sub_district: str | None = None, district: str | None = None) -> None: ...
    def grant(self, scope: str, person: str, *roles: Role | str, by: str = "", at: datetime | None = None) -> None: ...
    def revoke(self, scope: str, person: str, *roles: Role | str, at: datetime, by: str = "") -> None: ...
    def roles(self, person: str, community: str, at: datetime) -> frozenset[Role]: ...
    def grants(self, *, person: str | None = None, scope: str | None = None) -> tuple[Grant, ...]: ...
    def members(self, community: str, at: datetime, roles: Iterable[Role] | None = None) -> tuple[str, ...]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...


#: Opens another handle on the directory under test; must be picklable when processes are raced.
DirectoryOpener = Callable[[], ManagedDirectory]

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_FIRST = datetime(1, 1, 1, tzinfo=UTC)
_LAST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
_SHANGHAI = timezone(timedelta(hours=8))
_NEW_YORK = timezone(timedelta(hours=-5))
_TIMEOUT = 60.0

C, W, R = Role.COMMITTEE, Role.WORKING_COMMITTEE, Role.RESIDENT
HOME, OTHER = "taoyuan", "xinghe"


def _refused(call: Callable[..., object], *args: Any, why: str, **kwargs: Any) -> None:
    """``call(*args, **kwargs)`` must raise ``InvalidInput`` (never a driver's or Python's own error)."""
    try:
        call(*args, **kwargs)
    except InvalidInput:
        return
    except Exception as exc:
        raise AssertionError(f"{why}: expected InvalidInput, got {exc!r}") from exc
    raise AssertionError(f"{why}: expected InvalidInput, but it went through")


def grant_worker(index: int, opener: DirectoryOpener, rounds: int, barrier: Any, out: Any) -> None:
    """A process of ``test_processes_grant_at_once``: open a handle, wait for all, then grant
    ``rounds`` people of its own and the one role everybody grants, and revoke its own odd ones."""
    try:
        directory = opener()
        try:
            barrier.wait(_TIMEOUT)
            for n in range(rounds):
                directory.grant(HOME, "everyone", C, by=f"proc{index}", at=T0)
                directory.grant(HOME, f"p{index}-{n}", R, by=f"proc{index}", at=T0 + n * _US)
                if n % 2:
                    directory.revoke(HOME, f"p{index}-{n}", R, at=T0 + _DAY, by=f"proc{index}")
        finally:
            directory.close()
        out.put((index, True, ""))
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test with it
        barrier.abort()
        out.put((index, False, traceback.format_exc()))


class DirectoryContract:
    """The contract every directory keeps (``MemoryDirectory``'s meaning). Subclass it in a
    ``Test*`` class and override the ``directory`` fixture (and, optionally, ``open_directory``
    and ``supports_processes``)."""

    #: Set to True when ``open_directory`` works from other (spawned) processes on the same data.
    supports_processes: ClassVar[bool] = False
    #: How many threads (and processes) grant at once.
    race_workers: ClassVar[int] = 8

    # ---- fixtures an implementer overrides ------------------------------------------------------
    @pytest.fixture
    def directory(self) -> ManagedDirectory:
        """An empty directory. Override this fixture in your subclass."""
        pytest.fail(
            f"{type(self).__name__} must override the 'directory' fixture: "
            "@pytest.fixture def directory(self, tmp_path): d = MyDirectory(...); yield d; d.close()",
            pytrace=False,
        )

    @pytest.fixture
    def open_directory(self) -> DirectoryOpener | None:
        """Override to return a callable opening another handle on the data of ``directory``."""
        return None

    # ---- what the engine asks -------------------------------------------------------------------
    def test_it_is_a_directory(self, directory: ManagedDirectory) -> None:
        assert isinstance(directory, Directory), "the engine needs roles(person, community, at)"
        assert directory.roles("li", HOME, T0) == frozenset()
        assert directory.grants() == ()
        assert directory.members(HOME, T0) == ()

    def test_a_grant_holds_from_since_on(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, by="admin", at=T0)
        assert directory.roles("li", HOME, T0 - _US) == frozenset(), "a grant holds only from its since"
        assert directory.roles("li", HOME, T0) == {C}, "a grant holds at its since"
        assert directory.roles("li", HOME, T0 + 365 * _DAY) == {C}
        assert directory.roles("li", HOME, _LAST) == {C}
        assert all(type(r) is Role for r in directory.roles("li", HOME, T0)), "roles() answers Role members"

    def test_a_grant_from_the_start_holds_at_every_instant(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C)
        for at in (_FIRST, T0, _LAST):
            assert directory.roles("li", HOME, at) == {C}, at
        (grant,) = directory.grants()
        assert (grant.since, grant.until) == (None, None)

    def test_a_revocation_ends_the_grant_half_open(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, W, at=T0)
        directory.revoke(HOME, "li", C, at=T0 + _DAY, by="admin")
        assert directory.roles("li", HOME, T0 - _US) == frozenset()
        assert directory.roles("li", HOME, T0) == {C, W}
        assert directory.roles("li", HOME, T0 + _DAY - _US) == {C, W}, "held until the instant before until"
        assert directory.roles("li", HOME, T0 + _DAY) == {W}, "not held at until: [since, until)"
        assert directory.roles("li", HOME, _LAST) == {W}

    def test_a_revocation_at_its_since_leaves_nothing_held(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, at=T0)
        directory.revoke(HOME, "li", C, at=T0)
        for at in (_FIRST, T0 - _US, T0, T0 + _US, _LAST):
            assert directory.roles("li", HOME, at) == frozenset(), at
        assert len(directory.grants()) == 1

    def test_the_history_is_kept(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, by="committee-2023", at=T0)
        directory.revoke(HOME, "li", C, at=T0 + 10 * _DAY, by="committee-2026")
        directory.grant(HOME, "li", C, by="committee-2027", at=T0 + 20 * _DAY)
        first, second = directory.grants(person="li")
        assert (first.scope, first.person, first.role) == (HOME, "li", C)
        assert (first.since, first.until) == (T0, T0 + 10 * _DAY)
        assert (first.granted_by, first.revoked_by) == ("committee-2023", "committee-2026")
        assert (second.since, second.until, second.granted_by, second.revoked_by) == (
            T0 + 20 * _DAY,
            None,
            "committee-2027",
            "",
        )
        assert directory.roles("li", HOME, T0 + 5 * _DAY) == {C}, "she was on the committee then"
        assert directory.roles("li", HOME, T0 + 15 * _DAY) == frozenset(), "and not in the gap"
        assert directory.roles("li", HOME, T0 + 25 * _DAY) == {C}
        assert isinstance(first, Grant)
        assert isinstance(second, Grant)
        assert [first.holds_at(at) for at in (T0, T0 + 15 * _DAY, T0 + 25 * _DAY)] == [True, False, False]
        assert [second.holds_at(at) for at in (T0, T0 + 15 * _DAY, T0 + 25 * _DAY)] == [False, False, True]

    def test_granting_a_held_role_again_changes_nothing(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, by="first", at=T0)
        before = directory.grants()
        directory.grant(HOME, "li", C, by="second", at=T0 - 5 * _DAY)
        directory.grant(HOME, "li", C, C, by="third", at=T0 + 5 * _DAY)
        directory.grant(HOME, "LI", C, by="fourth")
        assert directory.grants() == before, "a role already held is not granted again"
        assert directory.roles("li", HOME, T0 - _US) == frozenset(), "nor moved earlier"

    def test_one_call_grants_several_roles(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, "working_committee", R, R, at=T0)
        assert directory.roles("li", HOME, T0) == {C, W, R}
        assert sorted(g.role.value for g in directory.grants()) == sorted(
            ["committee", "working_committee", "resident"]
        )
        directory.grant(HOME, "li", R, Role.EXPERT, at=T0 + _DAY)
        assert directory.roles("li", HOME, T0 + _DAY) == {C, W, R, Role.EXPERT}
        assert len(directory.grants()) == 4

    def test_grants_come_oldest_first_and_filter(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, at=T0)
        directory.grant(OTHER, "wang", R, at=T0)
        directory.grant(HOME, "li", R, at=T0)
        directory.grant(sub_district("ninghai"), "li", Role.SUB_DISTRICT, at=T0)
        directory.revoke(HOME, "li", C, at=T0 + _DAY)
        order = [(g.scope, g.person, g.role) for g in directory.grants()]
        assert order == [
            (HOME, "li", C),
            (OTHER, "wang", R),
            (HOME, "li", R),
            ("sub-district:ninghai", "li", Role.SUB_DISTRICT),
        ], "grants() lists grants in the order recorded; a revocation does not move one"
        assert [g.role for g in directory.grants(person="li")] == [C, R, Role.SUB_DISTRICT]
        assert [g.person for g in directory.grants(scope=HOME)] == ["li", "li"]
        assert [g.role for g in directory.grants(person="li", scope=HOME)] == [C, R]
        assert directory.grants(person="nobody") == ()
        assert directory.grants(scope="nowhere") == ()

    # ---- revocations -------------------------------------------------------------------------------
    def test_revoking_what_is_not_held_is_refused(self, directory: ManagedDirectory) -> None:
        _refused(lambda: directory.revoke(HOME, "li", C, at=T0), why="a role never granted")
        directory.grant(HOME, "li", C, at=T0)
        directory.revoke(HOME, "li", C, at=T0 + _DAY)
        _refused(lambda: directory.revoke(HOME, "li", C, at=T0 + 2 * _DAY), why="a role already revoked")
        _refused(lambda: directory.revoke(OTHER, "li", C, at=T0 + 2 * _DAY), why="a role held elsewhere")
        (grant,) = directory.grants()
        assert grant.until == T0 + _DAY, "a refused revocation changes nothing"

    def test_a_refused_revocation_revokes_none_of_its_roles(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, W, at=T0)
        before = directory.grants()
        _refused(lambda: directory.revoke(HOME, "li", C, R, W, at=T0 + _DAY), why="one of the roles is not held")
        assert directory.grants() == before, "revoke() is all or nothing"
        assert directory.roles("li", HOME, T0 + 2 * _DAY) == {C, W}
        directory.grant(HOME, "li", R, at=T0 + 2 * _DAY)
        _refused(lambda: directory.revoke(HOME, "li", C, R, at=T0 + _DAY), why="R starts after the revocation")
        assert directory.roles("li", HOME, T0 + 3 * _DAY) == {C, W, R}

    def test_a_revocation_before_its_grant_is_refused(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, at=T0)
        _refused(lambda: directory.revoke(HOME, "li", C, at=T0 - _US), why="a revocation before the grant")
        assert directory.roles("li", HOME, T0 + _DAY) == {C}

    def test_a_revocation_needs_an_instant(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C)
        _refused(lambda: directory.revoke(HOME, "li", C, at=None), why="revoke(at=None)")  # type: ignore[arg-type]
        directory.revoke(HOME, "li", C, C, at=T0)
        assert directory.roles("li", HOME, T0 - _US) == {C}
        assert directory.roles("li", HOME, T0) == frozenset()

    def test_a_revocation_never_deletes(self, directory: ManagedDirectory) -> None:
        for n in range(3):
            directory.grant(HOME, "li", C, at=T0 + 2 * n * _DAY)
            directory.revoke(HOME, "li", C, at=T0 + (2 * n + 1) * _DAY)
        grants = directory.grants()
        assert [(g.since, g.until) for g in grants] == [(T0 + 2 * n * _DAY, T0 + (2 * n + 1) * _DAY) for n in range(3)]

    # ---- levels ------------------------------------------------------------------------------------
    def test_level_officials_act_only_in_the_communities_placed_under_them(self, directory: ManagedDirectory) -> None:
        directory.place(HOME, sub_district="ninghai", district="gulou")
        directory.place(OTHER, sub_district="jiangxin", district="gulou")
        directory.grant(sub_district("ninghai"), "zhou", Role.SUB_DISTRICT, at=T0)
        directory.grant(district("gulou"), "qian", Role.LEGAL_ADVISER, at=T0)
        assert directory.roles("zhou", HOME, T0) == {Role.SUB_DISTRICT}
        assert directory.roles("zhou", OTHER, T0) == frozenset(), "another sub-district's community"
        assert directory.roles("zhou", "unplaced", T0) == frozenset(), "a community placed nowhere"
        assert directory.roles("qian", HOME, T0) == {Role.LEGAL_ADVISER}
        assert directory.roles("qian", OTHER, T0) == {Role.LEGAL_ADVISER}, "the district covers both"
        assert directory.roles("zhou", HOME, T0 - _US) == frozenset(), "levels keep time too"
        assert directory.members(HOME, T0) == (), "members() counts the community's own grants only"

    def test_roles_join_the_community_and_its_levels(self, directory: ManagedDirectory) -> None:
        directory.place(HOME, sub_district="ninghai")
        directory.grant(HOME, "zhou", R, at=T0)
        directory.grant(sub_district("ninghai"), "zhou", Role.SUB_DISTRICT, Role.LEGAL_ADVISER, at=T0 + _DAY)
        directory.revoke(sub_district("ninghai"), "zhou", Role.LEGAL_ADVISER, at=T0 + 2 * _DAY)
        assert directory.roles("zhou", HOME, T0) == {R}
        assert directory.roles("zhou", HOME, T0 + _DAY) == {R, Role.SUB_DISTRICT, Role.LEGAL_ADVISER}
        assert directory.roles("zhou", HOME, T0 + 2 * _DAY) == {R, Role.SUB_DISTRICT}

    def test_placing_again_replaces_the_levels(self, directory: ManagedDirectory) -> None:
        directory.grant(sub_district("ninghai"), "zhou", Role.SUB_DISTRICT)
        directory.grant(district("gulou"), "qian", Role.LEGAL_ADVISER)
        directory.place(HOME, sub_district="ninghai", district="gulou")
        assert directory.roles("zhou", HOME, T0) == {Role.SUB_DISTRICT}
        directory.place(HOME, sub_district="jiangxin")
        assert directory.roles("zhou", HOME, T0) == frozenset()
        assert directory.roles("qian", HOME, T0) == frozenset()
        directory.place(HOME)
        assert directory.roles("zhou", HOME, T0) == frozenset()

    def test_a_level_holds_only_level_roles(self, directory: ManagedDirectory) -> None:
        for scope in (sub_district("ninghai"), district("gulou")):
            for role in LEVEL_ROLES:
                directory.grant(scope, "zhou", role)
            for role in set(Role) - LEVEL_ROLES - NEVER_GRANTED:
                _refused(directory.grant, scope, "zhou", role, why=f"{role} at {scope}")
            _refused(directory.grant, scope, "zhou", Role.SUB_DISTRICT, C, why="a mix at a level")
        assert {g.role for g in directory.grants()} == LEVEL_ROLES
        assert len(directory.grants()) == 2 * len(LEVEL_ROLES), "a refused grant grants nothing"

    def test_a_community_may_hold_level_roles_itself(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "zhou", Role.SUB_DISTRICT, Role.LEGAL_ADVISER)
        assert directory.roles("zhou", HOME, T0) == {Role.SUB_DISTRICT, Role.LEGAL_ADVISER}

    def test_bad_places_are_refused(self, directory: ManagedDirectory) -> None:
        for community in ("", "a b", "a'b", 'a"b', "x" * 129, "li\ud800", "sub-district:x", "district:x", None, 7):
            _refused(directory.place, community, sub_district="ninghai", why=f"place({community!r:.40})")
        for name in ("", "a:b", "a b", "x" * 129, "ning\udc00hai", 3):
            _refused(directory.place, HOME, sub_district=name, why=f"sub_district={name!r:.40}")
            _refused(directory.place, HOME, district=name, why=f"district={name!r:.40}")
        directory.grant(HOME, "li", C)
        assert directory.roles("li", HOME, T0) == {C}

    # ---- what may be granted -------------------------------------------------------------------------
    def test_roles_never_granted_are_refused(self, directory: ManagedDirectory) -> None:
        for role in NEVER_GRANTED:
            _refused(directory.grant, HOME, "li", role, why=f"granting {role}")
            _refused(directory.grant, HOME, "li", C, role, why=f"granting committee and {role}")
        _refused(lambda: directory.grant(HOME, "li", "mayor"), why="an unknown role")
        _refused(lambda: directory.grant(HOME, "li"), why="no role")
        _refused(lambda: directory.grant(HOME, "li", ["committee"]), why="a list is not a role")  # type: ignore[arg-type]
        assert directory.grants() == (), "a refused grant grants nothing"
        directory.grant(HOME, "li", C)
        _refused(lambda: directory.revoke(HOME, "li", C, Role.SYSTEM, at=T0), why="revoking system")
        assert directory.roles("li", HOME, T0) == {C}

    def test_bad_scopes_are_refused(self, directory: ManagedDirectory) -> None:
        for scope in ("", " ", "a b", "a'b", 'a"b', "a`b", "a\\b", "-x", "x" * 129, "x\ud800", "tao\x00", None, 7):
            _refused(directory.grant, scope, "li", C, why=f"grant at scope {scope!r:.40}")
            _refused(directory.revoke, scope, "li", C, at=T0, why=f"revoke at scope {scope!r:.40}")
        assert directory.grants() == ()

    def test_by_says_who_and_is_checked(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, by="街道办 admin#7", at=T0)
        directory.revoke(HOME, "li", C, by="x" * 128, at=T0 + _DAY)
        (grant,) = directory.grants()
        assert (grant.granted_by, grant.revoked_by) == ("街道办 admin#7", "x" * 128)
        for by in ("x" * 129, "a\x00b", "a\nb", "a\ud800", None, 5):
            _refused(directory.grant, HOME, "wang", C, by=by, why=f"by={by!r:.40}")
        assert len(directory.grants()) == 1

    # ---- person ids ------------------------------------------------------------------------------------
    def test_person_ids_are_normalised(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "LI", C, at=T0)
        directory.grant(HOME, "ｌｉ", W, at=T0)  # full width
        directory.grant(HOME, "Straße", R, at=T0)
        assert directory.roles("li", HOME, T0) == {C, W}
        assert directory.roles("strasse", HOME, T0) == {R}
        assert {g.person for g in directory.grants()} == {"li", "strasse"}
        directory.revoke(HOME, "Li", C, at=T0 + _DAY)
        assert directory.roles("li", HOME, T0 + _DAY) == {W}
        assert directory.members(HOME, T0) == ("li", "strasse")

    def test_invisible_characters_are_refused(self, directory: ManagedDirectory) -> None:
        for person in ("li\u200b", "\u200dli", "\u202eil", "li\u2066", "li\x00", "li\ud800", "\udfffli", "li\ufeff"):
            _refused(directory.grant, HOME, person, C, why=f"person {person!r}")
            _refused(directory.revoke, HOME, person, C, at=T0, why=f"revoke person {person!r}")
        bad: tuple[object, ...] = ("", " ", "li wang", "li'", 'li"', "-li", "x" * 129, None, 42, "consultflow:clock")
        for other in bad:
            _refused(directory.grant, HOME, other, C, why=f"person {other!r:.40}")
        assert directory.grants() == ()

    # ---- lookups ---------------------------------------------------------------------------------------
    def test_unknown_people_and_communities_hold_nothing(self, directory: ManagedDirectory) -> None:
        directory.place(HOME, sub_district="ninghai")
        directory.grant(HOME, "li", C)
        directory.grant(sub_district("ninghai"), "zhou", Role.SUB_DISTRICT)
        for person, community in (
            ("nobody", HOME),
            ("li", OTHER),
            ("LI", HOME),  # roles() takes ids already normalised
            ("zhou", "sub-district:jiangxin"),
            ("li", "x" * 1_000_000),
            ("x" * 1_000_000, HOME),
            ("li\ud800", HOME),
            ("li", "tao\udc00yuan"),
            ("li'; DROP TABLE directory_grants; --", HOME),
            ("li", "taoyuan' OR '1'='1"),
            ("", ""),
        ):
            assert directory.roles(person, community, T0) == frozenset(), (person[:40], community[:40])
        assert directory.roles("li", HOME, T0) == {C}, "still there"

    def test_sql_wildcards_are_plain_text(self, directory: ManagedDirectory) -> None:
        directory.place("c%", sub_district="n%")
        directory.place("c_", district="d_")
        directory.grant("c%", "li%", C)
        directory.grant("c_", "li_", W)
        directory.grant(sub_district("n%"), "z%", Role.SUB_DISTRICT)
        directory.grant(district("d_"), "q_", Role.LEGAL_ADVISER)
        assert directory.roles("li%", "c%", T0) == {C}
        assert directory.roles("li_", "c_", T0) == {W}
        assert directory.roles("z%", "c%", T0) == {Role.SUB_DISTRICT}
        assert directory.roles("q_", "c_", T0) == {Role.LEGAL_ADVISER}
        for person, community in (
            ("lix", "c%"),
            ("li%", "cx"),
            ("lix", "c_"),
            ("li_", "cx"),
            ("li%", "c_"),
            ("z%", "c_"),
            ("zx", "c%"),
            ("q_", "c%"),
            ("%", "%"),
            ("_", "_"),
        ):
            assert directory.roles(person, community, T0) == frozenset(), (person, community)
        assert directory.members("c%", T0) == ("li%",)
        assert directory.members("c_", T0) == ("li_",)
        assert directory.members("c", T0) == ()
        assert [g.person for g in directory.grants(person="li%")] == ["li%"]
        assert directory.grants(person="li") == ()
        assert [g.scope for g in directory.grants(scope="c_")] == ["c_"]
        assert directory.grants(scope="cx") == ()

    def test_members(self, directory: ManagedDirectory) -> None:
        directory.place(HOME, sub_district="ninghai")
        directory.grant(HOME, "wang", R, at=T0)
        directory.grant(HOME, "li", C, W, at=T0)
        directory.grant(HOME, "ａｎ", R, at=T0 + _DAY)  # "an"
        directory.grant(OTHER, "zhao", C, at=T0)
        directory.grant(sub_district("ninghai"), "zhou", Role.SUB_DISTRICT, at=T0)
        directory.revoke(HOME, "wang", R, at=T0 + 2 * _DAY)
        assert directory.members(HOME, T0 - _US) == ()
        assert directory.members(HOME, T0) == ("li", "wang")
        assert directory.members(HOME, T0 + _DAY) == ("an", "li", "wang")
        assert directory.members(HOME, T0 + 2 * _DAY) == ("an", "li")
        assert directory.members(HOME, T0 + _DAY, roles={R}) == ("an", "wang")
        assert directory.members(HOME, T0 + _DAY, roles=[C, Role.EXPERT]) == ("li",)
        assert directory.members(HOME, T0 + _DAY, roles={"committee"}) == ("li",)  # type: ignore[arg-type]
        assert directory.members(HOME, T0 + _DAY, roles={"mayor"}) == ()  # type: ignore[arg-type]
        assert directory.members(HOME, T0 + _DAY, roles=()) == ()
        assert directory.members(OTHER, T0) == ("zhao",)
        assert directory.members("sub-district:ninghai", T0) == ("zhou",)
        assert directory.members("nowhere", T0) == ()
        assert directory.members("x\ud800", T0) == ()
        _refused(lambda: directory.members(HOME, T0, roles="committee"), why="roles as one text")  # type: ignore[arg-type]

    def test_members_sort_by_code_point(self, directory: ManagedDirectory) -> None:
        people = ["李明", "zhang", "a-1", "a_1", "a.1", "王", "ä", "b", "1", "~x", "a%"]
        for p in people:
            directory.grant(HOME, p, R)
        assert directory.members(HOME, T0) == tuple(sorted(people))

    # ---- times -----------------------------------------------------------------------------------------
    def test_naive_and_odd_times_are_refused(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, at=T0)
        naive = datetime(2026, 5, 2, 8, 0)
        odd: list[object] = [naive, "2026-05-02T08:00:00+00:00", 1_777_000_000, T0.date()]
        for at in odd:
            _refused(directory.grant, HOME, "wang", C, at=at, why=f"grant at {at!r}")
            _refused(directory.revoke, HOME, "li", C, at=at, why=f"revoke at {at!r}")
            _refused(directory.roles, "li", HOME, at, why=f"roles at {at!r}")
            _refused(directory.members, HOME, at, why=f"members at {at!r}")
        # an instant with no UTC date (before year 1 or after 9999 in UTC) cannot be stored
        for at in (datetime.max.replace(tzinfo=_NEW_YORK), datetime.min.replace(tzinfo=_SHANGHAI)):
            _refused(directory.grant, HOME, "wang", C, at=at, why=f"grant at {at!r}")
            _refused(directory.revoke, HOME, "li", C, at=at, why=f"revoke at {at!r}")
        assert [(g.person, g.until) for g in directory.grants()] == [("li", None)]

    def test_times_are_instants_in_any_zone(self, directory: ManagedDirectory) -> None:
        since = datetime(2026, 5, 1, 16, 0, tzinfo=_SHANGHAI)  # T0
        directory.grant(HOME, "li", C, at=since)
        directory.revoke(HOME, "li", C, at=datetime(2026, 5, 1, 22, 0, tzinfo=_NEW_YORK))  # T0 + 19 h
        assert directory.roles("li", HOME, datetime(2026, 5, 1, 3, 0, tzinfo=_NEW_YORK)) == {C}  # T0
        assert directory.roles("li", HOME, datetime(2026, 5, 1, 2, 59, 59, tzinfo=_NEW_YORK)) == frozenset()
        assert directory.roles("li", HOME, T0 + timedelta(hours=19) - _US) == {C}
        assert directory.roles("li", HOME, datetime(2026, 5, 2, 11, 0, tzinfo=_SHANGHAI)) == frozenset()
        (grant,) = directory.grants()
        assert (grant.since, grant.until) == (T0, T0 + timedelta(hours=19)), "the same instants"

    def test_the_far_past_and_future(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C, at=_FIRST)
        directory.grant(HOME, "wang", C, at=_LAST)
        directory.revoke(HOME, "li", C, at=_LAST)
        assert directory.roles("li", HOME, _FIRST) == {C}
        assert directory.roles("li", HOME, datetime(5000, 1, 1, tzinfo=UTC)) == {C}
        assert directory.roles("li", HOME, _LAST - _US) == {C}
        assert directory.roles("li", HOME, _LAST) == frozenset()
        assert directory.roles("wang", HOME, _LAST) == {C}
        assert directory.roles("wang", HOME, _LAST - _US) == frozenset()
        # asking at instants beyond UTC's calendar is fine: nothing new starts there
        assert directory.roles("wang", HOME, datetime.max.replace(tzinfo=_NEW_YORK)) == {C}
        assert directory.roles("li", HOME, datetime.min.replace(tzinfo=_SHANGHAI)) == frozenset()
        assert directory.members(HOME, datetime.max.replace(tzinfo=_NEW_YORK)) == ("wang",)
        assert [(g.since, g.until) for g in directory.grants()] == [(_FIRST, _LAST), (_LAST, None)]

    def test_huge_inputs_are_refused(self, directory: ManagedDirectory) -> None:
        huge = "x" * 2_000_000
        _refused(lambda: directory.grant(HOME, huge, C), why="a huge person")
        _refused(lambda: directory.grant(huge, "li", C), why="a huge scope")
        _refused(lambda: directory.grant(HOME, "li", C, by=huge), why="a huge by")
        _refused(lambda: directory.grant(HOME, "li", huge), why="a huge role")
        _refused(lambda: directory.place(huge), why="a huge community")
        _refused(lambda: directory.place(HOME, sub_district=huge), why="a huge sub-district")
        assert directory.roles(huge, huge, T0) == frozenset()
        assert directory.members(huge, T0) == ()
        assert directory.grants(person=huge) == ()
        assert directory.grants(scope=huge) == ()
        many = [f"p{n}" for n in range(300)]
        for p in many:
            directory.grant(HOME, p, R)
        directory.grant(HOME, "li", *(set(Role) - NEVER_GRANTED))
        assert directory.roles("li", HOME, T0) == set(Role) - NEVER_GRANTED
        assert directory.members(HOME, T0) == tuple(sorted([*many, "li"]))

    # ---- at once ---------------------------------------------------------------------------------------
    def test_threads_granting_at_once(self, directory: ManagedDirectory) -> None:
        workers, rounds = self.race_workers, 10
        barrier = threading.Barrier(workers, timeout=_TIMEOUT)

        def worker(i: int) -> None:
            barrier.wait()
            for n in range(rounds):
                directory.grant(HOME, "everyone", C, by=f"t{i}", at=T0 + n * _US)
                directory.grant(HOME, f"t{i}-{n}", R, W, by=f"t{i}", at=T0)
                assert directory.roles("everyone", HOME, T0 + _DAY) == {C}

        run_threads(workers, worker, barrier, what="the directory")
        found = directory.grants(person="everyone")
        assert len(found) == 1, f"{len(found)} open grants of one role for one person: granted twice at once"
        assert directory.members(HOME, T0, roles={R}) == tuple(
            sorted(f"t{i}-{n}" for i in range(workers) for n in range(rounds))
        )
        assert len(directory.grants()) == 1 + 2 * workers * rounds

    def test_threads_revoking_at_once_revoke_once(self, directory: ManagedDirectory) -> None:
        workers = self.race_workers
        directory.grant(HOME, "li", C, at=T0)
        barrier = threading.Barrier(workers, timeout=_TIMEOUT)
        outcomes: list[str] = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            barrier.wait()
            try:
                directory.revoke(HOME, "li", C, at=T0 + (i + 1) * _DAY, by=f"t{i}")
                outcome = f"t{i}"
            except InvalidInput:
                outcome = "refused"
            with lock:
                outcomes.append(outcome)

        run_threads(workers, worker, barrier, what="the directory")
        winners = [o for o in outcomes if o != "refused"]
        assert len(winners) == 1, f"{len(winners)} revocations of one grant went through; exactly one must"
        (grant,) = directory.grants()
        assert grant.revoked_by == winners[0]
        assert grant.until == T0 + (int(winners[0][1:]) + 1) * _DAY

    def test_readers_see_whole_calls(self, directory: ManagedDirectory) -> None:
        """A reader sees a grant of several roles, and a revocation of several, whole or not at all."""
        both = {C, W}
        done = threading.Event()
        seen: list[frozenset[Role]] = []

        def worker(i: int) -> None:
            if i == 0:
                try:
                    for n in range(30):
                        person = f"w{n}"
                        directory.grant(HOME, person, C, W, at=T0)
                        directory.revoke(HOME, person, C, W, at=T0 + _DAY)
                finally:
                    done.set()
                return
            while not done.is_set():
                for n in range(30):
                    for at in (T0, T0 + _DAY):
                        found = directory.roles(f"w{n}", HOME, at)
                        assert found in (frozenset(), both), f"a reader saw {set(found)}: half a grant or revocation"
                        seen.append(found)

        run_threads(3, worker, what="the directory")
        assert all(directory.roles(f"w{n}", HOME, T0) == both for n in range(30))
        assert all(directory.roles(f"w{n}", HOME, T0 + _DAY) == frozenset() for n in range(30))

    def test_another_handle_sees_what_was_written(
        self, directory: ManagedDirectory, open_directory: DirectoryOpener | None
    ) -> None:
        if open_directory is None:
            pytest.skip("the directory offers no open_directory: one handle only")
        directory.place(HOME, sub_district="ninghai")
        directory.grant(HOME, "li", C, at=T0)
        other = open_directory()
        try:
            assert other.roles("li", HOME, T0) == {C}
            other.grant(sub_district("ninghai"), "zhou", Role.SUB_DISTRICT, at=T0)
            other.revoke(HOME, "li", C, at=T0 + _DAY)
            assert directory.roles("zhou", HOME, T0) == {Role.SUB_DISTRICT}
            assert directory.roles("li", HOME, T0 + _DAY) == frozenset()
            assert directory.grants() == other.grants()
        finally:
            other.close()

    def test_processes_grant_at_once(self, directory: ManagedDirectory, open_directory: DirectoryOpener | None) -> None:
        if not self.supports_processes:
            pytest.skip("the directory does not declare supports_processes = True")
        if open_directory is None:
            pytest.fail("supports_processes = True needs an open_directory fixture", pytrace=False)
        workers, rounds = min(self.race_workers, 3), 6
        ctx = _workers._context()
        barrier = ctx.Barrier(workers)
        out = ctx.Queue()
        procs = [
            ctx.Process(target=grant_worker, args=(i, open_directory, rounds, barrier, out), name=f"directory-{i}")
            for i in range(workers)
        ]
        for p in procs:
            p.start()
        failures: list[str] = []
        try:
            for _ in range(workers):
                try:
                    _, ok, text = out.get(timeout=_TIMEOUT * 2)
                except queue_module.Empty:
                    raise AssertionError("directory processes gave no answer in time: a deadlock?") from None
                if not ok:
                    failures.append(text)
        finally:
            for p in procs:
                p.join(_TIMEOUT)
                if p.is_alive():
                    p.kill()
                    p.join()
        real = [f for f in failures if "BrokenBarrierError" not in f.strip().splitlines()[-1]]
        if failures:
            raise AssertionError((real or failures)[0])
        assert len(directory.grants(person="everyone")) == 1, "one role granted at once by processes: one grant"
        held = directory.members(HOME, T0 + _DAY, roles={R})
        assert held == tuple(sorted(f"p{i}-{n}" for i in range(workers) for n in range(rounds) if n % 2 == 0))
        assert len(directory.grants()) == 1 + workers * rounds

    # ---- the end -----------------------------------------------------------------------------------------
    def test_a_closed_directory_says_so(self, directory: ManagedDirectory) -> None:
        directory.grant(HOME, "li", C)
        directory.close()
        directory.close()  # closing twice is harmless
        calls: dict[str, Callable[[], object]] = {
            "place": lambda: directory.place(HOME, sub_district="ninghai"),
            "grant": lambda: directory.grant(HOME, "wang", C),
            "revoke": lambda: directory.revoke(HOME, "li", C, at=T0),
            "roles": lambda: directory.roles("li", HOME, T0),
            "roles of nobody": lambda: directory.roles("x\ud800", HOME, T0),
            "grants": directory.grants,
            "members": lambda: directory.members(HOME, T0),
        }
        for name, call in calls.items():
            try:
                call()
            except StoreUnavailable:
                continue
            except Exception as exc:
                raise AssertionError(
                    f"{name}() on a closed directory raised {exc!r}; expected StoreUnavailable"
                ) from exc
            raise AssertionError(f"{name}() on a closed directory went through; expected StoreUnavailable")

    def test_it_is_a_context_manager(self, directory: ManagedDirectory) -> None:
        with directory as d:
            assert d is directory
            d.grant(HOME, "li", C)
        with pytest.raises(StoreUnavailable):
            directory.roles("li", HOME, T0)

    def test_errors_are_the_librarys(self, directory: ManagedDirectory) -> None:
        """Whatever goes wrong, a caller catching ``ConsultflowError`` catches it."""
        calls: list[Callable[[], object]] = [
            lambda: directory.grant(HOME, "li\ud800", C),
            lambda: directory.grant("x\ud800", "li", C),
            lambda: directory.grant(HOME, "li", C, by="\ud800"),
            lambda: directory.place("x\ud800"),
            lambda: directory.revoke(HOME, "li", C, at=T0),
            lambda: directory.roles("li", HOME, None),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(ConsultflowError):
                call()
