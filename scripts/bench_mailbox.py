#!/usr/bin/env python3
"""Mailbox benchmark: N sender processes x M messages into one inbox, fsync on.

Latency is measured from `send()` returning in a sender process to the handler being called
in the receiver process (both read CLOCK_MONOTONIC, which all processes share). A message can
be handled before `send()` returns (the sender is still fsyncing the directory): that counts
as 0 ms, and the share of such messages is reported, with the latency from `send()` being
called (the whole cost of a delivery) beside it. Prints a few
readable lines, then as its LAST line one JSON object:

    {"msgs_per_s": ..., "p50_ms": ..., "p99_ms": ..., "lost": 0, "duplicated": 0, ...}

Usage: python scripts/bench_mailbox.py [--senders N] [--messages M] [--no-watch]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from protocol import Delivery, Layout, Mailbox, ProgressUpdate, Receiver, TeamInfo, make_message
from protocol.mailbox import create_inbox

RECIPIENT = "bench-receiver"


def run_sender(workspace: Path, team: str, name: str, count: int, out: Path) -> None:
    mailbox = Mailbox(Layout.of(workspace), team)
    records = [("start", time.monotonic())]
    for index in range(count):
        message = make_message(
            ProgressUpdate(task_id=1, phase="bench", detail=f"{name} {index} " + "x" * 200),
            team=team,
            sender=name,
            recipient=RECIPIENT,
            message_id=f"{name}-{index}",
        )
        began = time.monotonic()
        mailbox.send(message)
        records.append((message.id, time.monotonic()))
        records.append((message.id + "@start", began))
    records.append(("cpu", cpu_seconds()))
    out.write_text(json.dumps(records))


def run_receiver(workspace: Path, team: str, total: int, out: Path, watch: bool) -> None:
    records: list[tuple[str, float]] = []

    def handle(delivery: Delivery) -> None:
        records.append((delivery.message.id, time.monotonic()))

    with Receiver(Layout.of(workspace), team, RECIPIENT, handle, watch=watch) as receiver:
        print("ready", flush=True)
        # Bounded: a lost message ends the run after 10 idle seconds instead of hanging.
        receiver.serve(max_messages=total, max_idle=10.0)
    records.append(("cpu", cpu_seconds()))
    out.write_text(json.dumps(records))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--messages", type=int, default=1000, help="per sender")
    parser.add_argument("--no-watch", action="store_true", help="poll only (every 2 s)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        help="where to put the scratch workspace (default: here; a team's workspace is a "
        "project directory, and /tmp can be slower to create files in)",
    )
    parser.add_argument("--role", choices=["sender", "receiver"], help=argparse.SUPPRESS)
    parser.add_argument("--args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.role == "sender":
        workspace, team, name, count, out = options.args
        run_sender(Path(workspace), team, name, int(count), Path(out))
        return
    if options.role == "receiver":
        workspace, team, total, out, watch = options.args
        run_receiver(Path(workspace), team, int(total), Path(out), watch == "1")
        return

    total = options.senders * options.messages
    with tempfile.TemporaryDirectory(prefix=".bench-mailbox-", dir=options.dir) as tmp:
        root = Path(tmp)
        layout = Layout.of(root / "ws")
        layout.create_dirs()
        info = TeamInfo()
        info.write(layout.team_json)
        create_inbox(layout, RECIPIENT)
        me = [sys.executable, __file__]
        received_file = root / "received.json"
        watch = "0" if options.no_watch else "1"
        receiver = subprocess.Popen(
            [
                *me,
                "--role",
                "receiver",
                "--args",
                str(layout.workspace),
                info.id,
                str(total),
                str(received_file),
                watch,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        print(
            f"{options.senders} senders x {options.messages} messages, fsync on, "
            f"{'watchdog' if watch == '1' else 'poll only'}; inbox in {layout.root}"
        )
        senders = [
            subprocess.Popen(
                [
                    *me,
                    "--role",
                    "sender",
                    "--args",
                    str(layout.workspace),
                    info.id,
                    f"s{n}",
                    str(options.messages),
                    str(root / f"sent-{n}.json"),
                ]
            )
            for n in range(options.senders)
        ]
        for sender in senders:
            sender.wait()
        receiver.wait()

        sent: dict[str, float] = {}
        starts = []
        sender_cpu = 0.0
        sent_start: dict[str, float] = {}
        for n in range(options.senders):
            records = dict(json.loads((root / f"sent-{n}.json").read_text()))
            starts.append(records.pop("start"))
            sender_cpu += records.pop("cpu")
            sent_start.update(
                {k[: -len("@start")]: v for k, v in records.items() if k.endswith("@start")}
            )
            sent.update({k: v for k, v in records.items() if not k.endswith("@start")})
        # From the first send, not from process start-up (imports take ~0.3 s a process).
        started = min(starts)
        received = json.loads(received_file.read_text())
        receiver_cpu = received.pop()[1]
        counts = Counter(message_id for message_id, _ in received)
        first_seen = {message_id: at for message_id, at in reversed(received)}
        raw = [(first_seen[m] - sent[m]) * 1000 for m in sent if m in first_seen]
        # Negative: handled while the sender was still in its last fsync; counted as 0.
        latencies = [max(0.0, ms) for ms in raw]
        # The same, from send() being called: the whole cost of a delivery, never negative.
        whole = [(first_seen[m] - sent_start[m]) * 1000 for m in sent_start if m in first_seen]
        elapsed = max(at for _, at in received) - started

    result = {
        "msgs_per_s": round(len(received) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "lost": len(set(sent) - set(counts)),
        "duplicated": sum(1 for n in counts.values() if n > 1),
        "handled_before_send_returned": round(sum(ms < 0 for ms in raw) / len(raw), 3),
        "p50_from_send_call_ms": round(statistics.median(whole), 3),
        "p99_from_send_call_ms": round(percentile(whole, 0.99), 3),
        "sender_cpu_ms_per_msg": round(sender_cpu * 1000 / total, 3),
        "receiver_cpu_ms_per_msg": round(receiver_cpu * 1000 / total, 3),
        "senders": options.senders,
        "messages": total,
        "fsync": True,
        "watch": watch == "1",
    }
    print(f"delivered {len(received)}/{total} in {elapsed:.2f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
