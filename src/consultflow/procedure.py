"""The procedure (程序规范化): the six steps, declared once with ``transitions``, checked when built,
compiled into an immutable lookup for the hot path.

One ``transitions.Machine`` is built per procedure definition, with no model: records stay plain
data and are never attached to it. The machine holds the definition (states, triggers, ordered
conditions); the compiled table is read off its events, so what runs is what was declared.

A definition is data with a name and a version. Communities adapt the parameters (``Rules``) and
the roles of each trigger, in Python or in a JSON/TOML file. A definition that would let the
procedure be skipped or bent is refused at build time with every problem listed.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import attrs
from pydantic import Field, ValidationError
from transitions import Machine

from .effects import EFFECTS
from .errors import ProcedureDefinitionError
from .guards import GUARDS, ROUTES, Guard, Route
from .records import Record
from .roles import STAKEHOLDERS, THINK_TANK, Role
from .rules import Rules
from .vocabulary import State, Trigger

__all__ = ["NEW", "Option", "Procedure", "TransitionRule", "six_step", "six_step_transitions"]

NEW = "new"  # the state before a proposal exists; ``propose`` leaves it
FINAL_STATES: frozenset[str] = frozenset({State.CLOSED, State.REJECTED, State.WITHDRAWN})
EFFECT_STATES: frozenset[str] = frozenset({State.FEEDBACK, State.SUPERVISING})
_RELATIONAL: frozenset[Role] = frozenset({Role.PROPOSER, Role.ROTATING_CHAIR})


class TransitionRule(Record):
    """One transition of a procedure definition.

    ``target`` ``None`` means an internal step (the state stays, the record changes). ``routes``
    choose between rules of the same (source, trigger), tried in order; ``guards`` must then hold.
    ``roles`` are the roles allowed to fire it (default deny); ``proposer`` means the proposer.
    """

    trigger: Trigger
    source: str
    target: str | None
    routes: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    roles: frozenset[Role] = Field(default=frozenset())


@attrs.frozen(slots=True)
class Option:
    """A compiled transition: what the core needs at run time, nothing more."""

    target: State | None
    routes: tuple[Route, ...]
    guards: tuple[Guard, ...]
    roles: frozenset[Role]
    rule: TransitionRule
    routes_need_command: bool = False


_P = Role.PROPOSER
_C = Role.COMMITTEE
_WC = Role.WORKING_COMMITTEE
_CHAIR = Role.ROTATING_CHAIR
_SUB = Role.SUB_DISTRICT
_SUP = Role.SUPERVISOR
_INSP = Role.INSPECTION_GROUP

PROPOSERS = frozenset({_C, _WC, Role.COUNCIL_MEMBER, Role.DEPUTY}) | STAKEHOLDERS
PARTICIPANTS = frozenset({_C, _WC, Role.COUNCIL_MEMBER, _CHAIR}) | STAKEHOLDERS | THINK_TANK


def six_step_transitions() -> tuple[TransitionRule, ...]:
    """The six-step procedure of the source (提议→告知→协商→决策→反馈→监督), with the legality
    review between decision and effect and both re-consultation loops."""
    S, T = State, Trigger

    def r(
        trigger: Trigger,
        source: str,
        target: str | None,
        roles: Iterable[Role],
        guards: Sequence[str] = (),
        routes: Sequence[str] = (),
    ) -> TransitionRule:
        return TransitionRule(
            trigger=trigger,
            source=source,
            target=target,
            roles=frozenset(roles),
            guards=tuple(guards),
            routes=tuple(routes),
        )

    convenors = (_C, _CHAIR)
    carrying_out = (S.FEEDBACK, S.SUPERVISING)
    rules = [
        r(T.PROPOSE, NEW, S.PROPOSED, PROPOSERS, ["topic_in_catalogue", "budget_within_cap"]),
        r(T.REJECT, S.PROPOSED, S.REJECTED, [_C]),
        *(r(T.WITHDRAW, s, S.WITHDRAWN, [_P, _C]) for s in (S.PROPOSED, S.NOTIFIED, S.CONSULTING)),
        r(T.NOTIFY, S.PROPOSED, S.NOTIFIED, [_C, _WC], ["notice_long_enough", "consultation_day_rules"]),
        r(T.OPEN_ROUND, S.NOTIFIED, S.CONSULTING, convenors, ["notice_served"]),
        r(
            T.OPEN_ROUND,
            S.CONSULTING,
            S.CONSULTING,
            convenors,
            ["notice_served", "previous_round_closed", "rounds_left"],
        ),
        r(T.RECORD_OPINION, S.CONSULTING, None, PARTICIPANTS, ["round_is_open", "first_opinion_in_round"]),
        r(T.CLOSE_ROUND, S.CONSULTING, S.ESCALATED, convenors, ["round_is_open"], ["no_consensus_at_limit"]),
        r(T.CLOSE_ROUND, S.CONSULTING, None, convenors, ["round_is_open"]),
        r(
            T.DECIDE,
            S.CONSULTING,
            S.DECIDED,
            [_C],
            ["round_held", "quorum_met", "consensus_reached", "residents_heard", "carrier_outcome"],
        ),
        r(T.REVIEW, S.DECIDED, S.FEEDBACK, [_SUP, _SUB], ["independent_reviewer"], ["lawful"]),
        r(
            T.REVIEW,
            S.DECIDED,
            S.CONSULTING,
            [_SUP, _SUB],
            ["independent_reviewer"],
            ["unlawful", "has_rounds_left"],
        ),
        r(T.REVIEW, S.DECIDED, S.ESCALATED, [_SUP, _SUB], ["independent_reviewer"], ["unlawful"]),
        *(r(T.PUBLISH, s, None, [_C]) for s in carrying_out),
        *(r(T.REPORT_PROGRESS, s, None, [_C, _WC], ["measure_exists"]) for s in carrying_out),
        *(r(T.RECORD_FEEDBACK, s, None, STAKEHOLDERS, ["first_feedback"]) for s in carrying_out),
        r(T.START_SUPERVISION, S.FEEDBACK, S.SUPERVISING, [_C], ["published"]),
        r(T.INSPECT, S.SUPERVISING, None, [_INSP, _SUP, _SUB]),
        r(T.REQUEST_RECONSULTATION, S.SUPERVISING, S.CONSULTING, [_INSP, _SUP, _C], ["cycles_left"]),
        *(r(T.ESCALATE, s, S.ESCALATED, [_C, _SUB]) for s in (S.NOTIFIED, S.CONSULTING, S.SUPERVISING)),
        r(T.RESUME, S.ESCALATED, S.CONSULTING, [_SUB], ["cycles_left"]),
        r(T.CLOSE, S.SUPERVISING, S.CLOSED, [_C], ["measures_done", "signed_off"]),
        r(T.CLOSE, S.ESCALATED, S.CLOSED, [_SUB]),
        r(T.MARK_OVERDUE, S.PROPOSED, None, [Role.SYSTEM], ["something_overdue"]),
        r(T.MARK_OVERDUE, S.DECIDED, None, [Role.SYSTEM], ["something_overdue"]),
        *(
            rule
            for s in (S.NOTIFIED, S.CONSULTING)
            for rule in (
                r(
                    T.MARK_OVERDUE,
                    s,
                    S.ESCALATED,
                    [Role.SYSTEM],
                    ["something_overdue"],
                    ["undecided_escalates"],
                ),
                r(T.MARK_OVERDUE, s, None, [Role.SYSTEM], ["something_overdue"]),
            )
        ),
        *(
            rule
            for s in carrying_out
            for rule in (
                r(
                    T.MARK_OVERDUE,
                    s,
                    S.ESCALATED,
                    [Role.SYSTEM],
                    ["something_overdue"],
                    ["unimplemented_escalates"],
                ),
                r(T.MARK_OVERDUE, s, None, [Role.SYSTEM], ["something_overdue"]),
            )
        ),
    ]
    return tuple(rules)


class Procedure:
    """A built, checked, compiled procedure. Immutable; share one per definition."""

    __slots__ = ("_by_state", "_groups", "_table", "machine", "name", "rules", "transitions", "version")

    def __init__(
        self,
        name: str,
        version: str,
        *,
        rules: Rules | None = None,
        transitions: Iterable[TransitionRule] | None = None,
        roles: Mapping[Trigger | str, Iterable[Role | str]] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.rules = rules if rules is not None else Rules()
        defined = tuple(transitions) if transitions is not None else six_step_transitions()
        if roles:
            defined = _override_roles(name, defined, roles)
        self.transitions = defined
        _check(name, version, defined)
        self.machine = Machine(
            model=None,
            states=[NEW, *(s.value for s in State)],
            initial=NEW,
            transitions=[
                {
                    "trigger": t.trigger.value,
                    "source": t.source,
                    "dest": t.target,
                    "conditions": [*t.routes, *t.guards],
                }
                for t in defined
            ],
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        self._table = _compile(self.machine, defined)
        self._groups = {key: (options, _union_roles(options)) for key, options in self._table.items()}
        by_state: dict[str, list[str]] = defaultdict(list)
        for state, trigger in self._table:
            if trigger not in by_state[state]:
                by_state[state].append(trigger)
        self._by_state = {s: tuple(ts) for s, ts in by_state.items()}

    # ---- the hot path ----------------------------------------------------------------------------
    def options(self, state: str, trigger: str) -> tuple[Option, ...] | None:
        """The compiled transitions for ``trigger`` in ``state``, in the order they are tried."""
        return self._table.get((state, trigger))

    def group(self, state: str, trigger: str) -> tuple[tuple[Option, ...], frozenset[Role]] | None:
        """``options`` and the union of their roles, looked up once per step."""
        return self._groups.get((state, trigger))

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """Every trigger the definition has for ``state`` (whether or not it would pass now)."""
        return self._by_state.get(state, ())

    # ---- definition, exchange, diagrams ----------------------------------------------------------
    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data; ``Procedure.from_dict`` builds it back."""
        return {
            "name": self.name,
            "version": self.version,
            "rules": self.rules.model_dump(mode="json"),
            "transitions": [
                {
                    "trigger": t.trigger.value,
                    "source": t.source,
                    "target": t.target,
                    "routes": list(t.routes),
                    "guards": list(t.guards),
                    "roles": sorted(r.value for r in t.roles),
                }
                for t in self.transitions
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Procedure:
        """Build from data: ``name``, ``version``, optional ``rules``, ``roles`` (trigger -> roles,
        applied to the six-step transitions or to ``transitions`` if given)."""
        if not isinstance(data, Mapping):
            raise ProcedureDefinitionError(
                "?", [f"a procedure definition is a table/object with name and version, not {type(data).__name__}"]
            )
        problems = []
        raw_name, raw_version = data.get("name"), data.get("version")
        if not isinstance(raw_name, str) or not raw_name.strip():
            problems.append("'name' is missing or not text: give the procedure a name")
        if not isinstance(raw_version, str | int) or isinstance(raw_version, bool) or not str(raw_version).strip():
            problems.append("'version' is missing: give the procedure a version, e.g. \"1\"")
        name = raw_name if isinstance(raw_name, str) else ""
        version = str(raw_version) if isinstance(raw_version, str | int) else ""
        unknown = set(data) - {"name", "version", "rules", "roles", "transitions", "description"}
        if unknown:
            problems.append(f"unknown keys {sorted(unknown)}: allowed are name, version, rules, roles, transitions")
        raw_rules = data.get("rules", {})
        rules = Rules()
        if not isinstance(raw_rules, Mapping):
            problems.append("'rules' must be a table of parameters (notice_period, quorum_ratio, ...)")
        else:
            try:
                rules = Rules.model_validate(dict(raw_rules))
            except ValidationError as exc:
                problems.extend(f"rules.{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
        transitions: tuple[TransitionRule, ...] | None = None
        raw_transitions = data.get("transitions")
        if raw_transitions is not None:
            if not isinstance(raw_transitions, list | tuple):
                problems.append("'transitions' must be a list of transitions")
            else:
                parsed = []
                for i, t in enumerate(raw_transitions):
                    try:
                        parsed.append(TransitionRule.model_validate(t))
                    except ValidationError as exc:
                        problems.extend(f"transitions[{i}].{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
                transitions = tuple(parsed)
        roles_raw = data.get("roles", {})
        roles: dict[str, list[Role]] = {}
        if not isinstance(roles_raw, Mapping):
            problems.append("'roles' must map a trigger to a list of roles")
        else:
            known = ", ".join(r.value for r in Role)
            for trigger, names in roles_raw.items():
                if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
                    problems.append(f"roles.{trigger}: give a list of role names; known roles: {known}")
                    continue
                try:
                    roles[str(trigger)] = [Role(n) for n in names]
                except ValueError:
                    problems.append(f"roles.{trigger}: unknown role in {list(names)!r}; known roles: {known}")
        if problems:
            raise ProcedureDefinitionError(name or "?", problems)
        return cls(name, version, rules=rules, transitions=transitions, roles=roles)

    @classmethod
    def from_file(cls, path: str | Path) -> Procedure:
        """Build from a ``.json`` or ``.toml`` file (same keys as ``from_dict``)."""
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ProcedureDefinitionError(p.name, [f"{p}: not valid {p.suffix[1:].upper()}: {exc}"]) from exc
        return cls.from_dict(data)

    def variant(
        self,
        name: str,
        version: str,
        *,
        rules: Rules | Mapping[str, Any] | None = None,
        roles: Mapping[Trigger | str, Iterable[Role | str]] | None = None,
    ) -> Procedure:
        """A community's variant of this procedure: new parameters and/or roles, same steps."""
        if isinstance(rules, Mapping):
            rules = Rules.model_validate({**self.rules.model_dump(), **rules})
        return Procedure(
            name,
            version,
            rules=rules if rules is not None else self.rules,
            transitions=self.transitions,
            roles=roles,
        )

    def mermaid(self) -> str:
        """A Mermaid state diagram of the definition (internal steps left out)."""
        lines = ["stateDiagram-v2", f"    [*] --> {State.PROPOSED.value}"]
        seen: set[tuple[str, str, str]] = set()
        for t in self.transitions:
            if t.target is None or t.source == NEW:
                continue
            label = t.trigger.value + (f" [{', '.join(t.routes)}]" if t.routes else "")
            edge = (t.source, t.target, label)
            if edge not in seen:
                seen.add(edge)
                lines.append(f"    {t.source} --> {t.target}: {label}")
        lines.extend(f"    {s} --> [*]" for s in sorted(FINAL_STATES))
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """The transition table as Markdown: trigger, from, to, routes, guards, roles."""
        rows = ["| trigger | from | to | when | guards | roles |", "| --- | --- | --- | --- | --- | --- |"]
        for t in self.transitions:
            rows.append(
                f"| {t.trigger.value} | {t.source} | {t.target or '(stays)'} | {', '.join(t.routes) or '-'} | "
                f"{', '.join(t.guards) or '-'} | {', '.join(sorted(r.value for r in t.roles))} |"
            )
        return "\n".join(rows) + "\n"

    def __repr__(self) -> str:
        return f"Procedure({self.name!r}, {self.version!r}, {len(self.transitions)} transitions)"


def _union_roles(options: tuple[Option, ...]) -> frozenset[Role]:
    """The roles any option admits; the first option's own set when they all agree, so the core
    can tell by identity that the chosen option needs no second check."""
    first = options[0].roles
    if all(o.roles == first for o in options):
        return first
    return frozenset().union(*(o.roles for o in options))


def _loc(loc: Sequence[int | str]) -> str:
    return ".".join(str(x) for x in loc)


def _override_roles(
    name: str, defined: tuple[TransitionRule, ...], roles: Mapping[Trigger | str, Iterable[Role | str]]
) -> tuple[TransitionRule, ...]:
    problems = []
    resolved: dict[str, frozenset[Role]] = {}
    for trigger, names in roles.items():
        key = str(trigger.value if isinstance(trigger, Trigger) else trigger)
        if key not in {t.value for t in Trigger}:
            problems.append(f"roles: unknown trigger {key!r}; known triggers: {', '.join(t.value for t in Trigger)}")
            continue
        try:
            resolved[key] = frozenset(Role(n) for n in names)
        except ValueError:
            problems.append(f"roles.{key}: unknown role in {list(names)!r}")
    if problems:
        raise ProcedureDefinitionError(name, problems)
    return tuple(
        t.model_copy(update={"roles": resolved[t.trigger.value]}) if t.trigger.value in resolved else t for t in defined
    )


def _check(name: str, version: str, defined: tuple[TransitionRule, ...]) -> None:
    """Refuse a definition that lets the procedure be skipped or bent; list every problem."""
    problems: list[str] = []
    states = {NEW, *(s.value for s in State)}
    if not name.strip() or not version.strip():
        problems.append("a procedure needs a non-empty name and version")
    groups: dict[tuple[str, str], list[TransitionRule]] = defaultdict(list)
    for i, t in enumerate(defined):
        where = f"transition {i} ({t.trigger.value} from {t.source})"
        if t.source not in states:
            problems.append(f"{where}: unknown source state {t.source!r}")
        if t.target is not None and t.target not in states:
            problems.append(f"{where}: unknown target state {t.target!r}")
        if t.target == NEW:
            problems.append(f"{where}: nothing may go back to {NEW!r}")
        if (t.source == NEW) != (t.trigger is Trigger.PROPOSE):
            problems.append(f"{where}: only 'propose' starts from {NEW!r}, and it starts nowhere else")
        if not t.roles:
            problems.append(f"{where}: names no roles; every transition must say who may fire it")
        elif (t.source == NEW and t.roles <= _RELATIONAL) or (
            t.source == State.PROPOSED and t.roles == {Role.ROTATING_CHAIR}
        ):
            problems.append(
                f"{where}: names only relational roles that no one can hold yet (a chair is named at "
                "notice, a proposer exists after proposing); add a role such as 'committee'"
            )
        for g in t.guards:
            if g not in GUARDS:
                problems.append(f"{where}: unknown guard {g!r}; known guards: {', '.join(sorted(GUARDS))}")
        for r in t.routes:
            if r not in ROUTES:
                problems.append(f"{where}: unknown route {r!r}; known routes: {', '.join(sorted(ROUTES))}")
        if t.trigger is not Trigger.PROPOSE and t.trigger.value not in EFFECTS:
            problems.append(f"{where}: trigger has no effect defined")
        groups[(t.source, t.trigger.value)].append(t)
    if Trigger.REVIEW.value not in {t.trigger.value for t in defined}:
        problems.append(
            "there is no legality review ('review'): every decision must be reviewed before it takes effect"
        )
    for (source, trigger), group in groups.items():
        fallbacks = [i for i, t in enumerate(group) if not t.routes]
        if len(fallbacks) > 1 or (fallbacks and fallbacks[0] != len(group) - 1):
            problems.append(
                f"{trigger} from {source}: a transition without routes must come last and only once, "
                "or the ones after it can never be taken"
            )
    if problems:
        raise ProcedureDefinitionError(name, problems)

    edges: dict[str, set[str]] = defaultdict(set)
    for t in defined:
        if t.target is not None:
            edges[t.source].add(t.target)

    reachable = _reach(NEW, edges)
    for s in sorted(states - reachable):
        problems.append(f"state '{s}' is unreachable from a proposal; add a transition into it or drop it")

    finals = set(FINAL_STATES)
    for s in sorted(reachable - finals - {NEW}):
        if not (_reach(s, edges) & finals):
            problems.append(f"state '{s}' is a dead end: no path from it reaches {', '.join(sorted(finals))}")

    # The legality review stands before every effect: without lawful reviews, no effect is reachable.
    unreviewed: dict[str, set[str]] = defaultdict(set)
    for t in defined:
        if t.target is None:
            continue
        if t.trigger is Trigger.REVIEW and "lawful" in t.routes:
            continue
        unreviewed[t.source].add(t.target)
    for s in sorted(_reach(NEW, unreviewed) & EFFECT_STATES):
        problems.append(
            f"state '{s}' can be reached without a lawful legality review; every effect must pass 'review' [lawful]"
        )
    for t in defined:
        entering = t.target in EFFECT_STATES and t.source not in EFFECT_STATES
        if entering and not (t.trigger is Trigger.REVIEW and "lawful" in t.routes):
            problems.append(f"{t.trigger.value} from {t.source} enters {t.target} without a lawful review")

    # Every loop is bounded: drop the transitions that carry a bounding guard or route, and what is
    # left (internal steps aside) must have no cycle.
    unbounded: dict[str, set[str]] = defaultdict(set)
    for t in defined:
        if t.target is None:
            continue
        bounded = any(GUARDS[g].bounds_loop for g in t.guards) or any(ROUTES[r].bounds_loop for r in t.routes)
        if not bounded:
            unbounded[t.source].add(t.target)
    cycle = _find_cycle(unbounded)
    if cycle:
        problems.append(
            f"unbounded loop {' -> '.join(cycle)}: put a bounding guard (rounds_left, cycles_left) on one of its steps"
        )
    if problems:
        raise ProcedureDefinitionError(name, problems)


def _reach(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _find_cycle(edges: Mapping[str, set[str]]) -> list[str] | None:
    white, grey, black = 0, 1, 2
    colour: dict[str, int] = defaultdict(int)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in sorted(edges):
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def _compile(machine: Machine, defined: tuple[TransitionRule, ...]) -> Mapping[tuple[str, str], tuple[Option, ...]]:
    """Read the transitions back off the machine's events, in its order, and resolve names."""
    by_key: dict[tuple[str, str], list[TransitionRule]] = defaultdict(list)
    for t in defined:
        by_key[(t.source, t.trigger.value)].append(t)
    table: dict[tuple[str, str], tuple[Option, ...]] = {}
    interned: dict[frozenset[Role], frozenset[Role]] = {}  # equal role sets become one object
    for trigger, event in machine.events.items():
        for source, compiled in event.transitions.items():
            declared = by_key[(source, trigger)]
            if len(declared) != len(compiled):
                raise ProcedureDefinitionError(trigger, [f"machine and definition disagree on {trigger} from {source}"])
            options = []
            for t, mt in zip(declared, compiled, strict=True):
                names = [c.func for c in mt.conditions]
                if names != [*t.routes, *t.guards] or (mt.dest or None) != t.target:
                    raise ProcedureDefinitionError(
                        trigger, [f"machine and definition disagree on {trigger} from {source}"]
                    )
                options.append(
                    Option(
                        target=State(t.target) if t.target is not None else None,
                        routes=tuple(ROUTES[r] for r in t.routes),
                        guards=tuple(GUARDS[g] for g in t.guards),
                        roles=interned.setdefault(t.roles, t.roles),
                        rule=t,
                        routes_need_command=any(ROUTES[r].needs_command for r in t.routes),
                    )
                )
            table[(source, trigger)] = tuple(options)
    return table


@cache
def six_step() -> Procedure:
    """The default procedure, ``six-step`` version ``1``, with the default rules."""
    return Procedure("six-step", "1")
