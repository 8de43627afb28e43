from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from protocol import LockTimeout, atomic_write_json, atomic_write_text, file_lock, try_lock
from protocol.atomic import write_all
from tests.processes import finish, start

PROCS = Path(__file__).parent / "procs"


def test_an_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "team.json"
    atomic_write_text(target, "old")
    atomic_write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"new": True}
    assert os.listdir(tmp_path) == ["team.json"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    atomic_write_text(target, '{"ok": 1}')
    with pytest.raises(ValueError):
        atomic_write_json(target, {"bad": float("nan")})
    assert target.read_text() == '{"ok": 1}'
    assert os.listdir(tmp_path) == ["plan.json"]


def test_a_reader_never_sees_half_a_file_while_another_process_rewrites_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "state.json"
    atomic_write_json(target, {"n": 0, "body": ""})
    writer = start(PROCS / "rewriter.py", target, 400)
    reads = 0
    while writer.poll() is None or reads == 0:
        value = json.loads(target.read_text())  # raises on a torn read
        assert value["body"] == str(value["n"]) * (value["n"] % 2000)
        reads += 1
    finish(writer)
    assert reads > 1


def test_write_all_writes_every_byte_into_a_pipe(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    data = os.urandom(50_000)  # more than a pipe buffer holds at once
    received = bytearray()
    pid = os.fork()
    if pid == 0:  # the child only drains the pipe
        os.close(write_end)
        while chunk := os.read(read_end, 65536):
            received.extend(chunk)
        os._exit(0 if bytes(received) == data else 1)
    os.close(read_end)
    write_all(write_end, data)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_file_lock_excludes_other_processes(tmp_path: Path) -> None:
    lock, counter = tmp_path / "x.lock", tmp_path / "counter"
    counter.write_text("0")
    lockers = [start(PROCS / "locker.py", lock, counter, 200) for _ in range(4)]
    for locker in lockers:
        finish(locker)
    assert counter.read_text() == "800"
    assert lock.exists(), "a lock file is never deleted"


def test_try_lock_and_timeouts(tmp_path: Path) -> None:
    path = tmp_path / "receiver.lock"
    held = try_lock(path)
    assert held is not None
    assert try_lock(path) is None
    with pytest.raises(LockTimeout, match="could not lock"), file_lock(path, timeout=0.05):
        pass
    held.release()
    with file_lock(path, timeout=0.05):
        pass
