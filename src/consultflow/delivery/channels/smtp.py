"""The e-mail channel: SMTP with the standard library (smtplib); STARTTLS and login optional.

The delivery key becomes the ``Message-ID`` (``<sha256 of key>@<domain>``) and an
``X-Consultflow-Key`` header, so a mail system that drops duplicate Message-IDs receives a retried
notice once. 4xx answers, timeouts and broken connections are transient; 5xx answers (an unknown
mailbox, a refused sender) are permanent.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from ...errors import InvalidInput
from ..channel import Delivery, Outcome

__all__ = ["SMTPChannel", "email_message"]


def _check_addr(value: str, what: str) -> str:
    if not isinstance(value, str) or "@" not in value or any(c in value for c in "\r\n<>,; \t") or len(value) > 320:
        raise InvalidInput(f"{what} must be one e-mail address (name@domain), not {value!r}")
    return value


def email_message(delivery: Delivery, sender: str, domain: str) -> EmailMessage:
    """The e-mail for ``delivery``: plain text, UTF-8, Message-ID derived from the key."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = Address(addr_spec=_check_addr(delivery.address, "a recipient's e-mail"))
    msg["Subject"] = delivery.message.subject
    msg["Date"] = format_datetime(delivery.notice.created_at)
    msg["Message-ID"] = f"<{hashlib.sha256(delivery.key.encode()).hexdigest()}@{domain}>"
    msg["X-Consultflow-Key"] = delivery.key
    msg.set_content(delivery.message.body)
    return msg


class SMTPChannel:
    """Sends each delivery as an e-mail to its address, one connection per message (simple and
    robust across threads). ``starttls`` upgrades the connection; ``username``/``password`` log in."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if not isinstance(host, str) or not host or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidInput("SMTP needs a host name and a port from 1 to 65535")
        if (username is None) != (password is None):
            raise InvalidInput("give SMTP username and password together, or neither")
        self.host, self.port = host, port
        self.sender = _check_addr(sender, "the sender")
        self.domain = self.sender.rsplit("@", 1)[1]
        self.starttls = starttls
        self._login = (username, password) if username is not None and password is not None else None
        self.timeout = timeout
        self._tls = tls_context

    def send(self, delivery: Delivery) -> Outcome:
        try:
            msg = email_message(delivery, self.sender, self.domain)
        except (InvalidInput, ValueError) as exc:  # a header that cannot be written (a line break in it)
            return Outcome.failed(str(exc))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self._tls or ssl.create_default_context())
                if self._login is not None:
                    smtp.login(*self._login)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            reason = f"recipient refused: {exc.recipients}"
            return Outcome.retry(reason) if codes and all(400 <= c < 500 for c in codes) else Outcome.failed(reason)
        except smtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            return Outcome.retry(reason) if 400 <= exc.smtp_code < 500 else Outcome.failed(reason)
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome.retry(f"{type(exc).__name__}: {exc}")
        return Outcome.delivered()
