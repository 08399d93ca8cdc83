"""consultflow: community consultation (社区协商) as software that cannot be bent.

Typed records, the six-step procedure (提议→告知→协商→决策→反馈→监督) with a legality review
before any decision takes effect, re-consultation loops, deadlines, a hash-chained log and
pluggable storage. Everything public is importable from here and listed in ``__all__``; the
submodules are the house it lives in (see docs/architecture.md).
"""

from .catalogue import DEFAULT_CATEGORIES, Catalogue, Category, TopicItem
from .clock import Clock, SimulatedClock, SystemClock
from .commands import Command, ConsultationCommand
from .context import Context
from .core import apply
from .deadlines import Deadline, overdue
from .directory import (
    Directory,
    Grant,
    MemoryDirectory,
    PostgresDirectory,
    SQLiteDirectory,
    TrustCallerRoles,
    district,
    sub_district,
)
from .engine import Engine, Permission
from .errors import (
    Conflict,
    ConsultflowError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ProcedureDefinitionError,
    StoreUnavailable,
    UnknownProcedure,
    ValidationError,
)
from .log import LogEntry, Verification, canonical_json, entry_hash, verify
from .notices import Notice
from .parameters import ConsensusRule, Parameters
from .procedure import Procedure, Transition, six_step
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
from .step import Step
from .steps import (
    Close,
    CloseRound,
    Decide,
    Escalate,
    Inspect,
    Invite,
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
    SignIn,
    StartSupervision,
    Withdraw,
    command_from_dict,
)
from .storage import MemoryStore, PostgresStore, Query, SQLiteStore, Store
from .vocabulary import FINAL_STATES, Carrier, Channel, Event, Form, Stance, State, Trigger, Verdict

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CATEGORIES",
    "FINAL_STATES",
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
    "Directory",
    "Engine",
    "Escalate",
    "Event",
    "Form",
    "Grant",
    "Inspect",
    "Inspection",
    "IntegrityError",
    "InvalidInput",
    "Invite",
    "LegalityReview",
    "LogEntry",
    "Measure",
    "MemoryDirectory",
    "MemoryStore",
    "NotFound",
    "Notice",
    "Notify",
    "OpenRound",
    "Opinion",
    "Parameters",
    "Participant",
    "Permission",
    "PostgresDirectory",
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
    "SQLiteDirectory",
    "SQLiteStore",
    "Schedule",
    "SignIn",
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
    "Transition",
    "Trigger",
    "TrustCallerRoles",
    "UnknownProcedure",
    "ValidationError",
    "Verdict",
    "Verification",
    "Withdraw",
    "apply",
    "canonical_json",
    "command_from_dict",
    "district",
    "entry_hash",
    "overdue",
    "six_step",
    "sub_district",
    "verify",
]
