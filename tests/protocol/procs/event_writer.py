"""A writer of the event log: `event_writer.py LOG GATE NAME COUNT [ANNOUNCE_AT] [--naive]`.

Prints "ready", waits until the test lets go of its exclusive flock on GATE (so that all
writers start their burst together), then emits COUNT events as agent NAME and prints
"done dropped=N". After its ANNOUNCE_AT-th event it prints "at ANNOUNCE_AT" and goes on with
heavy events (tens to hundreds of KB), so that a kill -9 sent on that line lands in the middle
of the burst, and most likely inside a write(2) (tests/protocol/test_events.py).

With --naive it appends each line in 256-byte pieces and no lock, the way a broken writer
would (the harness's negative control).
"""

from __future__ import annotations

import fcntl
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocol.atomic import write_all
from protocol.events import EventLog, ToolCalled
from tests.protocol.procs.payloads import body

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def event_for(name: str, index: int, *, heavy: bool = False) -> ToolCalled:
    """The writer's `index`-th event, the same bytes every time (its ts too), so that a test
    can tell a torn line from an interleaving by what the line should have been."""
    detail = body(name, index)  # 70 bytes to ~3 KB: some lines cross a page
    return ToolCalled(
        ts=EPOCH + timedelta(milliseconds=index),
        tool="write_file",
        arguments=f"{name} {index}",
        detail=detail * 100 if heavy else detail,
    )


def naive_emit(path: Path, name: str, seq: int, event: ToolCalled) -> None:
    stamped = event.model_copy(update={"writer": f"{name}:{os.getpid()}", "seq": seq})
    data = (stamped.model_dump_json() + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for piece in range(0, len(data), 256):
            write_all(fd, data[piece : piece + 256])
    finally:
        os.close(fd)


def main() -> None:
    path, gate, name, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    announce_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    naive = "--naive" in sys.argv[6:]
    log = EventLog(path, name)
    print("ready", flush=True)
    with open(gate, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)  # blocks while the test holds the gate
    for index in range(count):
        event = event_for(name, index, heavy=0 < announce_at <= index)
        if naive:
            naive_emit(path, name, index + 1, event.model_copy(update={"agent": name}))
        else:
            log.emit(event)
        if index + 1 == announce_at:
            print(f"at {announce_at}", flush=True)
    print(f"done dropped={log.dropped}", flush=True)


if __name__ == "__main__":
    main()
