"""``consultflow outbox`` and ``consultflow dispatch``, run as a user runs them (a subprocess), on
the reference story's store, delivering to a real webhook receiver on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from consultflow.storage.sqlite import SQLiteStore
from delivery_support import SECRET
from webhook_receiver import Receiver


def cf(*args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CONSULTFLOW_WEBHOOK_SECRET"}
    if secret is not None:
        env["CONSULTFLOW_WEBHOOK_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "consultflow", *args], check=False, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    done = cf("demo", "--db", str(path))
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def db(demo_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "story.db"
    with SQLiteStore(demo_db, readonly=True) as src:
        assert src.outbox()
    copy.write_bytes(demo_db.read_bytes())
    return copy


def story_notices(db: Path) -> int:
    """How many notices the reference story leaves in the outbox (it grows with the story)."""
    with SQLiteStore(db, readonly=True) as store:
        return len(store.outbox())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


def test_outbox_lists_every_notice_as_json_lines(db: Path) -> None:
    done = cf("outbox", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    total = story_notices(db)
    assert total >= 15
    assert len(rows) == total
    assert {"key", "consultation", "seq", "event", "status", "attempts"} <= set(rows[0])
    assert rows[0]["key"] == f"{rows[0]['consultation']}:{rows[0]['seq']}"
    assert {r["status"] for r in rows} == {"pending"}
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    plain = cf("outbox", "--db", str(db))
    assert len(plain.stdout.splitlines()) == total
    assert plain.stdout.startswith("pending")


def test_the_story_is_delivered_to_a_local_webhook(db: Path, receiver: Receiver) -> None:
    total = story_notices(db)
    done = cf("dispatch", "--db", str(db), "--webhook", receiver.url, "--secret", SECRET, "--until-empty")
    assert done.returncode == 0, done.stderr
    assert f"delivered {total}, retried 0, dead 0" in done.stderr
    listed = [json.loads(line) for line in cf("outbox", "--db", str(db), "--json").stdout.splitlines()]
    assert {r["status"] for r in listed} == {"delivered"}
    assert set(receiver.accepted) == {r["key"] for r in listed}
    first = receiver.accepted[listed[0]["key"]]
    assert first["type"] == "consultflow.notified"
    assert first["data"]["messages"]["en"]["subject"].endswith("notice given")
    again = cf("dispatch", "--db", str(db), "--webhook", receiver.url, "--secret", SECRET, "--once")
    assert again.returncode == 0
    assert "delivered 0" in again.stderr
    assert receiver.requests == total
    docs = (Path(__file__).parent.parent / "docs" / "notifications.md").read_text(encoding="utf-8")
    said = re.findall(r"delivered (\d+), retried 0, dead 0", docs) + re.findall(r"its (\d+) notices go", docs)
    assert said, "docs/notifications.md shows the story delivered"
    assert set(said) == {str(total)}, "docs/notifications.md gives the story's notice count as it is"


def test_the_secret_can_come_from_the_environment_and_a_link_is_built(db: Path, receiver: Receiver) -> None:
    link = "https://app.example/c/{consultation}"
    done = cf("dispatch", "--db", str(db), "--webhook", receiver.url, "--once", "--link", link, secret=SECRET)
    assert done.returncode == 0, done.stderr
    payload = next(iter(receiver.accepted.values()))
    assert payload["data"]["link"] == f"https://app.example/c/{payload['data']['consultation']}"


def test_dead_letters_are_listed_with_the_reason_and_sent_again(db: Path, receiver: Receiver) -> None:
    total = story_notices(db)
    other = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    cf("dispatch", "--db", str(db), "--webhook", receiver.url, "--secret", other, "--until-empty")
    dead = [
        json.loads(line) for line in cf("outbox", "--db", str(db), "--status", "dead", "--json").stdout.splitlines()
    ]
    assert len(dead) == total
    assert all("HTTP 400" in d["last_error"] for d in dead)
    one = cf("outbox", "--db", str(db), "--retry", dead[0]["key"])
    assert one.returncode == 0, one.stderr
    assert "1 dead letter(s) pending again" in one.stderr
    rest = cf("outbox", "--db", str(db), "--retry-dead")
    assert f"{total - 1} dead letter(s)" in rest.stderr
    done = cf("dispatch", "--db", str(db), "--webhook", receiver.url, "--secret", SECRET, "--until-empty")
    assert f"delivered {total}" in done.stderr
    assert len(receiver.accepted) == total


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--webhook", "http://127.0.0.1:9/h"], "--secret"),
        (["--webhook", "http://127.0.0.1:9/h", "--secret", "nope"], "whsec_"),
        (["--webhook", "ftp://x/h", "--secret", SECRET], "http"),
        ([], "--webhook URL"),
        (["--webhook", "http://127.0.0.1:9/h", "--secret", SECRET, "--max-backoff", "-1"], "--max-backoff"),
        (["--config", "/no/such/file.toml"], "cannot read config"),
    ],
)
def test_dispatch_refuses_bad_input_with_one_line_and_exit_2(db: Path, args: list[str], says: str) -> None:
    done = cf("dispatch", "--db", str(db), *args)
    assert done.returncode == 2
    assert done.stderr.startswith("consultflow: ")
    assert says in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--retry", "nope:1"], "nope:1"),
        (["--retry", "KEY"], "not dead"),
    ],
)
def test_outbox_refuses_a_bad_retry(db: Path, args: list[str], says: str) -> None:
    if "KEY" in args:
        args = ["--retry", json.loads(cf("outbox", "--db", str(db), "--json").stdout.splitlines()[0])["key"]]
    done = cf("outbox", "--db", str(db), *args)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_outbox_on_something_that_is_not_a_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("hello")
    for path in (junk, tmp_path / "missing.db", tmp_path):
        done = cf("outbox", "--db", str(path))
        assert done.returncode == 2
        assert "Traceback" not in done.stderr


def test_a_config_file_sends_to_an_archive_and_to_people(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text(
        """
[dispatcher]
sink_lang = "en"
link = "https://app.example/c/{consultation}"

[channels.archive]
type = "file"
path = "archive.jsonl"
sink = true

[channels.mail]
type = "file"
path = "mail.jsonl"

[people.li]
lang = "en"
contacts = [{channel = "mail", address = "li@x.example"}]
""",
        encoding="utf-8",
    )
    done = cf("dispatch", "--db", str(db), "--config", str(config), "--until-empty")
    assert done.returncode == 0, done.stderr
    archive = [json.loads(line) for line in (tmp_path / "archive.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(archive) == story_notices(db)
    assert archive[0]["lang"] == "en"
    assert archive[0]["link"].startswith("https://app.example/c/")
    mail = [json.loads(line) for line in (tmp_path / "mail.jsonl").read_text(encoding="utf-8").splitlines()]
    assert mail
    assert {m["recipient"] for m in mail} == {"li"}
    assert "unreachable" in done.stderr  # everyone else in the story has no contact: said, not skipped


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[channels.x]\ntype = 'carrier-pigeon'", "channels.x.type"),
        ("[dispatcher]\nbatchsize = 3", "dispatcher.batchsize"),
        ("[channels.h]\ntype = 'webhook'\nurl = 'http://127.0.0.1:9/'\nsink = true", "secret"),
        ("[people.li]\ncontacts = [{channel = 'sms', address = '1'}]", "'sms'"),
        ("[dispatcher]\nbatch_seconds = true", "dispatcher.batch_seconds"),  # no bool for a number
        ("[dispatcher]\nworkers = '4'", "dispatcher.workers"),  # nor text
    ],
)
def test_a_bad_config_is_refused_at_start_up(db: Path, tmp_path: Path, text: str, says: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    done = cf("dispatch", "--db", str(db), "--config", str(config), "--once")
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_outbox_and_dispatch_on_postgresql(receiver: Receiver) -> None:
    from consultflow.storage.postgres import PostgresStore
    from delivery_support import seed
    from store_support import Schemas, require_postgres

    dsn = require_postgres()
    schemas = Schemas(dsn)
    try:
        schema = schemas.new("cli")
        with PostgresStore(dsn, schema=schema) as pg:
            keys = seed(pg, 3)
        listed = cf("outbox", "--db", dsn, "--schema", schema, "--json")
        assert listed.returncode == 0, listed.stderr
        assert [json.loads(line)["key"] for line in listed.stdout.splitlines()] == keys
        done = cf(
            "dispatch", "--db", dsn, "--schema", schema, "--webhook", receiver.url, "--until-empty", secret=SECRET
        )
        assert done.returncode == 0, done.stderr
        assert set(receiver.accepted) == set(keys)
        missing = cf("outbox", "--db", dsn, "--schema", "no_such_schema_here")
        assert missing.returncode == 2
        assert "Traceback" not in missing.stderr
    finally:
        schemas.drop_all()


def test_schema_is_only_for_postgresql(db: Path) -> None:
    done = cf("outbox", "--db", str(db), "--schema", "x")
    assert done.returncode == 2
    assert "--schema is for a PostgreSQL store" in done.stderr


# ---- the progress line: on a terminal only ----------------------------------------------------------------
def _dispatch_on_a_terminal(db: Path, url: str, *extra: str) -> tuple[int, str]:
    """Run ``consultflow dispatch`` with stderr on a pseudo-terminal (as in a shell); its exit code
    and what the terminal showed."""
    import pty

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CONSULTFLOW_WEBHOOK_SECRET"}
    cmd = [sys.executable, "-m", "consultflow", "dispatch", "--db", str(db), "--webhook", url, "--secret", SECRET]
    proc = subprocess.Popen([*cmd, *extra], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)  # the child holds it now; reading the master ends when the child is gone
    shown = bytearray()
    try:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not data:
                break
            shown += data
    finally:
        os.close(master)
    out, _ = proc.communicate(timeout=120)
    assert out == b""  # progress never goes to stdout, which a script may be reading
    return proc.returncode, shown.decode()


def test_a_terminal_sees_a_progress_line_that_counts_up(db: Path, receiver: Receiver) -> None:
    total = story_notices(db)
    code, shown = _dispatch_on_a_terminal(db, receiver.url, "--until-empty", "--batch", "4")
    assert code == 0, shown
    # Each batch rewrites one line ("\r", no newline): the counts as they grow, then the summary.
    updates = [part for part in shown.split("\r") if part.startswith("delivered ") and "  retried" in part]
    counts = [int(u.split()[1]) for u in updates]
    assert len(counts) >= total // 4  # a line per batch of 4
    assert counts == sorted(counts)
    assert counts[0] <= 4
    assert counts[-1] == total
    assert all(u == f"delivered {c}  retried 0  dead 0" for u, c in zip(updates, counts, strict=True))
    last = shown.rstrip("\r\n").rsplit("\n", 1)[-1].strip("\r")
    assert last == f"delivered {total}, retried 0, dead 0"  # the summary on a line of its own
    assert set(receiver.accepted) == {n.key for n in SQLiteStore(db, readonly=True).outbox()}


def test_without_a_terminal_there_is_no_progress_line(db: Path, receiver: Receiver) -> None:
    total = story_notices(db)
    done = cf(
        "dispatch", "--db", str(db), "--webhook", receiver.url, "--secret", SECRET, "--until-empty", "--batch", "4"
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    assert done.stderr.splitlines() == [f"delivered {total}, retried 0, dead 0"]  # the summary, nothing else
    assert done.stdout == ""


def test_max_backoff_caps_the_wait_before_a_retry(db: Path) -> None:
    from datetime import UTC, datetime, timedelta

    total = story_notices(db)
    with Receiver(SECRET, fail_every=2) as failing:
        args = ["--webhook", failing.url, "--secret", SECRET, "--max-backoff", "0.2"]
        once = cf("dispatch", "--db", str(db), *args, "--once")
        ended = datetime.now(UTC)
        assert once.returncode == 0, once.stderr
        waiting = [
            json.loads(line)
            for line in cf("outbox", "--db", str(db), "--status", "pending", "--json").stdout.splitlines()
        ]
        assert waiting  # half the requests failed: those notices wait for a retry
        # The default backoff waits 1-2 s after a first failure; capped, at most 0.2 s.
        assert all(datetime.fromisoformat(w["not_before"]) <= ended + timedelta(seconds=0.2) for w in waiting)
        done = cf("dispatch", "--db", str(db), *args, "--until-empty")
        assert done.returncode == 0, done.stderr
    statuses = {json.loads(line)["status"] for line in cf("outbox", "--db", str(db), "--json").stdout.splitlines()}
    assert statuses == {"delivered"}
    assert len(failing.accepted) == total
