"""A channel that hands text messages to an SMS gateway through a table it drains (a common way to
reach a city's SMS platform). It passes ``consultflow.testing.ChannelContract``.

One method, ``send``: write the message, say what happened. ``INSERT OR IGNORE`` on the delivery's
key makes a retried notice arrive once; a locked or unreachable database is a transient failure
(the dispatcher retries), a phone number that cannot be one is permanent (a dead letter).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from consultflow.delivery import Delivery, Outcome

PHONE = re.compile(r"\+?[0-9]{6,15}")


class GatewayChannel:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        with sqlite3.connect(self.path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS sms_queue (key TEXT PRIMARY KEY, phone TEXT, text TEXT)")

    def send(self, delivery: Delivery) -> Outcome:
        if not PHONE.fullmatch(delivery.address):
            return Outcome.failed(f"not a phone number: {delivery.address[:20]!r}")
        text = f"{delivery.message.subject}\n{delivery.message.body}"[:500]
        try:
            with sqlite3.connect(self.path, timeout=5) as db:
                db.execute(
                    "INSERT OR IGNORE INTO sms_queue (key, phone, text) VALUES (?, ?, ?)",
                    (delivery.key, delivery.address, text),
                )
        except sqlite3.Error as exc:
            return Outcome.retry(f"gateway table: {exc}")
        return Outcome.delivered()

    def queued(self) -> list[tuple[str, str]]:
        """(key, text) of every message waiting for the gateway."""
        with sqlite3.connect(self.path) as db:
            return [(k, t) for k, t in db.execute("SELECT key, text FROM sms_queue ORDER BY rowid")]
