"""The test driver itself: its clock policy, ``to`` reaching every state, the cast, ``StepMaker`` on
the same policy, and ``consultflow.testing`` importing without pytest."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from consultflow import Actor, Event, Refused, Role, Stance, State, Withdraw
from consultflow.testing import StepMaker
from consultflow.testing.driver import CAST, COMMUNITY, CONSENSUS, NO_CONSENSUS, PACE, STATES, T0, Driver, only
from oracle import check_log_order

EXPECTED = {name: State(name) for name in STATES if name != "consulting_closed"} | {
    "consulting_closed": State.CONSULTING
}


@pytest.mark.parametrize("state", STATES)
def test_to_takes_a_new_consultation_to_each_state(state: str) -> None:
    d = Driver()
    first = d.to("proposed")
    rec = d.to(state)
    assert rec.id != first.id
    assert d.cid == rec.id
    assert rec.state is EXPECTED[state]
    if state == "consulting":
        assert rec.current_round is not None
        assert rec.current_round.closed_at is None
        assert rec.current_round.opinions == ()
    if state == "consulting_closed":
        assert rec.current_round is not None
        assert rec.current_round.tally is not None
        assert rec.current_round.tally.consensus
    assert d.engine.verify(rec.id).ok
    check_log_order(d.history())


def test_every_role_is_held_by_exactly_one_named_person_and_nobody_holds_none() -> None:
    held = [role for actor in CAST.values() for role in actor.roles]
    # the proposer and the invited are relational: whoever proposed, whoever the consultation invited
    relational = {Role.PROPOSER, Role.INVITEE}
    assert set(held) >= set(Role) - relational
    assert not set(held) & relational  # nobody is granted them
    assert all(len(actor.roles) <= 1 for actor in CAST.values())
    assert CAST["nobody"].roles == frozenset()
    assert all(actor.id == name for name, actor in CAST.items())


def test_the_driver_grants_its_cast_their_roles_in_its_directory() -> None:
    """The engine takes roles from the directory only: the driver grants each cast member the role
    they show (not the system role, which nobody is granted), and enrols an ``Actor`` from outside
    the cast when it acts, so ``only(Role.X)`` still works through the driver."""
    d = Driver()
    assert d.directory is not None
    for name, actor in CAST.items():
        assert d.directory.roles(name, COMMUNITY, T0) == actor.roles - {Role.SYSTEM}
        assert d.directory.roles(name, "elsewhere", T0) == frozenset()
    outsider = only(Role.DEPUTY)
    assert d.directory.roles(outsider.id, COMMUNITY, T0) == frozenset()
    rec = d.propose(by=outsider)
    assert (rec.proposer, d.history()[-1].role) == (outsider.id, Role.DEPUTY.value)
    assert d.directory.roles(outsider.id, COMMUNITY, T0) == {Role.DEPUTY}


def test_each_command_happens_a_pace_after_the_previous_one() -> None:
    d = Driver()
    d.to("closed")
    times = [e.at for e in d.history()]
    assert times[0] == T0
    gaps = [b - a for a, b in itertools.pairwise(sorted(set(times)))]
    # each command a pace after the one before, but for the wait for the announced meeting
    assert [g for g in gaps if g != PACE] == [gaps[1]]
    assert gaps[1] > PACE
    schedule = d.record.schedule
    assert schedule is not None
    opened = next(e for e in d.history() if e.event is Event.ROUND_OPENED)
    assert opened.at == schedule.meeting_at  # serve_notice: the round opens at the meeting


def test_a_clock_moved_by_the_caller_is_when_the_next_command_happens() -> None:
    d = Driver()
    d.propose()
    later = d.clock.advance(minutes=5)
    d.notify()
    assert d.history()[-1].at == later  # not a pace after the proposal
    with pytest.raises(Refused):
        d.open_round()  # before the meeting: refused, a pace later
    assert d.clock.now() == later + PACE
    d.withdraw()  # a refused command counts: this one is a pace after it
    assert d.history()[-1].at == later + 2 * PACE


def test_moment_fixes_the_time_of_the_next_command_and_the_engine_uses_the_clock_as_it_stands() -> None:
    d = Driver(pace=timedelta(minutes=10))
    d.propose()
    at = d.moment()
    assert at == T0 + timedelta(minutes=10) == d.clock.now()
    assert d.moment() == at  # fixed until a command happens
    d.notify(meeting_at=at + timedelta(days=3))  # exactly the notice period, counted from the notice
    assert d.history()[-1].at == at
    # straight to the engine: at the clock as it stands, and not one of the driver's commands
    d.engine.execute(Withdraw(consultation=d.cid, reason="另案处理"), by=CAST["wang"])
    assert d.history()[-1].at == at
    assert d.to("proposed").proposed_at == at + timedelta(minutes=10)


def test_the_driver_never_moves_the_clock_back() -> None:
    d = Driver()
    d.to("notified")
    ahead = d.clock.now() + timedelta(days=10)
    d.clock.set(ahead)  # past the meeting
    d.serve_notice()  # the meeting is behind: nothing to wait for
    assert d.clock.now() == ahead
    assert d.open_round().current_round is not None
    assert d.history()[-1].at == ahead


def test_people_are_named_or_given_and_unknown_names_are_refused_plainly() -> None:
    d = Driver()
    d.propose(by=Actor("someone", roles={Role.RESIDENT}))
    assert d.record.proposer == "someone"
    with pytest.raises(KeyError, match="not in the cast"):
        d.notify(by="stranger")


@pytest.mark.parametrize("consensus", [True, False])
def test_hold_round_records_the_standard_opinions(consensus: bool) -> None:
    d = Driver()
    d.to("notified")
    rec = d.hold_round(consensus=consensus)
    opinions = CONSENSUS if consensus else NO_CONSENSUS
    assert rec.current_round is not None
    assert [(o.participant, o.stance) for o in rec.current_round.opinions] == list(opinions)
    assert rec.current_round.tally is not None
    assert rec.current_round.tally.quorum_met
    assert rec.current_round.tally.consensus is consensus
    explicit = d.hold_round(opinions=[("li", Stance.OPPOSE)])
    assert explicit.current_round is not None
    assert [o.participant for o in explicit.current_round.opinions] == ["li"]


def test_step_maker_follows_the_same_clock_policy() -> None:
    start = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    maker = StepMaker()
    first = maker.propose("p-1")
    second = maker.propose("p-2")
    assert second.entries[0].at - first.entries[0].at == timedelta(seconds=1)
    assert first.entries[0].at == start  # the first step happens at the start
    given = start + timedelta(days=2)
    assert maker.propose("p-3", at=given).entries[0].at == given
    assert maker.propose("p-4").entries[0].at == given + timedelta(seconds=1)  # on from the time given
    earlier = maker.propose("p-5", at=start).entries[0].at
    assert earlier == start
    assert maker.propose("p-6").entries[0].at == given + timedelta(seconds=2)  # never back
    maker.clock.advance(hours=1)
    assert maker.propose("p-7").entries[0].at == given + timedelta(hours=1, seconds=2)
    assert (first.record.proposer, maker.notify(first.record).entries[0].actor) == ("li", "wang")


def test_the_driver_and_the_step_maker_import_without_pytest() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "from consultflow.testing import Driver, StepMaker\n"
        "print(Driver().to('closed').state.value, StepMaker().propose('x').record.state.value)\n"
        "try:\n"
        "    from consultflow.testing import StoreContract\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[0] == "closed proposed"
    assert "pip install 'consultflow[testing]'" in lines[1]
