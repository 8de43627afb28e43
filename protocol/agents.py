"""`.agents/agents/<name>.json`: each agent process says who it is and that it is alive."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.atomic import atomic_write_json
from protocol.layout import Layout
from protocol.messages import AgentName, utc_now
from protocol.roles import Role

AgentState = Literal["starting", "idle", "working", "stopping", "stopped", "crashed"]
AgentRole = Literal["builder", "explorer", "tester", "coordinator"]
# Which model each kind of agent asks (protocol/config.py routes each role to a server).
MODEL_ROLE: dict[AgentRole, Role] = {
    "builder": "build",
    "explorer": "explore",
    "tester": "test",
    "coordinator": "plan",
}


class AgentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AgentName
    role: AgentRole
    pid: int
    pane: str | None = None
    state: AgentState = "starting"
    started_at: datetime = Field(default_factory=utc_now)
    heartbeat_at: datetime = Field(default_factory=utc_now)
    current_task: int | None = None
    detail: str = ""

    def write(self, layout: Layout) -> None:
        layout.agents_dir.mkdir(parents=True, exist_ok=True)
        # Heartbeats are frequent and only need to survive a process crash: no fsync.
        atomic_write_json(layout.agent_file(self.name), self, fsync=False)


def read_agent(layout: Layout, name: str) -> AgentRecord | None:
    try:
        return AgentRecord.model_validate_json(layout.agent_file(name).read_bytes())
    except (FileNotFoundError, ValidationError, ValueError):
        return None


def read_agents(layout: Layout) -> list[AgentRecord]:
    if not layout.agents_dir.is_dir():
        return []
    records = []
    for file_name in sorted(os.listdir(layout.agents_dir)):
        if file_name.endswith(".json"):
            record = read_agent(layout, file_name.removesuffix(".json"))
            if record is not None:
                records.append(record)
    return records


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and has not ended: a zombie (ended, not yet reaped by its
    parent, as a killed pane's process is for a while under tmux) is not alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to ask: it exists
    return state not in ("Z", "X")


def process_started_at(pid: int) -> datetime | None:
    """When process `pid` started (Linux /proc), or None when that cannot be known."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    # Field 22 (after the command name, which may hold spaces, in parentheses): start time
    # in clock ticks since boot.
    ticks = int(stat.rpartition(")")[2].split()[19])
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


# The record is written after its process starts; boot time is whole seconds in /proc.
_START_SLACK = timedelta(seconds=2)


def is_running(record: AgentRecord | None) -> bool:
    """Whether the agent's process is there (it may be slow: that is not dead). A pid reused
    by a process that started after the record was made (the agent died, the machine
    rebooted) is not the agent: it is never trusted, and never signalled."""
    if record is None or record.state in ("stopped", "crashed") or not pid_alive(record.pid):
        return False
    started = process_started_at(record.pid)
    return started is None or started <= record.started_at + _START_SLACK
