"""The deployment file (TOML): channels, people, notice boards, templates, dispatcher settings.

Secrets never sit in the file: a channel names the environment variable that holds them
(``secret_env``, ``password_env``). Paths are relative to the file. Every table is checked when the
file is loaded (unknown keys included), so a typo stops the dispatcher at start-up with the
table and key named, not at the first notice. See docs/notifications.md for the whole format.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import attrs
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from ..errors import InvalidInput
from ..i18n import Lang
from .channel import Channel
from .messages import LinkTemplate, Templates
from .recipients import Contact, ContactBook, MemoryContacts, Person, Recipients
from .reminders import Leads
from .retry import RetryPolicy

__all__ = ["Config", "load_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # TOML types values: no coercion


class _ContactModel(_Strict):
    channel: str
    address: str = ""


class _PersonModel(_Strict):
    lang: Lang = "zh"
    offline: bool = False
    contacts: list[_ContactModel] = []


class _BoardModel(_Strict):
    contacts: list[_ContactModel]


class _ChannelModel(_Strict):
    type: Literal["webhook", "smtp", "apprise", "file", "memory"]
    sink: bool = False  # every notice, whole (a backend, an archive); else per contact
    # webhook
    url: str | None = None
    secret_env: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=600)
    # smtp
    host: str | None = None
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str | None = None
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    # apprise
    urls: list[str] = []
    # file
    path: str | None = None


class _DispatcherModel(_Strict):
    batch: int = Field(default=100, ge=1, le=10_000)
    batch_seconds: float = Field(default=0.25, ge=0.001, le=3600)
    workers: int = Field(default=1, ge=1, le=256)
    lease_seconds: float = Field(default=300, gt=0, le=86_400)
    sink_lang: Lang = "zh"
    zone: str = "Asia/Shanghai"
    link: str | None = None
    max_attempts: int = Field(default=8, ge=1, le=1000)
    backoff_base_seconds: float = Field(default=2, gt=0, le=86_400)
    backoff_cap_seconds: float = Field(default=900, gt=0, le=86_400)


class _TemplatesModel(_Strict):
    file: str | None = None


class _ContactsModel(_Strict):
    sqlite: str | None = None  # a SQLiteContacts file instead of [people] and [boards]


class _DirectoryModel(_Strict):
    sqlite: str | None = None
    postgres_env: str | None = None


class _RemindersModel(_Strict):
    enabled: bool = False
    meeting_hours: float | None = Field(default=24, gt=0, le=2160)
    round_hours: float | None = Field(default=24, gt=0, le=2160)
    decision_days: float | None = Field(default=3, gt=0, le=90)
    review_days: float | None = Field(default=2, gt=0, le=90)
    measure_days: float | None = Field(default=3, gt=0, le=90)
    proposal_days: float | None = Field(default=2, gt=0, le=90)
    every_minutes: float = Field(default=5, gt=0, le=1440)

    def leads(self) -> Leads:
        def h(v: float | None) -> timedelta | None:
            return None if v is None else timedelta(hours=v)

        def d(v: float | None) -> timedelta | None:
            return None if v is None else timedelta(days=v)

        return Leads(
            h(self.meeting_hours),
            h(self.round_hours),
            d(self.decision_days),
            d(self.review_days),
            d(self.measure_days),
            d(self.proposal_days),
        )


class _FileModel(_Strict):
    dispatcher: _DispatcherModel = _DispatcherModel()
    templates: _TemplatesModel = _TemplatesModel()
    directory: _DirectoryModel = _DirectoryModel()
    contacts: _ContactsModel = _ContactsModel()
    channels: dict[str, _ChannelModel] = {}
    people: dict[str, _PersonModel] = {}
    boards: dict[str, _BoardModel] = {}
    reminders: _RemindersModel = _RemindersModel()


@attrs.frozen
class Config:
    """A loaded deployment: what ``Dispatcher(store, ...)`` takes (``dispatcher`` holds its keyword
    arguments, ``policy`` among them)."""

    sinks: dict[str, Channel]
    channels: dict[str, Channel]
    recipients: Recipients | None
    templates: Templates
    dispatcher: dict[str, Any]
    reminders: tuple[Leads, timedelta] | None = None  # the leads and how often, when enabled


def _secret(env: str | None, where: str) -> str:
    if env is None:
        raise InvalidInput(f"{where}: name the environment variable that holds the secret")
    value = os.environ.get(env)
    if not value:
        raise InvalidInput(f"{where}: the environment variable {env} is not set")
    return value


def _channel(name: str, spec: _ChannelModel, base: Path) -> Channel:
    from .channels import AppriseChannel, FileChannel, MemoryChannel, SMTPChannel, WebhookChannel

    where = f"channels.{name}"
    if spec.type == "webhook":
        if spec.url is None and spec.sink:
            raise InvalidInput(f"{where}: a webhook sink needs url")
        return WebhookChannel(spec.url, _secret(spec.secret_env, where), timeout=spec.timeout)
    if spec.type == "smtp":
        if spec.host is None or spec.sender is None:
            raise InvalidInput(f"{where}: smtp needs host and sender")
        password = _secret(spec.password_env, where) if spec.username is not None else None
        return SMTPChannel(
            spec.host,
            spec.port,
            sender=spec.sender,
            starttls=spec.starttls,
            username=spec.username,
            password=password,
            timeout=spec.timeout,
        )
    if spec.type == "apprise":
        return AppriseChannel(tuple(spec.urls))
    if spec.type == "file":
        if spec.path is None:
            raise InvalidInput(f"{where}: file needs path")
        return FileChannel(base / spec.path)
    return MemoryChannel()


def _contacts(items: list[_ContactModel]) -> tuple[Contact, ...]:
    return tuple(Contact(c.channel, c.address) for c in items)


def load_config(path: str | Path, *, directory: Any = None) -> Config:
    """Read and check a deployment file. ``directory`` (who holds which role where) overrides the
    file's ``[directory]`` table."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read config {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"config {path} is not valid TOML: {exc}") from None
    try:
        spec = _FileModel.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"config {path}: {where}: {first['msg']}") from None
    base = path.parent
    sinks: dict[str, Channel] = {}
    channels: dict[str, Channel] = {}
    for name, ch in spec.channels.items():
        (sinks if ch.sink else channels)[name] = _channel(name, ch, base)
    for person in spec.people.values():
        for c in person.contacts:
            if c.channel not in channels:
                raise InvalidInput(f"config {path}: a contact uses channel {c.channel!r}, which is not configured")
    contacts: ContactBook
    if spec.contacts.sqlite is not None:
        if spec.people or spec.boards:
            raise InvalidInput(f"config {path}: give [contacts] sqlite or [people] and [boards], not both")
        from .sqlite_contacts import SQLiteContacts

        contacts = SQLiteContacts(base / spec.contacts.sqlite)
    else:
        contacts = MemoryContacts(
            (Person(pid, _contacts(p.contacts), lang=p.lang, offline=p.offline) for pid, p in spec.people.items()),
            {community: _contacts(b.contacts) for community, b in spec.boards.items()},
        )
    if directory is None and spec.directory.sqlite is not None:
        from ..directory.sqlite import SQLiteDirectory

        directory = SQLiteDirectory(base / spec.directory.sqlite)
    elif directory is None and spec.directory.postgres_env is not None:
        from ..directory.postgres import PostgresDirectory

        directory = PostgresDirectory(_secret(spec.directory.postgres_env, "directory"))
    recipients = Recipients(contacts, directory) if channels else None
    templates = Templates.from_file(base / spec.templates.file) if spec.templates.file else Templates()
    d = spec.dispatcher
    options: dict[str, Any] = {
        "batch": d.batch,
        "batch_seconds": d.batch_seconds,
        "workers": d.workers,
        "lease_for": timedelta(seconds=d.lease_seconds),
        "sink_lang": d.sink_lang,
        "zone": d.zone,
        "policy": RetryPolicy(
            max_attempts=d.max_attempts,
            base=timedelta(seconds=d.backoff_base_seconds),
            cap=timedelta(seconds=d.backoff_cap_seconds),
        ),
    }
    if d.link is not None:
        options["link"] = LinkTemplate(d.link)
    r = spec.reminders
    reminders = (r.leads(), timedelta(minutes=r.every_minutes)) if r.enabled else None
    return Config(sinks, channels, recipients, templates, options, reminders)
