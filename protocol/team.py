"""`team.json`: who the team is, what it works on, and where it stands."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol import events
from protocol.atomic import atomic_write_json
from protocol.events import TeamChanged
from protocol.layout import Layout
from protocol.locks import file_lock
from protocol.messages import AgentName, utc_now

COORDINATOR = "coordinator"
USER = "user"


class TeamStatus(StrEnum):
    INITIALISED = "initialised"
    EXPLORING = "exploring"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"  # a plan waits for the user (`team approve`)
    BUILDING = "building"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


class TeamFileError(Exception):
    """team.json is missing, unreadable or invalid."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def new_team_id() -> str:
    return "t" + secrets.token_hex(4)


class RepositoryMode(StrEnum):
    OWN = "own"  # a directory that was not in a repository: git init-ed, worked in place
    WORKTREE = "worktree"  # the user's repository: the team's branch, in a worktree of its own


class TeamRepository(BaseModel):
    """Where the team's work goes in git, and how the user gets it."""

    model_config = ConfigDict(extra="forbid")

    mode: RepositoryMode
    user_dir: str  # the directory the user named (-w)
    branch: str | None = None  # the team's branch (worktree mode)
    base: str | None = None  # the commit it started from
    base_ref: str | None = None  # the user's branch then; None when detached or unborn
    # The user's uncommitted and untracked files (workspace-relative): not seen by the team.
    dirty: list[str] = Field(default_factory=list)
    # Those of them that the plan changes too: the user must commit or stash them to merge.
    overlap: list[str] = Field(default_factory=list)
    # Fixed when the team was set up, so that git never discovers a `.git` a model planted.
    git_dir: str | None = None
    work_tree: str | None = None
    # The user's working trees and git directory around the team's worktree: hidden from
    # model code (their `.env`, their `.agents/config.toml`, remotes with tokens).
    private: list[str] = Field(default_factory=list)

    def where(self) -> str:
        """One line: where the team's work goes while it works."""
        if self.mode == RepositoryMode.OWN or not self.branch:
            return f"the team works in {self.user_dir}"
        return f"the team works on its own branch {self.branch}; your working tree is untouched"

    def how_to_get_it(self) -> str:
        """One line: where the result is, and the commands to look at it and take it."""
        if self.mode == RepositoryMode.OWN or not self.branch:
            return f"the result is in {self.user_dir} (git log shows the team's commits)"
        since = self.base_ref or (self.base or "")[:12]
        see = f"git diff {since}...{self.branch}" if since else f"git log -p {self.branch}"
        first = (
            f"commit or stash your changes to {', '.join(self.overlap)} (the team changed them "
            "too), then "
            if self.overlap
            else ""
        )
        return (
            f"the result is on branch {self.branch}: see it with `{see}`; {first}"
            f"take it with `git merge {self.branch}` (in {self.user_dir})"
        )


class TeamInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_team_id, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    task: str = ""
    tmux_session: str | None = None
    members: list[AgentName] = Field(default_factory=lambda: [COORDINATOR, USER])
    iteration: int = Field(default=0, ge=0)
    status: TeamStatus = TeamStatus.INITIALISED
    detail: str = ""  # what the team is doing now, or why it stopped
    # The user passed --no-sandbox: model code runs unconfined, and every view says so.
    unconfined: bool = False
    # `team up --approve-plan` (or `[team] approve_plan`): no build before the user approves.
    approve_plan: bool = False
    repository: TeamRepository | None = None
    created_at: datetime = Field(default_factory=utc_now)
    trace_id: str = ""  # the running (or last) coordinator's trace: traces/<trace_id>.jsonl

    @classmethod
    def read(cls, path: Path) -> TeamInfo:
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise TeamFileError(f"{path} does not exist", missing=True) from None
        except (OSError, ValueError) as exc:  # ValidationError is a ValueError
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise TeamFileError(f"{path} is not a valid team file: {detail}") from None

    def write(self, path: Path) -> None:
        """Replace team.json whole: only for a new team. Everything else goes through
        `update_team`, so that two writers never lose each other's changes."""
        with file_lock(team_lock(path), timeout=LOCK_TIMEOUT):
            self._write_both(path)

    def _write_both(self, path: Path) -> None:
        atomic_write_json(path, self)
        # The last good copy: a team.json deleted or truncated by accident can be put back.
        atomic_write_json(backup_of(path), self)


LOCK_TIMEOUT = 30.0


def team_lock(path: Path) -> Path:
    return path.with_name(".team.lock")


def backup_of(path: Path) -> Path:
    return path.with_name("team.json.bak")


def update_team(
    path: Path,
    *,
    fallback: TeamInfo | None = None,
    on_repair: Callable[[TeamFileError], None] | None = None,
    **changes: Any,
) -> TeamInfo:
    """Set fields of team.json (`modify_team` with fixed values)."""
    return modify_team(path, lambda _info: changes, fallback=fallback, on_repair=on_repair)


def modify_team(
    path: Path,
    change: Callable[[TeamInfo], dict[str, Any]],
    *,
    fallback: TeamInfo | None = None,
    on_repair: Callable[[TeamFileError], None] | None = None,
) -> TeamInfo:
    """Read team.json, compute the changes from what it holds now, check and write it back,
    all under the team lock: the read-modify-write every writer of team.json uses, so no two
    writers lose each other's changes. A damaged or missing file is rebuilt from `fallback`
    (the coordinator's own copy) when one is given, and `on_repair` hears why; otherwise
    `TeamFileError` says so."""
    with file_lock(team_lock(path), timeout=LOCK_TIMEOUT):
        try:
            info = TeamInfo.read(path)
        except TeamFileError as error:
            if fallback is None:
                raise
            if on_repair is not None:  # told what was wrong with the file it replaces
                on_repair(error)
            info = fallback
        updated = TeamInfo.model_validate({**info.model_dump(), **change(info)})
        updated._write_both(path)
    if (updated.status, updated.detail, updated.iteration) != (
        info.status,
        info.detail,
        info.iteration,
    ):
        events.emit(
            Layout.of(path.parent.parent).events_jsonl,
            TeamChanged(
                status=updated.status.value,
                detail=events.short(updated.detail, 300),
                iteration=updated.iteration,
            ),
        )
    return updated


def damage_advice(path: Path, error: TeamFileError) -> str:
    """What a user can do about a damaged team.json: the last good copy, if there is one."""
    try:
        backup = TeamInfo.read(backup_of(path))
    except TeamFileError:
        return (
            f"{error}; `team kill` still stops the team's processes; to carry on, recreate "
            "it with `team init` (the tasks on disk stay)"
        )
    return (
        f"{error}; the last good copy (team {backup.id}) is {backup_of(path)}: put it back "
        f"with `cp {backup_of(path)} {path}`; `team kill` works either way"
    )


def read_team_or_backup(path: Path) -> tuple[TeamInfo | None, TeamFileError | None]:
    """For the commands that must work on a damaged team (status, kill): team.json, else
    its last good copy, with the error that says the file itself is damaged."""
    try:
        return TeamInfo.read(path), None
    except TeamFileError as error:
        try:
            return TeamInfo.read(backup_of(path)), error
        except TeamFileError:
            return None, error
