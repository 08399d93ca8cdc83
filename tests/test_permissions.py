"""Who may do what: the full role matrix of the default procedure (default deny); the same matrix
through the engine and its directory - a role held in the consultation's own community, in another
community, at the sub-district or district above it, or nowhere; the relational roles (the
proposer, the invited, the rotating chair named at notice) and the wording of role refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from consultflow import (
    Actor,
    AddTopic,
    Appeal,
    Ballot,
    Body,
    CallVote,
    Carrier,
    CastVote,
    Channel,
    Close,
    CloseRound,
    CloseVote,
    Command,
    Consultation,
    CoSign,
    Decide,
    EditProposal,
    Escalate,
    Form,
    Inspect,
    InvalidInput,
    Invite,
    MemoryDirectory,
    Notify,
    OpenRound,
    Propose,
    Publish,
    Reconsider,
    RecordFeedback,
    RecordOpinion,
    Refused,
    Reject,
    ReportProgress,
    RequestReconsultation,
    Resume,
    ReviewLegality,
    Role,
    SignIn,
    Stance,
    StartSupervision,
    State,
    Submit,
    Verdict,
    Withdraw,
    district,
    six_step,
    sub_district,
)
from consultflow.context import Context
from consultflow.core import authorise, check
from consultflow.directory import LEVEL_ROLES
from consultflow.procedure import NEW
from consultflow.refusals import Failure
from consultflow.roles import NEVER_GRANTED, STAKEHOLDERS, THINK_TANK, person_id
from consultflow.steps import DelayPledge, MarkOverdue, RecordMinutes, ScheduleMeeting
from consultflow.testing.driver import CAST, COMMUNITY, INVITED, TOPIC, Driver, only, standard_catalogue

R = Role
_CONVENORS = {R.COMMITTEE, R.ROTATING_CHAIR}
_PROPOSERS = {R.COMMITTEE, R.WORKING_COMMITTEE, R.COUNCIL_MEMBER, R.DEPUTY} | STAKEHOLDERS
_PARTICIPANTS = (
    {R.COMMITTEE, R.WORKING_COMMITTEE, R.COUNCIL_MEMBER, R.ROTATING_CHAIR, R.INVITEE} | STAKEHOLDERS | THINK_TANK
)
_REVIEWERS = {R.SUPERVISOR, R.SUB_DISTRICT, R.LEGAL_ADVISER}

# Who may fire each trigger, written out independently of the procedure's own declaration.
EXPECTED_BY_TRIGGER: dict[str, set[Role]] = {
    "propose": _PROPOSERS,
    "reject": {R.COMMITTEE},
    "withdraw": {R.PROPOSER, R.COMMITTEE},
    "notify": {R.COMMITTEE, R.WORKING_COMMITTEE},
    "invite": {R.COMMITTEE, R.WORKING_COMMITTEE},
    "open_round": _CONVENORS,
    "sign_in": _PARTICIPANTS,
    "record_opinion": _PARTICIPANTS,
    "close_round": _CONVENORS,
    "decide": {R.COMMITTEE},
    "call_vote": {R.COMMITTEE},
    # members of every body, and whoever may serve as a clerk (the guards then decide)
    "cast_vote": {
        R.RESIDENT,
        R.RESIDENT_REPRESENTATIVE,
        R.COUNCIL_MEMBER,
        R.OWNER,
        R.COMMITTEE,
        R.WORKING_COMMITTEE,
        R.ROTATING_CHAIR,
    },
    "close_vote": {R.COMMITTEE},
    "review": _REVIEWERS,
    "publish": {R.COMMITTEE},
    "report_progress": {R.COMMITTEE, R.WORKING_COMMITTEE},
    "record_feedback": set(STAKEHOLDERS),
    "start_supervision": {R.COMMITTEE},
    "inspect": {R.INSPECTION_GROUP, R.SUPERVISOR, R.SUB_DISTRICT},
    # residents too (联名: with co-signers, the co_signed guard)
    "request_reconsultation": {R.INSPECTION_GROUP, R.SUPERVISOR, R.COMMITTEE, R.RESIDENT, R.RESIDENT_REPRESENTATIVE},
    "escalate": {R.COMMITTEE, R.SUB_DISTRICT},
    "resume": {R.SUB_DISTRICT},
    "mark_overdue": {R.SYSTEM},
    # meetings (会议): the committees announce each meeting; the committees or the meeting's chair keep its minutes
    "schedule_meeting": {R.COMMITTEE, R.WORKING_COMMITTEE},
    "record_minutes": {R.COMMITTEE, R.WORKING_COMMITTEE, R.ROTATING_CHAIR},
    "delay_pledge": {R.COMMITTEE},  # 承诺制: the committee moves a pledge's date, with a reason
    # 提议 intake: the proposer's draft; residents co-sign (联名); the sub-district reconsiders (复核)
    "submit": {R.PROPOSER},
    "edit_proposal": {R.PROPOSER, R.COMMITTEE},
    "co_sign": {R.RESIDENT, R.RESIDENT_REPRESENTATIVE},
    "add_topic": {R.COMMITTEE},
    "appeal": {R.PROPOSER},
    "reconsider": {R.SUB_DISTRICT},
}
EXPECTED_BY_KEY: dict[tuple[str, str], set[Role]] = {
    ("supervising", "close"): {R.COMMITTEE},
    ("escalated", "close"): {R.SUB_DISTRICT},
    # a draft is its proposer's alone
    ("draft", "withdraw"): {R.PROPOSER},
    ("draft", "edit_proposal"): {R.PROPOSER},
}

OPTIONS = [
    (source, trigger, i, opt)
    for (source, trigger) in sorted({(t.source, t.trigger.value) for t in six_step().transitions})
    for i, opt in enumerate(six_step().options(source, trigger) or ())
]
_RELATIONAL = {R.PROPOSER, R.ROTATING_CHAIR, R.INVITEE}
#: Who holds each relational role towards ``consulting_record``: its proposer (not invited), one of
#: those invited, the chair named at notice.
_NAMED = {R.PROPOSER: "li", R.INVITEE: "wu", R.ROTATING_CHAIR: "chen"}


def expected_roles(source: str, trigger: str) -> set[Role]:
    return EXPECTED_BY_KEY.get((source, trigger)) or EXPECTED_BY_TRIGGER[trigger]


def _consulting(w: Driver) -> Consultation:
    """Proposed by ``li``, who is not among those invited (``wu``, ``zhang``, ``zhao``), with ``chen``
    named chair; a round open."""
    w.propose()
    w.notify(invite=tuple(p for p in INVITED if p != "li"))
    w.serve_notice()
    return w.open_round()


@pytest.fixture(scope="module")
def consulting_record() -> Consultation:
    """A record proposed by ``li`` (not invited), ``wu`` invited, ``chen`` named chair (authorise
    reads only those)."""
    return _consulting(Driver())


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
    assert "wu" in record.invited
    assert "li" not in record.invited
    for source, trigger, _i, opt in OPTIONS:
        on = None if source == NEW else record
        stranger = only(role, name="stranger")
        got = authorise(opt.roles, on, stranger)
        if role in _RELATIONAL:
            # holding a relational role grants nothing by itself
            assert isinstance(got, Failure), (source, trigger, role)
            # ... but the very proposer / invitee / named chair holding it is authorised where it is listed
            named = only(role, name=_NAMED[role])
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
    """``core.check`` (what ``Engine.allowed`` uses) refuses on role exactly where ``authorise`` does
    (a step open to whoever takes part says the actor takes no part)."""
    w = Driver()
    record = _consulting(w)
    actor = only(role, name=_NAMED.get(role, "x"))
    ctx = Context(now=w.clock.now(), actor=actor, catalogue=w.catalogue)
    p = six_step()
    for trigger in p.triggers_from("consulting"):
        roles = frozenset().union(*(o.roles for o in p.options("consulting", trigger) or ()))
        granted, refusal = check(p, record, trigger, ctx)
        if role in roles:
            assert refusal is None or refusal.guard != "role", (trigger, role, refusal)
        else:
            assert_role_refused(refusal, "consulting", trigger, actor.id)
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
    """The role refusal ``only(role)`` meets, the driver's directory granting them ``role`` here (the
    roles nobody is granted - the proposer, the invited, the system - are left out)."""
    refusal = w.engine.explain(command, by=w.actor(only(role)))  # type: ignore[arg-type]
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
        # the clock's step: no role a person can be granted, and the system role is nobody's
        ("consulting", lambda w, cid: MarkOverdue(consultation=cid), set()),
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
        person = w.actor(only(role))  # granted the role here, unless nobody can be
        if role in _PROPOSERS:
            rec = w.engine.execute(cmd, by=person)
            assert rec.state is State.PROPOSED
            assert rec.proposer == f"only-{role.value}"
            assert w.engine.history(rec.id)[0].role == role.value
        else:
            with pytest.raises(Refused) as info:
                w.engine.execute(cmd, by=person)
            assert info.value.code == "role_not_allowed"


# ---- relational roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["proposed", "notified", "consulting"])
def test_only_the_proposer_or_the_committee_may_withdraw(state: str) -> None:
    w = Driver()
    rec = w.to(state)
    cmd = Withdraw(consultation=rec.id, reason="问题已解决")
    # another resident, a resident representative, and someone holding 'proposer' who did not propose
    li2 = w.actor(Actor("li2", roles={Role.PROPOSER, Role.RESIDENT}))  # the directory grants li2 'resident' only
    for outsider in (CAST["wu"], CAST["zhang"], li2):
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
        text = refusal.explain(lang)
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
    assert sorted(refusal.data["allowed"]) == ["legal_adviser", "sub_district", "supervisor"]  # type: ignore[call-overload]
    for lang, names in (
        ("en", ("a supervisor", "the sub-district", "the legal adviser")),
        ("zh", ("监事", "街道", "法律顾问")),
    ):
        text = refusal.explain(lang)
        assert all(name in text for name in names)
        assert "zhou" in text


# ---- the matrix through the engine and its directory: here, in another community, nowhere ----------------

HERE, THERE = COMMUNITY, "xinghua"
GRANTABLE = tuple(r for r in Role if r not in NEVER_GRANTED)
#: The states every transition leaves from (``Driver.to``'s name for a record in that state).
SOURCES = ("proposed", "notified", "consulting", "decided", "feedback", "supervising", "escalated")
P = six_step()


def _named(state: str, trigger: str) -> frozenset[Role]:
    """Every role a transition for ``trigger`` from ``state`` names."""
    return frozenset().union(*(o.roles for o in P.options(state, trigger) or ()))


def assert_role_refused(refusal: Refused | None, state: str, trigger: str, person: str, open_to: str = "") -> None:
    """``refusal`` is the role check's for ``person``: for a step open to whoever takes part (an
    opinion, a sign-in: its transitions name the invited) it says the person takes no part; for any
    other step, that they hold none of the roles it names."""
    assert refusal is not None, (state, trigger, person)
    where = (state, trigger, person, refusal)
    assert refusal.guard == "role", where
    if R.INVITEE in _named(state, trigger):
        open_to = open_to or P.parameters.round_open_to
        assert (refusal.code, dict(refusal.data)) == (
            "not_taking_part",
            {"action": trigger, "person": person, "open_to": open_to},
        ), where
    else:
        assert refusal.code == "role_not_allowed", where
        assert refusal.data["actor"] == person, where
        assert list(refusal.data["allowed"]) == sorted(r.value for r in _named(state, trigger)), where  # type: ignore[call-overload]


def _propose(community: str) -> Propose:
    return Propose(community=community, topic=TOPIC, title="夜间停车", carrier=Carrier.DECISION, form=Form.COUNCIL)


@dataclass
class Communities:
    """One engine, two communities and the levels above them, a record in every source state in each:

    - ``taoyuan`` (here) is under the sub-district ``ninghai``, ``xinghua`` (there) under ``hunan``;
      both are in the district ``gulou``;
    - the driver's cast holds its roles in both; ``here-<role>`` holds one role in taoyuan only,
      ``there-<role>`` the same role in xinghua only; ``nobody-at-all`` holds nothing anywhere.
    """

    w: Driver
    directory: MemoryDirectory
    records: dict[tuple[str, str], Consultation]  # (community, state) -> record


@pytest.fixture(scope="module")
def communities() -> Communities:
    directory = MemoryDirectory()
    directory.place(HERE, sub_district="ninghai", district="gulou")
    directory.place(THERE, sub_district="hunan", district="gulou")
    catalogue = standard_catalogue().with_community(THERE, {TOPIC: "夜间停车 night parking"})
    w = Driver(directory=directory, catalogue=catalogue)
    for person in CAST.values():
        w.enrol(person, community=THERE)
    for role in GRANTABLE:
        directory.grant(HERE, f"here-{role.value}", role, by="test")
        directory.grant(THERE, f"there-{role.value}", role, by="test")
    records = {(c, s): w.to(s, community=c) for c in (HERE, THERE) for s in SOURCES}
    for (c, s), rec in records.items():
        assert (rec.community, rec.state.value) == (c, "consulting" if s == "consulting" else s)
    return Communities(w, directory, records)


def _acts_exactly_where_named(w: Driver, record: Consultation, person: str, role: Role) -> int:
    """``person`` holds ``role`` (and nothing else) in ``record``'s community: each next step passes
    the role check exactly when its transitions name ``role``; the clock's step never. Returns how
    many steps passed the role check."""
    state = record.state.value
    permissions = w.engine.allowed(record.id, by=person)
    assert [p.trigger for p in permissions] == list(P.next_steps(state))
    passed = 0
    for perm in permissions:
        where = (record.community, state, perm.trigger, person)
        refusal = perm.refusal
        if role in _named(state, perm.trigger) and role is not R.ROTATING_CHAIR:
            assert refusal is None or refusal.guard != "role", (where, refusal)
            if perm.allowed:
                assert perm.role == role.value, where
            passed += 1
        elif role in _named(state, perm.trigger):
            # a rotating chair acts only on the consultation that named them: here that is chen
            assert refusal is not None, where
            assert (refusal.guard, refusal.code, refusal.data["chair"]) == ("role", "not_the_chair", "chen"), where
        else:
            assert_role_refused(refusal, state, perm.trigger, person)
    overdue = w.engine.explain(MarkOverdue(consultation=record.id), by=person)
    assert overdue is not None
    if "mark_overdue" in P.triggers_from(state):
        assert (overdue.guard, overdue.code) == ("role", "role_not_allowed")
    else:
        assert overdue.code == "invalid_in_state"
    return passed


def _refused_everywhere(w: Driver, record: Consultation, by: str | Actor) -> None:
    """``by`` holds no role in ``record``'s community: every step is refused on the role."""
    person = by.id if isinstance(by, Actor) else person_id(by)
    for perm in w.engine.allowed(record.id, by=by):
        refusal = perm.refusal
        assert not perm.allowed
        assert_role_refused(refusal, record.state.value, perm.trigger, person)
        assert perm.role is None


@pytest.mark.parametrize("role", GRANTABLE, ids=lambda r: r.value)
def test_a_role_acts_in_its_own_community_exactly_where_the_transition_names_it(
    role: Role, communities: Communities
) -> None:
    w = communities.w
    here, there = f"here-{role.value}", f"there-{role.value}"
    passed = 0
    for (community, _state), record in communities.records.items():
        mine, other = (here, there) if community == HERE else (there, here)
        passed += _acts_exactly_where_named(w, record, mine, role)
        # the same role, held in the other community only: nothing here
        _refused_everywhere(w, record, other)
    if role is not R.ROTATING_CHAIR:
        assert passed > 0  # every role the directory grants is named somewhere: the matrix is not vacuous
    # proposing: in the community where the role is held, and only there
    for person, home, away in ((here, HERE, THERE), (there, THERE, HERE)):
        refusal = w.engine.explain(_propose(home), by=person)
        if role in _PROPOSERS:
            assert refusal is None, (person, refusal)
        else:
            assert refusal is not None
            assert (refusal.guard, refusal.code) == ("role", "role_not_allowed")
        refusal = w.engine.explain(_propose(away), by=person)
        assert refusal is not None
        assert (refusal.guard, refusal.code, refusal.data["actor"]) == ("role", "role_not_allowed", person)


def test_someone_with_no_membership_anywhere_may_do_nothing(communities: Communities) -> None:
    w = communities.w
    for who in ("nobody-at-all", "Nobody-At-All", Actor("nobody-at-all", roles=set(GRANTABLE))):
        for record in communities.records.values():
            _refused_everywhere(w, record, who)
            refusal = w.engine.explain(MarkOverdue(consultation=record.id), by=who)
            assert refusal is not None
            assert refusal.code in {"role_not_allowed", "invalid_in_state"}
        for community in (HERE, THERE):
            refusal = w.engine.explain(_propose(community), by=who)
            assert refusal is not None
            assert (refusal.guard, refusal.code) == ("role", "role_not_allowed")


def _command(trigger: str, cid: str, now: datetime) -> Command:
    """A command for ``trigger`` with valid content (the role check refuses before it is read)."""
    commands: dict[str, Callable[[], Command]] = {
        "reject": lambda: Reject(consultation=cid, reason="不予受理"),
        "withdraw": lambda: Withdraw(consultation=cid, reason="撤回"),
        "notify": lambda: Notify(consultation=cid, meeting_at=now + timedelta(days=4), invite=INVITED),
        "invite": lambda: Invite(consultation=cid, people=("liu",)),
        "open_round": lambda: OpenRound(consultation=cid),
        "sign_in": lambda: SignIn(consultation=cid),
        "record_opinion": lambda: RecordOpinion(consultation=cid, stance=Stance.SUPPORT),
        "close_round": lambda: CloseRound(consultation=cid),
        "decide": lambda: Decide(consultation=cid, resolution="决定"),
        "call_vote": lambda: CallVote(consultation=cid, body=Body.COUNCIL, members=3, resolution="表决"),
        "cast_vote": lambda: CastVote(consultation=cid, ballot=Ballot.FOR),
        "close_vote": lambda: CloseVote(consultation=cid),
        "review": lambda: ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL),
        "publish": lambda: Publish(consultation=cid, channels=(Channel.WECHAT,)),
        "report_progress": lambda: ReportProgress(consultation=cid, measure=0, percent=50),
        "record_feedback": lambda: RecordFeedback(consultation=cid, satisfaction=4),
        "start_supervision": lambda: StartSupervision(consultation=cid),
        "inspect": lambda: Inspect(consultation=cid, passed=True),
        "request_reconsultation": lambda: RequestReconsultation(consultation=cid, problems="新问题"),
        "escalate": lambda: Escalate(consultation=cid, reason="久拖不决"),
        "resume": lambda: Resume(consultation=cid, instructions="继续协商"),
        "close": lambda: Close(consultation=cid, summary="办结"),
        "schedule_meeting": lambda: ScheduleMeeting(consultation=cid, meeting_at=now + timedelta(days=4)),
        "record_minutes": lambda: RecordMinutes(consultation=cid, meeting=1, text="会议纪要"),
        "delay_pledge": lambda: DelayPledge(
            consultation=cid, measure=0, due=now + timedelta(days=60), reason="材料延误 materials late"
        ),
        "submit": lambda: Submit(consultation=cid),
        "edit_proposal": lambda: EditProposal(consultation=cid, title="新标题"),
        "co_sign": lambda: CoSign(consultation=cid),
        "add_topic": lambda: AddTopic(consultation=cid, slug="stray-cats", name="流浪猫"),
        "appeal": lambda: Appeal(consultation=cid, grounds="本社区事务"),
        "reconsider": lambda: Reconsider(consultation=cid, upheld=False, ruling="应予受理"),
    }
    return commands[trigger]()


def test_a_committee_member_of_another_community_cannot_act_here_end_to_end(communities: Communities) -> None:
    """Executing, not just asking: every next step in every state is refused, and nothing is written."""
    w = communities.w
    tried = 0
    for state in SOURCES:
        record = communities.records[(HERE, state)]
        for trigger in P.next_steps(state):
            command = _command(trigger, record.id, w.clock.now())
            before = w.snapshot(record.id)
            with pytest.raises(Refused) as info:
                w.engine.execute(command, by="there-committee")
            assert_role_refused(info.value, state, trigger, "there-committee")
            assert w.snapshot(record.id) == before
            tried += 1
    assert tried == sum(len(P.next_steps(s)) for s in SOURCES)


# ---- the levels above a community: the sub-district (街道) and the district (区) ------------------------


@pytest.mark.parametrize("role", sorted(LEVEL_ROLES), ids=lambda r: r.value)
def test_a_level_role_acts_in_the_communities_placed_under_it_and_not_in_others(
    role: Role, communities: Communities
) -> None:
    w, directory = communities.w, communities.directory
    at_ninghai, at_hunan, at_gulou = f"ninghai-{role.value}", f"hunan-{role.value}", f"gulou-{role.value}"
    directory.grant(sub_district("ninghai"), at_ninghai, role, by="test")
    directory.grant(sub_district("hunan"), at_hunan, role, by="test")
    directory.grant(district("gulou"), at_gulou, role, by="test")  # both communities are in gulou
    passed = 0
    for (community, _state), record in communities.records.items():
        mine, other = (at_ninghai, at_hunan) if community == HERE else (at_hunan, at_ninghai)
        passed += _acts_exactly_where_named(w, record, mine, role)
        _refused_everywhere(w, record, other)
        _acts_exactly_where_named(w, record, at_gulou, role)
    assert passed > 0
    now = w.clock.now()
    assert directory.roles(at_ninghai, HERE, now) == {role}
    assert directory.roles(at_ninghai, THERE, now) == frozenset()
    assert directory.roles(at_gulou, THERE, now) == {role}
    # a level's officials are not members of the community itself
    assert at_ninghai not in directory.members(HERE, now)
    # a community placed nowhere has no levels above it
    assert directory.roles(at_gulou, "nowhere", now) == frozenset()


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_a_level_holds_only_the_sub_district_and_the_legal_adviser(role: Role) -> None:
    directory = MemoryDirectory()
    directory.place(HERE, sub_district="ninghai", district="gulou")
    for scope in (sub_district("ninghai"), district("gulou")):
        if role in LEVEL_ROLES:
            directory.grant(scope, "official", role)
            assert role in directory.roles("official", HERE, Driver().clock.now())
            continue
        with pytest.raises(InvalidInput) as info:
            directory.grant(scope, "official", role)
        assert role.value in str(info.value)
        assert directory.grants(scope=scope) == ()
    # in a community every role but the relational ones and the clock's may be granted
    if role in NEVER_GRANTED:
        with pytest.raises(InvalidInput):
            directory.grant(HERE, "someone", role)
        assert directory.grants(scope=HERE) == ()
    else:
        directory.grant(HERE, "someone", role)
        assert [(g.person, g.role) for g in directory.grants(scope=HERE)] == [("someone", role)]


def test_the_directory_answers_for_the_moment_of_the_step() -> None:
    """A role held from a moment, and revoked at another: what counts is the time of the step."""
    w = Driver()
    assert w.directory is not None
    directory = w.directory
    cid = w.to("consulting_closed").id
    start = w.clock.now() + timedelta(days=1)
    directory.grant(HERE, "qian", Role.COMMITTEE, by="election", at=start)
    assert w.engine.explain(w.decide_command(), by="qian") is not None  # not yet
    directory.revoke(HERE, "wang", Role.COMMITTEE, at=start, by="term ended")
    w.clock.set(start - timedelta(seconds=1))
    assert w.engine.explain(w.decide_command(), by="wang") is None  # still in office
    w.clock.set(start)
    refusal = w.engine.explain(w.decide_command(), by="wang")
    assert refusal is not None
    assert (refusal.code, refusal.data["actor"]) == ("role_not_allowed", "wang")
    rec = w.run(w.decide_command(), Actor("qian"))  # the directory has her on the committee from ``start``
    assert rec.state is State.DECIDED
    assert (w.history()[-1].actor, w.history()[-1].role) == ("qian", "committee")
    # the history stays: wang was on the committee, until the moment he was not
    (grant,) = [g for g in directory.grants(person="wang") if g.role is Role.COMMITTEE]
    assert (grant.until, grant.revoked_by) == (start, "term ended")
    assert cid == rec.id


# ---- relational roles through the directory --------------------------------------------------------------


def test_an_invited_outsider_takes_part_but_does_nothing_else() -> None:
    w = Driver()
    cid = w.to("consulting").id
    w.run(Invite(consultation=cid, people=("guest", "there-expert")), "wang")
    assert w.directory is not None
    w.directory.grant(THERE, "there-expert", Role.EXPERT)  # an expert of another community, invited here
    for guest in ("guest", "there-expert"):
        perms = {p.trigger: p for p in w.engine.allowed(cid, by=guest)}
        assert {t for t, p in perms.items() if p.allowed} == {"sign_in", "record_opinion"}
        for trigger, perm in perms.items():
            if not perm.allowed:
                assert perm.refusal is not None
                assert (perm.refusal.guard, perm.refusal.code) == ("role", "role_not_allowed"), trigger
        rec = w.run(RecordOpinion(consultation=cid, stance=Stance.SUPPORT), Actor(guest))
        op = rec.rounds[-1].opinions[-1]
        assert (op.participant, op.role) == (guest, Role.INVITEE)
        assert (w.history()[-1].actor, w.history()[-1].role) == (guest, "invitee")
        with pytest.raises(Refused) as info:
            w.engine.execute(_propose(HERE), by=guest)
        assert info.value.code == "role_not_allowed"
    # invited to one consultation is invited to no other
    other = w.to("consulting").id
    with pytest.raises(Refused) as info:
        w.engine.execute(RecordOpinion(consultation=other, stance=Stance.SUPPORT), by="guest")
    assert_role_refused(info.value, "consulting", "record_opinion", "guest")


def test_the_proposer_may_withdraw_whatever_the_directory_says_now() -> None:
    """Proposing is a relation to the matter: it outlasts the role it was proposed in."""
    w = Driver()
    cid = w.to("notified").id
    assert w.directory is not None
    w.directory.revoke(HERE, "li", Role.RESIDENT, at=w.clock.now() + timedelta(seconds=1), by="moved away")
    w.clock.advance(hours=1)
    assert w.directory.roles("li", HERE, w.clock.now()) == frozenset()
    perms = {p.trigger: p for p in w.engine.allowed(cid, by="li")}
    assert perms["withdraw"].allowed
    assert perms["withdraw"].role == "proposer"
    rec = w.run(Withdraw(consultation=cid, reason="搬走了 moved away"), "li")
    assert rec.state is State.WITHDRAWN
    assert (w.history()[-1].actor, w.history()[-1].role) == ("li", "proposer")


def test_the_rotating_chair_must_hold_the_role_here_when_named_and_when_acting() -> None:
    w = Driver()
    assert w.directory is not None
    directory = w.directory
    directory.grant(THERE, "chair-there", Role.ROTATING_CHAIR)
    cid = w.to("proposed", form=Form.CONSULTATION_DAY).id
    meeting = w.clock.now() + timedelta(days=5)
    with pytest.raises(Refused) as info:
        w.run(Notify(consultation=cid, meeting_at=meeting, chair="chair-there"), "wang")
    assert (info.value.code, info.value.data["chair"]) == ("chair_not_a_chair", "chair-there")
    w.notify(meeting_at=meeting, chair="chen")
    w.serve_notice()
    # chen's term as a rotating chair ends before the meeting: named, but no longer a chair
    directory.revoke(HERE, "chen", Role.ROTATING_CHAIR, at=meeting - timedelta(hours=1))
    refusal = w.engine.explain(OpenRound(consultation=cid), by="chen")
    assert refusal is not None
    assert (refusal.guard, refusal.code) == ("role", "role_not_allowed")
    directory.grant(HERE, "chen", Role.ROTATING_CHAIR, at=meeting)
    assert w.open_round(by="chen").state is State.CONSULTING
    assert (w.history()[-1].actor, w.history()[-1].role) == ("chen", "rotating_chair")
