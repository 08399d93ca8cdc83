"""What a resident reads: every refusal code and every name in both languages, in the field's own
words (发布协商公告, 反馈落实, 居民评议, 提请街道督办, ...), with names rather than ids and measures
counted from 1. The code tables are checked against the source, so no code goes without a text and
no text outlives its code."""

from __future__ import annotations

import ast
import importlib
import re
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

import pytest

from consultflow import (
    Actor,
    Carrier,
    Catalogue,
    CloseRound,
    ConsensusRule,
    Decide,
    Engine,
    Event,
    Form,
    Measure,
    MemoryDirectory,
    Notify,
    OpenRound,
    Propose,
    Publish,
    RecordOpinion,
    Refused,
    RequestReconsultation,
    ReviewLegality,
    Role,
    SimulatedClock,
    Stance,
    StartSupervision,
    State,
    Trigger,
    Verdict,
    six_step,
)
from consultflow.i18n import (
    MESSAGES,
    NAME_TABLES,
    action_name,
    event_name,
    message,
    refusals_table,
    role_label,
    role_name,
    state_name,
)
from consultflow.steps import STEPS
from consultflow.timeline import WORDS, format_timeline
from consultflow.vocabulary import Ballot, Body, Channel, ProjectType

SRC = Path(__file__).resolve().parents[1] / "src" / "consultflow"
DOCS = Path(__file__).resolve().parents[1] / "docs"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z]+")


# ---- the source: which codes can be returned ---------------------------------------------------------


def _failure_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "Failure")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "Failure")
        )
    ]


def _code(call: ast.Call, path: Path) -> str:
    assert call.args, f"{path.name}:{call.lineno}: Failure() without a code"
    first = call.args[0]
    literal = first.value if isinstance(first, ast.Constant) else None
    assert isinstance(literal, str), f"{path.name}:{call.lineno}: a code is a string literal, so its text is checked"
    return literal


def _data_keys(call: ast.Call) -> set[str] | None:
    """The keys of a ``Failure(code, {...})`` data literal; ``None`` when the data is not one."""
    if len(call.args) < 2:
        return set()
    data = call.args[1]
    if not isinstance(data, ast.Dict) or any(k is None for k in data.keys):
        return None
    keys = {k.value for k in data.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return keys if len(keys) == len(data.keys) else None


STEP_MODULES = sorted(p for p in (SRC / "steps").glob("*.py") if p.stem not in ("__init__", "base"))
CORE_CODES = frozenset(_code(c, SRC / "core.py") for c in _failure_calls(SRC / "core.py"))


def _declared(module: str) -> set[str]:
    step = importlib.import_module(f"consultflow.steps.{module}").STEP
    return {code for guard in step.guards for code in guard.codes}


def test_the_core_returns_the_codes_the_brief_names() -> None:
    # not_taking_part: the core's own answer to someone outside a step open to whoever takes part
    # (an opinion, a sign-in), in place of role_not_allowed listing every role
    assert {
        "invalid_in_state",
        "role_not_allowed",
        "not_taking_part",
        "not_the_chair",
        "no_chair_named",
        "no_route",
    } == CORE_CODES


@pytest.mark.parametrize("path", STEP_MODULES, ids=lambda p: p.stem)
def test_every_failure_a_step_returns_is_declared_by_its_guards(path: Path) -> None:
    declared = _declared(path.stem)
    returned = {_code(call, path) for call in _failure_calls(path)}
    assert returned <= declared, f"{path.name} returns codes its guards do not declare: {returned - declared}"
    assert declared <= returned, f"{path.name} declares codes it never returns: {declared - returned}"


def test_every_code_a_step_or_the_core_can_return_has_both_texts_and_no_text_is_unused() -> None:
    codes = {code for step in STEPS for guard in step.guards for code in guard.codes} | CORE_CODES
    assert sorted(codes - set(MESSAGES)) == [], "codes without a text"
    assert sorted(set(MESSAGES) - codes) == [], "texts no step or the core returns"
    for code, (en, zh) in MESSAGES.items():
        assert en.strip(), code
        assert zh.strip(), code


def test_retired_codes_have_no_text() -> None:
    # the first round waits for the announced meeting (before_meeting); nothing is "pending review"
    assert "notice_period" not in MESSAGES
    assert "review_pending" not in MESSAGES
    assert "before_meeting" in MESSAGES


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_texts_of_a_code_use_the_same_placeholders() -> None:
    for code, (en, zh) in MESSAGES.items():
        assert _placeholders(en) == _placeholders(zh), code


@pytest.mark.parametrize("path", [*STEP_MODULES, SRC / "core.py"], ids=lambda p: p.stem)
def test_every_placeholder_is_filled_by_the_data_the_refusal_carries(path: Path) -> None:
    for call in _failure_calls(path):
        code = _code(call, path)
        keys = _data_keys(call)
        if keys is None:
            continue
        filled = keys | {"action"}  # the core adds the action to every refusal
        filled |= {k[: -len("_en")] for k in keys if k.endswith("_en") and f"{k[:-3]}_zh" in keys}
        missing = _placeholders(MESSAGES[code][0]) - filled
        assert not missing, f"{path.name}:{call.lineno} {code} has no data for {missing}"


# ---- names: every word of the vocabulary, in both languages -------------------------------------------

VOCABULARY: Mapping[str, frozenset[str]] = {
    "state": frozenset(s.value for s in State),
    "action": frozenset(t.value for t in Trigger),
    "event": frozenset(e.value for e in Event),
    "role": frozenset(r.value for r in Role),
    "stance": frozenset(s.value for s in Stance),
    "verdict": frozenset(v.value for v in Verdict),
    "rule": frozenset(get_args(ConsensusRule.model_fields["kind"].annotation)),
    "channel": frozenset(c.value for c in Channel),
    "body": frozenset(b.value for b in Body),
    "ballot": frozenset(b.value for b in Ballot),
    "project_type": frozenset(p.value for p in ProjectType),
}


def test_there_is_a_name_table_for_each_vocabulary() -> None:
    assert set(NAME_TABLES) == set(VOCABULARY)


@pytest.mark.parametrize("kind", sorted(VOCABULARY))
def test_every_word_has_a_name_in_both_languages_and_no_table_has_stale_keys(kind: str) -> None:
    table = NAME_TABLES[kind]
    assert sorted(VOCABULARY[kind] - set(table)) == [], f"{kind}s without a name"
    assert sorted(set(table) - VOCABULARY[kind]) == [], f"{kind} names for nothing"
    for key, (en, zh) in table.items():
        assert en.strip(), (kind, key)
        assert zh.strip(), (kind, key)
        assert "_" not in en, (kind, key)  # a name, not the key
    # one name, one word: two keys never read the same
    for lang in (0, 1):
        names = [pair[lang] for pair in table.values()]
        assert len(set(names)) == len(names), (kind, lang)


def _texts() -> list[tuple[str, str, str]]:
    """Every (where, English, Chinese) template a resident can read."""
    out = [(f"message {code}", en, zh) for code, (en, zh) in MESSAGES.items()]
    out += [(f"{kind} {key}", en, zh) for kind, table in NAME_TABLES.items() for key, (en, zh) in table.items()]
    out += [(f"timeline {key}", en, zh) for key, (en, zh) in WORDS.items()]
    return out


@pytest.mark.parametrize(("where", "en", "zh"), _texts(), ids=[t[0] for t in _texts()])
def test_english_text_is_english_and_chinese_text_is_chinese(where: str, en: str, zh: str) -> None:
    assert not CJK.search(en), f"Chinese in the English text of {where}: {en!r}"
    bare = re.sub(r"\{[^}]*\}", "", zh)
    assert not LATIN_WORD.search(bare), f"English in the Chinese text of {where}: {zh!r}"


def test_the_field_s_own_words() -> None:
    assert action_name("notify", "zh") == "发布协商公告"
    assert event_name("notified", "zh") == "发布协商公告"
    assert event_name("round_opened", "zh", {"round": 1}) == "开始第1轮协商"
    assert event_name("round_opened", "en", {"round": 2}) == "round 2 opened"
    assert state_name("feedback", "zh") == "反馈落实"
    assert action_name("record_feedback", "zh") == "居民评议"
    assert event_name("feedback_received", "zh") == "满意度评价"
    assert action_name("escalate", "zh") == "提请街道督办"
    assert event_name("escalated", "zh") == "提请街道督办"
    assert state_name("escalated", "zh") == "已提请街道督办"
    assert role_name("property_management", "zh") == "物业服务企业"


def test_roles_have_display_names_in_both_languages() -> None:
    assert role_label("rotating_chair", "en") == "rotating chair"
    assert role_label("inspection_group", "en") == "inspection group"
    assert role_label("rotating_chair", "zh") == "轮值主席"
    for role in Role:
        for lang in ("en", "zh"):
            shown = role_label(role.value, lang)
            assert "_" not in shown, (role, shown)
            assert not shown.startswith(("the ", "a ", "an ")), (role, shown)


def test_times_in_refusals_say_their_zone() -> None:
    when = datetime(2026, 3, 11, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    data = {"meeting_at": when}
    assert "北京时间" in message("before_meeting", data, "zh")
    assert "Beijing time" in message("before_meeting", data, "en")
    assert "CST" not in message("before_meeting", data, "en")
    utc = message("before_meeting", data, "en", tz=ZoneInfo("UTC"))
    assert "02:00 UTC" in utc


def test_the_refusals_page_is_the_generated_table() -> None:
    page = (DOCS / "refusals.md").read_text(encoding="utf-8")
    assert refusals_table() in page
    rows = re.findall(r"^\| `([a-z_]+)` \|", page, flags=re.MULTILINE)
    assert rows == list(MESSAGES)  # every code, once, and nothing else


# ---- refusals as residents meet them --------------------------------------------------------------------

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 9, tzinfo=ZONE)
COMMUNITY = "xiaotaoyuan"
TOPIC = "public-affairs/night-parking"
WANG = Actor("wang", roles={Role.COMMITTEE})
SUN = Actor("sun", roles={Role.SUPERVISOR})
ZHOU = Actor("zhou", roles={Role.INSPECTION_GROUP})
RESIDENTS = {n: Actor(n, roles={Role.RESIDENT}) for n in ("li", "wu", "zhang", "zhao")}
CATALOGUE = Catalogue().with_community(
    COMMUNITY, {TOPIC: "夜间停车"}, name="小桃园社区", name_en="Xiaotaoyuan community"
)


class Matter:
    """One consultation through the public API: invitation form, four residents invited (quorum 3)."""

    def __init__(self, **parameters: object) -> None:
        params = {"notice_period": timedelta(0), **parameters}
        self.clock = SimulatedClock(START)
        self.directory = MemoryDirectory()
        for person in (WANG, SUN, ZHOU, *RESIDENTS.values()):
            self.directory.grant(COMMUNITY, person.id, *person.roles)
        self.engine = Engine(
            six_step().variant("i18n", "1", parameters=params),
            clock=self.clock,
            catalogue=CATALOGUE,
            directory=self.directory,
        )
        self.cid = ""

    def propose(self, **fields: object) -> None:
        command = {
            "community": COMMUNITY,
            "topic": TOPIC,
            "title": "夜间停车",
            "carrier": Carrier.DECISION,
            "form": Form.INVITATION,
            "budget": Decimal(100_000),
            **fields,
        }
        self.cid = self.engine.execute(Propose(**command), by=RESIDENTS["li"]).id  # type: ignore[arg-type]

    def consult(self, *who: str) -> None:
        if not self.cid:
            self.propose()
            meeting = self.clock.now() + timedelta(hours=1)
            self.engine.execute(Notify(consultation=self.cid, meeting_at=meeting, invite=tuple(RESIDENTS)), by=WANG)
            self.clock.set(meeting)
        self.engine.execute(OpenRound(consultation=self.cid), by=WANG)
        for name in who:
            self.engine.execute(RecordOpinion(consultation=self.cid, stance=Stance.SUPPORT), by=RESIDENTS[name])
        self.engine.execute(CloseRound(consultation=self.cid), by=WANG)

    def decide(self, by: Actor = WANG) -> None:
        measure = Measure(title="划线", owner="zhao", due=self.clock.now() + timedelta(days=10), budget=Decimal(1000))
        self.engine.execute(Decide(consultation=self.cid, resolution="夜间开放", measures=(measure,)), by=by)

    def refused(self, command: object, by: Actor) -> Refused:
        with pytest.raises(Refused) as info:
            self.engine.execute(command, by=by)  # type: ignore[arg-type]
        return info.value


def test_the_quorum_refusal_says_who_should_and_did_attend() -> None:
    m = Matter()
    m.consult("li", "wu")
    measure = Measure(title="划线", owner="zhao", due=START + timedelta(days=10), budget=Decimal(1000))
    r = m.refused(Decide(consultation=m.cid, resolution="夜间开放", measures=(measure,)), WANG)
    assert r.code == "quorum_not_met"
    assert r.explain("zh") == "到会人数不足：应到至少3人，实到2人"
    assert r.explain("en") == "too few attended: at least 3 needed, 2 attended"


def test_a_reviewer_who_took_the_decision_must_stand_aside() -> None:
    both = Actor("wang", roles={Role.COMMITTEE, Role.SUPERVISOR})
    m = Matter()
    m.directory.grant(COMMUNITY, "wang", Role.SUPERVISOR)  # the directory, not the Actor, gives roles
    m.consult("li", "wu", "zhang")
    m.decide(by=both)
    r = m.refused(ReviewLegality(consultation=m.cid, verdict=Verdict.LAWFUL), both)
    assert r.code == "reviewer_not_independent"
    assert r.explain("zh") == "wang参与了该项决策，应当回避合法性审查"
    assert "stand aside from its legality review" in r.explain("en")


def test_the_round_limit_and_the_budget_cap_are_the_procedures_limits() -> None:
    m = Matter(round_limit=1)
    m.consult("li", "wu", "zhang")
    r = m.refused(OpenRound(consultation=m.cid), WANG)
    assert r.code == "round_limit"
    assert "超出协商规则规定的上限" in r.explain("zh")
    assert "上限（1轮）" in r.explain("zh")
    assert "over the procedure's limit (1)" in r.explain("en")

    capped = Matter(budget_cap=Decimal(300000))  # a per-matter cap is a community's choice (none by default)
    with pytest.raises(Refused) as info:
        capped.propose(budget=Decimal("300000.01"))
    assert info.value.code == "over_budget_cap"
    assert info.value.explain("zh") == "预算300000.01元超出协商规则规定的上限300000.00元"
    assert "over the procedure's limit of 300,000.00" in info.value.explain("en")


def test_the_cycle_limit_says_how_many_cycles_were_held() -> None:
    m = Matter(cycle_limit=1)
    m.consult("li", "wu", "zhang")
    m.decide()
    m.clock.advance(hours=1)
    m.engine.execute(ReviewLegality(consultation=m.cid, verdict=Verdict.LAWFUL), by=SUN)
    m.engine.execute(Publish(consultation=m.cid, channels=(Channel.NOTICE_BOARD,)), by=WANG)
    m.engine.execute(StartSupervision(consultation=m.cid), by=WANG)
    r = m.refused(RequestReconsultation(consultation=m.cid, problems="新问题"), ZHOU)
    assert r.code == "cycle_limit"
    # a cycle is counted with 个 (轮 counts rounds)
    assert r.explain("zh") == "已进行1个协商周期（含再次协商），达到协商规则规定的上限1个，不能再开始新的协商周期"
    assert r.explain("en").startswith("1 cycle(s) of consultation held (re-consultations included), the limit is 1")


def test_topic_and_community_refusals_name_the_community_and_the_category() -> None:
    m = Matter()
    with pytest.raises(Refused) as info:
        m.propose(topic="public-affairs/no-such-thing")
    r = info.value
    assert r.code == "unknown_topic"
    assert r.data["topic"] == "public-affairs/no-such-thing"  # the ids stay for programs
    assert r.explain("zh") == "议题“no-such-thing”（公共事务）不在小桃园社区的协商目录中；请先将其列入二级目录"
    assert "(Public affairs) is not in the catalogue of Xiaotaoyuan community" in r.explain("en")
    assert COMMUNITY not in r.explain("zh")

    with pytest.raises(Refused) as info:
        m.propose(community="elsewhere")
    assert info.value.code == "role_not_allowed"  # li holds no role there: roles are a community's
    m.directory.grant("elsewhere", "li", Role.RESIDENT)
    with pytest.raises(Refused) as info:
        m.propose(community="elsewhere")
    assert info.value.code == "unknown_community"
    assert info.value.explain("zh") == "社区elsewhere尚未制定协商目录；请先制定二级目录"
    assert info.value.explain("en").startswith("community elsewhere has no catalogue yet")

    named = Matter()
    named.engine.catalogue = CATALOGUE.with_community("dongyuan", name="东苑社区")  # a name, no items yet
    named.directory.grant("dongyuan", "li", Role.RESIDENT)
    with pytest.raises(Refused) as info:
        named.propose(community="dongyuan")
    assert info.value.code == "unknown_community"
    assert info.value.explain("zh").startswith("东苑社区尚未制定协商目录")
    assert info.value.explain("en").startswith("东苑社区 has no catalogue yet")  # no English name given


def test_a_missed_measure_deadline_is_shown_numbered_from_one() -> None:
    m = Matter()
    m.consult("li", "wu", "zhang")
    m.decide()
    m.clock.advance(hours=1)
    m.engine.execute(ReviewLegality(consultation=m.cid, verdict=Verdict.LAWFUL), by=SUN)
    m.clock.advance(days=11)
    m.engine.tick()
    entries = m.engine.history(m.cid)
    missed = [e for e in entries if e.event is Event.DEADLINE_MISSED]
    assert [e.data["measure"] for e in missed] == [0]
    en = "\n".join(format_timeline(entries, "en"))
    zh = "\n".join(format_timeline(entries, "zh"))
    assert "measure 1 was due 2026-03-12 10:00" in en
    assert "第1项措施期限2026-03-12 10:00已过" in zh
    assert "measure 0" not in en
    assert "第0项" not in zh


# ---- the catalogue's names --------------------------------------------------------------------------------


def test_the_catalogue_names_communities_and_items() -> None:
    plain = Catalogue().with_community(COMMUNITY, {TOPIC: "夜间停车"})  # the old two-argument form
    assert plain.find(COMMUNITY, TOPIC) is not None
    assert plain.community_name(COMMUNITY, "zh") == "社区xiaotaoyuan"
    assert CATALOGUE.community_name(COMMUNITY, "zh") == "小桃园社区"
    assert CATALOGUE.community_name(COMMUNITY, "en") == "Xiaotaoyuan community"
    assert CATALOGUE.item_name(COMMUNITY, TOPIC) == "夜间停车"
    assert CATALOGUE.topic_name(COMMUNITY, TOPIC, "zh") == "公共事务：夜间停车"
    assert CATALOGUE.topic_name(COMMUNITY, TOPIC, "en") == "Public affairs: 夜间停车"
    assert CATALOGUE.topic_name(COMMUNITY, "policy/fees", "zh") == "政策制定调整：fees"
    # adding items keeps the name; naming again replaces it
    more = CATALOGUE.with_community(COMMUNITY, {"public-benefit/greening": "微绿化"})
    assert more.community_name(COMMUNITY, "zh") == "小桃园社区"
    assert len(more.items) == 2
    renamed = more.with_items().with_community(COMMUNITY, name="小桃园")
    assert renamed.community_name(COMMUNITY, "zh") == "小桃园"
    assert len(renamed.communities) == 1
