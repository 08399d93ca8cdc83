"""The engine: the thin shell around the pure core.

It loads a record, asks the core what the command does, and appends the step with the version it
loaded (a concurrent writer gets ``Conflict``, never a lost update). Time comes from the injected
clock, new ids from the injected factory; nothing else here decides anything.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import cast

import attrs

from .catalogue import Catalogue, TopicItem
from .clock import Clock, SystemClock
from .commands import Command, ConsultationCommand
from .context import Context
from .core import apply, check
from .directory import Directory, TrustCallerRoles
from .directory.base import register_of
from .errors import (
    Conflict,
    ConsultflowError,
    IntegrityError,
    InvalidInput,
    NoFundLedger,
    StoreUnavailable,
    UnknownProcedure,
)
from .funds import FundPosition
from .i18n import Lang
from .limits import time_problem
from .log import LogEntry, Verification
from .procedure import Procedure, six_step
from .records import Consultation
from .refusals import Refused
from .replay import check_loaded, verify_consultation
from .roles import NEVER_GRANTED, RESERVED_PREFIX, Actor, Role, person_id, valid_id
from .step import Step
from .steps import MarkOverdue, Propose
from .storage.base import Query, Store
from .storage.ledger import FundLedger
from .storage.memory import MemoryStore
from .vocabulary import ACTIVE_STATES

__all__ = ["CLOCK_ACTOR", "Engine", "Permission", "Tick", "TickProblem"]

_NEVER_GRANTED = NEVER_GRANTED
_NO_ROLES: frozenset[Role] = frozenset()
_NOBODY: Mapping[str, frozenset[Role]] = {}

#: Who marks deadlines on ``Engine.tick``: the library's own clock, never a caller.
CLOCK_ACTOR = Actor("consultflow:clock", roles={Role.SYSTEM})


@attrs.frozen(slots=True)
class TickProblem:
    """A record ``Engine.tick`` could not handle, and why (the error it met)."""

    consultation: str
    error: ConsultflowError

    def __str__(self) -> str:
        return f"consultation {self.consultation!r}: {self.error}"


class Tick(tuple[Step, ...]):
    """What ``Engine.tick`` did: the steps it logged (it is a tuple of them) and ``problems``, the
    records it could not handle; the next tick meets those again."""

    problems: tuple[TickProblem, ...]

    def __new__(cls, steps: Iterable[Step] = (), problems: Iterable[TickProblem] = ()) -> Tick:
        made = super().__new__(cls, steps)
        made.problems = tuple(problems)
        return made


@attrs.frozen(slots=True)
class Permission:
    """Whether an actor may fire ``trigger`` now; if not, the refusal says why."""

    trigger: str
    allowed: bool
    role: str | None = None
    refusal: Refused | None = None

    def explain(self, lang: Lang = "en") -> str:
        return "" if self.refusal is None else self.refusal.explain(lang)


def _check_args(command: Command | None, by: str | Actor, *, needs_command: bool = True) -> None:
    if needs_command and not isinstance(command, Command):
        raise InvalidInput(f"expected a consultflow command (Propose, Notify, ...), got {type(command).__name__}")
    if not isinstance(by, str | Actor):
        raise InvalidInput(f"'by' is the acting person's id (or a consultflow.Actor), not {type(by).__name__}")


def _uuid() -> str:
    return str(uuid.uuid4())


def _salt() -> str:
    """16 random bytes (hex): a step's salt for the commitments to its personal values."""
    return secrets.token_hex(16)


_SALT = re.compile("^([0-9a-f]{2}){0,64}$")


class Engine:
    """Runs commands against a store under a procedure.

    ``procedure`` is used for new proposals (``variants`` may give a community its own);
    ``procedures`` lists older definitions so records made under them still load. ``salts`` gives
    each step's salt (hex) for the commitments to its personal values (``consultflow.privacy``):
    by default 16 random bytes; a test or a reproducible demo may give a fixed sequence, but a store
    meant for a public export needs unguessable salts.
    """

    def __init__(
        self,
        procedure: Procedure | None = None,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        catalogue: Catalogue | None = None,
        variants: Mapping[str, Procedure] | None = None,
        procedures: Iterable[Procedure] = (),
        ids: Callable[[], str] = _uuid,
        directory: Directory | None = None,
        salts: Callable[[], str] = _salt,
    ) -> None:
        if directory is None:
            raise InvalidInput(
                "an Engine needs directory=...: who holds which role in which community - a "
                "MemoryDirectory (or a SQLite/PostgreSQL one) that you grant roles in, or "
                "TrustCallerRoles() if your app decides roles itself and the engine should take them as given"
            )
        if not isinstance(directory, Directory):
            raise InvalidInput(f"directory must have roles(person, community, at), not {type(directory).__name__}")
        self.directory = directory
        self._trusting = isinstance(directory, TrustCallerRoles)
        self._register = register_of(directory)  # who can list a voting body's members
        self.procedure = procedure if procedure is not None else six_step()
        self.store: Store = store if store is not None else MemoryStore()
        self._ledger = self.store if isinstance(self.store, FundLedger) else None  # 微幸福 fund ledger
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.catalogue = catalogue if catalogue is not None else Catalogue()
        self.variants: Mapping[str, Procedure] = dict(variants or {})
        known = [self.procedure, *self.variants.values(), *procedures]
        self._procedures: dict[tuple[str, str], Procedure] = {}
        for p in known:
            seen = self._procedures.setdefault(p.key, p)
            if seen is not p and seen.to_dict() != p.to_dict():
                raise InvalidInput(
                    f"two different procedures are both called {p.name!r} version {p.version!r}; "
                    "give a changed definition a new version so stored records keep their definition"
                )
        self._ids = ids
        self._salts = salts
        # The records this engine wrote or checked, by id: a load that hands back the very same
        # object (a memory store, SQLite's record cache) needs no second check.
        self._trusted: dict[str, Consultation] = {}
        # Catalogue items added by a step of a community (AddTopic, 列入二级目录), found in the store
        # when a command names a topic the catalogue does not list; an addition is never undone.
        self._added: dict[tuple[str, str], TopicItem] = {}

    # ---- the one entry point --------------------------------------------------------------------
    def execute(self, command: Command, *, by: str | Actor) -> Consultation:
        """Run ``command`` as ``by`` (a person's id, as your app authenticated them) and return the
        consultation as it now stands. Their roles come from the directory, in the consultation's
        community, now.

        Raises ``Refused`` (nothing written) when the procedure does not allow it, ``Conflict``
        when someone else wrote first, ``NotFound`` for an unknown consultation, ``IntegrityError``
        (nothing written) when the stored record is not the one its log was written with.
        """
        return self.run(command, by=by).record

    def run(self, command: Command, *, by: str | Actor) -> Step:
        """Like ``execute``, but returns the whole step: record, log entries, notices."""
        _check_args(command, by)
        record, procedure = self._load_for(command)
        now = self._now()
        community = record.community if record is not None else cast(Propose, command).community
        ctx = Context(
            now=now,
            actor=self._actor(by, community, now),
            new_id=self._new_id() if record is None else None,
            catalogue=self.catalogue,
            people=self._people(command, community, now),
            register=self._members(command, community, now),
            salt=self._salt(),
            added_items=self._added_items(community, command.named_topics(record)),
            fund=self._fund(command, record, procedure, now),
        )
        result = apply(procedure, record, command, ctx)
        if isinstance(result, Refused):
            raise result
        self.store.append(result, 0 if record is None else record.version)
        self._trust(result.record)
        return result

    # ---- reading ----------------------------------------------------------------------------------
    def get(self, consultation: str) -> Consultation:
        return self.store.load(consultation)

    def history(self, consultation: str) -> tuple[LogEntry, ...]:
        """Every log entry of the consultation, in order."""
        return tuple(self.store.entries(consultation))

    def verify(self, consultation: str) -> Verification:
        """Check the stored chain (hashes, links, order, each entry starting where the one before
        ended), then replay it through the procedure and compare the stored record with the record
        the log gives, field by field (``consultflow.replay``), and the store's fund ledger rows
        against the log's funds entries where the store keeps a ledger (微幸福)."""
        try:
            record = self.store.load(consultation)
            entries = self.store.entries(consultation)
            ledger = None if self._ledger is None else self._ledger.fund_entries(consultation)
        except IntegrityError as exc:  # the store found a row it cannot vouch for: a finding
            return Verification(False, 0, None, None, str(exc))
        return verify_consultation(record, entries, self._procedures, ledger=ledger)

    def find(self, query: Query | None = None) -> Sequence[Consultation]:
        return self.store.find(query or Query())

    def procedure_of(self, record: Consultation) -> Procedure:
        p = self._procedures.get((record.procedure, record.procedure_version))
        if p is None:
            raise UnknownProcedure(record.procedure, record.procedure_version)
        return p

    # ---- asking before acting ----------------------------------------------------------------------
    def allowed(self, consultation: str, *, by: str | Actor) -> tuple[Permission, ...]:
        """For each next step a person could be offered (``Procedure.next_steps``: the clock's own
        step is never one): may ``by`` take it now, and if not, why not. A clerk is told whether they
        may record for others; what a whole command would do, ``explain`` says.

        Guards that read a command's content (a decision's measures, say) are checked on
        ``execute``; use ``explain`` to test a whole command.
        """
        _check_args(None, by, needs_command=False)
        record = self.store.load(consultation)
        procedure = self.procedure_of(record)
        now = self._now()
        actor = self._actor(by, record.community, now)
        ctx = Context(
            now=now,
            actor=actor,
            catalogue=self.catalogue,
            added_items=self._added_items(record.community, (record.topic,)),
        )
        out = []
        for trigger in procedure.next_steps(record.state.value):
            role, refusal = check(procedure, record, trigger, ctx)
            out.append(Permission(trigger, refusal is None, role, refusal))
        return tuple(out)

    def explain(self, command: Command, *, by: str | Actor) -> Refused | None:
        """Dry run: the refusal ``execute`` would raise, or ``None`` if it would go through now."""
        _check_args(command, by)
        record, procedure = self._load_for(command)
        now = self._now()
        community = record.community if record is not None else cast(Propose, command).community
        ctx = Context(
            now=now,
            actor=self._actor(by, community, now),
            new_id="dry-run" if record is None else None,
            catalogue=self.catalogue,
            people=self._people(command, community, now),
            register=self._members(command, community, now),
            added_items=self._added_items(community, command.named_topics(record)),
            fund=self._fund(command, record, procedure, now),
        )
        result = apply(procedure, record, command, ctx)
        return result if isinstance(result, Refused) else None

    # ---- time --------------------------------------------------------------------------------------
    def tick(self, now: datetime | None = None, *, ahead_of_clock: bool = False) -> Tick:
        """Find what is overdue at ``now`` (default: the clock) and log it: unanswered proposals,
        consultations with no decision by their deadline (议而不决), measures not carried out by
        their due date (决而不施); escalate where the procedure says so.

        A ``now`` ahead of the engine's clock would date entries in the future: it is refused
        (``InvalidInput``) unless ``ahead_of_clock=True`` says the caller means it (a simulation).
        A record changed by someone else meanwhile is left for the next tick; a record the engine
        cannot handle (an unknown procedure, a record that disagrees with its log) does not stop
        the others: it is reported in the result's ``problems`` and met again on the next tick.
        A failing store (``StoreUnavailable``) stops the tick.
        """
        clock = self._now()
        if now is None:
            when = clock
        else:
            if not isinstance(now, datetime):
                raise InvalidInput(f"tick(now) takes an aware datetime, not {type(now).__name__}: {now!r}")
            problem = time_problem(now)
            if problem is not None:
                raise InvalidInput(f"tick(now): {problem}")
            if now > clock and not ahead_of_clock:
                raise InvalidInput(
                    f"tick(now={now.isoformat()}) is ahead of the engine's clock ({clock.isoformat()}): its entries "
                    "would be dated in the future; advance the clock, or pass ahead_of_clock=True if you mean it"
                )
            when = now
        steps: list[Step] = []
        problems: list[TickProblem] = []
        for record in self.store.find(Query(states=ACTIVE_STATES, due_before=when)):
            try:
                self._check_loaded(record)  # a record that disagrees with its log: IntegrityError, reported
                procedure = self.procedure_of(record)
                ctx = Context(now=when, actor=CLOCK_ACTOR, catalogue=self.catalogue, salt=self._salt())
                result = apply(procedure, record, MarkOverdue(consultation=record.id), ctx)
                if isinstance(result, Refused):
                    continue  # next_due was stale; nothing is overdue any more
                self.store.append(result, record.version)
            except Conflict:
                continue
            except StoreUnavailable:
                raise
            except ConsultflowError as exc:
                problems.append(TickProblem(record.id, exc))
                continue
            self._trust(result.record)
            steps.append(result)
        return Tick(steps, problems)

    # ---- who acts -----------------------------------------------------------------------------------
    def _actor(self, by: str | Actor, community: str, now: datetime) -> Actor:
        """The person acting, with the roles the directory gives them in ``community`` now. Roles an
        ``Actor`` claims count only with ``TrustCallerRoles``; the system role never does."""
        pid = by.id if isinstance(by, Actor) else person_id(by)
        if pid.startswith(RESERVED_PREFIX):
            raise InvalidInput(f"{pid!r} is the library's own id: no caller acts under it")
        if isinstance(by, Actor) and self._trusting:
            return by if Role.SYSTEM not in by.roles else Actor(by.id, by.roles - _NEVER_GRANTED)
        if self._trusting:
            return Actor.known(pid, _NO_ROLES)
        roles = self.directory.roles(pid, community, now)
        if not roles.isdisjoint(_NEVER_GRANTED):  # a directory of someone else's may not know better
            roles = roles - _NEVER_GRANTED
        return Actor.known(pid, roles)

    def _people(self, command: Command, community: str, now: datetime) -> Mapping[str, frozenset[Role]]:
        """The roles of the people ``command`` names, in ``community`` now."""
        named = command.named_people()
        if not named:
            return _NOBODY
        roles = self.directory.roles
        return {p: roles(p, community, now) - _NEVER_GRANTED for p in named}

    def _members(self, command: Command, community: str, now: datetime) -> tuple[str, ...] | None:
        """Who holds the roles ``command`` counts (a voting body's register) in ``community`` now,
        if it counts any and the directory can list them."""
        roles = command.counted_roles()
        if roles is None or self._register is None:
            return None
        return self._register.members(community, now, roles)

    def _added_items(self, community: str, topics: Iterable[str]) -> tuple[TopicItem, ...]:
        """The items among ``topics`` that the catalogue does not list but a step of ``community``
        added (``AddTopic``, 列入二级目录): the growth of the 二级目录 comes from the log, never the caller."""
        out = []
        for topic in topics:
            if self.catalogue.find(community, topic) is not None:
                continue
            found = self._added.get((community, topic))
            if found is None:
                found = self._find_added(community, topic)
            if found is not None:
                out.append(found)
        return tuple(out)

    def _find_added(self, community: str, topic: str) -> TopicItem | None:
        """The first consultation of ``community`` (by proposal time) whose log added ``topic``; a store
        query only for a topic the catalogue does not list, remembered once found."""
        category, _, slug = topic.partition("/")
        for record in self.store.find(Query(community=community)):
            added = record.added_topic
            if added is not None and added.topic == topic:
                item = TopicItem(community=community, category=category, slug=slug, name=added.name, added_in=record.id)
                if len(self._added) >= 4096:
                    self._added.clear()
                self._added[(community, topic)] = item
                return item
        return None

    def _fund(
        self, command: Command, record: Consultation | None, procedure: Procedure, now: datetime
    ) -> FundPosition | None:
        """The community's fund ledger for the year now (微幸福), where ``command`` may take money
        from a pool: the store's answer, which the core checks the decision against and the log
        keeps in the step's input. A store without a ledger cannot answer: ``NoFundLedger``."""
        if record is None or command.funds_drawn(record) <= 0:
            return None
        params = procedure.parameters
        year = params.fund_year(now)
        if params.pool_for(year) is None:
            return None
        if self._ledger is None:
            raise NoFundLedger(type(self.store).__name__)
        return self._ledger.fund_position(record.community, year)

    # ---- internals -----------------------------------------------------------------------------------
    def _now(self) -> datetime:
        now = self.clock.now()
        if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
            raise InvalidInput("the clock returned a naive datetime; clocks must return aware datetimes (UTC)")
        problem = time_problem(now)
        if problem is not None:
            raise InvalidInput(f"the engine's clock says {problem}; check the clock")
        return now

    def _new_id(self) -> str:
        """A new consultation's id from the id factory, checked like any id (printable, no bidi)."""
        cid = self._ids()
        if not isinstance(cid, str) or not valid_id(cid):
            raise InvalidInput(
                f"the engine's id factory gave {cid!r}, which is no id: 1 to 128 printable characters without "
                "spaces, quotes or backslashes; fix the ids=... passed to Engine"
            )
        return cid

    def _salt(self) -> str:
        """A step's salt from the salt factory (``salts=``; default 16 random bytes), checked: hex."""
        salt = self._salts()
        if not isinstance(salt, str) or not _SALT.match(salt):
            raise InvalidInput(f"the engine's salt factory gave {salt!r}: give up to 64 bytes as lower-case hex")
        return salt

    def _load_for(self, command: Command) -> tuple[Consultation | None, Procedure]:
        if isinstance(command, Propose):
            return None, self.variants.get(command.community, self.procedure)
        if not isinstance(command, ConsultationCommand):
            raise InvalidInput(f"{type(command).__name__} names no consultation")
        record = self.store.load(command.consultation)
        self._check_loaded(record)
        return record, self.procedure_of(record)

    def _check_loaded(self, record: Consultation) -> None:
        """Refuse to act on a record its log does not bear out: its last entry must have the
        record's head as its hash and carry this record's digest (no replay: one entry read)."""
        if self._trusted.get(record.id) is record:
            return
        try:
            problem = check_loaded(record, self.store.entries(record.id, after=record.version - 1))
        except IntegrityError as exc:  # the store could not vouch for the entry's bytes
            problem = str(exc)
        except InvalidInput:  # a version no log position can have
            problem = f"its version {record.version!r} is no log position"
        if problem is not None:
            raise IntegrityError(
                f"consultation {record.id!r} cannot be acted on: {problem}; nothing was written. "
                "Run verify on the store to see what was changed",
                consultation=record.id,
            )
        self._trust(record)

    def _trust(self, record: Consultation) -> None:
        if len(self._trusted) >= 4096:
            self._trusted.clear()
        self._trusted[record.id] = record
