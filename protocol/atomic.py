"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The recipe is DESIGN §3: write a temp file in the same directory, fsync it, rename it over
the target, fsync the directory so the rename itself survives a power loss.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def write_all(fd: int, data: bytes) -> None:
    """Write every byte: `os.write` may write part of the buffer without an error."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(directory: Path) -> None:
    """Make a rename or create inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_file(source: Path, target: Path) -> None:
    """Move a file to a name that must not exist yet: hard link, then unlink (as Maildir does).

    Unlike rename(2), this never replaces an existing file, and the watcher sees a create in the
    target directory instead of a move out of the source one (watchdog holds each unpaired
    "moved from" event for 0.5 s, stalling every event behind it). A crash between the two
    steps leaves the file under both names; callers treat the target as the truth. Symbolic
    links are moved as links; directories, and filesystems without hard links, are renamed.
    """
    if os.path.isdir(source) and not os.path.islink(source):
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "target exists", str(target))
        os.rename(source, target)
        return
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "target exists", str(target)) from exc
        os.rename(source, target)
        return
    os.unlink(source)


_temp_names = itertools.count()


def write_temp(directory: Path, data: bytes, *, prefix: str = ".tmp-", fsync: bool = True) -> Path:
    """Write `data` to a new, uniquely named file in `directory` and return its path."""
    # pid + a counter + a random tag: unique without mkstemp's retry loop; O_EXCL checks anyway.
    name = f"{prefix}{os.getpid()}-{next(_temp_names)}-{secrets.token_hex(4)}.part"
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return path


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace `path` with `data` atomically (temp file, fsync, rename, fsync of the directory)."""
    path = Path(path)
    temp = write_temp(path.parent, data, fsync=fsync)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: Path, value: BaseModel | Any, *, fsync: bool = True) -> None:
    """Write a pydantic model or a JSON-able value as indented JSON, atomically."""
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    else:
        text = json.dumps(value, indent=2, sort_keys=True, allow_nan=False)
    atomic_write_text(path, text + "\n", fsync=fsync)
