"""The shipped channels: memory, file, signed webhook, SMTP e-mail, Apprise (optional extra)."""

from __future__ import annotations

from .apprise import AppriseChannel
from .file import FileChannel, delivery_json
from .memory import MemoryChannel
from .smtp import SMTPChannel
from .webhook import WebhookChannel

__all__ = ["AppriseChannel", "FileChannel", "MemoryChannel", "SMTPChannel", "WebhookChannel", "delivery_json"]
