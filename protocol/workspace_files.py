"""Reading and writing files of the workspace from the team's own (unconfined) processes, when
model code may have shaped them: a symlink that points out of the workspace, a FIFO that would
block a reader forever, `/dev/zero` behind a name, a file of many gigabytes. Anything that is
not a regular file inside the workspace is not read, and a write never goes through a link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocol.atomic import atomic_write_bytes
from protocol.environment import is_secret_path

READ_LIMIT = 2_000_000


def inside(workspace: Path, relative: str | Path) -> Path | None:
    """The real path of `relative` when it resolves inside the workspace, else None."""
    root = workspace.resolve()
    try:
        real = (workspace / relative).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return real if real == root or real.is_relative_to(root) else None


def read_bytes_inside(
    workspace: Path, relative: str | Path, limit: int = READ_LIMIT
) -> bytes | None:
    """The content of a regular file inside the workspace, or None: outside it, not a regular
    file, unreadable, or larger than `limit`."""
    real = inside(workspace, relative)
    if real is None:
        return None
    try:
        # No blocking on a FIFO, and no following a link swapped in since resolve().
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text_inside(workspace: Path, relative: str | Path, limit: int = READ_LIMIT) -> str | None:
    data = read_bytes_inside(workspace, relative, limit)
    return None if data is None else data.decode("utf-8", "replace")


def text_for_a_model(workspace: Path, relative: str | Path) -> str | None:
    """`read_text_inside`, and None for a secret-looking file, by its own name or by the name
    of the file a link leads to (`helper.py -> .env`)."""
    real = inside(workspace, relative)
    if real is None or is_secret_path(str(relative)) or is_secret_path(real.name):
        return None
    return read_text_inside(workspace, relative)


def write_bytes_inside(workspace: Path, relative: str | Path, data: bytes) -> bool:
    """Replace the file (a link in its place is replaced, never followed) when its directory
    is inside the workspace; whether it was written."""
    target = workspace / relative
    parent = inside(workspace, Path(relative).parent)
    if parent is None:
        return False
    parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(parent / target.name, data)
    return True
