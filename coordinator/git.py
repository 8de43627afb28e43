"""The team and git (DESIGN §9). In a directory that is not in a repository the team makes one
and works in place. In the user's repository it never touches the user's branch, index,
working tree or `.gitignore`: it works on a branch of its own (`team/<id>`) in a worktree kept
inside the repository's git directory, and commits only its own files, never ignored or
secret-looking ones. Every git command here runs without hooks."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from protocol.environment import is_secret_path
from protocol.team import RepositoryMode, TeamRepository, read_team_or_backup

# The team's own ignores, kept in .git/info/exclude (never in a .gitignore).
OWN_EXCLUDES = (".agents/", ".venv/", "venv/", "__pycache__/", "node_modules/")
WORKTREE_EXCLUDES = (".agents/",)
NEVER_COMMITTED_DIRS = frozenset(
    {".agents", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache", ".git"}
)
_SAFE = [
    "-c",
    "core.hooksPath=/dev/null",  # the user's hooks (and any a model planted) never run
    "-c",
    "core.fsmonitor=false",  # nor an fsmonitor command
    "-c",
    "submodule.recurse=false",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "user.name=agent-team",
    "-c",
    "user.email=agent-team@localhost",
]
EMPTY_START = "agent-team: an empty start (the repository had no commits)"


class GitError(Exception):
    """A git command the team needs failed; the message has git's own words."""


@dataclass(frozen=True)
class Pin:
    """The repository a team's git commands use, fixed when the team was set up: never
    discovered from the workspace, where model code could plant a `.git` of its own."""

    git_dir: Path
    work_tree: Path

    def env(self) -> dict[str, str]:
        return {"GIT_DIR": str(self.git_dir), "GIT_WORK_TREE": str(self.work_tree)}


def pin_of(workspace: Path, repository: TeamRepository | None) -> Pin | None:
    if repository is not None and repository.git_dir and repository.work_tree:
        return Pin(Path(repository.git_dir), Path(repository.work_tree))
    if (workspace / ".git").is_dir():  # a repository of the team's own, made before any model
        return Pin(workspace / ".git", workspace)
    return None


def _git(
    cwd: Path, *args: str, stdin: str | None = None, pin: Pin | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(
        # Paths are paths, never pathspec magic or globs; git status never rewrites the index.
        ["git", "--no-optional-locks", "--literal-pathspecs", *_SAFE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**env, **(pin.env() if pin else {})},
    )


def _checked(cwd: Path, *args: str, stdin: str | None = None, pin: Pin | None = None) -> str:
    done = _git(cwd, *args, stdin=stdin, pin=pin)
    if done.returncode != 0:
        raise GitError(f"git {args[0]} failed in {cwd}: {done.stderr.strip() or done.stdout}")
    return done.stdout.strip()


@dataclass(frozen=True)
class RepoFacts:
    """What git says of a directory the user named (which may not exist yet)."""

    directory: Path
    top: Path | None = None  # the enclosing work tree, or None
    relative: str = ""  # the directory, relative to `top`
    ignored: bool = False  # the enclosing repository ignores it
    head: str | None = None  # the checked-out commit, None when there is none yet
    branch: str | None = None  # the checked-out branch, None when detached
    common_dir: Path | None = None


def repo_facts(directory: Path) -> RepoFacts:
    directory = directory.absolute()
    existing = directory
    while not existing.is_dir():
        existing = existing.parent
    missing = directory.relative_to(existing).as_posix()
    inside = _git(existing, "rev-parse", "--show-toplevel", "--show-prefix", "--git-common-dir")
    if inside.returncode != 0:
        return RepoFacts(directory)
    top, prefix, common = [*inside.stdout.splitlines(), "", "", ""][:3]
    relative = PurePosixPath(prefix, missing if missing != "." else "").as_posix().strip("/")
    relative = "" if relative == "." else relative
    ignored = bool(relative) and _git(Path(top), "check-ignore", "-q", relative).returncode == 0
    head = _git(existing, "rev-parse", "--verify", "-q", "HEAD^{commit}").stdout.strip() or None
    branch = _git(existing, "symbolic-ref", "-q", "--short", "HEAD").stdout.strip() or None
    return RepoFacts(
        directory,
        Path(top),
        relative,
        ignored,
        head,
        branch,
        (existing / common).resolve(),
    )


def choose_mode(facts: RepoFacts, team_in_place: bool) -> RepositoryMode:
    """In place when a team already works there or no repository of the user's holds the
    directory; otherwise a worktree of the user's repository."""
    if team_in_place or facts.top is None or facts.ignored:
        return RepositoryMode.OWN
    return RepositoryMode.WORKTREE


# --- a repository of the team's own -------------------------------------------------------


def init_own(workspace: Path) -> bool:
    """`git init` when the directory is not a repository of its own yet, with the team's
    ignores in .git/info/exclude. Returns whether a repository was created."""
    created = False
    if not (workspace / ".git").exists():
        done = _git(workspace, "init", "-q")
        if done.returncode != 0:
            raise GitError(f"git init failed in {workspace}: {done.stderr.strip()}")
        created = True
    add_excludes(
        Path(_checked(workspace, "rev-parse", "--git-common-dir")), OWN_EXCLUDES, workspace
    )
    return created


def add_excludes(common_dir: Path, entries: tuple[str, ...], cwd: Path) -> None:
    exclude = (cwd / common_dir).resolve() / "info" / "exclude"
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    missing = [entry for entry in entries if entry not in lines]
    if missing:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        header = ["# agent-team's own state"] if "# agent-team's own state" not in lines else []
        exclude.write_text("\n".join([*lines, *header, *missing]) + "\n")


# --- a worktree of the user's repository ----------------------------------------------------


def branch_name(team_id: str) -> str:
    return f"team/{team_id}"


def worktrees_dir(common_dir: Path) -> Path:
    """Inside the git directory: nothing appears in the user's working tree."""
    return common_dir / "agent-team" / "worktrees"


def create_worktree(facts: RepoFacts, team_id: str) -> tuple[Path, str, str, Pin]:
    """The team's branch from the user's current commit (an empty commit when there is none)
    and a worktree of it. Returns (the team's workspace in it, the branch, the base commit,
    the pin of the worktree). The user's HEAD, index and files are not touched."""
    assert facts.top is not None and facts.common_dir is not None
    top = facts.top
    base = facts.head
    if base is None:
        empty_tree = _checked(top, "hash-object", "-t", "tree", "--stdin", "-w", stdin="")
        base = _checked(top, "commit-tree", empty_tree, "-m", EMPTY_START)
    branch = branch_name(team_id)
    _checked(top, "branch", branch, base)
    worktree = worktrees_dir(facts.common_dir) / team_id
    worktree.parent.mkdir(parents=True, exist_ok=True)
    _checked(top, "worktree", "add", "-q", str(worktree), branch)
    add_excludes(facts.common_dir, WORKTREE_EXCLUDES, top)
    git_dir = Path(_checked(worktree, "rev-parse", "--absolute-git-dir"))
    workspace = worktree / facts.relative if facts.relative else worktree
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace, branch, base, Pin(git_dir, worktree)


def private_dirs(facts: RepoFacts) -> list[str]:
    """What of the user's surrounds a team worktree and is hidden from model code: the
    repository's git directory, each of its working trees, and a superproject it is part of."""
    if facts.top is None or facts.common_dir is None:
        return []
    found = {facts.top, facts.common_dir}
    if facts.common_dir.name == ".git":
        found.add(facts.common_dir.parent)
    listing = _git(facts.top, "worktree", "list", "--porcelain").stdout.splitlines()
    ours = worktrees_dir(facts.common_dir)
    for line in listing:
        path = Path(line.removeprefix("worktree ")) if line.startswith("worktree ") else None
        if path is not None and not path.is_relative_to(ours):
            found.add(path)
    above = _git(facts.top, "rev-parse", "--show-superproject-working-tree").stdout.strip()
    if above:
        found.add(Path(above))
    return sorted(str(p) for p in found)


def team_worktrees(facts: RepoFacts) -> list[Path]:
    """The team workspaces made for this directory in the user's repository, the one created
    last at the end."""
    if facts.common_dir is None:
        return []
    root = worktrees_dir(facts.common_dir)
    if not root.is_dir():
        return []
    found = []
    for worktree in root.iterdir():
        workspace = worktree / facts.relative if facts.relative else worktree
        # A damaged team.json must not hide a team that may be running: its last good copy.
        info, _ = read_team_or_backup(workspace / ".agents" / "team.json")
        if info is None:
            continue
        found.append((info.created_at.timestamp(), workspace))
    return [workspace for _, workspace in sorted(found)]


def dirty_files(facts: RepoFacts) -> list[str]:
    """The user's uncommitted changes and untracked files under the directory (relative to
    it): the team works from the last commit and does not see them."""
    if facts.top is None or not facts.directory.is_dir():
        return []
    return [path for _, path in _status(facts.directory)]


# --- commits --------------------------------------------------------------------------------


def committable(paths: list[str]) -> list[str]:
    """Of the changed paths, the ones the team may commit: never its state, a venv, caches,
    build leftovers of its atomic writes, or a secret-looking file."""
    kept = []
    for path in paths:
        parts = PurePosixPath(path).parts
        if not parts or NEVER_COMMITTED_DIRS & set(parts):
            continue
        if path.endswith("/"):  # a repository nested inside: never committed as a gitlink
            continue
        name = parts[-1]
        if is_secret_path(path) or (name.startswith(".tmp-") and name.endswith(".part")):
            continue
        kept.append(path)
    return kept


def _status(cwd: Path, pin: Pin | None = None) -> list[tuple[str, str]]:
    """(code, path relative to `cwd`) for every change git sees under `cwd`, ignored files
    left out, both paths of a rename; nested repositories are not looked into."""
    out = _git(
        cwd,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignore-submodules=all",
        "--",
        ".",
        pin=pin,
    )
    if out.returncode != 0:
        return []
    prefix = _git(cwd, "rev-parse", "--show-prefix", pin=pin).stdout.strip()
    entries = out.stdout.split("\0")
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        found.append((code, path))
        if code[0] in "RC" and index < len(entries):  # the original path follows
            found.append((code, entries[index]))
            index += 1
    # porcelain paths are relative to the repository's top: make them relative to `cwd`.
    return [(c, p.removeprefix(prefix)) for c, p in found if p.startswith(prefix)]


def commit_work(
    workspace: Path, message: str, repository: TeamRepository | None = None
) -> str | None:
    """Commit what the team changed in `workspace` (see `committable`) to the repository
    pinned when the team was set up; the new commit's id, or None when nothing changed. In a
    worktree, only while the team's branch is checked out there."""
    pin = pin_of(workspace, repository)
    branch = repository.branch if repository is not None else None
    if branch is not None:
        head = _git(workspace, "symbolic-ref", "-q", "HEAD", pin=pin).stdout.strip()
        if head != f"refs/heads/{branch}":
            raise GitError(f"{workspace} is not on {branch} (HEAD is {head or 'detached'})")
    paths = committable([path for _, path in _status(workspace, pin)])
    if not paths:
        return None
    _checked(
        workspace,
        "add",
        "-A",
        "--pathspec-from-file=-",
        "--pathspec-file-nul",
        stdin="\0".join(paths),
        pin=pin,
    )
    done = _git(workspace, "commit", "-q", "--no-verify", "-m", message, pin=pin)
    if done.returncode != 0:
        return None
    return _checked(workspace, "rev-parse", "HEAD", pin=pin)


def diff_since_commit(workspace: Path, repository: TeamRepository | None = None) -> str:
    """What changed in `workspace` since the last commit, with no diff driver or textconv of
    any configuration run (empty outside a repository)."""
    done = _git(
        workspace,
        "diff",
        "--no-ext-diff",
        "--no-textconv",
        "--ignore-submodules=all",
        "HEAD",
        "--",
        ".",
        pin=pin_of(workspace, repository),
    )
    return done.stdout if done.returncode == 0 else ""
