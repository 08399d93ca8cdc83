"""The command line of the public export: ``consultflow export --db PATH --public --secret-file FILE
--key KEY [--out FILE]`` and ``consultflow verify --export FILE --checkpoint CP --public-key KEY.pub``
(``consultflow.export``). Exit status as every subcommand: 0 ok, 1 a finding, 2 usage or input."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import IntegrityError, InvalidInput

__all__ = ["add_export", "verify_export_command"]

_MAX_SECRET = 1 << 16
_MAX_CHECKPOINT = 1 << 30
_MAX_EXPORT = 1 << 34  # 16 GiB: an export is read whole to check its signature


def add_export(sub: Any, describe: Callable[[str, str], dict[str, Any]]) -> None:
    """Register ``consultflow export``."""
    export = sub.add_parser(
        "export",
        help="write a public export of a store (JSON Lines): no person ids, no private text, still verifiable",
        **describe(
            "Write every log entry of a consultflow SQLite file as JSON Lines, in the form anyone\n"
            "may read: person ids as keyed pseudonyms (HMAC with the secret in --secret-file, which\n"
            "you keep: the same secret gives the same pseudonyms), the free text the procedure marks\n"
            "private left out, each entry with its hash; the last line signs the export with --key.\n"
            "`consultflow verify --export FILE --checkpoint CP --public-key KEY.pub` checks it offline.",
            "0 written; 1 the store does not verify now (a finding: nothing is exported); 2 a usage\n"
            "or input problem (no such file, no --public, a secret shorter than 16 bytes, --out exists).",
        ),
    )
    export.add_argument("--db", required=True, metavar="PATH", help="a consultflow SQLite file")
    export.add_argument("--public", action="store_true", help="the public form (the only export there is)")
    export.add_argument(
        "--secret-file",
        required=True,
        metavar="FILE",
        help="the pseudonyms' secret: 16 bytes or more, e.g. `head -c 32 /dev/urandom > FILE`; keep it",
    )
    export.add_argument("--key", required=True, metavar="KEY", help="the private key that signs (consultflow keygen)")
    export.add_argument("--out", metavar="FILE", help="write here (never overwritten) instead of stdout")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from .checkpoints import load_private_key
    from .cli import EXIT_FINDING, EXIT_OK, _fail, _one_line, _open, _printable
    from .export import export_public
    from .files import read_file, shown_path

    if not args.public:
        return _fail("say --public: the export leaves out personal data (the only export there is)")
    secret = read_file(args.secret_file, limit=_MAX_SECRET, what="secret file")
    key = load_private_key(args.key)
    out = Path(args.out) if args.out is not None else None
    if out is not None and (out.exists() or out.is_symlink()):
        return _fail(f"{shown_path(out)} exists: an export is never written over a file")
    store = _open(args.db)
    try:
        lines = export_public(store, secret, key)
    except IntegrityError as exc:
        print(_printable(f"BROKEN {_one_line(str(exc))}"))
        return EXIT_FINDING
    finally:
        store.close()
    text = "".join(line + "\n" for line in lines)
    if out is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with open(out, "x", encoding="utf-8", newline="\n") as file:
            file.write(text)
    except FileExistsError:
        return _fail(f"{shown_path(out)} exists: an export is never written over a file")
    print(_printable(f"wrote {shown_path(out)}: {len(lines) - 1} entries, signed"), file=sys.stderr)
    return EXIT_OK


def verify_export_command(args: argparse.Namespace) -> int:
    """``verify --export FILE --checkpoint CP --public-key KEY.pub``: an export, offline."""
    from .checkpoints import load_public_key
    from .cli import EXIT_FINDING, EXIT_OK, _fail, _printable
    from .export import verify_export
    from .files import read_file

    if args.db is not None or args.id is not None:
        return _fail("--export checks an export file offline: give no --db and no consultation id")
    if args.checkpoint is None or args.public_key is None:
        return _fail("--export needs --checkpoint CP and --public-key KEY.pub: the export is checked against them")
    key = load_public_key(args.public_key)
    checkpoint = read_file(args.checkpoint, limit=_MAX_CHECKPOINT, what="checkpoint")
    data = read_file(args.export, limit=_MAX_EXPORT, what="export")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"the export {os.fspath(args.export)!r} is not UTF-8 text: no export") from None
    report = verify_export(text, checkpoint, key)
    for finding in report.findings:
        print(_printable(str(finding)))
    if report.findings:
        print(f"the export does not hold against the checkpoint: {len(report.findings)} finding(s)")
        return EXIT_FINDING
    print(
        _printable(
            f"export of {report.time} holds: {report.entries} entries of {report.consultations} consultation(s), "
            f"every chain verifies, signed by the key given; the checkpoint's consultations are all in it "
            f"({len(report.new)} new since)"
        )
    )
    return EXIT_OK
