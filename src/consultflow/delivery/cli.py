"""``consultflow outbox`` and ``consultflow dispatch``: see the outbox, deliver it to a webhook.

``outbox`` lists notices (one JSON object per line with ``--json``) and sends dead letters again
(``--retry KEY``, ``--retry-dead``). ``dispatch`` delivers every notice of a SQLite store to one
signed webhook - an app's backend that receives all notices - or, with ``--config``, through the
channels a deployment configures. Exit status as for every subcommand: 0 done, 2 a usage or input
problem (one ``consultflow: ...`` line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from ..errors import ConsultflowError, InvalidInput, NotFound
from ..notices import Notice, NoticeStatus
from .dispatcher import Dispatcher, Report
from .retry import RetryPolicy

__all__ = ["add_commands"]

_STATUSES = ("pending", "leased", "delivered", "dead")
SECRET_ENV = "CONSULTFLOW_WEBHOOK_SECRET"
_DB_HELP = "a consultflow SQLite file, or a postgresql:// DSN (many dispatchers on many servers)"


def add_commands(sub: Any, describe: Callable[[str, str], dict[str, Any]]) -> None:
    """Add ``outbox`` and ``dispatch`` to the CLI's subparsers."""
    outbox = sub.add_parser(
        "outbox",
        help="list the notices in a store's outbox; send dead letters again",
        **describe(
            "List the notices in a consultflow SQLite file's outbox, oldest first; --retry KEY (or\n"
            "--retry-dead) makes dead letters pending again, for the next dispatch.",
            "0 listed (or requeued); 2 a usage or input problem (no such file, not a store, an\n"
            "unknown key, a key that is not dead).",
        ),
    )
    outbox.add_argument("--db", required=True, metavar="PATH", help=_DB_HELP)
    outbox.add_argument("--schema", help="the PostgreSQL schema (default consultflow)")
    outbox.add_argument("--status", choices=_STATUSES, help="only notices in this status")
    outbox.add_argument("--json", action="store_true", help="one JSON object per notice")
    outbox.add_argument("--retry", action="append", default=[], metavar="KEY", help="send this dead letter again")
    outbox.add_argument("--retry-dead", action="store_true", help="send every dead letter again")
    outbox.set_defaults(func=_outbox)

    dispatch = sub.add_parser(
        "dispatch",
        help="deliver the outbox to a signed webhook (Standard Webhooks) or configured channels",
        **describe(
            "Deliver the notices of a consultflow store (a SQLite file or a PostgreSQL DSN): to one\n"
            "webhook (--webhook URL --secret whsec_..., or the secret in\n"
            f"${SECRET_ENV}), signed per Standard Webhooks with the notice's key\n"
            "as webhook-id; or through the channels of a --config file. Without --once or\n"
            "--until-empty it runs until SIGTERM or Ctrl-C: the notice under way finishes, the rest\n"
            "of the batch is released for the next run.",
            "0 done (dead letters are listed by `consultflow outbox --status dead`); 2 a usage or\n"
            "input problem (no such file, not a store, a bad URL or secret, a bad config file).",
        ),
    )
    dispatch.add_argument("--db", required=True, metavar="PATH", help=_DB_HELP)
    dispatch.add_argument("--schema", help="the PostgreSQL schema (default consultflow)")
    dispatch.add_argument("--webhook", metavar="URL", help="deliver every notice to this http(s) URL")
    dispatch.add_argument("--secret", metavar="whsec_...", help=f"the webhook's signing secret (or ${SECRET_ENV})")
    dispatch.add_argument("--config", metavar="FILE", help="a TOML file of channels, people and templates")
    mode = dispatch.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="deliver what is ready now, then exit")
    mode.add_argument(
        "--until-empty", action="store_true", help="retry with backoff until nothing is pending or leased"
    )
    dispatch.add_argument("--max-backoff", type=float, metavar="SECONDS", help="cap on the wait between retries")
    dispatch.add_argument("--max-attempts", type=int, metavar="N", help="attempts before a dead letter")
    dispatch.add_argument("--timeout", type=float, metavar="SECONDS", help="webhook timeout (default 10)")
    dispatch.add_argument("--lease", type=float, metavar="SECONDS", help="how long a notice is held (default 300)")
    dispatch.add_argument("--batch", type=int, metavar="N", help="the most notices leased at a time (default 100)")
    dispatch.add_argument(
        "--batch-seconds",
        type=float,
        metavar="SECONDS",
        help="size each lease to about this long at the last batch's pace (default 0.25)",
    )
    dispatch.add_argument("--workers", type=int, metavar="N", help="parallel sends (default 1)")
    dispatch.add_argument("--lang", choices=["en", "zh"], help="language of the webhook's message (default zh)")
    dispatch.add_argument("--link", metavar="URL", help="link template, e.g. https://app.example/c/{consultation}")
    dispatch.set_defaults(func=_dispatch)


def _fail(message: str) -> int:
    from ..cli import _fail as fail

    return fail(message)


_PG_SCHEMES = ("postgresql://", "postgres://")


def _open(db: str, *, readonly: bool, schema: str | None = None) -> Any:
    """A SQLite file, or a PostgreSQL store when ``--db`` is a ``postgresql://`` DSN (its schema
    must exist: the CLI never creates one)."""
    from ..cli import _store_path

    if db.startswith(_PG_SCHEMES):
        from ..storage.postgres import PostgresStore

        return PostgresStore(db, schema=schema or "consultflow", create_schema=False)
    if schema is not None:
        raise InvalidInput("--schema is for a PostgreSQL store (--db postgresql://...)")
    from ..storage.sqlite import SQLiteStore

    return SQLiteStore(_store_path(db), readonly=readonly)


def notice_json(n: Notice) -> dict[str, object]:
    """A notice as ``consultflow outbox --json`` prints it."""
    return {
        "key": n.key,
        "consultation": n.consultation,
        "seq": n.seq,
        "event": n.event.value,
        "status": n.status,
        "attempts": n.attempts,
        "audience": list(n.audience),
        "title": n.title,
        "created_at": n.created_at.isoformat(),
        "not_before": n.not_before.isoformat() if n.not_before is not None else None,
        "last_error": n.last_error,
    }


def _outbox(args: argparse.Namespace) -> int:
    changing = bool(args.retry or args.retry_dead)
    try:
        store = _open(args.db, readonly=not changing, schema=args.schema)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        now = datetime.now(UTC)
        keys = list(args.retry)
        if args.retry_dead:
            keys.extend(n.key for n in store.outbox(status="dead"))
        for key in dict.fromkeys(keys):
            store.requeue(key, now=now)
        if changing:
            print(f"{len(dict.fromkeys(keys))} dead letter(s) pending again", file=sys.stderr)
        status: NoticeStatus | None = args.status
        for n in store.outbox(status=status):
            if args.json:
                print(json.dumps(notice_json(n), ensure_ascii=False, sort_keys=True))
            else:
                error = f"  {n.last_error}" if n.last_error else ""
                print(f"{n.status:<9} {n.attempts:>3}  {n.key}  {n.event.value}{error}")
    except NotFound as exc:
        return _fail(f"{exc}; list the keys with: consultflow outbox --db {args.db}")
    except ConsultflowError as exc:
        return _fail(str(exc))
    finally:
        store.close()
    return 0


def _policy(args: argparse.Namespace, base: RetryPolicy) -> RetryPolicy:
    cap = base.cap
    if args.max_backoff is not None:
        if not 0 < args.max_backoff <= 86_400:
            raise InvalidInput("--max-backoff is a number of seconds from 0 to 86400")
        cap = timedelta(seconds=args.max_backoff)
    attempts = args.max_attempts if args.max_attempts is not None else base.max_attempts
    return RetryPolicy(max_attempts=attempts, base=min(base.base, cap), cap=cap)


def _build(args: argparse.Namespace, store: Any) -> Dispatcher:
    from .channels.webhook import WebhookChannel
    from .config import load_config
    from .messages import LinkTemplate

    if args.webhook is None and args.config is None:
        raise InvalidInput("give --webhook URL (with --secret) or --config FILE: where should notices go?")
    config = load_config(args.config) if args.config is not None else None
    options = dict(config.dispatcher if config is not None else {})
    sinks = dict(config.sinks) if config is not None else {}
    if args.webhook is not None:
        secret = args.secret or os.environ.get(SECRET_ENV)
        if not secret:
            raise InvalidInput(f"--webhook needs --secret whsec_... (or ${SECRET_ENV})")
        timeout = args.timeout if args.timeout is not None else 10.0
        sinks["webhook"] = WebhookChannel(args.webhook, secret, timeout=timeout)
    named = (("batch", args.batch), ("batch_seconds", args.batch_seconds), ("workers", args.workers))
    for name, value in (*named, ("sink_lang", args.lang)):
        if value is not None:
            options[name] = value
    if args.lease is not None:
        if not 0 < args.lease <= 86_400:
            raise InvalidInput("--lease is a number of seconds from 0 to 86400")
        options["lease_for"] = timedelta(seconds=args.lease)
    if args.link is not None:
        options["link"] = LinkTemplate(args.link)
    policy = _policy(args, options.pop("policy", RetryPolicy()))
    if config is not None and config.reminders is not None:
        from .reminders import Reminders

        leads, every = config.reminders
        options["reminders"] = Reminders(store, leads, every=every)
    return Dispatcher(
        store,
        sinks=sinks,
        channels=config.channels if config is not None else None,
        recipients=config.recipients if config is not None else None,
        templates=config.templates if config is not None else None,
        policy=policy,
        **options,
    )


def _progress(report: Report) -> None:
    line = f"\rdelivered {report.delivered}  retried {report.retried}  dead {report.dead}"
    print(line, end="", file=sys.stderr, flush=True)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        store = _open(args.db, readonly=False, schema=args.schema)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        dispatcher = _build(args, store)
    except ConsultflowError as exc:
        store.close()
        return _fail(str(exc))
    previous: dict[signal.Signals, Any] = {}

    def stop(signum: int, frame: FrameType | None) -> None:
        dispatcher.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, stop)
    terminal = sys.stderr.isatty()
    try:
        until = "ready" if args.once else "empty" if args.until_empty else "forever"
        report = dispatcher.run(until=until, progress=_progress if terminal else None)
    except ConsultflowError as exc:
        return _fail(str(exc))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        dispatcher.close()
        for sink in dispatcher.sinks.values():
            close = getattr(sink, "close", None)
            if callable(close):
                close()
        store.close()
    if terminal:
        print(file=sys.stderr)
    unreached = len({u.recipient for _, u in report.unreachable})
    print(
        f"delivered {report.delivered}, retried {report.retried}, dead {report.dead}"
        + (f", {report.released} released untried" if report.released else "")
        + (f", {unreached} recipient(s) unreachable" if unreached else "")
        + (" (stopped)" if dispatcher.stopping else ""),
        file=sys.stderr,
    )
    return 0
