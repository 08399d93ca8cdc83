"""A real webhook receiver on loopback for the delivery tests and the benchmark.

It verifies every request with the ``standardwebhooks`` package (signature, and a timestamp within
its five-minute tolerance) and answers 400 when that fails; it honours the key: a ``webhook-id`` it
accepted before is answered 200 and not accepted again. ``fail_every`` makes it answer 503 to every
n-th request (2: half of them); ``hang`` makes it sit on the first request of each key for that many
seconds before accepting it (past a client's timeout, as a slow backend does).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

__all__ = ["Receiver"]


class Receiver:
    def __init__(
        self, secret: str, *, fail_every: int = 0, hang: float = 0.0, hang_always: bool = False, delay: float = 0.0
    ) -> None:
        self.delay = delay  # every request takes this long (a slow backend)
        self.webhook = Webhook(secret)
        self.fail_every = fail_every
        self.hang = hang
        self.hang_always = hang_always
        self.accepted: dict[str, Any] = {}  # webhook-id -> verified payload, once each
        self.acceptances: Counter[str] = Counter()  # how often each id was accepted (must stay 1)
        self.receipts: Counter[str] = Counter()  # every verified request per id, duplicates included
        self.rejected: list[str] = []  # why verification failed
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                code, text = receiver.handle(body, {k: v for k, v in self.headers.items()})
                data = text.encode()
                try:
                    self.send_response(code)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/consultflow"

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        with self.lock:
            self.requests += 1
            n = self.requests
        try:
            payload = self.webhook.verify(body, headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return 400, f"rejected: {exc}"
        msg_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self.lock:
            self.receipts[msg_id] += 1
        if self.fail_every and n % self.fail_every == 0:
            return 503, "try again later"
        with self.lock:
            seen = msg_id in self.accepted
        if self.delay:
            time.sleep(self.delay)
        if self.hang and (self.hang_always or not seen):
            time.sleep(self.hang)
        with self.lock:
            if msg_id not in self.accepted:
                self.accepted[msg_id] = payload
                self.acceptances[msg_id] += 1
        return 200, json.dumps({"ok": True})

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
