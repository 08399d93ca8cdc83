"""The timeline: a consultation's log as a person reads it, one line per entry, in their language.

Used by ``consultflow demo`` and ``consultflow show``; times are shown in the procedure's zone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from .i18n import Lang, event_name, role_name, state_name
from .log import LogEntry

__all__ = ["format_timeline"]

ZONE = ZoneInfo("Asia/Shanghai")


def format_timeline(entries: Iterable[LogEntry], lang: Lang = "en") -> list[str]:
    """One line per log entry, in the reader's language, times in Beijing time."""
    lines = []
    for e in entries:
        when = e.at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")
        move = (
            state_name(e.target.value, lang)
            if e.source is None
            else (
                state_name(e.target.value, lang)
                if e.source == e.target
                else f"{state_name(e.source.value, lang)} → {state_name(e.target.value, lang)}"
            )
        )
        detail = _detail(e, lang)
        event = _pad(event_name(e.event.value, lang), 22)
        who = f"{e.actor} ({_role(e.role, lang)})"
        lines.append(f"{e.seq:>3}  {when}  {event} {_pad(move, 40)} {who}" + (f"  {detail}" if detail else ""))
    return lines


_STANCES_ZH = {"support": "支持", "oppose": "反对", "abstain": "弃权", "amend": "修改"}


def _role(role: str, lang: Lang) -> str:
    return role if lang == "en" else role_name(role, lang)


def _pad(text: str, width: int) -> str:
    """Pad to ``width`` terminal columns: CJK characters take two."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - used, 0)


def _detail(e: LogEntry, lang: Lang) -> str:
    d = e.data
    ev = e.event.value
    if ev == "round_closed":
        ok = d.get("consensus")
        word = ("consensus" if ok else "no consensus") if lang == "en" else ("达成共识" if ok else "未达成共识")
        counts = "/".join(str(d.get(k)) for k in ("support", "oppose", "amend", "abstain"))
        return f"#{d.get('round')} {word} ({counts})"
    if ev in ("round_opened", "opinion_recorded"):
        stance = str(d.get("stance", ""))
        shown = stance if lang == "en" else _STANCES_ZH.get(stance, stance)
        return f"#{d.get('round')}" + (f" {shown}" if stance else "")
    if ev == "legality_reviewed":
        return str(d.get("verdict")) + (f": {d.get('correction')}" if d.get("correction") else "")
    if ev == "decided":
        return f"#{d.get('decision')} budget {d.get('budget')}"
    if ev == "progress_reported":
        measure = d.get("measure")
        number = measure + 1 if isinstance(measure, int) else measure
        return f"measure {number} {d.get('percent')}%" if lang == "en" else f"第{number}项措施 {d.get('percent')}%"
    if ev == "inspected":
        return "passed" if d.get("passed") else str(d.get("findings"))
    if ev == "reconsultation_requested":
        return f"cycle {d.get('cycle')}"
    return ""
