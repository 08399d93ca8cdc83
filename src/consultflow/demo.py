"""The reference story: a major decision-carrier matter on consultation day at 小桃园社区.

propose -> notify (meeting 1, a round table on the 11th, 每月11日协商日) -> round 1 (no consensus),
minutes -> an online round (云协商) on the next consultation day, open three days -> consensus,
minutes -> the residents' representatives' meeting votes (居民代表会议表决: a major matter is theirs
to decide) -> legality review *unlawful*, corrected (依法纠正) -> meeting 3, round 3 -> vote ->
review lawful, the budget allocated from the community's 2026 微幸福 fund -> publish, each measure a
pledge (承诺制) -> progress with photos' hashes and spending -> residents, five together, raise a new
problem while it is carried out -> consult again (再次协商, the unspent money back to the pool) ->
meeting 4 -> vote -> review lawful -> pledges, progress, ratings -> supervision signs off -> close.
It runs through the public API only; ``consultflow demo`` prints
its timeline and the test suite runs the same story.

The story's text is logged as written (some of it in both languages, some in Chinese only);
``GLOSSARY`` gives each text in English and in Chinese, so the timeline shows it in the reader's
language (``format_timeline(entries, lang, texts=GLOSSARY)``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

from .catalogue import Catalogue
from .clock import SimulatedClock
from .directory import MemoryDirectory
from .engine import Engine
from .i18n import Lang
from .procedure import Procedure, six_step
from .records import Measure
from .roles import Actor, Role
from .storage.base import Store
from .testing.driver import Driver
from .timeline import Texts, format_timeline, heading, summary_line
from .vocabulary import Carrier, Channel, Form, MeetingFormat, ProjectType, Stance

__all__ = [
    "CAST",
    "COMMUNITY",
    "COMMUNITY_NAME",
    "GLOSSARY",
    "demo_catalogue",
    "demo_engine",
    "demo_procedure",
    "format_timeline",
    "run_story",
    "story_view",
]

ZONE = ZoneInfo("Asia/Shanghai")
COMMUNITY = "xiaotaoyuan"
COMMUNITY_NAME = ("Xiaotaoyuan community", "小桃园社区")
TOPIC = "public-affairs/night-parking"

#: Every text the story logs (and the catalogue's item names) -> (English, Chinese).
GLOSSARY: Texts = {
    # meetings (会议): venues, agendas and minutes
    "小桃园居民微信群": ("the Xiaotaoyuan residents' WeChat group", "小桃园居民微信群"),
    "夜间停车 night parking": ("night parking", "夜间停车"),
    "依法纠正后的收费方案 the corrected fee plan": ("the corrected fee plan", "依法纠正后的收费方案"),
    "消防通道 the fire lane": ("the fire lane", "消防通道"),
    "圆桌会纪要：收费与划线意见分歧 round table minutes: the fee and the bays divide opinion": (
        "round table minutes: the fee and the bays divide opinion",
        "圆桌会纪要：收费与划线意见分歧",
    ),
    "网上协商纪要：降价后达成共识 online minutes: consensus once the fee came down": (
        "online minutes: consensus once the fee came down",
        "网上协商纪要：降价后达成共识",
    ),
    "圆桌会纪要：业主大会表决后达成共识 round table minutes: consensus after the owners' assembly voted": (
        "round table minutes: consensus after the owners' assembly voted",
        "圆桌会纪要：业主大会表决后达成共识",
    ),
    "圆桌会纪要：增设消防通道禁停标线 round table minutes: mark the fire lane": (
        "round table minutes: mark the fire lane",
        "圆桌会纪要：增设消防通道禁停标线",
    ),
    "夜间车辆占用消防通道，需再次协商 cars block the fire lane: consult again": (
        "cars block the fire lane at night: consult again",
        "夜间车辆占用消防通道，需再次协商",
    ),
    # the catalogue
    "夜间停车": ("night parking", "夜间停车"),
    "微绿化": ("micro-greening", "微绿化"),
    # the proposal and the notice
    "夜间停车难 Night parking": ("Night parking", "夜间停车难"),
    "东侧空地夜间开放停车 Open the east lot for night parking": (
        "Open the east lot for night parking",
        "东侧空地夜间开放停车",
    ),
    "“有一说一”轮值工作室": ("the “Say It Straight” rotating-chair studio", "“有一说一”轮值工作室"),
    # opinions and round summaries
    "夜间无处停车": ("nowhere to park at night", "夜间无处停车"),
    "收费太高": ("the fee is too high", "收费太高"),
    "需先划线": ("mark the bays first", "需先划线"),
    "降价后同意": ("agreed once the fee came down", "降价后同意"),
    "业主大会已表决": ("the owners' assembly has voted", "业主大会已表决"),
    "增设禁停标线": ("add no-parking markings", "增设禁停标线"),
    "第一轮：未达成共识 round 1: no consensus": ("round 1: no consensus", "第一轮：未达成共识"),
    "第二轮：达成共识 round 2: consensus": ("round 2: consensus", "第二轮：达成共识"),
    "第三轮：依法纠正后达成共识 round 3: consensus on the corrected plan": (
        "round 3: consensus on the corrected plan",
        "第三轮：依法纠正后达成共识",
    ),
    "再次协商：增设消防通道禁停标线 consult again: mark the fire lane": (
        "consult again: mark the fire lane",
        "再次协商：增设消防通道禁停标线",
    ),
    # decisions and measures
    "东侧空地夜间停车，每月收费150元": (
        "night parking on the east lot at 150 yuan a month",
        "东侧空地夜间停车，每月收费150元",
    ),
    "经业主大会表决，东侧空地夜间停车，每月收费100元并公示": (
        "as the owners' assembly voted: night parking on the east lot at 100 yuan a month, made public",
        "经业主大会表决，东侧空地夜间停车，每月收费100元并公示",
    ),
    "保留夜间停车方案，增设消防通道禁停标线": (
        "keep the night-parking plan and add no-parking markings on the fire lane",
        "保留夜间停车方案，增设消防通道禁停标线",
    ),
    "划线施工 mark the bays": ("mark the bays", "划线施工"),
    "安装道闸 install the gate": ("install the gate", "安装道闸"),
    "划线及消防通道禁停标线 bays and fire-lane markings": ("bays and fire-lane markings", "划线及消防通道禁停标线"),
    # the legality review (依法纠正)
    "《民法典》第二百七十八条：改变共有部分用途、收费标准须经业主共同决定": (
        "Civil Code, article 278: changing the use of common parts or their fees needs the owners' joint decision",
        "《民法典》第二百七十八条：改变共有部分用途、收费标准须经业主共同决定",
    ),
    "收费方案提交业主大会表决，按规定公示后实施": (
        "put the fee plan to the owners' assembly and make it public as required before it takes effect",
        "收费方案提交业主大会表决，按规定公示后实施",
    ),
    "开展《民法典》物权编宣讲": ("hold talks on the Civil Code's book on property rights", "开展《民法典》物权编宣讲"),
    # carrying it out, feedback and supervision
    "成果上墙：夜间停车方案": ("posted on the wall: the night-parking plan", "成果上墙：夜间停车方案"),
    "调整方案公示": ("the adjusted plan made public", "调整方案公示"),
    "划线过半": ("over half of the bays marked", "划线过半"),
    "划线完成": ("bays marked", "划线完成"),
    "道闸启用": ("gate in use", "道闸启用"),
    "停车方便了": ("parking is easier now", "停车方便了"),
    "夜间车辆占用消防通道 cars block the fire lane": ("cars block the fire lane at night", "夜间车辆占用消防通道"),
    "消防通道被占用，需再次协商 the fire lane is blocked": (
        "the fire lane is blocked: consult again",
        "消防通道被占用，需再次协商",
    ),
    "验收通过 signed off": ("signed off", "验收通过"),
    "办结 done": ("done", "办结"),
}

CAST: dict[str, Actor] = {
    "wang": Actor("wang", roles={Role.COMMITTEE}),  # 社区两委, convenor
    "li": Actor("li", roles={Role.RESIDENT}),  # proposer
    "zhang": Actor("zhang", roles={Role.RESIDENT_REPRESENTATIVE}),  # 居民代表
    "he": Actor("he", roles={Role.RESIDENT_REPRESENTATIVE}),
    "ma": Actor("ma", roles={Role.RESIDENT_REPRESENTATIVE}),
    "zhao": Actor("zhao", roles={Role.PROPERTY_MANAGEMENT}),
    "wu": Actor("wu", roles={Role.RESIDENT}),
    "chen": Actor("chen", roles={Role.ROTATING_CHAIR, Role.RESIDENT}),  # 轮值主席
    "liu": Actor("liu", roles={Role.EXPERT}),  # 协商智库: a lawyer
    "sun": Actor("sun", roles={Role.SUPERVISOR}),  # 监事
    "zhou": Actor("zhou", roles={Role.INSPECTION_GROUP}),  # 五人督查小组
}


def _at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=ZONE)


@cache
def demo_procedure() -> Procedure:
    """小桃园's variant: consultation day on the 11th of each month (每月11日协商日)."""
    return six_step().variant("xiaotaoyuan-six-step", "1", parameters={"consultation_day": 11})


def demo_catalogue() -> Catalogue:
    """小桃园社区's catalogue: two second-level items, and the community's name."""
    return Catalogue().with_community(
        COMMUNITY,
        {TOPIC: "夜间停车", "public-benefit/micro-greening": "微绿化"},
        name=COMMUNITY_NAME[1],
        name_en=COMMUNITY_NAME[0],
    )


def demo_directory() -> MemoryDirectory:
    """Who holds which role at 小桃园: the story's cast, granted in the community; the community is
    placed under its sub-district (宁海路街道), where the sub-district's officials sit."""
    directory = MemoryDirectory()
    directory.place(COMMUNITY, sub_district="ninghai", district="gulou")
    for person in CAST.values():
        directory.grant(COMMUNITY, person.id, *person.roles, by="xiaotaoyuan-committee")
    return directory


def demo_engine(store: Store | None = None, clock: SimulatedClock | None = None) -> tuple[Engine, SimulatedClock]:
    clock = clock or SimulatedClock(_at(3, 2, 9))
    catalogue = demo_catalogue()
    procedure = demo_procedure()
    counter = iter(range(1, 1_000_000))
    # a counter for the steps' salts too, so the demo's log (and its head) is the same on every run; a
    # store meant for a public export needs the engine's default, unguessable salts
    salts = iter(range(1, 1_000_000))
    engine = Engine(
        procedure,
        store,
        clock=clock,
        catalogue=catalogue,
        ids=lambda: f"{COMMUNITY}-2026-{next(counter):03d}",
        directory=demo_directory(),
        salts=lambda: f"{next(salts):032x}",
    )
    return engine, clock


def _round(d: Driver, opinions: Iterable[tuple[str, Stance, str]], summary: str, minutes: str) -> None:
    """A round at the meeting announced: opened, the opinions, closed, and its minutes (会议纪要)."""
    d.open_round(by="chen", agenda=summary)
    for who, stance, text in opinions:
        d.opinion(who, stance, text)
    d.close_round(by="chen", summary=summary)
    d.record_minutes(text=minutes, by="chen")


def photo(name: str) -> str:
    """The SHA-256 of a photo of the work (the app keeps the photo; the log keeps what identifies it)."""
    return hashlib.sha256(f"xiaotaoyuan/{name}".encode()).hexdigest()


def run_story(engine: Engine, clock: SimulatedClock) -> str:
    """Run the whole reference story on ``engine`` (its clock is ``clock``); return the consultation's id.

    It goes through the one test driver (``consultflow.testing.Driver``) with the story's cast;
    every command happens at the clock's reading (the story sets the clock itself). Every meeting of
    this consultation-day matter falls on the 11th (每月11日协商日), announced with its notice.
    """
    d = Driver(engine=engine, clock=clock, cast=CAST, pace=timedelta(0))
    S, OPP, A, X = Stance.SUPPORT, Stance.OPPOSE, Stance.AMEND, Stance.ABSTAIN
    cid = d.propose(
        by="li",
        community=COMMUNITY,
        topic=TOPIC,
        title="夜间停车难 Night parking",
        description="东侧空地夜间开放停车 Open the east lot for night parking",
        carrier=Carrier.DECISION,
        form=Form.CONSULTATION_DAY,
        major=True,
        budget=Decimal("120000"),
    ).id
    clock.set(_at(3, 3))
    d.notify(
        meeting_at=_at(3, 11),
        invite=("li", "zhang", "zhao", "wu", "chen", "liu"),
        chair="chen",
        venue="“有一说一”轮值工作室",
        format=MeetingFormat.ROUND_TABLE,
        agenda="夜间停车 night parking",
        channels=(Channel.NOTICE_BOARD, Channel.WECHAT),
    )
    # 3月11日协商日: a round table (圆桌会) in the rotating chair's studio
    clock.set(_at(3, 11))
    _round(
        d,
        [("li", S, "夜间无处停车"), ("zhang", OPP, "收费太高"), ("zhao", A, "需先划线"), ("wu", S, "")],
        "第一轮：未达成共识 round 1: no consensus",
        "圆桌会纪要：收费与划线意见分歧 round table minutes: the fee and the bays divide opinion",
    )
    # 云协商: the next consultation day opens an online round in the community's WeChat group for three days
    clock.set(_at(3, 12))
    d.schedule_meeting(
        meeting_at=_at(4, 11),
        closes_at=_at(4, 14, 20),
        format=MeetingFormat.ONLINE,
        venue="小桃园居民微信群",
        agenda="夜间停车 night parking",
        chair="chen",
        channels=(Channel.NOTICE_BOARD, Channel.WECHAT),
    )
    clock.set(_at(4, 11))
    d.open_round(by="chen", agenda="第二轮：达成共识 round 2: consensus")
    for day, (who, stance, text) in enumerate(
        [("li", S, ""), ("zhang", S, "降价后同意"), ("zhao", S, ""), ("wu", S, ""), ("liu", X, "")]
    ):
        clock.set(_at(4, 11 + day // 2, 20))
        d.opinion(who, stance, text)
    clock.set(_at(4, 14, 20))
    d.close_round(by="chen", summary="第二轮：达成共识 round 2: consensus")
    d.record_minutes(text="网上协商纪要：降价后达成共识 online minutes: consensus once the fee came down", by="chen")
    clock.set(_at(4, 15))
    measures = (
        Measure(
            title="划线施工 mark the bays",
            owner="zhao",
            due=_at(6, 30),
            budget=Decimal("80000"),
            category=ProjectType.ROAD_NETWORK,
        ),
        Measure(
            title="安装道闸 install the gate",
            owner="wang",
            due=_at(7, 15),
            budget=Decimal("30000"),
            category=ProjectType.FACILITIES,
        ),
    )
    d.decide(resolution="东侧空地夜间停车，每月收费150元", measures=measures)
    clock.set(_at(4, 16))
    d.review(
        lawful=False,
        legal_basis="《民法典》第二百七十八条：改变共有部分用途、收费标准须经业主共同决定",
        correction="收费方案提交业主大会表决，按规定公示后实施",
        education_note="开展《民法典》物权编宣讲",
    )
    clock.set(_at(4, 17))
    d.schedule_meeting(
        meeting_at=_at(5, 11),
        format=MeetingFormat.ROUND_TABLE,
        venue="“有一说一”轮值工作室",
        agenda="依法纠正后的收费方案 the corrected fee plan",
        chair="chen",
    )
    clock.set(_at(5, 11))
    _round(
        d,
        [("li", S, ""), ("zhang", S, ""), ("zhao", S, ""), ("wu", S, "业主大会已表决")],
        "第三轮：依法纠正后达成共识 round 3: consensus on the corrected plan",
        "圆桌会纪要：业主大会表决后达成共识 round table minutes: consensus after the owners' assembly voted",
    )
    clock.set(_at(5, 12))
    d.decide(resolution="经业主大会表决，东侧空地夜间停车，每月收费100元并公示", measures=measures)
    clock.set(_at(5, 13))
    d.review()  # lawful: the decision takes effect and its budget comes from the year's 微幸福 fund
    clock.set(_at(5, 14))
    # 公开制 and 承诺制: published on the roadmap, each measure a public pledge (who, what, by when, how much)
    d.publish(channels=(Channel.NOTICE_BOARD, Channel.WECHAT, Channel.ROADMAP), summary="成果上墙：夜间停车方案")
    clock.set(_at(6, 10))
    d.report(0, 50, spent=Decimal("40000"), note="划线过半", photos=(photo("bays-half.jpg"),))
    # 反馈落实中又存在新问题: residents find cars blocking the fire lane and, five of them, ask to consult again
    clock.set(_at(6, 12))
    d.reconsult(
        by="wu",
        problems="夜间车辆占用消防通道，需再次协商 cars block the fire lane: consult again",
        co_signers=("li", "zhang", "he", "ma"),
    )
    clock.set(_at(6, 13))
    d.schedule_meeting(
        meeting_at=_at(7, 11),
        format=MeetingFormat.ROUND_TABLE,
        venue="“有一说一”轮值工作室",
        agenda="消防通道 the fire lane",
        chair="chen",
    )
    clock.set(_at(7, 11))
    _round(
        d,
        [("li", S, ""), ("zhang", S, ""), ("zhao", S, "增设禁停标线"), ("wu", S, ""), ("liu", S, "")],
        "再次协商：增设消防通道禁停标线 consult again: mark the fire lane",
        "圆桌会纪要：增设消防通道禁停标线 round table minutes: mark the fire lane",
    )
    clock.set(_at(7, 12))
    d.decide(
        resolution="保留夜间停车方案，增设消防通道禁停标线",
        measures=(
            Measure(
                title="划线及消防通道禁停标线 bays and fire-lane markings",
                owner="zhao",
                due=_at(8, 20),
                budget=Decimal("85000"),
                category=ProjectType.ROAD_NETWORK,
            ),
            Measure(
                title="安装道闸 install the gate",
                owner="wang",
                due=_at(8, 31),
                budget=Decimal("30000"),
                category=ProjectType.FACILITIES,
            ),
        ),
    )
    clock.set(_at(7, 13))
    d.review()
    clock.set(_at(7, 14))
    d.publish(channels=(Channel.NOTICE_BOARD, Channel.ROADMAP), summary="调整方案公示")
    clock.set(_at(8, 15))
    d.report(0, 100, spent=Decimal("44000"), note="划线完成", photos=(photo("bays-done.jpg"), photo("fire-lane.jpg")))
    clock.set(_at(8, 25))
    d.report(1, 100, spent=Decimal("29500"), note="道闸启用", photos=(photo("gate.jpg"),))
    clock.set(_at(8, 26))
    d.rate(5, "停车方便了", by="li")
    d.rate(4, "", by="wu")
    clock.set(_at(8, 27))
    d.start_supervision()
    clock.set(_at(8, 28))
    d.inspect(passed=True, findings="验收通过 signed off")
    clock.set(_at(8, 29))
    d.close(summary="办结 done")
    return cid


def story_view(engine: Engine, cid: str, lang: Lang = "en", zone: tzinfo | str = ZONE) -> list[str]:
    """What ``consultflow demo`` shows a resident, every word in ``lang``: the heading (title ·
    community · topic · state), the timeline (story text through ``GLOSSARY``, times in ``zone``)
    and, after a blank line, the summary (entries, the chain, the state)."""
    record = engine.get(cid)
    entries = engine.history(cid)
    check = engine.verify(cid)
    return [
        heading(record, lang, engine.catalogue, GLOSSARY),
        *format_timeline(entries, lang, GLOSSARY, zone),
        "",
        summary_line(len(entries), check.ok, record.state.value, lang),
    ]
