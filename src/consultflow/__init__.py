"""consultflow: community consultation (社区协商) as software that cannot be bent.

Typed records, the six-step procedure (提议→告知→协商→决策→反馈→监督) with a legality review
before any decision takes effect, re-consultation loops, deadlines, a hash-chained log and
pluggable storage. Everything public is importable from here; submodules are implementation.
"""

from pydantic import ValidationError

from .catalogue import DEFAULT_CATEGORIES, Catalogue, Category, TopicItem
from .clock import Clock, SimulatedClock, SystemClock
from .commands import (
    Close,
    CloseRound,
    Command,
    ConsultationCommand,
    Decide,
    Escalate,
    Inspect,
    MarkOverdue,
    Notify,
    OpenRound,
    Propose,
    Publish,
    RecordFeedback,
    RecordOpinion,
    Reject,
    ReportProgress,
    RequestReconsultation,
    Resume,
    ReviewLegality,
    StartSupervision,
    Withdraw,
    command_from_dict,
)
from .context import Context
from .core import Step, decide
from .deadlines import Deadline, overdue
from .engine import CLOCK_ACTOR, Engine, Permission
from .errors import (
    Conflict,
    ConsultflowError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ProcedureDefinitionError,
    StoreUnavailable,
    UnknownProcedure,
)
from .log import LogEntry, Verification, canonical_json, entry_hash, verify
from .notices import Notice
from .procedure import Procedure, TransitionRule, six_step
from .records import (
    SCHEMA_VERSION,
    Community,
    Consultation,
    Decision,
    Inspection,
    LegalityReview,
    Measure,
    Opinion,
    Participant,
    ProgressReport,
    Publication,
    ResidentFeedback,
    Round,
    Schedule,
    Tally,
)
from .refusals import Refused
from .roles import STAKEHOLDERS, THINK_TANK, Actor, Role
from .rules import ConsensusRule, Rules
from .storage import MemoryStore, PostgresStore, Query, SQLiteStore, Store
from .vocabulary import Carrier, Channel, Event, Form, Stance, State, Trigger, Verdict

__version__ = "0.1.0"

__all__ = [
    "CLOCK_ACTOR",
    "DEFAULT_CATEGORIES",
    "SCHEMA_VERSION",
    "STAKEHOLDERS",
    "THINK_TANK",
    "Actor",
    "Carrier",
    "Catalogue",
    "Category",
    "Channel",
    "Clock",
    "Close",
    "CloseRound",
    "Command",
    "Community",
    "Conflict",
    "ConsensusRule",
    "Consultation",
    "ConsultationCommand",
    "ConsultflowError",
    "Context",
    "Deadline",
    "Decide",
    "Decision",
    "Engine",
    "Escalate",
    "Event",
    "Form",
    "Inspect",
    "Inspection",
    "IntegrityError",
    "InvalidInput",
    "LegalityReview",
    "LogEntry",
    "MarkOverdue",
    "Measure",
    "MemoryStore",
    "NotFound",
    "Notice",
    "Notify",
    "OpenRound",
    "Opinion",
    "Participant",
    "Permission",
    "PostgresStore",
    "Procedure",
    "ProcedureDefinitionError",
    "ProgressReport",
    "Propose",
    "Publication",
    "Publish",
    "Query",
    "RecordFeedback",
    "RecordOpinion",
    "Refused",
    "Reject",
    "ReportProgress",
    "RequestReconsultation",
    "ResidentFeedback",
    "Resume",
    "ReviewLegality",
    "Role",
    "Round",
    "Rules",
    "SQLiteStore",
    "Schedule",
    "SimulatedClock",
    "Stance",
    "StartSupervision",
    "State",
    "Step",
    "Store",
    "StoreUnavailable",
    "SystemClock",
    "Tally",
    "TopicItem",
    "TransitionRule",
    "Trigger",
    "UnknownProcedure",
    "ValidationError",
    "Verdict",
    "Verification",
    "Withdraw",
    "canonical_json",
    "command_from_dict",
    "decide",
    "entry_hash",
    "overdue",
    "six_step",
    "verify",
]
