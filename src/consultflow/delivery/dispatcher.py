"""The dispatcher (投递): leases due notices from the outbox, renders them, sends them per
recipient and settles each one - delivered, retried with backoff, or dead with the last error.

Any number of dispatchers (threads, processes, servers on PostgreSQL) can run against one store:
the store's lease gives each notice to one of them at a time, and a settle from an expired lease
changes nothing. A dispatcher killed mid-send leaves its notices leased; when the lease ends another
takes them and sends again with the same keys, so a receiver that honours the key gets each once.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, tzinfo
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import attrs

from ..clock import Clock, SystemClock
from ..errors import ConsultflowError, IntegrityError, InvalidInput, NotFound, StoreUnavailable
from ..i18n import LANGS, Lang
from ..notices import Notice, NoticeStatus
from ..procedure import Procedure
from ..records import Consultation
from ..storage.base import SettleOrder, Store
from .channel import Channel, Delivery, Message, Outcome
from .messages import LinkTemplate, Templates
from .recipients import Recipients, Unreachable
from .reminders import Reminders
from .retry import RetryPolicy

__all__ = ["SINK", "Dispatcher", "OutboxView", "Report"]

log = logging.getLogger("consultflow.delivery")
log.addHandler(logging.NullHandler())  # the app decides where warnings go; the Report carries them too

_Planned = tuple[str, Channel, Delivery]
#: A delivery ready to go: (channel name, delivery, the send).
_Ready = tuple[str, Delivery, Callable[[], Outcome]]

#: The recipient of a whole-notice delivery (a sink: a backend's webhook, an archive file).
SINK = "*"
_MAX_ERROR = 1000
#: The most a dispatcher leases before it knows its channels' pace: dispatchers starting together on
#: a backlog share it instead of the first taking a whole ``batch``.
_FIRST_LEASE = 10


@runtime_checkable
class OutboxView(Protocol):
    """A store that can list its outbox (every shipped store): what ``until_empty`` waits on."""

    def outbox(self, *, status: NoticeStatus | None = None) -> Sequence[Notice]: ...


@runtime_checkable
class SettlesMany(Protocol):
    """A store that settles a batch in one transaction (``SQLiteStore``, ``PostgresStore``); any other store is
    settled one notice at a time."""

    def settle_many(self, settles: Sequence[SettleOrder], *, now: datetime) -> Sequence[ConsultflowError | None]: ...


@runtime_checkable
class LoadsMany(Protocol):
    """A store that loads several records in one query (``SQLiteStore``); any other store is asked
    once per consultation."""

    def load_many(self, consultations: Iterable[str]) -> Mapping[str, Consultation]: ...


@attrs.frozen(slots=True)
class _Prepared:
    """A leased notice, rendered and made ready to send: where it goes, and who cannot be reached."""

    notice: Notice
    deliveries: list[_Ready]
    unreachable: list[Unreachable]
    problem: str = ""  # preparing it failed (a bug in a plug-in): retried with this reason, not sent


@attrs.frozen(slots=True)
class _Sent:
    """A notice after its sends: what went wrong (nothing, for a delivered one)."""

    problems: tuple[str, ...]
    transient: bool
    error: str
    unreachable: tuple[tuple[str, Unreachable], ...]


@attrs.frozen(slots=True)
class Report:
    """What a run did: notices delivered, retried (will be tried again), dead (dead letters), leases
    lost to another dispatcher; each recipient that could not be reached, with the notice key; and
    notices released untried (the dispatcher stopping, or a batch's lease running short: ready again
    at once, no attempt counted)."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    unreachable: tuple[tuple[str, Unreachable], ...] = ()
    released: int = 0

    def __add__(self, other: Report) -> Report:
        return Report(
            self.delivered + other.delivered,
            self.retried + other.retried,
            self.dead + other.dead,
            self.lost + other.lost,
            (*self.unreachable, *other.unreachable)[-1000:],
            self.released + other.released,
        )

    @property
    def settled(self) -> int:
        return self.delivered + self.retried + self.dead


class Dispatcher:
    """Delivers the outbox of ``store``.

    ``sinks`` get every notice whole (one delivery per notice, keyed by the notice's key, the
    message in ``sink_lang`` and every language): an app's backend, an archive. ``channels`` carry
    per-person deliveries: ``recipients`` resolves each notice's audience into contacts, and a
    contact's channel name picks the channel. ``procedures`` give each consultation's time zone
    (else ``zone``). ``workers`` send the notices of a batch in parallel.

    A batch is leased for ``lease_for``; no send of it but the first starts after half of that has
    passed (nor any after ``stop()``): the notices not yet sent are released, ready again at once with
    no attempt counted, so a batch never outlives its lease however slow its channels, as long as one
    notice's sends end within half the lease (each shipped channel has a timeout far below it).

    Each lease is sized from the pace of the last batch: as many notices as take about
    ``batch_seconds`` to lease, prepare and send, at most ``batch`` and at least ``workers`` (the
    first lease: at most 10, or ``workers``). Against a fast receiver batches are large and their
    fixed costs (a lease and a settle transaction) spread thin; against a slow one they are small, so
    several dispatchers share a backlog instead of one holding it (docs/performance.md, "Delivery").
    """

    def __init__(
        self,
        store: Store,
        *,
        sinks: Mapping[str, Channel] | None = None,
        channels: Mapping[str, Channel] | None = None,
        recipients: Recipients | None = None,
        templates: Templates | None = None,
        link: LinkTemplate | None = None,
        sink_lang: Lang = "zh",
        zone: str = "Asia/Shanghai",
        procedures: Iterable[Procedure] = (),
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        batch: int = 100,
        batch_seconds: float = 0.25,
        lease_for: timedelta = timedelta(minutes=5),
        workers: int = 1,
        rng: random.Random | None = None,
        reminders: Reminders | None = None,
    ) -> None:
        self.store = store
        self.sinks = dict(sinks or {})
        self.channels = dict(channels or {})
        for name, ch in (*self.sinks.items(), *self.channels.items()):
            if not isinstance(ch, Channel):
                raise InvalidInput(f"channel {name!r} has no send(delivery) method")
        if not self.sinks and not self.channels:
            raise InvalidInput("a Dispatcher needs somewhere to send: sinks={...} and/or channels={...}")
        if self.channels and recipients is None:
            raise InvalidInput("per-person channels need recipients=Recipients(contacts, directory)")
        if sink_lang not in LANGS:
            raise InvalidInput(f"sink_lang must be one of {', '.join(LANGS)}")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 10_000:
            raise InvalidInput("batch is a whole number from 1 to 10000")
        if (
            isinstance(batch_seconds, bool)
            or not isinstance(batch_seconds, int | float)
            or not 0.001 <= batch_seconds <= 3600
        ):
            raise InvalidInput("batch_seconds is a number of seconds from 0.001 to 3600")
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
            raise InvalidInput("workers is a whole number from 1 to 256")
        if not isinstance(lease_for, timedelta) or lease_for <= timedelta(0):
            raise InvalidInput("lease_for must be a positive timedelta")
        self.recipients = recipients
        self.templates = templates if templates is not None else Templates()
        self.link = link
        self.sink_lang: Lang = sink_lang
        self.zone = ZoneInfo(zone)
        self._zones: dict[tuple[str, str], tzinfo] = {p.key: p.parameters.zone for p in procedures}
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.policy = policy if policy is not None else RetryPolicy()
        self.batch = batch
        self.batch_seconds = float(batch_seconds)
        self._size = min(batch, max(_FIRST_LEASE, workers))
        self.lease_for = lease_for
        self.workers = workers
        self._rng = rng if rng is not None else random.Random()
        self._rng_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.reminders = reminders
        self._reminded_at: datetime | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="consultflow-dispatch") if workers > 1 else None

    # ---- running ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop soon (what SIGTERM and SIGINT do in the CLI): the sends under way finish, the rest
        of the batch is released untried, the batch is settled, and ``run`` returns."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll: call it after a step is committed
        (``engine.execute(...); dispatcher.wake()``) for notices that leave at once."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def lease_size(self) -> int:
        """How many notices the next lease asks for (from the last batch's pace, at most ``batch``)."""
        return self._size

    def remind(self) -> int:
        """Add the reminders that are due (at most once per ``reminders.every``); how many were new."""
        if self.reminders is None:
            return 0
        now = self._now()
        if self._reminded_at is not None and now - self._reminded_at < self.reminders.every:
            return 0
        self._reminded_at = now
        return self.reminders.run(now)

    def run_once(self) -> Report:
        """Add the reminders that are due, then lease one batch of ready notices, deliver and
        settle them.

        In three phases: load each consultation once, render every notice and make its sends ready
        (a channel that ``Prepares`` builds and signs its request now); send them back to back (in
        parallel with ``workers``); settle the whole batch, in one transaction when the store offers
        ``settle_many`` (a commit per notice cost more than rendering it). Work between two sends
        costs several times its length (docs/performance.md, "Delivery"), hence the phases. No send
        starts once half the lease has passed or ``stop()`` was called: those notices are released.
        A dispatcher killed between sending and settling sends the batch again: at least once, as ever."""
        self.remind()
        now = self._now()
        notices = self.store.lease(self._size, now, self.lease_for)
        if not notices:
            return Report()
        records: dict[str, Consultation | None] = {}
        try:
            if isinstance(self.store, LoadsMany):
                found = self.store.load_many(n.consultation for n in notices)
                records = {n.consultation: found.get(n.consultation) for n in notices}
            prepared = [self._prepare(n, records) for n in notices]
        except StoreUnavailable:  # the store or the directory is down: nothing was tried
            self._release(notices)
            raise
        # the first notice goes while the lease holds at all (a batch always makes progress); the
        # others only in its first half
        half = now + self.lease_for / 2
        deadlines = [now + self.lease_for, *[half] * (len(prepared) - 1)]
        if self._pool is not None and len(prepared) > 1:
            sent = list(self._pool.map(self._deliver_by, deadlines, prepared))
        else:
            sent = [self._deliver_by(by, p) for by, p in zip(deadlines, prepared, strict=True)]
        done = self._now()
        self._pace(done - now, len(sent) - sent.count(None))
        return self._settle(notices, sent, done)

    def _pace(self, took: timedelta, tried: int) -> None:
        """Size the next lease: as many notices as ``batch_seconds`` of leasing, preparing and sending
        holds at this batch's pace; never fewer than ``workers`` (they would have nothing to do), never
        more than ``batch``. A batch that tried nothing (a stop) says nothing of the pace."""
        if not tried:
            return
        each = took.total_seconds() / tried
        least = min(self.batch, self.workers)
        self._size = self.batch if each <= 0 else max(least, min(self.batch, int(self.batch_seconds / each)))

    def run(
        self,
        *,
        until: str = "forever",
        poll: float = 1.0,
        progress: Callable[[Report], None] | None = None,
    ) -> Report:
        """Deliver until stopped. ``until="ready"``: stop when nothing is ready now (retries stay
        pending for later); ``"empty"``: keep going, sleeping until the next retry is due, until
        nothing is pending or leased; ``"forever"``: poll every ``poll`` seconds until ``stop()``.
        A store that is briefly unavailable is waited for, not fatal."""
        if until not in {"forever", "ready", "empty"}:
            raise InvalidInput("until is 'forever', 'ready' or 'empty'")
        if until == "empty" and not isinstance(self.store, OutboxView):
            raise InvalidInput("until='empty' needs a store that lists its outbox (outbox(status=...))")
        total = Report()
        while not self._stop.is_set():
            try:
                report = self.run_once()
            except StoreUnavailable as exc:
                log.warning("store unavailable, waiting: %s", exc)
                self._wake.wait(poll)
                self._wake.clear()
                continue
            total += report
            if progress is not None and report.settled:
                progress(total)
            if report.settled or report.lost or report.released:
                continue
            if until == "ready":
                break
            wait = poll
            if until == "empty":
                nxt = self._next_wake()
                if nxt is None:
                    break
                wait = min(max((nxt - self._now()).total_seconds(), 0.01), poll)
            self._wake.wait(wait)
            self._wake.clear()
        return total

    def close(self) -> None:
        """Stop the worker threads (the store and channels are the caller's)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # ---- one notice ---------------------------------------------------------------------------------
    def plan(self, notice: Notice, record: Consultation | None) -> tuple[list[_Planned], list[Unreachable]]:
        """The deliveries for ``notice`` (channel name, channel, delivery) and who cannot be reached."""
        zone = self._zone(record)
        out: list[_Planned] = []
        unreachable: list[Unreachable] = []
        rendered: dict[Lang, Message] = {}
        if self.sinks:  # a sink gets the notice in every language
            rendered = self.templates.messages(notice, record, LANGS, zone=zone, link=self.link)
            messages: dict[str, Message] = dict(rendered.items())
            for name, ch in self.sinks.items():
                out.append((name, ch, Delivery(notice.key, notice, SINK, "", rendered[self.sink_lang], messages)))
        if self.channels and self.recipients is not None:
            if record is None:
                unreachable.append(Unreachable(SINK, f"consultation {notice.consultation!r} is not in the store"))
                return out, unreachable
            resolution = self.recipients.resolve(notice.audience, record.community, notice.created_at)
            unreachable.extend(resolution.unreachable)
            # a person gets it in their language: only the languages someone reads are rendered
            reads = {t.lang for t in resolution.targets if t.contact.channel in self.channels}
            wanted = [lang for lang in LANGS if lang in reads and lang not in rendered]
            if wanted:
                rendered.update(self.templates.messages(notice, record, wanted, zone=zone, link=self.link))
            used: set[str] = set()
            for t in resolution.targets:
                carrier = self.channels.get(t.contact.channel)
                if carrier is None:
                    unreachable.append(Unreachable(t.recipient, f"no channel {t.contact.channel!r} is configured"))
                    continue
                key = f"{notice.key}/{t.recipient}/{t.contact.channel}"
                if key in used:  # a second address on the same channel: a key of its own
                    key = f"{key}/{sum(1 for k in used if k.startswith(key))}"
                used.add(key)
                delivery = Delivery(key, notice, t.recipient, t.contact.address, rendered[t.lang])
                out.append((t.contact.channel, carrier, delivery))
        return out, unreachable

    def _prepare(self, notice: Notice, records: dict[str, Consultation | None]) -> _Prepared:
        """The notice's consultation (loaded once per batch) and its deliveries, rendered."""
        if notice.consultation not in records:
            try:
                records[notice.consultation] = self.store.load(notice.consultation)
            except NotFound:
                records[notice.consultation] = None
        try:
            deliveries, unreachable = self.plan(notice, records[notice.consultation])
        except StoreUnavailable:
            raise
        except Exception as exc:  # a template, recipients or directory plug-in with a bug: this notice only
            log.exception("preparing notice %s raised", notice.key)
            return _Prepared(notice, [], [], f"preparing it raised {type(exc).__name__}: {exc}")
        ready: list[_Ready] = [(name, d, _ready(ch, d)) for name, ch, d in deliveries]
        return _Prepared(notice, ready, unreachable)

    def _release(self, notices: Sequence[Notice]) -> None:
        """Hand a batch back untried (a settle of nothing but releases), at once rather than when its
        lease ends; if the store itself is what is down this fails too, and the lease's end frees the
        notices as ever."""
        try:
            self._settle(notices, [None] * len(notices), self._now())
        except StoreUnavailable as exc:
            log.warning("could not release %d notice(s) (they are free when their lease ends): %s", len(notices), exc)

    def _deliver_by(self, send_by: datetime, prepared: _Prepared) -> _Sent | None:
        """``_deliver``, unless the dispatcher is stopping or it is ``send_by`` (for all but a batch's
        first notice, half its lease gone): then the notice is left untried (``None``) and the settle
        releases it."""
        if self._stop.is_set() or self._now() >= send_by:
            return None
        return self._deliver(prepared)

    def _deliver(self, prepared: _Prepared) -> _Sent:
        """Send a prepared notice to every channel it goes to; what its settle must say."""
        notice, unreachable = prepared.notice, prepared.unreachable
        if prepared.problem:
            return _Sent((prepared.problem,), True, prepared.problem[:_MAX_ERROR], ())
        if unreachable:
            who = "; ".join(f"{u.recipient} ({u.reason})" for u in unreachable)
            log.warning("notice %s: cannot reach %s", notice.key, who)
        problems: list[str] = []
        transient = False
        for name, delivery, send in prepared.deliveries:
            outcome = _send(send, delivery)
            if outcome.kind == "delivered":
                continue
            transient = transient or outcome.kind == "retry"
            problems.append(f"{delivery.recipient} via {name}: {outcome.reason}")
        if not prepared.deliveries and unreachable:  # it reached nobody: a dead letter, to fix and send again
            problems = [f"nobody could be reached: {u.recipient} ({u.reason})" for u in unreachable]
        unreached = tuple((notice.key, u) for u in unreachable)
        return _Sent(tuple(problems), transient, "; ".join(problems)[:_MAX_ERROR], unreached)

    def _settle(self, notices: Sequence[Notice], sent: Sequence[_Sent | None], now: datetime) -> Report:
        """Settle a batch at ``now``, each notice by what its sends gave: delivered, retried with
        backoff, dead, or released (not tried: ``None``); one transaction when the store offers
        ``settle_many``. A settle refused because the lease expired and another dispatcher took the
        notice is counted as lost (the other one settles it)."""
        orders: list[SettleOrder] = []
        kinds: list[str] = []
        for notice, s in zip(notices, sent, strict=True):
            if s is None:
                orders.append((notice.key, "release", None, "", notice.attempts))
                kinds.append("released")
            elif not s.problems:
                orders.append((notice.key, "delivered", None, "", notice.attempts))
                kinds.append("delivered")
            elif s.transient and not self.policy.gives_up(notice.attempts):
                with self._rng_lock:
                    draw = self._rng.random()
                retry_at = now + self.policy.delay(notice.attempts, draw)
                orders.append((notice.key, "retry", retry_at, s.error, notice.attempts))
                kinds.append("retried")
            else:
                orders.append((notice.key, "dead", None, s.error, notice.attempts))
                kinds.append("dead")
        if isinstance(self.store, SettlesMany):
            errors = list(self.store.settle_many(orders, now=now))
        else:
            errors = [_settle_one(self.store, order, now) for order in orders]
        counts = {"delivered": 0, "retried": 0, "dead": 0, "lost": 0, "released": 0}
        for notice, s, kind, error in zip(notices, sent, kinds, errors, strict=True):
            if error is None:
                counts[kind] += 1
                if kind == "dead" and s is not None:
                    log.warning("notice %s is dead after %d attempt(s): %s", notice.key, notice.attempts, s.error)
            elif isinstance(error, IntegrityError):  # our lease expired and another dispatcher took the notice
                log.info("notice %s: %s", notice.key, error)
                counts["lost"] += 1
            else:
                raise error
        unreached = tuple(u for s in sent if s is not None for u in s.unreachable)
        return Report(
            counts["delivered"],
            counts["retried"],
            counts["dead"],
            counts["lost"],
            unreached[-1000:],
            counts["released"],
        )

    # ---- helpers -------------------------------------------------------------------------------------
    def _zone(self, record: Consultation | None) -> tzinfo:
        if record is None:
            return self.zone
        return self._zones.get((record.procedure, record.procedure_version), self.zone)

    def _next_wake(self) -> datetime | None:
        """When the next pending or leased notice becomes ready; ``None`` when there is none."""
        assert isinstance(self.store, OutboxView)
        waiting = [*self.store.outbox(status="pending"), *self.store.outbox(status="leased")]
        if not waiting:
            return None
        now = self._now()
        return min((n.not_before or now for n in waiting), default=now)

    def _now(self) -> datetime:
        now = self.clock.now()
        if now.tzinfo is None:
            raise InvalidInput("the clock returned a naive datetime; clocks must return aware datetimes")
        return now


def _settle_one(store: Store, order: SettleOrder, now: datetime) -> ConsultflowError | None:
    """``store.settle`` for one order; the error it raised for this notice, or ``None``."""
    key, outcome, retry_at, error, attempt = order
    try:
        store.settle(key, outcome, now=now, retry_at=retry_at, error=error, attempt=attempt)
    except (IntegrityError, NotFound) as exc:
        return exc
    return None


def _ready(channel: Channel, delivery: Delivery) -> Callable[[], Outcome]:
    """``delivery`` made ready to go out on ``channel``: its ``prepare`` (``Prepares``: the request
    built and signed ahead), else a later call of its ``send``. A ``prepare`` that raises gives the
    outcome a raising ``send`` gets."""
    prepare = getattr(channel, "prepare", None)
    if prepare is None:
        return functools.partial(channel.send, delivery)
    try:
        ready: Callable[[], Outcome] = prepare(delivery)
    except ConsultflowError as exc:
        return functools.partial(Outcome.retry, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log.exception("channel raised preparing %s", delivery.key)
        return functools.partial(Outcome.retry, f"channel raised {type(exc).__name__}: {exc}")
    return ready


def _send(send: Callable[[], Outcome], delivery: Delivery) -> Outcome:
    """A channel's outcome; a channel that raises instead is a transient failure, recorded with
    the exception, so a bug in one channel neither kills the dispatcher nor loses the notice."""
    try:
        outcome = send()
    except ConsultflowError as exc:
        return Outcome.retry(f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log.exception("channel raised on %s", delivery.key)
        return Outcome.retry(f"channel raised {type(exc).__name__}: {exc}")
    if not isinstance(outcome, Outcome):
        return Outcome.retry(f"channel returned {type(outcome).__name__}, not an Outcome")
    return outcome
