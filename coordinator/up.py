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
from coordinator.tmux import TeamSession, socket_name
from coordinator.workspace import Team, init_workspace
from protocol import COORDINATOR, TeamInfo, TeamStatus
from protocol.agents import is_running, read_agent
from protocol.messages import utc_now
from protocol.sandbox import NO_SANDBOX_HINT, UNCONFINED_NOTICE, probe_sandbox

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


def prepare(workspace: Path, task: str) -> Team:
    """The workspace ready for a new run: git, `.agents/`, the task in team.json."""
    workspace.mkdir(parents=True, exist_ok=True)
    git.ensure_repository(workspace)
    team, _ = init_workspace(workspace, task=task)
    info = TeamInfo.read(team.layout.team_json)
    if info.status in FINISHED and info.tmux_session:  # the last run's panes: close them
        close_session(team.info.id, info.tmux_session)
    if info.status not in (TeamStatus.INITIALISED, *FINISHED):
        raise UpError(
            f"a team is already at work in {workspace} ({info.status.value}): "
            "see `team status`, stop it with `team kill`, or carry on with `team resume`"
        )
    archived = archive_finished_run(team)
    detail = f"starting (the last run is in {archived})" if archived else "starting"
    info = info.model_copy(
        update={
            "task": task,
            "status": TeamStatus.INITIALISED,
            "iteration": 0,
            "detail": detail,
            "tmux_session": None,
        }
    )
    info.write(team.layout.team_json)
    return Team(team.layout, info)


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
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
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
        )
    return subprocess.Popen(command)


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
        say(
            f"the team works in {team.layout.workspace}: `team status`, "
            "`team inbox --follow`, `team attach`"
        )
        return 0
    info = wait_for_outcome(team, say, alive)
    if runner == "tmux":
        say(
            f"the panes stay readable: `team attach -w {team.layout.workspace}`; "
            f"`team kill -w {team.layout.workspace}` closes them"
        )
    return 0 if info.status == TeamStatus.DONE else 1
