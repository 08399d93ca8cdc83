"""Who takes part (the "1+N+X" mechanism, the think tank, supervisors) and who acts.

Roles decide what an actor may do; everything not granted is refused (default deny).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from enum import StrEnum

import attrs

from .errors import InvalidInput
from .vocabulary import Body

__all__ = [
    "BODY_MEMBERS",
    "ID_PATTERN",
    "NEVER_GRANTED",
    "RELATIONAL_ROLES",
    "RESERVED_PREFIX",
    "STAKEHOLDERS",
    "THINK_TANK",
    "Actor",
    "Role",
    "person_id",
    "valid_id",
]

# What an id may be (consultations, participants, actors): 1 to 128 characters, any script, no
# white space, control characters, quotes or backslashes, not starting with "-" - so an id never
# needs escaping in the log's JSON, reads the same in every store and is never taken for an option.
ID_PATTERN = r"[^\s\"'`\\\x00-\x1f\x7f-][^\s\"'`\\\x00-\x1f\x7f]{0,127}"
_ID = re.compile(ID_PATTERN)


def valid_id(value: str) -> bool:
    """Whether ``value`` is an id: ``ID_PATTERN``, and printable throughout (no C1 control,
    zero-width, bidi override or other invisible character)."""
    return _ID.fullmatch(value) is not None and value.isprintable()


def person_id(value: object) -> str:
    """A person's id as the library keeps it, so that two ids that look alike are one person.

    The rule: Unicode NFKC (full-width ``ｌｉ`` is ``li``), then case-folded (``Li`` is ``li``);
    invisible characters - zero-width spaces and joiners, bidi controls, any other format (Cf) or
    control character - are refused, never silently dropped, and the result must be an id
    (1 to 128 characters, no white space, quotes or backslashes, not starting with ``-``).
    ``InvalidInput`` says what is wrong. Ids repeat (every step names its actor): answers are remembered.
    """
    if type(value) is str:
        return _person_id_cached(value)
    return _person_id(value)


def _person_id(value: object) -> str:
    """The checks and the normal form of ``person_id``, without the memory."""
    if not isinstance(value, str):
        raise InvalidInput(f"a person's id is text, not {type(value).__name__}")
    if len(value) > 512:  # NFKC never shrinks text below a quarter: this is no id, and no message repeats it
        raise InvalidInput(f"a person's id is at most 128 characters, not {len(value)}: {value[:40]!r}...")
    hidden = [c for c in value if unicodedata.category(c) in {"Cf", "Cc", "Cs", "Co", "Cn"}]
    if hidden:
        shown = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(hidden))
        raise InvalidInput(
            f"person id {value!r} holds invisible or unassigned characters ({shown}); "
            "an id must read the same to everyone who sees it"
        )
    normal = unicodedata.normalize("NFKC", value).casefold()
    if not valid_id(normal):
        raise InvalidInput(
            f"person id {value!r} is not a valid id: use 1 to 128 characters without spaces, control "
            "characters, quotes or backslashes (e.g. 'li', '李明', 'li+1@example.cn')"
        )
    return normal


@functools.lru_cache(maxsize=8192)
def _person_id_cached(value: str) -> str:
    if value.isascii():  # NFKC leaves ASCII alone; control characters fail the id pattern
        normal = value.lower()
        if valid_id(normal):
            return normal
    return _person_id(value)


#: Ids the library keeps for itself (its clock is ``consultflow:clock``): no person acts under them.
RESERVED_PREFIX = "consultflow:"


class Role(StrEnum):
    """Participant roles. ``PROPOSER`` and ``INVITEE`` are relational: they match the actor who
    proposed the matter, or was invited to it; nobody is granted them. ``SYSTEM`` is the library's
    own clock and is never granted to a person."""

    # 1: the community's two committees (社区两委), the convenor
    COMMITTEE = "committee"
    # N: working committees (工作委员会) and the standing council (理事会)
    WORKING_COMMITTEE = "working_committee"
    COUNCIL_MEMBER = "council_member"
    # X: the stakeholders of the matter (利益相关方)
    RESIDENT = "resident"
    RESIDENT_REPRESENTATIVE = "resident_representative"
    PROPERTY_MANAGEMENT = "property_management"
    UNIT = "unit"  # 驻区单位
    SOCIAL_ORGANISATION = "social_organisation"
    # the think tank (协商智库), invited on demand
    DEPUTY = "deputy"  # 两代表一委员
    EXPERT = "expert"
    TECHNICIAN = "technician"
    THIRD_PARTY = "third_party"
    POLICE = "police"
    # watching the process and the outcome
    SUPERVISOR = "supervisor"  # 监事
    INSPECTION_GROUP = "inspection_group"  # 督查小组
    ROTATING_CHAIR = "rotating_chair"  # 轮值主席 of a consultation day
    SUB_DISTRICT = "sub_district"  # 街道, for escalations
    LEGAL_ADVISER = "legal_adviser"  # 法律顾问 / 司法所: may review legality
    OWNER = "owner"  # 业主: votes in the owners' meeting (业主大会)
    # relational and technical roles
    PROPOSER = "proposer"
    INVITEE = "invitee"  # invited to this consultation (告知 or a later invitation)
    SYSTEM = "system"  # the clock, marking deadlines


STAKEHOLDERS: frozenset[Role] = frozenset(
    {
        Role.RESIDENT,
        Role.RESIDENT_REPRESENTATIVE,
        Role.PROPERTY_MANAGEMENT,
        Role.UNIT,
        Role.SOCIAL_ORGANISATION,
    }
)
THINK_TANK: frozenset[Role] = frozenset({Role.DEPUTY, Role.EXPERT, Role.TECHNICIAN, Role.THIRD_PARTY, Role.POLICE})
#: Roles held towards one consultation, not in general: the proposer of this matter, the rotating
#: chair this consultation day named. The one definition; the core and the build checks use it.
RELATIONAL_ROLES: frozenset[Role] = frozenset({Role.PROPOSER, Role.ROTATING_CHAIR, Role.INVITEE})
#: Roles a directory never grants: they follow from the consultation, or belong to the clock.
NEVER_GRANTED: frozenset[Role] = frozenset({Role.PROPOSER, Role.INVITEE, Role.SYSTEM})
#: Who is a member of each voting body (决策主体), by the roles the directory grants in the
#: community: 居民会议 residents and their representatives, 居民代表会议 the representatives,
#: 社区协商议事会 its members, 业主大会 the owners. The vote step counts and checks them; the notices
#: of a vote reach them.
BODY_MEMBERS: dict[Body, frozenset[Role]] = {
    Body.RESIDENTS_MEETING: frozenset({Role.RESIDENT, Role.RESIDENT_REPRESENTATIVE}),
    Body.REPRESENTATIVES_MEETING: frozenset({Role.RESIDENT_REPRESENTATIVE}),
    Body.COUNCIL: frozenset({Role.COUNCIL_MEMBER}),
    Body.OWNERS_MEETING: frozenset({Role.OWNER}),
}


def _roles(value: Iterable[Role | str]) -> frozenset[Role]:
    if isinstance(value, str):
        raise InvalidInput(f"roles must be a collection of roles, e.g. {{Role.RESIDENT}}, not the text {value!r}")
    try:
        return frozenset(Role(v) for v in value)
    except (ValueError, TypeError):
        known = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role in {value!r}; known roles: {known}") from None


@attrs.frozen(slots=True)
class Actor:
    """Someone acting on a consultation: a person's id (normalised by ``person_id``) and roles.

    The caller authenticates the person; the engine's directory says which roles they hold in the
    consultation's community (the roles given here count only with ``TrustCallerRoles``).
    """

    id: str = attrs.field(converter=person_id)
    roles: frozenset[Role] = attrs.field(converter=_roles, factory=frozenset)

    @classmethod
    def known(cls, pid: str, roles: frozenset[Role]) -> Actor:
        """An actor whose id is already normalised and whose roles are a frozenset of ``Role``
        (what the engine has from its directory): built without checking either again."""
        actor = object.__new__(cls)
        object.__setattr__(actor, "id", pid)
        object.__setattr__(actor, "roles", roles)
        return actor
