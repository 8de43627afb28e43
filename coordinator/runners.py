"""How agent processes are started: in tmux panes (the default) or as plain subprocesses
(for hosts without tmux). Both start `python -m agent_worker` with the same arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import libtmux

from coordinator.registration import SpawnFailed, await_registration
from coordinator.tmux import (
    SPAWN_TIMEOUT,
    AgentPane,
    TeamSession,
    socket_name,
    wait_until_registered,
)
from protocol import Layout
from protocol.agents import AgentRole, is_running, read_agent


def team_environment() -> dict[str, str]:
    """The environment the team's own processes start with: this one, with only absolute
    PYTHONPATH entries (an empty or relative entry means the working directory, the
    workspace, and would undo `python -P`)."""
    env = dict(os.environ)
    entries = env.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(e for e in entries if os.path.isabs(e))
    if not env["PYTHONPATH"]:
        del env["PYTHONPATH"]
    return env


def pane_environment() -> dict[str, str]:
    """What a tmux pane needs of it (tmux gives the rest)."""
    env = team_environment()
    return {"PATH": env.get("PATH", ""), "PYTHONPATH": env.get("PYTHONPATH", "")}


def worker_command(layout: Layout, name: str, role: AgentRole, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-P",  # the working directory (the workspace, a model's files) never shadows a module
        "-m",
        "agent_worker",
        "--workspace",
        str(layout.workspace),
        "--name",
        name,
        "--role",
        role,
        *extra,
    ]


class Runner(Protocol):
    def start(self, name: str, role: AgentRole) -> None:
        """Start the agent's process and return at once."""

    def wait_ready(self, name: str) -> None:
        """Until the agent registered and went idle; `SpawnFailed` if it died or never did."""

    def alive(self, name: str) -> bool: ...

    def stop_all(self) -> None: ...


class SubprocessRunner:
    """Each agent a child process; its pane output goes to `.agents/logs/<name>.out`."""

    def __init__(self, layout: Layout, extra: list[str] | None = None) -> None:
        self.layout = layout
        self.extra = extra or []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, role: AgentRole) -> None:
        self.layout.logs_dir.mkdir(parents=True, exist_ok=True)
        out = (self.layout.logs_dir / f"{name}.out").open("ab")
        proc = subprocess.Popen(
            worker_command(self.layout, name, role, self.extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.layout.workspace,
            env=team_environment(),
        )
        out.close()
        self.procs[name] = proc

    def wait_ready(self, name: str) -> None:
        proc = self.procs[name]
        await_registration(
            self.layout,
            name,
            is_this_spawn=lambda record: record.pid == proc.pid,
            died=lambda: None if proc.poll() is None else f"exit {proc.returncode}",
            output=lambda: _tail(self.layout.logs_dir / f"{name}.out"),
            where=f"pid {proc.pid}",
            timeout=SPAWN_TIMEOUT,
        )

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        if proc is not None:
            return proc.poll() is None
        return is_running(read_agent(self.layout, name))  # started by an earlier coordinator

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


class TmuxRunner:
    """Each agent a pane of the team's session, created with its command."""

    def __init__(self, layout: Layout, team: TeamSession, extra: list[str] | None = None) -> None:
        self.layout = layout
        self.team = team
        self.extra = extra or []
        self.panes: dict[str, AgentPane] = {}

    @classmethod
    def for_team(cls, layout: Layout, team_id: str, session: str, extra: list[str]) -> TmuxRunner:
        server = libtmux.Server(socket_name=socket_name(team_id))
        team = TeamSession.find(server, session)
        if team is None:
            raise SpawnFailed(f"the team's tmux session {session} is gone")
        return cls(layout, team, extra)

    def start(self, name: str, role: AgentRole) -> None:
        env = pane_environment()
        command = worker_command(self.layout, name, role, self.extra)
        self.panes[name] = self.team.spawn(name, command, self.layout.workspace, env)

    def wait_ready(self, name: str) -> None:
        wait_until_registered(self.team, self.layout, self.panes[name])

    def alive(self, name: str) -> bool:
        pane = self.panes.get(name)
        if pane is not None:
            return not self.team.pane_dead(pane.pane_id)
        record = read_agent(self.layout, name)  # started by an earlier coordinator
        return is_running(record) and not (
            record and record.pane and self.team.pane_dead(record.pane)
        )

    def stop_all(self) -> None:
        pass  # the panes end with their workers; `team kill` closes the session


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
