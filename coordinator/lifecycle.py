"""Stopping and resuming a team: `team kill` and `team resume`. Nothing on disk is lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import libtmux

from coordinator.demo import DEMO_CONFIG_MARK
from coordinator.tmux import TeamSession, socket_name
from coordinator.workspace import Team
from protocol import (
    COORDINATOR,
    Mailbox,
    ShutdownRequest,
    TeamInfo,
    TeamStatus,
    UnknownRecipient,
    make_message,
)
from protocol.agents import is_running, pid_alive, read_agents


def kill_team(team: Team, grace: float, say: Callable[[str], None]) -> None:
    """Ask every running agent (the coordinator first) to stop; after `grace` seconds, end
    the ones still there; close the tmux session. The team's state stays on disk."""
    mailbox = Mailbox(team.layout, team.info.id)
    running = [r for r in read_agents(team.layout) if is_running(r)]
    for record in sorted(running, key=lambda r: r.name != COORDINATOR):
        request = ShutdownRequest(reason="team kill", grace_seconds=grace)
        with contextlib.suppress(UnknownRecipient, OSError):  # no inbox: it is ended below
            mailbox.send(
                make_message(request, team=team.info.id, sender="user", recipient=record.name)
            )
        say(f"asked {record.name} (pid {record.pid}) to stop")
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(r.pid) for r in running):
        time.sleep(0.1)
    for record in running:
        if pid_alive(record.pid):
            say(f"{record.name} did not stop within {grace:g}s: ending it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
    name = team.info.tmux_session or f"team-{team.info.id}"  # the default, if team.json lost it
    session = TeamSession.find(libtmux.Server(socket_name=socket_name(team.info.id)), name)
    if session is not None:
        session.kill()
        say(f"closed tmux session {name}")
    demo_model = team.layout.root / "demo-model.pid"
    if demo_model.exists():  # team demo's scripted model server
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(demo_model.read_text()), signal.SIGTERM)
        demo_model.unlink(missing_ok=True)
    info = TeamInfo.read(team.layout.team_json)
    if info.status not in (TeamStatus.DONE, TeamStatus.FAILED):
        info.model_copy(
            update={"status": TeamStatus.STOPPED, "detail": "stopped by team kill"}
        ).write(team.layout.team_json)


def archive_finished_run(team: Team) -> str | None:
    """Before a new task in the same workspace: move the last run's plan, tasks, memory and
    snapshots into `.agents/history/<time>/`. Returns where, or None if there was nothing."""
    layout = team.layout
    leftovers = [
        p
        for p in (layout.plan_json, layout.tasks_dir, layout.memory_json, layout.snapshots_dir)
        if p.exists()
    ]
    if _written_by_demo(layout.config_toml):  # the scripted model is not for a real task
        leftovers.append(layout.config_toml)
    if not layout.plan_json.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = layout.root / "history" / stamp
    target.mkdir(parents=True, exist_ok=True)
    for path in leftovers:
        shutil.move(str(path), str(target / path.name))
    layout.create_dirs()
    return str(target)


def _written_by_demo(config: Path) -> bool:
    try:
        return config.read_text(encoding="utf-8").startswith(DEMO_CONFIG_MARK)
    except OSError:
        return False
