"""Every error the library raises is a typed ``ConsultflowError`` with words a person can read, in
Chinese too where a resident may read it; and definitions cannot slip a step past the legality review."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

import consultflow as cf
from consultflow.steps import default_transitions

TYPED: dict[str, Callable[[], Any]] = {
    "a naive start for a simulated clock": lambda: cf.SimulatedClock(datetime(2026, 3, 1)),
    "text as a start for a simulated clock": lambda: cf.SimulatedClock("2026"),  # type: ignore[arg-type]
    "a simulated clock moved back": lambda: cf.SimulatedClock().advance(hours=-1),
    "a simulated clock set back": lambda: cf.SimulatedClock().set(
        datetime(2000, 1, 1, tzinfo=cf.SimulatedClock().now().tzinfo)
    ),
    "a language the library does not speak": lambda: cf.Refused(
        "no_route", guard="route", data={"action": "decide"}
    ).explain("fr"),
    "a store path that is no path": lambda: cf.SQLiteStore(3),  # type: ignore[arg-type]
    "a command parsed from bad JSON": lambda: cf.Propose.model_validate_json('{"community": 1}'),
    "a record validated from bad data": lambda: cf.Measure.model_validate({"title": "t"}),
    "a variant with bad parameters": lambda: cf.six_step().variant("v", "1", parameters={"round_limit": 0}),
    "a variant with an unknown parameter": lambda: cf.six_step().variant("v", "1", parameters={"rounds": 2}),
    "a variant with the old keyword": lambda: cf.six_step().variant("v", "1", rules={"round_limit": 2}),
}


@pytest.mark.parametrize("build", TYPED.values(), ids=TYPED.keys())
def test_every_mistake_is_a_consultflow_error(build: Callable[[], Any]) -> None:
    with pytest.raises(cf.ConsultflowError) as caught:
        build()
    assert str(caught.value)
    assert caught.value.code  # every error names its kind for programs


def test_the_old_keyword_says_what_it_is_called_now() -> None:
    with pytest.raises(cf.InvalidInput, match="'rules' is called 'parameters' now"):
        cf.six_step().variant("v", "1", rules={"round_limit": 2})


def test_bad_commands_from_data_carry_a_code_and_chinese() -> None:
    with pytest.raises(cf.InvalidInput) as caught:
        cf.command_from_dict({"command": "dance"})
    assert caught.value.code == "unknown_command"
    assert "未知的命令" in caught.value.explain("zh")
    assert "mark_overdue" not in str(caught.value)  # the clock's own step is not offered to callers
    with pytest.raises(cf.InvalidInput) as caught:
        cf.command_from_dict({"command": "mark_overdue", "consultation": "c"})
    assert caught.value.code == "unknown_command"
    with pytest.raises(cf.InvalidInput) as caught:
        cf.command_from_dict([1])  # type: ignore[arg-type]
    assert caught.value.code == "not_a_command"
    assert "命令" in caught.value.explain("zh")


def test_the_chinese_of_a_bad_field_has_no_english_left() -> None:
    cases: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: cf.RecordOpinion.model_validate({"consultation": "c", "stance": "maybe"}),
            "stance须为以下之一：'support'、'oppose'、'abstain'、'amend'",
        ),
        (lambda: setattr(cf.CloseRound(consultation="c"), "summary", "x"), "summary不可修改"),
        (
            lambda: cf.Parameters(notice_period=timedelta(days=30), decision_deadline=timedelta(days=10)),
            "决策期限须长于告知期",
        ),
    ]
    for build, words in cases:
        with pytest.raises(cf.ValidationError) as caught:
            build()
        zh = caught.value.explain("zh")
        assert words in zh, zh
        assert "Value error" not in zh


def test_items_of_a_list_are_numbered_from_one() -> None:
    with pytest.raises(cf.ValidationError) as caught:
        cf.Decide.model_validate({"consultation": "c", "resolution": "r", "measures": [{"title": "t"}]})
    fields = {field for field, _, _ in caught.value.problems}
    assert fields == {"measures#1.owner", "measures#1.due"}
    assert "measures#1.owner" in caught.value.explain("zh")


def test_a_definition_cannot_publish_a_decision_the_review_has_not_passed() -> None:
    rows = [
        *default_transitions(),
        cf.Transition(trigger=cf.Trigger.PUBLISH, source="decided", target=None, roles=frozenset({cf.Role.COMMITTEE})),
    ]
    with pytest.raises(cf.ProcedureDefinitionError) as caught:
        cf.Procedure("bent", "1", transitions=rows)
    assert any("publish from decided acts on a decision that is not in force" in p for p in caught.value.problems)


def test_the_dot_diagram_keeps_chinese_names() -> None:
    text = cf.six_step().variant("小桃园社区协商规程", "1").dot()
    assert text.startswith('digraph "小桃园社区协商规程 1" {')
    assert "\\u" not in text
