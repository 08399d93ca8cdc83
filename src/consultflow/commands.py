"""Commands: what a caller asks the procedure to do. Typed, validated when built, serialisable, so
one stream of commands can be executed, logged, replayed and simulated alike.

Building a command with bad input raises ``pydantic.ValidationError`` (re-exported as
``consultflow.ValidationError``) that names the field and the rule; whether the procedure allows
the command is the core's business and ends in a ``Refused``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints, TypeAdapter, model_validator

from .records import Id, Measure, Money, Record, Text, Title
from .vocabulary import Carrier, Channel, Form, Stance, Trigger, Verdict

__all__ = [
    "COMMANDS",
    "Close",
    "CloseRound",
    "Command",
    "ConsultationCommand",
    "Decide",
    "Escalate",
    "Inspect",
    "MarkOverdue",
    "Notify",
    "OpenRound",
    "Propose",
    "Publish",
    "RecordFeedback",
    "RecordOpinion",
    "Reject",
    "ReportProgress",
    "RequestReconsultation",
    "Resume",
    "ReviewLegality",
    "StartSupervision",
    "Withdraw",
    "command_from_dict",
]

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000)]


class Command(Record):
    """Base of all commands; ``trigger`` says which transition of the procedure it asks for."""

    trigger: ClassVar[Trigger]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with a ``"command"`` key naming the type, for logs and replays."""
        return {"command": self.trigger.value, **self.model_dump(mode="json")}


class Propose(Command):
    """提议: put a matter from the community's catalogue forward for consultation."""

    trigger: ClassVar[Trigger] = Trigger.PROPOSE
    community: Id
    topic: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}/[A-Za-z0-9\u4e00-\u9fff._-]{1,64}$")]
    title: Title
    description: Text = ""
    carrier: Carrier
    form: Form
    major: bool = False
    budget: Money | None = None
    id: Id | None = None  # the engine assigns one when absent


class ConsultationCommand(Command):
    """A command on an existing consultation, named by ``consultation`` (its id)."""

    consultation: Id


class Reject(ConsultationCommand):
    """The committee declines a proposal, with a reason the proposer can read."""

    trigger: ClassVar[Trigger] = Trigger.REJECT
    reason: Reason


class Withdraw(ConsultationCommand):
    """The proposer (or the committee) withdraws the matter before any decision."""

    trigger: ClassVar[Trigger] = Trigger.WITHDRAW
    reason: Reason


class Notify(ConsultationCommand):
    """告知: announce the matter, the meeting and who is invited; starts the notice period."""

    trigger: ClassVar[Trigger] = Trigger.NOTIFY
    meeting_at: AwareDatetime
    invite: tuple[Id, ...] = Field(default=(), max_length=10_000)
    chair: Id | None = None
    venue: Annotated[str, StringConstraints(max_length=200)] = ""
    channels: tuple[Channel, ...] = (Channel.NOTICE_BOARD,)

    @model_validator(mode="after")
    def _unique(self) -> Notify:
        if len(set(self.invite)) != len(self.invite):
            raise ValueError("invite lists someone twice; list each participant once")
        return self


class OpenRound(ConsultationCommand):
    """Open a round of consultation (round table, heart-to-heart, online)."""

    trigger: ClassVar[Trigger] = Trigger.OPEN_ROUND
    agenda: Text = ""
    attendees: tuple[Id, ...] = Field(default=(), max_length=10_000)


class RecordOpinion(ConsultationCommand):
    """The acting participant's opinion in the open round."""

    trigger: ClassVar[Trigger] = Trigger.RECORD_OPINION
    stance: Stance
    text: Text = ""


class CloseRound(ConsultationCommand):
    """Close the open round; the procedure tallies it (quorum, consensus rule)."""

    trigger: ClassVar[Trigger] = Trigger.CLOSE_ROUND
    summary: Text = ""


class Decide(ConsultationCommand):
    """决策. What a decision must hold depends on the carrier: measures for a decision consultation,
    a hearing record for a hearing, the parties of the agreement for a coordination, and whether
    the advice is adopted for an advisory one."""

    trigger: ClassVar[Trigger] = Trigger.DECIDE
    resolution: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
    measures: tuple[Measure, ...] = Field(default=(), max_length=200)
    advice_adopted: bool | None = None
    hearing_record: Text = ""
    agreement_parties: tuple[Id, ...] = Field(default=(), max_length=200)

    @model_validator(mode="after")
    def _unique_parties(self) -> Decide:
        if len(set(self.agreement_parties)) != len(self.agreement_parties):
            raise ValueError("agreement_parties lists a party twice")
        return self


class ReviewLegality(ConsultationCommand):
    """合法性审查 of the current decision. An unlawful verdict needs the legal basis and the
    correction (依法纠正); a note on legal education (法治宣传教育) is kept with it."""

    trigger: ClassVar[Trigger] = Trigger.REVIEW
    verdict: Verdict
    legal_basis: Text = ""
    correction: Text = ""
    education_note: Text = ""

    @model_validator(mode="after")
    def _unlawful_needs_basis(self) -> ReviewLegality:
        if self.verdict is Verdict.UNLAWFUL and not (self.legal_basis.strip() and self.correction.strip()):
            raise ValueError("an unlawful verdict needs legal_basis and correction (依法纠正)")
        return self


class Publish(ConsultationCommand):
    """公开制: make the outcome public on one or more channels."""

    trigger: ClassVar[Trigger] = Trigger.PUBLISH
    channels: tuple[Channel, ...] = Field(min_length=1)
    summary: Text = ""


class ReportProgress(ConsultationCommand):
    """Progress on one measure (0-based index) of the current decision, with money spent."""

    trigger: ClassVar[Trigger] = Trigger.REPORT_PROGRESS
    measure: int = Field(ge=0, le=199)
    percent: int = Field(ge=0, le=100)
    spent: Money = Decimal(0)
    note: Text = ""


class RecordFeedback(ConsultationCommand):
    """A resident's satisfaction with the outcome (1 to 5)."""

    trigger: ClassVar[Trigger] = Trigger.RECORD_FEEDBACK
    satisfaction: int = Field(ge=1, le=5)
    comment: Text = ""


class StartSupervision(ConsultationCommand):
    """监督: hand the published outcome over to supervision."""

    trigger: ClassVar[Trigger] = Trigger.START_SUPERVISION


class Inspect(ConsultationCommand):
    """An inspection by the inspection group or supervisors: passed, or findings."""

    trigger: ClassVar[Trigger] = Trigger.INSPECT
    passed: bool
    findings: Text = ""


class RequestReconsultation(ConsultationCommand):
    """再次协商: new problems found while carrying it out; a new cycle of consultation starts."""

    trigger: ClassVar[Trigger] = Trigger.REQUEST_RECONSULTATION
    problems: Reason


class Escalate(ConsultationCommand):
    """Hand the matter up to the sub-district (上级督办)."""

    trigger: ClassVar[Trigger] = Trigger.ESCALATE
    reason: Reason


class Resume(ConsultationCommand):
    """The sub-district sends an escalated matter back for a new cycle of consultation."""

    trigger: ClassVar[Trigger] = Trigger.RESUME
    instructions: Reason


class Close(ConsultationCommand):
    """Close the matter: after supervision signs off, or by the sub-district's ruling when escalated."""

    trigger: ClassVar[Trigger] = Trigger.CLOSE
    summary: Text = ""


class MarkOverdue(ConsultationCommand):
    """Issued by ``Engine.tick``: log the deadlines that passed (议而不决, 决而不施)."""

    trigger: ClassVar[Trigger] = Trigger.MARK_OVERDUE


COMMANDS: Mapping[str, type[Command]] = {
    c.trigger.value: c
    for c in (
        Propose,
        Reject,
        Withdraw,
        Notify,
        OpenRound,
        RecordOpinion,
        CloseRound,
        Decide,
        ReviewLegality,
        Publish,
        ReportProgress,
        RecordFeedback,
        StartSupervision,
        Inspect,
        RequestReconsultation,
        Escalate,
        Resume,
        Close,
        MarkOverdue,
    )
}


def command_from_dict(data: Mapping[str, Any]) -> Command:
    """Rebuild a command from ``Command.to_dict()`` output (validated)."""
    body = dict(data)
    name = body.pop("command", None)
    kind = COMMANDS.get(str(name))
    if kind is None:
        raise ValueError(f"unknown command {name!r}; expected one of {', '.join(COMMANDS)}")
    return TypeAdapter(kind).validate_python(body)
