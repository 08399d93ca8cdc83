"""What of a log entry is personal (个人信息), and the hashed form that keeps it out of the hash.

An entry's hash does not cover person ids and private free text in the clear. In its **hashed form**
(``public_form``) each such value stands as a **marker**, ``"#0"``, ``"#1"``, … (its place in the
entry's list of private values), and one field, ``commitment``, commits to the list:
``"sha256:" + SHA-256(salt ‖ canonical JSON of the list)`` (hex), where ``salt`` is 16 random bytes
the engine draws for each step (``Context.salt``), stored with the entry and never exported. The
hashed form is then public: a public export (``consultflow.export``) carries it, and anyone can check
the chain; the export's pseudonyms name the markers. Without the salt the commitment cannot be tried
against guessed ids (person ids are guessable: an unsalted hash of them would be no commitment). One
commitment per entry, not one per value: one SHA-256 on the hot path, and an entry does not show
which of its values are equal.

The list holds, in the order of the entry's canonical JSON (keys sorted at every level):

- ``actor``, unless it is the library's own (``consultflow:…``, the clock);
- in ``data``, then ``input``, at any depth, the value of every key in ``PERSON_KEYS`` (a command's
  field naming people, the people/roles map, a body's register, a measure's owner, a voter…) when it
  holds text (a count under the same key, ``"invited": 6``, stays in the clear), and of every key the
  procedure's ``private_text`` parameter names (default: an opinion's ``text`` and a feedback
  ``comment``, what one resident said); the entry lists those keys in its ``private`` field, so the
  hashed form is known from the entry alone;
- the entry's ``record_digest`` when not ``""`` (a digest of a record holding ids: a resident's id
  could be found by trying every id of the register against it).

An entry without a salt (a simulation's, which is never exported) has no commitment
(``"commitment": ""``) and its values in the clear: an unsalted commitment would hide nothing (the
ids are guessable), and the hash binds the values themselves, which is no weaker; the export refuses
such entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import to_json

from .canonical import canonical_json

__all__ = [
    "LIBRARY_PREFIX",
    "MARKS",
    "PERSON_KEYS",
    "commitment",
    "hidden_keys",
    "is_person",
    "mark",
    "public_form",
    "seal",
]

#: Ids the library acts under itself (``consultflow:clock``): no person, never blinded.
LIBRARY_PREFIX = "consultflow:"

#: Keys whose values name people, wherever they appear in an entry's ``data`` or ``input`` (the
#: commands' ``PersonId`` fields, the records' person fields the effects copy into events, the step
#: input's ``people`` map and ``register``). A new field naming a person must be added here: the
#: public-export tests fail on an id in the clear.
PERSON_KEYS = frozenset(
    {
        "agreement_parties",
        "attendees",
        "ballots",
        "by",
        "called_by",
        "chair",
        "co_signers",
        "inspector",
        "invite",
        "invited",
        "members",
        "on_behalf_of",
        "online",
        "opened_by",
        "owner",
        "owners",
        "participant",
        "people",
        "person",
        "proposer",
        "recorded_by",
        "register",
        "reviewer",
        "voter",
    }
)

_sha256 = hashlib.sha256
_quote = json.encoder.encode_basestring
_NESTED = frozenset({dict, list, tuple, set, frozenset})
_ODD = frozenset({tuple, set, frozenset})  # values pydantic-core would not write canonically
_HIDDEN: dict[tuple[str, ...], frozenset[str]] = {}
#: The markers, made once: ``MARKS[i]`` stands for the entry's ``i``-th private value.
MARKS = tuple(f"#{i}" for i in range(256))


def hidden_keys(private: Iterable[str]) -> frozenset[str]:
    """The keys sealed in an entry whose ``private`` field lists ``private``: the person keys and those
    (remembered per list: the hot path asks once an entry)."""
    key = private if type(private) is tuple else tuple(private)
    found = _HIDDEN.get(key)
    if found is None:
        if len(_HIDDEN) > 256:
            _HIDDEN.clear()
        found = _HIDDEN[key] = PERSON_KEYS | frozenset(key)
    return found


def mark(index: int) -> str:
    return MARKS[index] if index < 256 else f"#{index}"


def seal(value: Any, keys: frozenset[str], found: list[Any], names: list[str] | None = None) -> Any:
    """``value`` (data or input, canonical JSON values, keys in order) with the value of every key in
    ``keys``, at any depth, replaced by its marker when it holds text; the values are appended to
    ``found`` (and their keys to ``names``), in order. Nothing to seal: the very object."""
    kind = type(value)
    if kind is dict:
        if keys.isdisjoint(value) and _NESTED.isdisjoint(map(type, value.values())):
            return value  # nothing to seal here (found without a Python loop)
        out: dict[str, Any] = {}
        for k, v in value.items():
            t = type(v)
            if k in keys and (t is str or (t in _NESTED and v)):
                n = len(found)
                out[k] = MARKS[n] if n < 256 else f"#{n}"
                found.append(v)
                if names is not None:
                    names.append(k)
            elif t is dict or ((t is list or t is tuple) and not _NESTED.isdisjoint(map(type, v))):
                out[k] = seal(v, keys, found, names)  # a list of scalars (roles, channels) stays as it is
            else:
                out[k] = v
        return out
    if kind is list or kind is tuple:
        return [seal(v, keys, found, names) if type(v) in _NESTED else v for v in value]
    if isinstance(value, Mapping):  # not built by the core: the same, less fast
        return seal(dict(value), keys, found, names)
    if isinstance(value, list | tuple):
        return seal(list(value), keys, found, names)
    return value


def commitment(salt: bytes, found: list[Any]) -> str:
    """The commitment to an entry's private values: ``sha256:`` and SHA-256(salt ‖ canonical JSON of
    the list), hex; ``""`` for none."""
    if not found:
        return ""
    # the core's values (keys sorted, JSON values only) write the same bytes with pydantic-core
    text = to_json(found) if _ODD.isdisjoint(map(type, found)) else canonical_json(found)
    return "sha256:" + _sha256(salt + text).hexdigest()


def is_person(actor: str) -> bool:
    return not actor.startswith(LIBRARY_PREFIX)


def public_form(
    body: Mapping[str, Any], names: list[str] | None = None, values: list[Any] | None = None
) -> dict[str, Any]:
    """The hashed form of a stored entry body (with ``salt`` and ``private``): personal values as
    markers, their ``commitment``, no ``salt``. A body without ``salt`` is taken to be in the hashed
    form already. ``names``, if given, receives the key of each private value (``actor``, ``voter``,
    ``text``, ``record_digest``…), in the order of the markers, and ``values`` the values."""
    if "salt" not in body:
        return dict(body)
    out = {k: v for k, v in body.items() if k != "salt"}
    salt_hex = body["salt"]
    if not salt_hex:  # unsalted (a simulation's): the values themselves, no commitment
        out["commitment"] = ""
        return out
    salt = bytes.fromhex(salt_hex) if isinstance(salt_hex, str) else b""
    private = body.get("private") or []
    keys = hidden_keys(private if isinstance(private, list | tuple) else ())
    found: list[Any] = [] if values is None else values
    actor = body.get("actor")
    if isinstance(actor, str) and is_person(actor):
        out["actor"] = mark(0)
        found.append(actor)
        if names is not None:
            names.append("actor")
    # in the order of the canonical JSON: keys sorted at every level
    for field in ("data", "input"):
        value = body.get(field)
        if value is not None:
            out[field] = seal(json.loads(canonical_json(value)), keys, found, names)
    digest = body.get("record_digest")
    if digest:
        out["record_digest"] = mark(len(found))
        found.append(digest)
        if names is not None:
            names.append("record_digest")
    out["commitment"] = commitment(salt, found)
    return out
