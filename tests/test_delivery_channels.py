"""Every shipped channel passes the channel kit (``consultflow.testing.ChannelContract``) against a
real receiving end: a list, a file, a webhook server verifying signatures (``standardwebhooks``), an
SMTP server (``aiosmtpd``; plain, with login, with STARTTLS), an HTTP endpoint Apprise posts to."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from consultflow import InvalidInput
from consultflow.delivery import (
    AppriseChannel,
    Channel,
    FileChannel,
    MemoryChannel,
    Outcome,
    SMTPChannel,
    WebhookChannel,
)
from consultflow.testing import ChannelContract
from consultflow.testing.channel_contract import Received, kit_delivery
from delivery_support import SECRET
from webhook_receiver import Receiver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TestMemoryChannel(ChannelContract):
    honours_keys = True

    @pytest.fixture
    def channel(self) -> MemoryChannel:
        return MemoryChannel()

    @pytest.fixture
    def received(self, channel: MemoryChannel) -> Received:
        return lambda: [(k, d.message.subject + "\n" + d.message.body) for k, d in channel.accepted.items()]


def test_the_memory_channel_can_fake_a_failing_receiver() -> None:
    channel = MemoryChannel(lambda d: Outcome.retry("busy"))
    assert channel.send(kit_delivery("k:1")).kind == "retry"
    assert len(channel.sent) == 1
    assert not channel.accepted


class TestFileChannel(ChannelContract):
    @pytest.fixture
    def channel(self, tmp_path: Path) -> FileChannel:
        return FileChannel(tmp_path / "notices.jsonl")

    @pytest.fixture
    def received(self, channel: FileChannel) -> Received:
        def read() -> list[tuple[str, str]]:
            lines = channel.path.read_text(encoding="utf-8").splitlines()
            return [(json.loads(line)["key"], line) for line in lines]

        return read

    @pytest.fixture
    def unreachable(self, tmp_path: Path) -> Channel:
        return FileChannel(tmp_path / "no-such-dir" / "notices.jsonl")

    def test_every_line_is_whole_json(self, channel: FileChannel) -> None:
        for i in range(5):
            channel.send(kit_delivery(f"k:{i + 1}", seq=i + 1))
        rows = [json.loads(line) for line in channel.path.read_text(encoding="utf-8").splitlines()]
        assert [r["key"] for r in rows] == [f"k:{i + 1}" for i in range(5)]
        assert rows[0]["messages"]["en"]["subject"].startswith("[Xiaotaoyuan]")


class TestWebhookChannel(ChannelContract):
    honours_keys = True

    @pytest.fixture
    def receiver(self) -> Iterator[Receiver]:
        with Receiver(SECRET) as r:
            yield r

    @pytest.fixture
    def channel(self, receiver: Receiver) -> Iterator[WebhookChannel]:
        ch = WebhookChannel(receiver.url, SECRET, timeout=5)
        yield ch
        ch.close()

    @pytest.fixture
    def received(self, receiver: Receiver) -> Received:
        return lambda: [(k, json.dumps(p, ensure_ascii=False)) for k, p in list(receiver.accepted.items())]

    @pytest.fixture
    def unreachable(self) -> Iterator[Channel]:
        ch = WebhookChannel(f"http://127.0.0.1:{_free_port()}/hook", SECRET, timeout=2)
        yield ch
        ch.close()

    def test_the_payload_carries_the_notice_and_both_languages(
        self, channel: WebhookChannel, receiver: Receiver
    ) -> None:
        assert channel.send(kit_delivery("c:7", seq=7)).kind == "delivered"
        payload = receiver.accepted["c:7"]
        assert payload["type"] == "consultflow.notified"
        assert payload["data"]["consultation"] == "kit-consultation"
        assert payload["data"]["seq"] == 7
        assert set(payload["data"]["messages"]) == {"en", "zh"}

    def test_a_4xx_answer_is_permanent_and_a_5xx_transient(self) -> None:
        with Receiver(SECRET, fail_every=1) as failing:
            ch = WebhookChannel(failing.url, SECRET)
            assert ch.send(kit_delivery("c:1")).kind == "retry"
            ch.close()
        with Receiver("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB") as other:
            ch = WebhookChannel(other.url, SECRET)
            outcome = ch.send(kit_delivery("c:1"))
            ch.close()
        assert outcome.kind == "failed"
        assert "HTTP 400" in outcome.reason


@pytest.mark.parametrize(
    "secret", ["", "whsec_", "abc", "whsec_!!!notbase64", "whsec_c2hvcnQ=", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
)
def test_a_bad_secret_is_refused_when_the_channel_is_made(secret: str) -> None:
    with pytest.raises(InvalidInput):
        WebhookChannel("http://127.0.0.1:1/", secret)


@pytest.mark.parametrize("url", ["ftp://x/", "file:///etc/passwd", "http://", "javascript:alert(1)", "127.0.0.1:80"])
def test_a_webhook_url_must_be_http(url: str) -> None:
    with pytest.raises(InvalidInput):
        WebhookChannel(url, SECRET)


# ---- SMTP through aiosmtpd ------------------------------------------------------------------------------------
class Mailbox:
    """An aiosmtpd handler that keeps each message once per Message-ID (a key-honouring mail system)."""

    def __init__(self) -> None:
        self.messages: dict[str, EmailMessage] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.messages.setdefault(str(msg["Message-ID"]), msg)
        return "250 OK"

    def received(self) -> list[tuple[str, str]]:
        with self.lock:
            msgs = list(self.messages.values())
        return [(str(m["X-Consultflow-Key"]), str(m["Subject"]) + "\n" + m.get_content()) for m in msgs]  # type: ignore[attr-defined]


def _smtp(mailbox: Mailbox, **kw: Any) -> Iterator[Any]:
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    controller = aiosmtpd.Controller(mailbox, hostname="127.0.0.1", port=_free_port(), **kw)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


class TestSMTPChannel(ChannelContract):
    honours_keys = True

    @pytest.fixture
    def mailbox(self) -> Mailbox:
        return Mailbox()

    @pytest.fixture
    def server(self, mailbox: Mailbox) -> Iterator[Any]:
        yield from _smtp(mailbox)

    @pytest.fixture
    def channel(self, server: Any) -> SMTPChannel:
        return SMTPChannel("127.0.0.1", server.port, sender="notices@xiaotaoyuan.example", timeout=5)

    @pytest.fixture
    def address(self) -> str:
        return "li@xiaotaoyuan.example"

    @pytest.fixture
    def received(self, mailbox: Mailbox) -> Received:
        return mailbox.received

    @pytest.fixture
    def unreachable(self) -> Channel:
        return SMTPChannel("127.0.0.1", _free_port(), sender="notices@xiaotaoyuan.example", timeout=2)

    def test_a_bad_recipient_address_is_permanent(self, channel: SMTPChannel) -> None:
        outcome = channel.send(kit_delivery("k:1", "li@example.org\r\nBcc: everyone@example.org"))
        assert outcome.kind == "failed"
        assert "e-mail" in outcome.reason


def test_smtp_login_and_a_wrong_password() -> None:
    from aiosmtpd.smtp import AuthResult

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = data.login == b"notices" and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

    mailbox = Mailbox()
    for server in _smtp(mailbox, authenticator=check, auth_require_tls=False, auth_required=True):
        good = SMTPChannel(
            "127.0.0.1", server.port, sender="n@x.example", username="notices", password="s3cret", timeout=5
        )
        assert good.send(kit_delivery("k:1", "li@x.example")).kind == "delivered"
        bad = SMTPChannel("127.0.0.1", server.port, sender="n@x.example", username="notices", password="no", timeout=5)
        outcome = bad.send(kit_delivery("k:2", "li@x.example"))
        assert outcome.kind == "failed", outcome.reason
        assert "535" in outcome.reason
        anonymous = SMTPChannel("127.0.0.1", server.port, sender="n@x.example", timeout=5)
        assert anonymous.send(kit_delivery("k:3", "li@x.example")).kind == "failed"
    assert [k for k, _ in mailbox.received()] == ["k:1"]


def test_smtp_starttls(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    mailbox = Mailbox()
    for server in _smtp(mailbox, tls_context=server_ctx, require_starttls=True):
        plain = SMTPChannel("127.0.0.1", server.port, sender="n@x.example", timeout=5)
        assert plain.send(kit_delivery("k:1", "li@x.example")).kind == "failed"  # 530: STARTTLS first
        tls = SMTPChannel("127.0.0.1", server.port, sender="n@x.example", starttls=True, tls_context=client_ctx)
        assert tls.send(kit_delivery("k:2", "li@x.example")).kind == "delivered"
    assert [k for k, _ in mailbox.received()] == ["k:2"]


# ---- Apprise, posting JSON to a local endpoint ----------------------------------------------------------------
class JSONEndpoint:
    """A plain HTTP endpoint keeping every JSON body it is posted (what Apprise's json:// sends)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                endpoint.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/notify"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TestAppriseChannel(ChannelContract):
    @pytest.fixture
    def endpoint(self) -> Iterator[JSONEndpoint]:
        pytest.importorskip("apprise")
        e = JSONEndpoint()
        yield e
        e.close()

    @pytest.fixture
    def channel(self) -> AppriseChannel:
        return AppriseChannel()

    @pytest.fixture
    def address(self, endpoint: JSONEndpoint) -> str:
        return endpoint.url

    @pytest.fixture
    def received(self, endpoint: JSONEndpoint) -> Received:
        # Apprise carries a title and a body, not our key: the kit's bodies end with "[key]"
        def read() -> list[tuple[str, str]]:
            out = []
            for b in list(endpoint.bodies):
                text = f"{b.get('title', '')}\n{b.get('message', '')}"
                found = re.search(r"\[([^\]]+)\]$", text)
                out.append((found.group(1) if found else "", text))
            return out

        return read

    @pytest.fixture
    def unreachable(self) -> Channel:
        pytest.importorskip("apprise")
        return AppriseChannel((f"json://127.0.0.1:{_free_port()}/notify",))
