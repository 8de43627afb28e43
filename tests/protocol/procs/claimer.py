"""A claiming process: `claimer.py WORKSPACE NAME GO_FILE` tries to claim every ready task.

Waits for GO_FILE so that all claimers start together, then prints the ids it won as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

from protocol import Layout, TaskStore, TransitionConflict


def main() -> None:
    workspace, name, go_file = sys.argv[1:4]
    store = TaskStore(Layout.of(workspace))
    ids = store.ids()
    print("started", flush=True)
    while not os.path.exists(go_file):
        time.sleep(0.001)
    won = []
    for task_id in ids:
        try:
            store.claim(task_id, name)
        except TransitionConflict:
            continue
        won.append(task_id)
    print(json.dumps(won), flush=True)


if __name__ == "__main__":
    main()
