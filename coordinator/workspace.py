"""Creating and opening a team's workspace: the `.agents/` directory and `team.json`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coordinator import git
from protocol import COORDINATOR, USER, Layout, TeamInfo, create_inbox, file_lock

# Written into `.agents/` so the team's runtime state never ends up in the user's commits.
_IGNORE_EVERYTHING = "# agent-team runtime state: not for version control\n*\n"


@dataclass(frozen=True)
class Team:
    layout: Layout
    info: TeamInfo


def init_workspace(
    workspace: Path, *, task: str = "", team_id: str | None = None
) -> tuple[Team, bool]:
    """Create `.agents/` in `workspace`, or reuse the team already there.

    Idempotent: a second call keeps the team id, its inboxes and everything on disk.
    Returns the team and whether it was created now.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    layout = Layout.of(workspace)
    layout.root.mkdir(exist_ok=True)
    # Two `team init`s at once must not both create a team with different ids.
    with file_lock(layout.root / ".init.lock", timeout=30):
        layout.create_dirs()
        ignore = layout.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_IGNORE_EVERYTHING, encoding="utf-8")
        created = not layout.team_json.exists()
        if created:
            info = TeamInfo(task=task) if team_id is None else TeamInfo(id=team_id, task=task)
            info.write(layout.team_json)
        else:
            info = TeamInfo.read(layout.team_json)
        create_team_inboxes(layout, info)
    return Team(layout, info), created


def create_team_inboxes(layout: Layout, info: TeamInfo) -> None:
    """An inbox for every member (the coordinator and the user always): idempotent."""
    for member in dict.fromkeys([COORDINATOR, USER, *info.members]):
        create_inbox(layout, member)


def open_team(workspace: Path) -> Team:
    """The team in `workspace`; raises `NotATeamWorkspace` or `TeamFileError` with advice."""
    layout = Layout.of(workspace).require()
    return Team(layout, TeamInfo.read(layout.team_json))


def enclosing_team(directory: Path) -> Path | None:
    """The team workspace this directory is, or is inside of: the nearest one holding
    `.agents/team.json`."""
    directory = directory.absolute()
    for candidate in (directory, *directory.parents):
        if Layout.of(candidate).team_json.is_file():
            return candidate
    return None


def team_workspace(directory: Path) -> Path:
    """Where the team for the directory the user named works: the team workspace it is in
    (a team in place, or a worktree given by its path), else the latest team worktree made
    for it in the user's repository, else the directory (which then has no team). Inside a
    team's workspace git is never asked: model code may have planted a repository there."""
    enclosing = enclosing_team(directory)
    if enclosing is not None:
        return enclosing
    found = git.team_worktrees(git.repo_facts(directory))
    return found[-1] if found else directory
