"""Who takes part (the "1+N+X" mechanism, the think tank, supervisors) and who acts.

Roles decide what an actor may do; everything not granted is refused (default deny).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

import attrs

from .errors import InvalidInput

__all__ = ["ID_PATTERN", "RELATIONAL_ROLES", "STAKEHOLDERS", "THINK_TANK", "Actor", "Role", "valid_id"]

# What an id may be (consultations, participants, actors): 1 to 128 characters, any script, no
# white space, control characters, quotes or backslashes, not starting with "-" - so an id never
# needs escaping in the log's JSON, reads the same in every store and is never taken for an option.
ID_PATTERN = r"[^\s\"'`\\\x00-\x1f\x7f-][^\s\"'`\\\x00-\x1f\x7f]{0,127}"
_ID = re.compile(ID_PATTERN)


def valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


class Role(StrEnum):
    """Participant roles. ``PROPOSER`` is relational: it matches the actor who proposed the matter."""

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
    # relational and technical roles
    PROPOSER = "proposer"
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
RELATIONAL_ROLES: frozenset[Role] = frozenset({Role.PROPOSER, Role.ROTATING_CHAIR})


def _roles(value: Iterable[Role | str]) -> frozenset[Role]:
    if isinstance(value, str):
        raise InvalidInput(f"roles must be a collection of roles, e.g. {{Role.RESIDENT}}, not the text {value!r}")
    try:
        return frozenset(Role(v) for v in value)
    except (ValueError, TypeError):
        known = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role in {value!r}; known roles: {known}") from None


def _storable(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not valid_id(value):
        raise InvalidInput(
            f"Actor id {value!r} is not a valid id: use 1 to 128 characters without spaces, control "
            "characters, quotes or backslashes (e.g. 'li', '李明', 'li+1@example.cn')"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"Actor id {value!r} holds characters that cannot be stored (a lone surrogate)") from None


@attrs.frozen(slots=True)
class Actor:
    """Someone acting on a consultation: an id and the roles they hold in this community.

    The engine trusts the caller to have authenticated the person; it decides what the roles allow.
    """

    id: str = attrs.field(validator=_storable)
    roles: frozenset[Role] = attrs.field(converter=_roles, factory=frozenset)
