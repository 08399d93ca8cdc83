"""The house: the public surface is pinned, the floors import nothing above them, and each step of
the procedure lives in one module of ``consultflow.steps``."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from pathlib import Path

import consultflow as cf
from consultflow.steps import COMMANDS, STEPS
from consultflow.vocabulary import Trigger

SRC = Path(__file__).resolve().parent.parent / "src" / "consultflow"

# Reviewed: changing this list is changing the public API (add to it on purpose, with docs).
PUBLIC = {
    "Attendance",
    # proposal intake (提议, issue 11)
    "AddTopic",
    "Appeal",
    "CoSign",
    "EditProposal",
    "Reconsider",
    "Submit",
    "Rejection",
    "CatalogueAddition",
    # the 微幸福 fund (issue 11): the ledger's position and statement, allocations, the 微 project types
    "FundAllocation",
    "FundConflict",
    "FundPosition",
    "FundStatement",
    "NoFundLedger",
    "ProjectType",
    # signed checkpoints (issue 8)
    "Checkpoint",
    "CheckpointFinding",
    "CheckpointReport",
    "sign_checkpoint",
    "verify_checkpoint",
    # what Engine.tick returns: the steps, and the records it could not handle (issue 8)
    "Tick",
    "TickProblem",
    "Ballot",
    "Body",
    "CallVote",
    "CastBallot",
    "CastVote",
    "CloseVote",
    "OwnerShare",
    "Vote",
    "VoteRule",
    "VoteTally",
    "SignIn",
    "Invite",
    "sub_district",
    "district",
    "TrustCallerRoles",
    "MemoryDirectory",
    "SQLiteDirectory",
    "PostgresDirectory",
    "Grant",
    "Directory",
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
    "Engine",
    "Escalate",
    "Ending",
    "Event",
    "Form",
    "Inspect",
    "Inspection",
    "IntegrityError",
    "InvalidInput",
    "LegalityReview",
    "LogEntry",
    "Measure",
    "Meeting",
    "Minutes",
    "MemoryStore",
    "NotFound",
    "Notice",
    "Notify",
    "OpenRound",
    "Opinion",
    "Parameters",
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
    # 承诺制 (pledges)
    "DelayPledge",
    "Pledge",
    "PledgeDelay",
    "PledgeStatus",
    "RecordFeedback",
    "RecordMinutes",
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
    "SQLiteStore",
    "Schedule",
    "ScheduleMeeting",
    "SimulatedClock",
    "MeetingFormat",
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
    "UnknownProcedure",
    "ValidationError",
    "Verdict",
    "Verification",
    "Withdraw",
    "apply",
    "canonical_json",
    "command_from_dict",
    "entry_hash",
    "overdue",
    "six_step",
    "verify",
    # the public export (issue 8.4)
    "ExportFinding",
    "ExportReport",
    "export_public",
    "pseudonym",
    "verify_export",
}


def test_the_public_surface_is_the_reviewed_list() -> None:
    assert set(cf.__all__) == PUBLIC
    assert len(cf.__all__) == len(set(cf.__all__)), "a name is listed twice"
    assert cf.__all__ == sorted(cf.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n))


def test_every_public_name_is_importable_and_internals_stay_out() -> None:
    for name in cf.__all__:
        assert getattr(cf, name) is not None, name
    for internal in ("MarkOverdue", "CLOCK_ACTOR", "Machine", "decide", "Rules", "TransitionRule", "Option"):
        assert internal not in cf.__all__, internal


def test_no_two_public_names_differ_only_by_case() -> None:
    folded: dict[str, str] = {}
    for name in cf.__all__:
        other = folded.setdefault(name.lower(), name)
        assert other == name, f"{other!r} and {name!r} differ only by case"


def test_the_version_is_the_packages() -> None:
    assert cf.__version__ == importlib.metadata.version("consultflow")


# ---- floors --------------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """The consultflow modules a file imports, as absolute names (``consultflow.core``)."""
    package = ".".join(("consultflow", *path.relative_to(SRC).parent.parts))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("consultflow"))
    return found


def _reaches(imports: set[str], module: str) -> bool:
    return any(i == module or i.startswith(module + ".") for i in imports)


# floor -> the modules it must never import (nothing imports upward)
FLOORS = {
    "storage": ("consultflow.core", "consultflow.procedure", "consultflow.steps", "consultflow.engine"),
    "steps": ("consultflow.core", "consultflow.procedure", "consultflow.engine", "consultflow.storage"),
    "procedure": ("consultflow.core", "consultflow.engine", "consultflow.storage"),
    # the directory is a plug point beside the stores: it answers who holds which role, nothing more
    "directory": ("consultflow.core", "consultflow.procedure", "consultflow.steps", "consultflow.engine"),
    # delivering notices works from the store's outbox: it needs neither the core nor the engine
    "delivery": ("consultflow.core", "consultflow.engine", "consultflow.demo", "consultflow.testing"),
    "delivery/channels": ("consultflow.core", "consultflow.engine", "consultflow.demo", "consultflow.testing"),
}
RECORDS_FLOOR = (
    *("step", "log", "notices", "records", "commands", "refusals", "catalogue", "parameters", "context", "funds"),
    *("deadlines", "vocabulary", "roles", "errors", "clock", "i18n", "limits", "files", "canonical"),
    "privacy",
    "consultation_day",  # the rota and the consultation day's session: pure, over records and parameters
)


def test_storage_imports_neither_the_core_nor_the_procedure_nor_the_engine() -> None:
    for floor, forbidden in FLOORS.items():
        for path in sorted((SRC / floor).glob("*.py")):
            imports = _imports(path)
            for module in forbidden:
                assert not _reaches(imports, module), f"{path.relative_to(SRC)} imports {module}"


def test_the_records_floor_imports_nothing_above_it() -> None:
    above = (
        *("consultflow.core", "consultflow.procedure", "consultflow.steps", "consultflow.engine"),
        *("consultflow.storage", "consultflow.demo", "consultflow.cli", "consultflow.testing"),
    )
    for name in RECORDS_FLOOR:
        imports = _imports(SRC / f"{name}.py")
        for module in above:
            assert not _reaches(imports, module), f"{name}.py imports {module}"


def test_the_core_does_not_import_the_engine_or_the_stores() -> None:
    imports = _imports(SRC / "core.py")
    for module in ("consultflow.engine", "consultflow.storage", "consultflow.demo", "consultflow.cli"):
        assert not _reaches(imports, module)


# ---- one step, one place --------------------------------------------------------------------------------

SEED_STEPS = ("propose", "notify", "consult", "decide", "review", "feedback", "supervise")


def test_the_tree_shows_the_six_steps_and_the_review() -> None:
    modules = {p.stem for p in (SRC / "steps").glob("*.py")}
    assert set(SEED_STEPS) <= modules
    assert {"escalate", "overdue"} <= modules
    # 表决: a body decides (in the decide step of the seed); 承诺制: pledges (in its feedback step);
    # intake: 提议's drafts, edits, co-signers, appeals; 会议: meetings
    extra = ("vote", "intake", "pledge", "escalate", "overdue", "meetings")
    assert set(extra) <= modules
    declared = {importlib.import_module(f"consultflow.steps.{m}").STEP for m in (*SEED_STEPS, *extra)}
    assert declared == set(STEPS)


def test_each_command_lives_in_the_module_of_its_step() -> None:
    for step in STEPS:
        module = {c.__module__ for c in step.commands}
        assert len(module) == 1, step.name
        for transition in step.transitions:
            # every transition a step declares is fired by one of its own commands
            assert COMMANDS[transition.trigger.value] in step.commands, (step.name, transition.trigger)
        for trigger in step.effects:
            assert COMMANDS[trigger.value] in step.commands, (step.name, trigger)
    assert set(COMMANDS) == {t.value for t in Trigger}


def test_the_default_procedure_is_the_steps_rows_in_order() -> None:
    rows = [t for s in STEPS for t in s.transitions]
    assert list(cf.six_step().transitions) == rows


def test_every_guard_and_route_a_step_uses_is_declared_by_a_step() -> None:
    guards = {g.name for s in STEPS for g in s.guards}
    routes = {r.name for s in STEPS for r in s.routes}
    used_guards = {g for s in STEPS for t in s.transitions for g in t.guards}
    used_routes = {r for s in STEPS for t in s.transitions for r in t.routes}
    assert used_guards == guards, "a guard is declared but never used, or used but not declared"
    assert used_routes == routes
