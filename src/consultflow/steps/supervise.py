"""监督 supervise: the published outcome is handed to supervision; inspections (督查) pass or find
problems; new problems start a new cycle of consultation (再次协商), up to the cycle limit; the
committee closes (办结) once every measure is carried out and an inspection passed after the latest
report. An escalated matter is closed by the sub-district's ruling.

再次协商 is open while the decision is carried out (反馈落实) as well as under supervision: the seed
consults again "对落实过程中又存在新问题的". The committee, supervisors and the inspection group
raise it; so may residents, with ``Parameters.reconsultation_co_signers`` fellow residents of the
community (per the directory) co-signing. Nothing done is lost: the decision in force, its
measures and every progress report stay on the record; the next cycle's decision takes over
what is still to do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..commands import Command, ConsultationCommand, Reason
from ..context import Context
from ..deadlines import measure_done
from ..funds import release
from ..notices import INVITED, PROPOSER, PUBLIC, role_group
from ..parameters import Parameters
from ..records import Consultation, Inspection, PersonId, Text, make
from ..refusals import Failure
from ..roles import Role
from ..vocabulary import Ending, Event, State, Trigger
from .base import Effect, Governing, Guard, StepDefinition, transition
from .consult import new_cycle

__all__ = ["RECONSULTATION_OFFICIALS", "STEP", "Close", "Inspect", "RequestReconsultation", "StartSupervision"]

_INSPECTORS = (Role.INSPECTION_GROUP, Role.SUPERVISOR, Role.SUB_DISTRICT)
#: Who raises 再次协商 by office, without co-signers: the committee, supervisors, the inspection group.
RECONSULTATION_OFFICIALS = frozenset({Role.INSPECTION_GROUP, Role.SUPERVISOR, Role.COMMITTEE})
#: Residents, who raise it with co-signers; co-signers must hold one of these roles in the community.
_RESIDENTS = frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE})
#: The most co-signers a request names (the parameter's own upper bound).
MAX_CO_SIGNERS = 1_000


class StartSupervision(ConsultationCommand):
    """监督: hand the published outcome over to supervision."""

    trigger: ClassVar[Trigger] = Trigger.START_SUPERVISION


class Inspect(ConsultationCommand):
    """An inspection by the inspection group or supervisors: passed, or findings."""

    trigger: ClassVar[Trigger] = Trigger.INSPECT
    passed: bool
    findings: Text = ""


class RequestReconsultation(ConsultationCommand):
    """再次协商: new problems found while carrying it out; a new cycle of consultation starts.
    ``co_signers`` are the residents who raise it with the actor (联名): each must be a resident of
    the community in the directory; a resident raising it needs
    ``Parameters.reconsultation_co_signers`` of them."""

    trigger: ClassVar[Trigger] = Trigger.REQUEST_RECONSULTATION
    problems: Reason
    co_signers: tuple[PersonId, ...] = Field(default=(), max_length=MAX_CO_SIGNERS)

    @model_validator(mode="after")
    def _co_signers_once(self) -> RequestReconsultation:
        if len(set(self.co_signers)) != len(self.co_signers):
            raise PydanticCustomError("co_signers_duplicate", "co_signers names a person twice")
        return self

    def named_people(self) -> tuple[str, ...]:
        return self.co_signers


class Close(ConsultationCommand):
    """Close the matter (办结): after supervision signs off, or by the sub-district's ruling when
    escalated."""

    trigger: ClassVar[Trigger] = Trigger.CLOSE
    summary: Text = ""


def _published(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    d = record.current_decision
    if d is None or not any(p.decision == d.number for p in record.publications):
        return Failure("not_published")
    return None


def _measures_done(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    d = record.current_decision
    if d is None:
        return None
    pending = [m.title for i, m in enumerate(d.measures) if not measure_done(record.progress, d.number, i)]
    if pending:
        return Failure("measures_unfinished", {"pending": pending})
    return None


def _signed_off(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    cycle = record.cycle
    last = next((i for i in reversed(record.inspections) if i.cycle == cycle), None)
    if last is None or not last.passed:
        return Failure("inspection_pending")
    d = record.current_decision
    if d is not None:
        latest_report = max((p.seq for p in record.progress if p.decision == d.number), default=0)
        if latest_report > last.seq:  # log order, not clock time: clocks tie and drift
            return Failure("inspection_pending")
    return None


def _cycles_left(params: Parameters, record: Consultation, cmd: Command, ctx: Context) -> Failure | None:
    if record.cycle >= params.cycle_limit:
        return Failure("cycle_limit", {"used": record.cycle, "limit": params.cycle_limit})
    return None


def _co_signed(params: Parameters, record: Consultation, cmd: RequestReconsultation, ctx: Context) -> Failure | None:
    # 联名: every co-signer is a resident of the community (the directory's word, not the caller's)
    # other than the actor; a resident raising it needs the parameters' number of co-signers
    actor = ctx.actor.id
    for person in cmd.co_signers:
        if person == actor:
            return Failure("co_signer_is_actor", {"person": person})
        if _RESIDENTS.isdisjoint(ctx.roles_of(person)):
            return Failure("co_signer_not_resident", {"person": person, "community": record.community})
    needed = params.reconsultation_co_signers
    if RECONSULTATION_OFFICIALS.isdisjoint(ctx.actor.roles) and len(cmd.co_signers) < needed:
        return Failure("co_signers_required", {"given": len(cmd.co_signers), "required": needed})
    return None


def _start_supervision(proc: Governing, rec: Consultation, cmd: Command, ctx: Context, role: str, to: State) -> Effect:
    return {}, [(Event.SUPERVISION_STARTED, {"decision": rec.decisions[-1].number})]


def _inspect(proc: Governing, rec: Consultation, cmd: Inspect, ctx: Context, role: str, to: State) -> Effect:
    ins = make(
        Inspection,
        {
            "cycle": rec.cycle,
            "seq": rec.version + 1,
            "inspector": ctx.actor.id,
            "passed": cmd.passed,
            "findings": cmd.findings,
            "at": ctx.now,
        },
    )
    data = {"cycle": rec.cycle, "findings": cmd.findings, "passed": cmd.passed}
    return {"inspections": (*rec.inspections, ins)}, [(Event.INSPECTED, data)]


def _request_reconsultation(
    proc: Governing, rec: Consultation, cmd: RequestReconsultation, ctx: Context, role: str, to: State
) -> Effect:
    data: dict[str, Any] = {"cycle": rec.cycle + 1, "problems": cmd.problems}
    if cmd.co_signers:  # keys in sorted order: see base.Events; logs without co-signers stay as they were
        data = {"co_signers": list(cmd.co_signers), **data}
    update = new_cycle(proc.parameters, rec, ctx)
    funded, events = release(rec, ctx)  # 微幸福: what was not spent goes back to the pool
    update.update(funded)
    return update, [*events, (Event.RECONSULTATION_REQUESTED, data)]


def _close(proc: Governing, rec: Consultation, cmd: Close, ctx: Context, role: str, to: State) -> Effect:
    ruling = rec.state is State.ESCALATED
    update = {"ended_at": ctx.now, "ending": Ending.RULING if ruling else Ending.DONE}
    return update, [(Event.CLOSED, {"by_ruling": ruling, "summary": cmd.summary})]


STEP = StepDefinition(
    name="supervise 监督",
    commands=(StartSupervision, Inspect, RequestReconsultation, Close),
    transitions=(
        transition(Trigger.START_SUPERVISION, State.FEEDBACK, State.SUPERVISING, [Role.COMMITTEE], ["published"]),
        transition(Trigger.INSPECT, State.SUPERVISING, None, _INSPECTORS, ["proposer_recuses"]),
        # 再次协商 while carrying it out (反馈落实) or under supervision
        *(
            transition(
                Trigger.REQUEST_RECONSULTATION,
                s,
                State.CONSULTING,
                RECONSULTATION_OFFICIALS | _RESIDENTS,
                ["cycles_left", "co_signed"],
            )
            for s in (State.FEEDBACK, State.SUPERVISING)
        ),
        transition(
            Trigger.CLOSE,
            State.SUPERVISING,
            State.CLOSED,
            [Role.COMMITTEE],
            ["proposer_recuses", "measures_done", "signed_off"],
        ),
        transition(Trigger.CLOSE, State.ESCALATED, State.CLOSED, [Role.SUB_DISTRICT]),
    ),
    guards=(
        Guard("published", _published, ("not_published",), "the outcome was made public"),
        Guard("measures_done", _measures_done, ("measures_unfinished",), "every measure is carried out"),
        Guard("signed_off", _signed_off, ("inspection_pending",), "an inspection passed after the latest report"),
        Guard(
            "co_signed",
            _co_signed,
            ("co_signer_is_actor", "co_signer_not_resident", "co_signers_required"),
            "co-signers are residents of the community; a resident raising it has enough of them (联名)",
            needs_command=True,
        ),
        Guard(
            "cycles_left", _cycles_left, ("cycle_limit",), "the re-consultation limit is not reached", bounds_loop=True
        ),
    ),
    effects={
        Trigger.START_SUPERVISION: _start_supervision,
        Trigger.INSPECT: _inspect,
        Trigger.REQUEST_RECONSULTATION: _request_reconsultation,
        Trigger.CLOSE: _close,
    },
    audience={
        Event.RECONSULTATION_REQUESTED: (INVITED, role_group(Role.COMMITTEE)),
        Event.FUNDS_RELEASED: (PROPOSER, role_group(Role.COMMITTEE)),  # 微幸福 (also when resumed)
        Event.CLOSED: (INVITED, PROPOSER, PUBLIC),
    },
)
