"""Support for the delivery tests: a secret, outboxes filled by real steps, a quick retry policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from consultflow.delivery import RetryPolicy
from consultflow.testing import append
from store_support import opening

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test secret (24 bytes), as in the Standard Webhooks docs
OTHER_SECRET = "whsec_HzB2d8mtUQuIoWQSUjrHC5Mb/zb9Sa/A"

#: Retries after a few milliseconds, so a test sees many attempts in well under a second.
QUICK = RetryPolicy(max_attempts=8, base=timedelta(milliseconds=5), cap=timedelta(milliseconds=40))


def seed(store: Any, consultations: int, prefix: str = "d") -> list[str]:
    """Fill ``store`` with ``consultations`` openings (two notices each: notified, round_opened);
    return the notice keys, oldest first."""
    keys: list[str] = []
    for i in range(consultations):
        for step in opening(f"{prefix}{i}"):
            append(store, step)
            keys.extend(n.key for n in step.notices)
    return keys


def statuses(store: Any) -> dict[str, str]:
    return {n.key: n.status for n in store.outbox()}


def dispatch_worker(spec: Any, url: str, secret: str, batch: int, results: Any) -> None:
    """A dispatcher in its own process on the store ``spec`` names, until the outbox is empty;
    puts its report's counts on ``results``."""
    from consultflow.delivery import Dispatcher, WebhookChannel
    from store_support import open_store

    store = open_store(spec)
    channel = WebhookChannel(url, secret, timeout=5)
    dispatcher = Dispatcher(store, sinks={"hook": channel}, policy=QUICK, batch=batch)
    try:
        report = dispatcher.run(until="empty", poll=0.05)
        results.put((report.delivered, report.retried, report.dead, report.lost))
    finally:
        dispatcher.close()
        channel.close()
        store.close()
