"""Delivering notices (告知 / 公开制): recipients, messages, channels, the dispatcher.

Every step writes its notices into the outbox in the same transaction as the step. This package
delivers them after commit: ``Recipients`` resolves an audience into contacts (through the directory
of who holds which role where), ``Templates`` renders bilingual messages, a ``Channel`` carries each
one (memory, file, signed webhook, SMTP, Apprise), and the ``Dispatcher`` leases, sends, retries with
backoff and dead-letters; ``Reminders`` adds the reminders people expect to the outbox. See
docs/notifications.md.
"""

from __future__ import annotations

from .channel import Channel, Delivery, Message, Outcome, OutcomeKind, Prepares
from .channels import AppriseChannel, FileChannel, MemoryChannel, SMTPChannel, WebhookChannel
from .dispatcher import SINK, Dispatcher, OutboxView, Report
from .messages import FIELDS, LinkTemplate, Templates
from .recipients import Contact, ContactBook, MemoryContacts, Person, Recipients, Resolution, Target, Unreachable
from .reminders import Leads, Reminder, ReminderOutbox, Reminders, due_reminders
from .retry import RetryPolicy
from .sqlite_contacts import SQLiteContacts

__all__ = [
    "FIELDS",
    "SINK",
    "AppriseChannel",
    "Channel",
    "Contact",
    "ContactBook",
    "Delivery",
    "Dispatcher",
    "FileChannel",
    "Leads",
    "LinkTemplate",
    "MemoryChannel",
    "MemoryContacts",
    "Message",
    "OutboxView",
    "Outcome",
    "OutcomeKind",
    "Person",
    "Prepares",
    "Recipients",
    "Reminder",
    "ReminderOutbox",
    "Reminders",
    "Report",
    "Resolution",
    "RetryPolicy",
    "SMTPChannel",
    "SQLiteContacts",
    "Target",
    "Templates",
    "Unreachable",
    "WebhookChannel",
    "due_reminders",
]
