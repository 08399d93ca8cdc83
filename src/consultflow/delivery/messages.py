"""Messages: a notice rendered for a reader, from bilingual templates (通知模板).

Every event has a subject and a body in Chinese and English. A template is a ``string.Template``
(``$title``, ``${when}``) over a fixed set of fields, checked when it is loaded: an unknown field or a
broken placeholder is ``InvalidInput`` at start-up, not a failed delivery at 3 a.m. A community
overrides the templates it wants from a TOML file (``Templates.from_file``). Values are inserted as
text and never interpreted, so a title cannot inject a placeholder. Dates are shown in the
procedure's time zone, saying which; the link comes from a URL template the app configures.
"""

from __future__ import annotations

import functools
import string
import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import attrs

from ..errors import InvalidInput
from ..i18n import LANGS, Lang, event_name, format_value, pick, state_name
from ..notices import Notice, reminder_deadline
from ..records import Consultation
from ..vocabulary import FINAL_STATES, Event
from .channel import Message
from .reminders import Leads, due_reminders, reminder_kind

__all__ = ["FIELDS", "LinkTemplate", "Templates"]

#: The fields a template may use.
FIELDS: frozenset[str] = frozenset(
    {"title", "event", "state", "community", "consultation", "seq", "when", "next", "due", "link"}
)

_DEFAULT_SUBJECT = ("[$community] $title: $event", "【$community】$title：$event")
_DEFAULT_BODY = (
    "$title\n$event ($when).\nStep now: $state.\nWhat you can do: $next$due\n$link",
    "$title\n$event（$when）。\n当前环节：$state。\n您可以：$next$due\n$link",
)

#: What the reader may do next, per event (English, Chinese).
NEXT: Mapping[Event, tuple[str, str]] = {
    Event.PROPOSED: ("follow the proposal; the committee answers it", "关注议题，社区两委将予答复"),
    Event.REJECTED: (
        "ask the committee why, appeal to the sub-district within the appeal period, or propose again",
        "可向社区两委了解原因，在复核期限内向街道申请复核，或重新提议",
    ),
    Event.WITHDRAWN: ("nothing; the matter is withdrawn", "无需操作，议题已撤回"),
    Event.NOTIFIED: ("come to the consultation meeting", "参加协商会议"),
    Event.INVITED: ("come to the consultation meeting", "参加协商会议"),
    Event.ROUND_OPENED: ("sign in and give your opinion", "签到并发表意见"),
    Event.ROUND_CLOSED: ("read the round's summary", "查看本轮协商小结"),
    Event.VOTE_CALLED: ("cast your ballot", "参加表决"),
    Event.VOTE_CLOSED: ("read the result of the vote", "查看表决结果"),
    Event.DECIDED: ("read the decision; its legality review follows", "查看决策，随后进行合法性审查"),
    Event.LEGALITY_REVIEWED: ("read the verdict of the legality review", "查看合法性审查结论"),
    Event.PUBLISHED: ("read the outcome and rate it", "查看协商成果并评价"),
    Event.RECONSULTATION_REQUESTED: ("take part in the new consultation", "参加再次协商"),
    Event.ESCALATED: ("the sub-district takes the matter up", "由街道督办"),
    Event.RESUMED: ("take part in the consultation again", "继续参加协商"),
    Event.CLOSED: ("read the closing report", "查看办结情况"),
    Event.DEADLINE_MISSED: ("act on the overdue item", "尽快处理逾期事项"),
    # 承诺制: residents hold the owner to the pledge; the owner keeps it
    Event.PLEDGE_PUBLISHED: ("follow the pledge on the results roadmap", "在成果运用路线图上监督承诺落实"),
    Event.PLEDGE_DELAYED: ("see the pledge's new date and why", "查看承诺的新期限及延期原因"),
    # 提议 intake
    Event.SUBMITTED: ("answer the proposal: give notice or reject it", "答复提议：发布协商公告或不予受理"),
    Event.PROPOSAL_EDITED: ("read what changed in the proposal", "查看提议修改的内容"),
    Event.CO_SIGNED: ("see who co-signed your proposal", "查看联名情况"),
    Event.TOPIC_ADDED: ("the matter is now an item of the catalogue", "该事项已列入协商目录"),
    Event.APPEALED: ("reconsider the rejection", "复核不予受理决定"),
    Event.RECONSIDERED: ("read the ruling on the appeal", "查看复核结果"),
    Event.REJECTION_FINAL: ("nothing; the rejection is final", "无需操作，不予受理决定已生效"),
}

_FINAL_EVENTS = frozenset({Event.CLOSED, Event.REJECTED, Event.WITHDRAWN, Event.REJECTION_FINAL})
_DUE = (" by {}", "（截止{}）")
_ON = (" on {}", "（{}）")  # a meeting is on a day, not due by it


class _Compiled:
    """A checked template, turned once into a ``str.format`` pattern (its literal braces doubled):
    filling it is one ``format_map``, which inserts each value as text and never reads it as a
    pattern."""

    __slots__ = ("pattern",)

    def __init__(self, template: string.Template) -> None:
        parts: list[str] = []
        text, last = template.template, 0
        for m in template.pattern.finditer(text):
            parts.append(_literal(text[last : m.start()]))
            name = m.group("named") or m.group("braced")
            parts.append("$" if m.group("escaped") is not None else "{" + name + "}")
            last = m.end()
        parts.append(_literal(text[last:]))
        self.pattern = "".join(parts)

    def fill(self, fields: Mapping[str, str]) -> str:
        return self.pattern.format_map(fields)


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _check(text: object, where: str) -> _Compiled:
    if not isinstance(text, str) or len(text) > 4000:
        raise InvalidInput(f"{where}: a template is text of at most 4000 characters")
    template = string.Template(text)
    if not template.is_valid():
        raise InvalidInput(f"{where}: a '$' that is not a placeholder; write '$$' for a dollar sign")
    unknown = set(template.get_identifiers()) - FIELDS
    if unknown:
        raise InvalidInput(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(FIELDS))}")
    return _Compiled(template)


@attrs.frozen(slots=True)
class LinkTemplate:
    """The link a message carries: ``https://app.example/c/{consultation}`` with ``{consultation}``,
    ``{seq}``, ``{community}`` filled in (URL-quoted). Only http(s) URLs."""

    pattern: str

    def __attrs_post_init__(self) -> None:
        try:
            probe = self.pattern.format(consultation="x", seq=1, community="c")
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(
                f"link template {self.pattern!r}: use only {{consultation}}, {{seq}} and {{community}} ({exc})"
            ) from None
        parts = urlsplit(probe)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise InvalidInput(f"link template {self.pattern!r} must be an http:// or https:// URL")

    def build(self, consultation: str, seq: int, community: str) -> str:
        return self.pattern.format(
            consultation=quote(consultation, safe=""), seq=seq, community=quote(community, safe="")
        )


class Templates:
    """Subjects and bodies per event and language. ``overrides`` maps an event name (or
    ``"default"``) to ``{"en": {"subject": ..., "body": ...}, "zh": {...}}``; what it leaves out
    keeps the built-in text. ``names`` gives communities a display name per language."""

    def __init__(
        self,
        overrides: Mapping[str, object] | None = None,
        *,
        names: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._subject: dict[tuple[str, Lang], _Compiled] = {}
        self._body: dict[tuple[str, Lang], _Compiled] = {}
        for i, lang in enumerate(LANGS):
            self._subject["default", lang] = _check(_DEFAULT_SUBJECT[i], "default subject")
            self._body["default", lang] = _check(_DEFAULT_BODY[i], "default body")
        for event, by_lang in (overrides or {}).items():
            if event != "default" and event not in Event.__members__.values():
                raise InvalidInput(f"templates: {event!r} is not an event (e.g. notified, decided, published)")
            if not isinstance(by_lang, Mapping):
                raise InvalidInput(f"templates.{event}: expected a table of languages (en, zh)")
            for lang, parts in by_lang.items():
                if lang not in LANGS:
                    raise InvalidInput(f"templates.{event}: {lang!r} is not a language; use en or zh")
                if not isinstance(parts, Mapping) or not set(parts) <= {"subject", "body"}:
                    raise InvalidInput(f"templates.{event}.{lang}: give subject and/or body, nothing else")
                if "subject" in parts:
                    self._subject[event, lang] = _check(parts["subject"], f"templates.{event}.{lang}.subject")
                if "body" in parts:
                    self._body[event, lang] = _check(parts["body"], f"templates.{event}.{lang}.body")
        self._names = {str(k): dict(v) for k, v in (names or {}).items()}

    @classmethod
    def from_file(cls, path: str | Path) -> Templates:
        """Templates from a TOML file: ``[notified.zh] subject = "..." body = "..."``; a
        ``[names.<community>]`` table gives the community's name per language."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(f"cannot read templates {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"templates {path} is not valid TOML: {exc}") from None
        names = data.pop("names", {})
        if not isinstance(names, dict) or not all(isinstance(v, dict) for v in names.values()):
            raise InvalidInput(f"templates {path}: [names.<community>] tables give en and zh names")
        return cls(data, names=names)

    def render(
        self,
        notice: Notice,
        record: Consultation | None,
        lang: Lang,
        *,
        zone: tzinfo | str = "Asia/Shanghai",
        link: LinkTemplate | None = None,
    ) -> Message:
        """The notice as ``lang``'s reader sees it. ``record`` (the consultation now) gives the
        community, the step and the next deadline; without it those read as unknown."""
        return self.messages(notice, record, (lang,), zone=zone, link=link)[lang]

    def messages(
        self,
        notice: Notice,
        record: Consultation | None,
        langs: Iterable[Lang] = LANGS,
        *,
        zone: tzinfo | str = "Asia/Shanghai",
        link: LinkTemplate | None = None,
    ) -> dict[Lang, Message]:
        """The notice in each of ``langs``, as ``render`` gives it: what the languages share (the
        time in the zone, the deadline, the link, the kind of reminder) is worked out once."""
        tz = ZoneInfo(zone) if isinstance(zone, str) else zone
        community = record.community if record is not None else ""
        kind = reminder_kind(notice)
        ended = record is not None and record.state in FINAL_STATES
        due = _due(notice, record, kind)
        phrase = _ON if notice.event in _MEETINGS or kind == "meeting" else _DUE
        when = notice.created_at.astimezone(tz)
        event = notice.event.value
        link_text = link.build(notice.consultation, notice.seq, community) if link is not None else ""
        seq = str(notice.seq)
        names = self._names.get(community, {})
        out: dict[Lang, Message] = {}
        for lang in langs:
            fields = {
                "title": notice.title,
                "event": event_name(event, lang),
                "state": state_name(record.state.value, lang) if record is not None else "?",
                "community": names.get(lang, community),
                "consultation": notice.consultation,
                "seq": seq,
                "when": format_value(when, lang),
                "next": _next(notice, record, lang, kind, ended),
                "due": "" if due is None else pick(phrase, lang).format(_date(due, lang, tz)),
                "link": link_text,
            }
            subject = self._subject.get((event, lang)) or self._subject["default", lang]
            body = self._body.get((event, lang)) or self._body["default", lang]
            out[lang] = Message(lang, subject.fill(fields), body.fill(fields).strip(), link_text)
        return out


_MEETINGS = frozenset({Event.NOTIFIED, Event.INVITED})


@functools.lru_cache(maxsize=4096)
def _date(when: datetime, lang: Lang, tz: tzinfo) -> str:
    """A deadline as ``format_value`` shows it, remembered: the notices of a consultation share its
    meeting and deadlines. (Equal instants give equal text: the date is shown in ``tz`` whatever
    zone it came in.)"""
    return format_value(when, lang, tz)


_OVER = ("nothing more: the consultation is now {state}", "无需操作：本协商现为“{state}”")


#: What a reminder asks, per kind of deadline (English, Chinese).
REMIND: Mapping[str, tuple[str, str]] = {
    "meeting": ("the consultation meeting is coming: come to it", "协商会议即将召开，请准时参加"),
    "round": ("the round closes soon: give your opinion", "本轮协商即将结束，请发表意见"),
    "decision": ("a decision is due", "即将到达决策期限"),
    "review": ("the legality review is due", "即将到达合法性审查期限"),
    "measure": ("a measure is due to be carried out", "即将到达措施落实期限"),
    "proposal": ("the proposal is waiting for an answer", "议题待答复"),
}


def _next(notice: Notice, record: Consultation | None, lang: Lang, kind: str | None, ended: bool) -> str:
    """What the reader may do; for a notice delivered after the matter ended, that it has ended.
    (``kind``: the notice's ``reminder_kind``; ``ended``: the record is in a final state.)"""
    event = notice.event
    if ended and record is not None and event not in _FINAL_EVENTS:
        return pick(_OVER, lang).format(state=state_name(record.state.value, lang))
    if kind is not None:
        return pick(REMIND.get(kind, ("a deadline is near", "期限将至")), lang)
    return pick(NEXT.get(event, ("see the consultation", "查看协商详情")), lang)


def _due(notice: Notice, record: Consultation | None, kind: str | None) -> datetime | None:
    """By when the reader should act: the meeting for a notice, a reminder's own deadline, else the
    record's next deadline. (``kind``: the notice's ``reminder_kind``.)"""
    if record is None or record.state in FINAL_STATES:
        return None
    if (notice.event in _MEETINGS or kind == "meeting") and record.schedule is not None:
        return record.schedule.meeting_at
    if kind is not None:
        deadline = reminder_deadline(notice)
        for r in due_reminders(record, notice.created_at, _EVERY):
            if r.key == deadline:
                return r.due
    return record.next_due


_EVERY = Leads(*(timedelta(days=90),) * 6)  # to find a reminder's deadline again, whatever its lead
