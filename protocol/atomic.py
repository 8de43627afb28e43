"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The recipe is DESIGN §3: write a temp file in the same directory, fsync it, rename it over
the target, fsync the directory so the rename itself survives a power loss.
"""

from __future__ import annotations

import json
import os
import tempfile
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


def write_temp(directory: Path, data: bytes, *, prefix: str = ".tmp-", fsync: bool = True) -> Path:
    """Write `data` to a new, uniquely named file in `directory` and return its path."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".part")
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


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
