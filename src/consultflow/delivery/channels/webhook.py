"""The signed webhook channel, following the Standard Webhooks spec (standardwebhooks.com).

Each delivery is one ``POST`` of JSON with three headers: ``webhook-id`` (the idempotency key: a
receiver that remembers it accepts a retried notice once), ``webhook-timestamp`` (seconds since the
epoch) and ``webhook-signature`` (``v1,`` + base64 of HMAC-SHA256 over ``id.timestamp.body``, keyed
with the ``whsec_`` secret). Sent with ``httpx``, with timeouts. A 2xx answer is delivered; 408,
425, 429, 5xx, a timeout or a connection error are transient (retry); any other answer (a 400 for
a bad signature, a 410 Gone) is permanent (dead letter).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ...clock import Clock, SystemClock
from ...errors import InvalidInput
from ..channel import Delivery, Outcome
from .file import delivery_json

__all__ = ["WebhookChannel", "check_secret", "sign", "webhook_body"]

_TRANSIENT = frozenset({408, 425, 429})


def check_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret; ``InvalidInput`` for anything else."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise InvalidInput("a webhook secret starts with 'whsec_' followed by base64 (Standard Webhooks)")
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the webhook secret after 'whsec_' is not valid base64") from None
    if len(key) < 16:
        raise InvalidInput("the webhook secret is too short: use at least 16 random bytes (24 base64 characters)")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    mac = hmac.digest(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac).decode("ascii")


#: One encoder for every body (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def webhook_body(delivery: Delivery) -> bytes:
    """The JSON a webhook receives: ``{"type": "consultflow.<event>", "timestamp": ..., "data": {...}}``."""
    data = delivery_json(delivery)
    payload = {"type": f"consultflow.{data['event']}", "timestamp": data["created_at"], "data": data}
    return _ENCODER.encode(payload).encode("utf-8")


def _check_url(url: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(f"a webhook URL is http:// or https:// with a host, not {url!r}")
    return url


class WebhookChannel:
    """Posts each delivery to ``url`` (or, when ``url`` is ``None``, to the delivery's address: one
    webhook per contact). ``timeout`` bounds connecting, sending and waiting for the answer."""

    def __init__(
        self,
        url: str | None,
        secret: str,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
        client: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        import httpx

        self.url = _check_url(url) if url is not None else None
        self._key = check_secret(secret)
        if not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise InvalidInput("the webhook timeout is a number of seconds from 0 to 600")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._httpx = httpx
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=httpx.Timeout(timeout))
        self._headers = dict(headers or {})
        self._lock = threading.Lock()
        # an httpx client's requests are built ahead too (URL parsed, headers checked: most of a
        # post's own work); a client of another kind is asked to post(...) at the time of sending
        self._builds = callable(getattr(self._client, "build_request", None)) and callable(
            getattr(self._client, "send", None)
        )
        # the fixed URL parsed once, not per request (half of what building a request costs httpx)
        self._target: Any = httpx.URL(self.url) if self.url is not None and self._builds else None

    def request(
        self, delivery: Delivery, now: Callable[[], datetime] | None = None
    ) -> tuple[str, dict[str, str], bytes]:
        """The URL, headers and body of the POST for ``delivery`` (signed now)."""
        url = self.url if self.url is not None else _check_url(delivery.address)
        body = webhook_body(delivery)
        timestamp = int((now or self._clock.now)().timestamp())
        headers = {
            **self._headers,
            "content-type": "application/json",
            "webhook-id": delivery.key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, delivery.key, timestamp, body),
        }
        return url, headers, body

    def prepare(self, delivery: Delivery) -> Callable[[], Outcome]:
        """The POST for ``delivery`` built and signed ahead of its turn (``channel.Prepares``); calling
        it sends, signed again if the clock has reached another second since, so the timestamp is
        still the time of sending."""
        try:
            url, headers, body = self.request(delivery)
        except InvalidInput as exc:
            return functools.partial(Outcome.failed, str(exc))
        return _Post(self, url, headers, body)

    def send(self, delivery: Delivery) -> Outcome:
        return self.prepare(delivery)()

    def _post(self, url: str, headers: dict[str, str], body: bytes, built: Any = None) -> Outcome:
        httpx = self._httpx
        try:
            if built is not None:
                response = self._client.send(built)
            else:
                response = self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return Outcome.retry(f"timed out: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return Outcome.retry(f"{type(exc).__name__}: {exc}")
        code = int(response.status_code)
        if 200 <= code < 300:
            return Outcome.delivered()
        reason = f"HTTP {code} from {urlsplit(url).hostname}: {response.text[:200]}"
        if code in _TRANSIENT or code >= 500:
            return Outcome.retry(reason)
        return Outcome.failed(reason)

    def close(self) -> None:
        if self._own_client:
            self._client.close()


class _Post:
    """One prepared POST (``WebhookChannel.prepare``), built as the client sends it: call it to send."""

    __slots__ = ("body", "built", "channel", "headers", "timestamp", "url")

    def __init__(self, channel: WebhookChannel, url: str, headers: dict[str, str], body: bytes) -> None:
        self.channel, self.url, self.headers, self.body = channel, url, headers, body
        self.timestamp = headers["webhook-timestamp"]
        target = channel._target if channel._target is not None else url
        self.built = (
            channel._client.build_request("POST", target, content=body, headers=headers) if channel._builds else None
        )

    def __call__(self) -> Outcome:
        channel, headers = self.channel, self.headers
        timestamp = int(channel._clock.now().timestamp())
        if str(timestamp) != self.timestamp:  # prepared in an earlier second: sign for now
            signature = sign(channel._key, headers["webhook-id"], timestamp, self.body)
            headers = {**headers, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
            if self.built is not None:
                self.built.headers["webhook-timestamp"] = str(timestamp)
                self.built.headers["webhook-signature"] = signature
        return channel._post(self.url, headers, self.body, self.built)
