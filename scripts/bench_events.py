#!/usr/bin/env python3
"""Event log benchmark: W writer processes x N events appended at once to one log (one
flocked O_APPEND write a line, `protocol.events`), then 1 writer alone; and, to compare, the
alternative design: each writer appending to a file of its own without a lock, the files
merged by ts when read.

The cost of an event is the wall time of one `emit()` as a writer sees it (stamping,
serialising, the locked append), timed around every call. Its mean, not its median, is what a
run pays in all: overhead_pct_of_run = --events-per-run x mean cost / --run-seconds, taken
with the W writers contending (an upper bound: a team's events are sparse) and with one alone.

Prints readable lines, then as its LAST line one JSON object:

    {"writers": 4, "events": ..., "events_per_s": ..., "us_per_event_median": ...,
     "us_per_event_p99": ..., "single_writer_us_per_event": ...,
     "per_process_files_events_per_s": ..., "merge_read_s": ..., "overhead_pct_of_run": ...}

Usage: python scripts/bench_events.py [--writers W] [--events N] [--events-per-run E]
       [--run-seconds S] [--dir DIR]
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from protocol.atomic import write_all
from protocol.events import (
    EVENT_ADAPTER,
    Event,
    EventLog,
    ModelCallEnded,
    ToolCalled,
    read_events,
    short,
)

SHARED, OWN = "shared", "own"


def event_for(name: str, index: int) -> ToolCalled | ModelCallEnded:
    """Events the size a team writes most: tool calls (arguments shortened) and model calls."""
    if index % 2:
        return ModelCallEnded(
            call_id=f"{name}-{index}",
            role="builder",
            model="qwen2.5-coder:7b",
            provider="ollama",
            task_id=3,
            duration_s=2.5,
            prompt_tokens=1800,
            completion_tokens=240,
            trace_id="a" * 32,
            span_id="b" * 16,
            parent_id="c" * 16,
        )
    arguments = json.dumps({"path": f"src/m{index}.py", "content": "x = 1\n" * 60})
    return ToolCalled(tool="write_file", arguments=short(arguments), task_id=3, span_id="d" * 16)


def own_file_emit(path: Path, writer: str, seq: int, event: ToolCalled | ModelCallEnded) -> None:
    """The alternative: the same stamped line into this writer's own file, opened for each
    event as `append_line` does, but no lock and no torn-line check (no one else writes it)."""
    stamped = event.model_copy(update={"writer": writer, "seq": seq, "agent": writer})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_all(fd, stamped.model_dump_json().encode() + b"\n")
    finally:
        os.close(fd)


def run_writer(mode: str, log: Path, gate: Path, name: str, count: int, out: Path) -> None:
    events = [event_for(name, index) for index in range(count)]  # built before the clock
    shared = EventLog(log, name)
    own = log.with_name(f"{log.name}.{name}")
    costs = []
    print("ready", flush=True)
    with open(gate, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)  # all writers start together
    started = time.monotonic()
    for seq, event in enumerate(events, 1):
        began = time.perf_counter_ns()
        if mode == SHARED:
            shared.emit(event)
        else:
            own_file_emit(own, name, seq, event)
        costs.append((time.perf_counter_ns() - began) / 1000)
    ended = time.monotonic()
    out.write_text(json.dumps({"start": started, "end": ended, "us": costs}))


@dataclass(frozen=True)
class Round:
    writers: int
    events: int
    elapsed_s: float
    costs_us: list[float]

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s

    @property
    def median_us(self) -> float:
        return statistics.median(self.costs_us)

    @property
    def mean_us(self) -> float:
        return statistics.fmean(self.costs_us)

    def summary(self) -> str:
        return (
            f"{self.events_per_s:,.0f} events/s; per emit: median {self.median_us:.1f} us, "
            f"p99 {percentile(self.costs_us, 0.99):.1f} us, "
            f"p99.9 {percentile(self.costs_us, 0.999):.1f} us, mean {self.mean_us:.1f} us"
        )


def run_round(root: Path, mode: str, writers: int, count: int) -> Round:
    """`writers` processes x `count` events into a new directory `root`, started together; the
    clock runs from the first event written to the last (not from process start-up)."""
    root.mkdir()
    gate = root / "gate"
    gate.touch()
    outs = [root / f"costs-{n}.json" for n in range(writers)]
    me = [sys.executable, __file__, "--role", "writer", "--args", mode]
    with open(gate, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [
            subprocess.Popen(
                [*me, str(root / "events.jsonl"), str(gate), f"w{n}", str(count), str(out)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for n, out in enumerate(outs)
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"a {mode} writer failed with exit code {proc.returncode}")
    records = [json.loads(out.read_text()) for out in outs]
    elapsed = max(r["end"] for r in records) - min(r["start"] for r in records)
    costs = [us for r in records for us in r["us"]]
    return Round(writers, writers * count, elapsed, costs)


def merge_read(paths: list[Path]) -> tuple[int, float]:
    """The alternative's reader: every line of every file parsed, then sorted by ts.
    Returns (events, seconds)."""
    began = time.perf_counter()
    events: list[Event] = []
    for path in paths:
        with open(path, "rb") as handle:
            events.extend(EVENT_ADAPTER.validate_json(line) for line in handle)
    events.sort(key=lambda event: event.ts)
    return len(events), time.perf_counter() - began


def single_read(path: Path) -> tuple[int, float]:
    """The log's own reader: one file, in the order the lock gave the writers."""
    began = time.perf_counter()
    result = read_events(path)
    elapsed = time.perf_counter() - began
    assert result.bad_lines == 0, f"{result.bad_lines} unreadable lines in {path}"
    return len(result.events), elapsed


def best_of(times: int, read: Callable[[], tuple[int, float]]) -> tuple[int, float]:
    """The fastest of a few reads, each after a full collection: a reader's time, not the
    garbage collector's over the previous reads' objects (it varied 3x from run to run)."""
    results = []
    for _ in range(times):
        gc.collect()
        results.append(read())
    return min(results, key=lambda result: result[1])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def overhead_pct(events_per_run: int, cost_us: float, run_seconds: float) -> float:
    return events_per_run * cost_us / (run_seconds * 1e6) * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--events", type=int, default=20_000, help="per writer")
    parser.add_argument(
        "--events-per-run", type=int, default=400, help="events a scripted team run writes"
    )
    parser.add_argument("--run-seconds", type=float, default=60.0, help="that run's wall time")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        help="where to put the scratch logs (default: here; a team's log is in its project "
        "directory, and /tmp may be another file system)",
    )
    parser.add_argument("--role", choices=["writer"], help=argparse.SUPPRESS)
    parser.add_argument("--args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.role == "writer":
        mode, log, gate, name, count, out = options.args
        run_writer(mode, Path(log), Path(gate), name, int(count), Path(out))
        return

    writers, count = options.writers, options.events
    with tempfile.TemporaryDirectory(prefix=".bench-events-", dir=options.dir) as tmp:
        root = Path(tmp)
        print(f"{writers} writers x {count} events into one log in {root}")
        shared = run_round(root / "shared", SHARED, writers, count)
        print(f"  one flocked file:    {shared.summary()}")
        alone = run_round(root / "alone", SHARED, 1, count)
        print(f"  1 writer alone:      {alone.summary()}")
        own = run_round(root / "own", OWN, writers, count)
        print(f"  a file per process:  {own.summary()}")
        log = root / "shared" / "events.jsonl"
        own_files = sorted((root / "own").glob("events.jsonl.*"))
        read, single_read_s = best_of(3, lambda: single_read(log))
        merged, merge_read_s = best_of(3, lambda: merge_read(own_files))
        assert read == shared.events and merged == own.events
        print(
            f"  reading all {read} events: {single_read_s:.3f} s from the one file, "
            f"{merge_read_s:.3f} s merged by ts from {writers} files"
        )
        size = log.stat().st_size

    contended = overhead_pct(options.events_per_run, shared.mean_us, options.run_seconds)
    uncontended = overhead_pct(options.events_per_run, alone.mean_us, options.run_seconds)
    print(
        f"a run of {options.run_seconds:g} s writing {options.events_per_run} events spends "
        f"{contended:.4f}% of its time on them ({uncontended:.4f}% with no other writer)"
    )
    result = {
        "writers": writers,
        "events": shared.events,
        "events_per_s": round(shared.events_per_s),
        "us_per_event_median": round(shared.median_us, 1),
        "us_per_event_p99": round(percentile(shared.costs_us, 0.99), 1),
        "us_per_event_mean": round(shared.mean_us, 1),
        "single_writer_events_per_s": round(alone.events_per_s),
        "single_writer_us_per_event": round(alone.median_us, 1),
        "single_writer_us_per_event_p99": round(percentile(alone.costs_us, 0.99), 1),
        "per_process_files_events_per_s": round(own.events_per_s),
        "per_process_files_us_per_event_median": round(own.median_us, 1),
        "per_process_files_us_per_event_p99": round(percentile(own.costs_us, 0.99), 1),
        "merge_read_s": round(merge_read_s, 3),
        "single_file_read_s": round(single_read_s, 3),
        "bytes_per_event": round(size / shared.events),
        "events_per_run": options.events_per_run,
        "run_seconds": options.run_seconds,
        "overhead_pct_of_run": round(contended, 4),
        "overhead_pct_of_run_single_writer": round(uncontended, 4),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
