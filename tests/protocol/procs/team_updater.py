"""A helper process: `team_updater.py TEAM_JSON KEY N` appends KEY-0..KEY-(N-1) to the team's
members, one locked read-modify-write each (tests/protocol/test_team_file.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from protocol.team import modify_team


def main() -> None:
    path, key, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    for i in range(count):
        modify_team(path, lambda info, i=i: {"members": [*info.members, f"{key}-{i}"]})
    print("done", flush=True)


if __name__ == "__main__":
    main()
