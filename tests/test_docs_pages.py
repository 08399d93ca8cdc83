"""The listings of docs/storage.md, lifecycle.md, who-may-act.md, integrity.md, checkpoints.md,
simulation.md, notifications.md and intake.md run as pasted, and print what the pages say.

A ```` ```python ```` listing is a complete program: each one runs alone, in a fresh namespace (as
``python listing.py`` would), in a temporary working directory that is removed afterwards, so the
files a listing makes (SQLite databases, ...) go with it. The output a page promises is written in
``# -> ...`` comments, one per printed line, in order: after a statement, or on lines of their own
under a statement that prints several lines. A listing that has such comments must print exactly
those lines; docs/lifecycle.md and docs/who-may-act.md promise the output of every listing.

A ```` ```toml ```` listing is a procedure definition file: it must build (``Procedure.from_dict``).
Not run, because they are not programs: ```` ```python-signature ```` (a summary of signatures,
such as the store and directory protocols) and plain ```` ``` ```` fences (shell sessions, diagrams,
command output). Any other fence on these pages fails
``test_every_listing_is_run_or_marked_as_no_program``, so a listing cannot escape the run by a typo in
its fence.

docs/examples/json_store.py passes the conformance kit in tests/test_docs_example_store.py; here it
is only checked to be shown whole, and the page's test module for it to work as written.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import tokenize
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import consultflow as cf
from consultflow.i18n import MESSAGES
from consultflow.testing import StoreContract
from store_support import require_postgres

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PAGES = (
    "storage.md",
    "lifecycle.md",
    "who-may-act.md",
    "integrity.md",
    "checkpoints.md",
    "simulation.md",
    "notifications.md",
    "intake.md",
)
RUN = "python"
DEFINITION = "toml"  # a procedure definition file: built, not run
NOT_PROGRAMS = frozenset({"python-signature", ""})  # the fences that are deliberately not run
#: pages that promise the output of every listing in ``# -> ...`` comments
EVERY_OUTPUT_PROMISED = frozenset({"lifecycle.md", "who-may-act.md", "integrity.md", "intake.md"})

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", flags=re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Listing:
    page: str
    line: int
    fence: str
    code: str

    @property
    def name(self) -> str:
        return f"docs/{self.page}:{self.line}"


def _listings(page: str) -> list[Listing]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return [
        Listing(page, text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)
    ]


def _programs(page: str) -> list[Listing]:
    return [listing for listing in _listings(page) if listing.fence == RUN]


def _definitions(page: str) -> list[Listing]:
    return [listing for listing in _listings(page) if listing.fence == DEFINITION]


ALL_PROGRAMS = [listing for page in PAGES for listing in _programs(page)]
ALL_DEFINITIONS = [listing for page in PAGES for listing in _definitions(page)]


def _promised(code: str) -> list[str]:
    """The lines a listing says it prints: its ``# -> ...`` comments, in order (read with the
    tokenizer, so ``->`` inside a string is never taken for one)."""
    out = []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT and token.string.startswith("# ->"):
            out.append(token.string.removeprefix("# ->").removeprefix(" ").rstrip())
    return out


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory, removed with everything in it when the test ends; the examples
    beside the pages are importable, as they are to a reader who saved a listing next to them."""
    with tempfile.TemporaryDirectory(prefix="consultflow-docs-") as tmp:
        monkeypatch.chdir(tmp)
        monkeypatch.syspath_prepend(str(EXAMPLES))
        before = set(sys.modules)
        yield Path(tmp)
        for name in set(sys.modules) - before:  # the examples a listing imported
            file = getattr(sys.modules[name], "__file__", None)
            if file and Path(file).parent == EXAMPLES:
                del sys.modules[name]


@pytest.fixture
def postgres_schema_cleanup() -> Iterator[None]:
    """The PostgreSQL listing makes its tables in schema ``consultflow`` of the test server: drop the
    schema afterwards if it was not there before."""
    dsn = require_postgres()
    import psycopg

    query = "SELECT 1 FROM pg_namespace WHERE nspname = 'consultflow'"
    with psycopg.connect(dsn, autocommit=True) as conn:
        existed = conn.execute(query).fetchone() is not None
    yield
    if not existed:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS consultflow CASCADE")


def _run(listing: Listing) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(listing.code, listing.name, "exec"), namespace)
    return namespace


# ---- every listing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_listing_is_run_or_marked_as_no_program(page: str) -> None:
    fences = {listing.fence for listing in _listings(page)}
    unknown = fences - NOT_PROGRAMS - {RUN, DEFINITION}
    assert not unknown, f"docs/{page}: fences {unknown} are not run ({RUN!r}), built ({DEFINITION!r}) or no program"
    assert _programs(page), f"docs/{page} has no python listing"


@pytest.mark.parametrize("listing", ALL_PROGRAMS, ids=lambda listing: listing.name)
def test_the_listing_runs_as_pasted_and_prints_what_it_promises(
    listing: Listing, workdir: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    if "PostgresStore(" in listing.code:
        request.getfixturevalue("postgres_schema_cleanup")  # skips (fails under CI) without a server
    _run(listing)
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    promised = _promised(listing.code)
    if listing.page in EVERY_OUTPUT_PROMISED:
        assert promised, f"{listing.name}: say what the listing prints, in '# -> ...' comments"
    if promised:
        assert printed == promised, f"{listing.name}: the comments promise one thing, the code prints another"


@pytest.mark.parametrize("listing", ALL_DEFINITIONS, ids=lambda listing: listing.name)
def test_the_definition_builds_a_procedure(listing: Listing) -> None:
    procedure = cf.Procedure.from_dict(tomllib.loads(listing.code))
    assert isinstance(procedure, cf.Procedure)


# ---- docs/lifecycle.md ------------------------------------------------------------------------------


def test_the_lifecycle_visits_every_step_and_ends_verified(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (story, _core) = _programs("lifecycle.md")
    namespace = _run(story)
    capsys.readouterr()
    engine, cid = namespace["engine"], namespace["cid"]
    entries = engine.history(cid)  # type: ignore[attr-defined]
    visited = [e.target.value for i, e in enumerate(entries) if i == 0 or e.target != entries[i - 1].target]
    assert visited == [
        "proposed",
        "notified",
        "consulting",
        "decided",
        "consulting",  # 依法纠正: the unlawful decision goes back to consultation
        "decided",
        "feedback",
        "supervising",
        "closed",
    ]
    assert engine.verify(cid).ok  # type: ignore[attr-defined]


def test_the_lifecycle_shows_an_invitation_a_proxy_and_a_recusal(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the notice someone is invited; a clerk records a resident's opinion for her; a reviewer
    who spoke in the deciding round stands aside (回避) and the legal adviser reviews instead."""
    (story, _core) = _programs("lifecycle.md")
    namespace = _run(story)
    capsys.readouterr()
    engine, cid = namespace["engine"], namespace["cid"]
    assert isinstance(engine, cf.Engine)
    assert isinstance(cid, str)
    assert isinstance(engine.directory, cf.MemoryDirectory)
    entries = engine.history(cid)
    events = [e.event for e in entries]
    assert events.index(cf.Event.INVITED) > events.index(cf.Event.NOTIFIED)
    (proxy,) = [e for e in entries if "on_behalf_of" in e.data]
    assert (proxy.event, proxy.actor, proxy.data["on_behalf_of"]) == (cf.Event.OPINION_RECORDED, "wang", "chen")
    record = engine.get(cid)
    (opinion,) = [op for r in record.rounds for op in r.opinions if op.recorded_by is not None]
    assert (opinion.participant, opinion.recorded_by) == ("chen", "wang")
    lawful = [e for e in entries if e.event is cf.Event.LEGALITY_REVIEWED and e.data["verdict"] == "lawful"]
    assert [(e.actor, e.role) for e in lawful] == [("he", "legal_adviser")]
    assert "reviewer_voted" in story.code


def test_the_lifecycle_says_how_measures_are_numbered() -> None:
    page = (DOCS / "lifecycle.md").read_text(encoding="utf-8")
    (story, _core) = _programs("lifecycle.md")
    assert "ReportProgress.measure is the measure's index, counted from 0" in story.code
    assert "`ReportProgress.measure` is the index from 0" in page


# ---- docs/who-may-act.md ----------------------------------------------------------------------------


def test_the_toml_variant_is_the_python_variant(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The page's definition file and its Python variant make the same procedure."""
    (variant,) = [listing for listing in _programs("who-may-act.md") if ".variant(" in listing.code]
    mine = _run(variant)["mine"]
    capsys.readouterr()
    assert isinstance(mine, cf.Procedure)
    (definition,) = _definitions("who-may-act.md")
    from_file = cf.Procedure.from_dict(tomllib.loads(definition.code))
    assert from_file.key == mine.key
    assert from_file.parameters == mine.parameters
    assert from_file.transitions == mine.transitions


def _table(page: str, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table on ``page`` whose header row starts with ``header``."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_defaults_table_says_what_the_defaults_are() -> None:
    defaults = cf.Parameters()
    order = list(cf.Role)
    expected = {
        "round_open_to": f'`"{defaults.round_open_to}"`',
        "clerk_roles": ", ".join(f"`{r.value}`" for r in sorted(defaults.clerk_roles, key=order.index)),
        "notice_period": f"{defaults.notice_period.days} days",
        "decided_by": f'`"{defaults.decided_by}"`',
        "major_decided_by": f'`"{defaults.major_decided_by}"`',
        **{
            name: f"`{getattr(defaults, name)}`"
            for name in ("independent_review", "proposer_recuses", "voters_recuse", "chair_not_proposer")
        },
    }
    rows = _table("who-may-act.md", "| parameter | default |")
    assert {row[0].strip("`"): row[1] for row in rows} == expected


def test_the_refusals_the_tables_name_exist() -> None:
    defaults = _table("who-may-act.md", "| parameter | default |")
    recusals = _table("who-may-act.md", "| parameter | who stands aside |")
    named = {code for row in defaults + recusals for code in re.findall(r"`([a-z_]+)`", row[-1])}
    assert named >= {"not_taking_part", "not_a_clerk", "invitation_notice", "reviewer_voted", "chair_is_proposer"}
    assert named <= set(MESSAGES), named - set(MESSAGES)
    assert {row[0].strip("`") for row in recusals} <= {row[0].strip("`") for row in defaults}


# ---- docs/storage.md --------------------------------------------------------------------------------


def test_the_page_shows_the_example_store_whole() -> None:
    """The "Write your own store" listing is docs/examples/json_store.py, imports and all."""
    code = (EXAMPLES / "json_store.py").read_text(encoding="utf-8")
    assert code in [listing.code for listing in _programs("storage.md")]


def _kit_listing(store: str) -> Listing:
    (listing,) = [
        listing for listing in _programs("storage.md") if "StoreContract" in listing.code and store in listing.code
    ]
    return listing


def _pytest(path: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    paths = [str(path.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path), "-k", " or ".join(selection)]
    return subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_kit_listing_runs_on_a_store_with_two_handles_and_processes(workdir: Path) -> None:
    """The page's tests/test_my_store.py, saved and run by pytest as a reader would: its fixtures
    (store, open_store, supports_processes) work, down to spawned processes."""
    listing = _kit_listing("MyStore")
    namespace = _run(listing)
    assert isinstance(namespace["TestMyStore"], type)
    assert issubclass(namespace["TestMyStore"], StoreContract)
    path = workdir / "test_my_store.py"
    path.write_text(listing.code, encoding="utf-8")
    done = _pytest(
        path,
        "test_load_returns_the_record_appended",
        "test_another_handle_sees_committed_steps",
        "test_processes_lease_each_notice_once",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout, done.stdout


def test_the_kit_listing_for_the_example_store_works_as_written(workdir: Path) -> None:
    """test_json_store.py next to json_store.py, as the page says (the whole kit on the example runs in
    tests/test_docs_example_store.py; one of its tests here shows the module is right)."""
    listing = _kit_listing("JsonStore")
    (workdir / "json_store.py").write_text((EXAMPLES / "json_store.py").read_text(encoding="utf-8"), encoding="utf-8")
    path = workdir / "test_json_store.py"
    path.write_text(listing.code, encoding="utf-8")
    done = _pytest(path, "test_load_returns_the_record_appended")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout, done.stdout
