"""What of a log entry is personal (个人信息), and the hashed form that keeps it out of the hash.

An entry's hash does not cover person ids and private free text in the clear: each such value enters
it only through a **commitment**, ``"sha256:" + SHA-256(salt ‖ canonical JSON of the value)`` (hex),
where ``salt`` is 16 random bytes the engine draws for each step (``Context.salt``), stored with the
entry and never exported. The hashed form (``public_form``) is then public: a public export
(``consultflow.export``) carries it, with the private values left out, and anyone can check the chain.
Without the salt a commitment cannot be tried against guessed ids (person ids are guessable: an
unsalted hash of one would be no commitment).

Which values are personal is declared here, once, and checked by the tests (every event the demo and
the Driver produce is exported and searched for every id of the directory):

- ``actor``, unless it is the library's own (``consultflow:…``, the clock);
- the value of every key in ``PERSON_KEYS``, at any depth of ``data`` and ``input`` (a command's
  field naming people, the people/roles map, a body's register, a measure's owner, a voter…), when it
  holds text: a count under the same key (``"invited": 6``) stays in the clear;
- the value of every key the procedure's ``private_text`` parameter names (default: an opinion's
  ``text`` and a feedback ``comment``, what one resident said), and the entry lists those keys in its
  ``private`` field, so the hashed form is known from the entry alone;
- the entry's ``record_digest`` (a digest of a record holding ids: a resident's id could be found by
  trying every id of the register against it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

from pydantic_core import to_json

from .canonical import canonical_json

__all__ = [
    "LIBRARY_PREFIX",
    "PERSON_KEYS",
    "blind",
    "commit",
    "hidden_keys",
    "is_person",
    "public_actor",
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
_HIDDEN: dict[tuple[str, ...], frozenset[str]] = {}


def hidden_keys(private: Iterable[str]) -> frozenset[str]:
    """The keys blinded in an entry whose ``private`` field lists ``private``: the person keys and those
    (remembered per list: the hot path asks once an entry)."""
    key = private if type(private) is tuple else tuple(private)
    found = _HIDDEN.get(key)
    if found is None:
        if len(_HIDDEN) > 256:
            _HIDDEN.clear()
        found = _HIDDEN[key] = PERSON_KEYS | frozenset(key)
    return found


def commit(salt: bytes, value: object) -> str:
    """The commitment to ``value`` under ``salt``: ``sha256:`` and SHA-256(salt ‖ canonical JSON), hex."""
    kind = type(value)
    # the core's values (keys sorted, JSON values only) write the same bytes with pydantic-core
    if kind is str:
        text = _quote(cast(str, value)).encode()
    elif kind is dict or kind is list:
        text = to_json(value)
    else:
        text = canonical_json(value)
    return "sha256:" + _sha256(salt + text).hexdigest()


def blind(value: Any, keys: frozenset[str], salt: bytes) -> Any:
    """``value`` (data or input, canonical JSON values) with the value of every key in ``keys``, at
    any depth, replaced by its commitment when it holds text. Keys keep their order."""
    kind = type(value)
    if kind is dict:
        if keys.isdisjoint(value) and _NESTED.isdisjoint(map(type, value.values())):
            return value  # nothing to blind here (found without a Python loop): the very object
        out: dict[str, Any] = {}
        for k, v in value.items():
            t = type(v)
            if k in keys and (t is str or (t in _NESTED and v)):
                out[k] = commit(salt, v)
            elif t is dict:
                out[k] = blind(v, keys, salt)
            elif (t is list or t is tuple) and not _NESTED.isdisjoint(map(type, v)):
                out[k] = blind(v, keys, salt)  # a list of scalars (roles, channels) stays as it is
            else:
                out[k] = v
        return out
    if kind is list or kind is tuple:
        return [blind(v, keys, salt) if type(v) in _NESTED else v for v in value]
    if isinstance(value, Mapping):  # not built by the core: the same, less fast
        return blind(dict(value), keys, salt)
    if isinstance(value, list | tuple):
        return blind(list(value), keys, salt)
    return value


def is_person(actor: str) -> bool:
    return not actor.startswith(LIBRARY_PREFIX)


def public_actor(actor: str, salt: bytes) -> str:
    """The actor as the hash covers it: a commitment, or the library's own id as it is."""
    return commit(salt, actor) if is_person(actor) else actor


def public_form(body: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed form of a stored entry body (with ``salt`` and ``private``): personal values as
    commitments, no ``salt``. A body without ``salt`` is taken to be in the hashed form already."""
    if "salt" not in body:
        return dict(body)
    out = {k: v for k, v in body.items() if k != "salt"}
    salt_hex = body["salt"]
    salt = bytes.fromhex(salt_hex) if isinstance(salt_hex, str) else b""
    private = body.get("private") or []
    keys = hidden_keys(private if isinstance(private, list | tuple) else ())
    actor = body.get("actor")
    if isinstance(actor, str):
        out["actor"] = public_actor(actor, salt)
    out["data"] = blind(body.get("data"), keys, salt)
    out["input"] = blind(body.get("input"), keys, salt)
    digest = body.get("record_digest")
    if digest:
        out["record_digest"] = commit(salt, digest)
    return out
