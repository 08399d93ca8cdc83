"""Text a resident can read, in Chinese and English: refusals, states, actions, events, roles.

Messages are templates keyed by a stable code; the data that fills them stays machine-readable on
the refusal itself, so an app can render its own wording. A data key ending in ``_en`` or ``_zh``
fills the placeholder without the suffix in that language (``category_name_en`` -> ``{category_name}``).
The Chinese follows the field's own words (发布协商公告, 反馈落实, 居民评议, 提请街道督办, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from enum import Enum
from typing import Literal

from .errors import InvalidInput

__all__ = [
    "ACTION_NAMES",
    "BALLOT_NAMES",
    "BODY_NAMES",
    "CHANNEL_NAMES",
    "EVENT_NAMES",
    "LANGS",
    "MESSAGES",
    "NAME_TABLES",
    "PROJECT_TYPE_NAMES",
    "ROLE_NAMES",
    "RULE_NAMES",
    "STANCE_NAMES",
    "STATE_NAMES",
    "VERDICT_NAMES",
    "Lang",
    "action_name",
    "ballot_name",
    "body_name",
    "channel_name",
    "event_name",
    "field_problem",
    "format_value",
    "message",
    "pick",
    "project_type_name",
    "refusals_table",
    "role_label",
    "role_name",
    "rule_name",
    "stance_name",
    "state_name",
    "verdict_name",
    "zone_name",
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
        "the topic “{item}” ({category_name}) is not in the catalogue of {community_name}; "
        "add it as a second-level item first",
        "议题“{item}”（{category_name}）不在{community_name}的协商目录中；请先将其列入二级目录",
    ),
    "unknown_community": (
        "{community_name} has no catalogue yet; register its second-level items first",
        "{community_name}尚未制定协商目录；请先制定二级目录",
    ),
    "over_budget_cap": (
        "the budget {budget} is over the procedure's limit of {cap}",
        "预算{budget}超出协商规则规定的上限{cap}",
    ),
    "notice_too_short": (
        "the meeting must be at least {days} day(s) after notice: not before {earliest}",
        "会议须在发布协商公告后至少{days}天举行：不得早于{earliest}",
    ),
    "not_consultation_day": (
        "a consultation day meets on day {day} of the month; {meeting} is not",
        "协商日固定在每月{day}日，{meeting}不是协商日",
    ),
    "chair_required": (
        "a consultation day needs a rotating chair: name one in the notice",
        "协商日须有轮值主席：请在协商公告中指定",
    ),
    "before_meeting": (
        "the meeting was announced for {meeting_at}; the round opens at that meeting",
        "公告的会议时间为{meeting_at}，本轮协商须在该次会议上开始",
    ),
    "no_chair_named": (
        "no rotating chair was named for this consultation day; only the committee may {action}",
        "本次协商日未指定轮值主席，只有社区两委可以{action}",
    ),
    "round_still_open": (
        "round {round} is still open; close it first",
        "第{round}轮协商尚未结束，请先结束该轮",
    ),
    "round_limit": (
        "{used} round(s) held in this cycle: another would be over the procedure's limit ({limit}); decide or escalate",
        "本周期已进行{used}轮协商，再开一轮将超出协商规则规定的上限（{limit}轮）；请作出决策或提请街道督办",
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
    "correction_limit": (
        "the decisions of this cycle were found unlawful {used} time(s), over the procedure's limit of {limit} "
        "corrections: hand the matter to the sub-district (escalate), which resumes it in a new cycle or rules on it",
        "本周期的决策已{used}次被审查为不合法，超出协商规则规定的依法纠正上限（{limit}次）；"
        "请提请街道督办，由街道恢复协商（新的协商周期）或作出裁定",
    ),
    "quorum_not_met": (
        "too few attended: at least {required} needed, {attended} attended",
        "到会人数不足：应到至少{required}人，实到{attended}人",
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
    "reviewer_voted": (
        "{reviewer} gave an opinion in round {round}, on which the decision rests, and must stand aside from "
        "its legality review",
        "{reviewer}在作出决策所依据的第{round}轮协商中发表过意见，应当回避合法性审查",
    ),
    "proposer_recuses": (
        "{person} proposed this matter and must stand aside: the proposer may not {action}",
        "{person}是本议题的提议人，应当回避，不能{action}",
    ),
    "chair_not_a_chair": (
        "{chair} is not a rotating chair of this community; name one of its rotating chairs",
        "{chair}不是本社区的轮值主席；请指定本社区的轮值主席",
    ),
    "chair_is_proposer": (
        "{chair} proposed this matter and may not chair its consultation; name another rotating chair",
        "{chair}是本议题的提议人，应当回避，不能担任本次协商的轮值主席",
    ),
    "already_invited": (
        "already invited: {people}",
        "已在邀请名单中：{people}",
    ),
    "too_many_invited": (
        "{invited} people are invited already; at most {limit} may be invited to one consultation",
        "已邀请{invited}人；一项协商最多邀请{limit}人",
    ),
    "round_full": (
        "round {round} holds {limit} opinions, the most one round may hold; close it and open another",
        "第{round}轮已有{limit}条意见，达到一轮的上限；请结束本轮并开启新一轮",
    ),
    "invitation_notice": (
        "people were invited later; the next round can open on {opens_at}, when their notice period ends",
        "已增加邀请人员，须待其告知期满，下一轮协商可于{opens_at}开始",
    ),
    "not_taking_part": (
        "{person} does not take part in this consultation: only those invited and the convenors{open_to}",
        "{person}不是本次协商的参与人：只有受邀人员和召集人{open_to}可以参加",
    ),
    "not_a_clerk": (
        "{actor} may not record for someone else: only {allowed} may, at an offline meeting",
        "{actor}无权代为记录：只有{allowed}可以在线下会议上代为记录",
    ),
    "on_behalf_of_self": (
        "{actor} is named as the person recorded for: record your own without on_behalf_of",
        "{actor}不能为自己代为记录：本人发表意见或签到时无须填写代为记录对象",
    ),
    "already_signed_in": (
        "{person} has already signed in to round {round}",
        "{person}已在第{round}轮协商签到",
    ),
    "reviewer_not_independent": (
        "{reviewer} took part in this decision and must stand aside from its legality review",
        "{reviewer}参与了该项决策，应当回避合法性审查",
    ),
    "feedback_given": (
        "{participant} has already rated this decision",
        "{participant}已对该决定作出评价",
    ),
    "not_published": (
        "publish the outcome first so residents can supervise it",
        "请先公开协商成果，以便居民监督",
    ),
    "unknown_measure": (
        "there is no measure {number}; the decision has {count}",
        "不存在第{number}项措施；该决定共有{count}项措施",
    ),
    "inspection_pending": (
        "supervision has not signed off: an inspection must pass after the latest report",
        "监督尚未通过：须在最近一次进展报告后进行督查验收并通过",
    ),
    "measures_unfinished": (
        "measures not yet carried out: {pending}",
        "尚未落实的措施：{pending}",
    ),
    "co_signer_is_actor": (
        "{person} raises the request and cannot also co-sign it; name other residents as co-signers",
        "{person}是提出人，不能同时作为联名人；请列出其他居民作为联名人",
    ),
    "co_signer_not_resident": (
        "{person} is not a resident of community {community} in the directory, so cannot co-sign",
        "根据人员名录，{person}不是{community}社区的居民，不能联名",
    ),
    "co_signers_required": (
        "a resident raises re-consultation with at least {required} co-signing residents; {given} named",
        "居民提出再次协商须有至少{required}名居民联名，现有{given}名",
    ),
    "cycle_limit": (
        "{used} cycle(s) of consultation held (re-consultations included), the limit is {limit}: "
        "no new cycle can start",
        "已进行{used}个协商周期（含再次协商），达到协商规则规定的上限{limit}个，不能再开始新的协商周期",
    ),
    "nothing_overdue": ("nothing is overdue", "没有逾期事项"),
    "no_route": (
        "the procedure has no way to {action} from here with this input",
        "按本程序，当前情况下无法{action}",
    ),
    "decided_by_body": (
        "the committee does not decide this matter itself: {body} decides it by a vote; put it to the vote",
        "本议题不由社区两委自行决策，应由{body}表决决定：请提交表决",
    ),
    "wrong_body": (
        "this matter is for {body} to decide, not {called}",
        "本议题应由{body}表决决定，而不是{called}",
    ),
    "vote_open": (
        "vote {vote} is still open; close it first",
        "第{vote}次表决尚未结束，请先结束表决",
    ),
    "round_voted": (
        "round {round} was already put to vote {vote}; hold another round before another vote",
        "第{round}轮协商已提交第{vote}次表决；再次表决前须再进行一轮协商",
    ),
    "no_open_vote": (
        "no vote is open",
        "当前没有进行中的表决",
    ),
    "not_a_member": (
        "{person} is not a member of {body} and may not vote in it",
        "{person}不是{body}的成员，不能参加表决",
    ),
    "already_voted": (
        "{person} has already voted in vote {vote}",
        "{person}已在第{vote}次表决中投票",
    ),
    "members_unknown": (
        "say how many members {body} has (members=...): this directory cannot list them, so the engine cannot "
        "count them",
        "请填写{body}的成员人数：当前名册无法列出成员，系统不能自行统计",
    ),
    "body_has_no_members": (
        "the directory lists no members of {body} in this community; grant them their roles before calling a vote",
        "名册中本社区没有{body}的成员；请先登记成员后再提交表决",
    ),
    "members_mismatch": (
        "{body} has {counted} members in the directory, not {stated}; leave members out to use the directory's "
        "count, or correct the directory",
        "名册中{body}有{counted}名成员，而不是{stated}名；不填成员人数即按名册统计，或先更正名册",
    ),
    "not_an_owner": (
        "{person} is in the property register given but is not an owner in the directory; correct the register "
        "or the directory",
        "{person}列在所报业主名册中，但名册中不是业主；请更正业主名册或成员名册",
    ),
    "vote_full": (
        "vote {vote} already has a ballot from each of the {members} members the register counts; correct the "
        "register and call the vote again",
        "第{vote}次表决的票数已达登记的{members}名成员；请核对成员名册后重新提交表决",
    ),
    "not_in_register": (
        "{person} is not in the property register vote {vote} was called with, and may not vote in it",
        "{person}不在第{vote}次表决所依据的业主名册中，不能参加表决",
    ),
    "reviewer_cast_ballot": (
        "{reviewer} voted in vote {vote} of {body}, which took the decision, and must stand aside from its "
        "legality review",
        "{reviewer}参加了作出决策的{body}第{vote}次表决，应当回避合法性审查",
    ),
    # meetings (会议): each meeting's notice, online meetings, minutes, the consultation day's rota
    "no_meeting_scheduled": (
        "no meeting is announced for the next round: announce one with its notice first (schedule a meeting)",
        "下一轮协商尚未发布会议公告：请先安排会议并告知",
    ),
    "meeting_pending": (
        "meeting {meeting} is already announced for {meeting_at}; hold it before announcing another",
        "第{meeting}次会议已定于{meeting_at}召开；请先召开该次会议，再安排下一次",
    ),
    "meeting_closed": (
        "online meeting {meeting} closed on {closed_at}: it takes nothing more",
        "第{meeting}次网上协商已于{closed_at}结束，不再接受签到或意见",
    ),
    "online_meeting_open": (
        "online meeting {meeting} is open until {closes_at}: opinions may still arrive; close the round then",
        "第{meeting}次网上协商开放至{closes_at}，居民仍可发表意见；届时再结束本轮",
    ),
    "chair_not_on_rota": (
        "{month}'s consultation day is chaired by {expected} on the rota, not {chair}",
        "按轮值表，{month}协商日的轮值主席是{expected}，不是{chair}",
    ),
    "no_such_meeting": (
        "there is no meeting {meeting}: this consultation has {meetings} meeting(s)",
        "没有第{meeting}次会议：本次协商共有{meetings}次会议",
    ),
    "meeting_not_held": (
        "meeting {meeting} has not been held yet: minutes follow the meeting, once its round has closed",
        "第{meeting}次会议尚未召开完毕：会议纪要须在该次会议的协商结束后记录",
    ),
    "minutes_already_recorded": (
        "the minutes of meeting {meeting} are already recorded; a change is recorded as a correction",
        "第{meeting}次会议的纪要已记录；如需修改，请以更正方式记录",
    ),
    "no_minutes_to_correct": (
        "meeting {meeting} has no minutes to correct yet: record them first",
        "第{meeting}次会议尚无纪要可更正：请先记录会议纪要",
    ),
    "not_the_meetings_chair": (
        "only the committee or meeting {meeting}'s chair ({chair}) may record its minutes",
        "只有社区两委或第{meeting}次会议的主持人（{chair}）可以记录会议纪要",
    ),
    "minutes_missing": (
        "the decision rests on round {round}, whose meeting ({meeting}) has no minutes yet: record them first",
        "决策所依据的第{round}轮协商（第{meeting}次会议）尚无会议纪要：请先记录",
    ),
    # ---- pledges (承诺制): moving a pledge's date (延期) ----
    "pledge_done": (
        "pledge {number} ({title}) is kept already: there is nothing to delay",
        "第{number}项承诺（{title}）已兑现，无需延期",
    ),
    "delay_limit": (
        "pledge {number} was delayed {delays} times already, as many as the procedure allows ({limit}); "
        "it stands or falls by its date, or the matter is consulted again",
        "第{number}项承诺已延期{delays}次，已达规定上限（{limit}次）；请按期兑现，或提请再次协商",
    ),
    "delay_not_later": (
        "the new date for pledge {number}, {due}, is not later than its date now, {current}",
        "第{number}项承诺的新期限（{due}）须晚于现有期限（{current}）",
    ),
    "delay_in_past": (
        "the new date for pledge {number}, {due}, has passed already; give a date still to come",
        "第{number}项承诺的新期限（{due}）已经过去，请给出尚未到来的日期",
    ),
    "delay_too_far": (
        "the new date for pledge {number}, {due}, is more than {days} days after the date decided ({pledged}); "
        "the latest is {latest}, or the matter is consulted again",
        "第{number}项承诺的新期限（{due}）超过决策所定期限（{pledged}）{days}天以上；最晚为{latest}，否则请提请再次协商",
    ),
    # proposal intake (提议): drafts, edits, co-signers, the "other" item, the appeal of a rejection
    "nothing_changed": (
        "the edit changes nothing: give at least one field with a new value",
        "修改未改变任何内容：请至少填写一项新的内容",
    ),
    "proposer_co_signs": (
        "{person} proposed the matter and cannot also co-sign it",
        "{person}是提议人，不能再联名",
    ),
    "already_co_signed": (
        "{person} has already co-signed this proposal",
        "{person}已联名该提议",
    ),
    "too_few_co_signers": (
        "a proposal needs {need} co-signer(s) before it is submitted, it has {have}: residents of the community "
        "co-sign its draft first",
        "提议须有{need}名本社区居民联名方可提交，现有{have}名：请先请居民在草稿上联名",
    ),
    "not_other_topic": (
        "only a proposal filed under an “other” item can become a new catalogue item; this one is under {topic}",
        "只有列在“其他”事项下的提议才能列入二级目录；本提议的议题是{topic}",
    ),
    "item_exists": (
        "{topic} is already an item of the community's catalogue",
        "{topic}已在本社区的协商目录中",
    ),
    "appeal_too_late": (
        "the time to appeal the rejection ended {appeal_by}",
        "申请复核的期限已于{appeal_by}届满",
    ),
    "reconsider_own_rejection": (
        "{person} rejected the proposal and may not reconsider the appeal against it",
        "{person}作出了不予受理的决定，不能复核对该决定的申请",
    ),
    # ---- the fund (微幸福便民服务公益金) ----
    "over_fund_pool": (
        "the budget of {budget} yuan is more than the community's whole fund for {year} ({pool} yuan)",
        "预算{budget}超过本社区{year}年便民服务公益金总额{pool}",
    ),
    "over_fund": (
        "the decision's budget of {amount} yuan is more than what is left of the community's fund for {year}: "
        "{left} yuan of {pool} yuan ({allocated} yuan allocated already)",
        "决策预算{amount}超出本社区{year}年便民服务公益金余额：总额{pool}，已安排{allocated}，尚余{left}",
    ),
    "fund_unknown": (
        "the community's fund ledger for {year} was not looked up: the engine asks its store for it",
        "未查询本社区{year}年公益金台账：应由系统向存储查询",
    ),
    "over_measure_budget": (
        "measure {number} would spend {total} yuan, over its budget of {budget} yuan ({spent_before} yuan spent "
        "already, {left} yuan left)",
        "第{number}项措施支出将达{total}，超出其预算{budget}（已支出{spent_before}，尚余{left}）",
    ),
    "overspend_needs_justification": (
        "measure {number} would spend {total} yuan, over its budget of {budget} yuan: give a justification to "
        "record the overspending",
        "第{number}项措施支出将达{total}，超出其预算{budget}：须说明超支理由方可记录",
    ),
}

# Display names: value -> (English, Chinese). Each table covers its enum exactly (tests/test_i18n.py).
STATE_NAMES: Mapping[str, tuple[str, str]] = {
    "proposed": ("proposed", "提议"),
    "notified": ("notified", "告知"),
    "consulting": ("consulting", "协商"),
    "decided": ("decided, under legality review", "决策（合法性审查中）"),
    "feedback": ("being carried out", "反馈落实"),
    "supervising": ("under supervision", "监督"),
    "closed": ("closed", "已办结"),
    "rejected": ("rejected", "未受理"),
    "withdrawn": ("withdrawn", "已撤回"),
    "escalated": ("escalated to the sub-district", "已提请街道督办"),
    # proposal intake (提议)
    "draft": ("a draft", "草稿"),
    "appealable": ("rejected, open to appeal", "不予受理（可申请复核）"),
    "appealed": ("appealed, under reconsideration", "申请复核中"),
}

ACTION_NAMES: Mapping[str, tuple[str, str]] = {
    "propose": ("propose a matter", "提出议题"),
    "reject": ("reject the proposal", "不予受理"),
    "withdraw": ("withdraw the matter", "撤回议题"),
    "notify": ("give notice", "发布协商公告"),
    "invite": ("invite more people", "增加邀请"),
    "open_round": ("open a round", "开始一轮协商"),
    "sign_in": ("sign in", "签到"),
    "record_opinion": ("give an opinion", "发表意见"),
    "close_round": ("close the round", "结束本轮协商"),
    "decide": ("decide", "作出决策"),
    "call_vote": ("put the decision to a vote", "提交表决"),
    "cast_vote": ("vote", "投票"),
    "close_vote": ("close the vote", "结束表决"),
    "review": ("review legality", "进行合法性审查"),
    "publish": ("publish the outcome", "公开协商成果"),
    "report_progress": ("report progress", "报告落实进展"),
    "record_feedback": ("rate the outcome", "居民评议"),
    "start_supervision": ("start supervision", "进入监督"),
    "inspect": ("inspect", "督查验收"),
    "request_reconsultation": ("ask to consult again", "提请再次协商"),
    "escalate": ("escalate to the sub-district", "提请街道督办"),
    "resume": ("resume the consultation", "恢复协商"),
    "close": ("close the matter", "办结"),
    "mark_overdue": ("mark what is overdue", "标记逾期"),
    # meetings (会议)
    "schedule_meeting": ("announce the next meeting", "安排下一次会议"),
    "record_minutes": ("record the minutes", "记录会议纪要"),
    # pledges (承诺制)
    "delay_pledge": ("delay a pledge", "承诺延期"),
    # proposal intake (提议)
    "submit": ("submit the draft", "提交提议"),
    "edit_proposal": ("edit the proposal", "修改提议"),
    "co_sign": ("co-sign the proposal", "联名提议"),
    "add_topic": ("add the matter to the catalogue", "列入二级目录"),
    "appeal": ("appeal the rejection", "申请复核"),
    "reconsider": ("reconsider the rejection", "复核不予受理决定"),
}

EVENT_NAMES: Mapping[str, tuple[str, str]] = {
    "proposed": ("proposed", "提出议题"),
    "rejected": ("rejected", "不予受理"),
    "withdrawn": ("withdrawn", "撤回议题"),
    "notified": ("notice given", "发布协商公告"),
    "invited": ("more people invited", "增加邀请"),
    "round_opened": ("round opened", "开始协商"),
    "signed_in": ("signed in", "签到"),
    "opinion_recorded": ("opinion given", "发表意见"),
    "round_closed": ("round closed", "结束本轮协商"),
    "escalated": ("escalated to the sub-district", "提请街道督办"),
    "vote_called": ("put to a vote", "提交表决"),
    "vote_cast": ("voted", "投票"),
    "vote_closed": ("vote closed", "表决结束"),
    "decided": ("decided", "作出决策"),
    "legality_reviewed": ("legality reviewed", "合法性审查"),
    "published": ("outcome published", "公开协商成果"),
    "progress_reported": ("progress reported", "报告落实进展"),
    "feedback_received": ("satisfaction rated", "满意度评价"),
    "supervision_started": ("supervision started", "进入监督"),
    "inspected": ("inspected", "督查验收"),
    "reconsultation_requested": ("consult again", "再次协商"),
    "resumed": ("resumed", "恢复协商"),
    "closed": ("closed", "办结"),
    "deadline_missed": ("deadline missed", "逾期"),
    "reminder": ("reminder", "提醒"),
    # meetings (会议)
    "meeting_scheduled": ("meeting announced", "发布会议公告"),
    "minutes_recorded": ("minutes recorded", "记录会议纪要"),
    # pledges (承诺制)
    "pledge_published": ("pledge published", "公开承诺"),
    "pledge_delayed": ("pledge delayed", "承诺延期"),
    # proposal intake (提议)
    "drafted": ("draft saved", "保存草稿"),
    "draft_edited": ("draft edited", "修改草稿"),
    "draft_discarded": ("draft discarded", "放弃草稿"),
    "submitted": ("proposal submitted", "提交提议"),
    "proposal_edited": ("proposal edited", "修改提议"),
    "co_signed": ("co-signed", "联名"),
    "topic_added": ("added to the catalogue", "列入二级目录"),
    "appealed": ("rejection appealed", "申请复核"),
    "reconsidered": ("rejection reconsidered", "复核不予受理决定"),
    "rejection_final": ("rejection final", "不予受理决定生效"),
    # ---- the fund (微幸福便民服务公益金) ----
    "funds_allocated": ("funds allocated", "安排公益金"),
    "funds_spent": ("funds spent", "公益金支出"),
    "funds_released": ("funds released", "公益金退回"),
}

# Events whose name says which round: used when the entry's data gives the round.
_ROUND_EVENT_NAMES: Mapping[str, tuple[str, str]] = {
    "round_opened": ("round {round} opened", "开始第{round}轮协商"),
    "round_closed": ("round {round} closed", "第{round}轮协商结束"),
}

ROLE_NAMES: Mapping[str, tuple[str, str]] = {
    "committee": ("the community committees", "社区两委"),
    "working_committee": ("a working committee", "工作委员会"),
    "council_member": ("a council member", "理事"),
    "resident": ("a resident", "居民"),
    "resident_representative": ("a resident representative", "居民代表"),
    "property_management": ("the property management company", "物业服务企业"),
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
    "legal_adviser": ("the legal adviser", "法律顾问"),
    "owner": ("an owner", "业主"),
    "proposer": ("the proposer", "提议人"),
    "invitee": ("someone invited", "受邀人员"),
    "system": ("the system clock", "系统"),
}

STANCE_NAMES: Mapping[str, tuple[str, str]] = {
    "support": ("support", "支持"),
    "oppose": ("oppose", "反对"),
    "abstain": ("abstain", "弃权"),
    "amend": ("amend", "修改"),
}

VERDICT_NAMES: Mapping[str, tuple[str, str]] = {
    "lawful": ("lawful", "合法"),
    "unlawful": ("unlawful", "不合法"),
}

# the consensus rule's kinds (``ConsensusRule.kind``)
RULE_NAMES: Mapping[str, tuple[str, str]] = {
    "unanimity": ("unanimity", "一致同意"),
    "threshold": ("threshold", "多数同意"),
    "no_sustained_objection": ("no sustained objection", "无持续反对"),
}

# who takes a decision (``Body``)
BODY_NAMES: Mapping[str, tuple[str, str]] = {
    "committee": ("the community committees", "社区两委"),
    "residents_meeting": ("the residents' meeting", "居民会议"),
    "representatives_meeting": ("the residents' representatives' meeting", "居民代表会议"),
    "council": ("the consultation council", "社区协商议事会"),
    "owners_meeting": ("the owners' meeting", "业主大会"),
}

BALLOT_NAMES: Mapping[str, tuple[str, str]] = {
    "for": ("for", "同意"),
    "against": ("against", "反对"),
    "abstain": ("abstain", "弃权"),
}

CHANNEL_NAMES: Mapping[str, tuple[str, str]] = {
    "website": ("website", "网站"),
    "notice_board": ("notice board", "公告栏"),
    "microblog": ("microblog", "微博"),
    "wechat": ("WeChat", "微信"),
    "app": ("app", "手机应用"),
    "roadmap": ("results roadmap", "成果运用路线图"),
}

# ---- the fund (微幸福便民服务公益金): the 微 project types (``ProjectType``) ----
PROJECT_TYPE_NAMES: Mapping[str, tuple[str, str]] = {
    "road_network": ("micro road network", "微路网"),
    "greening": ("micro greening", "微绿化"),
    "square": ("micro square", "微广场"),
    "facilities": ("micro facilities", "微设施"),
    "care": ("micro care", "微爱心"),
    "culture": ("micro culture", "微文化"),
    "tourism": ("micro tourism", "微旅游"),
}

#: Every name table by what it names (the tests check each against its enum).
NAME_TABLES: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "state": STATE_NAMES,
    "action": ACTION_NAMES,
    "event": EVENT_NAMES,
    "role": ROLE_NAMES,
    "stance": STANCE_NAMES,
    "verdict": VERDICT_NAMES,
    "rule": RULE_NAMES,
    "channel": CHANNEL_NAMES,
    "body": BODY_NAMES,
    "ballot": BALLOT_NAMES,
    "project_type": PROJECT_TYPE_NAMES,
}

_ARTICLES = ("the ", "a ", "an ")


def pick(pair: tuple[str, str], lang: Lang) -> str:
    """The ``lang`` half of an (English, Chinese) pair."""
    return pair[0] if lang == "en" else pair[1]


def _pick(table: Mapping[str, tuple[str, str]], key: str, lang: Lang) -> str:
    pair = table.get(key)
    if pair is None:
        return key
    return pick(pair, lang)


def state_name(state: str, lang: Lang = "en") -> str:
    return _pick(STATE_NAMES, str(state), lang)


def role_name(role: str, lang: Lang = "en") -> str:
    """A role as a sentence names it: ``the rotating chair`` / ``轮值主席``."""
    return _pick(ROLE_NAMES, str(role), lang)


def role_label(role: str, lang: Lang = "en") -> str:
    """A role as a label shows it, without an article: ``rotating chair`` / ``轮值主席``."""
    name = role_name(role, lang)
    if lang == "en":
        for article in _ARTICLES:
            if name.startswith(article):
                return name[len(article) :]
    return name


def event_name(event: str, lang: Lang = "en", data: Mapping[str, object] | None = None) -> str:
    """An event as a person reads it; with the entry's data, a round's events say which round."""
    numbered = _ROUND_EVENT_NAMES.get(str(event))
    if numbered is not None and data is not None and data.get("round") is not None:
        return pick(numbered, lang).format(round=data["round"])
    return _pick(EVENT_NAMES, str(event), lang)


def action_name(trigger: str, lang: Lang = "en") -> str:
    return _pick(ACTION_NAMES, str(trigger), lang)


def stance_name(stance: str, lang: Lang = "en") -> str:
    return _pick(STANCE_NAMES, str(stance), lang)


def verdict_name(verdict: str, lang: Lang = "en") -> str:
    return _pick(VERDICT_NAMES, str(verdict), lang)


def rule_name(kind: str, lang: Lang = "en") -> str:
    return _pick(RULE_NAMES, str(kind), lang)


def channel_name(channel: str, lang: Lang = "en") -> str:
    return _pick(CHANNEL_NAMES, str(channel), lang)


def body_name(body: str, lang: Lang = "en") -> str:
    """Who decides, as a sentence names it: ``the owners' meeting`` / ``业主大会``."""
    return _pick(BODY_NAMES, str(body), lang)


def project_type_name(kind: str, lang: Lang = "en") -> str:
    """A 微 project type's name (微绿化, micro greening)."""
    return _pick(PROJECT_TYPE_NAMES, kind, lang)


def ballot_name(ballot: str, lang: Lang = "en") -> str:
    return _pick(BALLOT_NAMES, str(ballot), lang)


# zones people call Beijing time (北京时间)
_BEIJING_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


def _utc_offset(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'+' if minutes > 0 else '-'}{hours}" + (f":{rest:02d}" if rest else "")


def zone_name(when: datetime, lang: Lang = "en") -> str:
    """The zone ``when`` is given in, as people say it: 北京时间 / Beijing time, else its UTC offset
    (``UTC+8``); empty for a naive time."""
    if getattr(when.tzinfo, "key", None) in _BEIJING_ZONES:
        return "北京时间" if lang == "zh" else "Beijing time"
    return _utc_offset(when.utcoffset())


def format_value(value: object, lang: Lang = "en", tz: tzinfo | None = None) -> str:
    """Render one data value for a person: dates in their time zone (saying which), lists joined,
    enums by value."""
    if isinstance(value, datetime):
        when = value.astimezone(tz) if tz is not None else value
        zone = zone_name(when, lang)
        if lang == "zh":
            return f"{when.year}年{when.month}月{when.day}日 {when.hour:02d}:{when.minute:02d}" + (
                f"（{zone}）" if zone else ""
            )
        return f"{when.day} {_MONTHS[when.month - 1]} {when.year}, {when.hour:02d}:{when.minute:02d} {zone}".rstrip()
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


def message(code: str, data: Mapping[str, object], lang: Lang | str = "en", tz: tzinfo | None = None) -> str:
    """The message for a refusal code, filled with its data, in ``lang``."""
    if lang not in LANGS:
        raise InvalidInput(f"unsupported language {lang!r}; use one of {', '.join(LANGS)}")
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
            values[key] = _either([role_name(str(v), lang) for v in value], lang)
        elif key == "rule" and isinstance(value, str):
            values[key] = rule_name(value, lang)
        elif key in ("body", "called") and isinstance(value, str):
            values[key] = body_name(value, lang)
        elif key == "open_to" and isinstance(value, str):
            values[key] = _OPEN_TO.get(value, ("", ""))[0 if lang == "en" else 1]
        else:
            values[key] = format_value(value, lang, tz)
    for key in list(values):  # ``name_en`` / ``name_zh`` fill ``{name}`` in their language
        stem, _, suffix = key.rpartition("_")
        if stem and suffix == lang:
            values[stem] = values[key]
    return template.format(**values)


# who rounds are open to (Parameters.round_open_to), as it completes the not_taking_part sentence
_OPEN_TO: Mapping[str, tuple[str, str]] = {
    "invitees": (" may", ""),
    "invitees_and_residents": (", and the residents of the community, may", "以及本社区居民"),
}


def refusals_table() -> str:
    """The refusal codes as the Markdown table of ``docs/refusals.md``, both languages."""
    rows = ["| code | English | 中文 |", "| --- | --- | --- |"]
    rows += [f"| `{code}` | {en} | {zh} |" for code, (en, zh) in MESSAGES.items()]
    return "\n".join(rows)


# pydantic error type (or our own custom type) -> Chinese; English uses pydantic's own message.
# Placeholders: {field} and the error's context (min_length, max_length, ge, le, expected, ...).
FIELD_PROBLEMS_ZH: Mapping[str, str] = {
    "missing": "缺少{field}",
    "extra_forbidden": "没有名为{field}的字段",
    "string_type": "{field}应为文字",
    "string_too_short": "{field}不能为空",
    "string_too_long": "{field}过长：至多{max_length}个字符",
    "string_pattern_mismatch": "{field}的格式不正确",
    "time_out_of_range": "{field}超出可用的时间范围（UTC 1970-01-01至9000-01-01）",
    "id_invisible": "{field}含有不可见字符（控制字符、格式字符或双向控制符）",
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
    "co_signers_duplicate": "联名人重复列出了同一人；每人只列一次",
    "unlawful_needs_basis": "认定不合法须写明法律依据和纠正意见（依法纠正）",
    "schedule_order": "时间顺序有误：告知时间≤告知期结束≤会议时间",
    "deadline_after_notice": "决策期限须长于告知期，否则无法作出决策",
    "clerk_roles": "clerk_roles只能是主持或服务协商的角色（{allowed}），不能是{beyond}",
    "person_id": "{field}不是有效的人员编号：{reason}",
    "frozen_instance": "{field}不可修改：记录建立后不能更改，请新建一条",
    "frozen_field": "{field}不可修改：记录建立后不能更改，请新建一条",
    # pledges (承诺制): photos of the work
    "photo_hash": "{field}应为照片的SHA-256值：64位十六进制数字",
    "photos_duplicate": "同一张照片重复列出；每张只列一次",
}


def _either(items: list[str], lang: Lang) -> str:
    """Alternatives as a person says them: "a, b or c" / "a、b或c"."""
    if len(items) < 2:
        return items[0] if items else ("无" if lang == "zh" else "none")
    if lang == "zh":
        return "、".join(items[:-1]) + "或" + items[-1]
    return ", ".join(items[:-1]) + " or " + items[-1]


def field_problem(field: str, kind: str, msg: str, ctx: Mapping[str, object], lang: Lang | str = "en") -> str:
    """One field's problem in ``lang``: ``"title: String should have at most 200 characters"``.
    A problem of the whole command (``field`` is ``"-"``) is given without a field name."""
    if field in ("", "-"):
        field = ""
        if lang != "zh":
            return msg.removeprefix("Value error, ")
    if lang != "zh":
        return f"{field}: {msg}"
    template = FIELD_PROBLEMS_ZH.get(kind)
    if template is None:
        return f"{field}无效：{msg}"
    values = {k: str(v) for k, v in ctx.items()}
    if "expected" in values:  # pydantic lists choices as "'a', 'b' or 'c'"
        values["expected"] = values["expected"].replace(" or ", "、").replace(", ", "、")
    values["field"] = field
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return f"{field}无效：{msg}"
