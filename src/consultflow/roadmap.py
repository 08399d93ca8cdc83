"""The results roadmap (成果运用路线图): a community's public pledges (承诺制) in one place.

The seed's communities hang a results roadmap in their activity centre (“在社区活动中心挂起成果运用路线图”)
so that residents can hold those who pledged to what they pledged (“推行承诺制让群众监督”). This module
builds it from the records alone - pure: records (and a time) in, a roadmap out - and renders it as
JSON or as a public HTML page:

- every pledge of the community's consultations (``Consultation.pledges``): what, who answers for it,
  by when (and the date decided, if it was moved), how much, the money reported spent, how far it
  is, its status, the hashes of the latest photos of the work, and the consultation it comes from;
- nothing personal: people are named by their id, or by their public name when the caller gives
  ``Participant`` records (``Participant.public()``: never a phone number, an ID number or an
  address); progress notes (free text that may name anyone) are left out, a delay's reason - told
  to the public when it was given - is shown;
- a pledge whose date has passed undone is ``missed`` as of ``now``, even before ``Engine.tick``
  marks it (决而不施); without ``now`` the roadmap shows the statuses as recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from decimal import Decimal
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from .canonical import timestamp
from .delivery.messages import LinkTemplate
from .i18n import Lang, pick, state_name
from .records import Consultation, Participant, Pledge
from .vocabulary import FINAL_STATES, PledgeStatus

__all__ = [
    "STATUS_NAMES",
    "WORDS",
    "Roadmap",
    "RoadmapItem",
    "build_roadmap",
    "roadmap_dumps",
    "roadmap_html",
    "roadmap_json",
    "roadmap_text",
    "status_name",
]

ZONE = ZoneInfo("Asia/Shanghai")

#: A pledge's status as residents read it (English, Chinese).
STATUS_NAMES: Mapping[str, tuple[str, str]] = {
    PledgeStatus.PLEDGED.value: ("pledged", "已承诺"),
    PledgeStatus.IN_PROGRESS.value: ("in progress", "落实中"),
    PledgeStatus.DELAYED.value: ("delayed", "已延期"),
    PledgeStatus.DONE.value: ("done", "已兑现"),
    PledgeStatus.MISSED.value: ("missed", "逾期未兑现"),
    PledgeStatus.SUPERSEDED.value: ("superseded by a later decision", "已由新决策调整"),
}

#: The page's own words (English, Chinese).
WORDS: Mapping[str, tuple[str, str]] = {
    "title": ("Results roadmap", "成果运用路线图"),
    "intro": (
        "Every pledge made when a consultation's outcome was published: who answers for it, by when, with how "
        "much. Residents hold them to it.",
        "协商成果公开时作出的每一项承诺：由谁负责、何时完成、花多少钱。请居民监督。",
    ),
    "community": ("Community", "社区"),
    "as_of": ("as of {when}", "截至{when}"),
    "pledge": ("Pledge", "承诺事项"),
    "owner": ("Who", "责任人"),
    "due": ("By when", "完成期限"),
    "budget": ("Budget", "预算"),
    "spent": ("Spent", "已支出"),
    "progress": ("Progress", "进度"),
    "status": ("Status", "状态"),
    "photos": ("Photos (SHA-256)", "照片（SHA-256）"),
    "consultation": ("Consultation", "协商议题"),
    "decided_due": ("decided: {when}", "原定：{when}"),
    "delays": ("delayed {count}×: {reasons}", "延期{count}次：{reasons}"),
    "none": ("No pledges yet.", "暂无承诺事项。"),
    "totals": (
        "{count} pledges: {done} done, {open} open, {missed} missed; budget {budget}, spent {spent}",
        "共{count}项承诺：已兑现{done}项，进行中{open}项，逾期{missed}项；预算{budget}，已支出{spent}",
    ),
    "yuan": ("{amount} yuan", "{amount}元"),
}

_OPEN = frozenset({PledgeStatus.PLEDGED, PledgeStatus.IN_PROGRESS, PledgeStatus.DELAYED})


@attrs.frozen(slots=True)
class RoadmapItem:
    """One pledge on the roadmap, with what residents need to hold its owner to it."""

    consultation: str
    consultation_title: str
    topic: str
    state: str
    decision: int
    measure: int  # from 0; people read it as ``measure + 1``
    title: str
    owner: str
    owner_name: str
    due: datetime
    pledged_due: datetime
    budget: Decimal
    spent: Decimal
    percent: int
    status: PledgeStatus
    delays: tuple[tuple[datetime, datetime, str], ...]  # (from, to, reason)
    photos: tuple[str, ...]
    published_at: datetime
    link: str | None = None


@attrs.frozen(slots=True)
class Roadmap:
    """A community's roadmap: its pledges in the order they were published."""

    community: str
    items: tuple[RoadmapItem, ...]
    as_of: datetime | None = None

    def count(self, *statuses: PledgeStatus) -> int:
        return sum(1 for i in self.items if i.status in statuses)

    @property
    def budget(self) -> Decimal:
        return sum((i.budget for i in self.items if i.status is not PledgeStatus.SUPERSEDED), Decimal(0))

    @property
    def spent(self) -> Decimal:
        return sum((i.spent for i in self.items), Decimal(0))


def _status(pledge: Pledge, record: Consultation, percent: int, now: datetime | None) -> PledgeStatus:
    status = pledge.status
    if now is not None and status in _OPEN and pledge.due <= now and percent < 100 and record.state not in FINAL_STATES:
        return PledgeStatus.MISSED  # past its date undone: missed, whether or not the clock has marked it yet
    return status


def _item(
    record: Consultation, pledge: Pledge, now: datetime | None, names: Mapping[str, str], link: LinkTemplate | None
) -> RoadmapItem:
    spent = Decimal(0)
    percent = 0
    photos: tuple[str, ...] = ()
    for p in record.progress:
        if p.decision == pledge.decision and p.measure == pledge.measure:
            spent += p.spent
            percent = p.percent
            if p.photos:
                photos = p.photos
    return RoadmapItem(
        consultation=record.id,
        consultation_title=record.title,
        topic=record.topic,
        state=record.state.value,
        decision=pledge.decision,
        measure=pledge.measure,
        title=pledge.title,
        owner=pledge.owner,
        owner_name=names.get(pledge.owner, ""),
        due=pledge.due,
        pledged_due=pledge.pledged_due,
        budget=pledge.budget,
        spent=spent,
        percent=percent,
        status=_status(pledge, record, percent, now),
        delays=tuple((d.from_due, d.to_due, d.reason) for d in pledge.delays),
        photos=photos,
        published_at=pledge.published_at,
        link=None if link is None else link.build(record.id, record.version, record.community),
    )


def build_roadmap(
    records: Iterable[Consultation],
    community: str,
    *,
    now: datetime | None = None,
    people: Iterable[Participant] = (),
    link: str | None = None,
) -> Roadmap:
    """The roadmap of ``community`` from its consultations' records (others are passed over).

    ``now``: pledges past their date undone show as missed; ``people``: owners shown by their public
    name (``Participant.public()``); ``link``: an http(s) URL template (``{consultation}``, ``{seq}``,
    ``{community}``, as notices' links) for each pledge's link back to its consultation (else the page
    links to the consultation's line on it). A bad template is ``InvalidInput``."""
    template = None if link is None else LinkTemplate(link)
    names: dict[str, str] = {}
    for person in people:
        if person.community == community:
            shown = person.public()  # never the phone, the ID number or the address
            names[str(shown["id"])] = str(shown["name"])
    items = [_item(r, p, now, names, template) for r in records if r.community == community for p in r.pledges]
    items.sort(key=lambda i: (i.published_at, i.consultation, i.decision, i.measure))
    return Roadmap(community, tuple(items), now)


# ---- JSON ---------------------------------------------------------------------------------------------
def _item_json(i: RoadmapItem) -> dict[str, Any]:
    return {
        "budget": str(i.budget),
        "consultation": i.consultation,
        "consultation_title": i.consultation_title,
        "decision": i.decision,
        "delays": [{"from": timestamp(a), "reason": why, "to": timestamp(b)} for a, b, why in i.delays],
        "due": timestamp(i.due),
        "link": i.link,
        "measure": i.measure,
        "number": i.measure + 1,
        "owner": i.owner,
        "owner_name": i.owner_name,
        "percent": i.percent,
        "photos": list(i.photos),
        "pledged_due": timestamp(i.pledged_due),
        "published_at": timestamp(i.published_at),
        "spent": str(i.spent),
        "state": i.state,
        "status": i.status.value,
        "title": i.title,
        "topic": i.topic,
    }


def roadmap_json(roadmap: Roadmap) -> dict[str, Any]:
    """The roadmap as JSON values (amounts as strings, times in UTC), with counts per status."""
    return {
        "as_of": None if roadmap.as_of is None else timestamp(roadmap.as_of),
        "community": roadmap.community,
        "counts": {s.value: roadmap.count(s) for s in PledgeStatus},
        "pledges": [_item_json(i) for i in roadmap.items],
        "totals": {"budget": str(roadmap.budget), "pledges": len(roadmap.items), "spent": str(roadmap.spent)},
    }


def roadmap_dumps(roadmap: Roadmap) -> str:
    """``roadmap_json`` as text (keys sorted, Chinese as itself)."""
    return json.dumps(roadmap_json(roadmap), ensure_ascii=False, indent=2, sort_keys=True)


# ---- for people: text and HTML ----------------------------------------------------------------------------
def _w(key: str, lang: Lang, **values: object) -> str:
    return pick(WORDS[key], lang).format(**values)


def _day(when: datetime, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d")


def _money(amount: Decimal, lang: Lang) -> str:
    return _w("yuan", lang, amount=f"{amount:,.2f}" if lang == "en" else f"{amount:.2f}")


def _who(i: RoadmapItem) -> str:
    return f"{i.owner_name} ({i.owner})" if i.owner_name else i.owner


def _totals(roadmap: Roadmap, lang: Lang) -> str:
    return _w(
        "totals",
        lang,
        count=len(roadmap.items),
        done=roadmap.count(PledgeStatus.DONE),
        open=roadmap.count(*_OPEN),
        missed=roadmap.count(PledgeStatus.MISSED),
        budget=_money(roadmap.budget, lang),
        spent=_money(roadmap.spent, lang),
    )


def status_name(status: PledgeStatus | str, lang: Lang = "en") -> str:
    return pick(STATUS_NAMES[str(status)], lang)


def roadmap_text(roadmap: Roadmap, lang: Lang = "en", tz: tzinfo = ZONE) -> list[str]:
    """The roadmap as lines of text, in ``lang``: one line per pledge, then the totals."""
    head = f"{_w('title', lang)} · {roadmap.community}"
    if roadmap.as_of is not None:
        head += " · " + _w("as_of", lang, when=_day(roadmap.as_of, tz))
    lines = [head]
    if not roadmap.items:
        return [*lines, _w("none", lang)]
    sep = "；" if lang == "zh" else "; "
    for i in roadmap.items:
        parts = [
            f"{i.consultation} #{i.measure + 1} {i.title}",
            _who(i),
            _day(i.due, tz),
            _money(i.budget, lang),
            f"{i.percent}%",
            status_name(i.status, lang),
        ]
        if i.delays:
            parts.append(_w("decided_due", lang, when=_day(i.pledged_due, tz)))
        lines.append(sep.join(parts))
    lines.append(_totals(roadmap, lang))
    return lines


_CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #ccc;padding:.4em;text-align:left;vertical-align:top}"
    ".done{background:#e6f4ea}.missed{background:#fce8e6}.delayed{background:#fef7e0}"
    ".superseded{color:#777}code{font-size:.8em}"
)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _photos(photos: tuple[str, ...]) -> str:
    return " ".join(f'<code title="{_e(h)}">{_e(h[:12])}…</code>' for h in photos)


def roadmap_html(roadmap: Roadmap, lang: Lang = "en", tz: tzinfo = ZONE) -> str:
    """The roadmap as a public HTML page (UTF-8, no script, every text escaped), in ``lang``."""
    cols = ("pledge", "owner", "due", "budget", "spent", "progress", "status", "photos", "consultation")
    rows = []
    for i in roadmap.items:
        due = _e(_day(i.due, tz))
        if i.delays:
            due += "<br><small>" + _e(_w("decided_due", lang, when=_day(i.pledged_due, tz))) + "</small>"
            reasons = ("；" if lang == "zh" else "; ").join(why for _, _, why in i.delays)
            due += "<br><small>" + _e(_w("delays", lang, count=len(i.delays), reasons=reasons)) + "</small>"
        target = i.link if i.link is not None else f"#consultation-{i.consultation}"
        consultation = (
            f'<a href="{_e(target)}">{_e(i.consultation_title)}</a> <small>({_e(state_name(i.state, lang))})</small>'
        )
        cells = (
            f"{_e(i.measure + 1)}. {_e(i.title)}",
            _e(_who(i)),
            due,
            _e(_money(i.budget, lang)),
            _e(_money(i.spent, lang)),
            f'<progress max="100" value="{i.percent}"></progress> {i.percent}%',
            _e(status_name(i.status, lang)),
            _photos(i.photos),
            consultation,
        )
        rows.append(f'<tr class="{_e(i.status.value)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{_e(_w(c, lang))}</th>" for c in cols)
    sections = []
    seen: dict[str, str] = {}
    for i in roadmap.items:
        seen.setdefault(i.consultation, i.consultation_title)
    for cid, title in seen.items():
        sections.append(f'<li id="consultation-{_e(cid)}">{_e(title)} <small>({_e(cid)})</small></li>')
    as_of = "" if roadmap.as_of is None else f"<p>{_e(_w('as_of', lang, when=_day(roadmap.as_of, tz)))}</p>"
    body = (
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p>{_e(_totals(roadmap, lang))}</p><h2>{_e(_w('consultation', lang))}</h2><ul>{''.join(sections)}</ul>"
        if roadmap.items
        else f"<p>{_e(_w('none', lang))}</p>"
    )
    title = f"{_w('title', lang)} · {roadmap.community}"
    return (
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>{_e(_w('intro', lang))}</p>{as_of}{body}</body></html>\n"
    )
