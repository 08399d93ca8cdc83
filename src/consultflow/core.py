"""The pure core: (procedure, record, command, context) -> a step or a refusal.

No I/O, no clock, no randomness: the same inputs always give the same step, which is what makes
the engine testable, replayable and fast enough for simulations. Nothing here is step-specific:
the steps (``consultflow.steps``) declare what each trigger checks and does; the core selects the
transition, authorises, runs the guards and the effect, and assembles the log entries and notices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from .canonical import canonical_value, fields_digest, record_digest, remember_digest, timestamp
from .commands import Command
from .context import Context
from .deadlines import next_due
from .log import GENESIS, LogEntry, chain_hash
from .notices import Notice
from .procedure import NEW, Option, Procedure
from .records import SCHEMA_VERSION, Consultation, make
from .refusals import Failure, Refused
from .roles import RELATIONAL_ROLES, Actor, Role
from .step import Step
from .steps import EFFECTS, audience_for
from .vocabulary import Event, State, Trigger

__all__ = [
    "apply",
    "authorise",
    "check",
    "enact",
    "seal",
    "step_input",
]

# the fields next_due reads besides the state: a step that touches none of them keeps it
_DEADLINE_FIELDS = frozenset(
    {"cycle", "respond_by", "decision_due", "review_due", "decisions", "progress", "missed", "pledges"}
)
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

    ``lazy`` (a simulation's mode) skips only what persistence needs: the record's digest is not
    taken, the entries are left unchained (``record_digest``, ``prev``, ``hash`` and the record's
    ``head`` empty) and the step's input is not written into its first entry (``Step.pending_input``
    makes it); ``seal`` finishes them later to the very same entries and hashes. No outbox notices
    are made. Every guard, route and effect runs.
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
    bound: str | None = None,
    *,
    lazy: bool = False,
    hashes: Sequence[str] | None = None,
) -> Step:
    """Carry out a transition already chosen and authorised: the step's effect, then the log
    entries, the stamped record and the notices. ``target`` ``None`` keeps the state.

    ``apply`` calls it after its checks; a caller that chose the transition some other way (a
    benchmark's baseline dispatch) gets the very same step from it. It checks nothing itself.
    ``bound`` is for replay alone: the record digest to write instead of computing it (replay
    checks the digest of the record it ends with, once). So is ``hashes``: the hashes of the logged
    entries of this step, which the chain check has held, written instead of hashing again - replay
    then holds each entry it makes to the logged one field for field (``replay._same``).
    """
    if target is None:
        if record is None:
            raise ValueError("a proposal always enters a state: give its target")
        target = record.state
    update, events = EFFECTS[command.trigger](procedure, record, command, ctx, role, target)
    # lazy: the input is only the log's, made when ``seal`` finishes it, if ever
    pending = partial(step_input, procedure, record, command, ctx) if lazy else None
    return _assemble(
        record,
        update,
        events,
        target,
        ctx,
        role,
        None if lazy else step_input(procedure, record, command, ctx),
        bound,
        lazy,
        _private_keys(procedure.parameters.private_text),
        hashes if hashes is not None and len(hashes) == len(events) else None,
        pending=pending,
    )


_PRIVATE: dict[frozenset[str], tuple[str, ...]] = {}


def _private_keys(keys: frozenset[str]) -> tuple[str, ...]:
    """The free-text keys an entry keeps out of its hash, as it lists them: sorted (found once)."""
    found = _PRIVATE.get(keys)
    if found is None:
        if len(_PRIVATE) > 256:
            _PRIVATE.clear()
        found = _PRIVATE[keys] = tuple(sorted(keys))
    return found


_ROLE_LISTS: dict[frozenset[Role], list[str]] = {}


def _role_list(roles: frozenset[Role]) -> list[str]:
    """The roles as the log writes them: their values, sorted (a fresh list each time)."""
    found = _ROLE_LISTS.get(roles)
    if found is None:
        if len(_ROLE_LISTS) > 1024:
            _ROLE_LISTS.clear()
        found = _ROLE_LISTS[roles] = sorted(r.value for r in roles)
    return list(found)


# per command class: its fields in key order, split where the ``"command"`` key goes
_COMMAND_KEYS: dict[type[Command], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _command_value(command: Command) -> dict[str, Any]:
    """The command as the log carries it: ``{"command": trigger, **fields}`` as canonical values,
    keys sorted - ``canonical_value`` of its fields, with the key order found once per class."""
    kind = type(command)
    split = _COMMAND_KEYS.get(kind)
    if split is None:
        keys = sorted(kind.model_fields)
        if "command" in keys:  # a field would stand for the trigger: no fast path for such a class
            split = ((), ())
        else:
            cut = sum(1 for k in keys if k < "command")
            split = (tuple(keys[:cut]), tuple(keys[cut:]))
        _COMMAND_KEYS[kind] = split
    fields = command.__dict__
    before, after = split
    if len(fields) == len(before) + len(after) and (before or after):
        try:
            out = {k: canonical_value(fields[k]) for k in before}
            out["command"] = command.trigger.value
            for k in after:
                out[k] = canonical_value(fields[k])
            return out
        except KeyError:  # as many fields as the class has, not the same ones
            pass
    return dict(sorted({"command": command.trigger.value, **canonical_value(command)}.items()))


def step_input(procedure: Procedure, record: Consultation | None, command: Command, ctx: Context) -> dict[str, Any]:
    """What a step's first log entry carries so that replay can do the step again: the command,
    the roles of the actor and of the people it names as the directory gave them (effects read
    them), a voting body's register as the directory listed it, the community's fund ledger for
    the year as the store had it, and for a proposal the procedure it runs under. Canonical JSON values, keys sorted at
    every level (``log.chain_hash`` hashes them as they stand)."""
    named = command.named_people()
    people = {p: _role_list(ctx.roles_of(p)) for p in sorted(set(named))} if named else {}
    out: dict[str, Any] = {"actor_roles": _role_list(ctx.actor.roles)}
    if ctx.added_items:  # catalogue items an earlier step of the community added (提议: 列入二级目录)
        out["added_items"] = [canonical_value(i) for i in ctx.added_items]
    out["command"] = _command_value(command)
    out["people"] = people
    if record is None:
        out["procedure"] = [procedure.name, procedure.version]
    if ctx.register is not None:  # a body's members as the directory listed them (the vote counts them)
        out["register"] = list(ctx.register)
    if ctx.fund is not None:  # the community's fund ledger for the year, as the store had it (微幸福)
        out = dict(sorted({**out, "fund": canonical_value(ctx.fund)}.items()))
    return out


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
    step_in: dict[str, Any] | None,
    record_digest: str,
    prev: str,
    digest: str,
    private: tuple[str, ...],
    salt: str,
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
            "input": step_in,
            "record_digest": record_digest,
            "prev": prev,
            "hash": digest,
            "private": private,
            "salt": salt,
        },
    )


def _assemble(
    record: Consultation | None,
    update: dict[str, Any],
    events: list[tuple[Event, dict[str, Any]]],
    target: State,
    ctx: Context,
    role: str,
    step_in: dict[str, Any] | None,
    bound: str | None = None,
    lazy: bool = False,
    private: tuple[str, ...] = (),
    hashes: Sequence[str] | None = None,
    *,
    pending: Callable[[], dict[str, Any]] | None = None,
) -> Step:
    """Stamp the record (state, version, next deadline), chain the events into log entries - the
    first carrying the step's input, the last the digest of the record - then the record's head,
    and make the notices. For a proposal ``update`` holds every field of the new record.
    ``lazy``: no digest, entries unchained and the first without its input (``pending`` makes it),
    the record's head empty, no notices (see ``apply``; ``seal`` finishes the log)."""
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
    actor = ctx.actor.id
    salt = ctx.salt
    last = len(events) - 1
    if target is not source or not _DEADLINE_FIELDS.isdisjoint(update):
        decisions = update.get("decisions", base["decisions"])
        update["next_due"] = next_due(
            target,
            update.get("cycle", base["cycle"]),
            update.get("respond_by", base["respond_by"]),  # 提议 intake: submission, appeal and its ruling set it
            update.get("decision_due", base["decision_due"]),
            update.get("review_due", base["review_due"]),
            decisions[-1] if decisions else None,
            update.get("progress", base["progress"]),
            update.get("missed", base["missed"]),
            update.get("pledges", base["pledges"]),
        )
    update["state"] = target
    update["version"] = seq + len(events)
    # the record's fields, made once: the digest is taken from them before the record is made with
    # its head (the hash of the entry that carries the digest)
    if record is None:
        values = update
    else:
        values = record.__dict__.copy()
        values.update(update)
    if lazy:
        values["head"] = ""
        unchained = []
        for i, (event, data) in enumerate(events):
            seq += 1
            to = target if i == last else (source or target)
            entry_in = step_in if i == 0 else None
            unchained.append(
                _entry(cid, seq, event, source, to, actor, role, now, data, entry_in, "", "", "", private, salt)
            )
        return Step(make(Consultation, values), tuple(unchained), (), pending)
    at = timestamp(now)
    known = None
    if bound is None:
        # only the fields in ``update`` differ from the record's very objects
        known = fields_digest(Consultation, values, record, update)
        bound = known[1]
    entries = []
    for i, (event, data) in enumerate(events):
        seq += 1
        to = target if i == last else (source or target)
        entry_in = step_in if i == 0 else None
        entry_digest = bound if i == last else ""
        if hashes is None:
            digest = chain_hash(
                SCHEMA_VERSION, cid, seq, event, source, to, actor, role, at, data, entry_in, entry_digest, prev,
                private, salt,
            )  # fmt: skip
        else:
            digest = hashes[i]  # replay's: the logged entry's, held by the chain check (``enact``)
        entries.append(
            _entry(
                cid, seq, event, source, to, actor, role, now, data, entry_in, entry_digest, prev, digest, private, salt
            )
        )
        prev = digest
    values["head"] = prev
    new = make(Consultation, values)
    if known is not None:
        remember_digest(new, known)  # for the next step's digest (and a load of this very record)
    notices = []
    for entry in entries:
        audience = audience_for(entry.event, new, entry.data)
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


def seal(steps: Iterable[Step]) -> tuple[LogEntry, ...]:
    """The log of one consultation's steps the core made lazily (``apply(..., lazy=True)``, a
    simulation's mode), in order: each step's last entry bound to the digest of the record that
    step left, every entry chained - the very entries, hashes included, the core would have made."""
    prev = GENESIS
    before: Consultation | None = None
    out = []
    for step in steps:
        bound = record_digest(step.record, before)
        before = step.record
        last = len(step.entries) - 1
        pending = step.pending_input
        for i, e in enumerate(step.entries):
            entry_digest = bound if i == last else ""
            entry_in = pending() if i == 0 and pending is not None else e.input
            digest = chain_hash(
                e.schema_version, e.consultation, e.seq, e.event, e.source, e.target, e.actor, e.role,
                timestamp(e.at), e.data, entry_in, entry_digest, prev, e.private, e.salt,
            )  # fmt: skip
            values = e.__dict__.copy()
            values["input"] = entry_in
            values["record_digest"], values["prev"], values["hash"] = entry_digest, prev, digest
            out.append(make(LogEntry, values))
            prev = digest
    return tuple(out)
