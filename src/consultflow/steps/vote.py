"""表决 vote: a body decides (精准化 "赋予居民参与权、决策权").

Where the parameters give a matter to a body (``Parameters.decided_by``, ``major_decided_by``) - the
residents' meeting (居民会议), the residents' representatives' meeting (居民代表会议), the
consultation council (社区协商议事会) or the owners' meeting (业主大会) - the committee does not
decide it (``Decide`` is refused, ``decided_by_body``): it puts the decision to the body's vote
after a closed round with quorum and consensus, as ``Decide`` would need. Members cast one ballot
each, themselves or through a clerk (代为记录); owners with the floor area the register gives them. Closing the vote
counts it by the body's ``VoteRule``: carried, the body has decided (and the legality review
follows); lost, the matter stays in consultation, the vote on record. The committee may also put a
matter it could decide itself to a body's vote.

Members of a body are who the directory says (``roles.BODY_MEMBERS``): residents and resident
representatives (居民会议), resident representatives (居民代表会议), council members (协商议事会),
owners (业主大会). The engine counts them in the directory when the vote is called, so a vote is
counted against the directory's figure; a caller may state ``members`` too, and a figure that
differs is refused. Only where the directory cannot list its members (a ``TrustCallerRoles``
directory without a listing one behind it) is the stated figure taken, and the log says so. For
owners, the property register (业主名册) with each owner's floor area comes with ``CallVote``: every
owner in it must be an owner in the directory, and it must list them all. The figures are logged.

A decision a body carries takes effect when the vote closes: if a measure's due date has passed
by then, the vote *lapses* (counted and on record, but it decides nothing) and the committee may
put the decision, with new dates, to a new vote on the same round.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..commands import Command, ConsultationCommand
from ..context import Context
from ..notices import INVITED, PROPOSER, VOTERS, role_group
from ..parameters import CLERK_ROLES, Parameters, VoteRule
from ..records import CastBallot, Consultation, OwnerShare, PersonId, Vote, VoteTally, evolve, make
from ..refusals import Failure
from ..roles import BODY_MEMBERS, Role
from ..vocabulary import Ballot, Body, Event, State, Trigger
from .base import Effect, Governing, Guard, Route, StepDefinition, transition
from .decide import DECISION_GUARDS, DecisionContent, correcting_on_round, take_decision

__all__ = [
    "BODY_MEMBERS",
    "STEP",
    "CallVote",
    "CastVote",
    "CloseVote",
    "abandon_open_vote",
    "close_open_vote",
    "count_vote",
]

#: Who may act on a ballot: the members of any body, and the roles a clerk may hold (the
#: ``clerk_on_behalf`` and ``body_member`` guards then decide).
_BALLOT_ROLES = frozenset().union(*BODY_MEMBERS.values()) | CLERK_ROLES


# ---- commands ----------------------------------------------------------------------------------------
class CallVote(DecisionContent):
    """Put a decision to a body's vote (提交表决). It holds what ``Decide`` would (checked the same
    way, by carrier) and the register's figures: ``members``, how many the body has (leave it out
    and the engine counts them in its directory; given, it must agree); for an owners' meeting,
    ``owners``, each owner's floor area from the property register (业主名册): an owner's ballot
    counts with the area the register gives, never one the voter states."""

    trigger: ClassVar[Trigger] = Trigger.CALL_VOTE
    body: Body
    members: int | None = Field(default=None, ge=1, le=1_000_000)
    owners: tuple[OwnerShare, ...] = Field(default=(), max_length=100_000)

    def counted_roles(self) -> frozenset[Role] | None:
        return BODY_MEMBERS.get(self.body)

    @model_validator(mode="after")
    def _body_and_area(self) -> CallVote:
        if self.body is Body.COMMITTEE:
            raise PydanticCustomError("committee_does_not_vote", "the committee decides with Decide, not by a vote")
        if self.body is Body.OWNERS_MEETING:
            owners = [s.owner for s in self.owners]
            if not owners or any(s.area <= 0 for s in self.owners):
                raise PydanticCustomError(
                    "register_required", "an owners' meeting needs the property register: each owner's floor area"
                )
            if len(set(owners)) != len(owners):
                raise PydanticCustomError("register_duplicate", "the register lists an owner twice")
            if self.members is not None and self.members != len(owners):
                raise PydanticCustomError("register_members", "members is the number of owners in the register")
        elif self.owners:
            raise PydanticCustomError("register_only_for_owners", "only an owners' meeting votes by the register")
        if len(set(self.agreement_parties)) != len(self.agreement_parties):
            raise PydanticCustomError("parties_duplicate", "agreement_parties lists a party twice")
        return self


class CastVote(ConsultationCommand):
    """A member's ballot (投票): their own, or recorded by a clerk for the member named by
    ``on_behalf_of`` (代为记录). An owner's ballot counts with the area the register gives them."""

    trigger: ClassVar[Trigger] = Trigger.CAST_VOTE
    ballot: Ballot
    on_behalf_of: PersonId | None = None

    def named_people(self) -> tuple[str, ...]:
        return () if self.on_behalf_of is None else (self.on_behalf_of,)


class CloseVote(ConsultationCommand):
    """Close the vote and count it by the body's rule: carried, the body has decided; lost, the
    matter stays in consultation."""

    trigger: ClassVar[Trigger] = Trigger.CLOSE_VOTE

    def funds_drawn(self, record: Consultation) -> Decimal:
        """The open vote's measures' budget: what a carried vote takes from the fund (微幸福)."""
        v = _open_vote(record)
        return Decimal(0) if v is None else sum((m.budget for m in v.measures), Decimal(0))


# ---- the count ---------------------------------------------------------------------------------------
def _reaches(part: int | Decimal, whole: int | Decimal, quorum: str) -> bool:
    if quorum == "more_than_half":
        return 2 * part > whole
    if quorum == "two_thirds":
        return 3 * part >= 2 * whole
    return True


def count_vote(rule: VoteRule, vote: Vote) -> VoteTally:
    """Count a vote by its body's rule: participation against the quorum (by number, and for an
    owners' meeting by floor area too), then the ballots against the majority."""
    yes = no = abstain = 0
    area = {Ballot.FOR: Decimal(0), Ballot.AGAINST: Decimal(0), Ballot.ABSTAIN: Decimal(0)}
    for b in vote.ballots:
        if b.ballot is Ballot.FOR:
            yes += 1
        elif b.ballot is Ballot.AGAINST:
            no += 1
        else:
            abstain += 1
        area[b.ballot] += b.area or Decimal(0)
    participated = yes + no + abstain
    owners = vote.body is Body.OWNERS_MEETING
    area_total = vote.area_total if owners else None
    area_in = sum(area.values(), Decimal(0))
    quorum_met = _reaches(participated, vote.members, rule.quorum)
    if owners and area_total is not None:
        quorum_met = quorum_met and _reaches(area_in, area_total, rule.quorum)
    counted = yes + no + (abstain if rule.abstentions == "counted" else 0)
    area_counted = (
        area[Ballot.FOR] + area[Ballot.AGAINST] + (area[Ballot.ABSTAIN] if rule.abstentions == "counted" else 0)
    )
    carried = (yes > 0 and 3 * yes >= 2 * counted) if rule.majority == "two_thirds" else 2 * yes > counted
    if rule.majority == "double_majority":
        carried = carried and 2 * area[Ballot.FOR] > area_counted
    return make(
        VoteTally,
        {
            "members": vote.members,
            "participated": participated,
            "yes": yes,
            "no": no,
            "abstain": abstain,
            "area_total": area_total,
            "area_participated": area_in if owners else None,
            "area_yes": area[Ballot.FOR] if owners else None,
            "area_no": area[Ballot.AGAINST] if owners else None,
            "area_abstain": area[Ballot.ABSTAIN] if owners else None,
            "majority": rule.majority,
            "quorum": rule.quorum,
            "abstentions": rule.abstentions,
            "quorum_met": quorum_met,
            "carried": quorum_met and carried,
        },
    )


# ---- guards and routes -------------------------------------------------------------------------------
def _open_vote(record: Consultation) -> Vote | None:
    v = record.current_vote
    return v if v is not None and v.is_open and v.cycle == record.cycle else None


def _body_may_decide(params: Parameters, record: Consultation, cmd: CallVote, ctx: Context) -> Failure | None:
    body = params.body_for(record.major)
    if body is not Body.COMMITTEE and cmd.body is not body:
        return Failure("wrong_body", {"body": body.value, "called": cmd.body.value, "major": record.major})
    return None


def _stated_members(cmd: CallVote) -> int | None:
    return len(cmd.owners) if cmd.owners else cmd.members


def _register_agrees(params: Parameters, record: Consultation, cmd: CallVote, ctx: Context) -> Failure | None:
    counted = ctx.register
    stated = _stated_members(cmd)
    body = cmd.body.value
    if counted is None:
        return Failure("members_unknown", {"body": body}) if stated is None else None
    if not counted:
        return Failure("body_has_no_members", {"body": body})
    if stated is not None and stated != len(counted):
        return Failure("members_mismatch", {"body": body, "stated": stated, "counted": len(counted)})
    if cmd.owners:
        listed = set(counted)
        stray = next((s.owner for s in cmd.owners if s.owner not in listed), None)
        if stray is not None:
            return Failure("not_an_owner", {"person": stray})
    return None


def _vote_fresh(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    v = record.current_vote
    if v is None or v.cycle != record.cycle:
        return None
    if v.is_open:
        return Failure("vote_open", {"vote": v.number})
    r = record.current_round
    if r is not None and v.round >= r.number and not v.lapsed and not correcting_on_round(params, record, r.number):
        return Failure("round_voted", {"round": r.number, "vote": v.number})
    return None


def _no_vote_open(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    v = _open_vote(record)
    if v is not None:
        return Failure("vote_open", {"vote": v.number})
    return None


def _vote_is_open(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if _open_vote(record) is None:
        return Failure("no_open_vote")
    return None


def _voter(cmd: CastVote | None, ctx: Context) -> str:
    behalf: str | None = getattr(cmd, "on_behalf_of", None)
    return behalf if behalf is not None else ctx.actor.id


def _clerk_asking(params: Parameters, cmd: CastVote | None, ctx: Context) -> bool:
    """Asked without a command (``Engine.allowed``), a clerk may record ballots for members."""
    return cmd is None and not params.clerk_roles.isdisjoint(ctx.actor.roles)


def _body_member(params: Parameters, record: Consultation, cmd: CastVote, ctx: Context) -> Failure | None:
    v = _open_vote(record)
    if v is None or _clerk_asking(params, cmd, ctx):
        return None
    voter = _voter(cmd, ctx)
    if BODY_MEMBERS[v.body].isdisjoint(ctx.roles_of(voter)):
        return Failure("not_a_member", {"person": voter, "body": v.body.value})
    return None


def _first_ballot(params: Parameters, record: Consultation, cmd: CastVote, ctx: Context) -> Failure | None:
    v = _open_vote(record)
    if v is None or _clerk_asking(params, cmd, ctx):
        return None
    voter = _voter(cmd, ctx)
    if any(b.voter == voter for b in v.ballots):
        return Failure("already_voted", {"person": voter, "vote": v.number})
    if len(v.ballots) >= v.members:  # the register counted fewer members than vote: it is wrong
        return Failure("vote_full", {"members": v.members, "vote": v.number})
    return None


def _share(vote: Vote, voter: str) -> Decimal | None:
    return next((s.area for s in vote.owners if s.owner == voter), None)


def _in_register(params: Parameters, record: Consultation, cmd: CastVote, ctx: Context) -> Failure | None:
    v = _open_vote(record)
    if v is None or v.body is not Body.OWNERS_MEETING or _clerk_asking(params, cmd, ctx):
        return None
    voter = _voter(cmd, ctx)
    if _share(v, voter) is None:
        return Failure("not_in_register", {"person": voter, "vote": v.number})
    return None


def _lapses(vote: Vote, now: datetime) -> tuple[int, ...]:
    """The measures (numbered from 1) whose due date has passed by ``now``: a decision taken now
    could not be carried out as voted."""
    return tuple(i for i, m in enumerate(vote.measures, 1) if m.due <= now)


def _carried(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> bool:
    v = _open_vote(record)
    return v is not None and count_vote(params.voting[v.body], v).carried and not _lapses(v, ctx.now)


# ---- effects -------------------------------------------------------------------------------------------
def _area(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _call_vote(proc: Governing, rec: Consultation, cmd: CallVote, ctx: Context, role: str, to: State) -> Effect:
    number = len(rec.votes) + 1
    r = rec.rounds[-1]
    members = _stated_members(cmd) if ctx.register is None else len(ctx.register)
    vote = make(
        Vote,
        {
            "number": number,
            "cycle": rec.cycle,
            "round": r.number,
            "body": cmd.body,
            "called_by": ctx.actor.id,
            "called_at": ctx.now,
            "members": members,
            "area_total": sum((s.area for s in cmd.owners), Decimal(0)) if cmd.owners else None,
            "owners": cmd.owners,
            "resolution": cmd.resolution,
            "measures": cmd.measures,
            "advice_adopted": cmd.advice_adopted,
            "hearing_record": cmd.hearing_record,
            "agreement_parties": cmd.agreement_parties,
            "ballots": (),
            "closed_at": None,
            "tally": None,
            "lapsed": False,
        },
    )
    rule = proc.parameters.voting[cmd.body]
    data = {
        "abstentions": rule.abstentions,
        "area": _area(vote.area_total),
        "body": cmd.body.value,
        "majority": rule.majority,
        "members": members,
        "owners": [{"area": str(s.area), "owner": s.owner} for s in cmd.owners],
        "quorum": rule.quorum,
        "register": "stated" if ctx.register is None else "directory",
        "resolution": cmd.resolution,
        "round": r.number,
        "vote": number,
    }
    return {"votes": (*rec.votes, vote)}, [(Event.VOTE_CALLED, data)]


def _cast_vote(proc: Governing, rec: Consultation, cmd: CastVote, ctx: Context, role: str, to: State) -> Effect:
    v = rec.votes[-1]
    voter = _voter(cmd, ctx)
    area = _share(v, voter)
    ballot = make(
        CastBallot,
        {
            "voter": voter,
            "ballot": cmd.ballot,
            "area": area,
            "at": ctx.now,
            "recorded_by": None if cmd.on_behalf_of is None else ctx.actor.id,
        },
    )
    data: dict[str, Any] = {"area": _area(area), "ballot": cmd.ballot.value, "vote": v.number, "voter": voter}
    if cmd.on_behalf_of is not None:  # keys in sorted order: see base.Events
        data = dict(sorted({**data, "on_behalf_of": cmd.on_behalf_of}.items()))
    return {"votes": (*rec.votes[:-1], evolve(v, {"ballots": (*v.ballots, ballot)}))}, [(Event.VOTE_CAST, data)]


def close_open_vote(params: Parameters, rec: Consultation, ctx: Context, abandoned: bool) -> Effect:
    """Close the open vote: count it, stamp it, log ``vote_closed`` with the figures."""
    v = rec.votes[-1]
    t = count_vote(params.voting[v.body], v)
    lapsed = _lapses(v, ctx.now) if t.carried and not abandoned else ()
    closed = evolve(v, {"closed_at": ctx.now, "tally": t, "lapsed": bool(lapsed)})
    data: dict[str, Any] = {
        "abandoned": abandoned,
        "abstain": t.abstain,
        "abstentions": t.abstentions,
        "area_abstain": _area(t.area_abstain),
        "area_no": _area(t.area_no),
        "area_participated": _area(t.area_participated),
        "area_total": _area(t.area_total),
        "area_yes": _area(t.area_yes),
        "body": v.body.value,
        "carried": t.carried,
        "majority": t.majority,
        "members": t.members,
        "no": t.no,
        "participated": t.participated,
        "quorum": t.quorum,
        "quorum_met": t.quorum_met,
        "vote": v.number,
        "yes": t.yes,
    }
    if lapsed:  # keys in sorted order: see base.Events
        data = dict(sorted({**data, "lapsed": list(lapsed)}.items()))
    return {"votes": (*rec.votes[:-1], closed)}, [(Event.VOTE_CLOSED, data)]


def abandon_open_vote(params: Parameters, rec: Consultation, ctx: Context) -> Effect:
    """Close a vote left open when the matter leaves consultation (escalated or withdrawn): counted
    and on record, but it takes no decision, and the case file keeps no vote nobody can close."""
    if _open_vote(rec) is None:
        return {}, []
    return close_open_vote(params, rec, ctx, abandoned=True)


def _close_vote(proc: Governing, rec: Consultation, cmd: CloseVote, ctx: Context, role: str, to: State) -> Effect:
    v = rec.votes[-1]
    update, events = close_open_vote(proc.parameters, rec, ctx, abandoned=False)
    if to in (State.DECIDED, State.FEEDBACK):
        more, decided = take_decision(proc, rec, v, ctx, round_number=v.round, body=v.body, vote=v.number)
        update.update(more)
        events.extend(decided)
    return update, events


STEP = StepDefinition(
    name="vote 表决",
    commands=(CallVote, CastVote, CloseVote),
    transitions=(
        transition(
            Trigger.CALL_VOTE,
            State.CONSULTING,
            None,
            [Role.COMMITTEE],
            ["body_may_decide", "register_agrees", "vote_fresh", "corrections_left", *DECISION_GUARDS, "fund_left"],
        ),
        transition(
            Trigger.CAST_VOTE,
            State.CONSULTING,
            None,
            _BALLOT_ROLES,
            ["vote_is_open", "clerk_on_behalf", "body_member", "first_ballot", "in_register"],
        ),
        # carried: the body has decided; the decision takes effect at once where the parameters exempt
        # the matter from review, else it waits for the review (within the correction limit)
        transition(
            Trigger.CLOSE_VOTE,
            State.CONSULTING,
            State.FEEDBACK,
            [Role.COMMITTEE],
            ["vote_is_open", "fund_left"],
            ["carried", "review_exempt"],
        ),
        transition(
            Trigger.CLOSE_VOTE,
            State.CONSULTING,
            State.DECIDED,
            [Role.COMMITTEE],
            ["vote_is_open", "corrections_left"],
            ["carried"],
        ),
        transition(Trigger.CLOSE_VOTE, State.CONSULTING, None, [Role.COMMITTEE], ["vote_is_open"]),
    ),
    guards=(
        Guard(
            "body_may_decide",
            _body_may_decide,
            ("wrong_body",),
            "the vote is of the body the parameters give the matter to, if they give it to one",
            needs_command=True,
        ),
        Guard(
            "register_agrees",
            _register_agrees,
            ("members_unknown", "body_has_no_members", "members_mismatch", "not_an_owner"),
            "the body's members are counted in the directory (or stated where it cannot list them), "
            "and the owners' register lists owners",
            needs_command=True,
        ),
        Guard(
            "vote_fresh",
            _vote_fresh,
            ("vote_open", "round_voted"),
            "no vote is open, none on this round yet (unless the last one lapsed)",
        ),
        Guard("no_vote_open", _no_vote_open, ("vote_open",), "no vote is open (a round waits for the vote)"),
        Guard("vote_is_open", _vote_is_open, ("no_open_vote",), "a vote is open"),
        Guard("body_member", _body_member, ("not_a_member",), "the voter is a member of the voting body"),
        Guard(
            "first_ballot",
            _first_ballot,
            ("already_voted", "vote_full"),
            "one ballot per member a vote, and no more ballots than the register's members",
        ),
        Guard(
            "in_register",
            _in_register,
            ("not_in_register",),
            "an owners' meeting: the voter is in the property register the vote was called with",
        ),
    ),
    routes=(
        Route(
            "carried",
            _carried,
            "the vote is carried by its body's rule, and no measure's due date has passed (else it lapses)",
        ),
    ),
    effects={Trigger.CALL_VOTE: _call_vote, Trigger.CAST_VOTE: _cast_vote, Trigger.CLOSE_VOTE: _close_vote},
    audience={
        Event.VOTE_CALLED: (VOTERS, INVITED, PROPOSER),
        Event.VOTE_CLOSED: (VOTERS, INVITED, PROPOSER, role_group(Role.COMMITTEE)),
    },
)
