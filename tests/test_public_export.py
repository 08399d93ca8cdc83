"""The public export (issue 8, point 4): every entry of a store as JSON Lines with person ids as keyed
pseudonyms and private text gone, whose chains still verify - offline, against a checkpoint.

The stories here reach every event the demo and the Driver make (the demo's story, rejections, a
withdrawal, an invitation, a clerk's sign-in and opinion for a resident, an owners' meeting with its
register, a residents' petition to consult again, a missed deadline, an escalation and its resumption)
on the memory, SQLite and PostgreSQL stores; the export of each is searched for every person id the
story used and every private text. A new event or command field naming a person that
``privacy.PERSON_KEYS`` does not declare fails here.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import consultflow as cf
from consultflow.checkpoints import write_key_pair
from consultflow.cli import main
from consultflow.demo import CAST as DEMO_CAST
from consultflow.demo import demo_engine, run_story
from consultflow.log import entry_json, verify_stored
from consultflow.privacy import PERSON_KEYS
from consultflow.records import PersonId
from consultflow.roles import Actor, Role
from consultflow.steps import COMMANDS
from consultflow.storage.memory import MemoryStore
from consultflow.testing.driver import CAST, Driver
from store_support import Schemas, require_postgres, schemas_fixture

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SECRET = b"the committee's pseudonym secret, kept offline"
OTHER_SECRET = b"another secret, another set of pseudonyms"
OWNERS = {f"owner-{i}": Actor(f"owner-{i}", roles={Role.OWNER}) for i in range(1, 4)}
PETITIONERS = tuple(f"neighbour-{i}" for i in range(1, 5))
KINDS = ("memory", "sqlite", "postgres")


@pytest.fixture(scope="module")
def schemas() -> Iterator[Schemas]:
    yield from schemas_fixture()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def new_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str = "s") -> Any:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return cf.SQLiteStore(tmp_path / f"{name}.db")
    require_postgres()
    schemas: Schemas = request.getfixturevalue("schemas")
    return cf.PostgresStore(schemas.dsn, schema=schemas.new("px"))


def every_event(store: Any) -> set[str]:
    """Fill ``store`` with stories that make every event the demo and the Driver make; the ids of
    everybody who appears in them."""
    engine, clock = demo_engine(store)
    run_story(engine, clock)
    people = {p.id for p in DEMO_CAST.values()}
    counter = iter(range(1, 1000))
    # the Driver's "owner" and "system" are also the names of roles (public words): owners of our own here
    usual = {k: v for k, v in CAST.items() if k not in ("owner", "system")}
    cast = {**usual, **OWNERS, **{p: Actor(p, roles={Role.RESIDENT}) for p in PETITIONERS}}
    d = Driver(
        store=store,
        cast=cast,
        ids=lambda: f"x-{next(counter):03d}",
        major_decided_by="owners_meeting",
        reconsultation_co_signers=3,
    )
    people |= set(cast)
    d.to("rejected")
    d.to("withdrawn")
    d.to("escalated")
    d.resume()
    # invited after the notice; a clerk signs a resident in and records her opinion
    d.propose(major=True)
    d.notify()
    d.run(cf.Invite(consultation=d.cid, people=(PETITIONERS[0],)), "wang")
    d.serve_notice()
    d.clock.set(d.clock.now() + timedelta(days=4))
    d.open_round()
    d.run(cf.SignIn(consultation=d.cid, on_behalf_of="li"), "wang")
    d.run(
        cf.RecordOpinion(consultation=d.cid, stance=cf.Stance.SUPPORT, text="李: 同意 agreed", on_behalf_of="li"),
        "wang",
    )
    for who in ("wu", "zhang"):
        d.opinion(who, cf.Stance.SUPPORT, f"{who}: 夜里车太多 too many cars")
    d.close_round()
    # an owners' meeting decides by its register (业主名册)
    owners = tuple(cf.OwnerShare(owner=o, area=Decimal(80 + 10 * i)) for i, o in enumerate(OWNERS))
    call = cf.CallVote(
        consultation=d.cid,
        body=cf.Body.OWNERS_MEETING,
        resolution="东侧空地夜间开放",
        measures=(d.measure(),),
        owners=owners,
    )
    d.run(call, "wang")
    for owner in OWNERS:
        d.run(cf.CastVote(consultation=d.cid, ballot=cf.Ballot.FOR), owner)
    d.run(cf.CloseVote(consultation=d.cid), "wang")
    d.review()
    d.publish()
    d.start_supervision()
    d.reconsult(by=PETITIONERS[0], co_signers=PETITIONERS[1:])
    # a proposal nobody answers: the clock's own step (议而不决 / deadline missed)
    d.propose()
    d.engine.tick(d.clock.now() + timedelta(days=60), ahead_of_clock=True)
    # 提议 intake: a draft edited, co-signed and submitted, then corrected by the committee; a draft
    # discarded; a rejection appealed and reconsidered; an "other" matter made a catalogue item
    d.draft()
    d.edit(title="夜间停车位 night parking spaces", note="改标题")
    d.co_sign("wu")
    d.submit()
    d.edit(by="wang", major=True)
    d.draft()
    d.withdraw()
    d.propose()
    d.reject()
    d.appeal()
    d.reconsider(False)
    d.propose(topic="public-affairs/other", title="流浪猫 stray cats")
    d.add_topic("stray-cats", "流浪猫 stray cats")
    # 承诺制: a published pledge's date moved, with a reason
    d.to("feedback")
    d.publish()
    d.delay_pledge(0, days=10)
    return people


def private_texts(store: Any, keys: frozenset[str] = frozenset({"text", "comment"})) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k in keys and isinstance(v, str) and v:
                    found.add(v)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for record in store.find(cf.Query()):
        for entry in store.entries(record.id):
            walk(entry.data)
            walk(entry.input)
    return found


def clear_people(store: Any) -> set[str]:
    """Every person id the stored entries hold in the clear where the declaration says people are."""
    found: set[str] = set()

    def person(key: str, value: Any) -> None:  # ``value`` stands under a person key
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            for v in value:
                person(key, v)
        elif isinstance(value, dict):
            if key == "people":  # {person: roles}
                found.update(value)
            else:  # a row naming people (an owner's share)
                for k, v in value.items():
                    if k in PERSON_KEYS:
                        person(k, v)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                person(k, v) if k in PERSON_KEYS else walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for record in store.find(cf.Query()):
        for entry in store.entries(record.id):
            if not entry.actor.startswith("consultflow:"):
                found.add(entry.actor)
            walk(entry.data)
            walk(entry.input)
    return found - {"directory", "stated"}  # how a vote's register was taken (data "register"), no person


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_an_export_holds_no_person_id_and_no_private_text_in_the_clear(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, key: Ed25519PrivateKey
) -> None:
    store = new_store(kind, tmp_path, request)
    people = every_event(store)
    events = {e.event for r in store.find(cf.Query()) for e in store.entries(r.id)}
    assert events == set(cf.Event) - {cf.Event.REMINDER}, "the stories reach every event a step makes"
    named = clear_people(store)
    assert {"li", "wu", "owner-1", "neighbour-2", "chen", "zhao"} <= named <= people
    texts = private_texts(store)
    assert {"李: 同意 agreed", "需先划线"} <= texts
    lines = cf.export_public(store, SECRET, key, now=NOW)
    keys = {k for line in lines for k in re.findall(r'"([a-z_]+)":', line)}
    for line in lines:
        for person in people:
            # an id that is also a field's name ("owner") may stand as a key, never as a value
            token = re.escape(json.dumps(person)) + ("(?!:)" if person in keys else "")
            assert not re.search(token, line), f"{person!r} in the clear in {line[:300]}"
        for text in texts:
            assert text not in line
            assert json.dumps(text, ensure_ascii=False)[1:-1] not in line
    # the people are there, as pseudonyms
    every = "\n".join(lines)
    for person in named:
        assert cf.pseudonym(SECRET, person) in every, person
    store.close()


def test_pseudonyms_are_stable_for_one_secret_and_differ_for_another(key: Ed25519PrivateKey) -> None:
    store = MemoryStore()
    engine, clock = demo_engine(store)
    cid = run_story(engine, clock)
    first = cf.export_public(store, SECRET, key, now=NOW)
    again = cf.export_public(store, SECRET, key, now=NOW)
    other = cf.export_public(store, OTHER_SECRET, key, now=NOW)
    assert first == again
    mine = [json.loads(line) for line in first[:-1]]
    theirs = [json.loads(line) for line in other[:-1]]
    # the same person everywhere under one secret: chen chairs and convenes rounds
    chen = cf.pseudonym(SECRET, "chen")
    assert sum(chen in json.dumps(e["people"]) for e in mine) > 5
    for a, b in zip(mine, theirs, strict=True):
        assert a["hash"] == b["hash"]
        assert a["actor"] == b["actor"]
        if a["people"]:
            assert a["people"].keys() == b["people"].keys()
            assert a["people"] != b["people"]
    assert cf.pseudonym(OTHER_SECRET, "chen") != chen
    # the stored entries still name people in the clear, for the community's own use
    assert engine.history(cid)[1].actor == "wang"


def ids_of_cast() -> set[str]:
    return {p.id for p in DEMO_CAST.values()}


def test_a_commitment_cannot_be_tried_against_guessed_ids(key: Ed25519PrivateKey) -> None:
    import hashlib

    store = MemoryStore()
    engine, clock = demo_engine(store)
    cid = run_story(engine, clock)
    entries = engine.history(cid)
    lines = [json.loads(line) for line in cf.export_public(store, SECRET, key, now=NOW)[:-1]]
    from consultflow.privacy import commitment, public_form

    # the actor stands as a marker; the entry's one commitment covers its private values, salted
    assert all(line["actor"] == "#0" for line, e in zip(lines, entries, strict=True) if e.actor in ids_of_cast())
    for line, e in zip(lines, entries, strict=True):
        values: list[object] = []
        public_form(e.body(), None, values)
        assert values
        assert line["commitment"] == commitment(bytes.fromhex(e.salt), values)
        assert line["commitment"] != commitment(b"", values), "an unsalted hash of ids would be no commitment"
    guesses = {"sha256:" + hashlib.sha256(json.dumps([p.id]).encode()).hexdigest() for p in DEMO_CAST.values()}
    assert not guesses & {line["commitment"] for line in lines}
    # each step has its own salt: the same actor's steps have other commitments
    by_chen = [line["commitment"] for line, e in zip(lines, entries, strict=True) if e.actor == "chen" and e.input]
    assert len(by_chen) > 3
    assert len(set(by_chen)) == len(by_chen)
    assert len({e.salt for e in entries if e.input is not None}) == sum(1 for e in entries if e.input is not None)


def test_the_export_verifies_against_a_checkpoint_and_the_store_may_grow(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, key: Ed25519PrivateKey
) -> None:
    store = new_store(kind, tmp_path, request)
    d = Driver(store=store)
    d.to("consulting")
    d.to("notified")
    checkpoint = cf.sign_checkpoint(store, key, now=NOW)
    d.to("proposed")
    d.opinion("li", cf.Stance.SUPPORT, "先试行 try it first", cid="c-001")
    lines = cf.export_public(store, SECRET, key, now=NOW)
    report = cf.verify_export(lines, checkpoint.to_json(), key.public_key())
    assert report.ok, report.findings
    assert (report.consultations, report.new) == (3, ("c-003",))
    assert report.entries == sum(len(store.entries(c)) for c in ("c-001", "c-002", "c-003"))
    # an export that lost a consultation the checkpoint covers, or was cut short, is reported
    short = cf.export_public(_without(store, "c-002"), SECRET, key, now=NOW)
    assert _kinds(cf.verify_export(short, checkpoint, key.public_key())) == [("deleted", "c-002")]
    # signed by another key than the checkpoint's: reported, nothing is taken on trust
    stranger = Ed25519PrivateKey.generate()
    signed = cf.export_public(store, SECRET, stranger, now=NOW)
    assert _kinds(cf.verify_export(signed, checkpoint, key.public_key())) == [("signature", None)]
    store.close()


def _without(store: Any, cid: str) -> MemoryStore:
    copy = MemoryStore()
    for record in store.find(cf.Query()):
        if record.id != cid:
            copy._records[record.id] = record
            copy._logs[record.id] = list(store.entries(record.id))
    return copy


def _kinds(report: cf.ExportReport) -> list[tuple[str, str | None]]:
    return [(f.kind, f.consultation) for f in report.findings]


# ---- tampering -----------------------------------------------------------------------------------------------
_EXPORT: list[str] = []
_CHECKPOINT: list[str] = []
_KEY = Ed25519PrivateKey.generate()


def _published() -> tuple[list[str], str]:
    if not _EXPORT:
        store = MemoryStore()
        engine, clock = demo_engine(store)
        run_story(engine, clock)
        Driver(store=store).to("consulting")
        _CHECKPOINT.append(cf.sign_checkpoint(store, _KEY, now=NOW).to_json())
        _EXPORT.extend(cf.export_public(store, SECRET, _KEY, now=NOW))
    return list(_EXPORT), _CHECKPOINT[0]


def _change(value: Any, salt: int) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1 + salt % 3
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"
    if isinstance(value, list):
        return [*value, "x"] if not value or salt % 2 else value[1:]
    if isinstance(value, dict):
        return {**value, "x": salt} if not value or salt % 2 else dict(list(value.items())[1:])
    return "x"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    how=st.sampled_from(["field", "remove", "reorder", "pseudonym", "swap_pseudonyms", "trailer", "add"]),
    line=st.integers(0, 10_000),
    other=st.integers(0, 10_000),
    pick=st.integers(0, 10_000),
)
def test_any_change_to_an_exported_line_is_reported(how: str, line: int, other: int, pick: int) -> None:
    lines, checkpoint = _published()
    n = len(lines) - 1  # entry lines; the last one is the signed trailer
    i, j = line % n, other % n
    if how == "field":
        entry = json.loads(lines[i])
        field = sorted(entry)[pick % len(entry)]
        entry[field] = _change(entry[field], pick)
        lines[i] = cf.canonical_json(entry).decode()
    elif how == "remove":
        del lines[i]
    elif how == "reorder":
        if i == j:
            j = (i + 1) % n
        lines[i], lines[j] = lines[j], lines[i]
    elif how == "pseudonym":  # one person passed off as another
        with_people = [k for k in range(n) if json.loads(lines[k])["people"]]
        k = with_people[line % len(with_people)]
        entry = json.loads(lines[k])
        commitment = sorted(entry["people"])[pick % len(entry["people"])]
        entry["people"][commitment] = _change(entry["people"][commitment], pick)
        lines[k] = cf.canonical_json(entry).decode()
    elif how == "swap_pseudonyms":  # two lines' actors' pseudonyms exchanged
        a, b = json.loads(lines[i]), json.loads(lines[j])
        pa, pb = a["people"].get(a["actor"]), b["people"].get(b["actor"])
        if pa is None or pb is None or pa == pb:
            lines[i] = lines[i].replace('"seq":', '"seq": ', 1)  # nothing to swap: a plain change
        else:
            a["people"][a["actor"]], b["people"][b["actor"]] = pb, pa
            lines[i], lines[j] = cf.canonical_json(a).decode(), cf.canonical_json(b).decode()
    elif how == "trailer":
        trailer = json.loads(lines[-1])
        field = sorted(trailer)[pick % len(trailer)]
        trailer[field] = _change(trailer[field], pick)
        lines[-1] = cf.canonical_json(trailer).decode()
    else:
        lines.insert(i, lines[j])
    report = cf.verify_export(lines, checkpoint, _KEY.public_key())
    assert not report.ok, (how, i, j, pick)


def test_an_untouched_export_passes_and_a_re_hashed_rewrite_is_found() -> None:
    lines, checkpoint = _published()
    assert cf.verify_export(lines, checkpoint, _KEY.public_key()).ok
    assert cf.verify_export("\n".join(lines) + "\n", checkpoint, _KEY.public_key()).ok
    # whoever rewrites a line, re-hashes the chain and re-signs with their own key is still found
    rows = [json.loads(line) for line in lines[:-1]]
    rows[1]["data"]["channels"] = ["wechat"]  # c-001's notice, said to have gone out elsewhere
    prev = ""
    import hashlib

    for row in rows:
        if row["consultation"] != rows[0]["consultation"]:
            break
        row["prev"] = prev
        body = {k: v for k, v in row.items() if k not in ("hash", "people")}
        row["hash"] = prev = hashlib.sha256(cf.canonical_json(body)).hexdigest()
    forged_key = Ed25519PrivateKey.generate()
    body_lines = [cf.canonical_json(r).decode() for r in rows]
    forged = _resign(body_lines, forged_key)
    found = _kinds(cf.verify_export(forged, checkpoint, _KEY.public_key()))
    assert ("signature", None) in found
    resigned = _resign(body_lines, _KEY)  # even with the right key (a stolen one): the checkpoint's head
    assert _kinds(cf.verify_export(resigned, checkpoint, _KEY.public_key())) == [("rewritten", rows[0]["consultation"])]


def _resign(body_lines: list[str], signer: Ed25519PrivateKey) -> list[str]:
    import hashlib

    from consultflow.export import EXPORT_FORMAT, _signed

    digest = hashlib.sha256("".join(line + "\n" for line in body_lines).encode()).hexdigest()
    trailer: dict[str, Any] = {
        "consultations": len({json.loads(line)["consultation"] for line in body_lines}),
        "digest": digest,
        "entries": len(body_lines),
        "export": EXPORT_FORMAT,
        "key": signer.public_key().public_bytes_raw().hex(),
        "time": "2026-12-01T08:00:00.000000Z",
    }
    trailer["signature"] = signer.sign(_signed(trailer)).hex()
    return [*body_lines, cf.canonical_json(trailer).decode()]


# ---- the hashed form in the store ----------------------------------------------------------------------------
def test_the_stored_entries_keep_their_values_and_salt_and_a_changed_salt_is_reported() -> None:
    engine, clock = demo_engine(MemoryStore())
    cid = run_story(engine, clock)
    lines = [entry_json(e) for e in engine.history(cid)]
    assert verify_stored(lines).ok
    first = json.loads(lines[0])
    assert first["actor"] == "li"
    assert len(first["salt"]) == 32
    assert first["private"] == ["comment", "grounds", "text"]
    for change in ('"salt":"', '"salt":"0'), ('"private":["comment","grounds","text"]', '"private":["comment"]'):
        bad = [lines[0].replace(change[0], change[1], 1), *lines[1:]]
        assert not verify_stored(bad).ok, change


def test_a_variant_may_mark_more_free_text_private() -> None:
    d = Driver(private_text=["text", "comment", "summary"])
    d.to("consulting_closed")
    closed = [e for e in d.history() if e.event is cf.Event.ROUND_CLOSED][-1]
    assert closed.private == ("comment", "summary", "text")
    line = json.loads(cf.export_public(d.store, SECRET, _KEY, now=NOW)[len(d.history()) - 1])
    marker = line["data"]["summary"]
    assert re.fullmatch("#[0-9]+", marker)
    assert marker not in line["people"]
    assert cf.verify(d.history()).ok
    assert d.engine.verify(d.cid).ok
    with pytest.raises(cf.ValidationError):
        cf.Parameters.model_validate({"private_text": ["not a key"]})


def test_a_log_written_without_salt_is_never_exported() -> None:
    store = MemoryStore()
    catalogue = cf.Catalogue().with_community("c", {"public-affairs/parking": "停车"})
    engine = cf.Engine(
        store=store, clock=cf.SimulatedClock(NOW), catalogue=catalogue, directory=cf.TrustCallerRoles(), salts=str
    )
    engine.execute(
        cf.Propose(community="c", topic="public-affairs/parking", title="停车", carrier=cf.Carrier.DECISION,
                   form=cf.Form.INVITATION),
        by=Actor("li", roles={Role.RESIDENT}),
    )  # fmt: skip
    with pytest.raises(cf.InvalidInput, match="without a salt"):
        cf.export_public(store, SECRET, _KEY)
    with pytest.raises(cf.InvalidInput, match="at least 16 bytes"):
        cf.export_public(MemoryStore(), b"short", _KEY)


KEYS = st.sampled_from(sorted(PERSON_KEYS | {"text", "comment", "round", "stance", "summary", "channels"}))
IDS = st.sampled_from(["li", "wu", "chen", "owner-1", "neighbour-2", "王芳"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | IDS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS | IDS, inner, max_size=3),
    max_leaves=10,
)
DATA = st.dictionaries(KEYS, VALUES, max_size=5).map(lambda d: json.loads(cf.canonical_json(d)))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(data=DATA, step_in=st.none() | DATA, salt=st.sampled_from(["", "ab" * 16]), actor=IDS)
def test_the_hot_paths_hash_is_the_hashed_forms_and_hides_every_person_value(
    data: dict[str, Any], step_in: dict[str, Any] | None, salt: str, actor: str
) -> None:
    from consultflow.canonical import timestamp
    from consultflow.log import chain_hash, entry_body, entry_hash
    from consultflow.privacy import commitment, public_form

    args = (2, "c-001", 3, cf.Event.OPINION_RECORDED, cf.State.CONSULTING, cf.State.CONSULTING, actor, "resident")
    private = ("comment", "text")
    body = entry_body(*args, NOW, data, step_in, "cd" * 32, "ef" * 32, private, salt)
    assert chain_hash(*args, timestamp(NOW), data, step_in, "cd" * 32, "ef" * 32, private, salt) == entry_hash(body)
    values: list[Any] = []
    hashed = public_form(body, None, values)
    assert "salt" not in hashed
    if not salt:  # a simulation's entry: no commitment, the values themselves (never exported)
        assert hashed == {**{k: v for k, v in body.items() if k != "salt"}, "commitment": ""}
        return
    assert hashed["actor"] == "#0"
    assert hashed["record_digest"] == f"#{len(values) - 1}"
    assert hashed["commitment"] == commitment(bytes.fromhex(salt), values)
    marks: list[str] = []

    def leaks(value: Any, under_person: bool) -> bool:  # a person's id in the clear where a key names people
        if isinstance(value, str):
            if under_person and re.fullmatch("#[0-9]+", value):
                marks.append(value)
            return under_person and not re.fullmatch("#[0-9]+", value)
        if isinstance(value, dict):
            return any(leaks(v, under_person or k in PERSON_KEYS or k in private) for k, v in value.items())
        if isinstance(value, list):
            return any(leaks(v, under_person) for v in value)
        return False

    assert not leaks(hashed["data"], False)
    assert not leaks(hashed["input"], False)
    # the markers, in the order of the canonical JSON, number the committed values
    assert ["#0", *marks, hashed["record_digest"]] == [f"#{i}" for i in range(len(values))]


# ---- the declaration ---------------------------------------------------------------------------------------------
def _names_people(annotation: Any) -> bool:
    marker = typing.get_args(PersonId)[1]
    if typing.get_origin(annotation) is typing.Annotated and marker in typing.get_args(annotation)[1:]:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False
    return any(_names_people(a) for a in typing.get_args(annotation))


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models(a)]


def test_every_command_field_naming_people_is_declared() -> None:
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = list(COMMANDS.values())
    checked = []
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if _names_people(field.annotation) or typing.get_args(PersonId)[1] in field.metadata:
                checked.append(name)
                assert name in PERSON_KEYS, f"{model.__name__}.{name} names people: add it to privacy.PERSON_KEYS"
            todo.extend(_models(field.annotation))
    assert {"chair", "invite", "on_behalf_of", "owner", "co_signers", "attendees"} <= set(checked)


# ---- the command line --------------------------------------------------------------------------------------------
def test_export_and_verify_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, keyfile, secret = tmp_path / "d.db", tmp_path / "k", tmp_path / "secret"
    assert main(["demo", "--db", str(db)]) == 0
    write_key_pair(keyfile)
    secret.write_bytes(b"s" * 32)
    capsys.readouterr()
    assert main(["checkpoint", "--db", str(db), "--key", str(keyfile)]) == 0
    (tmp_path / "cp.json").write_text(capsys.readouterr().out, encoding="utf-8")
    out = tmp_path / "public.jsonl"
    args = ["export", "--db", str(db), "--public", "--secret-file", str(secret), "--key", str(keyfile)]
    assert main([*args, "--out", str(out)]) == 0
    assert main([*args, "--out", str(out)]) == 2  # never written over
    assert main(args) == 0
    printed, written = capsys.readouterr().out.splitlines(), out.read_text(encoding="utf-8").splitlines()
    assert printed[:-1] == written[:-1]  # the same entries; each trailer has its own time
    check = [
        "verify",
        "--export",
        str(out),
        "--checkpoint",
        str(tmp_path / "cp.json"),
        "--public-key",
        f"{keyfile}.pub",
    ]
    assert main(check) == 0
    assert "77 entries of 1 consultation" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8").replace('"stance":"amend"', '"stance":"support"', 1)
    out.write_text(text, encoding="utf-8")
    assert main(check) == 1
    found = capsys.readouterr()
    assert "SIGNATURE the export" in found.out
    assert "BROKEN consultation" in found.out
    assert "Traceback" not in found.err
    # usage and input problems: 2, one line, no traceback
    for bad in (
        ["export", "--db", str(db), "--secret-file", str(secret), "--key", str(keyfile)],  # no --public
        [*args[:-2], "--key", str(secret)],  # no key
        ["export", "--db", str(db), "--public", "--secret-file", str(keyfile) + ".pub", "--key", str(tmp_path)],
        [
            "verify",
            "--export",
            str(tmp_path / "none.jsonl"),
            "--checkpoint",
            str(tmp_path / "cp.json"),
            "--public-key",
            f"{keyfile}.pub",
        ],
        ["verify", "--export", str(out)],
        ["verify", "--export", str(out), "x-1", "--checkpoint", "x", "--public-key", "y"],
    ):
        assert main(bad) == 2, bad
        err = capsys.readouterr().err
        assert err.startswith("consultflow: ")
        assert "Traceback" not in err
    for bad in (["verify"], ["verify", "--export", str(out), "--db", str(db)]):  # argparse's own usage errors
        with pytest.raises(SystemExit) as exited:
            main(bad)
        assert exited.value.code == 2
        assert "usage: consultflow verify" in capsys.readouterr().err
    short = tmp_path / "short"
    short.write_bytes(b"short")
    assert main([*args[:4], "--secret-file", str(short), "--key", str(keyfile)]) == 2
    assert "at least 16 bytes" in capsys.readouterr().err


# ---- replay after the chain check ----------------------------------------------------------------------------
def _rechained(entries: list[cf.LogEntry], at: int, data: dict[str, Any]) -> list[cf.LogEntry]:
    """``entries`` with entry ``at``'s data changed and every hash from there made to hold again."""
    from consultflow.log import entry_hash

    out = entries[:at]
    prev = out[-1].hash if out else ""
    for i, e in enumerate(entries[at:]):
        changed = e.model_copy(update={"prev": prev, **({"data": data} if i == 0 else {})})
        prev = entry_hash(changed.body())
        out.append(changed.model_copy(update={"hash": prev}))
    return out


@pytest.mark.parametrize("change", ["the same in Python (False as 0)", "another fact"])
def test_replay_holds_every_entry_it_makes_to_the_logged_one(change: str) -> None:
    """Replay after the chain check takes the logged hashes instead of hashing again, so it must hold
    each entry it makes to the logged one exactly: a re-hashed chain whose entry says ``0`` where the
    procedure writes ``false`` (equal in Python, not in JSON) is reported as one with another fact."""
    from consultflow.replay import verify_consultation

    d = Driver()
    d.to("consulting_closed")
    entries = list(d.history())
    at, flag = next((i, k) for i, e in enumerate(entries) for k, v in e.data.items() if v is False)
    data = {**entries[at].data, flag: 0} if change.startswith("the same") else {**entries[at].data, "extra": 1}
    forged = _rechained(entries, at, data)
    assert cf.verify(forged).ok  # the chain holds again: only replay can tell
    record = d.engine.get(d.cid).model_copy(update={"head": forged[-1].hash})
    procedures = {p.key: p for p in [d.engine.procedure]}
    assert verify_consultation(d.engine.get(d.cid), entries, procedures).ok
    found = verify_consultation(record, forged, procedures)
    assert not found.ok
    assert found.seq == forged[at].seq
    assert "replay differs" in found.reason
