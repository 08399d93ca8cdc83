"""The reference story (``consultflow.demo.run_story``) as a test, the ``consultflow demo`` command
and the README's quickstart."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from consultflow import Engine, Event, LogEntry, MemoryDirectory, State, Verdict, verify
from consultflow.cli import main
from consultflow.demo import CAST, GLOSSARY, demo_catalogue, demo_engine, demo_procedure, run_story, story_view
from consultflow.timeline import format_timeline, heading, summary_line
from oracle import check_log_order

README = Path(__file__).resolve().parents[1] / "README.md"
SIX_STEPS = ("proposed", "notified", "consulting", "decided", "feedback", "supervising", "closed")
JSON_KEYS = {"consultation", "seq", "event", "from", "to", "actor", "role", "at", "hash", "prev"}


def _story() -> tuple[list[LogEntry], object]:
    engine, clock = demo_engine()
    cid = run_story(engine, clock)
    return list(engine.history(cid)), engine.get(cid)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo writes consultflow-demo.db in the working directory: keep it out of the repo."""
    monkeypatch.chdir(tmp_path)


def test_the_reference_story_ends_closed_with_a_verified_chain() -> None:
    entries, record = _story()
    assert record.state is State.CLOSED  # type: ignore[attr-defined]
    assert record.version == len(entries) == 77  # type: ignore[attr-defined]
    assert record.cycle == 2  # type: ignore[attr-defined]
    assert verify(entries, head=record.head, version=record.version).ok  # type: ignore[attr-defined]
    check_log_order(entries, demo_procedure())


def test_the_reference_story_visits_every_step_in_order() -> None:
    entries, _ = _story()
    visited = [entries[0].target.value]
    for e in entries[1:]:
        if e.target.value != visited[-1]:
            visited.append(e.target.value)
    assert set(SIX_STEPS) <= set(visited)
    assert visited == [
        "proposed",
        "notified",
        "consulting",
        "decided",
        "consulting",  # 依法纠正: the unlawful decision goes back to consultation
        "decided",
        "feedback",
        "consulting",  # 再次协商: residents found a new problem while it was carried out (反馈落实)
        "decided",
        "feedback",
        "supervising",
        "closed",
    ]
    # the first time each step is reached, they come in the six-step order
    first_seen = [s for i, s in enumerate(visited) if s not in visited[:i]]
    assert first_seen == list(SIX_STEPS)


def test_the_reference_story_runs_both_loops() -> None:
    entries, _ = _story()
    events = [e.event for e in entries]
    unlawful = [
        i
        for i, e in enumerate(entries)
        if e.event is Event.LEGALITY_REVIEWED and e.data["verdict"] == Verdict.UNLAWFUL.value
    ]
    assert len(unlawful) == 1
    (i,) = unlawful
    assert entries[i].target is State.CONSULTING
    assert entries[i].data["legal_basis"]
    assert entries[i].data["correction"]
    # every meeting has its notice: the corrected plan's round is announced first (会议公告), then held
    assert events[i + 1] is Event.MEETING_SCHEDULED
    assert events[i + 2] is Event.ROUND_OPENED
    assert Event.DECIDED not in events[i + 1 : events.index(Event.ROUND_CLOSED, i)]
    assert events.count(Event.RECONSULTATION_REQUESTED) == 1
    j = events.index(Event.RECONSULTATION_REQUESTED)
    assert entries[j].data["cycle"] == 2
    # 微幸福: the unspent part of the decision's money goes back to the pool, in the same step
    assert events[j - 1] is Event.FUNDS_RELEASED
    # 反馈落实中又存在新问题: residents raised it, five together (联名), while it was being carried out
    assert entries[j].source is State.FEEDBACK
    assert entries[j].actor == "wu"
    assert entries[j].data["co_signers"] == ["li", "zhang", "he", "ma"]
    assert events[j - 3 : j - 1] == [Event.PROGRESS_REPORTED, Event.FUNDS_SPENT]  # the work done stays done
    lawful = [e for e in entries if e.event is Event.LEGALITY_REVIEWED and e.data["verdict"] == "lawful"]
    assert len(lawful) == 2


def test_the_reference_story_is_reproducible() -> None:
    first, _ = _story()
    second, _ = _story()
    assert [e.hash for e in first] == [e.hash for e in second]


# ---- the command line ------------------------------------------------------------------------------------


def test_cli_demo_json_prints_one_entry_per_line(capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    assert main(["demo", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    entries, record = _story()
    assert len(lines) == len(entries)
    parsed = [json.loads(line) for line in lines]
    for i, obj in enumerate(parsed):
        assert isinstance(obj, dict)
        assert set(obj) >= JSON_KEYS, JSON_KEYS - set(obj)
        assert obj["seq"] == i + 1
    assert parsed[0]["from"] is None
    assert parsed[0]["prev"] == ""
    assert parsed[-1]["to"] == "closed"
    assert parsed[-1]["hash"] == record.head  # type: ignore[attr-defined]
    assert [p["hash"] for p in parsed] == [e.hash for e in entries]
    assert verify(parsed, head=parsed[-1]["hash"], version=len(parsed)).ok
    # Chinese text is printed as is, not \u-escaped
    assert "夜间停车" in lines[0]


def test_cli_demo_prints_a_timeline(capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Beijing time (UTC+8)" in out  # the timeline's header line names the zone
    assert "77 entries, chain verified; state: closed" in out


def test_cli_demo_in_chinese(capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    assert main(["demo", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "小桃园社区" in out
    assert "77 条记录，哈希链完整" in out
    assert re.search(r"[\u4e00-\u9fff]", out.splitlines()[1])  # the timeline itself, not only the heading


def test_cli_rejects_an_unknown_language(capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--lang", "fr"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_cli_demo_prints_the_story_view(lang: str, capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    assert main(["demo", "--store", "memory", "--lang", lang]) == 0
    out = capsys.readouterr().out
    engine, clock = demo_engine()
    cid = run_story(engine, clock)
    assert out.splitlines()[: len(story_view(engine, cid, lang))] == story_view(engine, cid, lang)  # type: ignore[arg-type]


# ---- what a resident reads: every word in their language ---------------------------------------------------

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
#: The free text of the log: data keys that hold what people wrote (everything else is a code or a figure).
FREE_TEXT = (
    "title",
    "description",
    "venue",
    "text",
    "summary",
    "resolution",
    "legal_basis",
    "correction",
    "education_note",
    "note",
    "comment",
    "findings",
    "problems",
    "reason",
    "instructions",
)


def _view(lang: str) -> list[str]:
    engine, clock = demo_engine()
    return story_view(engine, run_story(engine, clock), lang)  # type: ignore[arg-type]


def test_the_reference_log_is_unchanged() -> None:
    """Display changes never touch the log: the chain's head is the same digest as ever (changed on
    purpose when the story's major matter went to the residents' representatives' vote)."""
    _, record = _story()
    assert record.head == "15609ab83791ba9b98b5bcbb0dfbf4ca7be2776399529095840d45e80195a01a"  # type: ignore[attr-defined]


def test_the_chinese_view_has_no_english_words() -> None:
    lines = _view("zh")
    text = "\n".join(lines)
    # the only Latin letters a Chinese reader meets are people's ids (the log names people by id) and
    # the SHA-256 of the minutes (会议纪要), which no language translates
    text = re.sub(r"(SHA-256 |哈希值)[0-9a-f]{12}", "", text)
    assert set(re.findall(r"[A-Za-z]+", text)) <= set(CAST), set(re.findall(r"[A-Za-z]+", text)) - set(CAST)
    assert lines[0] == "夜间停车难 · 小桃园社区 · 公共事务：夜间停车 · 已办结"
    assert lines[-1] == "77 条记录，哈希链完整；状态：已办结"
    for words in (
        "北京时间",  # the zone, once, in the header line
        "发布协商公告",
        "开始第1轮协商",
        "反馈落实",
        "满意度评价",
        "物业服务企业",
        "第1次决策不合法；依法纠正：收费方案提交业主大会表决",
        "第1项措施 50%（划线施工）",
        "第2个协商周期",
        "验收通过",
        "预算110000.00元",
    ):
        assert words in text, words
    assert text.count("北京时间") == 1


def test_the_english_view_has_no_chinese() -> None:
    lines = _view("en")
    text = "\n".join(lines)
    assert not CJK.search(text), [line for line in lines if CJK.search(line)]
    assert lines[0] == "Night parking · Xiaotaoyuan community · Public affairs: night parking · closed"
    assert lines[-1] == "77 entries, chain verified; state: closed"
    # roles by their display names, never their keys
    assert "chen (rotating chair)" in text
    assert "zhou (inspection group)" in text
    assert "_" not in text
    for words in ("Beijing time (UTC+8)", "round 1 opened", "decision 1 unlawful", "passed", "consultation cycle 2"):
        assert words in text, words
    assert text.count("Beijing time") == 1


def test_every_story_text_is_in_the_glossary() -> None:
    entries, _ = _story()
    written: set[str] = set()
    for e in entries:
        for key in FREE_TEXT:
            value = e.data.get(key)
            if isinstance(value, str) and value:
                written.add(value)
        measures = e.data.get("measures", [])
        assert isinstance(measures, list)
        for m in measures:
            assert isinstance(m, dict)
            assert isinstance(m["title"], str)
            written.add(m["title"])
    written |= {item.name for item in demo_catalogue().items}
    assert sorted(written - set(GLOSSARY)) == []
    for logged, (en, zh) in GLOSSARY.items():
        assert not CJK.search(en), logged
        assert not re.search(r"[A-Za-z]", zh), logged


def _cells(line: str) -> list[str]:
    """A line as terminal cells: a wide character fills two (its second half is a non-space mark)."""
    cells: list[str] = []
    for ch in line:
        cells.append(ch)
        if unicodedata.east_asian_width(ch) in "WF":
            cells.append("\0")
    return cells


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_timeline_columns_line_up(lang: str) -> None:
    entries, _ = _story()
    lines = format_timeline(entries, lang, GLOSSARY)  # type: ignore[arg-type]
    header = _cells(lines[0])
    starts = [c for c in range(2, len(header)) if header[c - 2 : c] == [" ", " "] and header[c] != " "]
    assert len(starts) == 5, lines[0]  # time, event, stage, who, details
    seq_end = starts[0] - 3
    for line in lines:
        cells = _cells(line)
        assert cells[seq_end] != " ", line  # numbers are right-aligned
        assert cells[seq_end + 1 : starts[0]] == [" ", " "], line
        for c in starts:
            if c >= len(cells):  # an entry without details ends early
                assert c == starts[-1], line
                continue
            assert cells[c - 2 : c] == [" ", " "], (c, line)
            assert cells[c] != " ", (c, line)


def test_the_timeline_shows_times_in_the_zone_it_is_given() -> None:
    entries, _ = _story()
    utc = format_timeline(entries, "en", GLOSSARY, zone="UTC")
    assert "time (UTC)" in utc[0]
    assert "2026-03-02 01:00" in utc[1]  # 09:00 in Beijing
    assert "时间（UTC）" in format_timeline(entries, "zh", zone="UTC")[0]
    berlin = format_timeline(entries, "en", zone="Europe/Berlin")  # the story spans the clock change
    assert "time (Europe/Berlin)" in berlin[0]
    assert "2026-03-02 02:00" in berlin[1]
    beijing = format_timeline(entries, "zh")
    assert "北京时间" in beijing[0]
    assert "2026-03-02 09:00" in beijing[1]


def test_the_heading_names_community_and_topic_without_a_glossary() -> None:
    engine, clock = demo_engine()
    record = engine.get(run_story(engine, clock))
    title = "夜间停车难 Night parking"  # as logged: no glossary given
    assert heading(record, "zh", engine.catalogue) == f"{title} · 小桃园社区 · 公共事务：夜间停车 · 已办结"
    # without a catalogue: the community's id and the topic's category, still in the reader's language
    assert heading(record, "zh") == f"{title} · 社区xiaotaoyuan · 公共事务：night-parking · 已办结"
    assert heading(record, "en") == f"{title} · community xiaotaoyuan · Public affairs: night-parking · closed"


def test_the_summary_line_names_the_state() -> None:
    assert summary_line(47, True, "closed", "zh") == "47 条记录，哈希链完整；状态：已办结"
    assert summary_line(47, True, "feedback", "zh") == "47 条记录，哈希链完整；状态：反馈落实"
    assert summary_line(3, False, "escalated", "en") == "3 entries, chain BROKEN; state: escalated to the sub-district"
    assert summary_line(1, True, "proposed", "en") == "1 entry, chain verified; state: proposed"


def test_measures_in_the_demo_timeline_are_numbered_from_one() -> None:
    entries, _ = _story()
    en = "\n".join(format_timeline(entries, "en", GLOSSARY))
    zh = "\n".join(format_timeline(entries, "zh", GLOSSARY))
    assert "measure 1 50% (mark the bays)" in en
    assert "measure 2 100% (install the gate)" in en
    assert "第1项措施 50%（划线施工）" in zh
    assert "第2项措施 100%（安装道闸）" in zh
    assert "measure 0" not in en
    assert "第0项" not in zh


# ---- the README ------------------------------------------------------------------------------------------


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _promised_outputs(block: str) -> list[str]:
    """What the README says a ``print(...)  # output`` line prints."""
    return [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+#\s*(.+)$", block, flags=re.MULTILINE)]


def test_readme_quickstart_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = _python_blocks(README.read_text(encoding="utf-8")) if README.exists() else []
    if not blocks:
        pytest.skip("README.md has no ```python quickstart block yet")
    monkeypatch.chdir(tmp_path)  # a quickstart may create a database file
    namespace: dict[str, object] = {"__name__": "readme_quickstart"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    engine = namespace.get("engine")
    # the quickstart grants roles in a directory and acts by person ids, as an app would
    assert isinstance(engine, Engine)
    assert isinstance(engine.directory, MemoryDirectory)
    assert 'by="wang"' in blocks[0]
    assert "cf.Actor(" not in blocks[0]
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    promised = [out for block in blocks for out in _promised_outputs(block)]
    # every output the README promises in a comment is printed, in that order
    rest = iter(printed)
    missing = [out for out in promised if not any(line == out for line in rest)]
    assert missing == [], f"README promises {missing}, the code printed {printed}"


def test_the_story_shows_the_seeds_institutions(capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    """Issue 11, point 8: meetings on consultation day with minutes, an online round, the fund, pledges
    and residents raising a new problem while the measures are carried out, all in ``demo --json``."""
    assert main(["demo", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events = [line["event"] for line in lines]
    for needed in ("meeting_scheduled", "minutes_recorded", "funds_allocated", "funds_spent", "pledge_published"):
        assert needed in events, needed
    _, record = _story()
    meetings = record.meetings  # type: ignore[attr-defined]
    # every meeting of this consultation-day matter fell on the 11th, Beijing time, each with its minutes
    assert [m.at.astimezone(demo_procedure().parameters.zone).day for m in meetings] == [11, 11, 11, 11]
    assert all(m.minutes for m in meetings)
    online = [m for m in meetings if m.format is not None and m.format.value == "online"]
    assert len(online) == 1
    assert online[0].closes_at is not None
    # the fund: two allocations from the 2026 pool, the first one's unspent part given back
    allocations = record.allocations  # type: ignore[attr-defined]
    assert [(a.year, a.amount) for a in allocations] == [(2026, 110000), (2026, 115000)]
    assert allocations[0].released == 70000
    # pledges: each measure of both decisions in force was published as a pledge
    assert sum(1 for e in events if e == "pledge_published") == 4
    raised = next(line for line in lines if line["event"] == "reconsultation_requested")
    assert (raised["from"], raised["actor"]) == ("feedback", "wu")
