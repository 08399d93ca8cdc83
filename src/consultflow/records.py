"""The records: everything that crosses the API or is stored (pydantic v2, frozen, validated).

A consultation is plain data: its state is a field, never a state machine object; the procedure
reads it and returns a new record. Every stored record carries ``schema_version``. Sub-records
(rounds, decisions, reviews, ...) are tuples on the consultation, so one record is the whole case
file and the log is its proof.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from .errors import InvalidInput, ValidationError
from .limits import time_problem
from .roles import ID_PATTERN, Role, person_id
from .vocabulary import (
    FINAL_STATES,
    Ballot,
    Body,
    Carrier,
    Channel,
    Ending,
    Form,
    MeetingFormat,
    PledgeStatus,
    ProjectType,
    Stance,
    State,
    Verdict,
)

__all__ = [
    "SCHEMA_VERSION",
    "CastBallot",
    "CatalogueAddition",
    "Community",
    "Consultation",
    "Decision",
    "FundAllocation",
    "Id",
    "InputTime",
    "Inspection",
    "LegalityReview",
    "Measure",
    "Meeting",
    "Minutes",
    "Money",
    "Opinion",
    "OwnerShare",
    "Participant",
    "PersonId",
    "Photo",
    "Pledge",
    "PledgeDelay",
    "ProgressReport",
    "Publication",
    "Record",
    "Rejection",
    "ResidentFeedback",
    "Round",
    "Schedule",
    "Tally",
    "Topic",
    "Vote",
    "VoteTally",
    "invalid_fields",
]

SCHEMA_VERSION = 2  # 2: log entries carry input and record_digest, times in canonical UTC

#: A topic names a catalogue item as ``<category>/<item>`` (一级目录/二级目录). The one definition;
#: the catalogue, commands and records use these patterns.
CATEGORY_PATTERN = r"[a-z0-9-]{1,64}"
ITEM_PATTERN = r"[A-Za-z0-9\u4e00-\u9fff._-]{1,64}"
TOPIC_PATTERN = f"{CATEGORY_PATTERN}/{ITEM_PATTERN}"


def _printable_id(value: str) -> str:
    if not value.isprintable():
        raise PydanticCustomError(
            "id_invisible", "an id holds only printable characters: no control, format or bidi characters"
        )
    return value


#: An id (a consultation's, a community's, a party's): ``ID_PATTERN``, and printable throughout (no
#: C1 control, zero-width, bidi override or other invisible character), so it reads the same to all.
Id = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$"), AfterValidator(_printable_id)]


#: A person named in a command: normalised by ``roles.person_id`` (NFKC, case-folded, nothing invisible).
def _person(value: object) -> str:
    try:
        return person_id(value)
    except InvalidInput as exc:
        reason = "含有不可见字符" if "invisible" in str(exc) else "格式不正确"
        raise PydanticCustomError("person_id", str(exc), {"reason": reason}) from None


PersonId = Annotated[str, BeforeValidator(_person)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


def _utc(value: datetime) -> datetime:
    """A time whose UTC offset has seconds (some historical zones) is kept in UTC: such an offset
    survives no JSON round trip. Others keep their offset, for display; what is hashed is UTC either
    way (``consultflow.canonical``)."""
    offset = value.utcoffset()
    if offset is None or not (offset.seconds % 60 or offset.microseconds):
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("time_range", "time out of range once converted to UTC") from None


Time = Annotated[AwareDatetime, AfterValidator(_utc)]


def _within_limits(value: datetime) -> datetime:
    problem = time_problem(value)
    if problem is not None:
        raise PydanticCustomError("time_out_of_range", problem)
    return value


#: A time a caller gives (a meeting, a measure's due date): aware and within ``limits`` (1970 to 9000
#: UTC), so that deadlines computed from it never overflow; kept like any ``Time``.
InputTime = Annotated[AwareDatetime, AfterValidator(_within_limits), AfterValidator(_utc)]

Topic = Annotated[str, StringConstraints(pattern=f"^{TOPIC_PATTERN}$")]


class Record(BaseModel):
    """Base of every record: frozen, strict about unknown fields, JSON-serialisable.

    Built with bad fields, a record raises ``consultflow.ValidationError`` (a ``ConsultflowError``
    that says what is wrong in English and Chinese), never pydantic's own error.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False, ser_json_inf_nan="null")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise invalid_fields(type(self).__name__, exc) from None

    # Only a direct call comes through here: marked as pydantic's own ``__init__`` (as pydantic's
    # RootModel does), validation from data (``model_validate``, stores' loads) keeps its fast path.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """pydantic's ``model_validate``, raising the library's ``ValidationError``."""
        try:
            return super().model_validate(obj, **kwargs)
        except PydanticValidationError as exc:
            raise invalid_fields(cls.__name__, exc) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """pydantic's ``model_validate_json`` (what a web app or a store reads), raising the
        library's ``ValidationError``."""
        try:
            return super().model_validate_json(json_data, **kwargs)
        except PydanticValidationError as exc:
            raise invalid_fields(cls.__name__, exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except PydanticValidationError as exc:  # a frozen record: build a new one instead
            raise invalid_fields(type(self).__name__, exc) from None


def _where(loc: tuple[int | str, ...]) -> str:
    """A field's place as a person reads it: items of a list are numbered from 1 (``measures#1.due``)."""
    out = ""
    for part in loc:
        out += f"#{part + 1}" if isinstance(part, int) else ("." if out else "") + part
    return out or "-"


def invalid_fields(model: str, exc: PydanticValidationError) -> ValidationError:
    """The library's ``ValidationError`` for pydantic's: one problem per field, with its details."""
    errors = exc.errors(include_url=False)
    problems = [(_where(e["loc"]), e["type"], e["msg"]) for e in errors]
    return ValidationError(model, problems, [dict(e) for e in errors])


_set = object.__setattr__
R = TypeVar("R", bound=Record)
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}


def _all_fields(cls: type[BaseModel]) -> set[str]:
    fields = _ALL_FIELDS.get(cls)
    if fields is None:
        fields = _ALL_FIELDS[cls] = set(cls.model_fields)
    return fields


def make(cls: type[R], values: dict[str, Any]) -> R:
    """Build a record from values the core already validated, without validating again.

    The hot path's constructor: ``values`` must hold every field (defaults included). The field
    set is shared by all records of a class: pydantic copies it before changing it, and frozen
    records never change it, so sharing costs nothing and saves memory on every record.
    """
    m = cls.__new__(cls)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", _ALL_FIELDS.get(cls) or _all_fields(cls))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


def evolve(record: R, update: dict[str, Any]) -> R:
    """A copy of ``record`` with ``update`` applied, trusted like ``make``."""
    values = record.__dict__.copy()
    values.update(update)
    return make(type(record), values)


class Community(Record):
    """A community (社区) and the sub-district (街道) it belongs to."""

    schema_version: int = SCHEMA_VERSION
    id: Id
    name: Title
    sub_district: Title
    district: str = ""


class Participant(Record):
    """A person or body taking part. Contact data is personal: it never enters the log or a public
    export; the log names participants by id only."""

    schema_version: int = SCHEMA_VERSION
    id: Id
    name: Title
    community: Id
    roles: frozenset[Role] = frozenset()
    organisation: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=40)
    id_number: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=400)

    PERSONAL: ClassVar[frozenset[str]] = frozenset({"phone", "id_number", "address"})

    def public(self) -> dict[str, object]:
        """This participant without personal data (phone, ID number, address)."""
        return self.model_dump(mode="json", exclude=set(self.PERSONAL))


class Opinion(Record):
    """An opinion given in a round: support, oppose, abstain or amend, with text."""

    participant: Id
    role: Role
    stance: Stance
    text: Text = ""
    at: Time
    recorded_by: Id | None = None  # the clerk who recorded it for the participant (代为记录), if any


class Tally(Record):
    """How a round came out, kept with the round so a refusal can quote it (quorum 12 of 20)."""

    attended: int
    required: int
    support: int
    oppose: int
    abstain: int
    amend: int
    rule: str
    quorum_met: bool
    consensus: bool


class Round(Record):
    """One round of consultation (一轮协商): who attended, what they said, how it ended.

    ``format`` says how it met (圆桌会, hearing, online, ...) when the convenor said so; ``online``
    lists the attendees who took part online (the others were there in person); ``abandoned``
    says it was closed unfinished because the matter left consultation."""

    number: int = Field(ge=1)
    cycle: int = Field(ge=1)
    opened_at: Time
    opened_by: Id
    agenda: Text = ""
    attendees: tuple[Id, ...] = ()
    resident_attended: bool = False
    opinions: tuple[Opinion, ...] = ()
    closed_at: Time | None = None
    summary: Text = ""
    tally: Tally | None = None
    format: MeetingFormat | None = None
    online: tuple[Id, ...] = ()
    abandoned: bool = False
    meeting: int | None = Field(default=None, ge=1)  # the meeting it was held at (``Consultation.meetings``)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class Minutes(Record):
    """The minutes of a held meeting (会议纪要): the text, its SHA-256 (logged, so a copy shown later
    can be checked against the log), who recorded them and when. ``correction`` marks a corrected
    version that replaces the one before it (both stay on the record)."""

    text: Text
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    recorded_by: Id
    at: Time
    correction: bool = False


class Meeting(Record):
    """A meeting of a consultation (会议), announced with its own notice (告知): meeting 1 by
    ``Notify``, each later one by ``ScheduleMeeting``. ``at`` is when it meets - for an online
    meeting (云协商) when it opens, ``closes_at`` when opinions stop arriving. ``venue`` is the place,
    or the online channel (a WeChat group, an app). A round opens at it (``round``); the round's
    sign-in is the meeting's attendance. ``consultation_day`` marks a session of the community's
    consultation day (协商日), chaired by ``chair``. ``minutes`` keeps the minutes and any corrections,
    the last one current."""

    number: int = Field(ge=1)
    cycle: int = Field(ge=1)
    format: MeetingFormat | None = None
    venue: str = Field(default="", max_length=200)
    agenda: Text = ""
    at: Time
    closes_at: Time | None = None
    notified_at: Time
    notice_ends: Time
    scheduled_by: Id
    consultation_day: bool = False
    chair: Id | None = None
    round: int | None = Field(default=None, ge=1)
    minutes: tuple[Minutes, ...] = ()

    @property
    def held(self) -> bool:
        return self.round is not None

    @property
    def current_minutes(self) -> Minutes | None:
        return self.minutes[-1] if self.minutes else None


class Measure(Record):
    """A measure of a binding decision: what, who answers for it, by when, with how much money."""

    title: Title
    owner: PersonId
    due: InputTime
    budget: Money = Decimal(0)
    category: ProjectType | None = None  # the 微 project type (微路网, 微绿化, ...), if the committee says


class Decision(Record):
    """A decision (决策). What it must contain depends on the carrier."""

    number: int = Field(ge=1)
    cycle: int = Field(ge=1)
    round: int = Field(ge=1)
    resolution: Text
    decided_by: Id
    decided_at: Time
    measures: tuple[Measure, ...] = ()
    advice_adopted: bool | None = None
    hearing_record: Text = ""
    agreement_parties: tuple[Id, ...] = ()
    body: Body = Body.COMMITTEE  # who took it: the committee, or a body by its vote
    vote: int | None = Field(default=None, ge=1)  # the vote that carried it (``Consultation.votes``)

    @property
    def budget(self) -> Decimal:
        return sum((m.budget for m in self.measures), Decimal(0))


class CastBallot(Record):
    """One member's ballot in a body's vote: their own, or recorded by a clerk (代为记录). An owner
    votes with the floor area of their property (专有部分面积, square metres)."""

    voter: Id
    ballot: Ballot
    area: Money | None = None
    at: Time
    recorded_by: Id | None = None


class OwnerShare(Record):
    """One owner in the property register (业主名册) an owners' meeting votes by: their floor area
    (专有部分面积, square metres)."""

    owner: PersonId
    area: Money


class VoteTally(Record):
    """A vote counted by its body's rule (``VoteRule``): who took part against the quorum, the
    ballots against the majority. Areas are counted only for an owners' meeting."""

    members: int
    participated: int
    yes: int
    no: int
    abstain: int
    area_total: Decimal | None = None
    area_participated: Decimal | None = None
    area_yes: Decimal | None = None
    area_no: Decimal | None = None
    area_abstain: Decimal | None = None
    majority: str
    quorum: str
    abstentions: str
    quorum_met: bool
    carried: bool


class Vote(Record):
    """A recorded vote of a body (表决) on a decision put to it: the decision's content as called,
    the register's figures (members, and the owners' total floor area), the ballots, the tally."""

    number: int = Field(ge=1)
    cycle: int = Field(ge=1)
    round: int = Field(ge=1)  # the consultation round the vote rests on
    body: Body
    called_by: Id
    called_at: Time
    members: int = Field(ge=1)
    area_total: Money | None = None
    owners: tuple[OwnerShare, ...] = ()  # an owners' meeting: the property register as the vote was called
    resolution: Text
    measures: tuple[Measure, ...] = ()
    advice_adopted: bool | None = None
    hearing_record: Text = ""
    agreement_parties: tuple[Id, ...] = ()
    ballots: tuple[CastBallot, ...] = ()
    closed_at: Time | None = None
    tally: VoteTally | None = None
    lapsed: bool = False  # carried, but a measure's due date had passed at the close: decided nothing

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class LegalityReview(Record):
    """The legality review (合法性审查) of a decision; an unlawful verdict is corrected according to
    law (依法纠正) and the matter goes back to consultation."""

    decision: int = Field(ge=1)
    reviewer: Id
    verdict: Verdict
    legal_basis: Text = ""
    correction: Text = ""
    education_note: Text = ""  # 法治宣传教育
    at: Time


class Publication(Record):
    """An outcome made public (公开制): where, what, when."""

    decision: int = Field(ge=1)
    channels: tuple[Channel, ...]
    summary: Text = ""
    by: Id
    at: Time


# ---- pledges (承诺制): photos of the work, a pledge and its delays --------------------------------------
#: At most this many photos on one progress report (their hashes: the photos themselves stay with the app).
MAX_PHOTOS = 20


def _photo_hash(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise PydanticCustomError("photo_hash", "a photo is named by the SHA-256 of its bytes: 64 hexadecimal digits")
    return value.lower()


#: A photo of the work as the log holds it: the SHA-256 (hex, lower case) of the file's bytes, so anyone
#: holding the photo can check it is the one reported, and no image enters the log.
Photo = Annotated[
    str,
    BeforeValidator(_photo_hash),
    WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "SHA-256 of the photo"}),
]


def _distinct_photos(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise PydanticCustomError("photos_duplicate", "the same photo is listed twice; list each once")
    return value


#: The photos of one report: distinct, at most ``MAX_PHOTOS``.
Photos = Annotated[tuple[Photo, ...], Field(max_length=MAX_PHOTOS), AfterValidator(_distinct_photos)]


class PledgeDelay(Record):
    """A pledge's due date moved by the committee (延期), with the reason residents are told. The
    decision is not rewritten: the pledge keeps what was decided and how it moved."""

    from_due: Time
    to_due: Time
    reason: Text
    by: Id
    at: Time


class Pledge(Record):
    """承诺制: a measure of a decision in force, made public as a pledge - who answers for it
    (``owner``), what (``title``), by when (``due``, moved only by a logged delay; ``pledged_due`` is
    the decision's), with how much (``budget``) - which residents then hold its owner to. Kept on the
    consultation with its status; the roadmap (成果运用路线图) is built from these."""

    decision: int = Field(ge=1)
    measure: int = Field(ge=0)
    title: Title
    owner: Id
    budget: Money = Decimal(0)
    pledged_due: Time
    due: Time
    published_at: Time
    status: PledgeStatus = PledgeStatus.PLEDGED
    delays: tuple[PledgeDelay, ...] = ()


class ProgressReport(Record):
    """Progress on one measure of the current decision, with money spent (微幸福 funds)."""

    decision: int = Field(ge=1)
    measure: int = Field(ge=0)
    seq: int = Field(ge=1)  # the log entry that reported it: the order that counts
    percent: int = Field(ge=0, le=100)
    spent: Money = Decimal(0)
    note: Text = ""
    by: Id
    at: Time
    photos: Photos = ()  # 承诺制: the photos' SHA-256 hashes
    justification: Text = ""  # why the measure spent more than its budget, where the variant allows it


class FundAllocation(Record):
    """A decision in force takes its budget from the community's yearly pool (微幸福便民服务公益金):
    the year it took effect in (in the procedure's time zone), the amount, the pool and what the
    ledger had allocated before, and the allocation's place in that year's ledger (``seq``)."""

    decision: int = Field(ge=1)
    year: int = Field(ge=1970, le=9000)
    amount: Money
    pool: Money
    before: Money
    seq: int = Field(ge=1)
    at: Time
    released: Money | None = None  # what went back to the pool when the matter was consulted again


class ResidentFeedback(Record):
    """A resident's feedback on the outcome (反馈): satisfaction 1 to 5, one per resident and decision."""

    decision: int = Field(ge=1)
    participant: Id
    satisfaction: int = Field(ge=1, le=5)
    comment: Text = ""
    at: Time


class Inspection(Record):
    """A supervision inspection (督查): passed, or the findings that keep it open."""

    cycle: int = Field(ge=1)
    seq: int = Field(ge=1)  # the log entry that recorded it
    inspector: Id
    passed: bool
    findings: Text = ""
    at: Time


class Schedule(Record):
    """The dates set by notice (告知): when it was given, when the notice period ends, the meeting."""

    notified_at: Time
    notice_ends: Time
    meeting_at: Time


# ---- proposal intake (提议): a rejection and its appeal, a topic added to the catalogue --------------
class Rejection(Record):
    """不予受理 and what became of it: who rejected the proposal and why; the time to appeal (申请复核,
    ``None`` where the procedure allows none); the proposer's grounds; the reconsidering body's ruling
    (``upheld``: the rejection stands; ``False``: overturned, the proposal is back before the committee)."""

    at: Time
    by: Id
    reason: str
    appeal_by: Time | None = None
    appealed_at: Time | None = None
    grounds: str = ""
    reconsidered_at: Time | None = None
    reconsidered_by: Id | None = None
    upheld: bool | None = None
    ruling: str = ""


class CatalogueAddition(Record):
    """A second-level item (二级目录) the committee added to its community's catalogue from a proposal
    filed under a category's "other" item (其他): from then on it is accepted for new proposals."""

    topic: Topic
    name: str = Field(min_length=1, max_length=200)
    from_topic: Topic
    at: Time
    by: Id


class Consultation(Record):
    """A consultation: the whole case file. ``version`` equals the number of log entries and
    ``head`` is the hash of the last one, so a record can be checked against its log."""

    schema_version: int = SCHEMA_VERSION
    id: Id
    community: Id
    topic: Topic
    title: Title
    description: Text = ""
    proposer: Id
    form: Form
    carrier: Carrier
    major: bool = False
    budget: Money | None = None
    state: State = State.PROPOSED
    version: int = Field(default=0, ge=0)
    head: str = ""
    procedure: str
    procedure_version: str
    cycle: int = Field(default=1, ge=1)
    proposed_at: Time
    # the answer due before notice: the committee's to a proposal, the proposer's time to appeal a
    # rejection (appealable), the sub-district's to an appeal (appealed); none for a draft
    respond_by: Time | None = None
    schedule: Schedule | None = None
    decision_due: Time | None = None  # this cycle's deadline for a decision (议而不决)
    review_due: Time | None = None  # the current decision's deadline for its legality review
    invited: tuple[Id, ...] = ()
    invitation_notice_ends: Time | None = None  # a later invitation's notice period (no round before)
    chair: Id | None = None
    rounds: tuple[Round, ...] = ()
    meetings: tuple[Meeting, ...] = ()  # every meeting announced, in order (会议)
    decisions: tuple[Decision, ...] = ()
    votes: tuple[Vote, ...] = ()
    reviews: tuple[LegalityReview, ...] = ()
    publications: tuple[Publication, ...] = ()
    progress: tuple[ProgressReport, ...] = ()
    feedback: tuple[ResidentFeedback, ...] = ()
    inspections: tuple[Inspection, ...] = ()
    missed: tuple[str, ...] = ()
    allocations: tuple[FundAllocation, ...] = ()  # 微幸福 fund: what each decision in force took
    next_due: Time | None = None
    ended_at: Time | None = None  # when it reached a final state
    ending: Ending | None = None  # how: done (办结), by ruling, rejected, withdrawn
    pledges: tuple[Pledge, ...] = ()  # 承诺制: each measure of a published decision, with its status
    # proposal intake (提议): co-signers (联名), rejections and appeals, the catalogue item it added
    co_signers: tuple[Id, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    added_topic: CatalogueAddition | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Consultation:
        s = self.schedule
        if s is not None and not (s.notified_at <= s.notice_ends <= s.meeting_at):
            raise PydanticCustomError(
                "schedule_order", "schedule dates out of order: notified_at <= notice_ends <= meeting_at"
            )
        return self

    # Views the guards and apps use; computed, never stored twice.
    @property
    def procedure_key(self) -> tuple[str, str]:
        """(procedure, procedure_version): the definition this record runs under (``Procedure.key``)."""
        return (self.procedure, self.procedure_version)

    @property
    def current_round(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None

    @property
    def pending_meeting(self) -> Meeting | None:
        """The meeting the next round opens at: the latest one announced, if no round was held at it."""
        if not self.meetings:
            return None
        last = self.meetings[-1]
        return None if last.round is not None else last

    @property
    def current_decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    @property
    def current_vote(self) -> Vote | None:
        return self.votes[-1] if self.votes else None

    @property
    def rounds_in_cycle(self) -> int:
        cycle = self.cycle
        return sum(1 for r in self.rounds if r.cycle == cycle)

    @property
    def active(self) -> bool:
        return self.state not in FINAL_STATES

    def _repr_html_(self) -> str:
        """In a notebook: the case file at a glance."""
        from html import escape

        fields = {
            "id": self.id,
            "topic": self.topic,
            "form / carrier": f"{self.form.value} / {self.carrier.value}",
            "state": self.state.value + (f" ({self.ending.value})" if self.ending is not None else ""),
            "cycle": self.cycle,
            "rounds": len(self.rounds),
            "decisions": len(self.decisions),
            "version": self.version,
        }
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in fields.items())
        return f"<b>{escape(self.title)}</b><table>{rows}</table>"

    def reviewed_lawful(self) -> bool:
        """Whether the current decision has a lawful verdict."""
        d = self.current_decision
        if d is None or not self.reviews:
            return False
        last = self.reviews[-1]
        return last.decision == d.number and last.verdict is Verdict.LAWFUL
