"""`team kill` ends the team's processes, and only those."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

from coordinator.lifecycle import kill_team
from protocol import TeamInfo
from protocol.agents import AgentRecord, is_running
from protocol.messages import utc_now
from tests.conftest import TeamDir
from tests.processes import kill9


def test_a_pid_reused_since_the_record_was_written_is_not_the_agent(team_dir: TeamDir) -> None:
    bystander = subprocess.Popen(["sleep", "60"], text=True)
    try:
        time.sleep(0.1)
        stale = AgentRecord(
            name="builder-x",
            role="builder",
            pid=bystander.pid,
            state="working",
            started_at=utc_now() - timedelta(hours=1),  # the agent died; its pid was reused
        )
        assert not is_running(stale)
        assert is_running(stale.model_copy(update={"started_at": utc_now()}))
        stale.write(team_dir.layout)
        said: list[str] = []
        info = TeamInfo.read(team_dir.layout.team_json)
        assert kill_team(team_dir.layout, info, 0.5, said.append) == 0
        assert bystander.poll() is None, f"team kill ended a process not the team's: {said}"
    finally:
        kill9(bystander)  # type: ignore[arg-type]


def test_a_zombie_is_not_alive() -> None:
    from protocol.agents import pid_alive

    child = subprocess.Popen(["sleep", "60"])
    try:
        assert pid_alive(child.pid)
        child.kill()
        time.sleep(0.2)  # ended, and not reaped yet: a zombie, as a killed pane's process
        assert not pid_alive(child.pid)
    finally:
        child.wait()
