"""What a newcomer meets at the command line: one exit status for every subcommand (0 ok, 1 a finding
on stdout, 2 a usage or input problem on stderr), plain words for files that are not stores and for
definition files in the wrong format, ``--version``, help on every option, a demo hint that works
as printed, and a Makefile whose ``demo`` installs only what the demo needs."""

from __future__ import annotations

import errno
import importlib.metadata
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import consultflow as cf
from consultflow import cli
from consultflow.cli import main
from consultflow.testing import StepMaker, append

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("demo", "verify", "show", "procedure", "schema")


def _exits(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run a command that leaves by SystemExit (argparse: --help, --version, usage errors)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _a_problem(err: str) -> str:
    """The one stderr line of a problem (exit 2): no traceback, no advice about library flags."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("consultflow: "), err
    assert "Traceback" not in err
    assert "readonly" not in err, err
    return lines[0]


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "real.db"
    store = cf.SQLiteStore(path)
    try:
        append(store, StepMaker().propose("real-case"))
    finally:
        store.close()
    return path


# ---- the exit-status convention, documented -----------------------------------------------------------


def test_top_level_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _exits(["--help"], capsys)
    assert code == 0
    assert "exit status (the same for every subcommand):" in out
    # RawDescriptionHelpFormatter: the table keeps its lines
    assert "\n  0    all good\n" in out
    assert "\n  1    a finding:" in out
    assert "\n  2    a usage or input problem:" in out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_documents_its_exit_status(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _exits([command, "--help"], capsys)
    assert code == 0
    assert "\nexit status: 0 " in out
    assert "2 a usage" in " ".join(out.split())


@pytest.mark.parametrize("command", ["demo", "show"])
def test_lang_has_help_text(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _exits([command, "--help"], capsys)
    assert "language of the timeline: en (English) or zh (中文)" in " ".join(out.split())


@pytest.mark.parametrize("argv", [[], ["verify"], ["show", "--db", "x.db"], ["demo", "--lang", "fr"], ["nope"]])
def test_argparse_usage_errors_still_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _exits(argv, capsys)
    assert (code, out) == (2, "")
    assert "usage: consultflow" in err


# ---- --version ----------------------------------------------------------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _exits(["--version"], capsys)
    assert (code, out) == (0, f"consultflow {importlib.metadata.version('consultflow')}\n")


def test_version_falls_back_to_the_package_attribute(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    code, out, _ = _exits(["--version"], capsys)
    assert (code, out) == (0, f"consultflow {cf.__version__}\n")


# ---- stores: problems are exit 2 in plain words ---------------------------------------------------------


def _empty(path: Path) -> str:
    path.write_bytes(b"")
    return f"{path} is empty, not a consultflow store"


def _text(path: Path) -> str:
    path.write_text("my notes, not a database\n", encoding="utf-8")
    return f"{path} is not a consultflow store"


def _foreign(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    return f"{path} is not a consultflow store (no consultflow tables)"


def _no_tables(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    conn.close()
    return f"{path} is not a consultflow store (no consultflow tables)"


def _directory(path: Path) -> str:
    path.mkdir()
    return f"{path} is a directory"


def _missing(path: Path) -> str:
    return f"{path}: it does not exist"


@pytest.mark.parametrize("command", ["verify", "show"])
@pytest.mark.parametrize("make", [_empty, _text, _foreign, _no_tables, _directory, _missing])
def test_a_file_that_is_not_a_store_is_named_plainly(
    command: str, make: Callable[[Path], str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "given.db"
    expected = make(path)
    before = sorted(tmp_path.rglob("*"))
    content = path.read_bytes() if path.is_file() else None
    argv = [command, "--db", str(path)] + (["some-id"] if command == "show" else [])
    code, out, err = _run(argv, capsys)
    assert (code, out) == (2, "")
    assert expected in _a_problem(err)
    assert sorted(tmp_path.rglob("*")) == before, "checking a file never creates one"
    if content is not None:
        assert path.read_bytes() == content


def test_show_an_unknown_id_is_a_usage_problem(store_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["show", "--db", str(store_file), "nobody"], capsys)
    assert (code, out) == (2, "")
    assert "no consultation 'nobody'" in _a_problem(err)
    code, out, err = _run(["verify", "--db", str(store_file), "nobody"], capsys)
    assert (code, out) == (2, "")
    assert "no consultation 'nobody'" in _a_problem(err)


def test_a_finding_goes_to_stdout_with_exit_1(store_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(store_file) as conn:
        conn.execute("UPDATE entries SET body = '{' WHERE consultation = 'real-case' AND seq = 1")
    conn.close()
    for argv in (["verify", "--db", str(store_file)], ["show", "--db", str(store_file), "real-case"]):
        code, out, err = _run(argv, capsys)
        assert (code, err) == (1, ""), argv
        assert out.startswith("BROKEN consultation 'real-case'"), out


def test_demo_refuses_a_file_that_is_not_a_store_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    code, out, err = _run(["demo", "--db", str(empty)], capsys)
    assert (code, out) == (2, "")
    line = _a_problem(err)
    assert f"{empty} is empty, not a consultflow store" in line
    assert "give --db another path" in line
    assert empty.read_bytes() == b""


# ---- procedure: formats named correctly; checks are findings ------------------------------------------


@pytest.mark.parametrize("name", ["p.yaml", "p.yml", "p.txt", "procedure"])
def test_procedure_refuses_an_unsupported_format(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_text("name: x\nversion: 1\n", encoding="utf-8")
    code, out, err = _run(["procedure", str(path)], capsys)
    assert (code, out) == (2, "")
    line = _a_problem(err)
    assert "not a supported format" in line
    assert ".json (JSON) or .toml (TOML)" in line
    assert "not valid" not in line, "nothing was parsed, so nothing can be invalid"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("p.json", "name: x\n", "is not valid JSON"),
        ("p.JSON", "{", "is not valid JSON"),
        ("p.toml", "name = \n", "is not valid TOML"),
    ],
)
def test_procedure_names_the_format_it_could_not_parse(
    name: str, text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    code, out, err = _run(["procedure", str(path)], capsys)
    assert (code, out) == (2, "")
    assert f"{path} {expected}: " in _a_problem(err)


def test_procedure_file_that_cannot_be_read_is_a_usage_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"name": "caf\xe9", "version": "1"}'.encode("latin-1"))
    code, out, err = _run(["procedure", str(latin1)], capsys)
    assert (code, out) == (2, "")
    assert "not UTF-8 text" in _a_problem(err)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    code, out, err = _run(["procedure", str(folder)], capsys)
    assert (code, out) == (2, "")
    assert _a_problem(err) == f"consultflow: {folder} is a directory; give a .json or .toml definition file"
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000, encoding="utf-8")
    code, out, err = _run(["procedure", str(deep)], capsys)
    assert (code, out) == (2, "")
    assert "nested too deeply" in _a_problem(err)
    code, out, err = _run(["procedure", str(tmp_path / "missing.toml")], capsys)
    assert (code, out) == (2, "")
    assert "cannot read" in _a_problem(err)


def test_procedure_that_fails_its_checks_is_a_finding_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nversion = "1"\nsurprise = 1\n[roles]\ndecide = ["nobody"]\n', encoding="utf-8")
    code, out, err = _run(["procedure", str(bad)], capsys)
    assert (code, err) == (1, "")
    assert "unknown role" in out
    assert "unknown keys ['surprise']" in out, "every problem is listed"
    listed = [line for line in out.splitlines() if line.lstrip().startswith("- ")]
    assert len(listed) == 2
    good = tmp_path / "good.json"
    good.write_text('{"name": "x", "version": "7"}', encoding="utf-8")
    code, out, err = _run(["procedure", str(good)], capsys)
    assert (code, err) == (0, "")
    assert '"version": "7"' in out


# ---- no traceback ever ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (cf.ConsultflowError("first line\n  second line"), "consultflow: first line second line"),
        (OSError(errno.EACCES, "Permission denied", "x.db"), "consultflow: x.db: Permission denied"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "consultflow: 'utf-8' codec can't"),
        (ValueError("a bad value"), "consultflow: a bad value"),
    ],
)
def test_an_unexpected_error_is_one_line_with_exit_2(
    error: Exception, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(args: object) -> int:
        raise error

    monkeypatch.setattr(cli, "_schema", fails)
    code, out, err = _run(["schema"], capsys)
    assert (code, out) == (2, "")
    assert _a_problem(err).startswith(expected)


def test_ctrl_c_exits_130_quietly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_schema", interrupted)
    try:
        result = _run(["schema"], capsys)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main as a traceback")
    assert result == (130, "", "")


def test_a_closed_pipe_is_not_a_finding(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def reader_went_away(args: object) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(cli, "_schema", reader_went_away)
    code, _, err = _run(["schema"], capsys)
    assert (code, err) == (141, "")


# ---- the demo's hint works as printed ------------------------------------------------------------------


def _without_venv_on_path() -> dict[str, str]:
    """The environment of a newcomer after `make demo`: the venv's bin directory is not on PATH."""
    bin_dir = Path(sys.executable).parent
    keep = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != bin_dir.resolve()]
    return {**os.environ, "PATH": os.pathsep.join(keep or [os.defpath])}


def _hints(out: str) -> tuple[str, str]:
    check = next(line for line in out.splitlines() if "check it: " in line).split("check it: ", 1)[1]
    see = next(line for line in out.splitlines() if line.startswith("See it: ")).removeprefix("See it: ")
    return check, see


def _demo_then_hints(program: list[str], cwd: Path) -> tuple[str, str]:
    env = _without_venv_on_path()
    ran = subprocess.run(
        [*program, "demo", "--db", "my demo.db"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    check, see = _hints(ran.stdout)
    for hint, expected in ((check, "1 consultation checked"), (see, "77 entries, chain verified")):
        again = subprocess.run(hint, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        assert again.returncode == 0, (hint, again.stderr)
        assert expected in again.stdout
    return check, see


def test_the_demo_hint_works_as_printed_after_python_m(tmp_path: Path) -> None:
    check, _ = _demo_then_hints([sys.executable, "-m", "consultflow"], tmp_path)
    assert check == f"{shlex.quote(sys.executable)} -m consultflow verify --db 'my demo.db'"


def test_the_demo_hint_works_as_printed_after_the_venv_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "consultflow"
    if not script.is_file():
        pytest.skip("the consultflow script is not installed beside this Python")
    relative = os.path.relpath(script, tmp_path)
    check, _ = _demo_then_hints([relative], tmp_path)
    assert check == f"{shlex.quote(relative)} verify --db 'my demo.db'"


def test_the_demo_hint_names_the_script_bare_when_path_finds_it(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "consultflow"
    if not script.is_file():
        pytest.skip("the consultflow script is not installed beside this Python")
    env = {**os.environ, "PATH": os.pathsep.join([str(script.parent), os.environ.get("PATH", os.defpath)])}
    ran = subprocess.run(
        [str(script), "demo", "--db", "d.db"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    check, see = _hints(ran.stdout)
    assert (check, see) == ("consultflow verify --db d.db", "consultflow show --db d.db xiaotaoyuan-2026-001")
    again = subprocess.run(check, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr


def test_the_demo_hint_run_in_process_names_python_m(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Called from other code (here pytest), ``sys.argv[0]`` is not consultflow: never hint at it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [shutil.which("pytest") or "pytest", "-q"])
    code, out, _ = _run(["demo"], capsys)
    assert code == 0
    assert _hints(out)[0] == f"{shlex.quote(sys.executable)} -m consultflow verify --db consultflow-demo.db"


def test_python_m_consultflow_runs_the_cli() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "consultflow", "--version"], capture_output=True, text=True, check=False
    )
    assert (ran.returncode, ran.stdout) == (0, f"consultflow {importlib.metadata.version('consultflow')}\n")


# ---- Makefile ---------------------------------------------------------------------------------------------


def _make_dry_run(target: str, tmp_path: Path) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    ran = subprocess.run(
        [make, "-n", "--no-print-directory", "-C", str(REPO), f"VENV={tmp_path / 'venv'}", target],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_make_demo_installs_only_what_the_demo_needs_and_says_so(tmp_path: Path) -> None:
    plan = _make_dry_run("demo", tmp_path)
    assert "pip install --quiet -e .\n" in plan
    assert ".[test]" not in plan
    assert "echo" in plan
    assert "first run only" in plan
    assert plan.rstrip().endswith("/bin/consultflow demo")


def test_make_test_installs_the_test_tools_and_runs_lint_typecheck_unit(tmp_path: Path) -> None:
    plan = _make_dry_run("test", tmp_path)
    assert 'pip install --quiet -e ".[test]"' in plan
    for step in ("ruff check src tests benchmarks", "ruff format --check", "mypy --strict src/consultflow", "pytest"):
        assert step in plan
