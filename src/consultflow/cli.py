"""The command line: ``consultflow demo``, ``consultflow procedure``, ``consultflow schema``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import cast

from .i18n import Lang
from .procedure import Procedure, six_step

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import demo_engine, format_timeline, run_story

    engine, clock = demo_engine()
    cid = run_story(engine, clock)
    entries = engine.history(cid)
    lang = cast(Lang, args.lang)
    if args.json:
        for e in entries:
            print(json.dumps(e.to_json_dict(), ensure_ascii=False, sort_keys=True))
        return 0
    record = engine.get(cid)
    heading = "小桃园社区 · 夜间停车 · 时间线" if lang == "zh" else "Xiaotaoyuan community · night parking · timeline"
    print(heading)
    print("\n".join(format_timeline(entries, lang)))
    check = engine.verify(cid)
    if lang == "zh":
        print(f"\n{len(entries)} 条记录，哈希链{'完整' if check.ok else '已损坏'}；状态：{record.state.value}")
    else:
        print(f"\n{len(entries)} entries, chain {'verified' if check.ok else 'BROKEN'}; state: {record.state.value}")
    return 0 if check.ok else 1


def _procedure(args: argparse.Namespace) -> int:
    proc = Procedure.from_file(args.file) if args.file else six_step()
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
    demo.set_defaults(func=_demo)

    proc = sub.add_parser("procedure", help="print a procedure definition (JSON) or its diagram")
    proc.add_argument("file", nargs="?", help="a .json or .toml definition (default: six-step)")
    proc.add_argument("--mermaid", action="store_true", help="a Mermaid state diagram instead of JSON")
    proc.set_defaults(func=_procedure)

    schema = sub.add_parser("schema", help="JSON Schemas of the stored records")
    schema.set_defaults(func=_schema)

    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
