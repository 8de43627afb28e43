"""Agents' logs for people (`team logs`): which logs there are, the last lines of one, and
the lines written to it from then on."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from protocol import Layout

_BLOCK = 64 * 1024
_MAX_LINE = 1024 * 1024  # a "line" that never ends is shown in pieces of this size


@dataclass(frozen=True)
class LogFile:
    agent: str
    path: Path
    size: int
    modified: datetime


def agent_logs(layout: Layout, agent: str) -> list[Path]:
    """AGENT's log, and what its process printed (AGENT.out, with the subprocess runner)."""
    candidates = (layout.log_file(agent), layout.logs_dir / f"{agent}.out")
    return [path for path in candidates if path.is_file()]


def log_files(layout: Layout) -> list[LogFile]:
    """Every agent's log file in the team, by agent and file name."""
    try:
        entries = sorted(os.scandir(layout.logs_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    files = []
    for entry in entries:
        if not entry.name.endswith((".log", ".out")) or not entry.is_file(follow_symlinks=False):
            continue
        stat = entry.stat(follow_symlinks=False)
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        files.append(LogFile(Path(entry.name).stem, Path(entry.path), stat.st_size, modified))
    return sorted(files, key=lambda f: (f.agent, f.path.name))


def last_lines(path: Path, count: int, *, whole_lines: bool = False) -> tuple[list[str], int]:
    """The last `count` lines of `path`, and the offset just past what they cover. With
    `whole_lines`, a last line still without its newline is left out (a follower reads it
    once it is whole). Reads from the end, never the whole of a long log."""
    with path.open("rb") as f:
        start = f.seek(0, os.SEEK_END)
        data = b""
        while start > 0 and data.count(b"\n") <= count:
            step = min(_BLOCK, start)
            start -= step
            f.seek(start)
            data = f.read(step) + data
    end = data.rfind(b"\n") + 1 if whole_lines else len(data)
    text = data[:end].decode("utf-8", "replace").rstrip("\n")
    # Split on newlines only: a CR or other separator in a line is shown escaped.
    lines = text.split("\n") if text else []
    return (lines[-count:] if count else []), start + end


class _Tail:
    """New whole lines of one file, from an offset on; a file that shrinks or is replaced is
    read again from its start."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.offset = offset
        self.inode: int | None = None
        self.pending = b""

    def read_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                stat = os.fstat(f.fileno())
                replaced = self.inode is not None and stat.st_ino != self.inode
                if replaced or stat.st_size < self.offset:
                    self.offset, self.pending = 0, b""
                self.inode = stat.st_ino
                f.seek(self.offset)
                data = f.read(_BLOCK * 16)
        except FileNotFoundError:  # between a rotation's remove and create
            return []
        self.offset += len(data)
        *lines, self.pending = (self.pending + data).split(b"\n")
        if len(self.pending) >= _MAX_LINE:
            lines.append(self.pending)
            self.pending = b""
        return [line.decode("utf-8", "replace") for line in lines]

    def rest(self) -> list[str]:
        """The last line, if it never got its newline."""
        rest, self.pending = self.pending, b""
        return [rest.decode("utf-8", "replace")] if rest else []


def follow_lines(
    paths: list[Path],
    offsets: dict[Path, int],
    *,
    timeout: float | None = None,
    poll_interval: float = 0.25,
) -> Iterator[tuple[Path, str]]:
    """Yield (path, line) for each line written to `paths` past `offsets`, as it is written.
    Stops after `timeout` seconds (then a last line without its newline is yielded too), or
    never when None."""
    tails = [_Tail(path, offsets.get(path, 0)) for path in paths]
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for tail in tails:
            for line in tail.read_lines():
                yield tail.path, line
        if deadline is not None and time.monotonic() >= deadline:
            for tail in tails:
                for line in tail.rest():
                    yield tail.path, line
            return
        wait = poll_interval
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - time.monotonic()))
        # Polled like `tail -f`: a log is written to all the time, and a watch event for
        # every write would cost more than one read a quarter of a second.
        time.sleep(wait)
