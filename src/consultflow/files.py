"""Reading a file a user names (a procedure definition, a checkpoint, a key): only a regular file,
only up to a size, and never waiting - a FIFO, a device or a directory is refused at once instead
of blocking the reader or filling its memory. Every problem is ``InvalidInput`` naming the file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import InvalidInput

__all__ = ["read_file", "shown_path"]

_SHOWN = 120  # characters of a path a message shows


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as a one-line message shows it: shortened in the middle when very long."""
    text = os.fspath(path)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _SHOWN else f"{text[:60]}...{text[-57:]}"


def read_file(path: str | os.PathLike[str], *, limit: int, what: str) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them; ``what`` names the file
    in messages ("procedure definition", "checkpoint")."""
    shown = shown_path(path)
    try:
        fd = os.open(Path(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInput(f"cannot read the {what} {shown}: {reason}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device?)"
            raise InvalidInput(f"cannot read the {what} {shown}: it is {kind}")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InvalidInput(f"cannot read the {what} {shown}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InvalidInput(f"the {what} {shown} is larger than {limit:,} bytes; that is no {what}")
    return b"".join(chunks)
