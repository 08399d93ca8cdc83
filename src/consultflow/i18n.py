"""Text a resident can read, in Chinese and English: refusals, states, events.

Messages are templates keyed by a stable code; the data that fills them stays machine-readable on
the refusal itself, so an app can render its own wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from decimal import Decimal
from enum import Enum
from typing import Literal

__all__ = [
    "LANGS",
    "MESSAGES",
    "Lang",
    "action_name",
    "event_name",
    "field_problem",
    "format_value",
    "message",
    "role_name",
    "state_name",
]

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# code -> (English, Chinese). Placeholders are filled from the refusal's data.
MESSAGES: Mapping[str, tuple[str, str]] = {
    "role_not_allowed": (
        "{actor} may not {action} here: only {allowed} may",
        "{actor}无权{action}：只有{allowed}可以",
    ),
    "not_the_chair": (
        "only this consultation day's rotating chair ({chair}) may {action}",
        "只有本次协商日的轮值主席（{chair}）可以{action}",
    ),
    "invalid_in_state": (
        "cannot {action} while the consultation is {state}; next steps are: {next}",
        "协商处于“{state}”阶段，不能{action}；可进行的下一步：{next}",
    ),
    "unknown_topic": (
        "topic {topic!s} is not in {community}'s catalogue; add it as a second-level item first",
        "议题“{topic}”不在{community}的协商目录中；请先将其列入二级目录",
    ),
    "unknown_community": (
        "community {community} has no catalogue yet; register its second-level items first",
        "社区{community}尚未制定协商目录；请先制定二级目录",
    ),
    "over_budget_cap": (
        "the budget {budget} exceeds this procedure's cap of {cap}",
        "预算{budget}超出本程序规定的上限{cap}",
    ),
    "notice_too_short": (
        "the meeting must be at least {days} day(s) after notice: not before {earliest}",
        "会议须在告知后至少{days}天举行：不得早于{earliest}",
    ),
    "not_consultation_day": (
        "a consultation day meets on day {day} of the month; {meeting} is not",
        "协商日固定在每月{day}日，{meeting}不是协商日",
    ),
    "chair_required": (
        "a consultation day needs a rotating chair: name one when notifying",
        "协商日须有轮值主席：请在告知时指定",
    ),
    "before_meeting": (
        "the meeting was announced for {meeting_at}; the first round is that meeting",
        "告知的会议时间为{meeting_at}，第一轮协商即为该次会议",
    ),
    "no_chair_named": (
        "no rotating chair was named for this consultation day; only the committee may {action}",
        "本次协商日未指定轮值主席，只有社区两委可以{action}",
    ),
    "notice_period": (
        "the notice period ends on {ends_at}; the first round can open then",
        "告知期至{ends_at}结束，届时方可开始第一轮协商",
    ),
    "round_still_open": (
        "round {round} is still open; close it first",
        "第{round}轮协商尚未结束，请先结束该轮",
    ),
    "round_limit": (
        "the round limit is reached ({used} of {limit} rounds in this cycle); escalate or decide",
        "本轮次已达上限（本周期已进行{used}轮，上限{limit}轮）；请决策或提交上级",
    ),
    "no_open_round": ("no round is open; open a round first", "当前没有进行中的协商轮次，请先开始一轮协商"),
    "already_recorded": (
        "{participant} has already given an opinion in round {round}",
        "{participant}已在第{round}轮发表过意见",
    ),
    "no_round": (
        "no round has been held in this cycle; consult before deciding",
        "本周期尚未进行协商，须先协商后决策",
    ),
    "round_open": (
        "round {round} is still open; close it before deciding",
        "第{round}轮协商尚未结束，请结束后再决策",
    ),
    "needs_new_round": (
        "round {round} was already used for a decision; hold another round first",
        "第{round}轮协商已用于一次决策，请先再进行一轮协商",
    ),
    "quorum_not_met": (
        "quorum not met in round {round}: {attended} of {required} needed attended",
        "第{round}轮未达到法定人数：需{required}人，实到{attended}人",
    ),
    "no_consensus": (
        "no consensus in round {round} under the {rule} rule: {support} support, {oppose} oppose, "
        "{amend} amend, {abstain} abstain",
        "第{round}轮未按“{rule}”规则达成共识：支持{support}，反对{oppose}，修改{amend}，弃权{abstain}",
    ),
    "major_needs_residents": (
        "a major matter needs a round in which residents took part before any decision",
        "重大事项须经居民参与协商后方可决策",
    ),
    "measures_required": (
        "a decision consultation needs measures, each with an owner, a due date and a budget",
        "决策类协商须有落实措施，并明确责任人、完成时限和预算",
    ),
    "measure_due_in_past": (
        "measure {number} is due on {due}, which has already passed",
        "第{number}项措施的完成时限{due}已过",
    ),
    "over_budget": (
        "the measures cost {total}, more than the budget of {budget}",
        "措施预算合计{total}，超出预算{budget}",
    ),
    "hearing_record_required": (
        "a hearing consultation needs its hearing record",
        "听证类协商须有听证记录",
    ),
    "agreement_parties_required": (
        "a coordination consultation ends in an agreement: name at least two parties",
        "协调类协商须形成协议：请列明至少两方当事人",
    ),
    "advice_adoption_required": (
        "an advisory consultation ends by saying whether the advice is adopted",
        "咨询类协商须说明建议是否采纳",
    ),
    "reviewer_not_independent": (
        "{reviewer} took the decision and may not review its legality",
        "{reviewer}参与了决策，不能对其进行合法性审查",
    ),
    "review_pending": (
        "the legality review is pending; nothing takes effect before a lawful verdict",
        "合法性审查尚未完成；审查合法前决定不得生效",
    ),
    "feedback_given": (
        "{participant} has already rated this decision",
        "{participant}已对该决定作出评价",
    ),
    "not_published": (
        "publish the outcome first (公开制) so residents can supervise it",
        "请先公开协商成果，以便居民监督",
    ),
    "unknown_measure": (
        "there is no measure {number}; the decision has {count}",
        "不存在第{number}项措施；该决定共有{count}项措施",
    ),
    "inspection_pending": (
        "supervision has not signed off: an inspection must pass after the latest report",
        "监督尚未通过：须在最近一次进展报告后进行验收并通过",
    ),
    "measures_unfinished": (
        "measures not yet carried out: {pending}",
        "尚未落实的措施：{pending}",
    ),
    "cycle_limit": (
        "the re-consultation limit is reached ({used} of {limit} cycles); escalate or close",
        "再次协商次数已达上限（{used}/{limit}）；请提交上级或结束",
    ),
    "nothing_overdue": ("nothing is overdue", "没有逾期事项"),
    "no_route": (
        "the procedure has no way to {action} from here with this input",
        "按本程序，当前情况下无法{action}",
    ),
}

_STATES: Mapping[str, tuple[str, str]] = {
    "proposed": ("proposed", "提议"),
    "notified": ("notified", "告知"),
    "consulting": ("consulting", "协商"),
    "decided": ("decided, under legality review", "决策（合法性审查中）"),
    "feedback": ("in feedback", "反馈"),
    "supervising": ("under supervision", "监督"),
    "closed": ("closed", "已办结"),
    "rejected": ("rejected", "未受理"),
    "withdrawn": ("withdrawn", "已撤回"),
    "escalated": ("escalated", "已提交上级"),
}

_ACTIONS: Mapping[str, tuple[str, str]] = {
    "propose": ("propose a matter", "提出议题"),
    "reject": ("reject the proposal", "不予受理"),
    "withdraw": ("withdraw the matter", "撤回议题"),
    "notify": ("give notice", "发布告知"),
    "open_round": ("open a round", "开始一轮协商"),
    "record_opinion": ("give an opinion", "发表意见"),
    "close_round": ("close the round", "结束本轮协商"),
    "decide": ("decide", "作出决策"),
    "review": ("review legality", "进行合法性审查"),
    "publish": ("publish the outcome", "公开协商成果"),
    "report_progress": ("report progress", "报告落实进展"),
    "record_feedback": ("give feedback", "反馈评价"),
    "start_supervision": ("start supervision", "进入监督"),
    "inspect": ("inspect", "督查验收"),
    "request_reconsultation": ("ask to consult again", "提请再次协商"),
    "escalate": ("escalate", "提交上级"),
    "resume": ("resume the consultation", "恢复协商"),
    "close": ("close the matter", "办结"),
    "mark_overdue": ("mark what is overdue", "标记逾期"),
}

_EVENTS: Mapping[str, tuple[str, str]] = {
    "proposed": ("proposed", "提出议题"),
    "rejected": ("rejected", "不予受理"),
    "withdrawn": ("withdrawn", "撤回"),
    "notified": ("notice given", "发布告知"),
    "round_opened": ("round opened", "开始协商"),
    "opinion_recorded": ("opinion recorded", "记录意见"),
    "round_closed": ("round closed", "结束本轮协商"),
    "escalated": ("escalated", "提交上级"),
    "decided": ("decided", "作出决策"),
    "legality_reviewed": ("legality reviewed", "合法性审查"),
    "published": ("published", "公开成果"),
    "progress_reported": ("progress reported", "报告进展"),
    "feedback_received": ("feedback received", "收到反馈"),
    "supervision_started": ("supervision started", "进入监督"),
    "inspected": ("inspected", "督查"),
    "reconsultation_requested": ("consult again", "再次协商"),
    "resumed": ("resumed", "恢复协商"),
    "closed": ("closed", "办结"),
    "deadline_missed": ("deadline missed", "逾期"),
}

_ROLES: Mapping[str, tuple[str, str]] = {
    "committee": ("the community committees", "社区两委"),
    "working_committee": ("a working committee", "工作委员会"),
    "council_member": ("a council member", "理事"),
    "resident": ("a resident", "居民"),
    "resident_representative": ("a resident representative", "居民代表"),
    "property_management": ("the property management", "物业"),
    "unit": ("a unit in the area", "驻区单位"),
    "social_organisation": ("a social organisation", "社会组织"),
    "deputy": ("a deputy or committee member", "两代表一委员"),
    "expert": ("an expert", "专家"),
    "technician": ("a technician", "技术人员"),
    "third_party": ("a third party", "第三方机构"),
    "police": ("the police", "社区民警"),
    "supervisor": ("a supervisor", "监事"),
    "inspection_group": ("the inspection group", "督查小组"),
    "rotating_chair": ("the rotating chair", "轮值主席"),
    "sub_district": ("the sub-district", "街道"),
    "proposer": ("the proposer", "提议人"),
    "system": ("the system clock", "系统"),
}

_RULES: Mapping[str, tuple[str, str]] = {
    "unanimity": ("unanimity", "一致同意"),
    "threshold": ("threshold", "多数同意"),
    "no_sustained_objection": ("no sustained objection", "无持续反对"),
}


def _pick(table: Mapping[str, tuple[str, str]], key: str, lang: Lang) -> str:
    pair = table.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "en" else pair[1]


def state_name(state: str, lang: Lang = "en") -> str:
    return _pick(_STATES, str(state), lang)


def role_name(role: str, lang: Lang = "en") -> str:
    return _pick(_ROLES, str(role), lang)


def event_name(event: str, lang: Lang = "en") -> str:
    return _pick(_EVENTS, str(event), lang)


def action_name(trigger: str, lang: Lang = "en") -> str:
    return _pick(_ACTIONS, str(trigger), lang)


def format_value(value: object, lang: Lang = "en", tz: tzinfo | None = None) -> str:
    """Render one data value for a person: dates in their time zone, lists joined, enums by value."""
    if isinstance(value, datetime):
        when = value.astimezone(tz) if tz is not None else value
        zone = when.tzname() or ""
        if lang == "zh":
            return f"{when.year}年{when.month}月{when.day}日 {when:%H:%M}（{zone}）"
        return f"{when.day} {_MONTHS[when.month - 1]} {when.year}, {when:%H:%M} {zone}".rstrip()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return f"{value:,.2f}" if lang == "en" else f"{value:.2f}元"
    if isinstance(value, list | tuple | frozenset | set):
        items = [format_value(v, lang, tz) for v in value]
        if isinstance(value, frozenset | set):
            items.sort()
        return ("、" if lang == "zh" else ", ").join(items) if items else ("无" if lang == "zh" else "none")
    return str(value)


def message(code: str, data: Mapping[str, object], lang: Lang = "en", tz: tzinfo | None = None) -> str:
    """The message for a refusal code, filled with its data, in ``lang``."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; use one of {', '.join(LANGS)}")
    template = _pick(MESSAGES, code, lang)
    values: dict[str, str] = {}
    for key, value in data.items():
        if key == "state" and isinstance(value, str):
            values[key] = state_name(value, lang)
        elif key == "action" and isinstance(value, str):
            values[key] = action_name(value, lang)
        elif key == "next" and isinstance(value, list | tuple):
            values[key] = format_value([action_name(str(v), lang) for v in value], lang, tz)
        elif key == "allowed" and isinstance(value, list | tuple):
            values[key] = format_value([role_name(str(v), lang) for v in value], lang, tz)
        elif key == "rule" and isinstance(value, str):
            values[key] = _pick(_RULES, value, lang)
        else:
            values[key] = format_value(value, lang, tz)
    return template.format(**values)


# pydantic error type (or our own custom type) -> Chinese; English uses pydantic's own message.
# Placeholders: {field} and the error's context (min_length, max_length, ge, le, expected, ...).
FIELD_PROBLEMS_ZH: Mapping[str, str] = {
    "missing": "缺少{field}",
    "extra_forbidden": "没有名为{field}的字段",
    "string_type": "{field}应为文字",
    "string_too_short": "{field}不能为空",
    "string_too_long": "{field}过长：至多{max_length}个字符",
    "string_pattern_mismatch": "{field}的格式不正确",
    "too_short": "{field}至少需要{min_length}项",
    "too_long": "{field}至多{max_length}项",
    "int_type": "{field}应为整数",
    "int_parsing": "{field}应为整数",
    "int_from_float": "{field}应为整数",
    "bool_type": "{field}应为是或否",
    "bool_parsing": "{field}应为是或否",
    "float_type": "{field}应为数字",
    "float_parsing": "{field}应为数字",
    "decimal_type": "{field}应为金额",
    "decimal_parsing": "{field}应为金额",
    "decimal_max_digits": "{field}的位数过多：至多{max_digits}位",
    "decimal_max_places": "{field}至多保留{decimal_places}位小数",
    "greater_than": "{field}须大于{gt}",
    "greater_than_equal": "{field}须不小于{ge}",
    "less_than": "{field}须小于{lt}",
    "less_than_equal": "{field}须不大于{le}",
    "enum": "{field}须为以下之一：{expected}",
    "literal_error": "{field}须为以下之一：{expected}",
    "datetime_type": "{field}应为时间",
    "datetime_parsing": "{field}应为时间，如2026-03-11T10:00+08:00",
    "datetime_from_date_parsing": "{field}应为时间，如2026-03-11T10:00+08:00",
    "timezone_aware": "{field}须注明时区，如+08:00",
    "tuple_type": "{field}应为列表",
    "list_type": "{field}应为列表",
    "frozen_set_type": "{field}应为集合",
    "model_type": "{field}的内容不正确",
    "dict_type": "{field}应为对象",
    "invite_duplicate": "邀请名单重复列出了同一人；每人只列一次",
    "parties_duplicate": "协议当事人重复列出了同一方",
    "unlawful_needs_basis": "认定不合法须写明法律依据和纠正意见（依法纠正）",
    "schedule_order": "时间顺序有误：告知时间≤告知期结束≤会议时间",
}


def field_problem(field: str, kind: str, msg: str, ctx: Mapping[str, object], lang: Lang | str = "en") -> str:
    """One field's problem in ``lang``: ``"title: String should have at most 200 characters"``."""
    if lang != "zh":
        return f"{field}: {msg}"
    template = FIELD_PROBLEMS_ZH.get(kind)
    if template is None:
        return f"{field}无效：{msg}"
    values = {k: str(v) for k, v in ctx.items()}
    values["field"] = field
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return f"{field}无效：{msg}"
