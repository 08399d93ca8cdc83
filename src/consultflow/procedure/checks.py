"""Build-time checks: a definition that would let the procedure be skipped or bent is refused.

One small function per check, each returning its problems (an empty list when it holds). The
structural checks run first; the graph checks (reachability, dead ends, the legality review before
every effect, bounded loops) run only on a definition whose rows make sense.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence

from ..errors import ProcedureDefinitionError
from ..roles import RELATIONAL_ROLES, Role
from ..steps import EFFECTS, GUARDS, NEW, ROUTES, Transition
from ..vocabulary import FINAL_STATES, IN_FORCE_STATES, State, Trigger

__all__ = ["GRAPH_CHECKS", "STRUCTURE_CHECKS", "check_definition"]

Check = Callable[[Sequence[Transition]], list[str]]
_STATES = frozenset({NEW, *(s.value for s in State)})


def _where(i: int, t: Transition) -> str:
    return f"transition {i} ({t.trigger.value} from {t.source})"


# ---- structure: each row on its own --------------------------------------------------------------
def states_known(defined: Sequence[Transition]) -> list[str]:
    """Every source and target is a state of the procedure."""
    problems = []
    for i, t in enumerate(defined):
        if t.source not in _STATES:
            problems.append(f"{_where(i, t)}: unknown source state {t.source!r}")
        if t.target is not None and t.target not in _STATES:
            problems.append(f"{_where(i, t)}: unknown target state {t.target!r}")
    return problems


def nothing_returns_to_new(defined: Sequence[Transition]) -> list[str]:
    """No transition goes back to before the proposal."""
    return [f"{_where(i, t)}: nothing may go back to {NEW!r}" for i, t in enumerate(defined) if t.target == NEW]


def only_propose_starts(defined: Sequence[Transition]) -> list[str]:
    """``propose`` leaves ``new``, and nothing else does."""
    return [
        f"{_where(i, t)}: only 'propose' starts from {NEW!r}, and it starts nowhere else"
        for i, t in enumerate(defined)
        if (t.source == NEW) != (t.trigger is Trigger.PROPOSE)
    ]


def roles_named(defined: Sequence[Transition]) -> list[str]:
    """Every transition names who may fire it, and someone can hold that role when it fires."""
    problems = []
    for i, t in enumerate(defined):
        if not t.roles:
            problems.append(f"{_where(i, t)}: names no roles; every transition must say who may fire it")
        elif (t.source == NEW and t.roles <= RELATIONAL_ROLES) or (
            t.source == State.PROPOSED and t.roles == {Role.ROTATING_CHAIR}
        ):
            problems.append(
                f"{_where(i, t)}: names only relational roles that no one can hold yet (a chair is named at "
                "notice, a proposer exists after proposing); add a role such as 'committee'"
            )
    return problems


def guards_and_routes_known(defined: Sequence[Transition]) -> list[str]:
    """Every guard and route a transition names is declared by a step."""
    problems: list[str] = []
    for i, t in enumerate(defined):
        problems.extend(
            f"{_where(i, t)}: unknown guard {g!r}; known guards: {', '.join(sorted(GUARDS))}"
            for g in t.guards
            if g not in GUARDS
        )
        problems.extend(
            f"{_where(i, t)}: unknown route {r!r}; known routes: {', '.join(sorted(ROUTES))}"
            for r in t.routes
            if r not in ROUTES
        )
    return problems


def effects_known(defined: Sequence[Transition]) -> list[str]:
    """Every trigger has an effect declared by a step."""
    return [
        f"{_where(i, t)}: trigger has no effect defined"
        for i, t in enumerate(defined)
        if t.trigger.value not in EFFECTS
    ]


def has_legality_review(defined: Sequence[Transition]) -> list[str]:
    """There is a legality review at all."""
    if any(t.trigger is Trigger.REVIEW for t in defined):
        return []
    return ["there is no legality review ('review'): every decision must be reviewed before it takes effect"]


def later_meetings_announced(defined: Sequence[Transition]) -> list[str]:
    """A round after the first opens only at a meeting announced with its notice (会议公告): a
    procedure that opens later rounds must let the committee announce them (``schedule_meeting``),
    or its second round could never open."""
    later = {t.source for t in defined if t.trigger is Trigger.OPEN_ROUND and t.source == State.CONSULTING.value}
    announced = {t.source for t in defined if t.trigger is Trigger.SCHEDULE_MEETING}
    if later - announced:
        return [
            "open_round from consulting has no schedule_meeting from consulting: every later round opens at a "
            "meeting announced with its notice, so add a schedule_meeting row (or open no later rounds)"
        ]
    return []


def fallback_last(defined: Sequence[Transition]) -> list[str]:
    """Of the transitions of one trigger from one state, the one without routes comes last, once."""
    groups: dict[tuple[str, str], list[Transition]] = defaultdict(list)
    for t in defined:
        groups[(t.source, t.trigger.value)].append(t)
    problems = []
    for (source, trigger), group in groups.items():
        fallbacks = [i for i, t in enumerate(group) if not t.routes]
        if len(fallbacks) > 1 or (fallbacks and fallbacks[0] != len(group) - 1):
            problems.append(
                f"{trigger} from {source}: a transition without routes must come last and only once, "
                "or the ones after it can never be taken"
            )
    return problems


# ---- the graph -------------------------------------------------------------------------------------
def _edges(defined: Sequence[Transition], keep: Callable[[Transition], bool] = lambda t: True) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for t in defined:
        if t.target is not None and keep(t):
            edges[t.source].add(t.target)
    return edges


def every_state_reachable(defined: Sequence[Transition]) -> list[str]:
    """Every state can be reached from a proposal."""
    reachable = _reach(NEW, _edges(defined))
    return [
        f"state '{s}' is unreachable from a proposal; add a transition into it or drop it"
        for s in sorted(_STATES - reachable)
    ]


def no_dead_ends(defined: Sequence[Transition]) -> list[str]:
    """From every reachable state a final state can be reached."""
    edges = _edges(defined)
    finals = {s.value for s in FINAL_STATES}
    return [
        f"state '{s}' is a dead end: no path from it reaches {', '.join(sorted(finals))}"
        for s in sorted(_reach(NEW, edges) - finals - {NEW})
        if not (_reach(s, edges) & finals)
    ]


def _lawful_review(t: Transition) -> bool:
    return t.trigger is Trigger.REVIEW and "lawful" in t.routes


#: The triggers that take a decision: only they may put one in force without a review, and only
#: on a route that holds where the parameters exempt the matter from review.
_DECIDING = frozenset({Trigger.DECIDE, Trigger.CLOSE_VOTE})


def _exempt_from_review(t: Transition) -> bool:
    # a decision taken on a matter the parameters exempt from review (``Parameters.needs_review``):
    # the route holds only then, and only a decision (never a review) may take it
    return t.trigger in _DECIDING and any(ROUTES[r].exempts_review for r in t.routes if r in ROUTES)


def _into_force(t: Transition) -> bool:
    return _lawful_review(t) or _exempt_from_review(t)


def review_before_effect(defined: Sequence[Transition]) -> list[str]:
    """A decision is in force (feedback, supervision) only through a lawful legality review, or - for
    a matter the variant's parameters exempt from review - straight from the decision, on the route
    that holds only for such matters (``review_exempt``)."""
    in_force = {s.value for s in IN_FORCE_STATES}
    unreviewed = _edges(defined, lambda t: not _into_force(t))
    problems = [
        f"state '{s}' can be reached without a lawful legality review; every effect must pass 'review' [lawful] "
        "(or, for a matter the parameters exempt from review, a decision on the 'review_exempt' route)"
        for s in sorted(_reach(NEW, unreviewed) & in_force)
    ]
    problems.extend(
        f"{t.trigger.value} from {t.source} enters {t.target} without a lawful review"
        for t in defined
        if t.target in in_force and t.source not in in_force and not _into_force(t)
    )
    return problems


#: Triggers whose effect needs a decision in force (they act on the current decision): in the default
#: procedure they fire only in feedback or under supervision, and a definition may not move them.
_ACTS_ON_DECISION_IN_FORCE = frozenset(
    {Trigger.PUBLISH, Trigger.REPORT_PROGRESS, Trigger.RECORD_FEEDBACK, Trigger.START_SUPERVISION, Trigger.INSPECT}
    | {Trigger.DELAY_PLEDGE}  # 承诺制: a pledge is a measure of the decision in force
)


def in_force_steps_stay_in_force(defined: Sequence[Transition]) -> list[str]:
    """Publishing, reporting progress, rating, supervising and inspecting act on a decision in force:
    no row may fire them from a state where no lawful decision stands (an internal row from
    ``decided`` would publish a decision the legality review has not passed)."""
    in_force = {s.value for s in IN_FORCE_STATES}
    return [
        f"{t.trigger.value} from {t.source} acts on a decision that is not in force; it may fire only in "
        f"{', '.join(sorted(in_force))}"
        for t in defined
        if t.trigger in _ACTS_ON_DECISION_IN_FORCE and t.source not in in_force
    ]


def loops_bounded(defined: Sequence[Transition]) -> list[str]:
    """Every loop carries a bounding guard or route: without them, what is left has no cycle."""

    def unbounded(t: Transition) -> bool:
        return not (any(GUARDS[g].bounds_loop for g in t.guards) or any(ROUTES[r].bounds_loop for r in t.routes))

    cycle = _find_cycle(_edges(defined, unbounded))
    if cycle is None:
        return []
    return [
        f"unbounded loop {' -> '.join(cycle)}: put a bounding guard (rounds_left, cycles_left, corrections_left) "
        "on one of its steps"
    ]


STRUCTURE_CHECKS: tuple[Check, ...] = (
    states_known,
    later_meetings_announced,
    nothing_returns_to_new,
    only_propose_starts,
    roles_named,
    guards_and_routes_known,
    effects_known,
    has_legality_review,
    fallback_last,
)
GRAPH_CHECKS: tuple[Check, ...] = (
    every_state_reachable,
    no_dead_ends,
    review_before_effect,
    in_force_steps_stay_in_force,
    loops_bounded,
)


def check_definition(name: str, version: str, defined: Sequence[Transition]) -> None:
    """Raise ``ProcedureDefinitionError`` listing every problem of the definition, or return."""
    problems: list[str] = []
    if not name.strip() or not version.strip():
        problems.append("a procedure needs a non-empty name and version")
    for check in STRUCTURE_CHECKS:
        problems.extend(check(defined))
    if not problems:
        for check in GRAPH_CHECKS:
            problems.extend(check(defined))
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
