"""A sender process: `sender.py WORKSPACE TEAM NAME RECIPIENT COUNT START SENT_LOG [--naive]
[--no-fsync]`.

Appends each message id to SENT_LOG after `send()` returned. With --naive it writes straight
into new/ in small pieces, the way a broken sender would (the crash test's negative control).
"""

from __future__ import annotations

import os
import sys
import time

from protocol import Layout, Mailbox, ProgressUpdate, make_message
from protocol.atomic import write_all
from tests.protocol.procs.payloads import body


def naive_send(layout: Layout, recipient: str, index: int, sender: str, data: bytes) -> None:
    """Create the file in new/ and fill it piece by piece: a reader can see it half-written.

    The pause between pieces stands for a sender preempted mid-write on a busy machine.
    """
    path = layout.inbox(recipient).new / f"{index:010d}.{sender}.{sender}-{index}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for piece in range(0, len(data), 256):
            write_all(fd, data[piece : piece + 256])
            time.sleep(0.0002)
    finally:
        os.close(fd)


def main() -> None:
    workspace, team, name, recipient, count, start, sent_log = sys.argv[1:8]
    naive = "--naive" in sys.argv[8:]
    layout = Layout.of(workspace)
    mailbox = Mailbox(layout, team, fsync="--no-fsync" not in sys.argv[8:])
    print("started", flush=True)
    with open(sent_log, "a", encoding="utf-8") as log:
        for index in range(int(start), int(start) + int(count)):
            message = make_message(
                ProgressUpdate(task_id=1, phase="bench", detail=body(name, index)),
                team=team,
                sender=name,
                recipient=recipient,
                message_id=f"{name}-{index}",
            )
            if naive:
                naive_send(layout, recipient, index, name, message.model_dump_json().encode())
            else:
                mailbox.send(message)
            log.write(message.id + "\n")
            log.flush()


if __name__ == "__main__":
    main()
