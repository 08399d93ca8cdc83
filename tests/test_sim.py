"""consultflow.sim: scenarios run on the real rules, reproducible serial or parallel, aggregates
that match hand-computed values, validation, every log verified, the CLI, sweeps, calibration."""

from __future__ import annotations

import importlib
import importlib.util
import json
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import consultflow as cf
from consultflow import sim
from consultflow.cli import main
from consultflow.core import seal
from consultflow.sim.people import stance_of
from consultflow.sim.runner import arrivals

HAS_PANDAS = importlib.util.find_spec("pandas") is not None
HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_pandas = pytest.mark.skipif(not HAS_PANDAS, reason="needs the sim extra (pandas): pip install -e '.[sim]'")


def small(**changes: object) -> sim.Scenario:
    """Three communities in two sub-districts, two months: every path of the procedure shows up."""
    base = sim.Scenario(
        name="small",
        communities=3,
        sub_districts=2,
        months=2,
        arrivals={"public-benefit": 3.0, "public-affairs": 2.0},
        unlawful=0.15,
        new_problem=0.15,
        rejected=0.1,
        withdrawn=0.05,
        opinion=sim.OpinionModel(mean=0.1, spread=0.6),
    )
    return base.replace(**changes) if changes else base


def certain() -> sim.Scenario:
    """Everything certain: every consultation a council decision with one round table of the same
    five people, all in support, one measure of 8,000 yuan, all of it spent, nothing else."""
    return sim.Scenario(
        name="certain",
        communities=1,
        months=3,
        arrivals={"public-benefit": 2.0},
        forms={cf.Form.COUNCIL: 1.0},
        carriers={cf.Carrier.DECISION: 1.0},
        formats={cf.MeetingFormat.ROUND_TABLE: 1.0},
        major=0.0,
        rejected=0.0,
        withdrawn=0.0,
        unlawful=0.0,
        new_problem=0.0,
        feedback=0,
        attendance=sim.Turnout(invited_min=5, invited_max=5, show_up=1.0, crowd=0.0, online_share=0.0),
        opinion=sim.OpinionModel(mean=0.9, spread=0.0, noise=0.0),
        funds=sim.Funds(measures_min=1, measures_max=1, measure_budget=Decimal(8000), budget_spread=0.0, spent_min=1.0),
    )


# ---- reproducibility ----------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_ones() -> None:
    scenario = small()
    first, again, other = sim.simulate(scenario, 7), sim.simulate(scenario, 7), sim.simulate(scenario, 8)
    assert len(first) > 20
    assert first.to_csv() == again.to_csv()
    assert first.digest() == again.digest()
    assert first.digest() != other.digest()


def test_a_process_pool_gives_the_same_bytes_as_serial() -> None:
    scenario = small()
    serial = sim.simulate(scenario, 11)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = sim.simulate(scenario, 11, executor=pool, chunks=3)
        split_otherwise = sim.simulate(scenario, 11, executor=pool, chunks=2)
    assert parallel.to_csv() == serial.to_csv() == split_otherwise.to_csv()


@pytest.mark.skipif(not HAS_DASK, reason="needs the dask extra: pip install -e '.[dask]'")
def test_a_dask_local_cluster_gives_the_same_bytes_as_serial() -> None:
    distributed: Any = importlib.import_module("distributed")  # untyped: reached through Any

    scenario = small()
    serial = sim.simulate(scenario, 5)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        executor = client.get_executor()
        on_dask = sim.simulate(scenario, 5, executor=executor, chunks=3)
        swept = sim.sweep(scenario, {"parameters.round_limit": [1, 3]}, seeds=[5], executor=executor)
    assert on_dask.to_csv() == serial.to_csv()
    assert swept.rows == sim.sweep(scenario, {"parameters.round_limit": [1, 3]}, seeds=[5]).rows


def test_ids_derive_from_the_seed_and_the_community() -> None:
    scenario = small()
    spec = scenario.community_specs()[1]
    ids = [a.id for a in arrivals(scenario, 3, spec, 1)]
    assert ids == [a.id for a in arrivals(scenario, 3, spec, 1)]
    assert all(i.startswith(f"{spec.id}-2016") for i in ids)
    assert ids != [a.id for a in arrivals(scenario, 4, spec, 1)] or len(ids) < 2


# ---- the real rules -------------------------------------------------------------------------------------


def test_every_simulated_log_verifies_and_lazy_chaining_gives_the_engines_hashes() -> None:
    scenario = small()
    lazy = sim.simulate(scenario, 3, keep_logs=True)
    eager = sim.simulate(scenario, 3, keep_logs=True, lazy=False)
    assert lazy.logs is not None
    assert eager.logs is not None
    assert lazy.to_csv() == eager.to_csv()
    assert set(lazy.logs) == {o.id for o in lazy.outcomes}
    for outcome in lazy.outcomes:
        entries = lazy.logs[outcome.id]
        assert len(entries) == outcome.steps
        assert cf.verify(entries, head=entries[-1].hash, version=outcome.steps).ok
        assert [e.hash for e in entries] == [e.hash for e in eager.logs[outcome.id]]
        # the inputs a lazy step made only when sealed are the ones the eager core wrote
        assert [e.input for e in entries] == [e.input for e in eager.logs[outcome.id]]
    endings = {o.ending for o in lazy.outcomes}
    assert {"done", "rejected"} <= endings
    assert any(o.unlawful for o in lazy.outcomes)  # 依法纠正 happened, through the core's own route
    assert any(o.cycles > 1 for o in lazy.outcomes)  # 再次协商 or a resumed escalation


def test_a_lazy_step_leaves_its_input_to_seal() -> None:
    # the step's input is the log's alone: a lazy step makes it when the log is sealed, the same
    procedure = cf.six_step()
    catalogue = cf.Catalogue().with_community("c01", {"public-affairs/parking": "停车"})
    wang = cf.Actor("wang", roles={"resident"})
    ctx = cf.Context(now=datetime(2026, 3, 1, 9, tzinfo=UTC), actor=wang, new_id="c-1", catalogue=catalogue)
    propose = cf.Propose(
        community="c01",
        topic="public-affairs/parking",
        title="停车难",
        carrier=cf.Carrier.DECISION,
        form=cf.Form.COUNCIL,
    )
    eager = cf.apply(procedure, None, propose, ctx)
    lazy = cf.apply(procedure, None, propose, ctx, lazy=True)
    assert isinstance(eager, cf.Step)
    assert isinstance(lazy, cf.Step)
    assert eager.pending_input is None
    assert eager.entries[0].input is not None
    assert lazy.entries[0].input is None
    assert lazy.pending_input is not None
    assert lazy.pending_input() == eager.entries[0].input
    assert seal([lazy]) == eager.entries


def test_through_the_engine_the_same_scenario_gives_the_same_table_and_the_same_hashes() -> None:
    # the baseline runs every command validated through Engine.run on a MemoryStore with a
    # MemoryDirectory, ticking the engine's clock: the simulation's table and logs are the engine's
    from consultflow.sim.baseline import simulate_with_engine
    from consultflow.sim.runner import simulate_communities

    # slow enough for deadlines to pass; half the matters major, so a body votes on them (表决)
    scenario = small(major=0.5, **{"times.between_rounds": 20.0})
    fast = simulate_communities(scenario, 6, range(3), keep_logs=True)
    engine = simulate_with_engine(scenario, 6, range(3), keep_logs=True)
    assert [row[0] for row in fast] == [row[0] for row in engine]
    for (_, mine), (_, theirs) in zip(fast, engine, strict=True):
        assert [e.hash for e in mine] == [e.hash for e in theirs]
    events = {e.event for _, log in fast for e in log}
    assert cf.Event.DEADLINE_MISSED in events  # the clock's step ran (议而不决), as Engine.tick does
    assert {cf.Event.VOTE_CALLED, cf.Event.VOTE_CAST, cf.Event.VOTE_CLOSED} <= events


def test_a_body_decides_major_matters_by_its_members_vote() -> None:
    scenario = small(major=1.0, carriers={cf.Carrier.DECISION: 1.0}, rejected=0.0, withdrawn=0.0, unlawful=0.0)
    assert scenario.procedure().parameters.major_decided_by is cf.Body.REPRESENTATIVES_MEETING
    results = sim.simulate(scenario, 4, keep_logs=True)
    assert results.logs is not None
    decided = [o for o in results.outcomes if o.days_to_decision is not None]
    assert decided
    for o in decided:
        log = results.logs[o.id]
        called = [e for e in log if e.event is cf.Event.VOTE_CALLED]
        assert called
        assert called[-1].data["members"] == 20  # the community's resident representatives
        assert any(e.event is cf.Event.DECIDED and e.data.get("body") == "representatives_meeting" for e in log)
    committee = sim.simulate(scenario.replace(parameters={"major_decided_by": "committee"}), 4, keep_logs=True)
    assert committee.logs is not None
    assert not any(e.event is cf.Event.VOTE_CALLED for log in committee.logs.values() for e in log)


def test_the_procedure_decides_not_the_simulation_round_limit_one_escalates_disagreement() -> None:
    scenario = small(
        carriers={"decision": 1.0, "coordination": 1.0},  # hearings and advice conclude without consensus
        **{"parameters.round_limit": 1, "opinion.mean": -0.9, "opinion.spread": 0.0, "opinion.noise": 0.0},
    )
    results = sim.simulate(scenario, 1, keep_logs=True)
    assert results.logs is not None
    held = [o for o in results.outcomes if o.rounds]
    assert held
    for o in held:
        assert o.days_to_decision is None  # nobody ever supported: no decision took effect
        assert o.escalations >= 1
        events = [e.event for e in results.logs[o.id]]
        assert cf.Event.ESCALATED in events  # the core's route at the round limit, not the simulation's


def test_a_refused_command_is_counted_and_changes_nothing() -> None:
    # a major matter needs residents in a round (major_needs_residents); with no resident invited
    # and no crowd, every decision is refused by the core, and the refusals are counted
    scenario = small(
        major=1.0,
        carriers={"decision": 1.0},
        forms={"council": 1.0},
        rejected=0.0,
        withdrawn=0.0,
        **{
            "people.representatives": 0,
            "people.property_management": 0,
            "people.units": 0,
            "people.social_organisations": 0,
            "people.council": 9,
            "attendance.crowd": 0.0,
            "attendance.invited_min": 5,
            "attendance.invited_max": 5,
            "opinion.mean": 0.9,
            "opinion.spread": 0.0,
        },
    )
    results = sim.simulate(scenario, 2, keep_logs=True)
    assert results.logs is not None
    assert all(o.refusals >= 1 for o in results.outcomes)
    assert all(o.days_to_decision is None for o in results.outcomes)
    for o in results.outcomes:
        assert cf.Event.DECIDED not in [e.event for e in results.logs[o.id]]


def test_rounds_closed_to_residents_bring_no_crowd() -> None:
    results = sim.simulate(small(**{"parameters.round_open_to": "invitees"}), 4)
    for o in results.outcomes:
        assert o.participants <= 10  # at most the nine invited and one think-tank member


# ---- aggregates against hand-computed values ---------------------------------------------------------------


def test_a_certain_scenario_gives_the_hand_computed_figures() -> None:
    results = sim.simulate(certain(), 0, keep_logs=True)
    n = len(results)
    assert 2 <= n <= 37  # within one fund, so no budget is cut
    for o in results.outcomes:
        assert (o.state, o.ending, o.rounds, o.cycles) == ("closed", "done", 1, 1)
        assert (o.round_table, o.person_times, o.participants, o.online_person_times) == (1, 5, 5, 0)
        assert (o.measures, o.projects, o.budget, o.spent) == (1, 1, Decimal(8000), Decimal("8000.00"))
        # propose, notify, open, 5 opinions, close, decide, review (funds allocated), publish (and its one
        # measure's pledge, 承诺制), supervise, report (funds spent), inspect, close
        assert o.steps == 19
        # notice after a day and a minute, the meeting four days later, seven steps a minute apart,
        # the decision a day after: 6 days and 8 minutes
        assert o.days_to_decision == round(6 + 8 / 1440, 4)
    t = results.totals()
    assert (t.consultations, t.activities, t.round_tables, t.person_times, t.projects) == (n, n, n, 5 * n, n)
    assert t.spent_yuan == Decimal(8000) * n
    assert t.fund_yuan == Decimal("75000.00")  # 300,000 a year, three months
    (year,) = results.by_year()
    assert (year["year"], year["consultations"], year["closed"], year["person_times"]) == (2016, n, n, 5 * n)
    (community,) = results.by_community()
    assert community["spent"] == Decimal(8000) * n
    months = results.aggregate("month")
    assert sum(m["consultations"] for m in months) == n
    assert [m["month"] for m in months] == sorted(m["month"] for m in months)


def test_the_opinion_model_maps_positions_to_stances() -> None:
    model = sim.OpinionModel(threshold=0.2)
    assert [stance_of(x, model).value for x in (0.5, 0.1, -0.1, -0.5)] == ["support", "amend", "amend", "oppose"]
    rng = __import__("random").Random(1)
    moved = sim.move([-1.0, 1.0], sim.OpinionModel(persuasion=0.5, amendment=0.0, noise=0.0), rng)
    assert moved == [-0.5, 0.5]


# ---- validation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unlawful": 1.5}, "unlawful"),
        ({"arrivals": {"no-such-category": 1.0}}, "unknown category"),
        ({"attendance": {"invited_min": 9, "invited_max": 3}}, "invited_max"),
        ({"times": {"notice": 1.0}}, "notice"),
        ({"parameters": {"round_limit": 0}}, "round_limit"),
        ({"parameters": {"major_decided_by": "owners_meeting"}}, "owners"),
        ({"forms": {"council": 0.0}}, "forms"),
        ({"communities": 2, "sub_districts": 5}, "sub-districts"),
        ({"months": 0}, "months"),
        ({"items": {"public-benefit": ("no spaces",)}}, "item"),
        ({"communities": 100_000, "months": 600, "arrivals": {"public-benefit": 1.0}}, "split it"),
        ({"communities": 1_000, "people": {"residents": 100_000}}, "people"),
        ({"attendance": {"crowd": 1e9}}, "crowd"),
        ({"people": {"representatives": 2, "council": 0, "units": 0}}, "may be invited"),
    ],
)
def test_impossible_parameters_get_a_clear_validation_error(changes: dict[str, object], field: str) -> None:
    with pytest.raises(cf.ValidationError) as caught:
        sim.Scenario.model_validate({**sim.Scenario().model_dump(), **changes})
    assert field in str(caught.value)


def test_a_scenario_loads_from_toml_and_a_bad_one_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "toml"\ncommunities = 2\nmonths = 1\n[arrivals]\npublic-benefit = 2.0\n'
        "[parameters]\nround_limit = 5\n[attendance]\ncrowd = 3.0\n",
        encoding="utf-8",
    )
    scenario = sim.Scenario.from_toml(path)
    assert (scenario.name, scenario.procedure().parameters.round_limit, scenario.attendance.crowd) == ("toml", 5, 3.0)
    with pytest.raises(cf.InvalidInput):
        sim.Scenario.from_toml("name = ")
    with pytest.raises(cf.InvalidInput):
        sim.Scenario.from_toml(tmp_path / "missing.toml")
    with pytest.raises(cf.InvalidInput):
        small().replace(**{"nothing.here": 1})
    with pytest.raises(cf.InvalidInput):
        sim.simulate(small(), -1)
    with pytest.raises(cf.InvalidInput):
        sim.preset("nowhere")
    with pytest.raises(cf.InvalidInput, match="seed"):
        sim.sweep(small(), {"parameters.round_limit": [1]}, seeds=[-1])


# ---- the CLI ----------------------------------------------------------------------------------------------


def test_cli_prints_the_same_json_for_any_number_of_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "cli"\ncommunities = 4\nmonths = 2\n', encoding="utf-8")
    assert main(["simulate", "--scenario", str(path), "--seed", "3", "--json"]) == 0
    one = capsys.readouterr()
    assert main(["simulate", "--scenario", str(path), "--seed", "3", "--workers", "2", "--json"]) == 0
    two = capsys.readouterr()
    assert one.out == two.out
    assert "consultations in" in one.err
    assert "2 worker(s)" in two.err
    data = json.loads(one.out)
    keys = {"consultations", "activities", "round_tables", "person_times", "projects", "spent_yuan", "fund_yuan"}
    assert keys <= set(data)
    assert data["fund_yuan"] == 4 * 300_000 * 2 / 12


def test_cli_preset_json_and_calibration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--preset", "gulou-2016", "--seed", "1", "--calibration", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["totals"]["fund_yuan"] == 119 * 300_000
    checks = {c["quantity"]: c for c in report["checks"]}
    assert abs(checks["projects (2016)"]["error"]) <= 0.10
    assert abs(checks["spent, yuan (2016)"]["error"]) <= 0.10
    assert abs(checks["round-table share of activities"]["error"]) <= 0.10
    assert abs(checks["person-times per activity"]["error"]) <= 0.20
    assert "funds.measure_budget" in report["fitted"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--preset", "nowhere"], "unknown preset"),
        (["simulate", "--workers", "0"], "--workers"),
        (["simulate", "--seed", "-3"], "--seed"),
    ],
)
def test_cli_usage_problems_exit_2_without_a_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("consultflow:")
    assert message in err
    assert "Traceback" not in err


def test_cli_a_scenario_that_does_not_validate_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("unlawful = 3.0\n", encoding="utf-8")
    assert main(["simulate", "--scenario", str(path)]) == 2
    assert "unlawful" in capsys.readouterr().err


# ---- sweeps, exports, display ----------------------------------------------------------------------------


def test_a_sweep_is_one_tidy_table_the_same_serial_or_on_a_pool() -> None:
    grid: dict[str, list[float]] = {"parameters.round_limit": [1, 3], "parameters.quorum_ratio": [0.3, 0.8]}
    serial = sim.sweep(small(), grid, seeds=2, progress=False)
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = sim.sweep(small(), grid, seeds=2, executor=pool, progress=False)
    assert serial.rows == pooled.rows
    assert len(serial.rows) == 8
    assert [(r["parameters.round_limit"], r["parameters.quorum_ratio"], r["seed"]) for r in serial.rows][:3] == [
        (1, 0.3, 0),
        (1, 0.3, 1),
        (1, 0.8, 0),
    ]
    by_limit = {lim: [r for r in serial.rows if r["parameters.round_limit"] == lim] for lim in (1, 3)}
    # one round allowed: more matters end escalated than with three
    assert sum(r["escalated_share"] for r in by_limit[1]) > sum(r["escalated_share"] for r in by_limit[3])


@needs_pandas
def test_results_to_pandas_csv_parquet_and_display(tmp_path: Path) -> None:
    pd: Any = importlib.import_module("pandas")

    results = sim.simulate(small(), 9)
    frame = results.to_pandas()
    assert list(frame.columns) == list(sim.COLUMNS)
    assert len(frame) == len(results)
    assert frame["spent"].sum() == pytest.approx(float(results.totals().spent_yuan))
    results.to_parquet(tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert back.equals(frame)
    results.to_csv(tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text(encoding="utf-8") == results.to_csv()
    assert pd.read_csv(tmp_path / "r.csv")["person_times"].tolist() == frame["person_times"].tolist()
    html = results._repr_html_()
    assert "<table>" in html
    assert "small" in html
    assert "seed=9" in repr(results)
    assert f"{len(results)} consultations" in repr(results)


@needs_pandas
def test_plots_are_figures() -> None:
    importlib.import_module("matplotlib").use("Agg")
    results = sim.simulate(small(), 9)
    fig = results.plot_distributions()
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title() == "rounds"
    bars = results.plot_rounds_to_consensus()
    assert bars.axes[0].get_xlabel() == "rounds"
    swept = sim.sweep(small(), {"parameters.round_limit": [1, 2]}, seeds=1, progress=False)
    assert len(swept.plot("parameters.round_limit", "decided_share").axes[0].lines) == 1


def test_timelines_consultations_and_procedures_display_in_a_notebook() -> None:
    results = sim.simulate(small(), 2, keep_logs=True)
    first = results.outcomes[0]
    timeline = results.timeline(first.id)
    assert timeline.verified()
    assert len(timeline.lines()) == first.steps + 1  # a header, then a line per entry
    page = timeline._repr_html_()
    assert "chain verifies" in page
    assert first.id in page
    assert "proposed" in str(timeline)
    with pytest.raises(cf.InvalidInput):
        results.timeline("no-such-id")
    with pytest.raises(cf.InvalidInput):
        sim.simulate(small(), 2).timeline(first.id)
    procedure = small().procedure()
    assert "```mermaid" in procedure._repr_markdown_()
    assert "stateDiagram" in procedure._repr_markdown_()
    from consultflow.testing import Driver

    driver = Driver()
    record = driver.to("closed")
    page = record._repr_html_()
    assert "closed (done)" in page
    assert record.ended_at is not None


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**63 - 1), order=st.permutations([0, 1, 2]), months=st.integers(1, 2))
def test_each_community_comes_out_the_same_whatever_runs_with_it(seed: int, order: list[int], months: int) -> None:
    from consultflow.sim.runner import simulate_communities

    scenario = small(months=months)
    together = simulate_communities(scenario, seed, order, keep_logs=True)
    for index in order:
        alone = simulate_communities(scenario, seed, [index], keep_logs=True)
        community = scenario.community_specs()[index].id
        mine = [row for row in together if row[0].community == community]
        assert [row[0] for row in mine] == [row[0] for row in alone]
        for outcome, log in alone:
            assert cf.verify(log, head=log[-1].hash if log else None, version=outcome.steps).ok


def test_a_progress_bar_when_asked_and_none_when_not() -> None:
    from consultflow.sim.sweep import _progress

    assert _progress(3, False) is None
    bar = _progress(3, True)
    if importlib.util.find_spec("tqdm") is None:
        assert bar is None
    else:
        assert bar.total == 3
        bar.close()


def test_any_procedure_variant_plugs_in() -> None:
    scenario = small()
    by_parameters = sim.simulate(scenario.replace(**{"parameters.round_limit": 1}), 8)
    variant = cf.six_step().variant("six-step-one-round", "1", parameters={"round_limit": 1})
    by_procedure = sim.simulate(scenario, 8, procedure=variant, keep_logs=True)
    assert [o.rounds for o in by_procedure.outcomes] == [o.rounds for o in by_parameters.outcomes]
    assert by_procedure.logs is not None
    proposed = [log[0] for log in by_procedure.logs.values()]
    assert {e.data["procedure"] for e in proposed} == {"six-step-one-round"}
    assert by_procedure.digest() != sim.simulate(scenario, 8).digest()
