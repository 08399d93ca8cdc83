"""Recipients, messages and the dispatcher, through the real engine and stores (the memory channel
stands in for the receiving end; the real servers are in test_delivery_reliability and
test_delivery_channels)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultflow import InvalidInput, MemoryDirectory, MemoryStore, Notice, Role, SimulatedClock
from consultflow.delivery import (
    Contact,
    Delivery,
    Dispatcher,
    LinkTemplate,
    MemoryChannel,
    MemoryContacts,
    Outcome,
    Person,
    Prepares,
    Recipients,
    RetryPolicy,
    Templates,
)
from consultflow.demo import COMMUNITY, demo_engine, run_story
from consultflow.directory import sub_district
from consultflow.vocabulary import Event, State
from delivery_support import QUICK, seed, statuses

AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


# ---- recipients ---------------------------------------------------------------------------------------------
def _directory() -> MemoryDirectory:
    d = MemoryDirectory()
    d.place("xiaotaoyuan", sub_district="ninghai", district="gulou")
    d.grant("xiaotaoyuan", "wang", Role.COMMITTEE)
    d.grant("xiaotaoyuan", "zhou", Role.COMMITTEE)
    d.grant("other", "sun", Role.COMMITTEE)
    d.grant(sub_district("ninghai"), "gao", Role.SUB_DISTRICT)
    d.grant(sub_district("elsewhere"), "qian", Role.SUB_DISTRICT)
    return d


def _contacts() -> MemoryContacts:
    return MemoryContacts(
        [
            Person("li", (Contact("email", "li@x.example"),), lang="en"),
            Person("wang", (Contact("wecom", "wecombot://key-wang"), Contact("email", "wang@x.example"))),
            Person("zhou", (Contact("email", "zhou@x.example"),)),
            Person("gao", (Contact("email", "gao@ninghai.example"),)),
            Person("zhao", offline=True),
            Person("wu", offline=True),
            Person("chen"),
        ],
        {"xiaotaoyuan": (Contact("board", "wecombot://board"),)},
    )


def test_people_roles_and_the_public_resolve_to_contacts() -> None:
    r = Recipients(_contacts(), _directory())
    got = r.resolve(("li", "role:committee", "role:sub_district", "public:xiaotaoyuan"), "xiaotaoyuan", AT)
    pairs = {(t.recipient, t.contact.channel, t.contact.address, t.lang) for t in got.targets}
    assert pairs == {
        ("li", "email", "li@x.example", "en"),
        ("wang", "wecom", "wecombot://key-wang", "zh"),
        ("wang", "email", "wang@x.example", "zh"),
        ("zhou", "email", "zhou@x.example", "zh"),
        ("gao", "email", "gao@ninghai.example", "zh"),  # the sub-district above the community
        ("public:xiaotaoyuan", "board", "wecombot://board", "zh"),
    }
    assert got.unreachable == ()  # sun (another community) and qian (another sub-district) are not asked


def test_offline_residents_reach_the_notice_board_once_and_the_unreachable_are_reported() -> None:
    r = Recipients(_contacts(), _directory())
    got = r.resolve(("zhao", "wu", "chen", "nobody"), "xiaotaoyuan", AT)
    assert [(t.recipient, t.contact.address) for t in got.targets] == [("public:xiaotaoyuan", "wecombot://board")]
    assert {u.recipient: u.reason for u in got.unreachable} == {
        "chen": "has no contact and is not marked offline",
        "nobody": "not in the contact book",
    }


def test_an_offline_resident_of_a_community_without_a_board_is_unreachable() -> None:
    got = Recipients(_contacts(), _directory()).resolve(("zhao", "public:other"), "other", AT)
    assert got.targets == ()
    assert {u.recipient for u in got.unreachable} == {"zhao", "public:other"}


def test_a_role_nobody_holds_or_no_directory_is_reported() -> None:
    got = Recipients(_contacts(), _directory()).resolve(("role:supervisor", "role:bogus"), "xiaotaoyuan", AT)
    assert {u.recipient for u in got.unreachable} == {"role:supervisor", "role:bogus"}
    nodir = Recipients(_contacts()).resolve(("role:committee",), "xiaotaoyuan", AT)
    assert "no directory" in nodir.unreachable[0].reason


def test_a_revoked_role_no_longer_hears() -> None:
    d = _directory()
    d.revoke("xiaotaoyuan", "zhou", Role.COMMITTEE, at=AT - timedelta(days=1))
    got = Recipients(_contacts(), d).resolve(("role:committee",), "xiaotaoyuan", AT)
    assert {t.recipient for t in got.targets} == {"wang"}


@pytest.mark.parametrize(
    ("channel", "address"), [("", ""), ("e mail", ""), ("x" * 65, ""), ("email", "a\r\nBcc: b"), ("email", "x" * 3000)]
)
def test_contacts_are_checked_where_they_enter(channel: str, address: str) -> None:
    with pytest.raises(InvalidInput):
        Contact(channel, address)


def test_a_person_id_is_normalised_and_a_language_checked() -> None:
    assert Person("Li").id == "li"
    with pytest.raises(InvalidInput):
        Person("li", lang="fr")


# ---- messages -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def story() -> tuple[MemoryStore, str]:
    store = MemoryStore()
    engine, clock = demo_engine(store)
    cid = run_story(engine, clock)
    return store, cid


def _notice(store: MemoryStore, event: Event) -> Notice:
    return next(n for n in store.outbox() if n.event is event)


def test_a_notice_renders_in_both_languages_in_the_procedures_zone(story: tuple[MemoryStore, str]) -> None:
    store, cid = story
    notice = _notice(store, Event.NOTIFIED)
    record = store.load(cid)
    link = LinkTemplate("https://app.example/c/{consultation}#{seq}")
    zh = Templates().render(notice, record, "zh", link=link)
    en = Templates().render(notice, record, "en", link=link)
    assert zh.subject == "【xiaotaoyuan】夜间停车难 Night parking：发布协商公告"
    assert en.subject == "[xiaotaoyuan] 夜间停车难 Night parking: notice given"
    assert "2026年3月3日 10:00（北京时间）" in zh.body  # given at 02:00 UTC, shown in Beijing time
    assert "3 March 2026, 10:00 Beijing time" in en.body
    # delivered after the story ended: the reader is told it has ended, not to come to a past meeting
    assert "无需操作：本协商现为“已办结”" in zh.body
    assert "nothing more: the consultation is now closed" in en.body
    live = Templates().render(notice, record.model_copy(update={"state": State.CONSULTING}), "en")
    assert "come to the consultation meeting on 11 March 2026, 10:00 Beijing time" in live.body
    assert en.link == f"https://app.example/c/{cid}#2"
    assert en.link in en.body


def test_a_community_overrides_templates_and_names_from_a_file(tmp_path: Path, story: tuple[MemoryStore, str]) -> None:
    store, cid = story
    path = tmp_path / "templates.toml"
    path.write_text(
        '[names.xiaotaoyuan]\nzh = "小桃园社区"\nen = "Xiaotaoyuan"\n'
        '[published.zh]\nsubject = "【$community】协商成果公示：$title"\n'
        '[default.en]\nbody = "$event - $title ($$0 cost)"\n',
        encoding="utf-8",
    )
    t = Templates.from_file(path)
    published = _notice(store, Event.PUBLISHED)
    record = store.load(cid)
    assert t.render(published, record, "zh").subject == "【小桃园社区】协商成果公示：夜间停车难 Night parking"
    assert t.render(published, record, "en").subject.startswith("[Xiaotaoyuan] ")  # built-in subject, file's name
    assert t.render(published, record, "en").body == "outcome published - 夜间停车难 Night parking ($0 cost)"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[notified.zh]\nsubject = "$secret"', "unknown field"),
        ('[notified.zh]\nsubject = "100$"', "not a placeholder"),
        ('[notified.fr]\nsubject = "x"', "not a language"),
        ('[bogus.zh]\nsubject = "x"', "not an event"),
        ('[notified.zh]\nheader = "x"', "subject and/or body"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_a_bad_template_file_is_refused_with_the_reason(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match=problem):
        Templates.from_file(path)


def test_values_are_never_read_as_placeholders(story: tuple[MemoryStore, str]) -> None:
    store, cid = story
    notice = _notice(store, Event.NOTIFIED).model_copy(update={"title": "$link ${title} {consultation}"})
    msg = Templates().render(notice, store.load(cid), "en")
    assert msg.subject.endswith("$link ${title} {consultation}: notice given")


@pytest.mark.parametrize("pattern", ["javascript:alert(1)", "https://x/{secret}", "ftp://x/{consultation}", "/c/{seq}"])
def test_a_link_template_must_be_an_http_url_with_known_fields(pattern: str) -> None:
    with pytest.raises(InvalidInput):
        LinkTemplate(pattern)


def test_a_link_quotes_what_it_inserts() -> None:
    assert LinkTemplate("https://a.example/{community}/{consultation}").build("c/../x?y", 1, "小桃园") == (
        "https://a.example/%E5%B0%8F%E6%A1%83%E5%9B%AD/c%2F..%2Fx%3Fy"
    )


# ---- the dispatcher ------------------------------------------------------------------------------------------
def test_the_reference_story_reaches_people_boards_and_roles(story: tuple[MemoryStore, str]) -> None:
    _source, _cid = story
    store = MemoryStore()
    engine, clock = demo_engine(store)
    run_story(engine, clock)
    contacts = MemoryContacts(
        [Person(p, (Contact("email", f"{p}@x.example"),), lang="en" if p == "li" else "zh") for p in ("li", "zhang")],
        {COMMUNITY: (Contact("board", ""),)},
    )
    email, board = MemoryChannel(), MemoryChannel()
    dispatcher = Dispatcher(
        store, channels={"email": email, "board": board}, recipients=Recipients(contacts, engine.directory)
    )
    report = dispatcher.run(until="ready")
    assert report.delivered == len(store.outbox())
    assert report.delivered >= 15
    assert set(statuses(store).values()) == {"delivered"}
    li = [d for d in email.sent if d.recipient == "li"]
    assert li
    assert all(d.message.lang == "en" for d in li)
    assert {d.key for d in li} == {f"{n.key}/li/email" for n in store.outbox() if "li" in n.audience}
    assert any(d.notice.event is Event.PUBLISHED for d in board.sent)  # 公开制: the board hears of the outcome
    unreached = {u.recipient for _, u in report.unreachable}
    assert "wu" in unreached  # invited, with no contact: reported, not skipped
    assert all("@" not in u.reason for _, u in report.unreachable)


def test_a_transient_failure_is_retried_with_backoff_then_delivered() -> None:
    store = MemoryStore()
    keys = seed(store, 2)
    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))
    failures = {k: 2 for k in keys}

    def flaky(d: Delivery) -> Outcome:
        if failures[d.key]:
            failures[d.key] -= 1
            return Outcome.retry("busy")
        return Outcome.delivered()

    channel = MemoryChannel(flaky)
    policy = RetryPolicy(max_attempts=5, base=timedelta(seconds=10), cap=timedelta(seconds=15))
    dispatcher = Dispatcher(store, sinks={"m": channel}, clock=clock, policy=policy, rng=random.Random(1))
    assert dispatcher.run_once().retried == len(keys)
    assert dispatcher.run_once().settled == 0  # nothing ready until the backoff has passed
    waits = [n.not_before - clock.now() for n in store.outbox()]  # type: ignore[operator]
    assert all(timedelta(seconds=5) <= w <= timedelta(seconds=10) for w in waits)
    clock.advance(seconds=10)
    assert dispatcher.run_once().retried == len(keys)
    clock.advance(seconds=15)
    assert dispatcher.run_once().delivered == len(keys)
    assert [n.attempts for n in store.outbox()] == [3] * len(keys)
    assert set(channel.accepted) == set(keys)


def test_after_n_attempts_a_notice_is_dead_with_the_last_error_and_can_be_sent_again() -> None:
    store = MemoryStore()
    keys = seed(store, 1)
    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))
    down = MemoryChannel(lambda d: Outcome.retry(f"503 on attempt for {d.key}"))
    policy = RetryPolicy(max_attempts=3, base=timedelta(seconds=1), cap=timedelta(seconds=1))
    dispatcher = Dispatcher(store, sinks={"m": down}, clock=clock, policy=policy)
    for _ in range(3):
        dispatcher.run_once()
        clock.advance(seconds=1)
    dead = store.outbox(status="dead")
    assert [n.key for n in dead] == keys
    assert all(n.attempts == 3 and n.last_error.startswith("* via m: 503") for n in dead)
    for key in keys:
        store.requeue(key, now=clock.now())
    up = MemoryChannel()
    assert Dispatcher(store, sinks={"m": up}, clock=clock).run(until="ready").delivered == len(keys)
    assert set(up.accepted) == set(keys)


def test_a_permanent_failure_is_dead_at_once_and_a_raising_channel_is_retried() -> None:
    store = MemoryStore()
    seed(store, 1)
    Dispatcher(store, sinks={"m": MemoryChannel(lambda d: Outcome.failed("410 Gone"))}).run(until="ready")
    assert {n.status for n in store.outbox()} == {"dead"}
    store2 = MemoryStore()
    seed(store2, 1)

    def boom(d: Delivery) -> Outcome:
        raise RuntimeError("a bug in a plug-in")

    Dispatcher(store2, sinks={"m": MemoryChannel(boom)}, policy=QUICK).run_once()
    assert {n.status for n in store2.outbox()} == {"pending"}
    assert all("RuntimeError: a bug in a plug-in" in n.last_error for n in store2.outbox())


class _PreparingChannel(MemoryChannel):
    """A channel that does its work ahead (``channel.Prepares``): the dispatcher prepares the whole
    batch before it sends any of it. ``fail`` makes ``prepare`` raise, as a plug-in with a bug would."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.log: list[str] = []

    def prepare(self, delivery: Delivery) -> Callable[[], Outcome]:
        if self.fail:
            raise RuntimeError("a bug in prepare")
        self.log.append(f"prepare {delivery.key}")

        def send() -> Outcome:
            self.log.append(f"send {delivery.key}")
            return self.send(delivery)

        return send


def test_a_channel_that_prepares_has_the_batch_prepared_before_any_send() -> None:
    store = MemoryStore()
    keys = seed(store, 3)
    channel = _PreparingChannel()
    assert isinstance(channel, Prepares)
    report = Dispatcher(store, sinks={"p": channel}, batch=10).run_once()
    assert report.delivered == len(keys)
    assert channel.log == [f"prepare {k}" for k in keys] + [f"send {k}" for k in keys]
    assert set(channel.accepted) == set(keys)


def test_a_prepare_that_raises_is_a_transient_failure_with_the_reason() -> None:
    store = MemoryStore()
    keys = seed(store, 2)
    channel = _PreparingChannel(fail=True)
    report = Dispatcher(store, sinks={"p": channel}, policy=QUICK).run_once()
    assert (report.delivered, report.retried) == (0, len(keys))
    assert {n.status for n in store.outbox()} == {"pending"}
    assert all("RuntimeError: a bug in prepare" in n.last_error for n in store.outbox())
    assert not channel.sent


def test_several_workers_in_one_dispatcher_deliver_each_notice_once() -> None:
    store = MemoryStore()
    keys = seed(store, 20)
    channel = MemoryChannel()
    dispatcher = Dispatcher(store, sinks={"m": channel}, workers=4, batch=7)
    try:
        assert dispatcher.run(until="ready").delivered == len(keys)
    finally:
        dispatcher.close()
    assert sorted(d.key for d in channel.sent) == sorted(keys)


# ---- a batch never outlives its lease; a stop releases what was not sent ----------------------------------------
@pytest.mark.parametrize("workers", [1, 3])
def test_no_send_starts_after_half_the_lease_and_the_rest_is_released_untried(workers: int) -> None:
    store = MemoryStore()
    keys = seed(store, 5)  # ten notices, one batch
    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))

    def slow(d: Delivery) -> Outcome:  # each send takes a minute of the five-minute lease
        clock.advance(seconds=60)
        return Outcome.delivered()

    channel = MemoryChannel(slow)
    dispatcher = Dispatcher(store, sinks={"m": channel}, clock=clock, lease_for=timedelta(minutes=5), workers=workers)
    try:
        report = dispatcher.run_once()
        sent = [d.key for d in channel.sent]
        rest = [n for n in store.outbox() if n.key not in sent]
        again = dispatcher.run(until="ready")
    finally:
        dispatcher.close()
    assert report.delivered == len(sent)
    assert report.released == len(keys) - len(sent)
    if workers == 1:
        assert sent == keys[:3], "sends start at 0, 1 and 2 minutes; at 2.5 minutes the batch stops sending"
    assert 1 <= len(sent) < len(keys)
    assert {(n.status, n.attempts) for n in rest} == {("pending", 0)}, (
        "released: pending again, and the attempt its lease counted is taken back"
    )
    assert again.delivered == len(keys) - len(sent), "released notices are ready at once, not after the lease"
    assert sorted(d.key for d in channel.sent) == sorted(keys), "each notice once"


def test_the_first_send_of_a_batch_always_goes_so_a_tiny_lease_still_makes_progress() -> None:
    store = MemoryStore()
    keys = seed(store, 2)
    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))
    channel = MemoryChannel(lambda d: (clock.advance(seconds=1), Outcome.delivered())[1])
    dispatcher = Dispatcher(store, sinks={"m": channel}, clock=clock, lease_for=timedelta(seconds=1))
    assert dispatcher.run(until="ready").delivered == len(keys)
    assert [d.key for d in channel.sent] == keys
    assert [n.attempts for n in store.outbox()] == [1] * len(keys), "the releases on the way counted no attempt"


def test_stop_mid_batch_releases_the_notices_not_yet_sent() -> None:
    store = MemoryStore()
    keys = seed(store, 5)
    box: list[Dispatcher] = []

    def stop_after_three(d: Delivery) -> Outcome:
        if len(channel.sent) == 2:  # the third send is under way when the signal comes
            box[0].stop()
        return Outcome.delivered()

    channel = MemoryChannel(stop_after_three)
    box.append(Dispatcher(store, sinks={"m": channel}))
    report = box[0].run(until="ready")
    assert [d.key for d in channel.sent] == keys[:3], "the send under way finishes; no new one starts"
    assert (report.delivered, report.released) == (3, len(keys) - 3)
    assert statuses(store) == {k: "delivered" if k in keys[:3] else "pending" for k in keys}
    assert all(n.attempts == 0 for n in store.outbox() if n.key not in keys[:3])


# ---- each lease sized from the last batch's pace ------------------------------------------------------------
def test_each_lease_is_sized_to_the_last_batchs_pace() -> None:
    store = MemoryStore()
    keys = seed(store, 35)  # seventy notices
    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))

    def slow(d: Delivery) -> Outcome:  # a receiver that takes 50 ms an answer
        clock.advance(milliseconds=50)
        return Outcome.delivered()

    dispatcher = Dispatcher(store, sinks={"m": MemoryChannel(slow)}, clock=clock, batch_seconds=0.25)
    assert dispatcher.lease_size == 10, "before it knows the pace, a dispatcher leases at most 10"
    assert dispatcher.run_once().delivered == 10
    assert dispatcher.lease_size == 5, "0.25 s at 50 ms a notice"
    assert dispatcher.run_once().delivered == 5
    fast = Dispatcher(store, sinks={"m": MemoryChannel()}, clock=clock, batch=40)  # answers take no time
    assert fast.run_once().delivered == 10
    assert fast.lease_size == 40, "a fast receiver: batches as large as batch allows"
    assert fast.run_once().delivered == 40
    assert fast.run_once().delivered == len(keys) - (10 + 5 + 10 + 40)
    assert {n.status for n in store.outbox()} == {"delivered"}
    capped = Dispatcher(MemoryStore(), sinks={"m": MemoryChannel()}, batch=3)
    assert capped.lease_size == 3


def test_paced_dispatchers_share_a_backlog_from_a_slow_receiver() -> None:
    store = MemoryStore()
    keys = seed(store, 30)  # sixty notices
    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))

    def slow(d: Delivery) -> Outcome:  # 50 ms an answer
        clock.advance(milliseconds=50)
        return Outcome.delivered()

    channel = MemoryChannel(slow)
    one, two = (Dispatcher(store, sinks={"m": channel}, clock=clock) for _ in range(2))
    got = {id(one): 0, id(two): 0}
    while True:  # the two take turns, as two processes would
        done = [d.run_once().delivered for d in (one, two)]
        got[id(one)] += done[0]
        got[id(two)] += done[1]
        if not any(done):
            break
    assert sorted(d.key for d in channel.sent) == sorted(keys)
    assert list(got.values()) == [30, 30], (
        "after their first leases of 10, each leases 5 (0.25 s at 50 ms): without pacing the first "
        "to lease again would take all that is left"
    )


def test_workers_always_have_a_notice_each_and_every_send_goes_through_them() -> None:
    import threading

    store = MemoryStore()
    seed(store, 10)
    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))
    names: list[str] = []

    def slow(d: Delivery) -> Outcome:  # a send slower than batch_seconds: the pace alone would say 1
        names.append(threading.current_thread().name)
        clock.advance(seconds=1)
        return Outcome.delivered()

    dispatcher = Dispatcher(store, sinks={"m": MemoryChannel(slow)}, clock=clock, workers=4, batch_seconds=0.25)
    try:
        assert dispatcher.run_once().delivered == 10
        assert dispatcher.lease_size == 4, "never fewer than workers, or they have nothing to do"
        assert dispatcher.run_once().delivered == 4
    finally:
        dispatcher.close()
    assert all(n.startswith("consultflow-dispatch") for n in names), "the first send of a batch too"


def test_dispatcher_threads_share_a_backlog_each_notice_once() -> None:
    import threading
    import time

    store = MemoryStore()
    keys = seed(store, 40)

    def slow(d: Delivery) -> Outcome:  # a receiver that takes 5 ms an answer
        time.sleep(0.005)
        return Outcome.delivered()

    channel = MemoryChannel(slow)
    dispatchers = [Dispatcher(store, sinks={"m": channel}) for _ in range(4)]
    reports: list[Any] = [None] * 4

    def run(i: int) -> None:
        reports[i] = dispatchers[i].run(until="ready")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(d.key for d in channel.sent) == sorted(keys), "each notice once"
    assert all(r.delivered > 0 for r in reports), f"one dispatcher held the backlog: {[r.delivered for r in reports]}"


# ---- a plug-in that raises while a batch is prepared ----------------------------------------------------------
class _BrokenTemplates(Templates):
    """Templates with a bug that shows on one kind of notice only."""

    def messages(self, notice: Notice, record: Any, langs: Any = ("zh", "en"), **kwargs: Any) -> Any:
        if notice.event is Event.ROUND_OPENED:
            raise KeyError("round_opened")
        return super().messages(notice, record, langs, **kwargs)


def test_a_plug_in_that_raises_on_one_notice_retries_that_notice_with_the_reason() -> None:
    store = MemoryStore()
    keys = seed(store, 3)
    channel = MemoryChannel()
    report = Dispatcher(store, sinks={"m": channel}, templates=_BrokenTemplates(), policy=QUICK).run_once()
    by_key = {n.key: n for n in store.outbox()}
    broken = {k for k in keys if by_key[k].event is Event.ROUND_OPENED}
    assert broken
    assert (report.delivered, report.retried) == (len(keys) - len(broken), len(broken))
    assert set(channel.accepted) == set(keys) - broken, "the others of the batch still go"
    for k in broken:
        assert by_key[k].status == "pending"
        assert by_key[k].last_error == "preparing it raised KeyError: 'round_opened'"


class _DownRecipients(Recipients):
    """Recipients whose directory is down (a PostgresDirectory whose server went away)."""

    def resolve(self, audience: Any, community: str, at: datetime) -> Any:
        from consultflow import StoreUnavailable

        raise StoreUnavailable("the directory's server is down")


def test_a_directory_outage_hands_the_batch_back_untried_at_once() -> None:
    from consultflow import StoreUnavailable

    store = MemoryStore()
    keys = seed(store, 3)
    dispatcher = Dispatcher(store, channels={"email": MemoryChannel()}, recipients=_DownRecipients(_contacts()))
    with pytest.raises(StoreUnavailable):
        dispatcher.run_once()  # run() waits and tries again, as for the store itself
    assert {(n.status, n.attempts, n.not_before) for n in store.outbox()} == {("pending", 0, None)}, (
        "released, not left leased until the lease ends, and no attempt counted"
    )
    assert len(store.outbox()) == len(keys)


def test_requeue_is_only_for_dead_letters() -> None:
    from consultflow import IntegrityError, NotFound

    store = MemoryStore()
    keys = seed(store, 1)
    with pytest.raises(IntegrityError):
        store.requeue(keys[0], now=AT)
    with pytest.raises(NotFound):
        store.requeue("nope:1", now=AT)
    with pytest.raises(InvalidInput):
        store.outbox(status="gone")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"channels": {"m": MemoryChannel()}},
        {"sinks": {"m": object()}},
        {"sinks": {"m": MemoryChannel()}, "batch": 0},
        {"sinks": {"m": MemoryChannel()}, "batch_seconds": 0},
        {"sinks": {"m": MemoryChannel()}, "batch_seconds": -1.0},
        {"sinks": {"m": MemoryChannel()}, "batch_seconds": True},
        {"sinks": {"m": MemoryChannel()}, "batch_seconds": "1"},
    ],
)
def test_a_dispatcher_is_checked_when_it_is_made(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        Dispatcher(MemoryStore(), **kwargs)


@given(attempt=st.integers(min_value=1, max_value=10_000), draw=st.floats(min_value=0, max_value=1))
def test_backoff_is_capped_jittered_and_never_zero(attempt: int, draw: float) -> None:
    policy = RetryPolicy(max_attempts=10, base=timedelta(seconds=2), cap=timedelta(minutes=5))
    wait = policy.delay(attempt, draw)
    ceiling = min(policy.cap, policy.base * 2 ** min(attempt - 1, 20))
    assert ceiling / 2 <= wait <= ceiling
    assert policy.delay(attempt + 1, draw) >= wait  # never shorter for a later attempt at the same draw


def test_a_receivers_answer_cannot_put_control_characters_on_a_terminal() -> None:
    outcome = Outcome.retry("HTTP 500: \x1b[2J\x1b]0;pwned\x07 gone\r\nnext line" + "x" * 2000)
    assert "\x1b" not in outcome.reason
    assert "\n" not in outcome.reason
    assert "\x07" not in outcome.reason
    assert outcome.reason.startswith("HTTP 500: [2J ]0;pwned gone next line")
    assert len(outcome.reason) <= 500


_OUTCOMES = st.sampled_from(["delivered", "retry", "failed", "raise", "lost"])


@given(
    script=st.lists(st.lists(_OUTCOMES, min_size=1, max_size=6), min_size=1, max_size=6),
    max_attempts=st.integers(min_value=1, max_value=5),
    workers=st.sampled_from([1, 3]),
)
def test_whatever_the_channel_does_every_notice_ends_settled_and_none_twice(
    script: list[list[str]], max_attempts: int, workers: int
) -> None:
    """A property over any behaviour of the receiving end: every notice ends delivered or dead
    (nothing stays pending or leased), the store says delivered only for what the channel took, and a
    key-honouring receiver took each notice at most once. "lost" takes the notice but answers with a
    transient failure (a timeout after the receiver accepted it)."""
    store = MemoryStore()
    keys = seed(store, len(script), prefix="h")
    plan = {k: script[i // 2] for i, k in enumerate(keys)}
    calls: dict[str, int] = {}
    taken: dict[str, int] = {}

    def behave(d: Delivery) -> Outcome:
        n = calls[d.key] = calls.get(d.key, 0) + 1
        what = plan[d.key][min(n, len(plan[d.key])) - 1]
        if what == "raise":
            raise ConnectionError("boom")
        if what in {"delivered", "lost"}:
            taken[d.key] = 1  # a key-honouring receiver: set, not count
        if what == "lost":
            return Outcome.retry("timed out")
        return Outcome.delivered() if what == "delivered" else Outcome.failed("410 Gone")

    clock = SimulatedClock(datetime(2026, 6, 1, tzinfo=UTC))
    policy = RetryPolicy(max_attempts=max_attempts, base=timedelta(seconds=1), cap=timedelta(seconds=4))
    dispatcher = Dispatcher(store, sinks={"m": MemoryChannel(behave)}, clock=clock, policy=policy, workers=workers)
    try:
        for _ in range(max_attempts + 2):
            dispatcher.run(until="ready")
            clock.advance(seconds=5)
    finally:
        dispatcher.close()
    final = {n.key: n for n in store.outbox()}
    assert {n.status for n in final.values()} <= {"delivered", "dead"}
    for key, n in final.items():
        assert n.attempts <= max_attempts
        if n.status == "delivered":
            assert taken.get(key) == 1
        else:
            assert n.last_error


def test_a_notice_that_reaches_nobody_is_a_dead_letter_with_the_reasons() -> None:
    store = MemoryStore()
    seed(store, 1)
    nobody = Recipients(MemoryContacts())  # no contacts, no boards, no directory
    report = Dispatcher(store, channels={"email": MemoryChannel()}, recipients=nobody).run(until="ready")
    assert report.dead == 2
    for n in store.outbox():
        assert n.status == "dead"
        assert n.last_error.startswith("nobody could be reached: ")
        assert "not in the contact book" in n.last_error


def test_two_addresses_on_one_channel_get_keys_of_their_own() -> None:
    store = MemoryStore()
    keys = seed(store, 1)
    contacts = MemoryContacts(
        [Person("li", [Contact("email", "li@home.example"), Contact("email", "li@work.example")])]
    )
    email = MemoryChannel()
    Dispatcher(store, channels={"email": email}, recipients=Recipients(contacts)).run(until="ready")
    sent = sorted((d.key, d.address) for d in email.sent if d.notice.key == keys[0])
    assert sent == [(f"{keys[0]}/li/email", "li@home.example"), (f"{keys[0]}/li/email/1", "li@work.example")]
    assert len(email.accepted) == len(email.sent)


def test_wake_delivers_a_new_notice_without_waiting_for_the_poll() -> None:
    import threading
    import time

    store = MemoryStore()
    channel = MemoryChannel()
    dispatcher = Dispatcher(store, sinks={"m": channel})
    runner = threading.Thread(target=dispatcher.run, kwargs={"poll": 3600})  # would sleep an hour
    runner.start()
    try:
        keys = seed(store, 1)
        dispatcher.wake()
        deadline = time.monotonic() + 30
        while len(channel.accepted) < len(keys) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert set(channel.accepted) == set(keys)
    finally:
        dispatcher.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()  # stop() interrupts the poll too


# ---- a batch settled in one transaction (SQLiteStore.settle_many) ---------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def batch_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store with ``settle_many``: SQLite, and PostgreSQL (skipped when no server answers, a
    failure under CI=true)."""
    if request.param == "sqlite":
        from consultflow.storage.sqlite import SQLiteStore

        yield SQLiteStore(tmp_path / "many.db", synchronous="NORMAL")
        return
    from consultflow.storage.postgres import PostgresStore
    from store_support import Schemas, require_postgres

    dsn = require_postgres()
    schemas = Schemas(dsn)
    try:
        yield PostgresStore(dsn, schema=schemas.new("many"))
    finally:
        schemas.drop_all()


def test_settle_many_settles_as_settle_does_and_reports_each_refusal(batch_store: Any) -> None:
    from consultflow import IntegrityError, NotFound
    from consultflow.delivery.dispatcher import SettlesMany

    now = datetime(2026, 5, 1, tzinfo=UTC)
    kind: object = batch_store
    assert isinstance(kind, SettlesMany)  # so a dispatcher settles its batches in one transaction
    with batch_store as store:
        keys = seed(store, 3)
        leased = {n.key: n for n in store.lease(10, now)}
        a, b, c, d, e, f = keys
        later = now + timedelta(minutes=1)
        errors = store.settle_many(
            [
                (a, "delivered", None, "", leased[a].attempts),
                (b, "retry", later, "HTTP 503", leased[b].attempts),
                (c, "dead", None, "HTTP 410", leased[c].attempts),
                (d, "delivered", None, "", leased[d].attempts + 1),  # a stale lease: refused alone
                ("d9:1", "delivered", None, "", 1),  # no such notice
                (f, "delivered", None, "", None),
            ],
            now=now,
        )
        assert [type(x) for x in errors] == [type(None), type(None), type(None), IntegrityError, NotFound, type(None)]
        by_key = {n.key: n for n in store.outbox()}
        assert [by_key[k].status for k in keys] == ["delivered", "pending", "dead", "leased", "leased", "delivered"]
        assert (by_key[b].not_before, by_key[b].last_error) == (later, "HTTP 503")
        assert by_key[c].last_error == "HTTP 410"
        assert store.settle_many([(a, "delivered", None, "", None)], now=now) == (None,)  # the same again: harmless
        with pytest.raises(InvalidInput):  # a bad argument anywhere: nothing at all is written
            store.settle_many([(e, "delivered", None, "", None), (d, "delivred", None, "", None)], now=now)
        assert store.outbox(status="leased") == tuple(n for n in store.outbox() if n.key in {d, e})
        assert store.settle_many([], now=now) == ()


def test_settle_many_releases_what_was_not_tried_in_the_same_transaction(batch_store: Any) -> None:
    from consultflow import IntegrityError

    now = datetime(2026, 5, 1, tzinfo=UTC)
    with batch_store as store:
        a, b, c, d = seed(store, 2)
        store.lease(1, now)
        store.settle(a, "retry", now=now, error="HTTP 503")
        leased = {n.key: n for n in store.lease(10, now)}
        assert {k: n.attempts for k, n in leased.items()} == {a: 2, b: 1, c: 1, d: 1}
        errors = store.settle_many(
            [
                (b, "delivered", None, "", 1),
                (a, "release", None, "", 2),
                (c, "release", None, "", None),
                (d, "release", None, "", 7),  # not this lease's attempt: refused alone
            ],
            now=now,
        )
        assert [type(x) for x in errors] == [type(None), type(None), type(None), IntegrityError]
        by_key = {n.key: n for n in store.outbox()}
        assert [(by_key[k].status, by_key[k].attempts) for k in (a, b, c, d)] == [
            ("pending", 1),
            ("delivered", 1),
            ("pending", 0),
            ("leased", 1),
        ]
        assert (by_key[a].last_error, by_key[a].not_before) == ("HTTP 503", None), "released: ready at once, error kept"
        assert store.settle_many([(b, "release", None, "", 1)], now=now)[0] is not None, "delivered stays delivered"
