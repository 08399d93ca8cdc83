"""The command line: ``consultflow demo``, ``verify``, ``show``, ``procedure``, ``schema``.

Exit codes: 0 all good; 1 a chain or record does not hold (``verify``, ``show``, ``demo``) or the
consultation is unknown (``show``); 2 the command could not run (bad arguments, no such file, a
file that is not a consultflow store, an unknown id for ``verify``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from .errors import ConsultflowError, NotFound, ProcedureDefinitionError
from .i18n import Lang, state_name
from .procedure import Procedure, six_step

if TYPE_CHECKING:
    from .log import LogEntry
    from .storage.base import Store
    from .storage.sqlite import SQLiteStore

__all__ = ["main"]

DEMO_DB = "consultflow-demo.db"


def _fail(message: str, code: int = 2) -> int:
    print(f"consultflow: {message}", file=sys.stderr)
    return code


def _count(n: int) -> str:
    return f"{n} consultation" + ("" if n == 1 else "s")


def _print_json(entries: Iterable[LogEntry]) -> None:
    for e in entries:
        print(json.dumps(e.to_json_dict(), ensure_ascii=False, sort_keys=True))


def _summary(count: int, ok: bool, state: str, lang: Lang) -> str:
    if lang == "zh":
        return f"{count} 条记录，哈希链{'完整' if ok else '已损坏'}；状态：{state}"
    return f"{count} entries, chain {'verified' if ok else 'BROKEN'}; state: {state}"


def _demo_files(path: Path) -> tuple[Path, ...]:
    return (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal"))


def _fresh_demo_db(path: Path) -> None:
    """Remove the demo file of an earlier run; refuse to touch a file that holds anything else."""
    from .demo import COMMUNITY
    from .storage.sqlite import SQLiteStore

    if not path.exists():
        return
    if path.is_dir():
        raise ConsultflowError(f"{path} is a directory; give --db a file path")
    try:
        old = SQLiteStore(path, readonly=True)
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
    from .demo import demo_engine, format_timeline, run_story
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
        if args.json:
            _print_json(entries)
            return 0
        record = engine.get(cid)
        check = engine.verify(cid)
    finally:
        store.close()
    heading = "小桃园社区 · 夜间停车 · 时间线" if lang == "zh" else "Xiaotaoyuan community · night parking · timeline"
    print(heading)
    print("\n".join(format_timeline(entries, lang)))
    print("\n" + _summary(len(entries), check.ok, record.state.value, lang))
    if args.store == "sqlite":
        if lang == "zh":
            print(f"已写入 {path}；校验：consultflow verify --db {path}；查看：consultflow show --db {path} {cid}")
        else:
            print(f"Stored in {path}; check it: consultflow verify --db {path}")
            print(f"See it: consultflow show --db {path} {cid}")
    return 0 if check.ok else 1


def _open(db: str) -> SQLiteStore:
    """An existing store file, read-only: checking it must not change it."""
    from .storage.sqlite import SQLiteStore

    return SQLiteStore(db, readonly=True)


def _verify(args: argparse.Namespace) -> int:
    try:
        store = _open(args.db)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        ids = store.ids() if args.id is None else (args.id,)
        findings = store.audit(args.id)
    except NotFound as exc:
        return _fail(str(exc))
    except ConsultflowError as exc:
        return _fail(f"cannot read {args.db}: {exc}")
    finally:
        store.close()
    if findings:
        for finding in findings:
            print(f"BROKEN {finding}")
        print(f"{len(findings)} of {_count(len(ids))} do not hold (each line names its first bad entry)")
        return 1
    print(f"{_count(len(ids))} checked in {args.db}: every chain verifies and agrees with its record")
    return 0


def _show(args: argparse.Namespace) -> int:
    from .demo import format_timeline
    from .log import verify

    lang = cast(Lang, args.lang)
    try:
        store = _open(args.db)
    except ConsultflowError as exc:
        return _fail(str(exc))
    try:
        record = store.load(args.id)
        entries = store.entries(args.id)
    except NotFound as exc:
        return _fail(str(exc), 1)
    except ConsultflowError as exc:
        return _fail(f"cannot show {args.id!r}: {exc}", 1)
    finally:
        store.close()
    if args.json:
        _print_json(entries)
        return 0
    check = verify(entries, head=record.head, version=record.version)
    print(f"{record.title} · {record.community} · {record.topic} · {state_name(record.state.value, lang)}")
    print("\n".join(format_timeline(entries, lang)))
    print("\n" + _summary(len(entries), check.ok, record.state.value, lang))
    if not check.ok:
        print(f"BROKEN consultation {record.id!r}, entry seq {check.seq}: {check.reason}")
    return 0 if check.ok else 1


def _procedure(args: argparse.Namespace) -> int:
    """Check a definition file and print it (exit 1 listing every problem, 2 if unreadable)."""
    try:
        proc = Procedure.from_file(args.file) if args.file else six_step()
    except ProcedureDefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror or exc}")
    print(proc.mermaid() if args.mermaid else proc.to_json())
    return 0


def _schema(args: argparse.Namespace) -> int:
    from . import records
    from .log import LogEntry
    from .notices import Notice

    models: dict[str, type[records.Record]] = {
        "Consultation": records.Consultation,
        "LogEntry": LogEntry,
        "Participant": records.Participant,
        "Notice": Notice,
    }
    print(json.dumps({k: m.model_json_schema() for k, m in models.items()}, ensure_ascii=False, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consultflow", description="Community consultation (社区协商) engine")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the reference consultation and print its timeline")
    demo.add_argument("--json", action="store_true", help="one JSON object per log entry")
    demo.add_argument("--lang", choices=["en", "zh"], default="en")
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
        description="Exit 0 when everything holds; 1 naming the first bad entry of each broken consultation "
        "(consultation, seq, reason); 2 when the file cannot be read. The file is opened read-only.",
    )
    check.add_argument("--db", required=True, metavar="PATH", help="a consultflow SQLite file")
    check.add_argument("id", nargs="?", help="one consultation id (default: all)")
    check.set_defaults(func=_verify)

    show = sub.add_parser("show", help="print one consultation's timeline from a store")
    show.add_argument("--db", required=True, metavar="PATH", help="a consultflow SQLite file")
    show.add_argument("id", help="the consultation id")
    show.add_argument("--json", action="store_true", help="one JSON object per log entry")
    show.add_argument("--lang", choices=["en", "zh"], default="en")
    show.set_defaults(func=_show)

    proc = sub.add_parser("procedure", help="print a procedure definition (JSON) or its diagram")
    proc.add_argument("file", nargs="?", help="a .json or .toml definition (default: six-step)")
    proc.add_argument("--mermaid", action="store_true", help="a Mermaid state diagram instead of JSON")
    proc.set_defaults(func=_procedure)

    schema = sub.add_parser("schema", help="JSON Schemas of the stored records")
    schema.set_defaults(func=_schema)

    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (`consultflow show ... | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
