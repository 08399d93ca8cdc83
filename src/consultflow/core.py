"""The pure core: (procedure, record, command, context) -> a step or a refusal.

No I/O, no clock, no randomness: the same inputs always give the same step, which is what makes
the engine testable, replayable and fast enough for simulations. Nothing here is step-specific:
the steps (``consultflow.steps``) declare what each trigger checks and does; the core selects the
transition, authorises, runs the guards and the effect, and assembles the log entries and notices.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .commands import Command
from .context import Context
from .deadlines import next_due
from .log import LogEntry, chain_hash
from .notices import Notice
from .procedure import NEW, Option, Procedure
from .records import SCHEMA_VERSION, Consultation, evolve, make
from .refusals import Failure, Refused
from .roles import RELATIONAL_ROLES, Actor, Role
from .step import Step
from .steps import EFFECTS, audience_for
from .vocabulary import Event, State, Trigger

__all__ = ["apply", "authorise", "check", "enact"]

# the fields next_due reads besides the state: a step that touches none of them keeps it
_DEADLINE_FIELDS = frozenset({"cycle", "decision_due", "review_due", "decisions", "progress", "missed"})
_ROLE_ORDER: Mapping[Role, int] = {r: i for i, r in enumerate(Role)}


def authorise(option_roles: frozenset[Role], record: Consultation | None, actor: Actor) -> Role | Failure:
    """The role under which ``actor`` may fire a transition allowing ``option_roles``, or why not.

    Default deny. ``proposer`` matches the actor who proposed, ``invitee`` one the consultation
    invited; a rotating chair acts only on the consultation that named them chair.
    """
    best: Role | None = None
    for role in actor.roles & option_roles:
        if role in RELATIONAL_ROLES:
            continue
        if best is None or _ROLE_ORDER[role] < _ROLE_ORDER[best]:
            best = role
    if best is not None:
        return best
    if record is not None:
        if Role.PROPOSER in option_roles and record.proposer == actor.id:
            return Role.PROPOSER
        if Role.INVITEE in option_roles and actor.id in record.invited:
            return Role.INVITEE
        if Role.ROTATING_CHAIR in option_roles and Role.ROTATING_CHAIR in actor.roles:
            if record.chair == actor.id:
                return Role.ROTATING_CHAIR
            if record.chair is None:
                return Failure("no_chair_named")
            return Failure("not_the_chair", {"chair": record.chair})
    return Failure("role_not_allowed", {"actor": actor.id, "allowed": sorted(r.value for r in option_roles)})


def _refuse(failure: Failure, guard: str, trigger: str, record: Consultation | None) -> Refused:
    trigger = str(trigger)
    data: dict[str, object] = {"action": trigger, **failure.data}
    return Refused(
        failure.code,
        guard=guard,
        data=data,
        trigger=trigger,
        state=None if record is None else record.state.value,
        consultation=None if record is None else record.id,
    )


def _select(
    procedure: Procedure,
    record: Consultation | None,
    trigger: str,
    command: Command | None,
    ctx: Context,
) -> tuple[Option, Role] | Refused:
    """The transition ``trigger`` takes from the record's state and the role it is taken under,
    or the refusal. The core's own guards come first - the state (``state``), then the roles
    (``role``, default deny) - then routes choose (``route``), then the transition's guards.

    Without a command (``check``), the routes and guards that read one are passed over.
    """
    state = NEW if record is None else record.state
    group = procedure.group(state, trigger)
    if group is None:
        failure = Failure("invalid_in_state", {"state": str(state), "next": list(procedure.next_steps(state))})
        return _refuse(failure, "state", trigger, record)
    options, roles = group
    # Authorise against every role the trigger admits here, before any guard reads the record.
    granted = authorise(roles, record, ctx.actor)
    if isinstance(granted, Failure):
        if granted.code == "role_not_allowed" and Role.INVITEE in roles and record is not None:
            # a step open to whoever takes part (an opinion, a sign-in): say that, not fifteen roles
            granted = Failure(
                "not_taking_part", {"person": ctx.actor.id, "open_to": procedure.parameters.round_open_to}
            )
        return _refuse(granted, "role", trigger, record)
    params = procedure.parameters
    chosen: Option | None = None
    for opt in options:
        if command is None and opt.routes_need_command:
            chosen = chosen or opt  # cannot tell without the command: report on the first candidate
            continue
        for route in opt.routes:
            if not route.test(params, record, command, ctx):
                break
        else:
            chosen = opt
            break
    if chosen is None:
        return _refuse(Failure("no_route"), "route", trigger, record)
    if chosen.roles is not roles:
        granted = authorise(chosen.roles, record, ctx.actor)
        if isinstance(granted, Failure):
            return _refuse(granted, "role", trigger, record)
    for guard in chosen.guards:
        if command is None and guard.needs_command:
            continue
        found = guard.check(params, record, command, ctx)
        if found is not None:
            return _refuse(found, guard.name, trigger, record)
    return chosen, granted


def check(
    procedure: Procedure,
    record: Consultation | None,
    trigger: str,
    ctx: Context,
    command: Command | None = None,
) -> tuple[str | None, Refused | None]:
    """Would ``ctx.actor`` be allowed ``trigger`` now? Returns (role, None) or (None, refusal).

    Without a command, only the guards that do not read one are checked (``Engine.allowed``).
    """
    selected = _select(procedure, record, trigger, command, ctx)
    if isinstance(selected, Refused):
        return None, selected
    return selected[1], None


def apply(
    procedure: Procedure, record: Consultation | None, command: Command, ctx: Context, *, lazy: bool = False
) -> Step | Refused:
    """The heart of the library: apply ``command`` to ``record`` (``None`` for a proposal) under
    ``procedure``.

    Returns the ``Step`` (new record, log entries, notices) or the ``Refused`` explaining which
    guard failed. Nothing is mutated; a refusal changes nothing.

    ``lazy`` (a simulation's mode) skips only what persistence needs: the entries are left
    unchained (``prev``, ``hash`` and the record's ``head`` empty; ``log.seal`` chains them later
    to the very same hashes) and no outbox notices are made. Every guard, route and effect runs.
    """
    trigger = command.trigger
    if record is not None and trigger is Trigger.PROPOSE:
        failure = Failure("invalid_in_state", {"state": str(record.state), "next": []})
        return _refuse(failure, "state", trigger, record)
    selected = _select(procedure, record, trigger, command, ctx)
    if isinstance(selected, Refused):
        return selected
    chosen, granted = selected
    return enact(procedure, record, command, ctx, granted, chosen.target, lazy=lazy)


def enact(
    procedure: Procedure,
    record: Consultation | None,
    command: Command,
    ctx: Context,
    role: str,
    target: State | None,
    *,
    lazy: bool = False,
) -> Step:
    """Carry out a transition already chosen and authorised: the step's effect, then the log
    entries, the stamped record and the notices. ``target`` ``None`` keeps the state.

    ``apply`` calls it after its checks; a caller that chose the transition some other way (a
    benchmark's baseline dispatch) gets the very same step from it. It checks nothing itself.
    """
    if target is None:
        if record is None:
            raise ValueError("a proposal always enters a state: give its target")
        target = record.state
    update, events = EFFECTS[command.trigger](procedure, record, command, ctx, role, target)
    return _assemble(record, update, events, target, ctx, role, lazy)


def _entry(
    cid: str,
    seq: int,
    event: Event,
    source: State | None,
    target: State,
    actor: str,
    role: str,
    at: datetime,
    data: dict[str, Any],
    prev: str,
    digest: str,
) -> LogEntry:
    return make(
        LogEntry,
        {
            "schema_version": SCHEMA_VERSION,
            "consultation": cid,
            "seq": seq,
            "event": event,
            "source": source,
            "target": target,
            "actor": actor,
            "role": role,
            "at": at,
            "data": data,
            "prev": prev,
            "hash": digest,
        },
    )


def _assemble(
    record: Consultation | None,
    update: dict[str, Any],
    events: list[tuple[Event, dict[str, Any]]],
    target: State,
    ctx: Context,
    role: str,
    lazy: bool = False,
) -> Step:
    """Chain the events into log entries, stamp the record (state, version, head, next deadline)
    and make the notices. For a proposal ``update`` holds every field of the new record.
    ``lazy``: entries unchained, no notices (see ``apply``)."""
    if record is None:
        cid = update["id"]
        source: State | None = None
        prev, seq = "", 0
        base = update
    else:
        cid = record.id
        source = record.state
        prev, seq = record.head, record.version
        base = record.__dict__
    now = ctx.now
    at = "" if lazy else now.isoformat()
    actor = ctx.actor.id
    last = len(events) - 1
    entries = []
    for i, (event, data) in enumerate(events):
        seq += 1
        to = target if i == last else (source or target)
        digest = "" if lazy else chain_hash(SCHEMA_VERSION, cid, seq, event, source, to, actor, role, at, data, prev)
        entries.append(_entry(cid, seq, event, source, to, actor, role, now, data, prev, digest))
        prev = digest
    if target is not source or not _DEADLINE_FIELDS.isdisjoint(update):
        decisions = update.get("decisions", base["decisions"])
        update["next_due"] = next_due(
            target,
            update.get("cycle", base["cycle"]),
            base["respond_by"],
            update.get("decision_due", base["decision_due"]),
            update.get("review_due", base["review_due"]),
            decisions[-1] if decisions else None,
            update.get("progress", base["progress"]),
            update.get("missed", base["missed"]),
        )
    update["state"] = target
    update["version"] = seq
    update["head"] = prev
    new = make(Consultation, update) if record is None else evolve(record, update)
    notices = []
    for entry in () if lazy else entries:
        audience = audience_for(entry.event, new)
        if audience:
            notices.append(
                make(
                    Notice,
                    {
                        "key": f"{cid}:{entry.seq}",
                        "consultation": cid,
                        "seq": entry.seq,
                        "event": entry.event,
                        "audience": audience,
                        "title": new.title,
                        "created_at": now,
                        "status": "pending",
                        "attempts": 0,
                        "not_before": None,
                        "last_error": "",
                    },
                )
            )
    return Step(new, tuple(entries), tuple(notices))
