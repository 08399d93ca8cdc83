"""提议 propose: a matter from the community's catalogue is put forward; the committee may reject
it (不予受理) and the proposer or the committee may withdraw it before any decision.

The proposal makes the case file: the first record and the first entry of its log.
"""

from __future__ import annotations

from typing import ClassVar

from ..commands import Command, ConsultationCommand, Reason
from ..context import Context
from ..errors import InvalidInput
from ..notices import INVITED, PROPOSER, role_group
from ..parameters import Parameters
from ..records import SCHEMA_VERSION, Consultation, Id, Money, Text, Title, Topic
from ..refusals import Failure
from ..roles import STAKEHOLDERS, Role, valid_id
from ..vocabulary import Carrier, Ending, Event, Form, State, Trigger
from .base import NEW, Effect, Governing, Guard, StepDefinition, transition
from .consult import abandon_open_round
from .vote import abandon_open_vote

__all__ = ["PROPOSERS", "STEP", "Propose", "Reject", "Withdraw"]

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


class Reject(ConsultationCommand):
    """The committee declines a proposal, with a reason the proposer can read."""

    trigger: ClassVar[Trigger] = Trigger.REJECT
    reason: Reason


class Withdraw(ConsultationCommand):
    """The proposer (or the committee) withdraws the matter before any decision."""

    trigger: ClassVar[Trigger] = Trigger.WITHDRAW
    reason: Reason


def _topic_in_catalogue(params: Parameters, record: None, cmd: Propose, ctx: Context) -> Failure | None:
    cat = ctx.catalogue
    if cat.find(cmd.community, cmd.topic) is not None:
        return None
    if not cat.has_community(cmd.community):
        return Failure(
            "unknown_community",
            {
                "community": cmd.community,
                "community_name_en": cat.community_name(cmd.community, "en"),
                "community_name_zh": cat.community_name(cmd.community, "zh"),
            },
        )
    return Failure(
        "unknown_topic",
        {
            "topic": cmd.topic,
            "community": cmd.community,
            "item": cat.item_name(cmd.community, cmd.topic),
            "category_name_en": cat.category_name(cmd.topic, "en"),
            "category_name_zh": cat.category_name(cmd.topic, "zh"),
            "community_name_en": cat.community_name(cmd.community, "en"),
            "community_name_zh": cat.community_name(cmd.community, "zh"),
        },
    )


def _budget_within_cap(params: Parameters, record: None, cmd: Propose, ctx: Context) -> Failure | None:
    if cmd.budget is None:
        return None
    cap = params.budget_cap
    if cap is not None and cmd.budget > cap:
        return Failure("over_budget_cap", {"budget": cmd.budget, "cap": cap})
    # 微幸福: a matter asking more than the community's whole fund for the year cannot be paid from it
    year = params.fund_year(ctx.now)
    pool = params.pool_for(year)
    if pool is not None and cmd.budget > pool:
        return Failure("over_fund_pool", {"budget": cmd.budget, "pool": pool, "year": year})
    return None


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
    respond_by = now + proc.parameters.proposal_deadline
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
        "state": State.PROPOSED,
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
    }
    return record, [(Event.PROPOSED, data)]


def _reject(proc: Governing, rec: Consultation, cmd: Reject, ctx: Context, role: str, to: State) -> Effect:
    return {"ended_at": ctx.now, "ending": Ending.REJECTED}, [(Event.REJECTED, {"reason": cmd.reason})]


def _withdraw(proc: Governing, rec: Consultation, cmd: Withdraw, ctx: Context, role: str, to: State) -> Effect:
    update, events = abandon_open_round(proc.parameters, rec, ctx, "withdrawn")
    vote_update, vote_events = abandon_open_vote(proc.parameters, rec, ctx)
    update.update(vote_update)
    events.extend(vote_events)
    events.append((Event.WITHDRAWN, {"reason": cmd.reason}))
    update["ended_at"], update["ending"] = ctx.now, Ending.WITHDRAWN
    return update, events


STEP = StepDefinition(
    name="propose 提议",
    commands=(Propose, Reject, Withdraw),
    transitions=(
        transition(Trigger.PROPOSE, NEW, State.PROPOSED, PROPOSERS, ["topic_in_catalogue", "budget_within_cap"]),
        transition(Trigger.REJECT, State.PROPOSED, State.REJECTED, [Role.COMMITTEE]),
        *(
            transition(Trigger.WITHDRAW, s, State.WITHDRAWN, [Role.PROPOSER, Role.COMMITTEE])
            for s in (State.PROPOSED, State.NOTIFIED, State.CONSULTING)
        ),
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
            "budget_within_cap",
            _budget_within_cap,
            ("over_budget_cap", "over_fund_pool"),
            "the budget is within the procedure's cap for a matter, if any, and the community's fund for the year",
            needs_command=True,
        ),
    ),
    effects={Trigger.PROPOSE: _propose, Trigger.REJECT: _reject, Trigger.WITHDRAW: _withdraw},
    audience={Event.REJECTED: (PROPOSER,), Event.WITHDRAWN: (INVITED, role_group(Role.COMMITTEE))},
)
