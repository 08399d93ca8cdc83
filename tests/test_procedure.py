"""Build-time checks of procedure definitions, variants from Python/JSON/TOML, the compiled table
against the ``transitions`` Machine, the JSON form and the diagram."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from transitions import Machine

from consultflow import (
    Decide,
    Procedure,
    ProcedureDefinitionError,
    Role,
    State,
    Transition,
    Trigger,
    six_step,
)
from consultflow.procedure import NEW, default_transitions
from consultflow.steps import GUARDS, ROUTES
from consultflow.testing.driver import CAST, Driver

RuleEdit = Callable[[Transition], Transition | None]


def edited(edit: RuleEdit) -> list[Transition]:
    """The six-step transitions with ``edit`` applied to each (``None`` drops it)."""
    out = []
    for t in default_transitions():
        new = edit(t)
        if new is not None:
            out.append(new)
    return out


def refused(transitions: Iterable[Transition], name: str = "bent") -> ProcedureDefinitionError:
    with pytest.raises(ProcedureDefinitionError) as info:
        Procedure(name, "1", transitions=transitions)
    err = info.value
    assert err.name == name
    assert err.problems, "a refusal must list its problems"
    for p in err.problems:
        assert p in str(err)
    return err


def only_problem(err: ProcedureDefinitionError, *needles: str) -> str:
    """The one problem mentioning every needle."""
    hits = [p for p in err.problems if all(n in p for n in needles)]
    assert hits, f"no problem mentions {needles}: {err.problems}"
    return hits[0]


# ---- the default builds -----------------------------------------------------------------------------


def test_six_step_builds_with_every_state_and_trigger() -> None:
    p = six_step()
    assert p.key == ("six-step", "1")
    assert p is six_step()  # one shared, immutable definition
    sources = {t.source for t in p.transitions}
    targets = {t.target for t in p.transitions if t.target is not None}
    assert {s.value for s in State} <= sources | targets
    assert {t.value for t in Trigger} == {t.trigger.value for t in p.transitions}
    # a fresh build of the same declaration is accepted too
    assert Procedure("again", "1").to_dict()["transitions"] == p.to_dict()["transitions"]


def test_final_states_have_no_way_out() -> None:
    p = six_step()
    for s in (State.CLOSED, State.REJECTED, State.WITHDRAWN):
        assert p.triggers_from(s.value) == ()
    assert p.triggers_from(NEW) == ("propose",)


# ---- refused definitions --------------------------------------------------------------------------


def test_unreachable_state_is_refused() -> None:
    err = refused(edited(lambda t: None if t.trigger is Trigger.REJECT else t))
    assert only_problem(err, "'rejected'", "unreachable")


def test_dead_end_is_refused() -> None:
    err = refused(edited(lambda t: None if t.source == State.ESCALATED else t))
    assert only_problem(err, "'escalated'", "dead end")


def test_unbounded_round_loop_is_refused() -> None:
    def drop_limit(t: Transition) -> Transition:
        if t.trigger is Trigger.OPEN_ROUND and t.source == State.CONSULTING:
            return t.model_copy(update={"guards": tuple(g for g in t.guards if g != "rounds_left")})
        return t

    err = refused(edited(drop_limit))
    problem = only_problem(err, "unbounded loop")
    assert "consulting -> consulting" in problem
    assert "rounds_left" in problem


def test_unbounded_reconsultation_loop_is_refused() -> None:
    def drop_cycles(t: Transition) -> Transition:
        return t.model_copy(update={"guards": tuple(g for g in t.guards if g != "cycles_left")})

    err = refused(edited(drop_cycles))
    assert only_problem(err, "unbounded loop", "cycles_left")


def test_decision_straight_to_feedback_is_refused() -> None:
    def skip_review(t: Transition) -> Transition:
        return t.model_copy(update={"target": State.FEEDBACK.value}) if t.trigger is Trigger.DECIDE else t

    err = refused(edited(skip_review))
    assert only_problem(err, "decide from consulting enters feedback without a lawful review")
    assert only_problem(err, "without a lawful legality review")


def test_effect_entered_by_an_unlawful_route_is_refused() -> None:
    # an unlawful verdict that leads into feedback would let an unlawful decision take effect
    def bent(t: Transition) -> Transition:
        if t.trigger is Trigger.REVIEW and "unlawful" in t.routes:
            return t.model_copy(update={"target": State.FEEDBACK.value})
        return t

    err = refused(edited(bent))
    assert only_problem(err, "review from decided enters feedback without a lawful review")


def test_dropping_the_review_is_refused() -> None:
    err = refused(edited(lambda t: None if t.trigger is Trigger.REVIEW else t))
    assert only_problem(err, "no legality review")


def test_unreviewed_effect_problem_names_the_state_plainly() -> None:
    def skip_review(t: Transition) -> Transition:
        return t.model_copy(update={"target": State.FEEDBACK.value}) if t.trigger is Trigger.DECIDE else t

    err = refused(edited(skip_review))
    assert only_problem(err, "state 'feedback' can be reached without a lawful legality review")


def test_transition_without_roles_is_refused() -> None:
    err = refused(edited(lambda t: t.model_copy(update={"roles": frozenset()}) if t.trigger is Trigger.INSPECT else t))
    assert only_problem(err, "inspect from supervising", "names no roles")


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("guards", ("no_such_guard",), "unknown guard 'no_such_guard'"),
        ("routes", ("no_such_route",), "unknown route 'no_such_route'"),
        ("target", "limbo", "unknown target state 'limbo'"),
        ("source", "limbo", "unknown source state 'limbo'"),
    ],
)
def test_unknown_names_are_refused(field: str, value: Any, needle: str) -> None:
    err = refused(edited(lambda t: t.model_copy(update={field: value}) if t.trigger is Trigger.INSPECT else t))
    assert only_problem(err, needle)


def test_unknown_guard_lists_the_known_ones() -> None:
    err = refused(edited(lambda t: t.model_copy(update={"guards": ("nope",)}) if t.trigger is Trigger.INSPECT else t))
    problem = only_problem(err, "unknown guard")
    for name in GUARDS:
        assert name in problem


def test_every_problem_is_listed_at_once() -> None:
    def two_faults(t: Transition) -> Transition:
        if t.trigger is Trigger.INSPECT:
            return t.model_copy(update={"roles": frozenset()})
        if t.trigger is Trigger.PUBLISH:
            return t.model_copy(update={"guards": ("nope",)})
        return t

    err = refused(edited(two_faults))
    assert only_problem(err, "names no roles")
    assert only_problem(err, "unknown guard 'nope'")
    assert len(err.problems) >= 3  # publish is declared from two states


def test_propose_only_from_new_and_nothing_back_to_new() -> None:
    err = refused(
        edited(lambda t: t.model_copy(update={"source": State.PROPOSED.value}) if t.trigger is Trigger.PROPOSE else t)
    )
    assert only_problem(err, "only 'propose' starts from 'new'")
    err = refused(edited(lambda t: t.model_copy(update={"target": NEW}) if t.trigger is Trigger.REJECT else t))
    assert only_problem(err, "nothing may go back to 'new'")


def test_fallback_option_must_come_last() -> None:
    rows = list(default_transitions())
    i, j = (k for k, t in enumerate(rows) if t.trigger is Trigger.CLOSE_ROUND)
    rows[i], rows[j] = rows[j], rows[i]  # the route-less fallback now comes first
    err = refused(rows)
    assert only_problem(err, "close_round from consulting", "must come last")


def test_two_fallbacks_for_one_trigger_are_refused() -> None:
    rows = list(default_transitions())
    inspect = next(t for t in rows if t.trigger is Trigger.INSPECT)
    err = refused([*rows, inspect])
    assert only_problem(err, "inspect from supervising", "only once")


def test_empty_name_or_version_is_refused() -> None:
    with pytest.raises(ProcedureDefinitionError, match="non-empty name and version"):
        Procedure(" ", "1")
    with pytest.raises(ProcedureDefinitionError, match="non-empty name and version"):
        Procedure("x", "")


# ---- variants ---------------------------------------------------------------------------------------


def test_variant_changes_rules_and_keeps_the_steps() -> None:
    base = six_step()
    v = base.variant("taoyuan", "2", parameters={"round_limit": 2, "consultation_day": 11})
    assert v.key == ("taoyuan", "2")
    assert v.parameters.round_limit == 2
    assert v.parameters.consultation_day == 11
    assert v.parameters.notice_period == base.parameters.notice_period  # untouched parameters kept
    assert v.transitions == base.transitions
    assert base.parameters.round_limit == 3  # the base is not changed


def test_variant_roles_are_enforced_by_the_engine() -> None:
    v = six_step().variant("wc-decides", "1", roles={Trigger.DECIDE: [Role.WORKING_COMMITTEE]})
    assert all(o.roles == {Role.WORKING_COMMITTEE} for o in v.options("consulting", "decide") or ())
    w = Driver(v)
    rec = w.to("consulting_closed")
    cmd = Decide(consultation=rec.id, resolution="x", measures=(w.measure(),))
    refusal = w.engine.explain(cmd, by=CAST["wang"])
    assert refusal is not None
    assert refusal.code == "role_not_allowed"
    assert w.decide(by="wc").state is State.DECIDED


def test_variant_refuses_unknown_trigger_and_role() -> None:
    with pytest.raises(ProcedureDefinitionError) as info:
        six_step().variant("v", "1", roles={"fly": ["committee"]})
    assert "unknown trigger 'fly'" in str(info.value)
    with pytest.raises(ProcedureDefinitionError) as info:
        six_step().variant("v", "1", roles={"decide": ["king"]})
    assert "unknown role" in str(info.value)
    assert "king" in str(info.value)


def test_variant_with_bad_rules_is_refused() -> None:
    with pytest.raises(ValueError, match="round_limit"):
        six_step().variant("v", "1", parameters={"round_limit": 0})
    with pytest.raises(ValueError, match="decision_deadline"):
        six_step().variant("v", "1", parameters={"decision_deadline": timedelta(days=1)})


def test_variant_that_removes_every_role_of_a_trigger_is_refused() -> None:
    with pytest.raises(ProcedureDefinitionError, match="names no roles"):
        six_step().variant("v", "1", roles={"close": []})


# ---- files ------------------------------------------------------------------------------------------


def test_variant_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "taoyuan.json"
    path.write_text(
        json.dumps(
            {
                "name": "taoyuan",
                "version": "3",
                "description": "桃园社区",
                "parameters": {"notice_period": "P5D", "consensus": {"kind": "unanimity"}, "round_limit": 2},
                "roles": {"decide": ["committee", "working_committee"]},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    p = Procedure.from_file(path)
    assert p.key == ("taoyuan", "3")
    assert p.parameters.notice_period == timedelta(days=5)
    assert p.parameters.consensus.kind == "unanimity"
    assert p.parameters.round_limit == 2
    for opt in p.options("consulting", "decide") or ():
        assert opt.roles == {Role.COMMITTEE, Role.WORKING_COMMITTEE}
    assert p.transitions[0].roles == six_step().transitions[0].roles  # other triggers keep their roles


def test_variant_from_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "taoyuan.toml"
    path.write_text(
        """
name = "taoyuan-toml"
version = "1"

[parameters]
notice_period = "P7D"
consultation_day = 11
budget_cap = "50000"

[parameters.consensus]
kind = "no_sustained_objection"

[roles]
inspect = ["inspection_group"]
""",
        encoding="utf-8",
    )
    p = Procedure.from_file(path)
    assert p.key == ("taoyuan-toml", "1")
    assert p.parameters.notice_period == timedelta(days=7)
    assert p.parameters.consultation_day == 11
    assert str(p.parameters.budget_cap) == "50000"
    assert p.parameters.consensus.kind == "no_sustained_objection"
    assert [o.roles for o in p.options("supervising", "inspect") or ()] == [frozenset({Role.INSPECTION_GROUP})]


@pytest.mark.parametrize(
    ("filename", "text", "needle"),
    [
        ("broken.json", '{"name": "x", ', "not valid JSON"),
        ("broken.toml", "name = \n", "not valid TOML"),
        ("noname.json", '{"version": "1"}', "'name' is missing"),
        ("noversion.toml", 'name = "x"\n', "'version' is missing"),
        ("extra.json", '{"name": "x", "version": "1", "colour": "red"}', "unknown keys ['colour']"),
        ("badrule.json", '{"name": "x", "version": "1", "parameters": {"round_limit": 0}}', "parameters.round_limit"),
        ("badrule2.toml", 'name = "x"\nversion = "1"\n[parameters]\nspeed = 3\n', "parameters.speed"),
        ("badzone.json", '{"name": "x", "version": "1", "parameters": {"timezone": "Mars/Base"}}', "Mars/Base"),
        ("badrole.toml", 'name = "x"\nversion = "1"\n[roles]\ndecide = ["king"]\n', "unknown role"),
        ("rolelist.json", '{"name": "x", "version": "1", "roles": ["decide"]}', "'roles' must map"),
        (
            "badtrigger.json",
            '{"name": "x", "version": "1", "transitions": [{"trigger": "fly", "source": "proposed", '
            '"target": null, "roles": ["committee"]}]}',
            "transitions",
        ),
        (
            "noreview.json",
            '{"name": "x", "version": "1", "transitions": [{"trigger": "inspect", "source": "supervising", '
            '"target": null, "roles": ["committee"]}]}',
            "no legality review",
        ),
    ],
)
def test_bad_files_are_refused_clearly(tmp_path: Path, filename: str, text: str, needle: str) -> None:
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProcedureDefinitionError) as info:
        Procedure.from_file(path)
    assert needle in str(info.value)


def test_missing_name_and_version_are_both_listed() -> None:
    with pytest.raises(ProcedureDefinitionError) as info:
        Procedure.from_dict({})
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("list.json", "[1, 2]"),
        ("string.json", '"six-step"'),
        ("transitions.json", '{"name": "x", "version": "1", "transitions": 5}'),
        ("nullroles.json", '{"name": "x", "version": "1", "roles": {"decide": null}}'),
        ("transition5.json", '{"name": "x", "version": "1", "transitions": [5]}'),
    ],
)
def test_badly_shaped_files_are_refused(tmp_path: Path, filename: str, text: str) -> None:
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProcedureDefinitionError):
        Procedure.from_file(path)


# ---- the compiled table and the transitions Machine -----------------------------------------------


def test_compiled_table_agrees_with_the_machine() -> None:
    p = six_step()
    seen = 0
    for trigger, event in p.machine.events.items():
        for source, compiled in event.transitions.items():
            options = p.options(source, trigger)
            assert options is not None, (source, trigger)
            assert len(options) == len(compiled)
            for opt, mt in zip(options, compiled, strict=True):
                assert [c.func for c in mt.conditions] == [*opt.transition.routes, *opt.transition.guards]
                assert (mt.dest or None) == (None if opt.target is None else opt.target.value)
                assert [r.name for r in opt.routes] == list(opt.transition.routes)
                assert [g.name for g in opt.guards] == list(opt.transition.guards)
            seen += 1
    declared = {(t.source, t.trigger.value) for t in p.transitions}
    assert seen == len(declared)
    # nothing in the table the machine does not know about
    for source, trigger in declared:
        assert source in p.machine.events[trigger].transitions
    assert p.options("closed", "decide") is None
    assert p.options("proposed", "no-such-trigger") is None


def test_table_order_equals_the_declaration_order() -> None:
    p = six_step()
    for source, trigger in {(t.source, t.trigger.value) for t in p.transitions}:
        declared = [t for t in p.transitions if t.source == source and t.trigger.value == trigger]
        assert [o.transition for o in p.options(source, trigger) or ()] == declared


class _Model:
    """A throwaway model for a separate transitions Machine: each condition returns what the
    truth table says and logs that it was asked."""

    def __init__(self, names: Iterable[str]) -> None:
        self.truth: dict[str, bool] = {}
        self.asked: list[str] = []
        for name in names:
            setattr(self, name, self._condition(name))

    def _condition(self, name: str) -> Callable[..., bool]:
        def check(*_args: Any, **_kwargs: Any) -> bool:
            self.asked.append(name)
            return self.truth.get(name, True)

        return check


def _table_choice(options: Any, truth: dict[str, bool]) -> tuple[str | None, list[str], bool]:
    """What the compiled table's order gives: (target, conditions asked, taken?)."""
    asked: list[str] = []
    for opt in options:
        ok = True
        for name in [*opt.transition.routes, *opt.transition.guards]:
            asked.append(name)
            if not truth[name]:
                ok = False
                break
        if ok:
            return opt.transition.target, asked, True
    return None, asked, False


def test_table_order_is_transitions_own_evaluation_order() -> None:
    p = six_step()
    data = p.to_dict()
    model = _Model([*GUARDS, *ROUTES])
    machine = Machine(
        model=model,
        states=sorted({NEW, *(s.value for s in State)}),
        initial=NEW,
        transitions=[
            {
                "trigger": t["trigger"],
                "source": t["source"],
                "dest": t["target"],
                "conditions": t["routes"] + t["guards"],
            }
            for t in data["transitions"]
        ],
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    checked = 0
    for source, trigger in sorted({(t.source, t.trigger.value) for t in p.transitions}):
        options = p.options(source, trigger)
        assert options is not None
        names = sorted({n for o in options for n in (*o.transition.routes, *o.transition.guards)})
        for values in itertools.product((True, False), repeat=len(names)):
            truth = dict(zip(names, values, strict=True))
            machine.set_state(source, model=model)
            model.truth = truth
            model.asked = []
            taken = model.trigger(trigger)  # type: ignore[attr-defined]
            want_target, want_asked, want_taken = _table_choice(options, truth)
            assert taken == want_taken, (source, trigger, truth)
            assert model.asked == want_asked, (source, trigger, truth)
            expected_state = want_target if (want_taken and want_target is not None) else source
            assert model.state == expected_state, (source, trigger, truth)  # type: ignore[attr-defined]
            checked += 1
    assert checked > 100


def test_review_options_in_order_lawful_then_correct() -> None:
    # 依法纠正: an unlawful verdict always goes back to be corrected, never up because a counter ran out
    opts = six_step().options("decided", "review") or ()
    assert [o.target for o in opts] == [State.FEEDBACK, State.CONSULTING]
    assert [o.transition.routes for o in opts] == [("lawful",), ("unlawful",)]


# ---- exchange and diagrams ------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip() -> None:
    p = six_step().variant("rt", "9", parameters={"round_limit": 5, "consensus": {"kind": "unanimity"}})
    data = p.to_dict()
    back = Procedure.from_dict(data)
    assert back.to_dict() == data
    assert back.key == ("rt", "9")
    assert back.parameters == p.parameters
    assert back.transitions == p.transitions
    # through JSON text too
    again = Procedure.from_dict(json.loads(p.to_json()))
    assert again.to_dict() == data
    assert json.loads(p.to_json(indent=None)) == data


def test_to_dict_is_json_ready() -> None:
    data = six_step().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert {t["trigger"] for t in data["transitions"]} == {t.value for t in Trigger}
    for t in data["transitions"]:
        assert t["roles"] == sorted(t["roles"])
        assert t["roles"], t


def test_mermaid_mentions_every_state() -> None:
    text = six_step().mermaid()
    assert text.startswith("stateDiagram-v2\n")
    for s in State:
        assert f" {s.value} " in text or f" {s.value}\n" in text, s
    assert "decided --> feedback: review [lawful]" in text
    assert "decided --> consulting: review [unlawful]" in text
    assert "consulting --> escalated: close_round [no_consensus_at_limit]" in text
    for final in ("closed", "rejected", "withdrawn"):
        assert f"{final} --> [*]" in text
    # internal steps are left out
    assert "record_opinion" not in text
    assert "publish" not in text


def test_propose_with_only_relational_roles_is_refused() -> None:
    with pytest.raises(ProcedureDefinitionError) as info:
        six_step().variant("x", "1", roles={"propose": ["proposer"]})
    assert "relational roles" in str(info.value)


def test_docs_procedure_page_matches_the_definition() -> None:
    page = (Path(__file__).parent.parent / "docs" / "procedure.md").read_text(encoding="utf-8")
    assert six_step().markdown() in page
    assert six_step().mermaid().rstrip() in page
