"""Residents decide (精准化 "赋予居民参与权、决策权"): a body decides by a recorded vote.

The count by each body's rule at its edges (exactly half, just over, two thirds, the owners' double
majority by number and by area, participation below two thirds), abstentions, who may vote, one
ballot each, proxies, a lost vote, the committee refused where a body decides, recusal, and a
property: the outcome logged equals an independent re-count from the log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import consultflow as cf
from consultflow import Actor, Ballot, Body, Event, Role, State, Verdict, VoteRule
from consultflow.records import CastBallot, Vote, make
from consultflow.roles import NEVER_GRANTED
from consultflow.steps.vote import count_vote
from consultflow.testing.driver import CAST, T0, Driver, standard_catalogue

F, A, X = Ballot.FOR, Ballot.AGAINST, Ballot.ABSTAIN


def _vote(body: Body, members: int, ballots: list[tuple[Ballot, str | None]], area: str | None = None) -> Vote:
    cast = tuple(
        make(
            CastBallot,
            {
                "voter": f"v{i}",
                "ballot": b,
                "area": None if a is None else Decimal(a),
                "at": T0,
                "recorded_by": None,
            },
        )
        for i, (b, a) in enumerate(ballots)
    )
    return Vote(
        number=1,
        cycle=1,
        round=1,
        body=body,
        called_by="wang",
        called_at=T0,
        members=members,
        area_total=None if area is None else Decimal(area),
        resolution="表决",
        ballots=cast,
    )


def _count(rule: VoteRule, members: int, ballots: list[Ballot], body: Body = Body.COUNCIL) -> cf.VoteTally:
    return count_vote(rule, _vote(body, members, [(b, None) for b in ballots]))


SIMPLE = VoteRule(majority="simple", quorum="none")
TWO_THIRDS = VoteRule(majority="two_thirds", quorum="none")


# ---- the count, at its edges --------------------------------------------------------------------------
def test_simple_majority_needs_more_than_half_exactly_half_is_not_enough() -> None:
    assert not _count(SIMPLE, 10, [F, F, A, A]).carried  # exactly half
    assert _count(SIMPLE, 10, [F, F, F, A, A]).carried  # just over
    assert not _count(SIMPLE, 10, []).carried  # nobody voted


def test_two_thirds_is_at_least_two_thirds() -> None:
    assert _count(TWO_THIRDS, 10, [F, F, A]).carried  # exactly two thirds
    assert not _count(TWO_THIRDS, 10, [F, F, F, F, F, A, A, A]).carried  # 5/8 < 2/3
    assert _count(TWO_THIRDS, 10, [F, F, F, F, F, F, F, A, A, A]).carried  # 7/10 > 2/3
    assert not _count(TWO_THIRDS, 10, [F, A, A]).carried


def test_abstentions_counted_weigh_like_against_excluded_they_do_not() -> None:
    counted = VoteRule(majority="simple", quorum="none", abstentions="counted")
    excluded = VoteRule(majority="simple", quorum="none", abstentions="excluded")
    ballots = [F, F, A, X, X]
    assert not _count(counted, 10, ballots).carried  # 2 of 5
    assert _count(excluded, 10, ballots).carried  # 2 of 3
    # either way an abstention takes part, for the quorum
    quorate = VoteRule(majority="simple", quorum="more_than_half", abstentions="excluded")
    t = _count(quorate, 9, [F, X, X, X, X])
    assert (t.participated, t.quorum_met, t.carried) == (5, True, True)


def test_the_quorum_more_than_half_and_two_thirds_of_the_members() -> None:
    half = VoteRule(majority="simple", quorum="more_than_half")
    assert not _count(half, 10, [F, F, F, F, F]).quorum_met  # exactly half take part
    assert _count(half, 10, [F, F, F, F, F, F]).quorum_met
    thirds = VoteRule(majority="simple", quorum="two_thirds")
    assert _count(thirds, 9, [F] * 6).quorum_met  # exactly two thirds
    assert not _count(thirds, 10, [F] * 6).quorum_met
    assert not _count(thirds, 10, [F] * 6).carried  # no quorum, no decision, however unanimous


OWNERS = VoteRule(majority="double_majority", quorum="two_thirds")


def _owners(ballots: list[tuple[Ballot, str]], members: int = 6, area: str = "600") -> cf.VoteTally:
    return count_vote(OWNERS, _vote(Body.OWNERS_MEETING, members, list(ballots), area))


def test_double_majority_by_number_and_by_area() -> None:
    t = _owners([(F, "100"), (F, "100"), (F, "100"), (A, "100"), (A, "50")])
    assert t.quorum_met
    assert t.carried  # 3 of 5 owners, 300 of 450 m²
    assert (t.area_yes, t.area_no, t.area_participated) == (Decimal(300), Decimal(150), Decimal(450))


def test_double_majority_by_number_but_not_by_area_fails() -> None:
    t = _owners([(F, "50"), (F, "50"), (F, "50"), (A, "200"), (A, "100")])
    assert t.quorum_met
    assert not t.carried  # 3 of 5 owners, but 150 of 450 m²


def test_double_majority_by_area_but_not_by_number_fails() -> None:
    t = _owners([(F, "300"), (F, "50"), (A, "25"), (A, "25"), (A, "25")])
    assert t.quorum_met
    assert not t.carried  # 350 of 425 m², but 2 of 5 owners


def test_double_majority_exactly_half_by_area_fails() -> None:
    assert not _owners([(F, "100"), (F, "100"), (F, "25"), (A, "200"), (A, "25")]).carried  # 225 of 450


def test_owners_participation_below_two_thirds_by_number_or_by_area() -> None:
    by_number = _owners([(F, "200"), (F, "200"), (F, "100")], members=6)  # 3 of 6 owners, 500 of 600 m²
    assert not by_number.quorum_met
    assert not by_number.carried
    by_area = _owners([(F, "50"), (F, "50"), (F, "50"), (F, "50"), (F, "50")], members=6)  # 5 of 6, 250 of 600
    assert not by_area.quorum_met
    at_edge = _owners([(F, "100"), (F, "100"), (F, "100"), (F, "100")], members=6)  # 4 of 6, 400 of 600
    assert at_edge.quorum_met
    assert at_edge.carried


def test_a_double_majority_is_only_for_owners() -> None:
    with pytest.raises(cf.ValidationError):
        cf.six_step().variant("x", "1", parameters={"voting": {"council": {"majority": "double_majority"}}})


# ---- end to end ---------------------------------------------------------------------------------------
REPS = ("r1", "r2", "r3", "r4", "r5")
OWNER_IDS = ("o1", "o2", "o3", "o4", "o5")


VOTERS = {
    **{rep: Actor(rep, roles={Role.RESIDENT_REPRESENTATIVE}) for rep in REPS},
    **{owner: Actor(owner, roles={Role.OWNER}) for owner in OWNER_IDS},
    # a resident representative who is also a supervisor (监事)
    "r9": Actor("r9", roles={Role.RESIDENT_REPRESENTATIVE, Role.SUPERVISOR}),
}


#: The representatives the directory lists: REPS and r9. The cast's own representative and owner
#: are plain residents here, so each body has just the members this file names.
MEMBERS = len(REPS) + 1


def _world(**parameters: Any) -> Driver:
    residents = {name: Actor(name, roles={Role.RESIDENT}) for name in ("zhang", "owner")}
    return Driver(cast={**CAST, **residents, **VOTERS}, **parameters)


def _call(w: Driver, cid: str, body: Body = Body.REPRESENTATIVES_MEETING, **fields: Any) -> cf.CallVote:
    """A call without ``members``: the engine counts the body's members in the directory."""
    data: dict[str, Any] = {
        "consultation": cid,
        "body": body,
        "resolution": "东侧空地夜间开放",
        "measures": (w.measure(),),
    }
    data.update(fields)
    return cf.CallVote(**data)


def _ready(w: Driver, *, major: bool = True) -> str:
    return w.to("consulting_closed", major=major).id


BY_REPS = {"major_decided_by": "representatives_meeting"}


def test_the_committee_is_refused_where_a_body_decides() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    refusal = w.engine.explain(w.decide_command(), by="wang")
    assert refusal is not None
    assert (refusal.guard, refusal.code) == ("committee_decides", "decided_by_body")
    assert "居民代表会议" in refusal.explain("zh")
    assert "the residents' representatives' meeting" in refusal.explain("en")
    # a matter that is not major stays the committee's
    other = _ready(w, major=False)
    assert w.engine.explain(w.decide_command(cid=other), by="wang") is None
    # and a vote of another body is refused
    wrong = w.engine.explain(_call(w, cid, Body.COUNCIL), by="wang")
    assert wrong is not None
    assert wrong.code == "wrong_body"


def test_a_carried_vote_takes_the_decision_and_the_review_follows() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    for rep, ballot in zip(REPS, (F, F, F, A, X), strict=True):
        w.run(cf.CastVote(consultation=cid, ballot=ballot), rep)
    step = w.step(cf.CloseVote(consultation=cid), "wang")
    assert [e.event for e in step.entries] == [Event.VOTE_CLOSED, Event.DECIDED]
    rec = step.record
    assert rec.state is State.DECIDED
    d = rec.current_decision
    assert d is not None
    assert (d.body, d.vote, d.resolution) == (Body.REPRESENTATIVES_MEETING, 1, "东侧空地夜间开放")
    t = rec.votes[-1].tally
    assert t is not None
    assert (t.yes, t.no, t.abstain, t.participated, t.quorum_met, t.carried) == (3, 1, 1, 5, True, True)
    assert step.entries[-1].data["body"] == "representatives_meeting"
    assert list(step.entries[-1].data) == sorted(step.entries[-1].data)
    assert w.engine.verify(cid).ok
    # a supervisor who did not vote reviews
    review = cf.ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL)
    assert w.engine.explain(review, by="sun") is None


def test_whoever_voted_stands_aside_from_the_review() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    for rep in ("r1", "r2", "r3", "r9"):
        w.run(cf.CastVote(consultation=cid, ballot=F), rep)
    assert w.run(cf.CloseVote(consultation=cid), "wang").state is State.DECIDED
    refusal = w.engine.explain(cf.ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL), by="r9")
    assert refusal is not None
    assert refusal.code == "reviewer_cast_ballot"
    assert refusal.explain("zh") == "r9参加了作出决策的居民代表会议第1次表决，应当回避合法性审查"
    no_recusal = _world(voters_recuse=False, **BY_REPS)
    cid = _ready(no_recusal)
    no_recusal.run(_call(no_recusal, cid), "wang")
    for rep in ("r1", "r2", "r3", "r9"):
        no_recusal.run(cf.CastVote(consultation=cid, ballot=F), rep)
    no_recusal.run(cf.CloseVote(consultation=cid), "wang")
    assert no_recusal.engine.explain(cf.ReviewLegality(consultation=cid, verdict=Verdict.LAWFUL), by="r9") is None


def test_a_lost_vote_leaves_the_matter_in_consultation_on_record() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    for rep, ballot in zip(REPS, (F, F, A, A, X), strict=True):
        w.run(cf.CastVote(consultation=cid, ballot=ballot), rep)
    rec = w.run(cf.CloseVote(consultation=cid), "wang")
    assert rec.state is State.CONSULTING
    assert rec.decisions == ()
    assert rec.votes[-1].tally is not None
    assert not rec.votes[-1].tally.carried
    # the round was the body's: neither another vote nor the committee on it, a new round first
    again = w.engine.explain(_call(w, cid), by="wang")
    assert again is not None
    assert again.code == "round_voted"
    w.hold_round()
    w.run(_call(w, cid), "wang")
    assert w.get(cid).votes[-1].number == 2


def test_while_a_vote_is_open_no_round_opens_and_no_second_vote() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    refusal = w.engine.explain(cf.OpenRound(consultation=cid), by="wang")
    assert refusal is not None
    assert refusal.code == "vote_open"
    second = w.engine.explain(_call(w, cid), by="wang")
    assert second is not None
    assert second.code == "vote_open"
    alone = w.engine.explain(w.decide_command(), by="wang")
    assert alone is not None
    assert alone.code == "decided_by_body"
    lenient = _world()  # the committee's matter, put to a vote: while it is open, the committee waits
    other = _ready(lenient, major=False)
    lenient.run(_call(lenient, other), "wang")
    waiting = lenient.engine.explain(lenient.decide_command(), by="wang")
    assert waiting is not None
    assert waiting.code == "vote_open"


def test_non_members_are_refused_and_one_ballot_each() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    refusal = w.engine.explain(cf.CastVote(consultation=cid, ballot=F), by="li")  # a resident, not a representative
    assert refusal is not None
    assert (refusal.code, refusal.data["person"]) == ("not_a_member", "li")
    assert (
        refusal.explain("en") == "li is not a member of the residents' representatives' meeting and may not vote in it"
    )
    w.run(cf.CastVote(consultation=cid, ballot=F), "r1")
    twice = w.engine.explain(cf.CastVote(consultation=cid, ballot=A), by="r1")
    assert twice is not None
    assert twice.code == "already_voted"


def test_the_members_are_counted_in_the_directory_not_taken_from_the_caller() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    # a committee member who states a smaller body (so that fewer ballots make a quorum) is refused
    refusal = w.engine.explain(_call(w, cid, members=2), by="wang")
    assert refusal is not None
    assert (refusal.guard, refusal.code) == ("register_agrees", "members_mismatch")
    assert (refusal.data["stated"], refusal.data["counted"]) == (2, MEMBERS)
    assert "名册中居民代表会议有6名成员，而不是2名" in refusal.explain("zh")
    step = w.step(_call(w, cid, members=MEMBERS), "wang")  # stated right, it is taken
    assert step.record.votes[-1].members == MEMBERS
    assert (step.entries[-1].data["members"], step.entries[-1].data["register"]) == (MEMBERS, "directory")


def test_no_more_ballots_than_the_register_counted_members() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    assert w.directory is not None
    w.directory.grant(w.community, "r7", Role.RESIDENT_REPRESENTATIVE, by="test")  # elected after the call
    for rep in (*REPS, "r9"):
        w.run(cf.CastVote(consultation=cid, ballot=F), rep)
    refusal = w.engine.explain(cf.CastVote(consultation=cid, ballot=A), by="r7")
    assert refusal is not None
    assert refusal.code == "vote_full"


def test_a_directory_that_cannot_list_members_needs_them_stated_and_the_log_says_so() -> None:
    clock = cf.SimulatedClock(T0)
    procedure = _world(**BY_REPS).procedure
    cast = {**CAST, **VOTERS}
    held = cf.MemoryDirectory()
    for person in cast.values():
        if person.roles - NEVER_GRANTED:
            held.grant("taoyuan", person.id, *(person.roles - NEVER_GRANTED), by="test")

    class RolesOnly:  # an app's own directory: it answers the engine's one question, and lists nobody
        def roles(self, person: str, community: str, at: datetime) -> frozenset[Role]:
            return held.roles(person, community, at)

    engine = cf.Engine(procedure, clock=clock, catalogue=standard_catalogue(), directory=RolesOnly())
    w = Driver(engine=engine, clock=clock, cast=cast)
    cid = w.to("consulting_closed", major=True).id
    refusal = w.engine.explain(_call(w, cid), by=w.actor("wang"))
    assert refusal is not None
    assert (refusal.guard, refusal.code) == ("register_agrees", "members_unknown")
    assert refusal.explain("en").startswith("say how many members the residents' representatives' meeting has")
    step = w.step(_call(w, cid, members=MEMBERS), "wang")
    assert step.record.votes[-1].members == MEMBERS
    assert step.entries[-1].data["register"] == "stated"


def test_a_clerk_records_a_members_ballot() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    step = w.step(cf.CastVote(consultation=cid, ballot=F, on_behalf_of="r1"), "wang")
    entry = step.entries[-1]
    assert (entry.actor, entry.data["voter"], entry.data["on_behalf_of"]) == ("wang", "r1", "r1")
    assert list(entry.data) == sorted(entry.data)
    ballot = step.record.votes[-1].ballots[-1]
    assert (ballot.voter, ballot.recorded_by) == ("r1", "wang")
    own = w.engine.explain(cf.CastVote(consultation=cid, ballot=A), by="r1")
    assert own is not None
    assert own.code == "already_voted"
    not_clerk = w.engine.explain(cf.CastVote(consultation=cid, ballot=A, on_behalf_of="r2"), by="r3")
    assert not_clerk is not None
    assert not_clerk.code == "not_a_clerk"
    outsider = w.engine.explain(cf.CastVote(consultation=cid, ballot=A, on_behalf_of="li"), by="wang")
    assert outsider is not None
    assert outsider.code == "not_a_member"


def _register(*areas: str) -> tuple[cf.OwnerShare, ...]:
    return tuple(cf.OwnerShare(owner=o, area=Decimal(a)) for o, a in zip(OWNER_IDS, areas, strict=False))


def test_an_owners_meeting_counts_by_number_and_the_registers_floor_area() -> None:
    w = _world(major_decided_by="owners_meeting")
    cid = _ready(w)
    register = _register("150", "20", "100", "60", "40")
    # the register lists every owner the directory has, and nobody else
    short = w.engine.explain(_call(w, cid, Body.OWNERS_MEETING, owners=register[:3]), by="wang")
    assert short is not None
    assert (short.code, short.data["stated"], short.data["counted"]) == ("members_mismatch", 3, 5)
    stranger = (*register[:4], cf.OwnerShare(owner="li", area=Decimal(40)))
    not_owner = w.engine.explain(_call(w, cid, Body.OWNERS_MEETING, owners=stranger), by="wang")
    assert not_owner is not None
    assert (not_owner.code, not_owner.data["person"]) == ("not_an_owner", "li")
    step = w.step(_call(w, cid, Body.OWNERS_MEETING, owners=register), "wang")
    assert step.record.votes[-1].area_total == Decimal(370)
    assert step.record.votes[-1].members == 5
    assert step.entries[-1].data["owners"] == [
        {"area": "150", "owner": "o1"},
        {"area": "20", "owner": "o2"},
        {"area": "100", "owner": "o3"},
        {"area": "60", "owner": "o4"},
        {"area": "40", "owner": "o5"},
    ]
    assert w.directory is not None
    w.directory.grant(w.community, "o6", Role.OWNER, by="test")  # bought a flat after the call
    outside = w.engine.explain(cf.CastVote(consultation=cid, ballot=F), by=Actor("o6", roles={Role.OWNER}))
    assert outside is not None
    assert outside.code == "not_in_register"
    for owner, ballot in (("o1", F), ("o2", F), ("o3", A), ("o4", F)):
        w.run(cf.CastVote(consultation=cid, ballot=ballot), owner)
    rec = w.run(cf.CloseVote(consultation=cid), "wang")
    assert rec.votes[-1].ballots[0].area == Decimal(150)  # the register's, not the voter's word
    # 4 of 5 owners and 330 of 370 m² take part; 3 of 4 owners and 230 of 330 m² are for
    assert rec.state is State.DECIDED
    with pytest.raises(cf.ValidationError):
        cf.CallVote(consultation=cid, body=Body.OWNERS_MEETING, members=3, resolution="x")  # no register
    with pytest.raises(cf.ValidationError):
        cf.CallVote(consultation=cid, body=Body.OWNERS_MEETING, members=2, resolution="x", owners=register)
    with pytest.raises(cf.ValidationError):
        cf.CallVote(consultation=cid, body=Body.COUNCIL, members=3, resolution="x", owners=register)


def test_the_committee_may_put_its_own_matter_to_a_vote_but_not_then_decide_it_alone() -> None:
    w = _world()
    cid = _ready(w, major=False)
    w.run(_call(w, cid, Body.COUNCIL), "wang")  # the cast's one council member
    rec = w.run(cf.CloseVote(consultation=cid), "wang")  # nobody voted: lost
    assert rec.state is State.CONSULTING
    refusal = w.engine.explain(w.decide_command(), by="wang")
    assert refusal is not None
    assert refusal.code == "needs_new_round"
    with pytest.raises(cf.ValidationError):
        cf.CallVote(consultation=cid, body=Body.COMMITTEE, members=3, resolution="x")


def test_the_timeline_shows_the_vote_in_both_languages() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    w.run(cf.CastVote(consultation=cid, ballot=F, on_behalf_of="r1"), "wang")
    for rep in ("r2", "r3", "r4"):
        w.run(cf.CastVote(consultation=cid, ballot=F), rep)
    w.run(cf.CloseVote(consultation=cid), "wang")
    from consultflow.timeline import format_timeline

    history = w.engine.history(cid)
    en = "\n".join(format_timeline(history, lang="en"))
    zh = "\n".join(format_timeline(history, lang="zh"))
    assert "vote 1 of the residents' representatives' meeting on: 东侧空地夜间开放" in en
    assert "carried: 4 for, 0 against, 0 abstain" in en
    assert "by the residents' representatives' meeting, vote 1" in en
    assert "居民代表会议第1次表决：东侧空地夜间开放" in zh
    assert "代r1投票" in zh
    assert "通过：同意4，反对0，弃权0" in zh


# ---- the property: the logged outcome is what the log's ballots say -----------------------------------
def _recount(entries: list[cf.LogEntry], rule: VoteRule, members: int) -> bool:
    """Count the ``vote_cast`` entries by the rule's own words, with exact fractions."""
    ballots = [e.data["ballot"] for e in entries if e.event is Event.VOTE_CAST]
    yes, no, abstain = (ballots.count(b) for b in ("for", "against", "abstain"))
    took_part = Fraction(yes + no + abstain, members)
    quorum = {"none": True, "more_than_half": took_part > Fraction(1, 2), "two_thirds": took_part >= Fraction(2, 3)}
    counted = yes + no + (abstain if rule.abstentions == "counted" else 0)
    if counted == 0:
        return False
    share = Fraction(yes, counted)
    majority = share >= Fraction(2, 3) if rule.majority == "two_thirds" else share > Fraction(1, 2)
    return quorum[rule.quorum] and majority


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ballots=st.lists(st.sampled_from([F, A, X, None]), min_size=len(REPS), max_size=len(REPS)),
    majority=st.sampled_from(["simple", "two_thirds"]),
    quorum=st.sampled_from(["none", "more_than_half", "two_thirds"]),
    abstentions=st.sampled_from(["counted", "excluded"]),
    members=st.integers(MEMBERS, 9),
)
def test_the_outcome_equals_an_independent_recount_from_the_log(
    ballots: list[Ballot | None], majority: str, quorum: str, abstentions: str, members: int
) -> None:
    rule = VoteRule.model_validate({"majority": majority, "quorum": quorum, "abstentions": abstentions})
    w = _world(voting={"representatives_meeting": rule.model_dump()}, **BY_REPS)
    assert w.directory is not None
    for extra in range(members - MEMBERS):  # representatives who will not vote
        w.directory.grant(w.community, f"absent{extra}", Role.RESIDENT_REPRESENTATIVE, by="test")
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    for rep, ballot in zip(REPS, ballots, strict=True):
        if ballot is not None:  # None: absent
            w.run(cf.CastVote(consultation=cid, ballot=ballot), rep)
    step = w.step(cf.CloseVote(consultation=cid), "wang")
    history = list(w.engine.history(cid))
    carried = _recount(history, rule, members)
    closed = next(e for e in reversed(history) if e.event is Event.VOTE_CLOSED)
    assert closed.data["carried"] is carried
    assert (step.record.state is State.DECIDED) is carried
    assert (history[-1].event is Event.DECIDED) is carried
    assert w.engine.verify(cid).ok


def _recount_owners(entries: list[cf.LogEntry]) -> bool:
    """民法典第二百七十八条 from the log alone, the register as logged with the call: at least two
    thirds take part by number and by area; more than half of those taking part are for, by number
    and by area (abstentions counted)."""
    called = next(e for e in entries if e.event is Event.VOTE_CALLED)
    rows: Any = called.data["owners"]
    register = {row["owner"]: Fraction(Decimal(row["area"])) for row in rows}
    cast = [(e.data["ballot"], register[e.data["voter"]]) for e in entries if e.event is Event.VOTE_CAST]
    if not cast:
        return False
    took_part, area_in = len(cast), sum(a for _, a in cast)
    yes = [a for b, a in cast if b == "for"]
    by_number = Fraction(took_part, len(register)) >= Fraction(2, 3)
    by_area = area_in / sum(register.values()) >= Fraction(2, 3)
    return (
        by_number and by_area and Fraction(len(yes), took_part) > Fraction(1, 2) and sum(yes) / area_in > Fraction(1, 2)
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ballots=st.lists(
        st.tuples(st.sampled_from([F, A, X, None]), st.integers(1, 200)),
        min_size=len(OWNER_IDS),
        max_size=len(OWNER_IDS),
    ),
)
def test_an_owners_vote_equals_an_independent_recount_from_the_log(ballots: list[tuple[Ballot | None, int]]) -> None:
    register = _register(*(str(area) for _, area in ballots))
    w = _world(major_decided_by="owners_meeting")
    cid = _ready(w)
    w.run(_call(w, cid, Body.OWNERS_MEETING, owners=register), "wang")
    for owner, (ballot, _) in zip(OWNER_IDS, ballots, strict=True):
        if ballot is not None:
            w.run(cf.CastVote(consultation=cid, ballot=ballot), owner)
    step = w.step(cf.CloseVote(consultation=cid), "wang")
    history = list(w.engine.history(cid))
    carried = _recount_owners(history)
    assert (step.record.state is State.DECIDED) is carried
    assert (history[-1].event is Event.DECIDED) is carried


def test_a_member_is_offered_the_ballot_while_the_vote_is_open() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid), "wang")
    w.clock.advance(timedelta(days=1))
    assert [p.trigger for p in w.engine.allowed(cid, by="r1") if p.allowed] == ["cast_vote"]


# ---- a vote that outlives its dates, who hears of a vote, the default procedure ---------------------
def test_a_vote_whose_measure_fell_due_while_it_was_open_lapses_and_can_be_called_again() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid, measures=(w.measure(days=2),)), "wang")
    for rep in REPS:
        w.run(cf.CastVote(consultation=cid, ballot=F), rep)
    w.clock.advance(timedelta(days=3))  # the measure was due yesterday: carried, it could not be carried out
    step = w.step(cf.CloseVote(consultation=cid), "wang")
    assert [e.event for e in step.entries] == [Event.VOTE_CLOSED]
    closed = step.entries[-1].data
    assert (closed["carried"], closed["lapsed"]) == (True, [1])
    assert list(closed) == sorted(closed)
    assert step.record.state is State.CONSULTING
    assert step.record.decisions == ()
    assert step.record.votes[-1].lapsed
    # the same round may go to a new vote with new dates; no new meeting is needed
    again = w.step(_call(w, cid, measures=(w.measure(days=30),)), "wang")
    assert again.record.votes[-1].number == 2
    for rep in REPS:
        w.run(cf.CastVote(consultation=cid, ballot=F), rep)
    assert w.run(cf.CloseVote(consultation=cid), "wang").state is State.DECIDED


def test_a_lost_vote_does_not_lapse() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    w.run(_call(w, cid, measures=(w.measure(days=1),)), "wang")
    w.clock.advance(timedelta(days=2))
    step = w.step(cf.CloseVote(consultation=cid), "wang")  # nobody voted
    assert "lapsed" not in step.entries[-1].data
    assert not step.record.votes[-1].lapsed
    refusal = w.engine.explain(_call(w, cid), by="wang")
    assert refusal is not None
    assert refusal.code == "round_voted"


def test_the_members_of_the_body_hear_that_a_vote_is_called_and_how_it_ended() -> None:
    w = _world(**BY_REPS)
    cid = _ready(w)
    called = w.step(_call(w, cid), "wang")
    assert "role:resident_representative" in called.notices[-1].audience
    for rep in REPS:
        w.run(cf.CastVote(consultation=cid, ballot=F), rep)
    closed = w.step(cf.CloseVote(consultation=cid), "wang")
    vote_closed = next(n for n in closed.notices if n.event is Event.VOTE_CLOSED)
    assert "role:resident_representative" in vote_closed.audience
    assert "role:committee" in vote_closed.audience
    owners = _world(major_decided_by="owners_meeting")
    other = _ready(owners)
    step = owners.step(_call(owners, other, Body.OWNERS_MEETING, owners=_register(*["10"] * 5)), "wang")
    assert set(OWNER_IDS) <= set(step.notices[-1].audience)  # each owner in the register, by name
    everyone = _world(major_decided_by="residents_meeting")
    third = _ready(everyone)
    meeting = everyone.step(_call(everyone, third, Body.RESIDENTS_MEETING), "wang")
    assert {"role:resident", "role:resident_representative", "public:taoyuan"} <= set(meeting.notices[-1].audience)


def test_by_default_a_major_matter_is_decided_by_the_residents_representatives() -> None:
    assert cf.six_step().parameters.major_decided_by is Body.REPRESENTATIVES_MEETING
    assert cf.six_step().parameters.decided_by is Body.COMMITTEE
    w = _world()
    major = _ready(w)
    refusal = w.engine.explain(w.decide_command(), by="wang")
    assert refusal is not None
    assert (refusal.code, refusal.data["body"]) == ("decided_by_body", "representatives_meeting")
    assert w.decide().state is State.DECIDED  # the driver puts it to the representatives' vote
    assert w.get(major).current_decision is not None
    assert w.get(major).votes[-1].body is Body.REPRESENTATIVES_MEETING
    minor = _ready(w, major=False)
    assert w.engine.explain(w.decide_command(cid=minor), by="wang") is None  # the committee's own
