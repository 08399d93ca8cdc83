"""Lifecycle benchmark: the same consultations run four ways, where only the dispatch differs.

Run from the project root:

    .venv/bin/python benchmarks/lifecycle.py            # the report, well under 2 minutes (make bench)
    .venv/bin/python benchmarks/lifecycle.py --quick    # smoke run of a few seconds (part of make test)

The four variants:

1. ``Engine`` + ``MemoryStore``: what an application runs (load, core, append with the version check);
2. the pure core, ``consultflow.apply``, on a loop with no store: what a simulation runs;
3. one ``transitions.Machine`` per record (the anti-pattern the library avoids): the Machine's
   conditions call the library's role check, routes and guards, its ``after`` callback runs the
   library's effect;
4. a hand-written dict dispatch table keyed by (state, trigger).

Every variant reads the procedure's own rows (``Procedure.transitions``), the library's guards,
routes and effects (``consultflow.steps``), builds the same records and chains the same log
(``core.enact`` and ``log.chain_hash``): no rule is written twice, so a change in ``src/`` changes
all four alike. A start-up check asserts that the four give the same log hashes for the same
commands; if they ever differ, the script stops with an error instead of printing a wrong figure.

Repetitions are interleaved (one batch of every variant per repetition, the order rotated) and the
median is reported. The script never asserts on timings: it is a report. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast

from transitions import EventData, Machine

import consultflow as cf
from _common import describe_machine, median, package_versions, spread

# ``core.enact`` carries out a transition already chosen (effect, hash chain, record stamp,
# notices): every variant shares it, so only the dispatch differs.
from consultflow.core import authorise, enact
from consultflow.demo import CAST, COMMUNITY, TOPIC
from consultflow.parameters import Parameters
from consultflow.refusals import Failure
from consultflow.roles import Role
from consultflow.steps import GUARDS, NEW, ROUTES
from consultflow.steps.base import GuardFn, RouteFn

# ================================================================================================
# The workload: commands, built once and shared by every variant (commands are immutable)
# ================================================================================================
Script = list[tuple[cf.Command, cf.Actor, datetime]]

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
SPAN = timedelta(days=100)  # lifecycle i starts at T0 + i * SPAN; one lifecycle spans under 70 days
RECONSULT_EVERY = 4  # lifecycles 0, 4, 8, ... find a problem under supervision and consult again
INVITE = ("li", "zhang", "zhao", "wu", "chen", "liu")
S, OPP, AMD, ABS = cf.Stance.SUPPORT, cf.Stance.OPPOSE, cf.Stance.AMEND, cf.Stance.ABSTAIN
NO_CONSENSUS = (("li", S), ("zhang", OPP), ("zhao", AMD), ("wu", S))  # 2 of 4 support: under 2/3
CONSENSUS = (("li", S), ("zhang", S), ("zhao", AMD), ("wu", S), ("liu", ABS))  # 3 of 4: consensus


def script_for(i: int) -> Script:
    """The commands of lifecycle ``i``: propose, notify, a round without consensus, a round with
    it, decide (2 measures), legality review (lawful), publish, progress, supervision; then either
    progress, feedback, an inspection that passes and close, or (every RECONSULT_EVERY-th) an
    inspection that finds a problem, re-consultation (再次协商): another round, decision, review and
    publication, then progress, feedback, supervision, an inspection that passes and close."""
    cid = f"bench-{i:06d}"
    base = T0 + i * SPAN
    c = CAST
    out: Script = []

    def at(days: float, hours: float = 0) -> datetime:
        return base + timedelta(days=days, hours=hours)

    def add(command: cf.Command, who: str, when: datetime) -> None:
        out.append((command, c[who], when))

    def consult(day: float, opinions: Sequence[tuple[str, cf.Stance]], announced: float | None = None) -> None:
        if announced is not None:  # a later round's meeting is announced with its own notice (会议公告)
            meeting = cf.ScheduleMeeting(
                consultation=cid, meeting_at=at(day), venue="studio", agenda="night parking", chair="chen"
            )
            add(meeting, "wang", at(announced))
        add(cf.OpenRound(consultation=cid, agenda="night parking"), "chen", at(day))
        for who, stance in opinions:
            add(cf.RecordOpinion(consultation=cid, stance=stance, text=f"{who} on {cid}"), who, at(day, 1))
        add(cf.CloseRound(consultation=cid, summary=f"round on day {day}"), "chen", at(day, 2))

    def decide(day: float, due: float) -> None:
        measures = (
            cf.Measure(title="mark the bays", owner="zhao", due=at(due), budget=Decimal("80000")),
            cf.Measure(title="install the gate", owner="wang", due=at(due + 10), budget=Decimal("30000")),
        )
        add(cf.Decide(consultation=cid, resolution=f"night parking for {cid}", measures=measures), "wang", at(day))
        add(cf.ReviewLegality(consultation=cid, verdict=cf.Verdict.LAWFUL), "sun", at(day + 1))
        add(cf.Publish(consultation=cid, channels=(cf.Channel.NOTICE_BOARD,), summary="the plan"), "wang", at(day + 2))

    def finish(day: float, spent: Decimal = Decimal("79000")) -> None:
        add(cf.ReportProgress(consultation=cid, measure=0, percent=100, spent=spent), "wang", at(day))
        add(cf.ReportProgress(consultation=cid, measure=1, percent=100, spent=Decimal("29500")), "wang", at(day + 1))
        add(cf.RecordFeedback(consultation=cid, satisfaction=5, comment="easier"), "li", at(day + 2))
        add(cf.RecordFeedback(consultation=cid, satisfaction=4), "wu", at(day + 2, 1))

    propose = cf.Propose(
        community=COMMUNITY,
        topic=TOPIC,
        title=f"Night parking {i}",
        description="Open the east lot for night parking",
        carrier=cf.Carrier.DECISION,
        form=cf.Form.CONSULTATION_DAY,
        major=False,  # the committee decides it (a major matter would go to the representatives' vote)
        budget=Decimal("120000"),
        id=cid,
    )
    add(propose, "li", at(0))
    notify = cf.Notify(
        consultation=cid,
        meeting_at=at(5),
        invite=INVITE,
        chair="chen",
        venue="studio",
        channels=(cf.Channel.NOTICE_BOARD, cf.Channel.WECHAT),
    )
    add(notify, "wang", at(0, 1))
    consult(5, NO_CONSENSUS)
    consult(12, CONSENSUS, announced=6)
    decide(13, due=40)
    add(cf.ReportProgress(consultation=cid, measure=0, percent=50, spent=Decimal("40000")), "wang", at(20))
    add(cf.StartSupervision(consultation=cid), "wang", at(21))
    if i % RECONSULT_EVERY == 0:
        add(cf.Inspect(consultation=cid, passed=False, findings="cars block the fire lane"), "zhou", at(25))
        add(cf.RequestReconsultation(consultation=cid, problems="the fire lane is blocked"), "zhou", at(25, 1))
        consult(30, CONSENSUS, announced=26)
        decide(31, due=55)
        finish(50)
        add(cf.StartSupervision(consultation=cid), "wang", at(60))
    else:
        finish(35, spent=Decimal("39000"))  # 40,000 of the measure's 80,000 were reported spent already
    add(cf.Inspect(consultation=cid, passed=True, findings="signed off"), "zhou", at(61))
    add(cf.Close(consultation=cid, summary="done"), "wang", at(62))
    return out


def bench_procedure() -> cf.Procedure:
    """The six-step procedure without a yearly fund pool (``fund_pool=None``): every lifecycle runs in
    one community, more than its 300,000 yuan a year would pay for, and the pure-core variants keep no
    fund ledger (the engine's ledger read is timed in benchmarks/storage.py's story, not here)."""
    return cf.six_step().variant("benchmark-six-step", "1", parameters={"fund_pool": None})


#: The community's topic catalogue (immutable), shared by every variant.
CATALOGUE = cf.Catalogue().with_community(COMMUNITY, {TOPIC: "night parking"})


# ================================================================================================
# What the three loops share: the library's effect and assembly, once a transition is chosen
# ================================================================================================
Log = list[cf.LogEntry]
Kept = tuple[object, Log]  # what a batch keeps alive (records, store or cases) and the log it wrote


def finish_step(
    procedure: cf.Procedure,
    record: cf.Consultation | None,
    command: cf.Command,
    ctx: cf.Context,
    role: str,
    target: cf.State | None,
) -> cf.Step:
    """The library's effect, then the library's assembly (hash chain, record stamp, notices): what
    ``consultflow.apply`` runs once the core has chosen a transition (``core.enact``)."""
    return enact(procedure, record, command, ctx, role, target)


def refused(variant: str, record: cf.Consultation | None, command: cf.Command) -> RuntimeError:
    state = NEW if record is None else record.state.value
    return RuntimeError(f"{variant}: {command.trigger.value} refused in {state} (the workload is never refused)")


# ================================================================================================
# (1) Engine + MemoryStore and (2) the pure core
# ================================================================================================
def people_of(command: cf.Command) -> dict[str, frozenset[Role]]:
    """What the engine hands the core about the people a command names (a chair, attendees): their
    roles, here the cast's - the same answer the engine gets from its directory."""
    named = command.named_people()
    return {p: CAST[p].roles for p in named} if named else {}


def cast_directory() -> cf.MemoryDirectory:
    """The story's cast, granted their roles in the community: where the engine finds them."""
    directory = cf.MemoryDirectory()
    for person in CAST.values():
        directory.grant(COMMUNITY, person.id, *person.roles)
    return directory


class UncheckedEngine(cf.Engine):
    """The engine without its load-time check (a loaded record against the digest its last log
    entry binds): the figure the check is measured against. Never do this outside a benchmark."""

    def _check_loaded(self, record: cf.Consultation) -> None:
        return None


class CheckingEveryLoadEngine(cf.Engine):
    """The engine checking every load in full (one entry read, one digest), as it does when the
    store hands back a freshly parsed record (PostgreSQL, SQLite past its cache) rather than the very
    record this engine wrote."""

    def _trust(self, record: cf.Consultation) -> None:
        return None


def run_engine(
    procedure: cf.Procedure, scripts: Sequence[Script], directory: bool = True, kind: type[cf.Engine] = cf.Engine
) -> Kept:
    """The engine as an app runs it: people by id, their roles from a ``MemoryDirectory`` - or, with
    ``directory=False``, the roles the caller's ``Actor`` claims (``TrustCallerRoles``; the chair's
    role still comes from the directory): the cost of asking the directory is the difference.
    ``kind`` measures the load-time check: without it, or done in full on every load."""
    clock = cf.SimulatedClock(T0)
    engine = kind(
        procedure,
        cf.MemoryStore(),
        clock=clock,
        catalogue=CATALOGUE,
        ids=lambda: "unused",
        directory=cast_directory() if directory else cf.TrustCallerRoles(others=cast_directory()),
        salts=str,  # no salt, as the pure core's variants (Context.salt ""): the same logs, hash for hash
    )
    execute, set_clock = engine.execute, clock.set
    for script in scripts:
        for command, actor, when in script:
            set_clock(when)
            execute(command, by=actor.id if directory else actor)
    return engine, []


def run_core(procedure: cf.Procedure, scripts: Sequence[Script]) -> Kept:
    apply, Context, Refused, cat = cf.apply, cf.Context, cf.Refused, CATALOGUE
    records: list[cf.Consultation] = []
    log: Log = []
    for script in scripts:
        record: cf.Consultation | None = None
        for command, actor, when in script:
            step = apply(
                procedure, record, command, Context(now=when, actor=actor, catalogue=cat, people=people_of(command))
            )
            if isinstance(step, Refused):
                raise step
            record = step.record
            log.extend(step.entries)
        assert record is not None
        records.append(record)
    return records, log


# ================================================================================================
# (3) One transitions.Machine per record
# ================================================================================================
#: The anti-pattern as people write it: the Machine's defaults, so auto_transitions=True (a to_<state>
#: method and transition per state). consultflow's own single Machine uses False.
AUTO_TRANSITIONS = True
STATES = [NEW, *(s.value for s in cf.State)]


class Case:
    """The model a per-record Machine drives: it holds the record, and the role and step of the
    trigger being fired. The Machine adds ``state``, ``trigger`` and a method per trigger."""

    def __init__(self) -> None:
        self.record: cf.Consultation | None = None
        self.role = ""
        self.step: cf.Step | None = None


Condition = Callable[[EventData], bool]


def _role_condition(roles: frozenset[Role]) -> Condition:
    def allowed(ev: EventData) -> bool:
        case = cast(Case, ev.model)
        role = authorise(roles, case.record, ev.kwargs["ctx"].actor)
        if isinstance(role, Failure):
            return False
        case.role = role
        return True

    return allowed


def _route_condition(test: RouteFn, params: Parameters) -> Condition:
    def route(ev: EventData) -> bool:
        kw = ev.kwargs
        return test(params, cast(Case, ev.model).record, kw["command"], kw["ctx"])

    return route


def _guard_condition(check: GuardFn, params: Parameters) -> Condition:
    def guard(ev: EventData) -> bool:
        kw = ev.kwargs
        return check(params, cast(Case, ev.model).record, kw["command"], kw["ctx"]) is None

    return guard


def _effect_callback(procedure: cf.Procedure, target: cf.State | None) -> Callable[[EventData], None]:
    def after(ev: EventData) -> None:
        case = cast(Case, ev.model)
        kw = ev.kwargs
        step = finish_step(procedure, case.record, kw["command"], kw["ctx"], case.role, target)
        case.step = step
        case.record = step.record

    return after


def machine_spec(procedure: cf.Procedure) -> list[dict[str, Any]]:
    """The procedure's own rows as ``transitions`` transition dicts, in their order: conditions
    are the role check, the routes, then the guards (the library's functions); ``after`` runs the
    library's effect. Built once; every per-record Machine is built from it."""
    params = procedure.parameters
    spec = []
    for t in procedure.transitions:
        target = None if t.target is None else cf.State(t.target)
        spec.append(
            {
                "trigger": t.trigger.value,
                "source": t.source,
                "dest": t.target,  # None: an internal transition, as in consultflow's own Machine
                "conditions": [
                    _role_condition(t.roles),
                    *(_route_condition(ROUTES[name].test, params) for name in t.routes),
                    *(_guard_condition(GUARDS[name].check, params) for name in t.guards),
                ],
                "after": _effect_callback(procedure, target),
            }
        )
    return spec


def new_case(spec: list[dict[str, Any]], auto_transitions: bool = AUTO_TRANSITIONS) -> Case:
    case = Case()
    Machine(
        model=case,
        states=STATES,
        transitions=spec,
        initial=NEW,
        send_event=True,
        auto_transitions=auto_transitions,
    )
    return case


def run_machine(procedure: cf.Procedure, spec: list[dict[str, Any]], scripts: Sequence[Script]) -> Kept:
    Context, cat = cf.Context, CATALOGUE
    cases: list[Case] = []
    log: Log = []
    for script in scripts:
        case = new_case(spec)
        fire = cast(Callable[..., bool], case.trigger)  # type: ignore[attr-defined]  # added by the Machine
        for command, actor, when in script:
            ctx = Context(now=when, actor=actor, catalogue=cat, people=people_of(command))
            if not fire(command.trigger.value, command=command, ctx=ctx):
                raise refused("Machine per record", case.record, command)
            log.extend(case.step.entries)  # type: ignore[union-attr]  # set by the after callback
        cases.append(case)
    return cases, log


# ================================================================================================
# (4) A hand-written dict dispatch table
# ================================================================================================
class Row(NamedTuple):
    target: cf.State | None
    roles: frozenset[Role]
    routes: tuple[RouteFn, ...]
    guards: tuple[GuardFn, ...]


Table = dict[tuple[str, str], list[Row]]


def dict_table(procedure: cf.Procedure) -> Table:
    """(state, trigger) -> the procedure's rows from there, in order, names resolved to the
    library's functions."""
    table: Table = {}
    for t in procedure.transitions:
        row = Row(
            None if t.target is None else cf.State(t.target),
            t.roles,
            tuple(ROUTES[name].test for name in t.routes),
            tuple(GUARDS[name].check for name in t.guards),
        )
        table.setdefault((t.source, t.trigger.value), []).append(row)
    return table


def dict_apply(
    table: Table, procedure: cf.Procedure, record: cf.Consultation | None, command: cf.Command, ctx: cf.Context
) -> cf.Step:
    params = procedure.parameters
    state = NEW if record is None else record.state
    for row in table.get((state, command.trigger), ()):
        role = authorise(row.roles, record, ctx.actor)
        if isinstance(role, Failure):
            continue
        for test in row.routes:
            if not test(params, record, command, ctx):
                break
        else:
            for check in row.guards:
                if check(params, record, command, ctx) is not None:
                    raise refused("dict table", record, command)
            return finish_step(procedure, record, command, ctx, role, row.target)
    raise refused("dict table", record, command)


def run_dict(procedure: cf.Procedure, table: Table, scripts: Sequence[Script]) -> Kept:
    Context, cat = cf.Context, CATALOGUE
    records: list[cf.Consultation] = []
    log: Log = []
    for script in scripts:
        record: cf.Consultation | None = None
        for command, actor, when in script:
            step = dict_apply(
                table,
                procedure,
                record,
                command,
                Context(now=when, actor=actor, catalogue=cat, people=people_of(command)),
            )
            record = step.record
            log.extend(step.entries)
        assert record is not None
        records.append(record)
    return records, log


# ================================================================================================
# The variants, the start-up check, the measurements
# ================================================================================================
class Variant(NamedTuple):
    key: str
    label: str
    run: Callable[[Sequence[Script]], Kept]


def variants(procedure: cf.Procedure) -> list[Variant]:
    spec, table = machine_spec(procedure), dict_table(procedure)
    return [
        Variant("engine", "Engine + MemoryStore + MemoryDirectory", lambda s: run_engine(procedure, s)),
        Variant("trusting", "Engine + MemoryStore, caller's roles", lambda s: run_engine(procedure, s, False)),
        Variant("unchecked", "Engine, no load-time check", lambda s: run_engine(procedure, s, kind=UncheckedEngine)),
        Variant(
            "everyload",
            "Engine, load check in full every time",
            lambda s: run_engine(procedure, s, kind=CheckingEveryLoadEngine),
        ),
        Variant("core", "pure core (consultflow.apply), no store", lambda s: run_core(procedure, s)),
        Variant("machine", "transitions: one Machine per record", lambda s: run_machine(procedure, spec, s)),
        Variant("dict", "hand-written dict table", lambda s: run_dict(procedure, table, s)),
    ]


ENGINES = ("engine", "trusting", "unchecked", "everyload")  # the variants that keep an Engine


def logs_of(key: str, kept: Kept) -> dict[str, list[str]]:
    """Each consultation's chain of hashes, however the variant kept it."""
    thing, log = kept
    if key in ENGINES:
        engine = cast(cf.Engine, thing)
        return {r.id: [e.hash for e in engine.history(r.id)] for r in engine.find()}
    chains: dict[str, list[str]] = {}
    for entry in log:
        chains.setdefault(entry.consultation, []).append(entry.hash)
    return chains


def records_of(key: str, kept: Kept) -> list[cf.Consultation]:
    thing = kept[0]
    if key in ENGINES:
        return list(cast(cf.Engine, thing).find())
    if key == "machine":
        cases = cast(list[Case], thing)
        for case in cases:
            state = case.state  # type: ignore[attr-defined]  # the Machine's own
            require(case.record is not None and state == case.record.state.value, "a Machine lost its record")
        return [case.record for case in cases if case.record is not None]
    return list(cast(list[cf.Consultation], thing))


def require(condition: bool, problem: str) -> None:
    """An assertion that ``python -O`` keeps: the start-up check must never be skipped."""
    if not condition:
        raise AssertionError(problem)


def same_logs_check(vs: Sequence[Variant], scripts: Sequence[Script]) -> int:
    """Run ``scripts`` through every variant and require the same logs, hash for hash, chains that
    verify, and every consultation closed. A drift in any variant stops the script here: it is an
    error, never a figure."""
    reference: dict[str, list[str]] | None = None
    for v in vs:
        kept = v.run(scripts)
        chains = logs_of(v.key, kept)
        records = records_of(v.key, kept)
        require(
            len(chains) == len(scripts) == len(records), f"{v.label}: {len(chains)} logs for {len(scripts)} scripts"
        )
        for record in records:
            require(record.state is cf.State.CLOSED, f"{v.label}: {record.id} ended {record.state.value}")
            require(record.head == chains[record.id][-1], f"{v.label}: {record.id}'s head is not its last hash")
            require(record.version == len(chains[record.id]), f"{v.label}: {record.id}'s version is not its length")
        if reference is None:
            reference = chains
            entries = kept[1] or [e for r in records for e in cast(cf.Engine, kept[0]).history(r.id)]
            for cid in chains:
                verification = cf.verify([e for e in entries if e.consultation == cid])
                require(verification.ok, f"{v.label}: {cid}: {verification.reason}")
        else:
            require(
                chains == reference,
                f"{v.label} writes a different log from {vs[0].label} for the same commands: "
                "a variant no longer runs the library's own rules",
            )
    require(reference is not None, "no variants")
    return sum(len(chain) for chain in (reference or {}).values())


def timed_runs(vs: Sequence[Variant], scripts: Sequence[Script], reps: int) -> dict[str, list[float]]:
    """Seconds per batch for each variant, interleaved: one batch of each per repetition, the
    order rotated. Each batch starts from fresh state after a collection; GC stays on."""
    seconds: dict[str, list[float]] = {v.key: [] for v in vs}
    for rep in range(reps):
        shift = rep % len(vs)
        for v in [*vs[shift:], *vs[:shift]]:
            gc.collect()
            started = time.perf_counter()
            kept = v.run(scripts)
            seconds[v.key].append(time.perf_counter() - started)
            del kept  # freed outside the timing
    return seconds


def traced_bytes(run: Callable[[], object], n: int) -> float:
    """Bytes still allocated per item after ``run()``, whose result is kept, under tracemalloc.
    Its inputs (commands, times, actors) exist before tracing, so they are not counted."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = run()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return (after - before) / n


def keeping(v: Variant, scripts: Sequence[Script]) -> Callable[[], object]:
    """Run ``scripts`` through ``v`` and keep what it keeps per consultation: the record (with its
    model and Machine for the Machine baseline; with its log and notices in the store for the
    Engine). The core and the baselines hand their log entries back: those are dropped, as a
    caller drops them once persisted."""

    def run() -> object:
        kept, log = v.run(scripts)
        log.clear()
        return kept

    return run


def memory_per_record(v: Variant, scripts: Sequence[Script]) -> float:
    return traced_bytes(keeping(v, scripts), len(scripts))


def tracked_objects(v: Variant, scripts: Sequence[Script]) -> float:
    """Objects the cyclic garbage collector tracks, per consultation, that ``v`` keeps alive: the
    more there are, the longer every full collection takes."""
    gc.collect()
    before = len(gc.get_objects())
    kept = keeping(v, scripts)()
    gc.collect()
    after = len(gc.get_objects())
    del kept
    return (after - before) / len(scripts)


def machines_bytes(spec: list[dict[str, Any]], n: int, auto_transitions: bool) -> float:
    """Bytes per Machine on an empty model: what a Machine per record adds to each record."""
    return traced_bytes(lambda: [new_case(spec, auto_transitions) for _ in range(n)], n)


def machine_build_seconds(spec: list[dict[str, Any]], alive: int, builds: int, auto_transitions: bool) -> float:
    """Seconds to build one per-record Machine (on an empty model) while ``alive`` of them are
    kept, as live records keep theirs: the median over ``builds`` builds in groups of ``alive``.
    The more are alive, the longer the cyclic GC's full collections take."""
    per_build = []
    for _ in range(max(1, builds // alive)):
        cases = []
        gc.collect()
        started = time.perf_counter()
        for _ in range(alive):
            cases.append(new_case(spec, auto_transitions))
        per_build.append((time.perf_counter() - started) / alive)
        del cases
    return float(median(per_build))


# ================================================================================================
# The report
# ================================================================================================
def ratio(seconds: dict[str, list[float]], faster: str, slower: str) -> str:
    """Rate of ``faster`` over rate of ``slower``: the ratio of the medians, then the range of the
    ratios within each repetition (the two ran back to back, so noise hits both alike)."""
    overall = median(seconds[slower]) / median(seconds[faster])
    per_rep = [s / f for f, s in zip(seconds[faster], seconds[slower], strict=True)]
    return f"{overall:5.2f}x {spread(per_rep, '.2f'):<13}"


RATIOS = (
    ("Engine + MemoryStore vs Machine per record", "engine", "machine"),
    ("pure core vs Machine per record", "core", "machine"),
    ("dict table vs Machine per record", "dict", "machine"),
    ("pure core vs dict table", "core", "dict"),
    ("Engine + MemoryStore vs pure core", "engine", "core"),
    ("Engine, directory vs caller's roles", "engine", "trusting"),
    ("Engine, load-time digest check vs none", "engine", "unchecked"),
    ("Engine, the check on every load vs none", "everyload", "unchecked"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, one repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 9; --quick 1)")
    parser.add_argument("--batch", type=int, default=None, help="lifecycles per batch (default 200; --quick 8)")
    args = parser.parse_args(argv)
    quick: bool = args.quick
    reps: int = args.reps or (1 if quick else 9)
    batch: int = args.batch or (8 if quick else 200)
    small = max(2, batch // 10)  # the same, with a tenth as many records alive at the end of a batch
    n_bare, n_machine, n_lived = (40, 20, 8) if quick else (2000, 300, 200)
    few = 10  # Machines alive while timing how long one takes to build, against n_machine alive
    started = time.perf_counter()
    out = print

    procedure = bench_procedure()
    vs = variants(procedure)
    spec = machine_spec(procedure)
    machine = next(v for v in vs if v.key == "machine")
    scripts = [script_for(i) for i in range(max(batch, n_machine, n_lived))]
    steps = sum(len(s) for s in scripts[:batch])
    fresh = [script_for(i)[:1] for i in range(max(n_bare, n_machine))]  # the proposals alone

    out("consultflow lifecycle benchmark" + (" (--quick smoke run: the figures mean nothing)" if quick else ""))
    out(describe_machine())
    out(package_versions("consultflow", "transitions", "pydantic", "pydantic-core"))

    # correctness first: the same commands must give the same log in every variant, or no figures
    check_entries = same_logs_check(vs, scripts[: RECONSULT_EVERY + 1])
    out(
        f"start-up check passed: {RECONSULT_EVERY + 1} lifecycles, {check_entries} log entries, the same hashes "
        "in every variant; every chain verifies, every consultation closed"
    )
    out(
        f"workload: {steps / batch:.1f} commands per lifecycle on average (1 lifecycle in {RECONSULT_EVERY} "
        "consults again after a failed inspection), commands built before timing; batches of "
        f"{batch} and of {small} lifecycles, each from fresh state; median of {reps} and of {5 * reps} "
        "interleaved repetitions (time.perf_counter)"
    )

    timed_runs(vs, scripts[: max(2, batch // 4)], 1)  # warm-up, not reported
    seconds = timed_runs(vs, scripts[:batch], reps)
    seconds_small = timed_runs(vs, scripts[:small], 5 * reps)

    memory_fresh = {v.key: memory_per_record(v, fresh[:n_bare]) for v in vs if v.key != "machine"}
    memory_fresh["machine"] = memory_per_record(machine, fresh[:n_machine])
    memory_lived = {v.key: memory_per_record(v, scripts[:n_lived]) for v in vs}
    core = next(v for v in vs if v.key == "core")
    objects_bare = tracked_objects(core, fresh[:n_bare])
    objects_machine = tracked_objects(machine, fresh[:n_machine])
    machine_only = {auto: machines_bytes(spec, n_machine, auto) for auto in (True, False)}
    build = {
        (auto, alive): machine_build_seconds(spec, alive, max(n_machine, 3 * few), auto)
        for auto in (True, False)
        for alive in (few, n_machine)
    }

    out("")
    head = f"batch {batch}"
    out(
        f"  {'variant':<40} {'lifecycles/s, ' + head:>22} {'(min-max)':<14} {'us/step':>8} {'batch ' + str(small):>9}"
        f" {'bytes/record':>13} {'after lifecycle':>16}"
    )
    for v in vs:
        rates = [batch / s for s in seconds[v.key]]
        med = median(seconds[v.key])
        out(
            f"  {v.label:<40} {batch / med:>22,.0f} {spread(rates):<14} {med / steps * 1e6:>8,.1f}"
            f" {small / median(seconds_small[v.key]):>9,.0f}"
            f" {memory_fresh[v.key]:>13,.0f} {memory_lived[v.key]:>16,.0f}"
        )
    out(
        "  bytes/record: what each keeps per consultation after the proposal and after the whole lifecycle\n"
        "  (tracemalloc): the Engine's store holds the record, its log and outbox; the core and the dict table\n"
        "  the record alone; the Machine baseline the record, its model and its Machine"
    )
    out("")
    out("ratios measured in this run (of median rates; per-repetition range in brackets):")
    out(f"  {'':<44} {'batches of ' + str(batch):<21} {'batches of ' + str(small)}")
    for label, faster, slower in RATIOS:
        out(f"  {label:<44} {ratio(seconds, faster, slower)} {ratio(seconds_small, faster, slower)}")
    bare = memory_fresh["core"]
    out(
        f"  {'memory, record + Machine vs bare record':<44} {memory_fresh['machine'] / bare:5.1f}x"
        f"  ({memory_fresh['machine']:,.0f} vs {bare:,.0f} bytes after the proposal;"
        f" {objects_machine:,.0f} vs {objects_bare:,.0f} objects the cyclic GC tracks)"
    )
    out("")
    out("a Machine per record alone, on an empty model (what the library never builds):")
    for auto in (True, False):
        out(
            f"  auto_transitions={auto!s:<5} {machine_only[auto]:>9,.0f} bytes; to build: "
            f"{build[auto, few] * 1e6:,.0f} us with {few} alive, {build[auto, n_machine] * 1e6:,.0f} us with "
            f"{n_machine} alive" + ("  <- the baseline above" if auto is AUTO_TRANSITIONS else "")
        )
    out(f"(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
