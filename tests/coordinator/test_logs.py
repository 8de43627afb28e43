"""Reading agents' logs for `team logs`: from the end, and on as they grow, on real files."""

from __future__ import annotations

import os
from pathlib import Path

from coordinator.logs import follow_lines, last_lines


def test_the_last_lines_of_a_long_log_are_read_from_its_end(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {n}\n" for n in range(100_000)))  # many 64 KiB blocks
    lines, offset = last_lines(log, 3)
    assert lines == ["line 99997", "line 99998", "line 99999"]
    assert offset == log.stat().st_size
    assert last_lines(log, 0) == ([], log.stat().st_size)


def test_a_line_without_its_newline_is_left_for_the_follower(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"one\ntwo\nhal")
    assert last_lines(log, 5) == (["one", "two", "hal"], 11)
    assert last_lines(log, 5, whole_lines=True) == (["one", "two"], 8)
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert last_lines(empty, 5) == ([], 0)


def test_following_yields_only_new_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"old\nhal")
    with log.open("ab") as f:
        f.write(b"f\nnew\n")
    got = list(follow_lines([log], {log: 4}, timeout=0))
    assert got == [(log, "half"), (log, "new")]


def test_a_log_truncated_or_replaced_while_followed_is_read_from_its_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"a long first life of the log\n")
    follower = follow_lines([log], {log: log.stat().st_size}, timeout=30, poll_interval=0.01)
    log.write_bytes(b"truncated\n")
    assert next(follower) == (log, "truncated")
    replacement = tmp_path / "new.log"
    replacement.write_bytes(b"rotated: longer than what was read before\n")
    os.replace(replacement, log)  # a new file: only its inode tells
    assert next(follower) == (log, "rotated: longer than what was read before")
    follower.close()
