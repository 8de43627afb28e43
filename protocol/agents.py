"""`.agents/agents/<name>.json`: each agent process says who it is and that it is alive."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.atomic import atomic_write_json
from protocol.layout import Layout
from protocol.messages import AgentName, utc_now

AgentState = Literal["starting", "idle", "working", "stopping", "stopped", "crashed"]
AgentRole = Literal["builder", "explorer", "tester", "coordinator"]


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_running(record: AgentRecord | None) -> bool:
    """Whether the agent's process is there (it may be slow: that is not dead)."""
    return (
        record is not None and record.state not in ("stopped", "crashed") and pid_alive(record.pid)
    )
