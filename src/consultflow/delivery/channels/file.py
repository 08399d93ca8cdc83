"""The file channel (a log of notices): one JSON line per delivery, appended to a file.

For a deployment that hands notices to another program by file, or keeps a plain record of what
was sent. Each line is written with one ``write`` on a file opened for appending, so lines from
several threads or processes do not interleave.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..channel import Delivery, Outcome

__all__ = ["FileChannel", "delivery_json"]


def delivery_json(delivery: Delivery) -> dict[str, object]:
    """What the file and webhook channels carry: the notice, the recipient and the message(s)."""
    n = delivery.notice
    return {
        "key": delivery.key,
        "notice": n.key,
        "consultation": n.consultation,
        "seq": n.seq,
        "event": n.event.value,
        "audience": list(n.audience),
        "title": n.title,
        "created_at": n.created_at.isoformat(),
        "recipient": delivery.recipient,
        "lang": delivery.message.lang,
        "subject": delivery.message.subject,
        "body": delivery.message.body,
        "link": delivery.message.link,
        "messages": {
            lang: {"subject": m.subject, "body": m.body, "link": m.link} for lang, m in delivery.messages.items()
        },
    }


class FileChannel:
    """Appends each delivery as a JSON line to ``path``. A write that fails (disk full, no
    permission) is a transient failure: the notice is retried."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> Outcome:
        line = json.dumps(delivery_json(delivery), ensure_ascii=False, sort_keys=True) + "\n"
        data = line.encode("utf-8")
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    written = os.write(fd, data)
                finally:
                    os.close(fd)
        except OSError as exc:
            return Outcome.retry(f"cannot write {self.path}: {exc.strerror or exc}")
        if written != len(data):
            return Outcome.retry(f"short write to {self.path}")
        return Outcome.delivered()
