"""Replay (重放): the record is a projection of its log.

Each step's first log entry carries its input (the command, the roles the directory gave the
actor and the people it names, and for a proposal the procedure); each step's last entry carries
the digest of the record it left. ``replay`` runs the steps again through the procedure
(``core.enact``: the same effect, the same assembly) from nothing, checks that every entry it makes
is byte for byte the stored one, and returns the record the log implies; ``first_difference`` names
the first field where a stored record departs from it.

Replay does not judge again whether each step was allowed: that depended on the directory and the
catalogue of the time, which the log names but does not hold. It proves that the record is what
the logged steps make, and that the logged steps are what the procedure does with their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from pydantic_core import to_json

from .canonical import canonical_value, record_digest
from .catalogue import TopicItem
from .context import Context
from .core import enact
from .errors import ConsultflowError
from .funds import FundPosition, LedgerRow, ledger_rows
from .log import LogEntry, Verification, entry_fast_hash, entry_hash, verify
from .notices import Notice, reminder_deadline
from .procedure import Procedure
from .records import Consultation
from .roles import Actor, Role
from .steps import COMMANDS

__all__ = ["Replayed", "check_loaded", "first_difference", "ledger_difference", "replay", "verify_consultation"]

# What a tampered input can make an effect raise; each becomes a finding, never a crash.
_BAD_INPUT = (ConsultflowError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


@attrs.frozen(slots=True)
class Replayed:
    """What replay found: the record the log implies, or the first entry it could not do again."""

    record: Consultation | None
    seq: int | None = None
    reason: str = ""
    notices: tuple[Notice, ...] = ()

    @property
    def ok(self) -> bool:
        return self.record is not None and not self.reason


def _roles(values: object) -> frozenset[Role]:
    if not isinstance(values, list):
        raise ValueError("roles must be a list")
    return frozenset(Role(v) for v in values)


def _first_field(stored: Mapping[str, Any], made: Mapping[str, Any]) -> str:
    for key in sorted(set(stored) | set(made)):
        if stored.get(key) != made.get(key):
            return f"{key}: the log holds {stored.get(key)!r}, replay gives {made.get(key)!r}"
    return "the entries differ"


def replay(
    entries: Sequence[LogEntry], procedures: Mapping[tuple[str, str], Procedure], *, verified: bool = False
) -> Replayed:
    """Run the logged steps again from nothing; ``procedures`` maps (name, version) to definitions.

    Expects a chain that ``log.verify`` accepts (it checks the steps, not the hashes again). Say
    ``verified`` when that check has just held every hash (``verify_consultation``): replay then
    does not hash the entries it makes again but holds each to the logged one field for field - the
    same fields, the same hash."""
    record: Consultation | None = None
    procedure: Procedure | None = None
    notices: list[Notice] = []
    i = 0
    while i < len(entries):
        first = entries[i]
        end = i
        while end < len(entries) and not entries[end].record_digest:
            end += 1
        if end == len(entries):
            return Replayed(None, first.seq, "the last step's entries carry no record digest: the log ends mid-step")
        step_in = first.input
        if not isinstance(step_in, dict):
            return Replayed(None, first.seq, "the entry starts a step but carries no input to replay it by")
        try:
            body = step_in["command"]
            if not isinstance(body, dict):
                raise ValueError("the command is not an object")
            fields = dict(body)
            kind = COMMANDS[str(fields.pop("command"))]
            command = kind.model_validate(fields)
            if record is None:
                named = step_in["procedure"]
                if not isinstance(named, list) or len(named) != 2:
                    raise ValueError("the procedure is not [name, version]")
                name, version = named
                procedure = procedures.get((str(name), str(version)))
                if procedure is None:
                    return Replayed(
                        None,
                        first.seq,
                        f"procedure {name!r} version {version!r} is not known here: give its definition to replay",
                    )
            people = step_in["people"]
            if not isinstance(people, dict):
                raise ValueError("people must be an object")
            ctx = Context(
                now=first.at,
                actor=Actor.known(first.actor, _roles(step_in["actor_roles"])),
                new_id=first.consultation if record is None else None,
                people={str(p): _roles(r) for p, r in people.items()},
                register=_register(step_in.get("register")),
                salt=first.salt,
                added_items=_added_items(step_in.get("added_items")),
                fund=_fund(step_in.get("fund")),
            )
            assert procedure is not None
            # Every step's digest is in its entry's hash, which the chain check held; replay checks
            # the one that matters - the record it ends with - once, below, not at every step.
            last = end == len(entries) - 1
            bound = None if last else entries[end].record_digest
            hashes = [e.hash for e in entries[i : end + 1]] if verified else None
            step = enact(procedure, record, command, ctx, first.role, entries[end].target, bound, hashes=hashes)
        except _BAD_INPUT as exc:
            return Replayed(None, first.seq, f"the step cannot be replayed from its input: {exc}")
        stored = entries[i : end + 1]
        for made, kept in zip(step.entries, stored, strict=False):
            if made.hash != kept.hash or (verified and not _same(made, kept)):
                return Replayed(None, kept.seq, "replay differs - " + _first_field(kept.body(), made.body()))
        if len(step.entries) != len(stored):
            return Replayed(
                None,
                first.seq,
                f"the step logged {len(stored)} entries, replay makes {len(step.entries)}",
            )
        record = step.record
        notices.extend(step.notices)
        i = end + 1
    if record is None:
        return Replayed(None, None, "the log is empty")
    return Replayed(record, notices=tuple(notices))


def _same(made: LogEntry, kept: LogEntry) -> bool:
    """The entry replay made is the logged one, field for field, its data and input as the same JSON
    (``True`` is not ``1`` there, nor a key order another): so its canonical form, and its hash, are
    the logged entry's - which the chain check held."""
    a, b = made.__dict__, kept.__dict__
    return a == b and to_json(a["data"]) == to_json(b["data"]) and to_json(a["input"]) == to_json(b["input"])


def _walk(path: str, stored: Any, made: Any) -> str | None:
    if stored == made:
        return None
    if isinstance(stored, dict) and isinstance(made, dict):
        for key in sorted(set(stored) | set(made)):
            found = _walk(f"{path}.{key}" if path else key, stored.get(key), made.get(key))
            if found is not None:
                return found
    if isinstance(stored, list) and isinstance(made, list) and len(stored) == len(made):
        for n, (a, b) in enumerate(zip(stored, made, strict=True)):
            found = _walk(f"{path}#{n + 1}", a, b)
            if found is not None:
                return found
    return f"{path or 'record'}: stored {stored!r}, the log gives {made!r}"


def first_difference(stored: Consultation, rebuilt: Consultation) -> str | None:
    """The first field (``rounds#2.opinions#1.stance``) where ``stored`` departs from the record
    the log gives, with both values; ``None`` when they are the same record."""
    if stored.head == rebuilt.head and record_digest(stored) == record_digest(rebuilt):
        return None  # the same canonical JSON: no field differs
    return _walk("", canonical_value(stored), canonical_value(rebuilt))


def check_loaded(record: Consultation, last: Sequence[LogEntry]) -> str | None:
    """Why a loaded record cannot be trusted without a replay, or ``None``: ``last`` must be its
    log's entry at the record's version, with the record's head as its hash, a hash that holds,
    and the digest of this very record. Cheap: one entry and one digest."""
    if not last or last[0].seq != record.version:  # later entries may follow: another writer's
        return f"its log has no entry at its version {record.version}"
    entry = last[0]
    if entry.hash != record.head:
        return "its head is not the hash of its last log entry"
    if entry.consultation != record.id:
        return "its last log entry belongs to another consultation"
    if record_digest(record) != entry.record_digest:
        return "it is not the record its last log entry was written with (the record was changed)"
    if entry_fast_hash(entry) != entry.hash and entry_hash(entry.body()) != entry.hash:
        return "its last log entry was changed"
    return None


def verify_consultation(
    record: Consultation | None,
    entries: Sequence[LogEntry],
    procedures: Mapping[tuple[str, str], Procedure],
    outbox: Sequence[Notice] | None = None,
    ledger: Sequence[LedgerRow] | None = None,
    *,
    chain_checked: bool = False,
) -> Verification:
    """Everything that can be checked of one consultation without an outside anchor: its chain
    (``log.verify``: hashes, links, order, each entry starting where the one before ended, the
    record's head and version), then replay, then the stored record field by field against the
    record its log gives, and - given its stored ``outbox`` notices - that each notice the steps
    made is there as made (who hears of what; its delivery state is the dispatcher's and may
    change), and - given its stored fund ``ledger`` rows - that they are what its funds entries
    give (微幸福 fund). ``record`` ``None`` means the log lost its record.

    ``chain_checked``: the caller has verified this chain on the stored bytes these entries were
    parsed from, each entry exactly their canonical form, against this record's head and version
    (``SQLiteStore.audit_consultation``): the entries are not hashed again."""
    if record is None:
        return Verification(False, len(entries), None, None, f"{len(entries)} log entries but no record")
    if chain_checked:
        chain = Verification(True, len(entries))
    else:
        chain = verify(entries, head=record.head, version=record.version)
    if not chain.ok:
        return chain
    rebuilt = replay(entries, procedures, verified=True)
    if rebuilt.record is None:
        index = None if rebuilt.seq is None else rebuilt.seq - 1
        return Verification(False, chain.checked, index, rebuilt.seq, rebuilt.reason)
    differs = first_difference(record, rebuilt.record)
    if differs is not None:
        return Verification(
            False, chain.checked, None, None, f"the record is not what its log gives: first difference at {differs}"
        )
    if outbox is not None:
        found = _outbox_difference(outbox, rebuilt.notices)
        if found is not None:
            return Verification(False, chain.checked, found[0] - 1, found[0], found[1])
    if ledger is not None:
        found = ledger_difference(entries, ledger)
        if found is not None:
            return Verification(False, chain.checked, found[0] - 1, found[0], found[1])
    return chain


_NOTICE_FIXED = ("key", "consultation", "seq", "event", "audience", "title", "created_at")


def _outbox_difference(stored: Sequence[Notice], made: Sequence[Notice]) -> tuple[int, str] | None:
    kept = {n.key: n for n in stored}
    for notice in made:
        have = kept.pop(notice.key, None)
        if have is None:
            return notice.seq, f"outbox notice {notice.key!r} that this step made is missing from the outbox"
        for name in _NOTICE_FIXED:
            if canonical_value(getattr(have, name)) != canonical_value(getattr(notice, name)):
                return notice.seq, f"outbox notice {notice.key!r} was changed: its {name} is not what the step made"
    for key, extra in kept.items():
        if reminder_deadline(extra) is not None:
            continue  # a reminder (提醒) is no step's: the dispatcher adds it, it is not evidence
        return extra.seq, f"outbox notice {key!r} was made by no step of the log"
    return None


def _added_items(value: object) -> tuple[TopicItem, ...]:
    """The catalogue items an earlier step added, as the step's input logged them."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("added_items is not a list")
    return tuple(TopicItem.model_validate(v) for v in value)


def _register(value: object) -> tuple[str, ...] | None:
    """A body's register as the step's input logged it (sorted ids), or ``None``."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError("the register is not a list of ids")
    return tuple(value)


def _fund(value: object) -> FundPosition | None:
    """The community's fund ledger for the year as the step's input logged it, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("the fund position is not an object")
    return FundPosition.model_validate(value)


def ledger_difference(entries: Sequence[LogEntry], stored: Sequence[LedgerRow]) -> tuple[int, str] | None:
    """Where a store's fund ledger rows of one consultation depart from what its log gives (the
    ``funds_allocated`` and ``funds_spent`` entries): (entry seq, why), or ``None``."""
    made = {r.entry: r for r in ledger_rows(entries)}
    kept = {r.entry: r for r in stored}
    for seq in sorted(set(made) | set(kept)):
        want, have = made.get(seq), kept.get(seq)
        if have is None:
            return seq, f"the fund ledger lacks the row of entry {seq} ({want.kind if want else '?'})"
        if want is None:
            return seq, f"the fund ledger holds a row for entry {seq}, which is no funds entry of the log"
        if want != have:
            return seq, f"the fund ledger's row for entry {seq} is not what the log gives"
    return None
