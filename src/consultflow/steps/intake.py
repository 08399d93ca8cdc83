"""提议 intake: what happens to a proposal before its notice (告知) - drafts (草稿), edits, co-signers
(联名), a matter off the catalogue made a new second-level item (列入二级目录), and the appeal of a
rejection (申请复核) that the sub-district reconsiders.

- A draft (``Propose(draft=True)``) is its proposer's: nobody is notified of it, only the proposer
  edits, submits (``Submit``) or discards it (``Withdraw``); residents the proposer asks co-sign it.
  The committee's time to answer (``Parameters.proposal_deadline``) starts at submission.
- ``EditProposal`` changes title, description, topic, budget, major, carrier or form while the matter
  is a draft (the proposer) or proposed (the proposer or the committee, who may correct a proposal
  it takes up): each edit is logged with every changed field's old and new value. After notice the
  residents were told what the matter is, and it no longer changes.
- ``CoSign``: a resident of the community (in the directory) co-signs once; not the proposer.
  ``Parameters.proposal_co_signers`` may require co-signers before a proposal is submitted.
- ``AddTopic``: a proposal filed under a category's "other" item (``<category>/other``, 其他) is made a
  new second-level item of its community by the committee; the record keeps the addition
  (``Consultation.added_topic``), and the engine accepts that item for new proposals of the
  community from then on, handing it to the core in ``Context.added_items`` (logged in the input).
- ``Appeal``: the proposer appeals a rejection within ``Parameters.appeal_period``; ``Reconsider``:
  the sub-district (街道), the level above the committee that rejected it - as for escalations
  (上级督办) - upholds it (final) or overturns it (back to ``proposed``, the committee answers
  again). The one who rejected it does not reconsider it. An appeal not made in time lets the
  rejection become final on ``Engine.tick`` (``rejection_final``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..canonical import canonical_value, timestamp
from ..catalogue import ItemSlug, is_other
from ..commands import Command, ConsultationCommand, Reason
from ..context import Context
from ..notices import PROPOSER, PUBLIC, role_group
from ..parameters import Parameters
from ..records import CatalogueAddition, Consultation, Money, Text, Title, Topic, evolve
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Carrier, Ending, Event, Form, State, Trigger
from .base import Effect, Governing, Guard, Route, StepDefinition, transition
from .propose import topic_known

__all__ = ["CO_SIGNERS", "STEP", "AddTopic", "Appeal", "CoSign", "EditProposal", "Reconsider", "Submit"]

#: Who may co-sign a proposal (联名): residents and residents' representatives of the community.
CO_SIGNERS = frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE})

#: The fields an edit may change, in the order the log lists them.
EDITABLE = ("budget", "carrier", "description", "form", "major", "title", "topic")


class Submit(ConsultationCommand):
    """The proposer submits a draft (提交): it becomes a proposal the committee must answer."""

    trigger: ClassVar[Trigger] = Trigger.SUBMIT

    def named_topics(self, record: Consultation | None) -> tuple[str, ...]:
        return () if record is None else (record.topic,)


class EditProposal(ConsultationCommand):
    """Change a draft or a proposal before its notice; fields left ``None`` stay as they are.
    ``no_budget`` removes the budget; ``note`` says why (a sentence the log keeps)."""

    trigger: ClassVar[Trigger] = Trigger.EDIT_PROPOSAL
    title: Title | None = None
    description: Text | None = None
    topic: Topic | None = None
    budget: Money | None = None
    no_budget: bool = False
    major: bool | None = None
    carrier: Carrier | None = None
    form: Form | None = None
    note: Text = ""

    @model_validator(mode="after")
    def _budget_or_none(self) -> EditProposal:
        if self.no_budget and self.budget is not None:
            raise PydanticCustomError("budget_and_no_budget", "give a budget or no_budget, not both")
        return self

    def named_topics(self, record: Consultation | None) -> tuple[str, ...]:
        return () if self.topic is None else (self.topic,)


class CoSign(ConsultationCommand):
    """联名: the acting resident co-signs the proposal."""

    trigger: ClassVar[Trigger] = Trigger.CO_SIGN


class AddTopic(ConsultationCommand):
    """列入二级目录: the committee makes the matter of a proposal filed under "other" (其他) a new
    second-level item ``slug`` (named ``name``) of the same category in its community's catalogue."""

    trigger: ClassVar[Trigger] = Trigger.ADD_TOPIC
    slug: ItemSlug
    name: str = Field(min_length=1, max_length=200)

    def named_topics(self, record: Consultation | None) -> tuple[str, ...]:
        return () if record is None else (f"{record.topic.partition('/')[0]}/{self.slug}",)


class Appeal(ConsultationCommand):
    """申请复核: the proposer asks for a rejection to be reconsidered, with grounds."""

    trigger: ClassVar[Trigger] = Trigger.APPEAL
    grounds: Reason


class Reconsider(ConsultationCommand):
    """复核: the sub-district upholds the rejection (``upheld``: final) or overturns it."""

    trigger: ClassVar[Trigger] = Trigger.RECONSIDER
    upheld: bool
    ruling: Reason


# ---- guards and routes ------------------------------------------------------------------------------
def _edit_values(record: Consultation, cmd: EditProposal) -> dict[str, tuple[Any, Any]]:
    """The fields the edit changes: name -> (old, new)."""
    new: dict[str, Any] = {
        "title": cmd.title,
        "description": cmd.description,
        "topic": cmd.topic,
        "budget": cmd.budget,
        "major": cmd.major,
        "carrier": cmd.carrier,
        "form": cmd.form,
    }
    if cmd.no_budget:
        new["budget"] = None
    changed = {}
    for name in EDITABLE:
        value = new[name]
        if value is None and not (name == "budget" and cmd.no_budget):
            continue
        old = getattr(record, name)
        if value != old:
            changed[name] = (old, value)
    return changed


def _edit_changes(params: Parameters, record: Consultation, cmd: EditProposal, ctx: Context) -> Failure | None:
    if not _edit_values(record, cmd):
        return Failure("nothing_changed")
    return None


def _may_co_sign(params: Parameters, record: Consultation, cmd: CoSign, ctx: Context) -> Failure | None:
    person = ctx.actor.id
    if person == record.proposer:
        return Failure("proposer_co_signs", {"person": person})
    if person in record.co_signers:
        return Failure("already_co_signed", {"person": person})
    return None


def _enough_co_signers(params: Parameters, record: Consultation | None, cmd: Command, ctx: Context) -> Failure | None:
    need = params.proposal_co_signers
    have = 0 if record is None else len(record.co_signers)
    if have < need:
        return Failure("too_few_co_signers", {"have": have, "need": need})
    return None


def _topic_is_other(params: Parameters, record: Consultation, cmd: AddTopic, ctx: Context) -> Failure | None:
    if not is_other(record.topic):
        return Failure("not_other_topic", {"topic": record.topic})
    return None


def _new_item(params: Parameters, record: Consultation, cmd: AddTopic, ctx: Context) -> Failure | None:
    topic = f"{record.topic.partition('/')[0]}/{cmd.slug}"
    if is_other(topic) or topic_known(record.community, topic, ctx) is None:
        return Failure("item_exists", {"topic": topic})
    return None


def _within_appeal_period(params: Parameters, record: Consultation, cmd: Appeal, ctx: Context) -> Failure | None:
    last = record.rejections[-1] if record.rejections else None
    if last is None or last.appeal_by is None or ctx.now > last.appeal_by:
        return Failure("appeal_too_late", {"appeal_by": None if last is None else last.appeal_by})
    return None


def _not_who_rejected(params: Parameters, record: Consultation, cmd: Reconsider, ctx: Context) -> Failure | None:
    last = record.rejections[-1] if record.rejections else None
    if last is not None and last.by == ctx.actor.id:
        return Failure("reconsider_own_rejection", {"person": ctx.actor.id})
    return None


def _rejection_upheld(params: Parameters, record: Consultation, cmd: Reconsider, ctx: Context) -> bool:
    return cmd.upheld


# ---- effects -----------------------------------------------------------------------------------------
def _submit(proc: Governing, rec: Consultation, cmd: Submit, ctx: Context, role: str, to: State) -> Effect:
    now = ctx.now
    respond_by = now + proc.parameters.proposal_deadline
    data = {"co_signers": len(rec.co_signers), "respond_by": timestamp(respond_by)}
    return {"proposed_at": now, "respond_by": respond_by}, [(Event.SUBMITTED, data)]


def _edit(proc: Governing, rec: Consultation, cmd: EditProposal, ctx: Context, role: str, to: State) -> Effect:
    changed = _edit_values(rec, cmd)
    update = {name: new for name, (_, new) in changed.items()}
    changes = {name: {"new": canonical_value(new), "old": canonical_value(old)} for name, (old, new) in changed.items()}
    data = {"changes": changes, "note": cmd.note}
    return update, [(Event.DRAFT_EDITED if rec.state is State.DRAFT else Event.PROPOSAL_EDITED, data)]


def _co_sign(proc: Governing, rec: Consultation, cmd: CoSign, ctx: Context, role: str, to: State) -> Effect:
    signers = (*rec.co_signers, ctx.actor.id)
    return {"co_signers": signers}, [(Event.CO_SIGNED, {"co_signers": len(signers), "person": ctx.actor.id})]


def _add_topic(proc: Governing, rec: Consultation, cmd: AddTopic, ctx: Context, role: str, to: State) -> Effect:
    topic = f"{rec.topic.partition('/')[0]}/{cmd.slug}"
    added = CatalogueAddition(topic=topic, name=cmd.name, from_topic=rec.topic, at=ctx.now, by=ctx.actor.id)
    data = {"from_topic": rec.topic, "name": cmd.name, "topic": topic}
    return {"topic": topic, "added_topic": added}, [(Event.TOPIC_ADDED, data)]


def _appeal(proc: Governing, rec: Consultation, cmd: Appeal, ctx: Context, role: str, to: State) -> Effect:
    now = ctx.now
    last = evolve(rec.rejections[-1], {"appealed_at": now, "grounds": cmd.grounds})
    respond_by = now + proc.parameters.proposal_deadline  # the sub-district's time to reconsider
    update = {"rejections": (*rec.rejections[:-1], last), "respond_by": respond_by}
    return update, [(Event.APPEALED, {"grounds": cmd.grounds, "respond_by": timestamp(respond_by)})]


def _reconsider(proc: Governing, rec: Consultation, cmd: Reconsider, ctx: Context, role: str, to: State) -> Effect:
    now = ctx.now
    last = evolve(
        rec.rejections[-1],
        {"reconsidered_at": now, "reconsidered_by": ctx.actor.id, "upheld": cmd.upheld, "ruling": cmd.ruling},
    )
    update: dict[str, Any] = {"rejections": (*rec.rejections[:-1], last)}
    if to is State.REJECTED:
        update["ended_at"], update["ending"] = now, Ending.REJECTED
    else:  # overturned: the committee answers the proposal again, within the proposal deadline
        update["respond_by"] = now + proc.parameters.proposal_deadline
    return update, [(Event.RECONSIDERED, {"ruling": cmd.ruling, "upheld": cmd.upheld})]


_EDIT_GUARDS = ["edit_changes", "topics_in_catalogue", "edit_budget_within_cap"]
_CO_SIGN = sorted(CO_SIGNERS)

STEP = StepDefinition(
    name="intake 提议受理",
    commands=(Submit, EditProposal, CoSign, AddTopic, Appeal, Reconsider),
    transitions=(
        transition(
            Trigger.SUBMIT,
            State.DRAFT,
            State.PROPOSED,
            [Role.PROPOSER],
            ["topics_in_catalogue", "enough_co_signers"],
        ),
        transition(Trigger.EDIT_PROPOSAL, State.DRAFT, None, [Role.PROPOSER], _EDIT_GUARDS),
        transition(Trigger.EDIT_PROPOSAL, State.PROPOSED, None, [Role.PROPOSER, Role.COMMITTEE], _EDIT_GUARDS),
        transition(Trigger.CO_SIGN, State.DRAFT, None, _CO_SIGN, ["may_co_sign"]),
        transition(Trigger.CO_SIGN, State.PROPOSED, None, _CO_SIGN, ["may_co_sign"]),
        transition(Trigger.ADD_TOPIC, State.PROPOSED, None, [Role.COMMITTEE], ["topic_is_other", "new_catalogue_item"]),
        transition(Trigger.APPEAL, State.APPEALABLE, State.APPEALED, [Role.PROPOSER], ["within_appeal_period"]),
        transition(
            Trigger.RECONSIDER,
            State.APPEALED,
            State.REJECTED,
            [Role.SUB_DISTRICT],
            ["not_who_rejected"],
            ["rejection_upheld"],
        ),
        transition(Trigger.RECONSIDER, State.APPEALED, State.PROPOSED, [Role.SUB_DISTRICT], ["not_who_rejected"]),
    ),
    guards=(
        Guard(
            "edit_changes",
            _edit_changes,
            ("nothing_changed",),
            "an edit changes at least one field",
            needs_command=True,
        ),
        Guard(
            "may_co_sign",
            _may_co_sign,
            ("proposer_co_signs", "already_co_signed"),
            "co-signed once, not by the proposer",
        ),
        Guard(
            "enough_co_signers",
            _enough_co_signers,
            ("too_few_co_signers",),
            "as many co-signers as the procedure requires before a proposal is submitted",
        ),
        Guard("topic_is_other", _topic_is_other, ("not_other_topic",), "the proposal is filed under an 'other' item"),
        Guard(
            "new_catalogue_item",
            _new_item,
            ("item_exists",),
            "the new item is not in the community's catalogue yet",
            needs_command=True,
        ),
        Guard(
            "within_appeal_period",
            _within_appeal_period,
            ("appeal_too_late",),
            "the appeal comes within the appeal period",
        ),
        Guard(
            "not_who_rejected",
            _not_who_rejected,
            ("reconsider_own_rejection",),
            "whoever rejected the proposal does not reconsider it",
        ),
    ),
    routes=(
        Route("rejection_upheld", _rejection_upheld, "the sub-district upholds the rejection", needs_command=True),
    ),
    effects={
        Trigger.SUBMIT: _submit,
        Trigger.EDIT_PROPOSAL: _edit,
        Trigger.CO_SIGN: _co_sign,
        Trigger.ADD_TOPIC: _add_topic,
        Trigger.APPEAL: _appeal,
        Trigger.RECONSIDER: _reconsider,
    },
    audience={
        # a draft is its proposer's: nobody is notified of it
        Event.DRAFTED: (),
        Event.DRAFT_EDITED: (),
        Event.DRAFT_DISCARDED: (),
        Event.SUBMITTED: (role_group(Role.COMMITTEE),),
        Event.PROPOSAL_EDITED: (PROPOSER, role_group(Role.COMMITTEE)),
        Event.CO_SIGNED: (PROPOSER,),
        Event.TOPIC_ADDED: (PROPOSER, PUBLIC),
        Event.APPEALED: (role_group(Role.SUB_DISTRICT), role_group(Role.COMMITTEE)),
        Event.RECONSIDERED: (PROPOSER, role_group(Role.COMMITTEE)),
        Event.REJECTION_FINAL: (PROPOSER,),
    },
)
