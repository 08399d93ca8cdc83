"""The hash-chained log: ``verify`` finds the first entry that was changed, removed, reordered or
foreign, on ``LogEntry`` objects and on their exported dicts; canonical JSON is one stable form."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import consultflow as cf
from consultflow import Event, LogEntry, State, canonical_json, entry_hash, verify
from consultflow.canonical import timestamp
from consultflow.demo import COMMUNITY, TOPIC, demo_directory, demo_engine, demo_procedure, run_story
from consultflow.log import chain_hash, entry_body
from consultflow.testing.driver import Driver

# ---- chains ------------------------------------------------------------------------------------------


@cache
def demo_chain() -> tuple[LogEntry, ...]:
    engine, clock = demo_engine()
    cid = run_story(engine, clock)
    return engine.history(cid)


@cache
def twin_chain() -> tuple[LogEntry, ...]:
    """The same story under another consultation id: every entry has a valid twin elsewhere."""
    catalogue = cf.Catalogue().with_community(COMMUNITY, {TOPIC: "夜间停车"})
    _, clock = demo_engine()
    engine = cf.Engine(
        demo_procedure(),
        clock=clock,
        catalogue=catalogue,
        ids=lambda: "xiaotaoyuan-2026-999",
        directory=demo_directory(),  # the same people in the same roles as the story
    )
    cid = run_story(engine, clock)
    return engine.history(cid)


def test_demo_chain_verifies_as_entries_and_as_dicts() -> None:
    chain = demo_chain()
    head, version = chain[-1].hash, len(chain)
    assert verify(chain, head=head, version=version) == cf.Verification(True, len(chain))
    exported = [e.to_json_dict() for e in chain]
    assert verify(exported, head=head, version=version).ok
    # through real JSON text and back, and as re-validated LogEntry objects
    reread = [json.loads(json.dumps(d, ensure_ascii=False)) for d in exported]
    assert verify(reread, head=head, version=version).ok
    assert verify([LogEntry.from_json_dict(d) for d in reread], head=head, version=version).ok
    # a mixed sequence, and a generator
    mixed = [e if i % 2 else e.to_json_dict() for i, e in enumerate(chain)]
    assert verify(mixed, head=head, version=version).ok
    assert verify(iter(chain)).ok


def test_exported_dict_has_the_documented_shape() -> None:
    e = demo_chain()[1]
    d = e.to_json_dict()
    assert set(d) == {
        "schema_version",
        "consultation",
        "seq",
        "event",
        "from",
        "to",
        "actor",
        "role",
        "at",
        "data",
        "input",
        "record_digest",
        "prev",
        "hash",
        "private",
        "salt",
    }
    assert d["from"] == "proposed"
    assert d["to"] == "notified"
    assert d["prev"] == demo_chain()[0].hash
    assert d["hash"] == entry_hash({k: v for k, v in d.items() if k != "hash"})


# ---- changed entries -------------------------------------------------------------------------------


def _changed(entry: LogEntry, field: str) -> LogEntry:
    """``entry`` with one field given another valid value, its claimed hash untouched."""
    value: Any
    if field == "data":
        value = {**entry.data, "tampered": True}
    elif field == "actor":
        value = entry.actor + "x"
    elif field == "role":
        value = "sub_district" if entry.role != "sub_district" else "committee"
    elif field == "at":
        value = entry.at + timedelta(seconds=1)
    elif field == "event":
        value = Event.CLOSED if entry.event is not Event.CLOSED else Event.REJECTED
    elif field == "source":
        value = State.ESCALATED if entry.source is not State.ESCALATED else State.PROPOSED
    elif field == "target":
        value = State.CLOSED if entry.target is not State.CLOSED else State.ESCALATED
    elif field == "seq":
        value = entry.seq + 100
    elif field == "prev":
        value = "0" * 64 if entry.prev != "0" * 64 else "1" * 64
    elif field == "hash":
        value = ("f" if entry.hash[0] != "f" else "e") + entry.hash[1:]
    elif field == "consultation":
        value = entry.consultation + "-x"
    elif field == "schema_version":
        value = entry.schema_version + 1
    else:  # pragma: no cover
        raise AssertionError(field)
    return entry.model_copy(update={field: value})


FIELDS = (
    "data",
    "actor",
    "role",
    "at",
    "event",
    "source",
    "target",
    "seq",
    "prev",
    "hash",
    "consultation",
    "schema_version",
)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("position", [0, 7, 46])
def test_a_changed_field_is_caught_at_its_entry(field: str, position: int) -> None:
    chain = list(demo_chain())
    chain[position] = _changed(chain[position], field)
    for entries in (chain, [e.to_json_dict() for e in chain]):
        result = verify(entries, head=demo_chain()[-1].hash, version=len(chain))
        assert not result.ok
        assert result.index == position
        assert result.seq == (position + 1 if field != "seq" else position + 101)
        assert result.reason


def test_a_changed_data_value_in_an_export_is_caught() -> None:
    exported = [e.to_json_dict() for e in demo_chain()]
    # the unlawful review's correction, quietly softened
    i = next(i for i, d in enumerate(exported) if d["event"] == "legality_reviewed")
    exported[i] = {**exported[i], "data": {**exported[i]["data"], "verdict": "lawful"}}
    result = verify(exported)
    assert (result.ok, result.index, result.seq) == (False, i, i + 1)
    assert "changed" in result.reason


def test_a_rehashed_forgery_is_caught_at_the_next_link_or_the_head() -> None:
    chain = list(demo_chain())
    forged_body = {**chain[10].to_json_dict(), "actor": "mallory"}
    del forged_body["hash"]
    chain[10] = chain[10].model_copy(update={"actor": "mallory", "hash": entry_hash(forged_body)})
    result = verify(chain)
    assert (result.ok, result.index) == (False, 11)
    assert "link" in result.reason
    # forging the last entry is caught only against the record's head
    tail = list(demo_chain())
    body = {**tail[-1].to_json_dict(), "actor": "mallory"}
    del body["hash"]
    tail[-1] = tail[-1].model_copy(update={"actor": "mallory", "hash": entry_hash(body)})
    assert verify(tail).ok
    result = verify(tail, head=demo_chain()[-1].hash)
    assert (result.ok, result.index) == (False, len(tail) - 1)


# ---- removed, swapped, foreign -----------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 23, 45])
def test_a_removed_entry_is_caught_where_it_was(position: int) -> None:
    chain = list(demo_chain())
    del chain[position]
    result = verify(chain)
    assert (result.ok, result.index, result.seq) == (False, position, position + 2)
    assert "removed or reordered" in result.reason


def test_a_removed_last_entry_needs_the_records_head_and_version() -> None:
    full = demo_chain()
    chain = full[:-1]
    assert verify(chain).ok  # a shorter chain is a valid chain on its own ...
    by_version = verify(chain, version=len(full))
    assert (by_version.ok, by_version.index) == (False, len(full) - 1)
    assert f"version {len(full)}" in by_version.reason
    by_head = verify(chain, head=full[-1].hash)
    assert (by_head.ok, by_head.index) == (False, len(chain) - 1)
    assert "head" in by_head.reason
    assert not verify([], head=full[-1].hash, version=len(full)).ok


@pytest.mark.parametrize(("i", "j"), [(0, 1), (3, 4), (10, 30), (45, 46)])
def test_two_swapped_entries_are_caught_at_the_first(i: int, j: int) -> None:
    chain = list(demo_chain())
    chain[i], chain[j] = chain[j], chain[i]
    for entries in (chain, [e.to_json_dict() for e in chain]):
        result = verify(entries)
        assert (result.ok, result.index) == (False, i)


@pytest.mark.parametrize("position", [1, 20, 46])
def test_an_entry_from_another_consultation_is_caught(position: int) -> None:
    chain = list(demo_chain())
    chain[position] = twin_chain()[position]
    assert chain[position].seq == position + 1  # the twin is a perfectly good entry of its own chain
    result = verify(chain)
    assert (result.ok, result.index) == (False, position)
    assert "another consultation" in result.reason


def test_a_foreign_first_entry_is_caught() -> None:
    chain = list(demo_chain())
    chain[0] = twin_chain()[0]
    result = verify(chain, head=demo_chain()[-1].hash, version=len(chain))
    # Nothing inside entry 0 is wrong on its own; the chain breaks where it meets the real one.
    assert not result.ok
    assert result.index in (0, 1)
    # the twin chain on its own is valid, but not against the record it claims to be
    assert verify(twin_chain()).ok
    assert not verify(twin_chain(), head=demo_chain()[-1].hash).ok


def test_engine_verify_checks_the_stored_chain_and_record() -> None:
    story = Driver()
    story.to("closed")
    result = story.engine.verify(story.cid)
    assert result.ok
    assert result.checked == story.record.version == len(story.history())


# ---- the property: any single mutation is found where it is -------------------------------------------

Mutation = Callable[[list[LogEntry], int], None]


def _swap_with_later(chain: list[LogEntry], i: int, j: int) -> None:
    chain[i], chain[j] = chain[j], chain[i]


@st.composite
def mutated_chains(draw: st.DrawFn) -> tuple[list[LogEntry], int, int, str]:
    """(mutated prefix, its original length, the first mutated position, a label)."""
    full = demo_chain()
    n = draw(st.integers(1, len(full)), label="length")
    chain = list(full[:n])
    kind = draw(st.sampled_from(["change", "remove", "swap", "duplicate", "foreign"]), label="kind")
    if kind == "swap" and n < 2:
        kind = "remove"
    if kind == "foreign" and n < 2:
        kind = "change"
    if kind == "change":
        i = draw(st.integers(0, n - 1), label="position")
        field = draw(st.sampled_from(FIELDS), label="field")
        chain[i] = _changed(chain[i], field)
        return chain, n, i, f"change {field}"
    if kind == "remove":
        i = draw(st.integers(0, n - 1), label="position")
        del chain[i]
        return chain, n, i, "remove"
    if kind == "swap":
        i = draw(st.integers(0, n - 2), label="position")
        j = draw(st.integers(i + 1, n - 1), label="other")
        _swap_with_later(chain, i, j)
        return chain, n, i, "swap"
    if kind == "duplicate":
        i = draw(st.integers(0, n - 1), label="position")
        chain.insert(i + 1, chain[i])
        return chain, n, i + 1, "duplicate"
    i = draw(st.integers(1, n - 1), label="position")
    chain[i] = twin_chain()[i]
    return chain, n, i, "foreign"


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(case=mutated_chains(), exported=st.booleans())
def test_any_single_mutation_is_found_at_its_position(
    case: tuple[list[LogEntry], int, int, str], exported: bool
) -> None:
    chain, n, position, label = case
    original = demo_chain()[:n]
    entries: Sequence[LogEntry | dict[str, Any]] = [e.to_json_dict() for e in chain] if exported else chain
    result = verify(entries, head=original[-1].hash, version=n)
    assert not result.ok, label
    assert result.index == position, (label, result)
    assert result.reason


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_a_flipped_byte_in_the_export_is_found_at_its_entry(data: st.DataObject) -> None:
    chain = demo_chain()
    lines = [canonical_json(e.to_json_dict()) for e in chain]
    i = data.draw(st.integers(0, len(lines) - 1), label="entry")
    raw = bytearray(lines[i])
    pos = data.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    try:
        flipped = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return  # no longer JSON: nobody can mistake it for an entry
    exported = [json.loads(line) for line in lines]
    original = exported[i]
    exported[i] = flipped
    result = verify(exported, head=chain[-1].hash, version=len(chain))
    if flipped == original:  # e.g. the case of a hex digit in a \\u escape: the same value
        assert result.ok
    else:
        assert not result.ok
        assert result.index == i


# ---- canonical JSON -----------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_keeps_chinese() -> None:
    body = {"b": 1, "a": "社区协商", "c": {"z": None, "y": [True, "1.5"]}}
    assert canonical_json(body) == '{"a":"社区协商","b":1,"c":{"y":[true,"1.5"],"z":null}}'.encode()
    assert canonical_json(body) == canonical_json(dict(reversed(list(body.items()))))
    assert b"\\u" not in canonical_json(body)


def test_canonical_json_refuses_nan_and_non_json_values() -> None:
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})
    with pytest.raises(ValueError, match="no floats"):  # decimals are strings in the canonical form
        canonical_json({"x": [1.5]})
    with pytest.raises(TypeError, match="JSON values"):
        canonical_json({"x": object()})


def test_entry_hash_is_sha256_of_the_canonical_form() -> None:
    body = {
        "schema_version": 1,
        "consultation": "c1-2026-001",
        "seq": 1,
        "event": "proposed",
        "from": None,
        "to": "proposed",
        "actor": "li",
        "role": "resident",
        "at": "2026-03-02T09:00:00+08:00",
        "data": {"title": "夜间停车"},
        "prev": "",
    }
    text = (
        '{"actor":"li","at":"2026-03-02T09:00:00+08:00","consultation":"c1-2026-001",'
        '"data":{"title":"夜间停车"},"event":"proposed","from":null,"prev":"","role":"resident",'
        '"schema_version":1,"seq":1,"to":"proposed"}'
    )
    assert canonical_json(body) == text.encode("utf-8")
    assert entry_hash(body) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_log_hash_of_an_entry_does_not_depend_on_how_it_was_built() -> None:
    e = demo_chain()[0]
    rebuilt = LogEntry.from_json_dict(json.loads(canonical_json(e.to_json_dict())))
    assert rebuilt == e
    assert entry_hash(rebuilt.body()) == e.hash
    # the body's time is the canonical one: UTC, microseconds, Z, whatever the clock's zone
    assert e.body()["at"] == e.at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    assert datetime.fromisoformat(e.body()["at"]) == e.at


# ---- the hot path's hash ------------------------------------------------------------------------------------


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
# what effects put into event data: JSON values without floats, keys in sorted order
EVENT_DATA = st.dictionaries(
    TEXT,
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
).map(_sorted_keys)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    data=EVENT_DATA,
    actor=TEXT.filter(bool),
    source=st.none() | st.sampled_from(State),
    step_in=st.none() | EVENT_DATA,
    bound=st.sampled_from(["", "cd" * 32]),
)
def test_chain_hash_is_entry_hash_byte_for_byte(
    data: dict[str, Any], actor: str, source: State | None, step_in: dict[str, Any] | None, bound: str
) -> None:
    at = demo_chain()[3].at
    args = (1, "c1-2026-001", 7, Event.OPINION_RECORDED, source, State.CONSULTING, actor, "resident")
    body = entry_body(*args, at, data, step_in, bound, "ab" * 32)
    assert chain_hash(*args, timestamp(at), data, step_in, bound, "ab" * 32) == entry_hash(body)
