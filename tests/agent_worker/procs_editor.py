"""`procs_editor.py WORKSPACE NAME MARKER N`: N edits of one shared file through the tools,
each replacing the line `MARKER_i = 0` with `MARKER_i = 1  # edited by NAME`."""

from __future__ import annotations

import sys
from pathlib import Path

from agent_worker.tools import ALL_TOOLS, Toolbox
from protocol import Layout
from protocol.llm import ToolCall


def main() -> None:
    workspace, name, marker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    toolbox = Toolbox(Layout.of(Path(workspace)), name, None, ALL_TOOLS)
    print("started", flush=True)
    for i in range(count):
        old = f"{marker}_{i} = 0\n"
        result = toolbox.call(
            ToolCall(
                id=str(i),
                name="edit_file",
                arguments={
                    "path": "shared.py",
                    "old": old,
                    "new": f"{marker}_{i} = 1  # edited by {name}\n",
                },
            )
        )
        if not result.startswith("edited"):
            raise SystemExit(f"edit {i} failed: {result}")
    print("done", flush=True)


if __name__ == "__main__":
    main()
