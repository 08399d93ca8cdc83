"""The procedure's steps, one module per step of the seed (鼓楼区“六化”社区协商):

=================  ==========================================================================
``propose``        提议  Propose, Reject, Withdraw; topic in the catalogue, budget cap
``intake``         提议受理  Submit, EditProposal, CoSign, AddTopic, Appeal, Reconsider; drafts, edits,
                   co-signers, the "other" item made a catalogue entry, the appeal of a rejection
``notify``         告知  Notify, Invite; notice period, the consultation day's chair and date
``consult``        协商  OpenRound, RecordOpinion, CloseRound; the tally, quorum, consensus, rounds
``decide``         决策  Decide; residents heard, what each carrier must produce
``vote``           表决  CallVote, CastVote, CloseVote; a body decides by its majority rule
``review``         合法性审查 / 依法纠正  ReviewLegality; lawful and unlawful routes, independence
``feedback``       反馈  Publish, ReportProgress, RecordFeedback
``pledge``         承诺制  DelayPledge; each published measure a pledge, its status, its delays
``supervise``      监督  StartSupervision, Inspect, RequestReconsultation (再次协商), Close
``escalate``       提请街道督办  Escalate, Resume
``overdue``        议而不决 / 决而不施  MarkOverdue (the clock's step)
``meetings``       会议  ScheduleMeeting, RecordMinutes; each meeting's notice, 会议纪要
=================  ==========================================================================

Each module declares a ``STEP`` (``base.StepDefinition``): its commands, transitions, guards,
routes, effects and audience. This package assembles them into the registries the procedure and
the core read; a name declared twice is an error at import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError as PydanticValidationError

from ..commands import Command
from ..errors import InvalidInput
from ..notices import expand
from ..records import Consultation, invalid_fields
from ..vocabulary import Event, Trigger
from . import (
    consult,
    decide,
    escalate,
    feedback,
    intake,
    meetings,
    notify,
    overdue,
    pledge,
    propose,
    review,
    supervise,
    vote,
)
from .base import NEW, EffectFn, Guard, Route, StepDefinition, Transition
from .consult import CloseRound, OpenRound, RecordOpinion, SignIn, tally
from .decide import Decide
from .escalate import Escalate, Resume
from .feedback import Publish, RecordFeedback, ReportProgress
from .intake import AddTopic, Appeal, CoSign, EditProposal, Reconsider, Submit
from .meetings import RecordMinutes, ScheduleMeeting
from .notify import Invite, Notify
from .overdue import MarkOverdue
from .pledge import DelayPledge
from .propose import Propose, Reject, Withdraw
from .review import ReviewLegality
from .supervise import Close, Inspect, RequestReconsultation, StartSupervision
from .vote import CallVote, CastVote, CloseVote

__all__ = [
    "AUDIENCE",
    "COMMANDS",
    "EFFECTS",
    "GUARDS",
    "NEW",
    "ROUTES",
    "STEPS",
    "AddTopic",
    "Appeal",
    "CallVote",
    "CastVote",
    "Close",
    "CloseRound",
    "CloseVote",
    "CoSign",
    "Decide",
    "DelayPledge",
    "EditProposal",
    "Escalate",
    "Guard",
    "Inspect",
    "Invite",
    "MarkOverdue",
    "Notify",
    "OpenRound",
    "Propose",
    "Publish",
    "Reconsider",
    "RecordFeedback",
    "RecordMinutes",
    "RecordOpinion",
    "Reject",
    "ReportProgress",
    "RequestReconsultation",
    "Resume",
    "ReviewLegality",
    "Route",
    "ScheduleMeeting",
    "SignIn",
    "StartSupervision",
    "StepDefinition",
    "Submit",
    "Transition",
    "Withdraw",
    "audience_for",
    "command_from_dict",
    "default_transitions",
    "tally",
]

#: The steps in the seed's order; the default procedure's transitions come in this order.
STEPS: tuple[StepDefinition, ...] = (
    propose.STEP,
    intake.STEP,
    notify.STEP,
    consult.STEP,
    decide.STEP,
    vote.STEP,
    review.STEP,
    feedback.STEP,
    pledge.STEP,  # 承诺制
    supervise.STEP,
    escalate.STEP,
    overdue.STEP,
    meetings.STEP,
)

K = TypeVar("K")
V = TypeVar("V")


def _collect(what: str, pairs: Iterable[tuple[str, K, V]]) -> dict[K, V]:
    out: dict[K, V] = {}
    owner: dict[K, str] = {}
    for step, key, value in pairs:
        if key in out:
            raise RuntimeError(f"{what} {key!r} is declared by both {owner[key]!r} and {step!r}")
        out[key] = value
        owner[key] = step
    return out


COMMANDS: Mapping[str, type[Command]] = _collect(
    "command", ((s.name, c.trigger.value, c) for s in STEPS for c in s.commands)
)
GUARDS: Mapping[str, Guard] = _collect("guard", ((s.name, g.name, g) for s in STEPS for g in s.guards))
ROUTES: Mapping[str, Route] = _collect("route", ((s.name, r.name, r) for s in STEPS for r in s.routes))
EFFECTS: Mapping[str, EffectFn] = _collect(
    "effect", ((s.name, t.value, fn) for s in STEPS for t, fn in s.effects.items())
)
AUDIENCE: Mapping[Event, tuple[str, ...]] = _collect(
    "audience of event", ((s.name, e, groups) for s in STEPS for e, groups in s.audience.items())
)

_missing = [t.value for t in Trigger if t.value not in COMMANDS or t.value not in EFFECTS]
if _missing:  # pragma: no cover - a new trigger needs its step
    raise RuntimeError(f"triggers without a command or an effect: {_missing}")


def default_transitions() -> tuple[Transition, ...]:
    """The six-step procedure of the source (提议→告知→协商→决策→反馈→监督), with the legality
    review between decision and effect and both re-consultation loops: every step's rows, in order."""
    return tuple(t for s in STEPS for t in s.transitions)


def audience_for(event: Event, record: Consultation, data: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Who hears of ``event`` on ``record`` (and, for a group the event itself names, such as a
    pledge's owner, its ``data``); empty when nobody needs to."""
    groups = AUDIENCE.get(event)
    return expand(groups, record, data) if groups else ()


def command_from_dict(data: Mapping[str, Any]) -> Command:
    """Rebuild a command from ``Command.to_dict()`` output (validated).

    An unknown command or a non-mapping is ``InvalidInput``; bad fields are ``ValidationError``.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"a command is a mapping with a 'command' key, not {type(data).__name__}",
            code="not_a_command",
            zh=f"命令应为带有command键的对象，而不是{type(data).__name__}",
        )
    body = dict(data)
    name = body.pop("command", None)
    kind = COMMANDS.get(name) if isinstance(name, str) and name != Trigger.MARK_OVERDUE else None
    if kind is None:
        known = [n for n in COMMANDS if n != Trigger.MARK_OVERDUE]  # the clock's own is not a caller's
        raise InvalidInput(
            f"unknown command {name!r}; expected one of {', '.join(known)}",
            code="unknown_command",
            zh=f"未知的命令{name!r}；可用的命令：{'、'.join(known)}",
        )
    try:
        return kind.model_validate(body)
    except PydanticValidationError as exc:
        raise invalid_fields(kind.__name__, exc) from None
