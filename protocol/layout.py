"""The `.agents/` directory of a workspace (DESIGN §3): one object that names every path.

Nothing else in the code base spells a path under `.agents/`; everything asks this object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protocol.messages import is_agent_name

AGENTS_DIR = ".agents"


class NotATeamWorkspace(Exception):
    """The workspace has no `.agents/` directory."""

    def __init__(self, workspace: Path) -> None:
        super().__init__(
            f"no team in {workspace}: there is no {AGENTS_DIR}/team.json. "
            "Run `team init` (or `team up`) there first, or pass -w/--workspace."
        )
        self.workspace = workspace


@dataclass(frozen=True)
class InboxPaths:
    """One agent's Maildir-style inbox."""

    root: Path

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def new(self) -> Path:
        return self.root / "new"

    @property
    def cur(self) -> Path:
        return self.root / "cur"

    @property
    def bad(self) -> Path:
        return self.root / "bad"

    @property
    def lock(self) -> Path:
        """Held by a sender while it numbers and delivers a message."""
        return self.root / ".lock"

    @property
    def seq(self) -> Path:
        """The last sequence number given out, read and written under `lock`."""
        return self.root / ".seq"

    @property
    def receiver_lock(self) -> Path:
        """Held by the one process that handles this inbox's messages."""
        return self.root / ".receiver.lock"

    @property
    def handling(self) -> Path:
        """Names the message whose handler is running, so a crash can be told apart."""
        return self.root / ".handling"

    def dirs(self) -> tuple[Path, ...]:
        return (self.tmp, self.new, self.cur, self.bad)


@dataclass(frozen=True)
class Layout:
    """Every path of a team's state, rooted at `workspace/.agents`."""

    workspace: Path

    @classmethod
    def of(cls, workspace: Path | str) -> Layout:
        return cls(Path(workspace).resolve())

    @property
    def root(self) -> Path:
        return self.workspace / AGENTS_DIR

    def exists(self) -> bool:
        return self.team_json.is_file()

    def require(self) -> Layout:
        """Return self, or raise `NotATeamWorkspace` with a message that says what to do."""
        if not self.exists():
            raise NotATeamWorkspace(self.workspace)
        return self

    @property
    def team_json(self) -> Path:
        return self.root / "team.json"

    @property
    def coordinator_lock(self) -> Path:
        """Held by the running coordinator: one team per workspace (protocol/runlock.py).
        team.json's own lock and last good copy sit beside it (protocol/team.py)."""
        return self.root / "coordinator.lock"

    @property
    def config_toml(self) -> Path:
        return self.root / "config.toml"

    @property
    def plan_json(self) -> Path:
        return self.root / "plan.json"

    @property
    def plan_proposal_json(self) -> Path:
        """A plan waiting for the user's approval (`team approve`): plan.json once approved."""
        return self.root / "plan.proposed.json"

    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"

    @property
    def tasks_lock(self) -> Path:
        return self.tasks_dir / ".lock"

    def task_file(self, task_id: int) -> Path:
        return self.tasks_dir / f"{task_id:04d}.json"

    @property
    def inboxes_dir(self) -> Path:
        return self.root / "inboxes"

    def inbox(self, agent: str) -> InboxPaths:
        if not is_agent_name(agent):
            raise ValueError(
                f"bad agent name {agent!r}: use lower-case letters, digits, '-' and '_'"
            )
        return InboxPaths(self.inboxes_dir / agent)

    def inbox_names(self) -> list[str]:
        """The agents that have an inbox, sorted."""
        if not self.inboxes_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.inboxes_dir.iterdir() if p.is_dir() and is_agent_name(p.name)
        )

    @property
    def agents_dir(self) -> Path:
        return self.root / "agents"

    def agent_file(self, agent: str) -> Path:
        return self.agents_dir / f"{agent}.json"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    def file_lock(self, relative_path: str) -> Path:
        """The lock file guarding writes to one workspace file (path flattened into a name)."""
        flat = relative_path.strip("/").replace("%", "%25").replace("/", "%2F")
        return self.locks_dir / f"{flat}.lock"

    @property
    def memory_json(self) -> Path:
        return self.root / "memory.json"

    @property
    def events_jsonl(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def traces_dir(self) -> Path:
        return self.root / "traces"

    def trace_file(self, trace_id: str) -> Path:
        return self.traces_dir / f"{trace_id}.jsonl"

    @property
    def snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    def snapshot_dir(self, iteration: int) -> Path:
        return self.snapshots_dir / str(iteration)

    @property
    def pool_dir(self) -> Path:
        """The model-server pool's board of slots (protocol/llm/pool_board.py)."""
        return self.root / "pool"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log_file(self, agent: str) -> Path:
        return self.logs_dir / f"{agent}.log"

    def directories(self) -> tuple[Path, ...]:
        """The directories every team has, created by `create_dirs()`."""
        return (
            self.root,
            self.tasks_dir,
            self.inboxes_dir,
            self.agents_dir,
            self.locks_dir,
            self.traces_dir,
            self.snapshots_dir,
            self.logs_dir,
        )

    def create_dirs(self) -> None:
        for directory in self.directories():
            directory.mkdir(parents=True, exist_ok=True)
