"""The reference story (``consultflow.demo.run_story``) as a test, the ``consultflow demo`` command
and the README's quickstart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from consultflow import Event, State, Verdict, verify
from consultflow.cli import main
from consultflow.demo import demo_engine, demo_procedure, run_story
from helpers_story import check_log_order

README = Path(__file__).resolve().parents[1] / "README.md"
SIX_STEPS = ("proposed", "notified", "consulting", "decided", "feedback", "supervising", "closed")
JSON_KEYS = {"consultation", "seq", "event", "from", "to", "actor", "role", "at", "hash", "prev"}


def _story() -> tuple[list, object]:
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
    assert record.version == len(entries) == 47  # type: ignore[attr-defined]
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
        "supervising",
        "consulting",  # 再次协商: supervision found a new problem
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
    assert events[i + 1] is Event.ROUND_OPENED
    assert Event.DECIDED not in events[i + 1 : events.index(Event.ROUND_CLOSED, i)]
    assert events.count(Event.RECONSULTATION_REQUESTED) == 1
    j = events.index(Event.RECONSULTATION_REQUESTED)
    assert entries[j].data["cycle"] == 2
    assert events[j - 1] is Event.INSPECTED
    assert entries[j - 1].data["passed"] is False
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
    assert "timeline" in out
    assert "47 entries, chain verified; state: closed" in out


def test_cli_demo_in_chinese(capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    assert main(["demo", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "小桃园社区" in out
    assert "47 条记录，哈希链完整" in out
    assert re.search(r"[\u4e00-\u9fff]", out.splitlines()[1])  # the timeline itself, not only the heading


def test_cli_rejects_an_unknown_language(capsys: pytest.CaptureFixture[str], in_tmp: None) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--lang", "fr"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


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
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    promised = [out for block in blocks for out in _promised_outputs(block)]
    # every output the README promises in a comment is printed, in that order
    rest = iter(printed)
    missing = [out for out in promised if not any(line == out for line in rest)]
    assert missing == [], f"README promises {missing}, the code printed {printed}"
