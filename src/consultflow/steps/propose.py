"""提议 propose: a matter from the community's catalogue is put forward; the committee may reject
it (不予受理) and the proposer or the committee may withdraw it before any decision.

A proposal may first be saved as a draft (``Propose(draft=True)``, 草稿) that its proposer edits,
gathers co-signers for and submits (``steps/intake.py``). A rejection may be appealed within
``Parameters.appeal_period`` (申请复核): it is then ``appealable`` until the sub-district reconsiders
it or the period runs out, and final (``rejected``) after.

The proposal makes the case file: the first record and the first entry of its log.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from ..canonical import timestamp
from ..commands import Command, ConsultationCommand, Reason
from ..context import Context
from ..errors import InvalidInput
from ..notices import INVITED, PROPOSER, role_group
from ..parameters import Parameters
from ..records import SCHEMA_VERSION, Consultation, Id, Money, Rejection, Text, Title, Topic
from ..refusals import Failure
from ..roles import STAKEHOLDERS, Role, valid_id
from ..vocabulary import Carrier, Ending, Event, Form, State, Trigger
from .base import NEW, Effect, Governing, Guard, Route, StepDefinition, transition
from .consult import abandon_open_round
from .vote import abandon_open_vote

__all__ = ["PROPOSERS", "STEP", "Propose", "Reject", "Withdraw", "topic_known"]

#: Who may put a matter forward: the committees, the council, deputies and every stakeholder.
PROPOSERS = frozenset({Role.COMMITTEE, Role.WORKING_COMMITTEE, Role.COUNCIL_MEMBER, Role.DEPUTY}) | STAKEHOLDERS


class Propose(Command):
    """提议: put a matter from the community's catalogue forward for consultation."""

    trigger: ClassVar[Trigger] = Trigger.PROPOSE
    community: Id
    topic: Topic
    title: Title
    description: Text = ""
    carrier: Carrier
    form: Form
    major: bool = False
    budget: Money | None = None
    id: Id | None = None  # the engine assigns one when absent
    #: save it as a draft (草稿) that only its proposer edits and submits (``Submit``); the committee's
    #: time to answer starts at submission
    draft: bool = False

    def named_topics(self, record: Consultation | None) -> tuple[str, ...]:
        return (self.topic,)


class Reject(ConsultationCommand):
    """The committee declines a proposal, with a reason the proposer can read."""

    trigger: ClassVar[Trigger] = Trigger.REJECT
    reason: Reason


class Withdraw(ConsultationCommand):
    """The proposer (or the committee) withdraws the matter before any decision."""

    trigger: ClassVar[Trigger] = Trigger.WITHDRAW
    reason: Reason


def topic_known(community: str, topic: str, ctx: Context) -> Failure | None:
    """``topic`` is an item of the community's catalogue - listed, a category's "other" item (其他),
    or one an earlier step of the community added (``Context.added_items``) - or why not."""
    cat = ctx.catalogue
    if cat.find(community, topic) is not None:
        return None
    for item in ctx.added_items:
        if item.community == community and item.topic == topic:
            return None
    if not cat.has_community(community):
        return Failure(
            "unknown_community",
            {
                "community": community,
                "community_name_en": cat.community_name(community, "en"),
                "community_name_zh": cat.community_name(community, "zh"),
            },
        )
    return Failure(
        "unknown_topic",
        {
            "topic": topic,
            "community": community,
            "item": cat.item_name(community, topic),
            "category_name_en": cat.category_name(topic, "en"),
            "category_name_zh": cat.category_name(topic, "zh"),
            "community_name_en": cat.community_name(community, "en"),
            "community_name_zh": cat.community_name(community, "zh"),
        },
    )


def _topic_in_catalogue(params: Parameters, record: None, cmd: Propose, ctx: Context) -> Failure | None:
    return topic_known(cmd.community, cmd.topic, ctx)


def _topics_in_catalogue(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    """The topics a command puts the matter under (``Command.named_topics``: a submitted draft's, an
    edit's new one) are items of the community's catalogue."""
    for topic in cmd.named_topics(record):
        if topic != record.topic or record.state is State.DRAFT:
            found = topic_known(record.community, topic, ctx)
            if found is not None:
                return found
    return None


def _as_draft(params: Parameters, record: None, cmd: Propose, ctx: Context) -> bool:
    return cmd.draft


def _appeal_open(params: Parameters, record: Consultation, cmd: Reject, ctx: Context) -> bool:
    """A rejection may be appealed (申请复核): the procedure allows it, and the matter has not been
    appealed before (one appeal per matter: this bounds the loop proposed -> appealed -> proposed)."""
    return params.appeal_period is not None and all(r.appealed_at is None for r in record.rejections)


def budget_problem(params: Parameters, budget: Decimal | None, now: datetime) -> Failure | None:
    """Whether a matter's budget can be asked for at all: within the procedure's cap on one matter,
    if any, and not more than the community's whole fund for the year (微幸福), from which it would be
    paid. A proposal and an edit of its budget are held to the same test."""
    if budget is None:
        return None
    cap = params.budget_cap
    if cap is not None and budget > cap:
        return Failure("over_budget_cap", {"budget": budget, "cap": cap})
    year = params.fund_year(now)
    pool = params.pool_for(year)
    if pool is not None and budget > pool:
        return Failure("over_fund_pool", {"budget": budget, "pool": pool, "year": year})
    return None


def _budget_within_cap(params: Parameters, record: None, cmd: Propose, ctx: Context) -> Failure | None:
    return budget_problem(params, cmd.budget, ctx.now)


def _edit_budget_within_cap(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    """An edit's new budget (``EditProposal`` in steps/intake.py) is held to the proposal's test."""
    budget: Decimal | None = getattr(cmd, "budget", None)
    return budget_problem(params, budget, ctx.now)


def _propose(proc: Governing, rec: None, cmd: Propose, ctx: Context, role: str, to: State) -> Effect:
    """The new case file: every field of the record (the core builds it) and the ``proposed`` event."""
    cid = cmd.id or ctx.new_id
    if not cid or (cmd.id is None and not valid_id(cid)):
        raise InvalidInput(
            f"a new consultation needs an id of 1 to 128 characters without spaces, quotes or backslashes: "
            f"got {cid!r}; "
            "set Propose.id or give the engine an id factory that makes such ids"
        )
    now = ctx.now
    draft = to is State.DRAFT
    respond_by = None if draft else now + proc.parameters.proposal_deadline
    data = {  # keys in sorted order: see base.Events
        "budget": None if cmd.budget is None else str(cmd.budget),
        "carrier": cmd.carrier.value,
        "community": cmd.community,
        "form": cmd.form.value,
        "major": cmd.major,
        "procedure": proc.name,
        "procedure_version": proc.version,
        "title": cmd.title,
        "topic": cmd.topic,
    }
    record = {
        "schema_version": SCHEMA_VERSION,
        "id": cid,
        "community": cmd.community,
        "topic": cmd.topic,
        "title": cmd.title,
        "description": cmd.description,
        "proposer": ctx.actor.id,
        "form": cmd.form,
        "carrier": cmd.carrier,
        "major": cmd.major,
        "budget": cmd.budget,
        "state": to,
        "version": 0,
        "head": "",
        "procedure": proc.name,
        "procedure_version": proc.version,
        "cycle": 1,
        "proposed_at": now,
        "respond_by": respond_by,
        "schedule": None,
        "decision_due": None,
        "review_due": None,
        "invited": (),
        "invitation_notice_ends": None,
        "chair": None,
        "rounds": (),
        "meetings": (),
        "decisions": (),
        "votes": (),
        "reviews": (),
        "publications": (),
        "progress": (),
        "feedback": (),
        "inspections": (),
        "missed": (),
        "allocations": (),
        "next_due": respond_by,
        "ended_at": None,
        "ending": None,
        "pledges": (),  # 承诺制
        "co_signers": (),
        "rejections": (),
        "added_topic": None,
    }
    return record, [(Event.DRAFTED if draft else Event.PROPOSED, data)]


def _reject(proc: Governing, rec: Consultation, cmd: Reject, ctx: Context, role: str, to: State) -> Effect:
    now = ctx.now
    period = proc.parameters.appeal_period
    if to is State.APPEALABLE and period is not None:  # 不予受理, open to appeal (申请复核) until appeal_by
        appeal_by = now + period
        rejection = Rejection(at=now, by=ctx.actor.id, reason=cmd.reason, appeal_by=appeal_by)
        data = {"appeal_by": timestamp(appeal_by), "reason": cmd.reason}
        return {"respond_by": appeal_by, "rejections": (*rec.rejections, rejection)}, [(Event.REJECTED, data)]
    rejection = Rejection(at=now, by=ctx.actor.id, reason=cmd.reason)
    update = {"ended_at": now, "ending": Ending.REJECTED, "rejections": (*rec.rejections, rejection)}
    return update, [(Event.REJECTED, {"reason": cmd.reason})]


def _withdraw(proc: Governing, rec: Consultation, cmd: Withdraw, ctx: Context, role: str, to: State) -> Effect:
    update, events = abandon_open_round(proc.parameters, rec, ctx, "withdrawn")
    vote_update, vote_events = abandon_open_vote(proc.parameters, rec, ctx)
    update.update(vote_update)
    events.extend(vote_events)
    events.append((Event.DRAFT_DISCARDED if rec.state is State.DRAFT else Event.WITHDRAWN, {"reason": cmd.reason}))
    update["ended_at"], update["ending"] = ctx.now, Ending.WITHDRAWN
    return update, events


STEP = StepDefinition(
    name="propose 提议",
    commands=(Propose, Reject, Withdraw),
    transitions=(
        transition(
            Trigger.PROPOSE, NEW, State.DRAFT, PROPOSERS, ["topic_in_catalogue", "budget_within_cap"], ["as_draft"]
        ),
        transition(
            Trigger.PROPOSE,
            NEW,
            State.PROPOSED,
            PROPOSERS,
            ["topic_in_catalogue", "budget_within_cap", "enough_co_signers"],
        ),
        transition(Trigger.REJECT, State.PROPOSED, State.APPEALABLE, [Role.COMMITTEE], routes=["appeal_open"]),
        transition(Trigger.REJECT, State.PROPOSED, State.REJECTED, [Role.COMMITTEE]),
        *(
            transition(Trigger.WITHDRAW, s, State.WITHDRAWN, [Role.PROPOSER, Role.COMMITTEE])
            for s in (State.PROPOSED, State.NOTIFIED, State.CONSULTING)
        ),
        transition(Trigger.WITHDRAW, State.DRAFT, State.WITHDRAWN, [Role.PROPOSER]),  # a draft is discarded
    ),
    guards=(
        Guard(
            "topic_in_catalogue",
            _topic_in_catalogue,
            ("unknown_community", "unknown_topic"),
            "the topic is an item of the community's catalogue",
            needs_command=True,
        ),
        Guard(
            "topics_in_catalogue",
            _topics_in_catalogue,
            ("unknown_community", "unknown_topic"),
            "the topic a draft is submitted under, or an edit names, is an item of the community's catalogue",
            needs_command=True,
        ),
        Guard(
            "budget_within_cap",
            _budget_within_cap,
            ("over_budget_cap", "over_fund_pool"),
            "the budget is within the procedure's cap for a matter, if any, and the community's fund for the year",
            needs_command=True,
        ),
        Guard(
            "edit_budget_within_cap",
            _edit_budget_within_cap,
            ("over_budget_cap", "over_fund_pool"),
            "an edited budget (edit_proposal) is held to the proposal's test: the cap, if any, and the year's fund",
            needs_command=True,
        ),
    ),
    routes=(
        Route("as_draft", _as_draft, "the proposer saves it as a draft (草稿)", needs_command=True),
        Route(
            "appeal_open",
            _appeal_open,
            "the rejection may be appealed (申请复核): once a matter, within the appeal period",
            bounds_loop=True,
        ),
    ),
    effects={Trigger.PROPOSE: _propose, Trigger.REJECT: _reject, Trigger.WITHDRAW: _withdraw},
    audience={Event.REJECTED: (PROPOSER,), Event.WITHDRAWN: (INVITED, role_group(Role.COMMITTEE))},
)
