"""Who may do what: the full role matrix of the default procedure (default deny), the relational
roles (the proposer, the rotating chair named at notice) and the wording of role refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consultflow import (
    Actor,
    Carrier,
    CloseRound,
    Consultation,
    Decide,
    Form,
    OpenRound,
    Propose,
    Refused,
    ReviewLegality,
    Role,
    Stance,
    State,
    Verdict,
    Withdraw,
    six_step,
)
from consultflow.context import Context
from consultflow.core import authorise, check
from consultflow.procedure import NEW
from consultflow.refusals import Failure
from consultflow.roles import STAKEHOLDERS, THINK_TANK
from consultflow.steps import MarkOverdue
from consultflow.testing.driver import CAST, COMMUNITY, TOPIC, Driver, only

R = Role
_CONVENORS = {R.COMMITTEE, R.ROTATING_CHAIR}
_PROPOSERS = {R.COMMITTEE, R.WORKING_COMMITTEE, R.COUNCIL_MEMBER, R.DEPUTY} | STAKEHOLDERS
_PARTICIPANTS = {R.COMMITTEE, R.WORKING_COMMITTEE, R.COUNCIL_MEMBER, R.ROTATING_CHAIR} | STAKEHOLDERS | THINK_TANK
_REVIEWERS = {R.SUPERVISOR, R.SUB_DISTRICT}

# Who may fire each trigger, written out independently of the procedure's own declaration.
EXPECTED_BY_TRIGGER: dict[str, set[Role]] = {
    "propose": _PROPOSERS,
    "reject": {R.COMMITTEE},
    "withdraw": {R.PROPOSER, R.COMMITTEE},
    "notify": {R.COMMITTEE, R.WORKING_COMMITTEE},
    "open_round": _CONVENORS,
    "record_opinion": _PARTICIPANTS,
    "close_round": _CONVENORS,
    "decide": {R.COMMITTEE},
    "review": _REVIEWERS,
    "publish": {R.COMMITTEE},
    "report_progress": {R.COMMITTEE, R.WORKING_COMMITTEE},
    "record_feedback": set(STAKEHOLDERS),
    "start_supervision": {R.COMMITTEE},
    "inspect": {R.INSPECTION_GROUP, R.SUPERVISOR, R.SUB_DISTRICT},
    "request_reconsultation": {R.INSPECTION_GROUP, R.SUPERVISOR, R.COMMITTEE},
    "escalate": {R.COMMITTEE, R.SUB_DISTRICT},
    "resume": {R.SUB_DISTRICT},
    "mark_overdue": {R.SYSTEM},
}
EXPECTED_BY_KEY: dict[tuple[str, str], set[Role]] = {
    ("supervising", "close"): {R.COMMITTEE},
    ("escalated", "close"): {R.SUB_DISTRICT},
}

OPTIONS = [
    (source, trigger, i, opt)
    for (source, trigger) in sorted({(t.source, t.trigger.value) for t in six_step().transitions})
    for i, opt in enumerate(six_step().options(source, trigger) or ())
]
_RELATIONAL = {R.PROPOSER, R.ROTATING_CHAIR}


def expected_roles(source: str, trigger: str) -> set[Role]:
    return EXPECTED_BY_KEY.get((source, trigger)) or EXPECTED_BY_TRIGGER[trigger]


@pytest.fixture(scope="module")
def consulting_record() -> Consultation:
    """A record proposed by ``li`` with ``chen`` named chair (authorise reads only those)."""
    return Driver().to("consulting")


# ---- the declaration matches the intended matrix ------------------------------------------------------


@pytest.mark.parametrize(("source", "trigger", "index", "option"), OPTIONS, ids=lambda v: str(v)[:20])
def test_declared_roles_are_the_intended_ones(source: str, trigger: str, index: int, option: object) -> None:
    assert option.roles == expected_roles(source, trigger)  # type: ignore[attr-defined]


# ---- the matrix: every option x every role -------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_role_matrix(role: Role, consulting_record: Consultation) -> None:
    record = consulting_record
    assert record.proposer == "li"
    assert record.chair == "chen"
    for source, trigger, _i, opt in OPTIONS:
        on = None if source == NEW else record
        stranger = only(role, name="stranger")
        got = authorise(opt.roles, on, stranger)
        if role in _RELATIONAL:
            # holding a relational role grants nothing by itself
            assert isinstance(got, Failure), (source, trigger, role)
            # ... but the very proposer / the named chair holding it is authorised where it is listed
            named = only(role, name="li" if role is R.PROPOSER else "chen")
            got = authorise(opt.roles, on, named)
            allowed = role in opt.roles and on is not None
        else:
            allowed = role in opt.roles
        if allowed:
            assert got == role.value, (source, trigger, role, got)
        else:
            assert isinstance(got, Failure), (source, trigger, role, got)
            assert got.code in {"role_not_allowed", "not_the_chair"}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_check_agrees_with_the_matrix(role: Role) -> None:
    """``core.check`` (what ``Engine.allowed`` uses) refuses on role exactly as ``authorise`` does."""
    w = Driver()
    record = w.to("consulting")
    actor = only(role, name="li" if role is R.PROPOSER else "chen" if role is R.ROTATING_CHAIR else "x")
    ctx = Context(now=w.clock.now(), actor=actor, catalogue=w.catalogue)
    p = six_step()
    for trigger in p.triggers_from("consulting"):
        roles = frozenset().union(*(o.roles for o in p.options("consulting", trigger) or ()))
        granted, refusal = check(p, record, trigger, ctx)
        if role in roles:
            assert refusal is None or refusal.guard != "role", (trigger, role, refusal)
        else:
            assert refusal is not None, (trigger, role)
            assert refusal.guard == "role"
            assert refusal.code == "role_not_allowed"
            assert granted is None


def test_no_role_no_permission(consulting_record: Consultation) -> None:
    nobody = CAST["nobody"]
    for source, trigger, _i, opt in OPTIONS:
        got = authorise(opt.roles, None if source == NEW else consulting_record, nobody)
        assert isinstance(got, Failure), (source, trigger)
        assert got.code == "role_not_allowed"


def test_the_first_listed_role_is_the_one_logged() -> None:
    # an actor with several allowed roles acts under the first in Role's order
    actor = Actor("both", roles={Role.RESIDENT, Role.COMMITTEE})
    assert authorise(frozenset({Role.RESIDENT, Role.COMMITTEE}), None, actor) == "committee"
    w = Driver()
    rec = w.propose(by=actor)
    assert w.engine.history(rec.id)[0].role == "committee"


# ---- end to end through the engine -----------------------------------------------------------------------


def _role_refused(w: Driver, command: object, role: Role) -> Refused | None:
    refusal = w.engine.explain(command, by=only(role))  # type: ignore[arg-type]
    return refusal if refusal is not None and refusal.guard == "role" else None


@pytest.mark.parametrize(
    ("state", "make", "allowed"),
    [
        (
            "consulting_closed",
            lambda w, cid: Decide(consultation=cid, resolution="决定", measures=(w.measure(),)),
            {R.COMMITTEE},
        ),
        ("decided", lambda w, cid: ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL), _REVIEWERS),
        ("consulting", lambda w, cid: CloseRound(consultation=cid), {R.COMMITTEE}),
        ("consulting_closed", lambda w, cid: OpenRound(consultation=cid), {R.COMMITTEE}),
        ("consulting", lambda w, cid: MarkOverdue(consultation=cid), {R.SYSTEM}),
        ("proposed", lambda w, cid: Withdraw(consultation=cid, reason="不需要了"), {R.COMMITTEE}),
    ],
)
def test_engine_refuses_every_other_role(state: str, make: object, allowed: set[Role]) -> None:
    w = Driver()
    rec = w.to(state)
    command = make(w, rec.id)  # type: ignore[operator]
    before = w.snapshot(rec.id)
    for role in Role:
        refusal = _role_refused(w, command, role)
        if role in allowed:
            assert refusal is None, (role, refusal)
        else:
            assert refusal is not None, role
            assert refusal.code in {"role_not_allowed", "not_the_chair"}
            with pytest.raises(Refused) as info:
                w.engine.execute(command, by=only(role))
            assert info.value.code == refusal.code
    assert w.snapshot(rec.id) == before


def test_propose_end_to_end_for_every_role() -> None:
    w = Driver()
    for role in Role:
        cmd = Propose(community=COMMUNITY, topic=TOPIC, title="t", carrier=Carrier.ADVISORY, form=Form.CLOUD)
        if role in _PROPOSERS:
            rec = w.engine.execute(cmd, by=only(role))
            assert rec.state is State.PROPOSED
            assert rec.proposer == f"only-{role.value}"
        else:
            with pytest.raises(Refused) as info:
                w.engine.execute(cmd, by=only(role))
            assert info.value.code == "role_not_allowed"


# ---- relational roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["proposed", "notified", "consulting"])
def test_only_the_proposer_or_the_committee_may_withdraw(state: str) -> None:
    w = Driver()
    rec = w.to(state)
    cmd = Withdraw(consultation=rec.id, reason="问题已解决")
    # another resident, a resident representative, and someone holding 'proposer' who did not propose
    for outsider in (CAST["wu"], CAST["zhang"], Actor("li2", roles={Role.PROPOSER, Role.RESIDENT})):
        with pytest.raises(Refused) as info:
            w.engine.execute(cmd, by=outsider)
        assert info.value.code == "role_not_allowed"
        assert "proposer" in info.value.data["allowed"]  # type: ignore[operator]
    assert w.engine.explain(cmd, by=CAST["wang"]) is None
    done = w.engine.execute(cmd, by=CAST["li"])
    assert done.state is State.WITHDRAWN
    last = w.engine.history(rec.id)[-1]
    assert (last.actor, last.role, last.event.value) == ("li", "proposer", "withdrawn")


def test_the_committee_may_withdraw_too() -> None:
    w = Driver()
    rec = w.to("notified")
    done = w.run(Withdraw(consultation=rec.id, reason="另案处理"), "wang")
    assert done.state is State.WITHDRAWN
    assert w.engine.history(rec.id)[-1].role == "committee"


def test_only_the_chair_named_at_notice_may_convene() -> None:
    w = Driver()
    rec = w.to("notified")
    assert rec.chair == "chen"
    w.serve_notice()
    before = w.snapshot(rec.id)
    with pytest.raises(Refused) as info:
        w.open_round(by="other_chair")
    refusal = info.value
    assert refusal.code == "not_the_chair"
    assert refusal.guard == "role"
    assert refusal.data["chair"] == "chen"
    assert "chen" in refusal.explain("en")
    assert "chen" in refusal.explain("zh")
    assert "轮值主席" in refusal.explain("zh")
    assert w.snapshot(rec.id) == before
    # the named chair convenes, takes an opinion as participant, and closes the round
    assert w.open_round(by="chen").state is State.CONSULTING
    with pytest.raises(Refused, match="rotating chair"):
        w.opinion("other_chair")
    w.opinion("chen", Stance.SUPPORT)
    for who in ("li", "wu"):
        w.opinion(who, Stance.SUPPORT)
    with pytest.raises(Refused) as info:
        w.close_round(by="other_chair")
    assert info.value.code == "not_the_chair"
    closed = w.close_round(by="chen")
    assert closed.current_round is not None
    assert closed.current_round.closed_at is not None
    roles = [(e.actor, e.role) for e in w.engine.history(rec.id)[-5:]]
    assert roles[0] == ("chen", "rotating_chair")
    assert roles[-1] == ("chen", "rotating_chair")


def test_chair_of_another_consultation_is_not_chair_here() -> None:
    w = Driver()
    a = w.to("notified")
    b = w.propose()
    w.notify(chair="other_chair", cid=b.id)
    w.serve_notice(cid=a.id)
    w.serve_notice(cid=b.id)
    assert w.open_round(by="other_chair", cid=b.id).state is State.CONSULTING
    with pytest.raises(Refused) as info:
        w.open_round(by="other_chair", cid=a.id)
    assert info.value.code == "not_the_chair"
    with pytest.raises(Refused) as info:
        w.open_round(by="chen", cid=b.id)
    assert info.value.data["chair"] == "other_chair"


def test_without_a_named_chair_no_rotating_chair_may_convene() -> None:
    w = Driver()
    w.propose(form=Form.INVITATION)
    w.notify(chair=None)
    w.clock.advance(timedelta(days=4))
    with pytest.raises(Refused) as info:
        w.open_round(by="chen")
    assert info.value.code == "no_chair_named"
    assert "轮值主席" in info.value.explain("zh")
    assert "no rotating chair" in info.value.explain("en")
    assert w.open_round(by="wang").state is State.CONSULTING


def test_a_chair_who_is_also_a_resident_may_still_give_an_opinion_elsewhere() -> None:
    w = Driver()
    w.to("consulting")
    chair_resident = Actor("other_chair", roles={Role.ROTATING_CHAIR, Role.RESIDENT})
    after = w.opinion(chair_resident, Stance.OPPOSE)
    assert after.current_round is not None
    assert after.current_round.opinions[-1].role is Role.RESIDENT


# ---- refusal wording ---------------------------------------------------------------------------------


def test_role_refusal_text_names_the_allowed_roles() -> None:
    w = Driver()
    rec = w.to("consulting_closed")
    with pytest.raises(Refused) as info:
        w.decide(by="li")
    refusal = info.value
    assert refusal.code == "role_not_allowed"
    assert refusal.guard == "role"
    assert refusal.trigger == "decide"
    assert refusal.state == "consulting"
    assert refusal.consultation == rec.id
    assert list(refusal.data["allowed"]) == ["committee"]  # type: ignore[call-overload]
    for lang, name in (("en", "the community committees"), ("zh", "社区两委")):
        text = refusal.explain(lang)  # type: ignore[arg-type]
        assert text.strip()
        assert name in text  # role names in the reader's language
        assert "li" in text
    assert "作出决策" in refusal.explain("zh")
    assert refusal.to_dict()["message"] == {"en": refusal.explain("en"), "zh": refusal.explain("zh")}


def test_role_refusal_lists_every_allowed_role() -> None:
    w = Driver()
    w.to("decided")
    with pytest.raises(Refused) as info:
        w.review(by="zhou")
    refusal = info.value
    assert sorted(refusal.data["allowed"]) == ["sub_district", "supervisor"]  # type: ignore[call-overload]
    for lang, names in (("en", ("a supervisor", "the sub-district")), ("zh", ("监事", "街道"))):
        text = refusal.explain(lang)  # type: ignore[arg-type]
        assert all(name in text for name in names)
        assert "zhou" in text
