"""The reference story: a major decision-carrier matter on consultation day at 小桃园社区.

propose -> notify -> round 1 (no consensus) -> round 2 (consensus) -> decide -> legality review
*unlawful*, corrected (依法纠正) -> round 3 -> decide -> review lawful -> publish, report progress ->
supervision finds a new problem -> consult again (再次协商) -> decide -> review lawful -> feedback ->
supervision signs off -> close. It runs through the public API only; ``consultflow demo`` prints
its timeline and the test suite runs the same story.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

from .catalogue import Catalogue
from .clock import SimulatedClock
from .engine import Engine
from .procedure import Procedure, six_step
from .records import Measure
from .roles import Actor, Role
from .steps import (
    Close,
    CloseRound,
    Decide,
    Inspect,
    Notify,
    OpenRound,
    Propose,
    Publish,
    RecordFeedback,
    RecordOpinion,
    ReportProgress,
    RequestReconsultation,
    ReviewLegality,
    StartSupervision,
)
from .storage.base import Store
from .vocabulary import Carrier, Channel, Form, Stance, Verdict

__all__ = ["CAST", "COMMUNITY", "demo_engine", "demo_procedure", "run_story"]

ZONE = ZoneInfo("Asia/Shanghai")
COMMUNITY = "xiaotaoyuan"
TOPIC = "public-affairs/night-parking"

CAST: dict[str, Actor] = {
    "wang": Actor("wang", roles={Role.COMMITTEE}),  # 社区两委, convenor
    "li": Actor("li", roles={Role.RESIDENT}),  # proposer
    "zhang": Actor("zhang", roles={Role.RESIDENT_REPRESENTATIVE}),
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


def demo_engine(store: Store | None = None, clock: SimulatedClock | None = None) -> tuple[Engine, SimulatedClock]:
    clock = clock or SimulatedClock(_at(3, 2, 9))
    catalogue = Catalogue().with_community(
        COMMUNITY, {TOPIC: "夜间停车 night parking", "public-benefit/micro-greening": "微绿化"}
    )
    procedure = demo_procedure()
    counter = iter(range(1, 1_000_000))
    engine = Engine(
        procedure,
        store,
        clock=clock,
        catalogue=catalogue,
        ids=lambda: f"{COMMUNITY}-2026-{next(counter):03d}",
    )
    return engine, clock


def _round(engine: Engine, cid: str, opinions: Iterable[tuple[str, Stance, str]], summary: str) -> None:
    c = CAST
    engine.execute(OpenRound(consultation=cid, agenda=summary), by=c["chen"])
    for who, stance, text in opinions:
        engine.execute(RecordOpinion(consultation=cid, stance=stance, text=text), by=c[who])
    engine.execute(CloseRound(consultation=cid, summary=summary), by=c["chen"])


def run_story(engine: Engine, clock: SimulatedClock) -> str:
    """Run the whole reference story; return the consultation's id."""
    c = CAST
    S, OPP, A, X = Stance.SUPPORT, Stance.OPPOSE, Stance.AMEND, Stance.ABSTAIN
    rec = engine.execute(
        Propose(
            community=COMMUNITY,
            topic=TOPIC,
            title="夜间停车难 Night parking",
            description="东侧空地夜间开放停车 Open the east lot for night parking",
            carrier=Carrier.DECISION,
            form=Form.CONSULTATION_DAY,
            major=True,
            budget=Decimal("120000"),
        ),
        by=c["li"],
    )
    cid = rec.id
    clock.set(_at(3, 3))
    engine.execute(
        Notify(
            consultation=cid,
            meeting_at=_at(3, 11),
            invite=("li", "zhang", "zhao", "wu", "chen", "liu"),
            chair="chen",
            venue="“有一说一”轮值工作室",
            channels=(Channel.NOTICE_BOARD, Channel.WECHAT),
        ),
        by=c["wang"],
    )
    clock.set(_at(3, 11))
    _round(
        engine,
        cid,
        [
            ("li", S, "夜间无处停车"),
            ("zhang", OPP, "收费太高"),
            ("zhao", A, "需先划线"),
            ("wu", S, ""),
        ],
        "第一轮：未达成共识 round 1: no consensus",
    )
    clock.set(_at(3, 18))
    _round(
        engine,
        cid,
        [("li", S, ""), ("zhang", S, "降价后同意"), ("zhao", S, ""), ("wu", S, ""), ("liu", X, "")],
        "第二轮：达成共识 round 2: consensus",
    )
    clock.set(_at(3, 19))
    measures = (
        Measure(title="划线施工 mark the bays", owner="zhao", due=_at(4, 30), budget=Decimal("80000")),
        Measure(title="安装道闸 install the gate", owner="wang", due=_at(5, 15), budget=Decimal("30000")),
    )
    engine.execute(
        Decide(consultation=cid, resolution="东侧空地夜间停车，每月收费150元", measures=measures),
        by=c["wang"],
    )
    clock.set(_at(3, 20))
    engine.execute(
        ReviewLegality(
            consultation=cid,
            verdict=Verdict.UNLAWFUL,
            legal_basis="《民法典》第二百七十八条：改变共有部分用途、收费标准须经业主共同决定",
            correction="收费方案提交业主大会表决，按规定公示后实施",
            education_note="开展《民法典》物权编宣讲",
        ),
        by=c["sun"],
    )
    clock.set(_at(3, 25))
    _round(
        engine,
        cid,
        [("li", S, ""), ("zhang", S, ""), ("zhao", S, ""), ("wu", S, "业主大会已表决")],
        "第三轮：依法纠正后达成共识 round 3: consensus on the corrected plan",
    )
    clock.set(_at(3, 26))
    engine.execute(
        Decide(
            consultation=cid,
            resolution="经业主大会表决，东侧空地夜间停车，每月收费100元并公示",
            measures=measures,
        ),
        by=c["wang"],
    )
    clock.set(_at(3, 27))
    engine.execute(ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL), by=c["sun"])
    clock.set(_at(3, 28))
    engine.execute(
        Publish(
            consultation=cid,
            channels=(Channel.NOTICE_BOARD, Channel.WECHAT, Channel.ROADMAP),
            summary="成果上墙：夜间停车方案",
        ),
        by=c["wang"],
    )
    clock.set(_at(4, 10))
    engine.execute(
        ReportProgress(consultation=cid, measure=0, percent=50, spent=Decimal("40000"), note="划线过半"),
        by=c["wang"],
    )
    clock.set(_at(4, 12))
    engine.execute(StartSupervision(consultation=cid), by=c["wang"])
    clock.set(_at(4, 20))
    engine.execute(
        Inspect(consultation=cid, passed=False, findings="夜间车辆占用消防通道 cars block the fire lane"),
        by=c["zhou"],
    )
    engine.execute(
        RequestReconsultation(consultation=cid, problems="消防通道被占用，需再次协商 the fire lane is blocked"),
        by=c["zhou"],
    )
    clock.set(_at(4, 25))
    _round(
        engine,
        cid,
        [("li", S, ""), ("zhang", S, ""), ("zhao", S, "增设禁停标线"), ("wu", S, ""), ("liu", S, "")],
        "再次协商：增设消防通道禁停标线 consult again: mark the fire lane",
    )
    clock.set(_at(4, 26))
    engine.execute(
        Decide(
            consultation=cid,
            resolution="保留夜间停车方案，增设消防通道禁停标线",
            measures=(
                Measure(
                    title="划线及消防通道禁停标线 bays and fire-lane markings",
                    owner="zhao",
                    due=_at(5, 20),
                    budget=Decimal("85000"),
                ),
                Measure(title="安装道闸 install the gate", owner="wang", due=_at(5, 31), budget=Decimal("30000")),
            ),
        ),
        by=c["wang"],
    )
    clock.set(_at(4, 27))
    engine.execute(ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL), by=c["sun"])
    clock.set(_at(4, 28))
    engine.execute(
        Publish(consultation=cid, channels=(Channel.NOTICE_BOARD, Channel.ROADMAP), summary="调整方案公示"),
        by=c["wang"],
    )
    clock.set(_at(5, 15))
    engine.execute(
        ReportProgress(consultation=cid, measure=0, percent=100, spent=Decimal("84000"), note="划线完成"),
        by=c["wang"],
    )
    clock.set(_at(5, 25))
    engine.execute(
        ReportProgress(consultation=cid, measure=1, percent=100, spent=Decimal("29500"), note="道闸启用"),
        by=c["wang"],
    )
    clock.set(_at(5, 26))
    engine.execute(RecordFeedback(consultation=cid, satisfaction=5, comment="停车方便了"), by=c["li"])
    engine.execute(RecordFeedback(consultation=cid, satisfaction=4, comment=""), by=c["wu"])
    clock.set(_at(5, 27))
    engine.execute(StartSupervision(consultation=cid), by=c["wang"])
    clock.set(_at(5, 28))
    engine.execute(Inspect(consultation=cid, passed=True, findings="验收通过 signed off"), by=c["zhou"])
    clock.set(_at(5, 29))
    engine.execute(Close(consultation=cid, summary="办结 done"), by=c["wang"])
    return cid
