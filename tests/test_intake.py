"""提议 intake (issue 11, part 6): drafts, edits before the notice (logged), co-signers (联名), an "other"
catalogue item the committee makes a new 二级目录 entry, and the appeal of a rejection (申请复核).

Each of these failed on the library before: a proposal could not be drafted, edited or co-signed,
a matter off the catalogue was refused outright, and a rejection was final."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest

import consultflow as cf
from consultflow import Ending, Event, Role, State
from consultflow.storage.memory import MemoryStore
from consultflow.testing.driver import COMMUNITY, TOPIC, Driver
from consultflow.timeline import format_timeline

OTHER = "public-affairs/other"
NEW_ITEM = "public-affairs/stray-cats"


def refused(call: Callable[[], object]) -> cf.Refused:
    """The refusal ``call()`` raises, checked to read in both languages."""
    with pytest.raises(cf.Refused) as info:
        call()
    r = info.value
    en, zh = r.explain("en"), r.explain("zh")
    assert en.strip()
    assert zh.strip()
    assert en != zh
    assert "{" not in en + zh
    return r


def unchanged(w: Driver, call: Callable[[], object]) -> cf.Refused:
    """A refusal that changes nothing: record, log, outbox."""
    before = w.snapshot()
    r = refused(call)
    assert w.snapshot() == before
    return r


# ---- drafts (草稿) ----------------------------------------------------------------------------------------


def test_a_draft_is_saved_edited_and_submitted_and_the_deadline_starts_at_submission() -> None:
    w = Driver()
    draft = w.draft()
    assert draft.state is State.DRAFT
    assert draft.respond_by is None
    assert draft.next_due is None
    assert w.events() == [Event.DRAFTED]
    assert w.outbox(draft.id) == ()  # nobody is told of a draft
    # the committee does not see it as a proposal: it can neither reject nor edit it
    r = unchanged(w, w.reject)
    assert (r.code, r.guard) == ("invalid_in_state", "state")
    assert unchanged(w, lambda: w.edit(by="wang", title="改")).code == "role_not_allowed"
    assert unchanged(w, lambda: w.submit(by="wu")).code == "role_not_allowed"
    # twenty days pass: a draft is never overdue
    w.clock.advance(days=20)
    assert w.engine.tick() == ()
    submitted = w.submit()
    assert submitted.state is State.PROPOSED
    assert submitted.proposed_at == w.clock.now()
    assert submitted.respond_by == w.clock.now() + w.procedure.parameters.proposal_deadline
    assert w.events() == [Event.DRAFTED, Event.SUBMITTED]
    assert [n.event for n in w.outbox(draft.id)] == [Event.SUBMITTED]
    w.clock.advance(days=13)
    assert w.engine.tick() == ()  # the committee's 14 days run from the submission, not the draft
    assert w.notify().state is State.NOTIFIED
    assert w.engine.verify(draft.id).ok


def test_propose_without_draft_is_unchanged() -> None:
    w = Driver()
    rec = w.propose()
    assert rec.state is State.PROPOSED
    assert w.events() == [Event.PROPOSED]
    assert rec.co_signers == ()
    assert rec.rejections == ()
    assert rec.added_topic is None


def test_a_draft_is_discarded_quietly() -> None:
    w = Driver()
    w.draft()
    assert unchanged(w, lambda: w.withdraw(by="wang")).code == "role_not_allowed"
    rec = w.withdraw()
    assert (rec.state, rec.ending) == (State.WITHDRAWN, Ending.WITHDRAWN)
    assert w.events() == [Event.DRAFTED, Event.DRAFT_DISCARDED]
    assert w.outbox(rec.id) == ()


# ---- edits before the notice --------------------------------------------------------------------------------


def test_edits_are_logged_with_old_and_new_values() -> None:
    w = Driver()
    w.draft(budget=Decimal("1000"))
    w.edit(title="夜间停车位 night parking spaces", budget=Decimal("2500.50"), note="改预算")
    entry = w.history()[-1]
    assert entry.event is Event.DRAFT_EDITED
    assert entry.data == {
        "changes": {
            "budget": {"new": "2500.50", "old": "1000"},
            "title": {"new": "夜间停车位 night parking spaces", "old": "夜间停车 Night parking"},
        },
        "note": "改预算",
    }
    w.submit()
    # once proposed, the committee corrects the proposal it takes up: a major matter, no budget
    rec = w.edit(by="wang", major=True, no_budget=True, topic="public-benefit/micro-greening")
    assert (rec.major, rec.budget, rec.topic) == (True, None, "public-benefit/micro-greening")
    entry = w.history()[-1]
    assert (entry.event, entry.role) == (Event.PROPOSAL_EDITED, "committee")
    assert entry.data["changes"] == {
        "budget": {"new": None, "old": "2500.50"},
        "major": {"new": True, "old": False},
        "topic": {"new": "public-benefit/micro-greening", "old": TOPIC},
    }
    notice = w.outbox(rec.id)[-1]
    assert notice.event is Event.PROPOSAL_EDITED
    assert set(notice.audience) == {"li", "role:committee"}
    assert w.engine.verify(rec.id).ok


def test_edits_that_change_nothing_or_break_a_rule_are_refused() -> None:
    w = Driver()
    w.propose()
    assert unchanged(w, lambda: w.edit(title="夜间停车 Night parking")).code == "nothing_changed"
    # more than the community's whole fund for the year (微幸福), as a proposal would be
    assert unchanged(w, lambda: w.edit(budget=Decimal("400000"))).code == "over_fund_pool"
    assert unchanged(w, lambda: w.edit(topic="policy/not-listed")).code == "unknown_topic"
    assert unchanged(w, lambda: w.edit(by="wu", title="别人的提议")).code == "role_not_allowed"
    with pytest.raises(cf.ValidationError):
        cf.EditProposal(consultation="c-001", budget=Decimal("1"), no_budget=True)


def test_an_edit_after_the_notice_is_refused() -> None:
    w = Driver()
    w.to("notified")
    for by in ("li", "wang"):
        r = unchanged(w, partial(w.edit, by=by, title="改标题"))
        assert (r.code, r.guard, r.state) == ("invalid_in_state", "state", "notified")
        assert "edit the proposal" in r.explain("en")
        assert "修改提议" in r.explain("zh")


# ---- co-signers (联名) -----------------------------------------------------------------------------------------


def test_residents_co_sign_once_each_and_never_the_proposer() -> None:
    w = Driver()
    w.propose()
    w.co_sign("wu")
    rec = w.co_sign("zhang")  # a residents' representative
    assert rec.co_signers == ("wu", "zhang")
    assert w.history()[-1].data == {"co_signers": 2, "person": "zhang"}
    assert w.outbox(rec.id)[-1].audience == ("li",)
    r = unchanged(w, lambda: w.co_sign("wu"))
    assert (r.code, r.data["person"]) == ("already_co_signed", "wu")
    assert "wu" in r.explain("zh")
    assert unchanged(w, lambda: w.co_sign("li")).code == "proposer_co_signs"
    # who may co-sign comes from the directory: property management, the committee, an outsider may not
    for who in ("zhao", "wang", "nobody"):
        assert unchanged(w, partial(w.co_sign, who)).code == "role_not_allowed"
    assert w.engine.verify(rec.id).ok


def test_a_minimum_of_co_signers_before_submission() -> None:
    w = Driver(proposal_co_signers=2)
    r = refused(w.propose)
    assert (r.code, r.data["need"], r.data["have"]) == ("too_few_co_signers", 2, 0)
    assert "draft" in r.explain("en")
    assert "草稿" in r.explain("zh")
    w.draft()
    w.co_sign("wu")
    r = unchanged(w, w.submit)
    assert (r.code, r.data["have"]) == ("too_few_co_signers", 1)
    w.co_sign("zhang")
    rec = w.submit()
    assert rec.state is State.PROPOSED
    assert rec.co_signers == ("wu", "zhang")
    assert w.history()[-1].data["co_signers"] == 2


# ---- the "other" item and the 二级目录 ------------------------------------------------------------------------


def test_an_other_matter_becomes_a_catalogue_item_for_new_proposals() -> None:
    w = Driver()
    # before: a matter the catalogue does not list is refused
    r = refused(lambda: w.propose(topic=NEW_ITEM))
    assert r.code == "unknown_topic"
    # filed under the category's "other" item, it is accepted
    first = w.propose(topic=OTHER, title="流浪猫 stray cats")
    assert first.topic == OTHER
    # the committee makes it a second-level item (列入二级目录), logged with the new item
    assert unchanged(w, lambda: w.add_topic(by="li")).code == "role_not_allowed"
    rec = w.add_topic("stray-cats", "流浪猫 stray cats")
    assert rec.topic == NEW_ITEM
    assert rec.added_topic is not None
    assert (rec.added_topic.topic, rec.added_topic.name, rec.added_topic.from_topic) == (
        NEW_ITEM,
        "流浪猫 stray cats",
        OTHER,
    )
    entry = w.history()[-1]
    assert (entry.event, entry.role) == (Event.TOPIC_ADDED, "committee")
    assert entry.data == {"from_topic": OTHER, "name": "流浪猫 stray cats", "topic": NEW_ITEM}
    # from then on the item is accepted for new proposals in that community
    second = w.propose(topic=NEW_ITEM, by="wu")
    assert second.topic == NEW_ITEM
    # the step's input says why: the item, and the consultation whose log added it
    step_input = w.history()[0].input
    assert step_input is not None
    assert step_input["added_items"] == [
        {
            "added_in": first.id,
            "category": "public-affairs",
            "community": COMMUNITY,
            "name": "流浪猫 stray cats",
            "slug": "stray-cats",
        }
    ]
    assert w.engine.verify(first.id).ok
    assert w.engine.verify(second.id).ok
    # an edit may name it too, and it cannot be added twice
    third = w.propose(topic=OTHER, title="又一件 another")
    assert w.edit(cid=third.id, topic=NEW_ITEM).topic == NEW_ITEM
    fourth = w.propose(topic=OTHER, title="流浪猫 again")
    r = unchanged(w, lambda: w.add_topic("stray-cats", cid=fourth.id))
    assert (r.code, r.data["topic"]) == ("item_exists", NEW_ITEM)
    assert unchanged(w, lambda: w.add_topic("night-parking", cid=fourth.id)).code == "item_exists"
    assert unchanged(w, lambda: w.add_topic("other", cid=fourth.id)).code == "item_exists"


def test_the_added_item_comes_from_the_log_not_from_the_engine() -> None:
    """A new engine over the same store (another process, a restart) accepts the item; another
    community does not."""
    store = MemoryStore()
    w = Driver(store=store)
    w.propose(topic=OTHER, title="流浪猫")
    w.add_topic()
    catalogue = w.catalogue.with_community("xinghua", {"public-affairs/lifts": "加装电梯"})
    directory = cf.MemoryDirectory()
    directory.grant(COMMUNITY, "li", Role.RESIDENT, by="test")
    directory.grant("xinghua", "li", Role.RESIDENT, by="test")
    fresh = cf.Engine(w.procedure, store, clock=w.clock, catalogue=catalogue, directory=directory)
    command = cf.Propose(community=COMMUNITY, topic=NEW_ITEM, title="猫", carrier="decision", form="council")  # type: ignore[arg-type]
    assert fresh.execute(command, by="li").topic == NEW_ITEM
    elsewhere = command.model_copy(update={"community": "xinghua"})
    r = refused(lambda: fresh.execute(elsewhere, by="li"))
    assert r.code == "unknown_topic"
    assert fresh.execute(elsewhere.model_copy(update={"topic": OTHER}), by="li").topic == OTHER


def test_only_an_other_matter_becomes_a_catalogue_item() -> None:
    w = Driver()
    w.propose()
    r = unchanged(w, w.add_topic)
    assert (r.code, r.data["topic"]) == ("not_other_topic", TOPIC)
    assert "其他" in r.explain("zh")


# ---- appeal of a rejection (申请复核) ------------------------------------------------------------------------------


def test_a_rejection_is_open_to_appeal_and_overturned_goes_back_to_the_committee() -> None:
    w = Driver()
    w.propose()
    rec = w.reject()
    assert rec.state is State.APPEALABLE
    assert (rec.ended_at, rec.ending) == (None, None)
    assert rec.active
    (rejection,) = rec.rejections
    assert (rejection.by, rejection.appeal_by) == ("wang", w.clock.now() + timedelta(days=15))
    assert rec.respond_by == rejection.appeal_by
    rec = w.appeal(grounds="本社区事务 it is ours")
    assert rec.state is State.APPEALED
    assert [n.audience for n in w.outbox(rec.id)][-1] == ("role:sub_district", "role:committee")
    # the committee that rejected it does not reconsider it: the sub-district does
    assert unchanged(w, lambda: w.reconsider(False, by="wang")).code == "role_not_allowed"
    rec = w.reconsider(False, ruling="属于本社区事务，应予受理")
    assert rec.state is State.PROPOSED
    assert rec.respond_by == w.clock.now() + w.procedure.parameters.proposal_deadline
    last = rec.rejections[-1]
    assert (last.upheld, last.reconsidered_by, last.grounds) == (False, "jie", "本社区事务 it is ours")
    assert w.history()[-1].data == {"ruling": "属于本社区事务，应予受理", "upheld": False}
    assert w.notify().state is State.NOTIFIED  # the procedure goes on
    assert w.engine.verify(rec.id).ok


def test_an_upheld_appeal_makes_the_rejection_final() -> None:
    w = Driver()
    w.to("appealed")
    rec = w.reconsider(True, ruling="维持")
    assert (rec.state, rec.ending, rec.ended_at) == (State.REJECTED, Ending.REJECTED, w.clock.now())
    assert not rec.active
    assert unchanged(w, w.appeal).code == "invalid_in_state"
    assert w.engine.verify(rec.id).ok


def test_a_matter_is_appealed_once() -> None:
    w = Driver()
    w.to("appealed")
    w.reconsider(False)
    rec = w.reject()
    assert (rec.state, rec.ending) == (State.REJECTED, Ending.REJECTED)
    assert len(rec.rejections) == 2


def test_who_rejected_it_does_not_reconsider_it() -> None:
    both = cf.Actor("gao", roles={Role.COMMITTEE, Role.SUB_DISTRICT})
    w = Driver()
    w.propose()
    w.reject(by=both)
    w.appeal()
    r = unchanged(w, lambda: w.reconsider(True, by=both))
    assert (r.code, r.data["person"]) == ("reconsider_own_rejection", "gao")


def test_an_appeal_too_late_is_refused_and_the_rejection_becomes_final() -> None:
    w = Driver()
    w.to("appealable")
    appeal_by = w.record.respond_by
    assert appeal_by is not None
    w.clock.set(appeal_by + timedelta(minutes=1))
    r = unchanged(w, w.appeal)
    assert r.code == "appeal_too_late"
    assert "appeal" in r.explain("en")
    assert "申请复核" in r.explain("zh")
    (step,) = w.engine.tick()
    assert [e.event for e in step.entries] == [Event.DEADLINE_MISSED, Event.REJECTION_FINAL]
    rec = step.record
    assert (rec.state, rec.ending) == (State.REJECTED, Ending.REJECTED)
    assert unchanged(w, w.appeal).code == "invalid_in_state"
    assert w.engine.tick() == ()
    assert w.engine.verify(rec.id).ok


def test_an_appeal_unanswered_is_overdue_once() -> None:
    w = Driver()
    w.to("appealed")
    w.clock.advance(days=15)
    (step,) = w.engine.tick()
    assert [(e.event, e.data["kind"]) for e in step.entries] == [(Event.DEADLINE_MISSED, "reconsideration")]
    assert step.record.state is State.APPEALED
    assert w.engine.tick() == ()


def test_a_variant_without_appeal_rejects_finally_at_once() -> None:
    w = Driver(appeal_period=None)
    w.propose()
    rec = w.reject()
    assert (rec.state, rec.ending) == (State.REJECTED, Ending.REJECTED)
    assert rec.rejections[-1].appeal_by is None


def test_the_timeline_reads_the_intake_events() -> None:
    w = Driver()
    w.to("appealable")
    w.clock.advance(days=16)
    w.engine.tick()
    en = "\n".join(format_timeline(w.history(), "en"))
    zh = "\n".join(format_timeline(w.history(), "zh"))
    assert "the appeal of the rejection was due" in en
    assert "rejection final" in en
    assert "申请复核期限" in zh
    assert "不予受理决定生效" in zh
    w.to("appealed")
    w.reconsider(False, ruling="应予受理")
    assert "rejection overturned: 应予受理" in "\n".join(format_timeline(w.history(), "en"))
    assert "撤销不予受理：应予受理" in "\n".join(format_timeline(w.history(), "zh"))


def test_each_intake_step_keeps_the_next_deadline_right() -> None:
    """Submission, a rejection open to appeal, an appeal and an overturn each set ``respond_by``; the
    record's ``next_due`` (what ``Engine.tick`` asks the store for) follows it."""
    w = Driver()
    w.draft()
    w.clock.advance(days=30)
    rec = w.submit()
    assert rec.next_due == rec.respond_by == w.clock.now() + timedelta(days=14)
    rec = w.reject()
    assert rec.next_due == rec.respond_by == w.clock.now() + timedelta(days=15)
    rec = w.appeal()
    assert rec.next_due == rec.respond_by == w.clock.now() + timedelta(days=14)
    rec = w.reconsider(False)
    assert rec.next_due == rec.respond_by == w.clock.now() + timedelta(days=14)
    w.clock.advance(days=13)
    assert w.engine.tick() == ()
    w.clock.advance(days=2)
    (step,) = w.engine.tick()
    assert step.entries[0].data["kind"] == "proposal"
