"""The timeline: a consultation's log as a person reads it, one line per entry, in their language.

Used by ``consultflow demo`` and ``consultflow show``. Every word is in the reader's language:
states, events, roles, stances, verdicts and figures from ``consultflow.i18n``; the free text people
wrote (titles, opinions, findings) through an optional glossary, ``texts``: logged text ->
(English, Chinese), for a log whose text is in one language or both. Times are shown in one zone
(the procedure's, Asia/Shanghai, unless told otherwise), named once in the header line. Columns
line up by display width: a CJK character takes two terminal columns.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from .catalogue import Catalogue
from .i18n import (
    Lang,
    ballot_name,
    body_name,
    channel_name,
    event_name,
    pick,
    role_label,
    stance_name,
    state_name,
    verdict_name,
    zone_name,
)
from .log import LogEntry
from .records import Consultation

__all__ = ["WORDS", "ZONE", "Texts", "display_width", "format_timeline", "heading", "summary_line"]

#: The procedure's zone (鼓楼区): times are shown in it unless the reader asks for another.
ZONE = ZoneInfo("Asia/Shanghai")

#: A glossary for free text: the text as logged -> (English, Chinese).
Texts = Mapping[str, tuple[str, str]]

#: The timeline's own words: key -> (English, Chinese); placeholders are filled per entry.
WORDS: Mapping[str, tuple[str, str]] = {
    # the header line
    "seq": ("#", "序号"),
    "time": ("time ({zone})", "时间（{zone}）"),
    "event": ("event", "事项"),
    "stage": ("stage", "阶段"),
    "who": ("who", "参与人"),
    "details": ("details", "内容"),
    # punctuation
    "sep": ("; ", "；"),
    "colon": (": ", "："),
    "quote": (", “{text}”", "，“{text}”"),
    "list": (", ", "、"),
    "aside": (" ({text})", "（{text}）"),
    # what entries say
    "yuan": ("{amount} yuan", "{amount}元"),
    "major": ("major matter", "重大事项"),
    "budget": ("budget {money}", "预算{money}"),
    "meeting": ("meeting {when}", "会议时间{when}"),
    "venue": ("at {venue}", "地点：{venue}"),
    "chair": ("rotating chair {chair}", "轮值主席{chair}"),
    "invited": ("{count} invited", "邀请{count}人"),
    "attending": ("{count} attending", "到会{count}人"),
    "opinion": ("round {round}: {stance}", "第{round}轮：{stance}"),
    "consensus": ("consensus", "达成共识"),
    "no_consensus": ("no consensus", "未达成共识"),
    "counts": (
        "{support} support, {oppose} oppose, {amend} amend, {abstain} abstain",
        "支持{support}，反对{oppose}，修改{amend}，弃权{abstain}",
    ),
    "quorum": (
        "too few attended: at least {required} needed, {attended} attended",
        "到会人数不足：应到至少{required}人，实到{attended}人",
    ),
    "abandoned": ("closed unfinished", "未完成即结束"),
    "decision": ("decision {number}", "第{number}次决策"),
    "by_body": ("by {body}, vote {vote}", "由{body}第{vote}次表决作出"),
    "no_review": ("in force without a legality review", "无需合法性审查，即时生效"),
    "co_signed": ("co-signed by {count}", "{count}人联名"),
    "vote_called": ("vote {vote} of {body} on: {text}", "{body}第{vote}次表决：{text}"),
    "ballot": ("vote {vote}: {ballot}", "第{vote}次表决：{ballot}"),
    "area": ("{area} m²", "{area}平方米"),
    "for_by": ("recorded for {voter}", "代{voter}投票"),
    "carried": ("carried", "通过"),
    "lost": ("not carried", "未通过"),
    "vote_quorum": (
        "too few took part: {participated} of {members}",
        "参加表决人数不足：{members}人中{participated}人参加",
    ),
    "ballots": ("{yes} for, {no} against, {abstain} abstain", "同意{yes}，反对{no}，弃权{abstain}"),
    "ballot_areas": (
        "by area {area_yes} for, {area_no} against, {area_abstain} abstain of {area_total} m²",
        "按面积：同意{area_yes}，反对{area_no}，弃权{area_abstain}，总面积{area_total}平方米",
    ),
    "verdict": ("decision {number} {verdict}", "第{number}次决策{verdict}"),
    "correction": ("correction: {text}", "依法纠正：{text}"),
    "progress": ("measure {number} {percent}%", "第{number}项措施 {percent}%"),
    "spent": ("spent {money}", "已支出{money}"),
    "satisfaction": ("satisfaction {score} of 5", "满意度{score}分（满分5分）"),
    "passed": ("passed", "验收通过"),
    "problems": ("problems found", "发现问题"),
    "cycle": ("consultation cycle {cycle}", "第{cycle}个协商周期"),
    "by_ruling": ("by the sub-district's ruling", "按街道裁定办结"),
    "missed": ("{what} was due {when}", "{what}期限{when}已过"),
    # meetings (会议)
    "meeting_n": ("meeting {number}", "第{number}次会议"),
    "closes": ("open until {when}", "开放至{when}"),
    "minutes": ("minutes of meeting {number}, SHA-256 {digest}", "第{number}次会议纪要，哈希值{digest}"),
    "minutes_corrected": ("corrected", "已更正"),
    # why a matter was escalated (the ``reason`` codes the steps log)
    "no_consensus_at_round_limit": ("no consensus by the round limit", "达到轮次上限仍未达成共识"),
    # only in logs written before an unlawful verdict was always corrected (依法纠正)
    "unlawful_at_round_limit": ("unlawful with no rounds left", "审查不合法且已无剩余轮次"),
    "overdue": ("deadlines passed", "逾期未办"),
    # which deadline was missed (``deadlines.Deadline.kind``)
    "deadline:proposal": ("the reply to the proposal", "答复提议"),
    "deadline:decision": ("the decision", "作出决策"),
    "deadline:review": ("the legality review", "合法性审查"),
    "deadline:measure": ("measure {number}", "第{number}项措施"),
    # pledges (承诺制)
    "pledge": (
        "pledge {number}: {title}, by {owner}, due {when}",
        "第{number}项承诺：{title}，责任人{owner}，{when}前完成",
    ),
    "pledge_delay": ("pledge {number} moved from {before} to {when}", "第{number}项承诺由{before}延至{when}"),
    "photos": ("{count} photos", "照片{count}张"),
    "photo": ("1 photo", "照片1张"),
    "owned_by": ("{title}, by {owner}", "{title}，责任人{owner}"),
    # 提议 intake
    "edited": ("changed: {fields}", "修改：{fields}"),
    "topic_added": ("new catalogue item {topic} ({name})", "列入二级目录：{topic}（{name}）"),
    "upheld": ("rejection upheld", "维持不予受理"),
    "overturned": ("rejection overturned", "撤销不予受理"),
    # the proposer's time to appeal a rejection, the sub-district's to reconsider it
    "deadline:appeal": ("the appeal of the rejection", "申请复核"),
    "deadline:reconsideration": ("the reconsideration of the appeal", "复核"),
    # ---- the fund (微幸福便民服务公益金) ----
    "allocated": (
        "decision {decision}: {amount} of the {year} fund of {pool} ({before} allocated before)",
        "第{decision}次决策：安排{year}年公益金{amount}（总额{pool}，此前已安排{before}）",
    ),
    "fund_spent": ("measure {number}: {amount} from the {year} fund", "第{number}项措施：支出{year}年公益金{amount}"),
    "overspent": ("{amount} over its budget", "超出预算{amount}"),
    "released": (
        "decision {decision}: {amount} back to the {year} fund ({spent} spent)",
        "第{decision}次决策：{amount}退回{year}年公益金（已支出{spent}）",
    ),
    "justification": ("why: {text}", "超支理由：{text}"),
}


def _w(key: str, lang: Lang, **values: object) -> str:
    template = pick(WORDS[key], lang)
    return template.format(**values) if values else template


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: CJK (wide and full-width) characters two, combining marks none."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return width


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 0)


def _zone(zone: tzinfo | str) -> tzinfo:
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def summary_line(count: int, ok: bool, state: str, lang: Lang = "en") -> str:
    """The line under a timeline: how many entries, whether the chain holds, the state by its name."""
    shown = state_name(str(state), lang)
    if lang == "zh":
        return f"{count} 条记录，哈希链{'完整' if ok else '已损坏'}；状态：{shown}"
    return f"{count} {'entry' if count == 1 else 'entries'}, chain {'verified' if ok else 'BROKEN'}; state: {shown}"


def heading(
    record: Consultation,
    lang: Lang = "en",
    catalogue: Catalogue | None = None,
    texts: Texts | None = None,
) -> str:
    """Title · community · topic · state, in the reader's language: the community and the topic by
    the names the catalogue knows (its category's name at least), free text through ``texts``."""
    cat = catalogue if catalogue is not None else Catalogue()
    t = _translator(texts, lang)
    community = t(cat.community_name(record.community, lang))
    topic = cat.category_name(record.topic, lang) + _w("colon", lang) + t(cat.item_name(record.community, record.topic))
    return " · ".join((t(record.title), community, topic, state_name(record.state.value, lang)))


def format_timeline(
    entries: Iterable[LogEntry],
    lang: Lang = "en",
    texts: Texts | None = None,
    zone: tzinfo | str = ZONE,
) -> list[str]:
    """A header line naming the columns and the zone, then one line per log entry, in ``lang``.

    ``texts`` shows the free text people wrote in the reader's language (text not in it is shown
    as written); ``zone`` is the zone times are shown in (the procedure's by default).
    """
    tz = _zone(zone)
    entries = list(entries)
    t = _translator(texts, lang)
    rows: list[tuple[str, ...]] = [
        (
            _w("seq", lang),
            _zone_header(entries, tz, lang),
            _w("event", lang),
            _w("stage", lang),
            _w("who", lang),
            _w("details", lang),
        )
    ]
    measures: dict[object, list[str]] = {}  # decision number -> its measures' titles, as logged
    for e in entries:
        if e.event.value == "decided":
            measures[e.data.get("decision")] = [
                str(m.get("title", "")) if isinstance(m, dict) else "" for m in _items(e.data.get("measures"))
            ]
        rows.append(
            (
                str(e.seq),
                e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                event_name(e.event.value, lang, e.data),
                _move(e, lang),
                _who(e.actor, e.role, lang),
                _detail(e, lang, t, tz, measures),
            )
        )
    widths = [max(display_width(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        seq = " " * (widths[0] - display_width(row[0])) + row[0]
        cells = [seq, *(_pad(row[i], widths[i]) for i in range(1, 5)), row[5]]
        lines.append("  ".join(cells).rstrip())
    return lines


def _translator(texts: Texts | None, lang: Lang) -> _Translate:
    return _Translate(texts or {}, lang)


class _Translate:
    """Free text in the reader's language when the glossary has it, else as written."""

    __slots__ = ("lang", "texts")

    def __init__(self, texts: Texts, lang: Lang) -> None:
        self.texts = texts
        self.lang = lang

    def __call__(self, text: object) -> str:
        shown = str(text)
        pair = self.texts.get(shown)
        return shown if pair is None else pick(pair, self.lang)


def _zone_header(entries: list[LogEntry], tz: tzinfo, lang: Lang) -> str:
    sample = entries[0].at.astimezone(tz) if entries else datetime.now(tz)
    name = zone_name(sample, lang)
    if name in ("北京时间", "Beijing time"):
        return name if lang == "zh" else f"{name} (UTC+8)"
    offsets = {e.at.astimezone(tz).utcoffset() for e in entries}
    key = getattr(tz, "key", None)
    shown = name if len(offsets) <= 1 or key is None else str(key)
    return _w("time", lang, zone=shown)


def _move(e: LogEntry, lang: Lang) -> str:
    """The stage after the entry; ``→`` marks a step into it (the stage before is the line above)."""
    target = state_name(e.target.value, lang)
    return target if e.source is None or e.source == e.target else f"→ {target}"


def _who(actor: str, role: str, lang: Lang) -> str:
    return actor + _w("aside", lang, text=role_label(role, lang))


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _money(value: object, lang: Lang) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return _w("yuan", lang, amount=f"{amount:,.2f}" if lang == "en" else f"{amount:.2f}")


def _when(value: object, tz: tzinfo) -> str:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _detail(e: LogEntry, lang: Lang, t: _Translate, tz: tzinfo, measures: Mapping[object, list[str]]) -> str:
    d = e.data
    ev = e.event.value
    parts: list[str] = []
    colon = _w("colon", lang)
    if ev == "proposed":
        parts.append(t(d.get("title", "")))
        if d.get("major"):
            parts.append(_w("major", lang))
        if d.get("budget") is not None:
            parts.append(_w("budget", lang, money=_money(d["budget"], lang)))
    elif ev in ("rejected", "withdrawn"):
        parts.append(t(d.get("reason", "")))
    elif ev == "notified":
        meeting = _w("meeting", lang, when=_when(d.get("meeting_at"), tz))
        if d.get("venue"):
            meeting += (" " if lang == "en" else "，") + _w("venue", lang, venue=t(d["venue"]))
        parts.append(meeting)
        if d.get("chair"):
            parts.append(_w("chair", lang, chair=d["chair"]))
        if d.get("invited"):
            parts.append(_w("invited", lang, count=d["invited"]))
    elif ev == "meeting_scheduled":
        meeting = _w("meeting_n", lang, number=d.get("meeting")) + colon
        meeting += _w("meeting", lang, when=_when(d.get("meeting_at"), tz))
        if d.get("venue"):
            meeting += (" " if lang == "en" else "，") + _w("venue", lang, venue=t(d["venue"]))
        parts.append(meeting)
        if d.get("closes_at"):
            parts.append(_w("closes", lang, when=_when(d["closes_at"], tz)))
        if d.get("chair"):
            parts.append(_w("chair", lang, chair=d["chair"]))
    elif ev == "minutes_recorded":
        parts.append(_w("minutes", lang, number=d.get("meeting"), digest=str(d.get("sha256", ""))[:12]))
        if d.get("correction"):
            parts.append(_w("minutes_corrected", lang))
    elif ev == "round_opened":
        if d.get("attendees"):
            parts.append(_w("attending", lang, count=d["attendees"]))
    elif ev == "opinion_recorded":
        said = _w("opinion", lang, round=d.get("round"), stance=stance_name(str(d.get("stance", "")), lang))
        if d.get("text"):
            said += _w("quote", lang, text=t(d["text"]))
        parts.append(said)
    elif ev == "round_closed":
        counts = _w("counts", lang, **{k: d.get(k, 0) for k in ("support", "oppose", "amend", "abstain")})
        if d.get("quorum_met") is False:
            parts.append(_w("quorum", lang, required=d.get("required"), attended=d.get("attended")))
            parts.append(counts)
        else:
            parts.append(_w("consensus" if d.get("consensus") else "no_consensus", lang) + colon + counts)
        if d.get("abandoned"):
            parts.append(_w("abandoned", lang))
    elif ev == "escalated":
        reason = str(d.get("reason", ""))
        parts.append(_w(reason, lang) if reason in WORDS else t(reason))
    elif ev == "vote_called":
        body = body_name(str(d.get("body", "")), lang)
        parts.append(_w("vote_called", lang, vote=d.get("vote"), body=body, text=t(d.get("resolution", ""))))
    elif ev == "vote_cast":
        parts.append(_w("ballot", lang, vote=d.get("vote"), ballot=ballot_name(str(d.get("ballot", "")), lang)))
        if d.get("area") is not None:
            parts.append(_w("area", lang, area=d["area"]))
        if d.get("on_behalf_of"):
            parts.append(_w("for_by", lang, voter=d["on_behalf_of"]))
    elif ev == "vote_closed":
        counts = _w("ballots", lang, **{k: d.get(k, 0) for k in ("yes", "no", "abstain")})
        if d.get("quorum_met") is False:
            parts.append(_w("vote_quorum", lang, participated=d.get("participated"), members=d.get("members")))
            parts.append(counts)
        else:
            parts.append(_w("carried" if d.get("carried") else "lost", lang) + colon + counts)
        if d.get("area_total") is not None:
            areas = ("area_yes", "area_no", "area_abstain", "area_total")
            parts.append(_w("ballot_areas", lang, **{k: d.get(k) for k in areas}))
        if d.get("abandoned"):
            parts.append(_w("abandoned", lang))
    elif ev == "decided":
        decided = _w("decision", lang, number=d.get("decision"))
        if d.get("body"):
            decided += _w(
                "aside", lang, text=_w("by_body", lang, body=body_name(str(d["body"]), lang), vote=d.get("vote"))
            )
        if d.get("resolution"):
            decided += colon + t(d["resolution"])
        parts.append(decided)
        if d.get("budget") is not None:
            parts.append(_w("budget", lang, money=_money(d["budget"], lang)))
        if d.get("review") == "not_required":
            parts.append(_w("no_review", lang))
    elif ev == "legality_reviewed":
        verdict = verdict_name(str(d.get("verdict", "")), lang)
        parts.append(_w("verdict", lang, number=d.get("decision"), verdict=verdict))
        if d.get("correction"):
            parts.append(_w("correction", lang, text=t(d["correction"])))
    elif ev == "published":
        channels = _w("list", lang).join(channel_name(str(c), lang) for c in _items(d.get("channels")))
        summary = t(d.get("summary", ""))
        parts.append(summary + _w("aside", lang, text=channels) if summary else channels)
    elif ev == "progress_reported":
        index = d.get("measure")
        number = index + 1 if isinstance(index, int) else index
        progress = _w("progress", lang, number=number, percent=d.get("percent"))
        titles = measures.get(d.get("decision"), [])
        if isinstance(index, int) and 0 <= index < len(titles) and titles[index]:
            progress += _w("aside", lang, text=t(titles[index]))
        parts.append(progress)
        if d.get("spent") not in (None, "0", "0.00"):
            parts.append(_w("spent", lang, money=_money(d["spent"], lang)))
        if d.get("photos"):
            count = len(_items(d["photos"]))
            parts.append(_w("photo", lang) if count == 1 else _w("photos", lang, count=count))
        if d.get("note"):
            parts.append(t(d["note"]))
        if d.get("justification"):
            parts.append(_w("justification", lang, text=t(d["justification"])))
    elif ev == "feedback_received":
        rated = _w("satisfaction", lang, score=d.get("satisfaction"))
        parts.append(rated + (colon + t(d["comment"]) if d.get("comment") else ""))
    elif ev == "inspected":
        verdict = _w("passed" if d.get("passed") else "problems", lang)
        findings = t(d.get("findings", ""))
        parts.append(verdict + (colon + findings if findings and findings != verdict else ""))
    elif ev in ("reconsultation_requested", "resumed"):
        why = d.get("problems") if ev == "reconsultation_requested" else d.get("instructions")
        reason = ("（" + t(why) + "）" if lang == "zh" else f" ({t(why)})") if why else ""
        parts.append(_w("cycle", lang, cycle=d.get("cycle")) + reason)
        if d.get("co_signers"):
            parts.append(_w("co_signed", lang, count=len(_items(d["co_signers"]))))
    elif ev == "closed":
        if d.get("summary"):
            parts.append(t(d["summary"]))
        if d.get("by_ruling"):
            parts.append(_w("by_ruling", lang))
    # 提议 intake
    elif ev in ("draft_edited", "proposal_edited"):
        changes = d.get("changes")
        if isinstance(changes, dict):
            parts.append(_w("edited", lang, fields=_w("list", lang).join(str(k) for k in changes)))
        if d.get("note"):
            parts.append(t(d["note"]))
    elif ev == "co_signed":
        parts.append(_w("co_signed", lang, count=d.get("co_signers")))
    elif ev == "topic_added":
        parts.append(_w("topic_added", lang, topic=d.get("topic"), name=t(d.get("name", ""))))
    elif ev == "appealed":
        parts.append(t(d.get("grounds", "")))
    elif ev == "reconsidered":
        parts.append(_w("upheld" if d.get("upheld") else "overturned", lang) + colon + t(d.get("ruling", "")))
    elif ev == "funds_allocated":
        money = {k: _money(d.get(k), lang) for k in ("amount", "pool", "before")}
        parts.append(_w("allocated", lang, decision=d.get("decision"), year=d.get("year"), **money))
    elif ev == "funds_spent":
        index = d.get("measure")
        number = index + 1 if isinstance(index, int) else index
        amount = _money(d.get("amount"), lang)
        parts.append(_w("fund_spent", lang, number=number, amount=amount, year=d.get("year")))
        if d.get("over") not in (None, "0", "0.00"):
            parts.append(_w("overspent", lang, amount=_money(d["over"], lang)))
    elif ev == "funds_released":
        money = {k: _money(d.get(k), lang) for k in ("amount", "spent")}
        parts.append(_w("released", lang, decision=d.get("decision"), year=d.get("year"), **money))
    elif ev == "deadline_missed":
        kind = f"deadline:{d.get('kind')}"
        index = d.get("measure")
        number = index + 1 if isinstance(index, int) else index
        what = _w(kind, lang, number=number) if kind in WORDS else str(d.get("kind"))
        parts.append(_w("missed", lang, what=what, when=_when(d.get("due"), tz)))
        if d.get("title") and d.get("owner"):  # 承诺制: the pledge it names
            parts.append(_w("owned_by", lang, title=t(d["title"]), owner=d["owner"]))
    elif ev in ("pledge_published", "pledge_delayed"):
        index = d.get("measure")
        number = index + 1 if isinstance(index, int) else index
        if ev == "pledge_published":
            when = _when(d.get("due"), tz)
            parts.append(
                _w("pledge", lang, number=number, title=t(d.get("title", "")), owner=d.get("owner"), when=when)
            )
            if d.get("budget") not in (None, "0", "0.00"):
                parts.append(_w("budget", lang, money=_money(d["budget"], lang)))
        else:
            before, when = _when(d.get("from_due"), tz), _when(d.get("due"), tz)
            parts.append(_w("pledge_delay", lang, number=number, before=before, when=when))
            if d.get("reason"):
                parts.append(t(d["reason"]))
    return _w("sep", lang).join(p for p in parts if p)
