"""The one module that talks to tmux (STYLE 10): the team's session on its own socket, one
pane per agent, each created with its command (never typed into a shell with send-keys)."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import libtmux
from libtmux.exc import LibTmuxException

from coordinator.registration import await_registration
from protocol import Layout
from protocol.agents import AgentRecord

SPAWN_TIMEOUT = 30.0


@dataclass(frozen=True)
class AgentPane:
    name: str
    pane_id: str


SOCKET_PREFIX = "agent-team-"


def socket_name(team_id: str) -> str:
    """The team's own tmux server: the user's other sessions are never touched."""
    return f"{SOCKET_PREFIX}{team_id}"


def attach_hint(team_id: str, session: str, here: Path | str | None = None) -> str:
    """What the user can type to watch the team (it runs on its own socket, so a plain
    `tmux attach -t` does not find it)."""
    where = f" -w {here}" if here else ""
    return f"`team attach{where}`, or `tmux -L {socket_name(team_id)} attach -t {session}`"


def sessions_in(workspace: Path) -> list[TeamSession]:
    """Every team session started in `workspace`, found from tmux's socket directory: for
    when team.json, which names the session, is lost."""
    folder = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    try:
        sockets = sorted(p.name for p in folder.iterdir() if p.name.startswith(SOCKET_PREFIX))
    except OSError:
        return []
    found = []
    for name in sockets:
        with contextlib.suppress(LibTmuxException, OSError):
            for session in libtmux.Server(socket_name=name).sessions:
                if session.session_path and Path(session.session_path) == workspace.resolve():
                    found.append(TeamSession(session))
    return found


class TeamSession:
    """A team's tmux session: pane 0 the coordinator, then one pane per worker, tiled."""

    def __init__(self, session: libtmux.Session) -> None:
        self.session = session

    @property
    def name(self) -> str:
        return str(self.session.name)

    @property
    def window(self) -> libtmux.Window:
        return self.session.windows[0]

    @classmethod
    def create(
        cls,
        server: libtmux.Server,
        name: str,
        workspace: Path,
        command: Sequence[str],
        *,
        title: str = "coordinator",
        environment: Mapping[str, str] | None = None,
    ) -> TeamSession:
        """A new session whose first pane runs `command`."""
        session = server.new_session(
            session_name=name,
            start_directory=str(workspace),
            window_name="team",
            window_command=shlex.join(command),
            environment=dict(environment or {}),
            x=220,
            y=60,
        )
        team = cls(session)
        # A crashed agent's pane stays, with its last output readable.
        team.window.set_option("remain-on-exit", "on")
        team.window.set_option("pane-border-status", "top")
        team.window.set_option("pane-border-format", " #{pane_title} ")
        team.window.panes[0].set_title(title)
        return team

    @classmethod
    def find(cls, server: libtmux.Server, name: str) -> TeamSession | None:
        session = server.sessions.get(session_name=name, default=None)
        return cls(session) if session is not None else None

    def spawn(
        self,
        name: str,
        command: Sequence[str],
        workspace: Path,
        environment: Mapping[str, str] | None = None,
    ) -> AgentPane:
        """A new pane running `command`, titled `name`, the window re-tiled."""
        pane = self.window.split(
            start_directory=str(workspace),
            shell=shlex.join(command),
            environment=dict(environment or {}),
        )
        pane.set_title(name)
        self.window.select_layout("tiled")
        return AgentPane(name, str(pane.pane_id))

    def pane(self, pane_id: str) -> libtmux.Pane | None:
        return next((p for p in self.window.panes if p.pane_id == pane_id), None)

    def pane_dead(self, pane_id: str) -> bool:
        """Whether the pane's process has exited (the pane itself stays: remain-on-exit)."""
        pane = self.pane(pane_id)
        if pane is None:
            return True
        output = pane.cmd("display-message", "-p", "#{pane_dead}").stdout
        return bool(output) and output[0].strip() == "1"

    def last_lines(self, pane_id: str, count: int = 15) -> str:
        pane = self.pane(pane_id)
        if pane is None:
            return "(the pane is gone)"
        # -J joins wrapped lines; -S reaches into the history, where early output scrolled.
        captured = pane.cmd("capture-pane", "-p", "-J", "-S", "-200").stdout
        lines = [line for line in captured if line.strip()]
        return "\n".join(lines[-count:])

    def titles(self) -> list[str]:
        return [str(p.pane_title) for p in self.window.panes]

    def kill(self) -> None:
        with contextlib.suppress(LibTmuxException):  # already gone
            self.session.kill()


def wait_until_registered(
    team: TeamSession, layout: Layout, agent: AgentPane, timeout: float = SPAWN_TIMEOUT
) -> AgentRecord:
    """Poll until the agent has registered from this pane and is idle (its first heartbeat);
    raise `SpawnFailed` with the pane's last lines if the process died or never came up."""
    where = f"pane {agent.pane_id}"
    return await_registration(
        layout,
        agent.name,
        is_this_spawn=lambda record: record.pane == agent.pane_id,
        died=lambda: where if team.pane_dead(agent.pane_id) else None,
        output=lambda: team.last_lines(agent.pane_id),
        where=where,
        timeout=timeout,
    )
