"""The canonical writers' fast paths (a writer per type, a layout per record class, digests taken
from the fields a step changed, times cached by value) against the plain definition of the form,
written here from ``consultflow.canonical``'s docstring with nothing but the standard library."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import consultflow as cf
from consultflow.canonical import (
    CASE_FILE_LISTS,
    canonical_json,
    canonical_value,
    fields_digest,
    record_digest,
    remember_digest,
    timestamp,
)
from consultflow.records import Consultation, Opinion, Round, evolve, make
from consultflow.testing import Driver


# ---- the definition, plainly ------------------------------------------------------------------------------
def plain_time(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc:%H:%M:%S}.{utc.microsecond:06d}Z"


def plain_value(value: object) -> Any:
    """The canonical JSON value of ``value``, rule by rule."""
    if isinstance(value, BaseModel):
        return {k: plain_value(v) for k, v in value.__dict__.items()}
    if isinstance(value, Enum):
        return plain_value(value.value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime):
        return plain_time(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain_value(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(plain_value(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def plain_json(value: object) -> bytes:
    return json.dumps(plain_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def plain_digest(record: BaseModel) -> str:
    """The record digest as docs/integrity.md defines it: the record without ``head``, each case-file
    item standing as the SHA-256 of its canonical JSON."""
    body: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key == "head":
            continue
        if key in CASE_FILE_LISTS:
            body[key] = [hashlib.sha256(plain_json(item)).hexdigest() for item in value]
        else:
            body[key] = plain_value(value)
    return hashlib.sha256(plain_json(body)).hexdigest()


# ---- values ---------------------------------------------------------------------------------------------
class Colour(StrEnum):
    RED = "红"
    BLUE = "blue"


class Size(IntEnum):
    SMALL = 1
    LARGE = 2


ZONES = st.one_of(
    st.just(UTC),
    st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    st.integers(-86399, 86399).map(lambda s: timezone(timedelta(seconds=s))),
    st.sampled_from([ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("Europe/London")]),
)
TIMES = st.builds(
    lambda naive, zone, fold: naive.replace(tzinfo=zone, fold=fold),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    ZONES,
    st.integers(0, 1),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    TIMES,
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(Colour),
    st.sampled_from(Size),
    st.sampled_from(cf.State),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
        st.frozensets(st.integers(), max_size=4),  # a set's members are sorted: one kind at a time
        st.frozensets(st.text(max_size=4), max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_canonical_json_and_values_are_the_plain_definition(value: object) -> None:
    assert canonical_json(value) == plain_json(value)
    assert canonical_json(value) == canonical_json(value)  # again, now from every cache
    assert json.dumps(canonical_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == (
        plain_json(value)
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(TIMES, min_size=1, max_size=6))
def test_a_time_cached_by_value_is_the_time_written_afresh(times: list[datetime]) -> None:
    """Equal times in fixed zones share a cached text; times in zones with daylight saving (equal by
    wall clock, an hour apart with ``fold``) do not."""
    for t in times:
        assert timestamp(t) == plain_time(t)
        assert timestamp(t.astimezone(UTC)) == plain_time(t)


def test_a_fold_in_a_zone_with_daylight_saving_is_written_as_its_own_instant() -> None:
    zone = ZoneInfo("America/New_York")
    first, second = (datetime(2025, 11, 2, 1, 30, tzinfo=zone, fold=f) for f in (0, 1))
    assert first == second  # one zone: compared by wall clock
    assert timestamp(first) == "2025-11-02T05:30:00.000000Z"
    assert timestamp(second) == "2025-11-02T06:30:00.000000Z"


# ---- records ----------------------------------------------------------------------------------------------
class Spy(Driver):
    """A driver that keeps every step with the command that made it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps: list[tuple[cf.Command, cf.Step]] = []

    def step(self, command: cf.Command, by: str | cf.Actor) -> cf.Step:
        done = super().step(command, by)
        self.steps.append((command, done))
        return done


TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf")), max_size=12)


@settings(max_examples=25, deadline=None)
@given(
    depth=st.integers(1, 9),
    consensus=st.booleans(),
    texts=st.lists(TEXT, min_size=4, max_size=4),
    zone=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]),
)
def test_every_step_binds_the_plain_digest_and_the_plain_command(
    depth: int, consensus: bool, texts: list[str], zone: timezone
) -> None:
    """The digest a step takes from the fields it changed (``fields_digest``) and the command form
    of its input (``core._command_value``) are the plain definition's, step after step."""
    d = Spy(start=datetime(2026, 3, 2, 9, tzinfo=zone))
    d.propose(description=texts[0])
    if depth > 1:
        d.notify()
    if depth > 2:
        d.hold_round(consensus=consensus)
    if depth > 3:
        d.open_round()
        d.opinion("li", cf.Stance.AMEND, texts[1])
        d.opinion("wu", cf.Stance.SUPPORT, texts[2])
        d.close_round(summary=texts[3] or "小结")
        d.hold_round(consensus=True)
    if depth > 4:
        d.decide()
    if depth > 5:
        d.review(lawful=True)
    if depth > 6:
        d.publish()
    if depth > 7:
        d.start_supervision()
    if depth > 8:
        d.finish_measures()
    assert d.steps
    for command, done in d.steps:
        first, last = done.entries[0], done.entries[-1]
        assert last.record_digest == plain_digest(done.record)
        assert first.input is not None
        assert first.input["command"] == {"command": command.trigger.value, **plain_value(command)}
        assert list(first.input["command"]) == sorted(first.input["command"])
        assert record_digest(done.record) == last.record_digest


def test_a_record_digest_from_a_base_or_cold_is_the_plain_one() -> None:
    """Fields swapped for other objects, a case-file item replaced, a record built with fields the class
    does not have in the same number: the digest is the plain definition's every time."""
    d = Driver()
    d.propose()
    d.notify()
    d.hold_round()
    base = d.record
    assert record_digest(base) == plain_digest(base)
    opinion = make(
        Opinion,
        {
            "participant": "li",
            "role": cf.Role.RESIDENT,
            "stance": cf.Stance.OPPOSE,
            "text": "不同意",
            "at": base.proposed_at,
            "recorded_by": None,
        },
    )
    last = base.rounds[-1]
    changed_round = evolve(last, {"opinions": (*last.opinions, opinion), "summary": "再议"})
    for update in (
        {"title": "新的标题"},
        {"rounds": (*base.rounds[:-1], changed_round)},
        {"budget": Decimal("12.50"), "major": True},
        {"rounds": ()},
    ):
        edited = evolve(base, update)
        assert record_digest(edited, base) == plain_digest(edited)
        assert record_digest(edited) == plain_digest(edited)
    odd = Round.model_construct(number=1, cycle=1, opened_at=base.proposed_at, opened_by="wang")
    assert canonical_json(odd) == plain_json(odd)
    fields = dict(last.__dict__)
    fields.pop("summary")
    fields["extra"] = "x"  # as many fields as a round has, not the same ones
    misfit = make(Round, fields)
    assert canonical_json(misfit) == plain_json(misfit)


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=8))])
def test_a_consultation_built_cold_has_the_plain_digest(zone: timezone) -> None:
    d = Driver(start=datetime(2026, 3, 2, 9, tzinfo=zone))
    d.to("supervising")
    record = Consultation.model_validate_json(d.record.model_dump_json())  # a fresh object: nothing cached
    assert record_digest(record) == plain_digest(record) == d.history()[-1].record_digest


EDITS = st.lists(
    st.tuples(st.sampled_from(["append", "drop", "replace_last", "replace_first", "retitle", "opinion"]), TEXT),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(EDITS)
def test_records_edited_one_after_another_keep_the_plain_digest(edits: list[tuple[str, str]]) -> None:
    """Each record made from the one before (as a step makes it, with only the changed fields new
    objects) has the plain digest: items added, dropped and replaced, tuples that grow inside an item."""
    d = Driver()
    d.propose()
    d.notify()
    d.hold_round(consensus=False)
    d.hold_round()
    before = d.record
    assert record_digest(before) == plain_digest(before)
    for how, text in edits:
        rounds = before.rounds
        last = rounds[-1] if rounds else None
        if how == "append" and last is not None:
            update: dict[str, Any] = {"rounds": (*rounds, evolve(last, {"number": last.number + 1}))}
        elif how == "drop":
            update = {"rounds": rounds[:-1]}
        elif how == "replace_last" and last is not None:
            update = {"rounds": (*rounds[:-1], evolve(last, {"summary": text}))}
        elif how == "replace_first" and rounds:
            update = {"rounds": (evolve(rounds[0], {"agenda": text}), *rounds[1:])}
        elif how == "opinion" and last is not None:
            opinion = evolve(last.opinions[0], {"text": text})
            update = {"rounds": (*rounds[:-1], evolve(last, {"opinions": (*last.opinions, opinion)}))}
        else:
            update = {"title": text.strip() or "标题"}
        values = {**before.__dict__, **update}
        known = fields_digest(Consultation, values, before, update)  # as a step takes it: from what changed
        record = make(Consultation, values)
        assert known[1] == plain_digest(record)
        remember_digest(record, known)
        assert record_digest(record) == known[1]
        other = evolve(before, update)  # the same change found by comparing with the record before
        assert record_digest(other, before) == known[1]
        before = record


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5), st.booleans())
def test_parse_canonical_takes_exactly_the_canonical_bytes(value: dict[str, Any], sort: bool) -> None:
    """``parse_canonical`` checks most rows with the standard library's encoder: it must accept exactly
    what ``canonical_json`` writes (any text, control characters included) and nothing else - another
    key order, a float, spaces."""
    from consultflow.canonical import parse_canonical

    written = json.dumps(value, sort_keys=sort, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        canonical = canonical_json(value)
    except (TypeError, ValueError):  # a float: never canonical
        canonical = None
    parsed, why = parse_canonical(written)
    assert (parsed is not None) == (written == canonical), why
    if canonical is not None:
        assert parse_canonical(canonical)[0] == value
        assert parse_canonical(json.dumps(value, sort_keys=True, ensure_ascii=False).encode())[0] is None or not value
