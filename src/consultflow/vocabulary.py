"""The procedure's words: states, triggers, log events, forms, carriers, stances, verdicts.

Every enum is a ``str`` enum so that its value is what is stored, logged and exported. Chinese names
come from the source document (鼓楼区“六化”社区协商); see ``consultflow.i18n`` for display text.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "IN_FORCE_STATES",
    "VOTING_BODIES",
    "Attendance",
    "Ballot",
    "Body",
    "Carrier",
    "Channel",
    "Ending",
    "Event",
    "Form",
    "MeetingFormat",
    "PledgeStatus",
    "ProjectType",
    "Stance",
    "State",
    "Trigger",
    "Verdict",
]


class State(StrEnum):
    """Where a consultation stands in the six-step procedure (提议→告知→协商→决策→反馈→监督)."""

    PROPOSED = "proposed"  # 提议
    NOTIFIED = "notified"  # 告知
    CONSULTING = "consulting"  # 协商
    DECIDED = "decided"  # 决策, awaiting the legality review (合法性审查) where the matter needs one
    FEEDBACK = "feedback"  # 反馈: published, carried out, reported back
    SUPERVISING = "supervising"  # 监督
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    ESCALATED = "escalated"  # handed up to the sub-district (上级督办)
    # proposal intake (提议): drafts, and a rejection open to appeal (申请复核)
    DRAFT = "draft"  # 草稿: saved by its proposer, not yet submitted; nobody is notified
    APPEALABLE = "appealable"  # 不予受理, the proposer may still appeal within Parameters.appeal_period
    APPEALED = "appealed"  # 复核中: the sub-district reconsiders the rejection


#: States a consultation never leaves (办结, 不予受理, 撤回). The one definition of "ended".
FINAL_STATES: frozenset[State] = frozenset({State.CLOSED, State.REJECTED, State.WITHDRAWN})
#: States from which the procedure still goes on (deadlines apply, ``Engine.tick`` looks at them).
ACTIVE_STATES: frozenset[State] = frozenset(State) - FINAL_STATES
#: States in which a decision is in force (反馈, 监督): reached only through a lawful legality review,
#: or straight from a decision on a matter the parameters exempt from review (``Parameters.needs_review``).
IN_FORCE_STATES: frozenset[State] = frozenset({State.FEEDBACK, State.SUPERVISING})


class Trigger(StrEnum):
    """What a command asks the procedure to do; one trigger per command type."""

    PROPOSE = "propose"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    NOTIFY = "notify"
    INVITE = "invite"
    OPEN_ROUND = "open_round"
    SIGN_IN = "sign_in"
    RECORD_OPINION = "record_opinion"
    CLOSE_ROUND = "close_round"
    DECIDE = "decide"
    CALL_VOTE = "call_vote"
    CAST_VOTE = "cast_vote"
    CLOSE_VOTE = "close_vote"
    REVIEW = "review"
    PUBLISH = "publish"
    REPORT_PROGRESS = "report_progress"
    RECORD_FEEDBACK = "record_feedback"
    START_SUPERVISION = "start_supervision"
    INSPECT = "inspect"
    REQUEST_RECONSULTATION = "request_reconsultation"
    ESCALATE = "escalate"
    RESUME = "resume"
    CLOSE = "close"
    MARK_OVERDUE = "mark_overdue"
    # meetings (会议): each later meeting with its notice, and the minutes of a held one
    SCHEDULE_MEETING = "schedule_meeting"
    RECORD_MINUTES = "record_minutes"
    # pledges (承诺制)
    DELAY_PLEDGE = "delay_pledge"
    # proposal intake (提议)
    SUBMIT = "submit"
    EDIT_PROPOSAL = "edit_proposal"
    CO_SIGN = "co_sign"
    ADD_TOPIC = "add_topic"
    APPEAL = "appeal"
    RECONSIDER = "reconsider"


class Event(StrEnum):
    """What the log records; one entry per event, hash-chained."""

    PROPOSED = "proposed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    NOTIFIED = "notified"
    INVITED = "invited"
    ROUND_OPENED = "round_opened"
    SIGNED_IN = "signed_in"
    OPINION_RECORDED = "opinion_recorded"
    ROUND_CLOSED = "round_closed"
    ESCALATED = "escalated"
    VOTE_CALLED = "vote_called"
    VOTE_CAST = "vote_cast"
    VOTE_CLOSED = "vote_closed"
    DECIDED = "decided"
    LEGALITY_REVIEWED = "legality_reviewed"
    PUBLISHED = "published"
    PROGRESS_REPORTED = "progress_reported"
    FEEDBACK_RECEIVED = "feedback_received"
    SUPERVISION_STARTED = "supervision_started"
    INSPECTED = "inspected"
    RECONSULTATION_REQUESTED = "reconsultation_requested"
    RESUMED = "resumed"
    CLOSED = "closed"
    DEADLINE_MISSED = "deadline_missed"
    # pledges (承诺制): a measure made public as a named person's pledge, and its due date moved
    PLEDGE_PUBLISHED = "pledge_published"
    PLEDGE_DELAYED = "pledge_delayed"
    #: not logged: the event of a reminder notice (提醒), which the outbox carries without a step
    REMINDER = "reminder"
    # proposal intake (提议)
    DRAFTED = "drafted"
    DRAFT_EDITED = "draft_edited"
    DRAFT_DISCARDED = "draft_discarded"
    SUBMITTED = "submitted"
    PROPOSAL_EDITED = "proposal_edited"
    CO_SIGNED = "co_signed"
    TOPIC_ADDED = "topic_added"
    APPEALED = "appealed"
    RECONSIDERED = "reconsidered"
    REJECTION_FINAL = "rejection_final"
    # meetings (会议)
    MEETING_SCHEDULED = "meeting_scheduled"
    MINUTES_RECORDED = "minutes_recorded"
    # ---- the fund (微幸福便民服务公益金) ----
    FUNDS_ALLOCATED = "funds_allocated"  # a decision in force takes its budget from the community's yearly pool
    FUNDS_SPENT = "funds_spent"  # money spent on a measure, against its allocation
    FUNDS_RELEASED = "funds_released"  # consulted again: what the decision did not spend goes back to the pool


class Form(StrEnum):
    """The five forms of consultation (五大类协商形式)."""

    COUNCIL = "council"  # 理事制
    CLOUD = "cloud"  # 云协商
    INVITATION = "invitation"  # 邀约式
    CONSULTATION_DAY = "consultation_day"  # 协商日
    AGREEMENT_SUPERVISION = "agreement_supervision"  # 协约督事


class Carrier(StrEnum):
    """The four consultation carriers (协商载体); each ends in a different kind of outcome."""

    DECISION = "decision"  # 决策类: a binding decision with measures, owners, due dates, budget
    HEARING = "hearing"  # 听证类: a hearing record
    COORDINATION = "coordination"  # 协调类: an agreement between parties
    ADVISORY = "advisory"  # 咨询类: advice, adopted or not


class MeetingFormat(StrEnum):
    """How a round meets (会议形式): the seed counts round tables among all activities, offline
    venues reach older residents and online channels the young."""

    ROUND_TABLE = "round_table"  # 圆桌会
    HEART_TO_HEART = "heart_to_heart"  # 恳谈会
    REVIEW = "review"  # 评议会
    HEARING = "hearing"  # 听证会
    DELIBERATION = "deliberation"  # 议事会 (the council's or the consultation day's meeting)
    ONLINE = "online"  # 网上协商: a WeChat group, an app


class Attendance(StrEnum):
    """How someone took part in a round (参与方式): in person or online."""

    IN_PERSON = "in_person"  # 线下
    ONLINE = "online"  # 线上


class Ending(StrEnum):
    """How a consultation ended: carried out and signed off (办结), closed by the sub-district's
    ruling after an escalation, not taken up (不予受理), or withdrawn (撤回)."""

    DONE = "done"
    RULING = "ruling"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Stance(StrEnum):
    """An opinion given in a round."""

    SUPPORT = "support"
    OPPOSE = "oppose"
    ABSTAIN = "abstain"
    AMEND = "amend"


class Body(StrEnum):
    """Who takes a decision (决策主体): the community committees, or a body that votes on it.

    精准化 "赋予居民参与权、决策权": a variant of the procedure says which matters a body decides
    (``Parameters.decided_by``, ``Parameters.major_decided_by``) and how it counts (``VoteRule``).
    """

    COMMITTEE = "committee"  # 社区两委: decides itself (``Decide``)
    RESIDENTS_MEETING = "residents_meeting"  # 居民会议
    REPRESENTATIVES_MEETING = "representatives_meeting"  # 居民代表会议
    COUNCIL = "council"  # 社区协商议事会
    OWNERS_MEETING = "owners_meeting"  # 业主大会 (民法典第二百七十八条)


#: The bodies that decide by a recorded vote (every body but the committee).
VOTING_BODIES: frozenset[Body] = frozenset(Body) - {Body.COMMITTEE}


class Ballot(StrEnum):
    """A ballot in a body's vote (表决票)."""

    FOR = "for"  # 同意
    AGAINST = "against"  # 反对
    ABSTAIN = "abstain"  # 弃权


class Verdict(StrEnum):
    """The legality review's verdict (合法性审查)."""

    LAWFUL = "lawful"
    UNLAWFUL = "unlawful"  # 依法纠正: corrected according to law (a new round, or a corrected decision)


class Channel(StrEnum):
    """Where outcomes are made public (公开制)."""

    WEBSITE = "website"
    NOTICE_BOARD = "notice_board"
    MICROBLOG = "microblog"
    WECHAT = "wechat"
    APP = "app"
    ROADMAP = "roadmap"  # 成果运用路线图


# ---- pledges (承诺制) and the results roadmap (成果运用路线图) ------------------------------------------
class PledgeStatus(StrEnum):
    """Where a public pledge (承诺) stands: a measure of a decision in force, made public with who
    answers for it, by when and with how much, which residents then hold its owner to."""

    PLEDGED = "pledged"  # 已承诺: published, nothing reported yet
    IN_PROGRESS = "in_progress"  # 落实中: progress reported, not done
    DELAYED = "delayed"  # 已延期: the committee moved its due date (with a reason)
    DONE = "done"  # 已兑现: reported 100 %
    MISSED = "missed"  # 逾期未兑现 (决而不施): its due date passed and it was not done
    SUPERSEDED = "superseded"  # 已调整: a later decision (再次协商) took over what was left of it


# ---- the fund (微幸福便民服务公益金) ----
class ProjectType(StrEnum):
    """The 微 project types a measure paid from the 微幸福 fund belongs to (微项目)."""

    ROAD_NETWORK = "road_network"  # 微路网
    GREENING = "greening"  # 微绿化
    SQUARE = "square"  # 微广场
    FACILITIES = "facilities"  # 微设施
    CARE = "care"  # 微爱心
    CULTURE = "culture"  # 微文化
    TOURISM = "tourism"  # 微旅游
