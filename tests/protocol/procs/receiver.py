"""A receiver process: `receiver.py WORKSPACE TEAM AGENT EFFECTS [MAX_IDLE]`.

Every handler call is logged to EFFECTS.calls (with its redelivered flag) before anything else.

Its handler checks each message is whole and appends one line per message to EFFECTS,
idempotently on the message id: a redelivered message whose effect is already there is not
recorded again. It also fsyncs, which widens the window a kill -9 can land in.
"""

from __future__ import annotations

import os
import sys

from protocol import Delivery, Layout, ProgressUpdate, Receiver
from tests.protocol.procs.payloads import check


def already_recorded(effects: str, message_id: str) -> bool:
    try:
        with open(effects, encoding="utf-8") as f:
            return any(line.split(" ")[1] == message_id for line in f if line.strip())
    except FileNotFoundError:
        return False


def main() -> None:
    workspace, team, agent, effects = sys.argv[1:5]
    max_idle = float(sys.argv[5]) if len(sys.argv) > 5 else None
    fd = os.open(effects, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    calls = os.open(effects + ".calls", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def handle(delivery: Delivery) -> None:
        message = delivery.message
        os.write(calls, f"{message.id} {int(delivery.redelivered)}\n".encode())
        if delivery.redelivered and already_recorded(effects, message.id):
            return
        assert isinstance(message.payload, ProgressUpdate)
        sender, index, whole = check(message.payload.detail)
        line = f"{delivery.seq} {message.id} {sender} {index} {'whole' if whole else 'torn'}\n"
        os.write(fd, line.encode())
        os.fsync(fd)

    with Receiver(Layout.of(workspace), team, agent, handle) as receiver:
        print("started", flush=True)
        receiver.serve(max_idle=max_idle)


if __name__ == "__main__":
    main()
