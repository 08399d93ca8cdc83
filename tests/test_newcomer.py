"""What a newcomer tripped on: one ``except cf.ConsultflowError`` catches every error the library
raises for bad input, command construction included, and a bad field is explained in Chinese too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import consultflow as cf

MISTAKES: dict[str, Callable[[], Any]] = {
    "a command with a missing field": lambda: cf.Notify(consultation="c"),  # type: ignore[call-arg]
    "a command with a naive time": lambda: cf.Notify(consultation="c", meeting_at=datetime(2026, 3, 1)),
    "a record with a bad field": lambda: cf.Measure(title="", owner="wang", due=datetime(2026, 3, 1)),
    "a command from a dict that is not one": lambda: cf.command_from_dict([1, 2]),  # type: ignore[arg-type]
    "an unknown command": lambda: cf.command_from_dict({"command": "dance"}),
    "a command from a dict with bad fields": lambda: cf.command_from_dict({"command": "notify"}),
    "an actor with an unknown role": lambda: cf.Actor("x", roles={"god"}),
    "an actor whose roles are one text": lambda: cf.Actor("x", roles="resident"),
    "an actor with an id that is no id": lambda: cf.Actor("a b"),
    "an actor with an id that is no text": lambda: cf.Actor(3),
    "a procedure definition that is a list": lambda: cf.Procedure.from_dict([1]),
    "parameters out of range": lambda: cf.Parameters(round_limit=0),
    "a query with a bad limit": lambda: cf.Query(limit=-1),
    "assigning to a frozen command": lambda: setattr(cf.CloseRound(consultation="c"), "consultation", "d"),
}


@pytest.mark.parametrize("build", MISTAKES.values(), ids=MISTAKES.keys())
def test_one_except_catches_every_mistake(build: Callable[[], Any]) -> None:
    with pytest.raises(cf.ConsultflowError) as caught:
        build()
    assert str(caught.value), "the error says what is wrong"


_T = datetime(2026, 3, 1, 10, tzinfo=UTC)
_PROPOSAL = {"command": "propose", "community": "c1", "topic": "a/b", "title": "x", "form": "council"}


def test_a_bad_command_carries_a_code_and_a_chinese_text() -> None:
    with pytest.raises(cf.ValidationError) as caught:
        cf.Propose(community="c1", topic="not a topic", title="", carrier=cf.Carrier.DECISION, form=cf.Form.COUNCIL)
    error = caught.value
    assert error.code == "invalid_fields"
    assert {field for field, _, _ in error.problems} == {"topic", "title"}
    zh = error.explain("zh")
    assert zh.startswith("Propose的字段有误")
    assert "title不能为空" in zh
    assert "topic的格式不正确" in zh
    assert "title" in error.explain("en")
    assert "String should have at least 1 character" in error.explain("en")


def test_the_chinese_text_of_each_kind_of_mistake() -> None:
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: cf.Notify(consultation="c"), "缺少meeting_at"),  # type: ignore[call-arg]
        (lambda: cf.Notify(consultation="c", meeting_at=datetime(2026, 3, 1)), "须注明时区"),
        (lambda: cf.RecordFeedback(consultation="c", satisfaction=6), "satisfaction须不大于5"),
        (lambda: cf.Notify(consultation="c", meeting_at=_T, invite=("li", "li")), "邀请名单重复"),
        (lambda: cf.ReviewLegality(consultation="c", verdict=cf.Verdict.UNLAWFUL), "依法纠正"),
        (lambda: cf.command_from_dict({**_PROPOSAL, "carrier": "banana"}), "carrier须为"),
    ]
    for build, words in cases:
        with pytest.raises(cf.ValidationError) as caught:
            build()
        assert words in caught.value.explain("zh"), (words, caught.value.explain("zh"))


def test_validation_from_stored_data_keeps_pydantics_own_path() -> None:
    # Records read back from a store go through model_validate: the wrapper for user construction
    # must not run there (it would wrap errors twice and slow every load).
    with pytest.raises(cf.ValidationError) as caught:
        cf.command_from_dict({"command": "notify", "consultation": "c"})
    assert [e["loc"] for e in caught.value.errors()] == [("meeting_at",)]
    assert cf.Measure.__pydantic_custom_init__ is False
