#!/usr/bin/env python3
"""Play the part of a coordinator and a worker on a team's disk state, with no model at all.

Usage: walkthrough.py WORKSPACE  (a workspace made by `team init`)

Writes a three-task DAG, lets a worker claim the first task and report progress through the
mailbox, plants one malformed message, and reads the coordinator's inbox once, so that
`team inbox --all` has handled, quarantined and pending messages to show.
"""

from __future__ import annotations

import sys
from pathlib import Path

from protocol import (
    Delivery,
    Layout,
    Mailbox,
    ProgressUpdate,
    Receiver,
    Task,
    TaskAssignment,
    TaskStatus,
    TaskStore,
    TeamInfo,
    create_inbox,
    make_message,
    summarize,
)
from protocol.mailbox import MessageName

WORKER = "builder-models"


def main() -> None:
    layout = Layout.of(Path(sys.argv[1])).require()
    team = TeamInfo.read(layout.team_json)
    store = TaskStore(layout)
    if not store.ids():
        store.add(
            [
                Task(id=1, title="data models", module="models", files=["todo/models.py"]),
                Task(
                    id=2, title="storage", module="storage", files=["todo/store.py"], depends_on=[1]
                ),
                Task(
                    id=3,
                    title="cli and tests",
                    module="cli",
                    files=["todo/cli.py"],
                    depends_on=[1, 2],
                ),
            ]
        )
    print("wrote the DAG: 1 <- 2 <- 3 (and 1 <- 3)")
    store.promote_ready()
    create_inbox(layout, WORKER)
    mailbox = Mailbox(layout, team.id)
    task = store.claim(1, WORKER)
    mailbox.send(
        make_message(
            TaskAssignment(task_id=1, attempt=task.attempt, title=task.title, files=task.files),
            team=team.id,
            sender="coordinator",
            recipient=WORKER,
        )
    )
    store.transition(1, TaskStatus.ASSIGNED, TaskStatus.RUNNING, by=WORKER)
    mailbox.send(
        make_message(
            ProgressUpdate(task_id=1, phase="writing", detail="todo/models.py"),
            team=team.id,
            sender=WORKER,
            recipient="coordinator",
        )
    )
    print(f"{WORKER} claimed task 1, and both sides sent a message")
    planted = layout.inbox("coordinator").new / MessageName(999, WORKER, "broken").file_name()
    planted.write_text('{"v": 1, "type": "completion", "payload": ')
    print(f"planted a half-written message at {planted.relative_to(layout.workspace)}")

    def handle(delivery: Delivery) -> None:
        print(f"  coordinator handled #{delivery.seq} {summarize(delivery.message)}")

    print("the coordinator's inbox is read once (the bad file goes to bad/, its sender is told):")
    with Receiver(layout, team.id, "coordinator", handle, watch=False) as receiver:
        receiver.process_pending()


if __name__ == "__main__":
    main()
