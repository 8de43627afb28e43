"""`team up`: set up the workspace, start the coordinator (in tmux, or as a child process),
and attach, return, or wait for the outcome."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import libtmux

from coordinator import git
from coordinator.lifecycle import archive_finished_run
from coordinator.runners import pane_environment, team_environment
from coordinator.tmux import TeamSession, socket_name
from coordinator.workspace import Team, enclosing_team, init_workspace, open_team
from protocol import COORDINATOR, Layout, TeamFileError, TeamInfo, TeamStatus
from protocol.agents import is_running, read_agent
from protocol.messages import utc_now
from protocol.sandbox import NO_SANDBOX_HINT, UNCONFINED_NOTICE, probe_sandbox
from protocol.team import RepositoryMode, TeamRepository, new_team_id

FINISHED = {TeamStatus.DONE, TeamStatus.FAILED, TeamStatus.STOPPED}


class UpError(Exception):
    """`team up` cannot start; the message says what to do."""


def choose_confinement(no_sandbox: bool, command: str = "team up") -> bool:
    """Whether the team runs unconfined: only when the user said so. Without a working
    sandbox and without --no-sandbox, `UpError` says why and how to fix it."""
    if no_sandbox:
        return True
    probe = probe_sandbox()
    if not probe.ok:
        raise UpError(
            f"{command} runs the models' code only in a sandbox, and there is none: "
            f"{probe.problem}.\nFix: {probe.fix};\n{NO_SANDBOX_HINT} "
            "(`team doctor` checks it)."
        )
    return False


def coordinator_command(
    workspace: Path, workers: int, max_iterations: int, runner: str
) -> list[str]:
    return [
        sys.executable,
        "-P",  # the working directory (the workspace, a model's files) never shadows a module
        "-m",
        "coordinator",
        "--workspace",
        str(workspace),
        "--workers",
        str(workers),
        "--max-iterations",
        str(max_iterations),
        "--runner",
        runner,
    ]


def prepare(directory: Path, task: str) -> Team:
    """The team ready for a new run on `task` in the directory the user named: in place in a
    directory of its own (git init-ed when needed), or on a branch and worktree of its own in
    the user's repository (coordinator/git.py). Raises `UpError` with what to do."""
    _refuse_inside_a_team(directory)
    facts = git.repo_facts(directory)
    try:
        if git.choose_mode(facts, _works_in_place(directory, facts)) == RepositoryMode.OWN:
            return _prepare_in_place(directory, task)
        return _prepare_worktree(facts, task)
    except git.GitError as exc:
        raise UpError(str(exc)) from None


def _refuse_inside_a_team(directory: Path) -> None:
    """A team's worktree, or a directory inside a team's workspace, is the team's (and may
    hold what its models made, a planted `.git` among it): a new team starts from the
    directory the user works in, never from there."""
    enclosing = enclosing_team(directory)
    if enclosing is None:
        return
    try:
        info = TeamInfo.read(Layout.of(enclosing).team_json)
    except TeamFileError:
        return
    repository = info.repository
    in_its_worktree = repository is not None and repository.mode == RepositoryMode.WORKTREE
    if enclosing != directory.absolute() or in_its_worktree:
        home = repository.user_dir if repository is not None else str(enclosing)
        raise UpError(
            f"{directory} is inside the workspace of team {info.id} ({enclosing}); "
            f"run `team up` in {home}, where you work"
        )


def _works_in_place(directory: Path, facts: git.RepoFacts) -> bool:
    """Whether a team already works in place in this directory, in a repository of its own."""
    try:
        info = TeamInfo.read(Layout.of(directory).team_json)
    except TeamFileError:
        return False
    if info.repository is not None:
        return info.repository.mode == RepositoryMode.OWN
    return facts.top == directory.resolve() and (directory / ".git").is_dir()


def _refuse_a_running_team(team: Team) -> None:
    info = team.info
    if info.status in FINISHED and info.tmux_session:  # the last run's panes: close them
        close_session(info.id, info.tmux_session)
    if info.status not in (TeamStatus.INITIALISED, *FINISHED):
        raise UpError(
            f"a team is already at work in {team.layout.workspace} ({info.status.value}): "
            "see `team status`, stop it with `team kill`, or carry on with `team resume`"
        )


def _prepare_in_place(workspace: Path, task: str) -> Team:
    workspace.mkdir(parents=True, exist_ok=True)
    created = git.init_own(workspace)
    team, _ = init_workspace(workspace, task=task)
    _refuse_a_running_team(team)
    repository = TeamRepository(
        mode=RepositoryMode.OWN,
        user_dir=str(workspace.absolute()),
        git_dir=str((workspace / ".git").resolve()),
        work_tree=str(workspace.resolve()),
    )
    if created:  # what was there before, so that the team's work is a diff on top of it
        before = f"agent-team: {workspace.name} before team {team.info.id}"
        git.commit_work(workspace, before, repository)
    archived = archive_finished_run(team)
    detail = f"starting (the last run is in {archived})" if archived else "starting"
    return _reset(team, task, detail, repository)


def _prepare_worktree(facts: git.RepoFacts, task: str) -> Team:
    earlier = git.team_worktrees(facts)
    if earlier:
        _refuse_a_running_team(open_team(earlier[-1]))
    team_id = new_team_id()
    workspace, branch, base, pin = git.create_worktree(facts, team_id)
    team, _ = init_workspace(workspace, task=task, team_id=team_id)
    settings = Layout.of(facts.directory).config_toml
    if settings.is_file():  # the user's model settings for this directory
        shutil.copyfile(settings, team.layout.config_toml)
    repository = TeamRepository(
        mode=RepositoryMode.WORKTREE,
        user_dir=str(facts.directory),
        branch=branch,
        base=base,
        base_ref=facts.branch if facts.head else None,
        dirty=git.dirty_files(facts),
        git_dir=str(pin.git_dir),
        work_tree=str(pin.work_tree),
        private=git.private_dirs(facts),
    )
    return _reset(team, task, "starting", repository)


def _reset(team: Team, task: str, detail: str, repository: TeamRepository) -> Team:
    info = TeamInfo.read(team.layout.team_json).model_copy(
        update={
            "task": task,
            "status": TeamStatus.INITIALISED,
            "iteration": 0,
            "detail": detail,
            "tmux_session": None,
            "repository": repository,
        }
    )
    info.write(team.layout.team_json)
    return Team(team.layout, info)


def placement(repository: TeamRepository, workspace: Path) -> list[str]:
    """What the user is told at the start: where the team works, and what it leaves alone."""
    if repository.mode == RepositoryMode.OWN:
        return [f"the team works in {workspace}"]
    where = f"branch {repository.base_ref}" if repository.base_ref else "your checked-out commit"
    lines = [
        f"the team works on its own branch {repository.branch}, in a worktree at {workspace}; "
        f"{where} and your working tree are left as they are"
    ]
    if repository.dirty:
        shown = ", ".join(repository.dirty[:8]) + (" ..." if len(repository.dirty) > 8 else "")
        lines.append(
            f"{len(repository.dirty)} uncommitted or untracked files of yours stay where they "
            f"are, and the team does not see them (it starts from your last commit): {shown}. "
            "Commit them first if the task needs them."
        )
    return lines


def close_session(team_id: str, name: str) -> None:
    session = TeamSession.find(libtmux.Server(socket_name=socket_name(team_id)), name)
    if session is not None:
        session.kill()


def start_in_tmux(team: Team, command: list[str], *, resume: bool = False) -> TeamSession:
    """A new session with the coordinator in pane 0; on resume, a new coordinator pane in the
    session that is still there (its workers go on in their panes)."""
    if shutil.which("tmux") is None:
        raise UpError("tmux is not installed: install it, or use --runner subprocess")
    server = libtmux.Server(socket_name=socket_name(team.info.id))
    name = f"team-{team.info.id}"
    env = pane_environment()
    existing = TeamSession.find(server, name)
    if existing is not None and not resume:
        raise UpError(f"the tmux session {name} is still there: `team attach` or `team kill`")
    info = TeamInfo.read(team.layout.team_json).model_copy(update={"tmux_session": name})
    info.write(team.layout.team_json)
    if existing is not None:
        existing.spawn("coordinator", command, team.layout.workspace, env)
        return existing
    return TeamSession.create(server, name, team.layout.workspace, command, environment=env)


def start_child(team: Team, command: list[str], detach: bool) -> subprocess.Popen[bytes]:
    if detach:
        log = (team.layout.logs_dir / "coordinator.log").open("ab")
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=team_environment(),
        )
    return subprocess.Popen(command, env=team_environment())


def wait_for_outcome(team: Team, say: Callable[[str], None], alive: Callable[[], bool]) -> TeamInfo:
    """Poll team.json until the team finishes (or its coordinator is gone), saying each
    change of status."""
    last = None
    while True:
        info = TeamInfo.read(team.layout.team_json)
        shown = (info.status, info.iteration, info.detail)
        if shown != last:
            say(f"{info.status.value} (iteration {info.iteration}) {info.detail}".rstrip())
            last = shown
        if info.status in FINISHED:
            return info
        if not alive():
            info = TeamInfo.read(team.layout.team_json)
            if info.status not in FINISHED:
                raise UpError(
                    "the coordinator stopped before the team finished: see "
                    f"`team logs coordinator` and {team.layout.logs_dir}"
                )
            return info
        time.sleep(0.5)


def launch(
    team: Team,
    *,
    workers: int,
    max_iterations: int,
    runner: str,
    attach: bool,
    detach: bool,
    wait: bool,
    say: Callable[[str], None],
    unconfined: bool = False,
    resume: bool = False,
) -> int:
    """Start the coordinator; attach (tmux, on a terminal), return, or wait. The exit code:
    0 when the team met its Definition of Done (or was left running), 1 otherwise."""
    info = TeamInfo.read(team.layout.team_json).model_copy(update={"unconfined": unconfined})
    info.write(team.layout.team_json)
    if unconfined:
        say(UNCONFINED_NOTICE)
    command = coordinator_command(team.layout.workspace, workers, max_iterations, runner)
    # The directory the user named: every command finds the team from it.
    here = info.repository.user_dir if info.repository else team.layout.workspace
    alive: Callable[[], bool]
    if runner == "tmux":
        session = start_in_tmux(team, command, resume=resume)
        say(f"team {team.info.id} started in tmux session {session.name}")
        server = libtmux.Server(socket_name=socket_name(team.info.id))
        if attach and not detach and not wait:
            os.execvp(
                "tmux", ["tmux", "-L", socket_name(team.info.id), "attach", "-t", session.name]
            )
        launched = utc_now() - timedelta(seconds=1)

        def alive() -> bool:
            # The session outlives a crashed coordinator (remain-on-exit): ask its record.
            if TeamSession.find(server, session.name) is None:
                return False
            record = read_agent(team.layout, COORDINATOR)
            if record is None or record.started_at < launched:
                return utc_now() - launched < timedelta(seconds=60)  # still starting
            return is_running(record)
    else:
        child = start_child(team, command, detach or wait)
        if not detach and not wait:
            return child.wait()

        def alive() -> bool:
            return child.poll() is None

    if detach and not wait:
        watch = f"`team attach -w {here}`" if runner == "tmux" else f"`team logs -w {here} AGENT`"
        say(
            f"the team works in {team.layout.workspace}: `team status -w {here}`, "
            f"`team inbox -w {here} --follow`, {watch}"
        )
        return 0
    info = wait_for_outcome(team, say, alive)
    if info.repository is not None:
        say(info.repository.how_to_get_it())
    if runner == "tmux":
        say(f"the panes stay readable: `team attach -w {here}`; `team kill -w {here}` closes them")
    return 0 if info.status == TeamStatus.DONE else 1
