"""The command line: ``consultflow demo``, ``verify``, ``show``, ``fund``, ``procedure``, ``schema``, ``simulate``,
the signed checkpoints: ``keygen``, ``checkpoint``, ``verify --checkpoint``; the public export: ``export``,
``verify --export``; delivering notices: ``outbox``, ``dispatch``; a community's public pledges:
``roadmap`` (成果运用路线图).

Every subcommand exits the same way (``EXIT_STATUS`` below, also in ``consultflow --help``): 0 all
good; 1 a finding - a chain or record that does not hold, a definition that fails its checks -
printed on stdout; 2 a usage or input problem - bad arguments, a missing or unreadable file, a file
that is not a consultflow store, an unknown consultation id - as one ``consultflow: ...`` line on
stderr. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shlex
import shutil
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .errors import ConsultflowError, IntegrityError, NotFound, ProcedureDefinitionError
from .files import shown_path
from .i18n import Lang
from .procedure import Procedure, six_step
from .procedure.io import load_definition

if TYPE_CHECKING:
    from .log import LogEntry
    from .storage.base import Store
    from .storage.sqlite import Audited, SQLiteStore

__all__ = ["EXIT_FINDING", "EXIT_OK", "EXIT_USAGE", "main"]

DEMO_DB = "consultflow-demo.db"

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # the reader went away (`... | head`): 128 + SIGPIPE, as `cat` would

EXIT_STATUS = """\
exit status (the same for every subcommand):
  0    all good
  1    a finding: a hash chain or record that does not hold, a procedure definition
       that fails its checks; the findings are printed on stdout
  2    a usage or input problem: bad arguments, a missing or unreadable file, a file
       that is not a consultflow store, an unknown consultation id; one line on
       stderr, starting "consultflow:"
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (consultflow ... | head)"""

LANG_HELP = "language of the timeline: en (English) or zh (中文)"
PROCEDURE_HELP = (
    "a procedure definition (.json or .toml) that consultations in the file run under, for replay; "
    "repeatable (the standard six steps and the demo's variant are known)"
)


_SQLITE_HEADER = b"SQLite format 3\x00"


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"consultflow: {_one_line(message)}", file=sys.stderr)
    return code


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in _printable(text).splitlines() if line.strip())


def _printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (but new lines and tabs), bidi
    overrides and other invisible format characters, lone surrogates and unassigned code points are
    shown as ``<U+202E>`` instead of acting on the reader's terminal (an escape sequence, text that
    reads backwards)."""
    if text.isprintable():
        return text
    return "".join(f"<U+{ord(c):04X}>" if _unsafe(c) else c for c in text)


_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # spaces (Zs, e.g. U+3000) are fine


def _unsafe(c: str) -> bool:
    return c not in "\n\t" and unicodedata.category(c) in _UNSAFE


def _count(n: int) -> str:
    return f"{n} consultation" + ("" if n == 1 else "s")


def _print_json(entries: Iterable[LogEntry]) -> None:
    """One entry per line, as a store keeps it: its canonical JSON (docs/integrity.md), so the lines
    verify anywhere, byte for byte."""
    from .log import entry_json

    for e in entries:
        print(_json_line(entry_json(e)))


def _json_line(text: str) -> str:
    """A line of canonical JSON as stored, but every character ``printable`` would not print as
    is escaped (``\\u202e``): the same JSON value (its canonical form, and so its hash, unchanged),
    harmless on a terminal."""
    if text.isprintable():
        return text
    return "".join(json.dumps(c)[1:-1] if _unsafe(c) else c for c in text)


def _version() -> str:
    try:
        return importlib.metadata.version("consultflow")
    except importlib.metadata.PackageNotFoundError:
        from . import __version__

        return __version__


def _program() -> str:
    """How to run consultflow again, as a shell command that works as printed: the ``consultflow``
    script the user ran (by its bare name when that is what PATH finds), else this Python with
    ``-m consultflow`` (``python -m consultflow``, or ``main`` called from other code)."""
    argv0 = sys.argv[0] if sys.argv else ""
    script = Path(argv0)
    if argv0 and script.stem == "consultflow" and script.is_file():
        found = shutil.which(script.name)
        try:
            if found is not None and os.path.samefile(found, script):
                return script.name
        except OSError:
            pass
        return shlex.quote(argv0)
    return f"{shlex.quote(sys.executable or 'python3')} -m consultflow"


def _demo_files(path: Path) -> tuple[Path, ...]:
    return (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal"))


def _fresh_demo_db(path: Path) -> None:
    """Remove the demo file of an earlier run; refuse to touch a file that holds anything else."""
    from .demo import COMMUNITY

    if not path.exists():
        return
    if path.is_dir():
        raise ConsultflowError(f"{path} is a directory; give --db a file path")
    try:
        old = _open(str(path))
    except ConsultflowError as exc:
        raise ConsultflowError(
            f"{path} exists and is not a consultflow demo file ({exc}); the demo recreates its file, "
            "so give --db another path"
        ) from exc
    try:
        others = [cid for cid in old.ids() if not cid.startswith(f"{COMMUNITY}-")]
    finally:
        old.close()
    if others:
        raise ConsultflowError(
            f"{path} holds consultations that are not the demo's ({', '.join(others[:3])}...); the demo "
            "recreates its file, so give --db another path"
        )
    for file in _demo_files(path):
        file.unlink(missing_ok=True)


def _demo(args: argparse.Namespace) -> int:
    from .demo import demo_engine, run_story, story_view
    from .storage.memory import MemoryStore
    from .storage.sqlite import SQLiteStore

    lang = cast(Lang, args.lang)
    path = Path(args.db)
    store: Store
    if args.store == "memory":
        store = MemoryStore()
    else:
        try:
            _fresh_demo_db(path)
            store = SQLiteStore(path)
        except ConsultflowError as exc:
            return _fail(str(exc))
    try:
        engine, clock = demo_engine(store)
        cid = run_story(engine, clock)
        entries = engine.history(cid)
        check = engine.verify(cid)
        if args.json:
            _print_json(entries)
            return EXIT_OK if check.ok else EXIT_FINDING
        view = story_view(engine, cid, lang)
    finally:
        store.close()
    print(_printable("\n".join(view)))
    if args.store == "sqlite":
        program, db = _program(), shlex.quote(str(path))
        verify_cmd = f"{program} verify --db {db}"
        show_cmd = f"{program} show --db {db} {shlex.quote(cid)}"
        if lang == "zh":
            print(f"已写入 {path}；校验：{verify_cmd}；查看：{show_cmd} --lang zh")
        else:
            print(f"Stored in {path}; check it: {verify_cmd}")
            print(f"See it: {show_cmd}")
    return EXIT_OK if check.ok else EXIT_FINDING


def _store_path(db: str) -> Path:
    """The path of an existing SQLite file, or a problem that says plainly what is there instead."""
    path = Path(db)
    if not path.exists():
        raise ConsultflowError(f"no SQLite file at {db}: it does not exist; check the path")
    if path.is_dir():
        raise ConsultflowError(f"{db} is a directory, not a consultflow store; give --db the store's file")
    if not path.is_file():  # a FIFO or a device: opening it could block for ever
        raise ConsultflowError(f"{db} is not a regular file (a pipe or a device?), not a consultflow store")
    try:
        with path.open("rb") as file:
            header = file.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise ConsultflowError(f"cannot read {db}: {exc.strerror or exc}") from exc
    if not header and not Path(f"{db}-wal").exists():
        raise ConsultflowError(f"{db} is empty, not a consultflow store")
    if header and header != _SQLITE_HEADER:
        raise ConsultflowError(f"{db} is not a consultflow store (not an SQLite database)")
    return path


def _open(db: str) -> SQLiteStore:
    """An existing store file, read-only: checking it must not change it."""
    from .storage.sqlite import SQLiteStore

    return SQLiteStore(_store_path(db), readonly=True)


def _procedures(files: Sequence[str] | None) -> dict[tuple[str, str], Procedure]:
    """The definitions replay may need: the standard six steps, the demo's variant, and any given
    with ``--procedure`` (a record names its procedure by name and version)."""
    from .demo import demo_procedure

    known = {p.key: p for p in (six_step(), demo_procedure())}
    for file in files or ():
        data = load_definition(file)
        if not isinstance(data, dict):
            raise ConsultflowError(f"{file} holds a {type(data).__name__}, not a procedure definition")
        try:
            proc = Procedure.from_dict(data)
        except ProcedureDefinitionError as exc:
            raise ConsultflowError(f"{file}: {_one_line(str(exc))}") from exc
        known[proc.key] = proc
    return known


def _check(
    store: SQLiteStore, cid: str, procedures: dict[tuple[str, str], Procedure], unreplayed: list[str]
) -> str | None:
    """Why one consultation does not hold, or None: what ``SQLiteStore.audit`` checks of the file,
    then replay through its procedure and the record and outbox against what the log gives. The one
    check ``verify`` and ``show`` both run, so they never disagree. A consultation under a procedure
    not given is checked without replay and named in ``unreplayed``."""
    return _check_held(store, cid, procedures, unreplayed)[0]


def _check_held(
    store: SQLiteStore, cid: str, procedures: dict[tuple[str, str], Procedure], unreplayed: list[str]
) -> tuple[str | None, Audited | None]:
    """``_check``, with what the audit read and held (``Audited``; ``None`` when a record or entry
    does not parse or the chain does not hold): ``show`` prints that record and log, not a second
    reading of them."""
    from .replay import verify_consultation
    from .storage.sqlite import RECORD_CHANGED

    finding, held = store.audit_consultation(cid)
    if held is None or (finding is not None and finding.reason != RECORD_CHANGED):
        return str(finding), held
    found = None if finding is None else str(finding)  # replay names the field a changed record departs at
    record = held.record
    if record.procedure_key not in procedures:
        unreplayed.append(f"{record.procedure!r} version {record.procedure_version!r}")
        return found, held  # the digest still binds the record to its log
    try:
        # what the audit read, parsed and checked on the stored bytes is replayed, not read again
        outbox = held.outbox if held.outbox is not None else store.stored_outbox(cid)
        check = verify_consultation(
            record, held.entries, procedures, outbox, ledger=store.fund_entries(cid), chain_checked=True
        )
    except IntegrityError as exc:
        return found or f"consultation {cid!r}: {_one_line(str(exc))}", held
    if check.ok:
        return found, held
    where = f"consultation {cid!r}" + (f", entry seq {check.seq}" if check.seq is not None else "")
    return f"{where}: {check.reason}", held


#: ``consultflow verify --workers``: at most this many processes.
MAX_VERIFY_WORKERS = 64


def _check_each(
    store: SQLiteStore, ids: Sequence[str], procedures: dict[tuple[str, str], Procedure], unreplayed: list[str]
) -> list[str]:
    """``_check`` of each consultation in turn: the findings, in the order of ``ids``."""
    findings = []
    for cid in ids:
        try:
            found = _check(store, cid, procedures, unreplayed)
        except IntegrityError as exc:  # SQLite cannot read its pages: damage is a finding
            found = f"consultation {cid!r}: {_one_line(str(exc))}"
        if found is not None:
            findings.append(found)
    return findings


def _check_part(job: tuple[str, tuple[str, ...], tuple[str, ...]]) -> tuple[list[str], list[str], str | None]:
    """A worker process's share of ``verify``: (findings, unreplayed, why it could not read the file)."""
    db, files, ids = job
    try:
        procedures = _procedures(files)
        store = _open(db)
    except ConsultflowError as exc:
        return [], [], str(exc)
    unreplayed: list[str] = []
    try:
        return _check_each(store, ids, procedures, unreplayed), unreplayed, None
    except ConsultflowError as exc:  # returned, not raised: the parent reports it as its own
        return [], unreplayed, str(exc)
    finally:
        store.close()


def _check_in_processes(
    db: str, files: tuple[str, ...], ids: Sequence[str], workers: int
) -> tuple[list[str], list[str]]:
    """``_check_each`` on a process pool: consultations are independent, so the work splits by
    consultation; the findings come back in the order of ``ids``, whatever the number of workers."""
    from concurrent.futures import BrokenExecutor, ProcessPoolExecutor

    size = max(1, -(-len(ids) // (workers * 4)))  # about four parts a worker: an uneven part waits less
    parts = [tuple(ids[i : i + size]) for i in range(0, len(ids), size)]
    findings: list[str] = []
    unreplayed: list[str] = []
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(parts))) as pool:
            for found, names, error in pool.map(_check_part, [(db, files, part) for part in parts]):
                if error is not None:
                    raise ConsultflowError(error)
                findings.extend(found)
                unreplayed.extend(names)
    except BrokenExecutor as exc:  # a worker killed (out of memory, a signal): nothing was checked there
        raise ConsultflowError(f"a verify worker process stopped before its part was checked ({exc})") from exc
    return findings, unreplayed


def _verify(args: argparse.Namespace) -> int:
    if args.export is not None:
        from .export_cli import verify_export_command

        return verify_export_command(args)
    if args.db is None:
        return _fail("verify needs --db PATH (a store) or --export FILE (a public export)")
    if args.checkpoint is not None or args.public_key is not None:
        return _verify_checkpoint(args)
    if not 1 <= args.workers <= MAX_VERIFY_WORKERS:
        return _fail(f"--workers is a number from 1 to {MAX_VERIFY_WORKERS}, not {args.workers}")
    try:
        procedures = _procedures(args.procedure)
        store = _open(args.db)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        ids = store.ids() if args.id is None else (args.id,)
        if args.id is not None and args.id not in ids:
            raise NotFound(args.id)
        findings = [str(f) for f in store.audit_file()] if args.id is None else []
        unreplayed: list[str] = []
        if args.workers > 1 and len(ids) > 1:
            store.close()  # each worker opens the file itself, read-only
            found, unreplayed = _check_in_processes(args.db, tuple(args.procedure or ()), ids, args.workers)
            findings.extend(found)
        else:
            findings.extend(_check_each(store, ids, procedures, unreplayed))
    except NotFound as exc:
        return _fail(str(exc))
    except IntegrityError as exc:
        print(_printable(f"BROKEN consultation '(file)': {_one_line(str(exc))}"))
        return EXIT_FINDING
    except ConsultflowError as exc:
        return _fail(f"cannot read {args.db}: {exc}")
    finally:
        store.close()
    if findings:
        for finding in findings:
            print(_printable(f"BROKEN {finding}"))
        print(f"{len(findings)} of {_count(len(ids))} do not hold (each line names its first bad entry)")
        return EXIT_FINDING
    print(_printable(f"{_count(len(ids))} checked in {args.db}: every chain verifies and agrees with its record"))
    if unreplayed:
        names = ", ".join(sorted(set(unreplayed)))
        print(
            _printable(
                f"not replayed ({len(unreplayed)}): procedure {names} not given; their records are checked by "
                "digest only - give each definition with --procedure FILE to replay them"
            )
        )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from .timeline import format_timeline, heading, summary_line

    lang = cast(Lang, args.lang)
    try:
        procedures = _procedures(args.procedure)
        store = _open(args.db)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        if args.id not in store.ids():
            raise NotFound(args.id)
        problem, held = _check_held(store, args.id, procedures, [])
        if problem is not None or held is None:
            # What is stored does not hold together: a finding about the file, not a problem running.
            if lang == "zh":
                print(_printable(f"已损坏：{problem}"))
            else:
                print(_printable(f"BROKEN {problem}"))
            return EXIT_FINDING
        record, entries = held.record, held.entries  # checked just now: shown as read, not read again
    except NotFound as exc:
        return _fail(str(exc))
    except IntegrityError as exc:
        print(_printable(f"BROKEN consultation {args.id!r}: {_one_line(str(exc))}"))
        return EXIT_FINDING
    except ConsultflowError as exc:
        return _fail(f"cannot show {args.id!r}: {exc}")
    finally:
        store.close()
    if args.json:
        _print_json(entries)
        return EXIT_OK
    print(_printable(heading(record, lang)))
    print(_printable("\n".join(format_timeline(entries, lang))))
    print("\n" + summary_line(len(entries), True, record.state.value, lang))
    return EXIT_OK


def _roadmap(args: argparse.Namespace) -> int:
    """承诺制 / 成果运用路线图: a community's pledges from a store, as text, JSON or a public HTML page.
    Built only from consultations whose chains verify (a public page never shows what does not hold)."""
    from .clock import SystemClock
    from .roadmap import build_roadmap, roadmap_dumps, roadmap_html, roadmap_text
    from .storage.base import Query

    lang = cast(Lang, args.lang)
    html_path = None if args.html is None else Path(args.html)
    if html_path is not None and html_path.is_dir():
        return _fail(f"{args.html} is a directory; give --html the page's file path")
    if html_path is not None and html_path.exists() and html_path.resolve() == Path(args.db).resolve():
        return _fail(f"--html {args.html} is the store itself; give the page another path")
    try:
        procedures = _procedures(args.procedure)
        store = _open(args.db)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        records = store.find(Query(community=args.community))
        if not records:
            if lang == "zh":
                return _fail(f"{args.db}中没有社区{args.community!r}的协商议题；请检查社区编号")
            return _fail(f"no consultation of community {args.community!r} in {args.db}; check the community id")
        findings = [f for f in (_check(store, r.id, procedures, []) for r in records) if f is not None]
        roadmap = build_roadmap(records, args.community, now=SystemClock().now(), link=args.link)
    except IntegrityError as exc:
        print(_printable(f"BROKEN consultation '(file)': {_one_line(str(exc))}"))
        return EXIT_FINDING
    except ConsultflowError as exc:
        return _fail(f"cannot build the roadmap of {args.community!r}: {exc}")
    finally:
        store.close()
    if findings:
        for finding in findings:
            print(_printable(f"已损坏：{finding}" if lang == "zh" else f"BROKEN {finding}"))
        return EXIT_FINDING
    if args.json:
        print(_json_line(roadmap_dumps(roadmap)))
    elif html_path is not None:
        html_path.write_text(roadmap_html(roadmap, lang), encoding="utf-8")
        count = len(roadmap.items)
        if lang == "zh":
            print(_printable(f"已写入 {args.html}：{count}项承诺"))
        else:
            print(_printable(f"wrote {args.html}: {count} pledge" + ("" if count == 1 else "s")))
    else:
        print(_printable("\n".join(roadmap_text(roadmap, lang))))
    return EXIT_OK


_FUND_WORDS: dict[str, tuple[str, str]] = {
    "title": ("the fund of community {community} for {year}", "{community}社区{year}年便民服务公益金（微幸福）"),
    "pool": ("pool", "总额"),
    "allocated": ("allocated", "已安排"),
    "spent": ("spent", "已支出"),
    "overspent": ("spent over budgets", "超预算支出"),
    "balance": ("balance", "余额"),
    "allocations": ("{count} allocation(s)", "{count}笔"),
    "no_pool": ("no pool", "未设公益金"),
}


def _fund_money(value: str | None, lang: Lang) -> str:
    from decimal import Decimal

    if value is None:
        return _FUND_WORDS["no_pool"][0 if lang == "en" else 1]
    amount = Decimal(value)
    return f"{amount:,.2f} yuan" if lang == "en" else f"{amount:.2f}元"


def _fund(args: argparse.Namespace) -> int:
    """A community's fund for a year (微幸福台账): pool, allocated, spent, balance."""
    from .funds import FundStatement, pool_recorded
    from .storage.base import Query

    lang = cast(Lang, args.lang)
    if not 1970 <= args.year <= 9000:
        return _fail(f"--year {args.year} is no fund year: give a year from 1970 to 9000")
    try:
        procedures = _procedures(args.procedure)
        store = _open(args.db)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        rows = store.fund_rows(args.community, args.year)
        records = store.find(Query(community=args.community))
        if not records and not rows:
            raise NotFound(args.community, what="consultation of community")
        position = store.fund_position(args.community, args.year)
        pool = pool_recorded(rows)
        if pool is None:  # no allocation yet: the pool the community's latest procedure gives the year
            latest = records[-1] if records else None
            procedure = procedures.get(latest.procedure_key) if latest is not None else None
            pool = (procedure or six_step()).parameters.pool_for(args.year)
    except NotFound as exc:
        return _fail(str(exc))
    except ConsultflowError as exc:
        return _fail(f"cannot read the fund of {args.community!r} in {args.db}: {exc}")
    finally:
        store.close()
    figures = FundStatement.of(position, pool).to_dict()
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return EXIT_OK
    i = 0 if lang == "en" else 1
    print(_printable(_FUND_WORDS["title"][i].format(community=args.community, year=args.year)))
    names = ("pool", "allocated", "spent", "overspent", "balance")
    width = max(len(_FUND_WORDS[n][i]) * (2 if lang == "zh" else 1) for n in names)
    for name in names:
        label = _FUND_WORDS[name][i]
        shown = _fund_money(figures[name], lang)
        if name == "allocated":
            shown += " (" if lang == "en" else "（"
            shown += _FUND_WORDS["allocations"][i].format(count=figures["allocations"])
            shown += ")" if lang == "en" else "）"
        pad = " " * (width - len(label) * (2 if lang == "zh" else 1))
        print(_printable(f"  {label}{pad}  {shown}"))
    return EXIT_OK


def _procedure(args: argparse.Namespace) -> int:
    """Check a definition file and print it (exit 1 listing every problem, 2 if it cannot be read)."""
    if args.file and Path(args.file).is_dir():
        return _fail(f"{args.file} is a directory; give a .json or .toml definition file")
    try:
        data = load_definition(args.file) if args.file else None
    except ConsultflowError as exc:
        return _fail(str(exc))
    if data is not None and not isinstance(data, dict):
        return _fail(
            f"{args.file} holds a {type(data).__name__}, not a procedure definition (a table with name and version)"
        )
    try:
        proc = Procedure.from_dict(data) if data is not None else six_step()
    except ProcedureDefinitionError as exc:
        print(_printable(f"{args.file}: {exc}"))
        return EXIT_FINDING
    if args.mermaid:
        print(proc.mermaid(), end="")
    elif args.dot:
        print(proc.dot(), end="")
    else:
        print(proc.to_json())
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from . import records
    from .checkpoints import Checkpoint
    from .log import LogEntry
    from .notices import Notice

    models: dict[str, type[records.Record]] = {
        "Consultation": records.Consultation,
        "LogEntry": LogEntry,
        "Participant": records.Participant,
        "Notice": Notice,
        "Checkpoint": Checkpoint,
    }
    schemas = {k: m.model_json_schema() for k, m in models.items()}
    schemas["Checkpoint"] = Checkpoint.model_json_schema(mode="serialization")  # leaves are [id, version, head]
    print(json.dumps(schemas, ensure_ascii=False, indent=2))
    return EXIT_OK


# ---- signed checkpoints (公开制 you can check) -----------------------------------------------------------
_MAX_CHECKPOINT = 1 << 30  # a leaf is ~100 bytes: room for millions of consultations, not for anything


def _keygen(args: argparse.Namespace) -> int:
    from .checkpoints import load_public_key, write_key_pair

    private, public = write_key_pair(args.out)
    print(_printable(f"wrote {private} (the private key: keep it secret, sign checkpoints with it)"))
    print(_printable(f"wrote {public} (the public key: publish it with your checkpoints)"))
    print(f"public key, to post on the notice board: {load_public_key(public).public_bytes_raw().hex()}")
    return EXIT_OK


def _checkpoint(args: argparse.Namespace) -> int:
    from .checkpoints import load_private_key, sign_checkpoint

    key = load_private_key(args.key)
    store = _open(args.db)
    try:
        signed = sign_checkpoint(store, key)
    except IntegrityError as exc:
        print(_printable(f"BROKEN {_one_line(str(exc))}"))
        return EXIT_FINDING
    finally:
        store.close()
    print(signed.to_json())
    return EXIT_OK


def _verify_checkpoint(args: argparse.Namespace) -> int:
    """``verify --checkpoint FILE --public-key KEY.pub``: the store against a signed checkpoint,
    then the usual audit of every chain."""
    from .checkpoints import load_public_key, verify_checkpoint
    from .files import read_file

    if args.checkpoint is None or args.public_key is None:
        return _fail("--checkpoint and --public-key go together: the checkpoint file and the key that signed it")
    if args.id is not None:
        return _fail("a checkpoint covers the whole store: give no consultation id with --checkpoint")
    key = load_public_key(args.public_key)
    data = read_file(args.checkpoint, limit=_MAX_CHECKPOINT, what="checkpoint")
    store = _open(args.db)
    try:
        report = verify_checkpoint(store, data, key)
        audit = store.audit()
    finally:
        store.close()
    for finding in report.findings:
        print(_printable(str(finding)))
    for broken in audit:
        print(_printable(f"BROKEN {broken}"))
    if report.findings or audit:
        print(
            f"the store does not hold against the checkpoint of {report.time or '(unreadable)'}: "
            f"{len(report.findings) + len(audit)} finding(s)"
        )
        return EXIT_FINDING
    print(
        f"checkpoint of {report.time} holds: nothing it covers ({_count(report.checked)}) was deleted, cut short "
        f"or rewritten; {len(report.grown)} grew since, {len(report.new)} new; every chain verifies"
    )
    return EXIT_OK


def _describe(what: str, status: str) -> dict[str, Any]:
    """The keyword arguments of a subcommand: its description, ending with its exit status."""
    return {
        "description": f"{what}\n\nexit status: {status}",
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consultflow",
        description="Community consultation (社区协商) engine",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"consultflow {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="run the reference consultation and print its timeline",
        **_describe(
            "Run the reference consultation (night parking in Xiaotaoyuan) and print its timeline.\n"
            "The SQLite file given by --db is recreated on each run.",
            "0 the story ran and its chain verifies; 1 its chain does not verify (a finding, on\n"
            "stdout); 2 a usage or input problem (e.g. --db names a file that is not the demo's).",
        ),
    )
    demo.add_argument("--json", action="store_true", help="one JSON object per log entry")
    demo.add_argument("--lang", choices=["en", "zh"], default="en", help=LANG_HELP)
    demo.add_argument(
        "--db",
        default=DEMO_DB,
        metavar="PATH",
        help=f"the SQLite file to write, recreated each run (default: {DEMO_DB})",
    )
    demo.add_argument(
        "--store", choices=["sqlite", "memory"], default="sqlite", help="memory: keep nothing (default: sqlite)"
    )
    demo.set_defaults(func=_demo)

    check = sub.add_parser(
        "verify",
        help="check every hash chain in a store (or one) and that each record agrees with its log",
        **_describe(
            "Check every hash chain in a consultflow SQLite file (or one consultation's) on the stored\n"
            "bytes, replay each log through its procedure and compare the record and outbox with what\n"
            "the log gives, and run SQLite's integrity check. The file is opened read-only (a read-only\n"
            "copy can be checked).",
            "0 everything holds; 1 something does not hold (a finding: each broken consultation\n"
            "is named on stdout with its first bad entry: consultation, seq, reason); 2 a usage or\n"
            "input problem (no such file, not a consultflow store, an unknown id).",
        ),
    )
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--db", metavar="PATH", help="a consultflow SQLite file")
    what.add_argument(
        "--export",
        metavar="FILE",
        help="instead of --db: check a public export (consultflow export) offline against --checkpoint",
    )
    check.add_argument("id", nargs="?", help="one consultation id (default: all)")
    check.add_argument("--procedure", action="append", metavar="FILE", help=PROCEDURE_HELP)
    check.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="also check the store against this signed checkpoint: nothing it covers deleted, cut or rewritten",
    )
    check.add_argument("--public-key", metavar="KEY.pub", help="the public key that signed --checkpoint")
    check.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="K",
        help="check consultations on K processes (default 1); the report is the same for any K",
    )
    check.set_defaults(func=_verify)

    keygen = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair to sign checkpoints with",
        **_describe(
            "Make an Ed25519 key pair: the private key in --out (PEM, readable by you only: keep it\n"
            "secret) and the public key in --out.pub (publish it beside your checkpoints).",
            "0 written; 2 a usage or input problem (a file exists already: keys are never overwritten).",
        ),
    )
    keygen.add_argument("--out", required=True, metavar="KEY", help="where to write the private key (KEY.pub too)")
    keygen.set_defaults(func=_keygen)

    point = sub.add_parser(
        "checkpoint",
        help="print a signed checkpoint of a store (JSON), for anyone to check it against later",
        **_describe(
            "Print a signed checkpoint of a consultflow SQLite file: the time, the number of\n"
            "consultations, a Merkle root over every consultation's (id, version, head), the\n"
            "signature, and the list it covers. Publish it; `consultflow verify --checkpoint`\n"
            "later shows whether anything it covers was deleted, cut short or rewritten.",
            "0 printed; 1 the store does not verify now (a finding: nothing is signed); 2 a usage\n"
            "or input problem (no such file, not a consultflow store, not a private key).",
        ),
    )
    point.add_argument("--db", required=True, metavar="PATH", help="a consultflow SQLite file")
    point.add_argument("--key", required=True, metavar="KEY", help="the private key (consultflow keygen)")
    point.set_defaults(func=_checkpoint)

    from .export_cli import add_export  # the public export (issue 8.4)

    add_export(sub, _describe)

    show = sub.add_parser(
        "show",
        help="print one consultation's timeline from a store",
        **_describe(
            "Print one consultation's timeline from a consultflow SQLite file (opened read-only).",
            "0 printed and its chain verifies; 1 its chain or record does not hold (a finding, on\n"
            "stdout); 2 a usage or input problem (no such file, not a consultflow store, an unknown id).",
        ),
    )
    show.add_argument("--db", required=True, metavar="PATH", help="a consultflow SQLite file")
    show.add_argument("id", help="the consultation id")
    show.add_argument("--procedure", action="append", metavar="FILE", help=PROCEDURE_HELP)
    show.add_argument("--json", action="store_true", help="one JSON object per log entry")
    show.add_argument("--lang", choices=["en", "zh"], default="en", help=LANG_HELP)
    show.set_defaults(func=_show)

    road = sub.add_parser(
        "roadmap",
        help="a community's public pledges (承诺制): the results roadmap as text, JSON or an HTML page",
        **_describe(
            "Print a community's results roadmap (成果运用路线图) from a consultflow SQLite file (opened\n"
            "read-only): every pledge published with a decision - what, who, by when, how much - with its\n"
            "status, progress, money spent and the latest photos' hashes. No personal data. Only built\n"
            "when every chain of the community verifies.",
            "0 printed (or written); 1 a chain or record of the community does not hold (a finding, on\n"
            "stdout; no page is written); 2 a usage or input problem (no such file, not a consultflow\n"
            "store, no consultation of that community, a bad --link).",
        ),
    )
    road.add_argument("--db", required=True, metavar="PATH", help="a consultflow SQLite file")
    road.add_argument("--community", required=True, metavar="ID", help="the community's id")
    output = road.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the roadmap as one JSON object")
    output.add_argument("--html", metavar="FILE", help="write the public HTML page to FILE")
    road.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the text or page: en or zh")
    road.add_argument(
        "--link", metavar="URL", help="link each pledge to its consultation: e.g. https://app.example/c/{consultation}"
    )
    road.add_argument("--procedure", action="append", metavar="FILE", help=PROCEDURE_HELP)
    road.set_defaults(func=_roadmap)
    fund = sub.add_parser(
        "fund",
        help="print a community's 微幸福 fund for a year: pool, allocated, spent, balance",
        **_describe(
            "Print a community's fund for a year (微幸福便民服务公益金) from a consultflow SQLite file\n"
            "(opened read-only): the pool, what decisions in force were allocated, what their measures\n"
            "spent (and spent beyond their budgets), and the balance left to allocate.",
            "0 printed; 2 a usage or input problem (no such file, not a consultflow store, a community\n"
            "with no consultation in the file, a year out of range).",
        ),
    )
    fund.add_argument("--db", required=True, metavar="PATH", help="a consultflow SQLite file")
    fund.add_argument("--community", required=True, metavar="ID", help="the community's id")
    fund.add_argument("--year", required=True, type=int, metavar="YYYY", help="the fund year (in the procedure's zone)")
    fund.add_argument("--procedure", action="append", metavar="FILE", help=PROCEDURE_HELP)
    fund.add_argument("--json", action="store_true", help="one JSON object: pool, allocated, spent, balance")
    fund.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the table: en or zh")
    fund.set_defaults(func=_fund)

    proc = sub.add_parser(
        "procedure",
        help="check a procedure definition and print it (JSON) or its diagram",
        **_describe(
            "Check a procedure definition file (.json or .toml) and print it as JSON, or as a Mermaid\n"
            "(--mermaid) or Graphviz (--dot) diagram; without a file, the standard six-step procedure.",
            "0 the definition is sound; 1 it fails its checks (a finding: every problem is listed\n"
            "on stdout); 2 a usage or input problem (no such file, an unsupported format, not valid\n"
            "JSON or TOML).",
        ),
    )
    proc.add_argument("file", nargs="?", help="a .json or .toml definition (default: six-step)")
    drawing = proc.add_mutually_exclusive_group()
    drawing.add_argument("--mermaid", action="store_true", help="a Mermaid state diagram instead of JSON")
    drawing.add_argument("--dot", action="store_true", help="a Graphviz DOT digraph instead of JSON")
    proc.set_defaults(func=_procedure)

    schema = sub.add_parser(
        "schema",
        help="JSON Schemas of the stored records",
        **_describe("Print the JSON Schemas of the stored records.", "0 printed; 2 a usage problem."),
    )
    schema.set_defaults(func=_schema)
    from .sim.command import register as register_simulate

    register_simulate(sub)

    from .delivery.cli import add_commands  # outbox, dispatch: delivering notices

    add_commands(sub, _describe)
    return parser


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status follows ``EXIT_STATUS``. argparse's own usage errors
    (and ``--help``, ``--version``) leave by ``SystemExit`` as usual."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`consultflow show ... | head`): stop quietly, as Unix tools do, and
        # keep Python from complaining when it flushes stdout on the way out.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except (ConsultflowError, OSError, UnicodeError, ValueError, OverflowError, RecursionError) as exc:
        # what a file or an argument can still provoke (a path too long, nesting too deep): input problems
        return _fail(_describe_error(exc))


def _describe_error(exc: Exception) -> str:
    """An unexpected error as one readable line (``path: No such file or directory``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{shown_path(exc.filename)}: {exc.strerror}" if isinstance(exc.filename, str) else exc.strerror
    return str(exc) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
