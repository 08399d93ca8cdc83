"""Every error typed, every input bounded (issue 8, point 5): what a web app, a clock, a procedure
file or an attacker hands the library ends in a ``ConsultflowError`` - never a ``UnicodeEncodeError``,
an ``AttributeError``, an ``OverflowError`` or a hang - and the documented limits (``consultflow.limits``)
hold at the boundary. The CLI keeps its exit codes (0 ok, 1 a finding, 2 a usage or input problem)
and prints no traceback and no control or bidi character.

Each "Why" bullet of the issue has a test here that fails on the code the issue was filed against.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import consultflow as cf
from consultflow import Tick, limits
from consultflow.cli import main
from consultflow.storage.memory import MemoryStore
from consultflow.testing.driver import INVITED, Driver
from store_support import Schemas, require_postgres, schemas_fixture

LONE = "c-\ud800"  # what a web framework hands on from a badly encoded URL
FAR = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14)))  # year 10000 in UTC


@pytest.fixture(scope="module")
def schemas() -> Iterator[Schemas]:
    yield from schemas_fixture()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    opened: Any
    if request.param == "memory":
        opened = MemoryStore()
    elif request.param == "sqlite":
        opened = cf.SQLiteStore(tmp_path / "s.db")
    else:
        require_postgres()
        schemas: Schemas = request.getfixturevalue("schemas")
        opened = cf.PostgresStore(schemas.dsn, schema=schemas.new("b"))
    yield opened
    opened.close()


# ---- ids ------------------------------------------------------------------------------------------------------
def test_a_lone_surrogate_id_is_invalid_input_on_every_store(store: Any) -> None:
    Driver(store=store).propose()
    now = datetime(2026, 5, 1, tzinfo=UTC)
    calls: dict[str, Callable[[], object]] = {
        "load": lambda: store.load(LONE),
        "entries": lambda: store.entries(LONE),
        "find": lambda: store.find(cf.Query(community=LONE)),
        "find by topic": lambda: store.find(cf.Query(topic=LONE)),
        "settle": lambda: store.settle(LONE, "delivered", now=now),
    }
    for name, call in calls.items():
        with pytest.raises(cf.InvalidInput, match="Unicode") as caught:
            call()
        assert caught.value.code == "invalid_input", name
    assert store.load("c-001").version == 1  # the store still works


def test_a_lease_beyond_the_year_9999_is_invalid_input_on_every_store(store: Any) -> None:
    Driver(store=store).propose()
    last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    for now, lease_for in ((last, timedelta(minutes=5)), (last, timedelta(days=-1)), (last, 5)):
        with pytest.raises(cf.InvalidInput):
            store.lease(1, now, lease_for)
    assert store.lease(1, datetime(2026, 5, 1, tzinfo=UTC)) == ()  # the store works on


def test_ids_refuse_control_format_and_bidi_characters() -> None:
    for bad in ("c\u202e1", "c\u2066x", "c\u200b1", "c\x901", "c\u00ad1", "c\ufeff1", "c\U000e0041"):
        with pytest.raises(cf.ValidationError):
            cf.Community(id=bad, name="n", sub_district="s")
        with pytest.raises(cf.ValidationError):
            cf.Notify(consultation=bad, meeting_at=datetime(2026, 5, 1, tzinfo=UTC))
    assert cf.Community(id="小桃园-1", name="n", sub_district="s").id == "小桃园-1"


def test_an_id_factory_that_makes_no_id_is_refused_and_writes_nothing() -> None:
    d = Driver(ids=lambda: "c\u202e-1")
    with pytest.raises(cf.InvalidInput, match="id factory"):
        d.propose()
    assert d.engine.find() == ()


def test_commands_from_data_and_roles_are_typed() -> None:
    for data in ({"command": "dance"}, {"nothing": 1}, [1], "propose", None):
        with pytest.raises(cf.InvalidInput):
            cf.command_from_dict(data)  # type: ignore[arg-type]
    with pytest.raises(cf.InvalidInput, match="unknown role"):
        cf.Actor("x", roles={"god"})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    data=_JSON
    | st.fixed_dictionaries(
        {"command": st.sampled_from(["propose", "notify", "decide", "record_opinion"])}, optional={}
    ).flatmap(lambda d: st.dictionaries(st.text(max_size=12), _JSON, max_size=6).map(lambda extra: {**extra, **d}))
)
def test_any_data_is_a_command_or_a_typed_error(data: Any) -> None:
    outcome: object
    try:
        outcome = cf.command_from_dict(data)
    except cf.InvalidInput as exc:  # the only way out besides a command
        outcome = exc.code
    assert isinstance(outcome, cf.Command) or outcome in {"not_a_command", "unknown_command", "invalid_fields"}


# ---- times and durations -----------------------------------------------------------------------------------------
def test_tick_refuses_what_is_no_time() -> None:
    d = Driver()
    d.propose()
    for bad in ("2026-03-20T00:00:00Z", 1_800_000_000, datetime(2026, 3, 20)):
        with pytest.raises(cf.InvalidInput):
            d.engine.tick(bad)  # type: ignore[arg-type]
    assert d.record.version == 1


def test_tick_refuses_a_now_ahead_of_the_clock_unless_told() -> None:
    d = Driver()
    rec = d.propose()
    far = d.clock.now() + timedelta(days=3650)
    with pytest.raises(cf.InvalidInput, match="ahead of the engine's clock"):
        d.engine.tick(far)
    assert d.record.version == 1  # nothing dated in the future was logged
    assert rec.respond_by is not None
    (step,) = d.engine.tick(rec.respond_by, ahead_of_clock=True)  # a simulation may say it means it
    assert step.entries[0].at == rec.respond_by


def test_a_deadline_of_a_million_years_is_refused_when_the_variant_is_built() -> None:
    with pytest.raises(cf.ValidationError, match="proposal_deadline"):
        cf.six_step().variant("v", "1", parameters={"proposal_deadline": timedelta(days=999_999_999)})
    longest = cf.six_step().variant("v", "1", parameters={"decision_deadline": limits.MAX_DEADLINE})
    assert longest.parameters.decision_deadline == timedelta(days=3650)
    with pytest.raises(cf.ValidationError):
        cf.six_step().variant("v", "1", parameters={"review_deadline": limits.MAX_DEADLINE + timedelta(seconds=1)})


def test_a_clock_near_the_year_9999_is_refused_and_writes_nothing() -> None:
    d = Driver(start=datetime(9999, 12, 30, tzinfo=UTC))
    with pytest.raises(cf.InvalidInput, match="clock"):
        d.propose()
    assert d.engine.find() == ()


def test_a_simulated_clock_moved_beyond_the_year_9999_is_refused() -> None:
    clock = cf.SimulatedClock(datetime(9999, 1, 1, tzinfo=UTC))
    for days in (999_999_999, 10**10, 366):
        with pytest.raises(cf.InvalidInput):
            clock.advance(days=days)
    assert clock.now() == datetime(9999, 1, 1, tzinfo=UTC)


def test_the_latest_time_with_the_longest_deadlines_does_not_overflow() -> None:
    last = limits.LATEST - timedelta(microseconds=1)
    proc = cf.six_step().variant(
        "far", "1", parameters={k: limits.MAX_DEADLINE for k in ("proposal_deadline", "decision_deadline")}
    )
    d = Driver(proc, start=last)
    rec = d.propose()
    assert rec.respond_by == last + limits.MAX_DEADLINE


def test_a_meeting_beyond_the_year_9999_is_refused(tmp_path: Path) -> None:
    with pytest.raises(cf.ValidationError, match="meeting_at"):
        cf.Notify(consultation="c-001", meeting_at=FAR)
    with pytest.raises(cf.ValidationError, match="due"):
        cf.Measure(title="t", owner="wang", due=FAR)
    d = Driver(store=cf.SQLiteStore(tmp_path / "m.db"), consultation_day=11)
    d.propose()
    with pytest.raises(cf.ConsultflowError):  # was an OverflowError in the consultation-day guard
        d.notify(meeting_at=FAR)
    assert d.record.version == 1


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))]),
    )
)
def test_any_time_is_taken_or_refused_with_a_typed_error(moment: datetime) -> None:
    inside = limits.EARLIEST <= moment < limits.LATEST
    if inside:
        assert cf.Notify(consultation="c-001", meeting_at=moment).meeting_at == moment
    else:
        with pytest.raises(cf.ValidationError, match="1970-01-01 to 9000-01-01"):
            cf.Notify(consultation="c-001", meeting_at=moment)


@settings(max_examples=30, deadline=None)
@given(now=st.datetimes(timezones=st.just(UTC)) | st.datetimes())
def test_tick_takes_any_datetime_or_refuses_it_typed(now: datetime) -> None:
    d = Driver()
    try:
        result = d.engine.tick(now, ahead_of_clock=True)
    except cf.InvalidInput:
        assert now.tzinfo is None or not limits.EARLIEST <= now < limits.LATEST
    else:
        assert isinstance(result, Tick)


# ---- sizes ----------------------------------------------------------------------------------------------------------
def test_texts_and_lists_stop_at_their_limits() -> None:
    cf.RecordOpinion(consultation="c", stance=cf.Stance.SUPPORT, text="意" * limits.MAX_TEXT)
    with pytest.raises(cf.ValidationError, match="text"):
        cf.RecordOpinion(consultation="c", stance=cf.Stance.SUPPORT, text="意" * (limits.MAX_TEXT + 1))
    many = tuple(f"p{i}" for i in range(limits.MAX_INVITED + 1))
    when = datetime(2026, 5, 1, tzinfo=UTC)
    assert len(cf.Notify(consultation="c", meeting_at=when, invite=many[:-1]).invite) == limits.MAX_INVITED
    with pytest.raises(cf.ValidationError, match="invite"):
        cf.Notify(consultation="c", meeting_at=when, invite=many)
    with pytest.raises(cf.ValidationError, match="people"):
        cf.Invite(consultation="c", people=many)


@settings(max_examples=25, deadline=None)
@given(
    text=st.integers(limits.MAX_TEXT - 2, limits.MAX_TEXT + 2),
    invited=st.integers(limits.MAX_INVITED - 2, limits.MAX_INVITED + 2),
    title=st.integers(198, 202),
    days=st.integers(3648, 3652),
)
def test_sizes_and_durations_around_their_limits(text: int, invited: int, title: int, days: int) -> None:
    def takes(build: Callable[[], object]) -> bool:
        try:
            build()
        except cf.ValidationError:
            return False
        return True

    when = datetime(2026, 5, 1, tzinfo=UTC)
    people = tuple(f"p{i}" for i in range(invited))
    assert takes(lambda: cf.RecordOpinion(consultation="c", stance=cf.Stance.SUPPORT, text="x" * text)) == (
        text <= limits.MAX_TEXT
    )
    assert takes(lambda: cf.Notify(consultation="c", meeting_at=when, invite=people)) == (invited <= limits.MAX_INVITED)
    assert takes(lambda: cf.Invite(consultation="c", people=people)) == (invited <= limits.MAX_INVITED)
    assert takes(
        lambda: cf.Propose(
            community="c", topic="a/b", title="t" * title, carrier=cf.Carrier.DECISION, form=cf.Form.INVITATION
        )
    ) == (title <= 200)
    assert takes(lambda: cf.Parameters(decision_deadline=timedelta(days=days))) == (days <= 3650)


def test_invitations_stop_at_the_limit_over_several_invites(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("consultflow.steps.notify.MAX_INVITED", len(INVITED) + 1)
    d = Driver()
    d.propose()
    d.notify()
    d.run(cf.Invite(consultation=d.cid, people=("liu",)), "wang")  # exactly at the limit
    with pytest.raises(cf.Refused) as refused:
        d.run(cf.Invite(consultation=d.cid, people=("tech",)), "wang")
    assert refused.value.code == "too_many_invited"
    assert "最多邀请" in refused.value.explain("zh")


def test_a_round_stops_at_its_opinion_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("consultflow.steps.consult.MAX_OPINIONS_PER_ROUND", 2)
    d = Driver()
    d.propose()
    d.notify()
    d.serve_notice()
    d.open_round()
    d.opinion("li")
    d.opinion("wu")
    with pytest.raises(cf.Refused) as refused:
        d.opinion("zhang")
    assert refused.value.code == "round_full"
    assert len(d.record.rounds[-1].opinions) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cid=st.text(min_size=0, max_size=140) | st.sampled_from(["", "x" * 128, "x" * 129, "c-001", "\x00"]))
def test_any_text_as_an_id_is_found_not_found_or_invalid(tmp_path_factory: pytest.TempPathFactory, cid: str) -> None:
    for store in (MemoryStore(), cf.SQLiteStore(tmp_path_factory.mktemp("ids") / "s.db")):
        Driver(store=store).propose()
        try:
            assert store.load(cid).id == cid == "c-001"
            assert store.entries(cid)
        except (cf.NotFound, cf.InvalidInput):
            assert cid != "c-001"
        finally:
            store.close()


# ---- a tick goes on past a bad record ------------------------------------------------------------------------------
def test_one_record_under_an_unknown_procedure_does_not_stop_the_tick() -> None:
    store = MemoryStore()
    old = cf.six_step().variant("retired", "1")
    first = Driver(old, store=store, ids=iter(["a-1"]).__next__)
    first.propose()
    second = Driver(store=store, clock=first.clock, ids=iter(["b-2"]).__next__)
    second.propose()
    first.clock.advance(days=30)
    result = second.engine.tick()  # this engine does not know "retired"
    assert [s.record.id for s in result] == ["b-2"]
    (problem,) = result.problems
    assert problem.consultation == "a-1"
    assert isinstance(problem.error, cf.UnknownProcedure)
    assert second.engine.tick() == ()  # b-2 is marked once; a-1 is met again and reported again
    assert [p.consultation for p in second.engine.tick().problems] == ["a-1"]


# ---- nothing a caller holds aliases the store -----------------------------------------------------------------------
def test_entries_handed_out_by_the_memory_store_are_the_callers_own() -> None:
    d = Driver()
    d.propose()
    step = d.engine.run(cf.Notify(consultation=d.cid, meeting_at=d.clock.now() + timedelta(days=4)), by="wang")
    logged = dict(step.entries[0].data)
    step.entries[0].data["venue"] = "forged"
    step.entries[0].data.clear()
    held = d.engine.history(d.cid)
    held[0].data["title"] = "forged"
    held[1].data.clear()
    assert d.engine.verify(d.cid).ok
    assert d.engine.history(d.cid)[0].data.get("title") != "forged"
    assert d.engine.history(d.cid)[1].data == logged


# ---- the command line ----------------------------------------------------------------------------------------------
def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_the_cli_takes_odd_paths_and_ids_as_input_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.db"
    with cf.SQLiteStore(db) as s:
        Driver(store=s).propose()
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    non_utf8 = os.fsdecode(b"c-\xff")  # what argv holds for bytes that are not UTF-8
    for args in (
        ["verify", "--db", "x/" * 3000 + "a.db"],
        ["verify", "--db", "a" * 300 + ".db"],
        ["show", "--db", str(db), non_utf8],
        ["verify", "--db", str(db), non_utf8],
        ["show", "--db", str(db), "c\u202e1"],
        ["procedure", str(deep)],
    ):
        code, out, err = _cli(args, capsys)
        assert code == 2, (args[:2], out, err)
        assert err.startswith("consultflow: ")
        assert err.count("\n") == 1
        assert "\u202e" not in err


def test_the_cli_never_waits_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for args in (["verify", "--db", str(fifo)], ["show", "--db", str(fifo), "c-1"], ["procedure", str(fifo)]):
        done = subprocess.run(
            [sys.executable, "-m", "consultflow", *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, (args, done.stderr)
        assert "not a regular file" in done.stderr
        assert "Traceback" not in done.stderr


def test_the_cli_shows_control_and_bidi_characters_instead_of_printing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    with cf.SQLiteStore(db) as s:
        Driver(store=s).propose(title="\x1b[2J清屏 \u202eevil")
    code, out, _ = _cli(["show", "--db", str(db), "c-001"], capsys)
    assert code == 0
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "<U+001B>[2J清屏 <U+202E>evil" in out
    code, out, _ = _cli(["show", "--db", str(db), "c-001", "--json"], capsys)
    assert code == 0
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "\\u001b[2J清屏 \\u202eevil" in out  # the same JSON value, escaped


def test_a_meeting_far_in_the_future_no_longer_breaks_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.db"
    with cf.SQLiteStore(db) as s:
        d = Driver(store=s)
        d.propose()
        with pytest.raises(cf.ValidationError):
            d.notify(meeting_at=FAR)
    assert _cli(["show", "--db", str(db), "c-001"], capsys)[0] == 0
