"""The channel conformance kit: does your channel keep the channel contract?

Subclass ``ChannelContract`` in a test module and give it two fixtures: ``channel`` (the channel
under test, sending to a real receiving end you run in the test: a local server, a file, a mailbox)
and ``received`` (a callable returning what that end has accepted so far, as ``(key, text)`` pairs:
the delivery's key and whatever text arrived). Set ``honours_keys = True`` when the receiving end
accepts a key once however often it is sent. Optionally override ``address`` (what a delivery is
addressed to) and ``unreachable`` (the same channel pointed at something that does not answer).

The kit checks: a delivery arrives and ``send`` says ``delivered``; Chinese and English text arrive
intact; sending the same delivery again is harmless (and accepted once where keys are honoured);
many threads sending at once lose nothing; an endpoint that does not answer is a transient failure
returned as ``Outcome.retry``, never an exception.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from ..delivery.channel import Channel, Delivery, Message, Outcome
from ..notices import Notice
from ..vocabulary import Event

__all__ = ["ChannelContract", "Received", "kit_delivery"]

#: What the receiving end accepted so far: (key, text that arrived) pairs.
Received = Callable[[], list[tuple[str, str]]]

TITLE = "夜间停车难 Night parking"


def kit_delivery(key: str, address: str = "", *, seq: int = 1) -> Delivery:
    """A delivery as the dispatcher makes them: a notice of the kit's consultation, in Chinese, with
    the English message beside it. The body ends with ``[key]``, for receivers that see only text."""
    notice = Notice(
        key=key.split("/", maxsplit=1)[0],
        consultation="kit-consultation",
        seq=seq,
        event=Event.NOTIFIED,
        audience=("li", "public:xiaotaoyuan"),
        title=TITLE,
        created_at=datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
    )
    zh = Message(
        "zh", f"【小桃园】{TITLE}：发布协商公告", f"请于3月11日参加协商会议。\n[{key}]", "https://app.example/c/kit"
    )
    en = Message("en", f"[Xiaotaoyuan] {TITLE}: notice given", f"Come to the meeting on 11 March.\n[{key}]", zh.link)
    return Delivery(key, notice, "li", address, zh, {"zh": zh, "en": en})


class ChannelContract:
    """Conformance suite for a ``Channel``. See the module docstring."""

    honours_keys: ClassVar[bool] = False

    @pytest.fixture
    def address(self) -> str:
        return ""

    @pytest.fixture
    def unreachable(self) -> Channel | None:
        """The channel pointed at an endpoint that does not answer; ``None`` skips that check."""
        return None

    def test_a_delivery_arrives(self, channel: Channel, received: Received, address: str) -> None:
        outcome = channel.send(kit_delivery("kit:1/li/ch", address))
        assert isinstance(outcome, Outcome)
        assert outcome.kind == "delivered", outcome.reason
        assert "kit:1/li/ch" in [k for k, _ in received()]

    def test_chinese_text_arrives_intact(self, channel: Channel, received: Received, address: str) -> None:
        assert channel.send(kit_delivery("kit:2/li/ch", address, seq=2)).kind == "delivered"
        texts = [t for k, t in received() if k == "kit:2/li/ch"]
        assert texts
        assert any("夜间停车难" in t and "协商会议" in t for t in texts), texts

    def test_sending_again_is_harmless(self, channel: Channel, received: Received, address: str) -> None:
        delivery = kit_delivery("kit:3/li/ch", address, seq=3)
        assert channel.send(delivery).kind == "delivered"
        assert channel.send(delivery).kind == "delivered"
        count = [k for k, _ in received()].count("kit:3/li/ch")
        assert count == 1 if self.honours_keys else count >= 1

    def test_many_threads_lose_nothing(self, channel: Channel, received: Received, address: str) -> None:
        keys = [f"kit:{100 + i}/li/ch" for i in range(24)]
        outcomes: list[Outcome] = []
        lock = threading.Lock()

        def send(chunk: list[str]) -> None:
            for k in chunk:
                o = channel.send(kit_delivery(k, address, seq=int(k.split(":")[1].split("/")[0])))
                with lock:
                    outcomes.append(o)

        threads = [threading.Thread(target=send, args=(keys[i::6],)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert [o.kind for o in outcomes] == ["delivered"] * len(keys)
        got = [k for k, _ in received()]
        assert all(k in got for k in keys)

    def test_an_endpoint_that_does_not_answer_is_a_transient_failure(
        self, unreachable: Channel | None, address: str
    ) -> None:
        if unreachable is None:
            pytest.skip("this channel has no unreachable endpoint to try (override the 'unreachable' fixture)")
        outcome = unreachable.send(kit_delivery("kit:9/li/ch", address, seq=9))
        assert isinstance(outcome, Outcome)
        assert outcome.kind == "retry"
        assert outcome.reason
