"""Finding a team's processes without trusting any one record: the agents' own files, and
the process table itself (Linux /proc), so that `team kill` leaves nothing behind even when
team.json or an agent's record is damaged or was never written."""

from __future__ import annotations

import os
from pathlib import Path

TEAM_MODULES = ("coordinator", "agent_worker")


def is_team_command(argv: list[str], workspace: Path) -> bool:
    """Whether a command line is one of the team's processes for `workspace`:
    `python [-P] -m coordinator|agent_worker ... --workspace WORKSPACE ...`."""
    try:
        module = argv[argv.index("-m") + 1]
        given = argv[argv.index("--workspace") + 1]
    except (ValueError, IndexError):
        return False
    return module in TEAM_MODULES and _same(Path(given), workspace)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def team_pids(workspace: Path) -> list[int]:
    """The live processes running the team's coordinator or workers in `workspace`."""
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: the agents' records are all there is
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            raw = Path("/proc", entry, "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        argv = [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0") if part]
        if is_team_command(argv, workspace):
            pids.append(int(entry))
    return sorted(pids)
