"""The channel contract (渠道): one method, ``send(delivery) -> Outcome``.

A channel carries one rendered message to one address - an e-mail box, a webhook, a WeCom group -
and says what happened: delivered, a transient failure (try again later) or a permanent one (dead
letter). It never raises for a delivery problem; the dispatcher settles the notice from the outcome.
``delivery.key`` is the idempotency key: a channel whose receiver honours it (a webhook's
``webhook-id``, an e-mail's ``Message-ID``) lets a retried notice arrive once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, Protocol, runtime_checkable

import attrs

from ..i18n import Lang
from ..notices import Notice

__all__ = ["Channel", "Delivery", "Message", "Outcome", "OutcomeKind", "Prepares"]

OutcomeKind = Literal["delivered", "retry", "failed"]

_MAX_REASON = 500


def _reason(value: object) -> str:
    """A reason as it may be stored and printed: one line, no control characters (a receiver's
    answer is not trusted to be harmless on a terminal), bounded."""
    text = "".join(c if c.isprintable() else " " for c in str(value)[: _MAX_REASON * 2])
    return " ".join(text.split())[:_MAX_REASON]


@attrs.frozen(slots=True)
class Message:
    """A notice rendered for a reader: in their language, with a subject, a body and a link."""

    lang: Lang
    subject: str
    body: str
    link: str = ""


@attrs.frozen(slots=True)
class Delivery:
    """One message for one recipient over one channel.

    ``key`` is the idempotency key: the notice's own key (``{consultation}:{seq}``) when the whole
    notice goes to one endpoint (a backend's webhook), ``{notice key}/{recipient}/{channel}`` when a
    person or a notice board gets it. ``recipient`` is a person id, ``public:<community>`` (a notice
    board) or ``*`` (the whole notice); ``address`` is where the channel sends it (an e-mail address,
    an Apprise URL, ...; empty for a channel with one fixed endpoint). ``messages`` holds the notice
    in every language the templates have, so a backend can show either.
    """

    key: str
    notice: Notice
    recipient: str
    address: str
    message: Message
    messages: Mapping[str, Message] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class Outcome:
    """What a channel did with a delivery: ``delivered``, ``retry`` (transient: the dispatcher
    tries again with backoff) or ``failed`` (permanent: the notice goes to the dead letters)."""

    kind: OutcomeKind
    reason: str = attrs.field(default="", converter=_reason)

    @classmethod
    def delivered(cls) -> Outcome:
        return _DELIVERED if cls is Outcome else cls("delivered")

    @classmethod
    def retry(cls, reason: str) -> Outcome:
        return cls("retry", reason)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls("failed", reason)


_DELIVERED = Outcome("delivered")  # one value for the common answer: it is immutable


@runtime_checkable
class Channel(Protocol):
    """Carries deliveries. ``send`` must be safe to call from several threads and must not raise for
    a delivery problem (return ``Outcome.retry`` or ``Outcome.failed``); the dispatcher treats an
    exception as a transient failure and records it."""

    def send(self, delivery: Delivery) -> Outcome: ...


@runtime_checkable
class Prepares(Protocol):
    """A channel that can do a delivery's own work (build a body, sign it) ahead of its turn to send:
    ``prepare`` returns the send, ready to call. The dispatcher prepares a batch before it sends any of
    it, so the sends go back to back: work done between two network round trips costs several times
    its length (the core that waited for an answer comes back to cold caches). A send prepared this
    way must say what happened exactly as ``send(delivery)`` would, and ``prepare`` must not raise for
    a delivery problem (return a callable that answers ``Outcome.failed``)."""

    def prepare(self, delivery: Delivery) -> Callable[[], Outcome]: ...
