"""The channel written in docs/notifications.md ("Write your own channel") passes the channel kit,
so the walkthrough is tested."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from consultflow import InvalidInput
from consultflow.delivery import Channel
from consultflow.testing import ChannelContract
from consultflow.testing.channel_contract import Received, kit_delivery

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "gateway_channel.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gateway_channel_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gateway = _example()


class TestGatewayChannelFromTheDocs(ChannelContract):
    honours_keys = True

    @pytest.fixture
    def channel(self, tmp_path: Path) -> Any:
        return gateway.GatewayChannel(tmp_path / "sms.db")

    @pytest.fixture
    def address(self) -> str:
        return "+8613800000000"

    @pytest.fixture
    def received(self, channel: Any) -> Received:
        return channel.queued  # type: ignore[no-any-return]

    @pytest.fixture
    def unreachable(self, tmp_path: Path) -> Channel:
        channel = gateway.GatewayChannel(tmp_path / "gone.db")
        channel.path = str(tmp_path / "no-such-dir" / "gone.db")
        return channel  # type: ignore[no-any-return]


def test_the_example_is_a_channel_and_refuses_what_is_not_a_phone(tmp_path: Path) -> None:
    channel = gateway.GatewayChannel(tmp_path / "sms.db")
    assert isinstance(channel, Channel)
    outcome = channel.send(kit_delivery("k:1", "li@example.org"))
    assert outcome.kind == "failed"


PAGE = Path(__file__).resolve().parent.parent / "docs" / "notifications.md"


def test_the_page_shows_the_example_whole() -> None:
    assert EXAMPLE.read_text(encoding="utf-8").rstrip("\n") in PAGE.read_text(encoding="utf-8")


def test_the_deployment_file_on_the_page_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's config listing is a valid deployment file (secrets from the environment)."""
    pytest.importorskip("apprise")
    from consultflow.delivery.config import load_config

    text = PAGE.read_text(encoding="utf-8")
    block = text.split("one TOML file.")[1].split("```\n", 2)[1]
    assert block.startswith("[dispatcher]")
    (tmp_path / "deploy.toml").write_text(block, encoding="utf-8")
    (tmp_path / "templates.toml").write_text('[names.xiaotaoyuan]\nzh = "小桃园社区"\n', encoding="utf-8")
    monkeypatch.setenv("BACKEND_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    config = load_config(tmp_path / "deploy.toml")
    assert set(config.sinks) == {"backend", "archive"}
    assert set(config.channels) == {"email", "wecom"}
    assert config.recipients is not None
    assert config.dispatcher["workers"] == 4
    person = config.recipients.contacts.person("wang")
    assert person is not None
    assert [c.channel for c in person.contacts] == ["wecom", "email"]
    monkeypatch.delenv("SMTP_PASSWORD")
    with pytest.raises(InvalidInput, match="SMTP_PASSWORD"):
        load_config(tmp_path / "deploy.toml")
