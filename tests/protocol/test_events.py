"""The event log: whole lines from many writers at once, kill -9 included, and its readers."""

from __future__ import annotations

import fcntl
import os
import random
import resource
import select
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from protocol.events import (
    EVENT_ADAPTER,
    Event,
    EventLog,
    EventTail,
    TeamChanged,
    ToolCalled,
    emit,
    read_events,
)
from tests.processes import REPO, finish, kill9, start, wait_for_line
from tests.protocol.procs.event_writer import event_for

WRITER = REPO / "tests" / "protocol" / "procs" / "event_writer.py"
WRITERS, EVENTS, KILLED = 8, 1000, 3


@dataclass
class Run:
    """What eight writers left in one log, some of them killed with -9 mid-burst."""

    procs: list[subprocess.Popen[str]]
    victims: dict[int, int]  # writer number: events written when its kill was sent
    events: list[Event]
    bad: list[bytes]  # lines that are not events, a torn last line nobody ended included
    unended: bool  # the log ends in such a torn line

    def writer(self, n: int) -> str:
        return f"w{n}:{self.procs[n].pid}"

    def expected(self, n: int, index: int) -> ToolCalled:
        """What writer `n` puts in the log as its `index`-th event."""
        heavy = n in self.victims and index >= self.victims[n]
        return event_for(f"w{n}", index, heavy=heavy).model_copy(
            update={"writer": self.writer(n), "seq": index + 1, "agent": f"w{n}"}
        )

    def problems(self) -> list[str]:
        """Everything that breaks whole, ordered, exactly-once lines; empty when all is well."""
        found = []
        by_writer: dict[str, list[Event]] = defaultdict(list)
        for event in self.events:
            by_writer[event.writer].append(event)
        for n in range(len(self.procs)):
            mine = by_writer.pop(self.writer(n), [])
            # Strictly increasing from 1 with no gap: none written twice, none lost before a kill.
            if [e.seq for e in mine] != list(range(1, len(mine) + 1)):
                found.append(f"w{n}'s seqs are not 1, 2, 3, ...: lines lost, doubled or reordered")
            elif mine != [self.expected(n, i) for i in range(len(mine))]:
                found.append(f"w{n}'s events are not the ones it wrote")
            if n not in self.victims and len(mine) != EVENTS:
                found.append(f"w{n} was not killed but has {len(mine)} of its {EVENTS} events")
            if n in self.victims and not self.victims[n] <= len(mine) < EVENTS:
                found.append(f"w{n} was not killed mid-burst: {len(mine)} events")
        if by_writer:
            found.append(f"events from writers that never ran: {sorted(by_writer)}")
        if len(self.bad) > len(self.victims):
            found.append(f"{len(self.bad)} unreadable lines from {len(self.victims)} kills")
        # A torn line is the start of the line its killed writer was writing: not an interleaving.
        next_lines = {
            n: self.expected(n, len([e for e in self.events if e.writer == self.writer(n)]))
            .model_dump_json()
            .encode()
            for n in self.victims
        }
        strays = []
        for raw in self.bad:
            torn_by = [n for n, line in next_lines.items() if line.startswith(raw)]
            if torn_by:
                del next_lines[torn_by[0]]
            else:
                strays.append(raw)
        if strays:
            found.append(f"{len(strays)} lines no killed writer began, e.g. {strays[0][:100]!r}")
        return found


def kill_after_announced(victims: dict[subprocess.Popen[str], tuple[str, float]]) -> None:
    """SIGKILL each process `delay` seconds after it prints `line` (it is still writing then)."""
    waiting = {proc.stdout: (proc, line, delay) for proc, (line, delay) in victims.items()}
    due: dict[subprocess.Popen[str], float] = {}
    deadline = time.monotonic() + 30.0
    while (waiting or due) and time.monotonic() < deadline:
        now = time.monotonic()
        for proc in [p for p, at in due.items() if at <= now]:
            proc.kill()
            del due[proc]
        timeout = min([0.1, *(at - now for at in due.values())])
        ready, _, _ = select.select(list(waiting), [], [], max(0.0, timeout))
        for stream in ready:
            proc, expected, delay = waiting.pop(stream)
            line = stream.readline()
            assert line.strip() == expected, f"pid {proc.pid} printed {line!r}, not {expected!r}"
            due[proc] = time.monotonic() + delay
    assert not waiting, f"{len(waiting)} victims never announced themselves"


def run_writers(tmp_path: Path, seed: int, *, naive: bool = False) -> Run:
    """Eight writers x 1,000 events into one log at once; three of them, chosen at random,
    killed with -9 at a random instant after a random number of their events, with hundreds
    still to write."""
    rng = random.Random(seed)
    log, gate = tmp_path / "events.jsonl", tmp_path / "gate"
    gate.touch()
    victims = {n: rng.randint(50, 600) for n in rng.sample(range(WRITERS), KILLED)}
    # Then up to 3 ms more: a random instant among its heavy events, likely inside a write.
    delays = {n: rng.uniform(0.0, 0.003) for n in victims}
    extra = ("--naive",) if naive else ()
    with open(gate, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [
            start(WRITER, log, gate, f"w{n}", EVENTS, victims.get(n, 0), *extra)
            for n in range(WRITERS)
        ]
        for proc in procs:
            wait_for_line(proc, "ready")
    # The gate is open: all eight write at once.
    kill_after_announced({procs[n]: (f"at {k}", delays[n]) for n, k in victims.items()})
    for n, proc in enumerate(procs):
        if n in victims:
            kill9(proc)
        else:
            assert finish(proc).split() == ["done", "dropped=0"]
    *lines, tail = log.read_bytes().split(b"\n")
    events, bad = [], []
    for raw in lines:
        try:
            events.append(EVENT_ADAPTER.validate_json(raw))
        except ValidationError:
            bad.append(raw)
    return Run(procs, victims, events, [*bad, tail] if tail else bad, bool(tail))


def test_eight_writers_some_killed_mid_burst_leave_whole_ordered_lines_and_lose_nothing(
    tmp_path: Path,
) -> None:
    run = run_writers(tmp_path, seed=11)
    print(f"killed {run.victims}, torn lines {len(run.bad)}, events {len(run.events)}")
    assert run.problems() == []
    # The reader skips and counts the same torn lines (one it reads once a writer ends it).
    assert read_events(tmp_path / "events.jsonl").bad_lines == len(run.bad) - run.unended


def test_the_harness_catches_a_writer_without_the_lock(tmp_path: Path) -> None:
    """Negative control: lines appended in pieces without the lock must fail the same checks."""
    problems = run_writers(tmp_path, seed=12, naive=True).problems()
    print("the harness found:", problems)
    assert problems, "the harness saw nothing wrong with a naive writer"


def test_a_torn_last_line_is_ended_by_the_next_event_and_counted_as_bad(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    EventLog(path, "a").emit(TeamChanged(status="building"))
    whole = TeamChanged(status="torn").model_dump_json().encode()
    with open(path, "ab") as handle:  # a writer killed in the middle of its write
        handle.write(whole[: len(whole) // 2])
    EventLog(path, "b").emit(TeamChanged(status="verifying"))
    result = read_events(path)
    assert [(e.agent, e.status) for e in result.events if isinstance(e, TeamChanged)] == [
        ("a", "building"),
        ("b", "verifying"),
    ]
    assert result.bad_lines == 1
    assert result.offset == path.stat().st_size


def test_a_healthy_log_gets_no_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "a")
    for status in ("one", "two", "three"):
        log.emit(TeamChanged(status=status))
    data = path.read_bytes()
    assert data.count(b"\n") == 3 and b"\n\n" not in data and data.endswith(b"\n")


def test_a_tail_reads_only_the_events_appended_since_its_last_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read() == []  # no log yet
    log = EventLog(path, "a")
    log.emit(TeamChanged(status="one"))
    log.emit(TeamChanged(status="two"))
    assert [e.seq for e in tail.read()] == [1, 2]
    assert tail.read() == []
    log.emit(TeamChanged(status="three"))
    assert [e.seq for e in tail.read()] == [3]
    assert tail.bad_lines == 0


def test_a_tail_reads_a_partial_last_line_once_it_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    EventLog(path, "a").emit(TeamChanged(status="whole"))
    line = TeamChanged(status="late", writer="b:1", seq=1).model_dump_json().encode() + b"\n"
    with open(path, "ab") as handle:  # a writer in the middle of its line
        handle.write(line[:40])
        handle.flush()
        assert [e.seq for e in tail.read()] == [1]
        assert tail.read() == []
        handle.write(line[40:])
    events = tail.read()
    assert [(e.writer, e.seq) for e in events] == [("b:1", 1)]
    assert tail.bad_lines == 0


@pytest.mark.parametrize("how", ["truncated", "replaced"])
def test_a_tail_reads_a_log_begun_again_from_its_start(tmp_path: Path, how: str) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    for status in ("a", "b", "c"):
        EventLog(path, "old").emit(TeamChanged(status=status))
    assert len(tail.read()) == 3
    if how == "truncated":
        os.truncate(path, 0)
        statuses = ["new"]
    else:  # archived by a re-run: moved away, a new log begun, longer than the old one
        path.rename(tmp_path / "events-archived.jsonl")
        statuses = ["n1", "n2", "n3", "n4", "n5"]
    new = EventLog(path, "new")
    for status in statuses:
        new.emit(TeamChanged(status=status))
    events = tail.read()
    assert [e.status for e in events if isinstance(e, TeamChanged)] == statuses
    assert all(e.agent == "new" for e in events)
    assert tail.bad_lines == 0


def test_emit_into_a_missing_directory_does_nothing_and_raises_nothing(tmp_path: Path) -> None:
    path = tmp_path / "gone" / ".agents" / "events.jsonl"
    emit(path, TeamChanged(status="nobody listens"))
    log = EventLog(path, "a")
    log.emit(TeamChanged(status="nobody listens"))
    assert not (tmp_path / "gone").exists()
    assert log.dropped == 1


def test_a_failed_write_is_dropped_and_counted_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.mkdir()  # cannot be opened for writing: IsADirectoryError
    log = EventLog(path, "a")
    log.emit(TeamChanged(status="one"))
    log.emit(TeamChanged(status="two"))
    assert log.dropped == 2


def test_a_line_cut_short_without_an_error_is_counted_as_dropped(tmp_path: Path) -> None:
    """write(2) may write the start of a line and no error (a disk filling up, a file size
    limit): the event is then dropped and counted, and its torn start ended by the next one."""
    path, gate = tmp_path / "events.jsonl", tmp_path / "gate"
    gate.touch()
    EventLog(path, "a").emit(TeamChanged(status="before"))
    with open(gate, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = start(WRITER, path, gate, "w", 1)
        wait_for_line(proc, "ready")
        # Room for the start of its line only (Python ignores SIGXFSZ: EFBIG instead).
        limit = path.stat().st_size + 100
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
    assert finish(proc).split() == ["done", "dropped=1"]
    EventLog(path, "a").emit(TeamChanged(status="after"))
    result = read_events(path)
    assert [e.status for e in result.events if isinstance(e, TeamChanged)] == ["before", "after"]
    assert result.bad_lines == 1


def test_seq_is_per_writer_and_increasing_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    shared, other = EventLog(path, "threads"), EventLog(path, "other")
    start_together = threading.Barrier(4)

    def write(thread: int) -> None:
        start_together.wait()
        for index in range(500):
            shared.emit(ToolCalled(tool="t", arguments=f"{thread} {index}"))
            if thread == 0 and index % 50 == 0:
                other.emit(ToolCalled(tool="other"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = read_events(path)
    assert result.bad_lines == 0
    seqs: dict[str, list[int]] = defaultdict(list)
    for event in result.events:
        seqs[event.writer].append(event.seq)
    pid = os.getpid()
    assert seqs == {f"threads:{pid}": list(range(1, 2001)), f"other:{pid}": list(range(1, 11))}
    for thread in range(4):  # each thread's own events stay in its order
        mine = [
            int(e.arguments.split()[1])
            for e in result.events
            if isinstance(e, ToolCalled) and e.tool == "t" and e.arguments.startswith(f"{thread} ")
        ]
        assert mine == list(range(500))


pytestmark = pytest.mark.timeout(60)
