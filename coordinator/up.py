"""`team up`: set up the workspace, start the coordinator (in tmux, or as a child process),
and attach, return, or wait for the outcome."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import libtmux
from libtmux.exc import LibTmuxException

from coordinator import git
from coordinator.lifecycle import archive_finished_run, kill_team
from coordinator.processes import team_pids
from coordinator.runners import pane_environment, team_environment
from coordinator.tmux import TeamSession, attach_hint, socket_name
from coordinator.views import clock
from coordinator.workspace import (
    Team,
    create_team_inboxes,
    enclosing_team,
    init_workspace,
    open_team,
)
from protocol import COORDINATOR, Layout, TeamFileError, TeamInfo, TeamStatus
from protocol.agents import AgentRecord, is_running, read_agent
from protocol.locks import HeldLock
from protocol.messages import utc_now
from protocol.runlock import coordinator_lock, is_held, read_holder, take
from protocol.sandbox import NO_SANDBOX_HINT, UNCONFINED_NOTICE, probe_sandbox
from protocol.team import (
    RepositoryMode,
    TeamRepository,
    damage_advice,
    new_team_id,
    read_team_or_backup,
    update_team,
)

FINISHED = {TeamStatus.DONE, TeamStatus.FAILED, TeamStatus.STOPPED}
INTERRUPTED = "Ctrl-C (or a signal) on the waiting command"


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
    workspace: Path,
    workers: int | None,
    max_iterations: int | None,
    runner: str,
    max_rounds: int | None = None,
    max_seconds: float | None = None,
    max_tokens: int | None = None,
) -> list[str]:
    """`python -m coordinator ...`; what is left out comes from the config's `[team]`."""
    command = [
        sys.executable,
        "-P",  # the working directory (the workspace, a model's files) never shadows a module
        "-m",
        "coordinator",
        "--workspace",
        str(workspace),
        "--runner",
        runner,
    ]
    for option, value in (
        ("--workers", workers),
        ("--max-iterations", max_iterations),
        ("--max-rounds", max_rounds),
        ("--max-seconds", max_seconds),
        ("--max-tokens", max_tokens),
    ):
        if value is not None:
            command += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    return command


# --- one team per workspace ------------------------------------------------------------------


def take_start_lock(directory: Path, what: str) -> HeldLock:
    """The lock a `team up`/`resume`/`demo` holds from its first check until the coordinator
    holds the workspace's own lock: a second one started meanwhile stops here at once, so no
    two can both decide that the workspace is free. Kept outside the directory (see
    `start_lock_path`)."""
    _refuse_inside_a_team(directory)
    path = start_lock_path(directory)
    try:
        held = take(path, what)
    except OSError as exc:  # a read-only workspace, a lock file that is not ours
        raise UpError(cannot_write(directory, exc)) from None
    if held is None:
        holder = read_holder(path)
        who = f"`{holder.what}` (pid {holder.pid}, since {clock(holder.since)})" if holder else ""
        raise UpError(
            f"another {who or 'team command'} is starting a team for {directory} right now; "
            "wait for it, then see `team status`"
        )
    return held


def start_lock_path(directory: Path) -> Path:
    """Where the start lock for `directory` lives: in a folder of this user's, named after the
    directory's resolved path, and never in the directory or its repository. What `team up`
    does there (git init, team.json, a worktree) must not move the lock while it is held: a
    second `team up` that came a moment later would decide from the changed directory, look
    elsewhere, find no lock and start a second team."""
    folder = lock_folder()
    name = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = folder.lstat()
    except OSError as exc:
        raise UpError(
            f"cannot make {folder}, where the start locks of team commands are kept: "
            f"{exc.strerror or exc}; set XDG_RUNTIME_DIR to a folder of yours you can write to"
        ) from None
    # In a shared temporary directory, a folder someone else made (or a link) is not ours.
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        raise UpError(
            f"{folder}, where the start locks of team commands are kept, is not a folder of "
            "yours that only you can write to: remove it, or set XDG_RUNTIME_DIR to one"
        )
    return folder / f"start-{name}.lock"


def lock_folder() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
    return base / f"agent-team-{os.getuid()}"


def cannot_write(directory: Path, exc: OSError) -> str:
    return (
        f"cannot set up a team in {directory}: {exc.strerror or exc} "
        f"({exc.filename or directory}); run it in a directory you can write to, "
        "or name one with -w DIR"
    )


def running_coordinator(layout: Layout) -> AgentRecord | None:
    """The coordinator record of the team that holds this workspace now, if one does."""
    if not is_held(coordinator_lock(layout)):
        return None
    record = read_agent(layout, COORDINATOR)
    holder = read_holder(coordinator_lock(layout))
    if record is None and holder is not None:
        return AgentRecord(
            name=COORDINATOR, role="coordinator", pid=holder.pid, started_at=holder.since
        )
    return record or AgentRecord(name=COORDINATOR, role="coordinator", pid=0)


def refuse_a_running_coordinator(layout: Layout, info: TeamInfo, here: Path) -> None:
    """`UpError` naming the team at work in the workspace: id, pid, since when, and how to
    watch or stop it."""
    record = running_coordinator(layout)
    if record is None:
        return
    session = info.tmux_session
    watch = attach_hint(info.id, session, here) if session else f"`team logs -w {here} coordinator`"
    raise UpError(
        f"team {info.id} is at work in {layout.workspace} ({info.status.value}): its "
        f"coordinator (pid {record.pid}) runs since {clock(record.started_at)}; watch it with "
        f"{watch}, stop it with `team kill -w {here}`"
    )


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
    except OSError as exc:
        raise UpError(cannot_write(directory, exc)) from None


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


def _refuse_a_running_team(team: Team, here: Path) -> None:
    info = team.info
    refuse_a_running_coordinator(team.layout, info, here)
    if info.status not in (TeamStatus.INITIALISED, *FINISHED):
        raise UpError(
            f"team {info.id} in {team.layout.workspace} stopped without finishing "
            f"({info.status.value}; its coordinator is not running): carry on with "
            f"`team resume -w {here}`, or `team kill -w {here}` and then `team up` anew"
        )
    left = team_pids(team.layout.workspace)
    if left:  # workers an earlier coordinator started, still at work on the old run
        raise UpError(
            f"processes of the last run of team {info.id} still run in {team.layout.workspace} "
            f"(pids {', '.join(map(str, left))}): stop them with `team kill -w {here}` first"
        )
    if info.tmux_session:  # the last run's panes: close them
        close_session(info.id, info.tmux_session)


def _prepare_in_place(workspace: Path, task: str) -> Team:
    try:
        # .agents/ first: a directory that cannot be written to is said as such, before git
        # init fails there with words of its own.
        Layout.of(workspace).root.mkdir(parents=True, exist_ok=True)
        created = git.init_own(workspace)
        team, _ = init_workspace(workspace, task=task)
    except OSError as exc:
        raise UpError(cannot_write(workspace, exc)) from None
    except TeamFileError as exc:
        raise UpError(damage_advice(Layout.of(workspace).team_json, exc)) from None
    _refuse_a_running_team(team, workspace)
    repository = TeamRepository(
        mode=RepositoryMode.OWN,
        user_dir=str(workspace.absolute()),
        git_dir=str((workspace / ".git").resolve()),
        work_tree=str(workspace.resolve()),
    )
    if created:  # what was there before, so that the team's work is a diff on top of it
        before = f"agent-team: {workspace.name} before team {team.info.id}"
        git.commit_work(workspace, before, repository)
    archived = archive_finished_run(team.layout)
    create_team_inboxes(team.layout, team.info)
    detail = f"starting (the last run is in {archived})" if archived else "starting"
    return _reset(team, task, detail, repository)


def _prepare_worktree(facts: git.RepoFacts, task: str) -> Team:
    earlier = git.team_worktrees(facts)
    for workspace in earlier:  # any team still at work for this directory, damaged or not
        layout = Layout.of(workspace)
        info, _ = read_team_or_backup(layout.team_json)
        if info is not None:
            refuse_a_running_coordinator(layout, info, facts.directory)
    if earlier:
        # A damaged earlier team is no reason to refuse a new one.
        with contextlib.suppress(TeamFileError):
            _refuse_a_running_team(open_team(earlier[-1]), facts.directory)
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
    info = update_team(
        team.layout.team_json,
        task=task,
        status=TeamStatus.INITIALISED,
        iteration=0,
        detail=detail,
        tmux_session=None,
        repository=repository,
    )
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


def start_in_tmux(
    team: Team, command: list[str], *, resume: bool = False
) -> tuple[TeamSession, str]:
    """A new session with the coordinator in pane 0; on resume, a new coordinator pane in the
    session that is still there (its workers go on in their panes). Returns the session and
    the coordinator's pane id."""
    if shutil.which("tmux") is None:
        raise UpError("tmux is not installed: install it, or use --runner subprocess")
    server = libtmux.Server(socket_name=socket_name(team.info.id))
    name = f"team-{team.info.id}"
    env = pane_environment()
    try:
        existing = TeamSession.find(server, name)
        if existing is not None and not resume:
            existing.kill()  # the panes of a run that ended (no coordinator holds the team)
            existing = None
        update_team(team.layout.team_json, tmux_session=name)
        if existing is not None:
            pane = existing.spawn("coordinator", command, team.layout.workspace, env)
            return existing, pane.pane_id
        session = TeamSession.create(server, name, team.layout.workspace, command, environment=env)
        return session, str(session.window.panes[0].pane_id)
    except LibTmuxException as exc:
        raise UpError(
            f"tmux could not start the team's session {name}: {exc}; "
            "see `tmux -V`, or run without tmux: --runner subprocess"
        ) from None


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
        info = _read_for_waiting(team)
        shown = (info.status, info.iteration, info.detail)
        if shown != last:
            say(f"{info.status.value} (iteration {info.iteration}) {info.detail}".rstrip())
            last = shown
        if info.status in FINISHED:
            return info
        if not alive():
            info = _read_for_waiting(team)
            if info.status not in FINISHED:
                raise UpError(
                    "the coordinator stopped before the team finished: see "
                    f"`team logs coordinator` and {team.layout.logs_dir}; "
                    "`team resume` carries on from what is on disk"
                )
            return info
        time.sleep(0.5)


def _read_for_waiting(team: Team) -> TeamInfo:
    """team.json, or while it is damaged its last good copy: the coordinator writes it again
    at its next change, so waiting goes on."""
    info, error = read_team_or_backup(team.layout.team_json)
    if info is None:
        assert error is not None
        raise UpError(damage_advice(team.layout.team_json, error))
    return info


def stop_on_interrupt(team: Team, say: Callable[[str], None]) -> None:
    """Ctrl-C while waiting on the team: stop it as `team kill` would; a second Ctrl-C
    ends what is left at once. Nothing on disk is lost either way."""
    say("Ctrl-C: stopping the team as `team kill` does (Ctrl-C again to end it at once)")
    try:
        kill_team(team.layout, team.info, 30.0, say, reason=INTERRUPTED)
    except KeyboardInterrupt:
        say("Ctrl-C again: ending the team's processes now")
        with _interrupts_ignored():
            kill_team(team.layout, team.info, 0.0, say, reason=INTERRUPTED)
    say("the team is stopped; `team resume` carries on from where it was")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """While the last clean-up runs: a third Ctrl-C must not leave it half done."""
    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = [signal.signal(signum, signal.SIG_IGN) for signum in signums]
    try:
        yield
    finally:
        for signum, handler in zip(signums, previous, strict=True):
            signal.signal(signum, handler)


def await_coordinator(
    team: Team,
    since: datetime,
    died: Callable[[], bool],
    timeout: float = 60.0,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Until the coordinator just started holds the workspace (it registers right after it
    took the lock); `UpError` with where to look if it stopped first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_agent(team.layout, COORDINATOR)
        if record is not None and record.started_at >= since and is_running(record):
            return
        if died():
            record = read_agent(team.layout, COORDINATOR)
            if record is not None and record.started_at >= since:
                return  # it ran, and is already done
            last = output().strip()
            raise UpError(
                "the coordinator stopped as it started"
                + (f":\n{last}\n" if last else ": ")
                + f"see `team logs coordinator` and {team.layout.logs_dir}"
            )
        time.sleep(0.05)
    raise UpError(f"the coordinator did not start within {timeout:g}s: see `team logs coordinator`")


def launch(
    team: Team,
    *,
    workers: int | None,
    max_iterations: int | None,
    runner: str,
    attach: bool,
    detach: bool,
    wait: bool,
    say: Callable[[str], None],
    unconfined: bool = False,
    resume: bool = False,
    started: Callable[[], None] = lambda: None,
    max_rounds: int | None = None,
    max_seconds: float | None = None,
    max_tokens: int | None = None,
) -> int:
    """Start the coordinator; attach (tmux, on a terminal), return, or wait. `started` is
    called once the coordinator holds the workspace (the caller's start lock can go). The
    exit code: 0 when the team met its Definition of Done (or was left running), 1
    otherwise, 130 when Ctrl-C stopped it."""
    info = update_team(team.layout.team_json, unconfined=unconfined)
    team = Team(team.layout, info)
    if unconfined:
        say(UNCONFINED_NOTICE)
    command = coordinator_command(
        team.layout.workspace,
        workers,
        max_iterations,
        runner,
        max_rounds,
        max_seconds,
        max_tokens,
    )
    # The directory the user named: every command finds the team from it.
    here = info.repository.user_dir if info.repository else team.layout.workspace
    launched = utc_now() - timedelta(seconds=1)
    alive: Callable[[], bool]
    if runner == "tmux":
        session, pane_id = start_in_tmux(team, command, resume=resume)
        server = libtmux.Server(socket_name=socket_name(team.info.id))

        def alive() -> bool:
            # The pane stays after its process ended (remain-on-exit): ask the pane, then the
            # coordinator's record.
            if TeamSession.find(server, session.name) is None or session.pane_dead(pane_id):
                return False
            record = read_agent(team.layout, COORDINATOR)
            if record is None or record.started_at < launched:
                return True  # still starting
            return is_running(record)

        def output() -> str:
            return session.last_lines(pane_id)
    else:
        child = start_child(team, command, detach or wait)

        def alive() -> bool:
            return child.poll() is None

        def output() -> str:
            return ""

    # A closed terminal (SIGHUP) or a `timeout`/`kill` (SIGTERM) means stop, as Ctrl-C does:
    # never a team left running with nobody told.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    try:
        await_coordinator(team, launched, lambda: not alive(), output=output)
        started()
        if runner == "tmux":
            say(
                f"team {team.info.id} started in tmux session {session.name}, on a tmux server "
                f"of its own: watch it with {attach_hint(team.info.id, session.name, here)}"
            )
            if attach and not detach and not wait:
                os.execvp(
                    "tmux", ["tmux", "-L", socket_name(team.info.id), "attach", "-t", session.name]
                )
        elif not detach and not wait:
            return _wait_for_child(team, child, say)
        if detach and not wait:
            watch = (
                f"`team attach -w {here}`" if runner == "tmux" else f"`team logs -w {here} AGENT`"
            )
            say(
                f"the team works in {team.layout.workspace}: `team status -w {here}`, "
                f"`team inbox -w {here} --follow`, {watch}; `team kill -w {here}` stops it"
            )
            return 0
        info = wait_for_outcome(team, say, alive)
    except KeyboardInterrupt:  # the coordinator is started: Ctrl-C stops the team, not us
        stop_on_interrupt(team, say)
        return 130
    # A stopped team's panes are being closed by whoever stopped it (`team kill`), and its
    # work is not a result yet.
    stopped = info.status == TeamStatus.STOPPED
    if info.repository is not None and not stopped:
        say(info.repository.how_to_get_it())
    if stopped:
        say(f"the team was stopped: `team resume -w {here}` carries on")
    if runner == "tmux" and not stopped and TeamSession.find(server, session.name) is not None:
        say(f"the panes stay readable: `team attach -w {here}`; `team kill -w {here}` closes them")
    return 0 if info.status == TeamStatus.DONE else 1


def _wait_for_child(team: Team, child: subprocess.Popen[bytes], say: Callable[[str], None]) -> int:
    """The coordinator in the foreground: Ctrl-C reaches it too (one process group), and it
    stops the team at its next safe point; a second Ctrl-C ends every process at once."""
    try:
        return child.wait()
    except KeyboardInterrupt:
        pass
    say("Ctrl-C: the coordinator stops the team at its next safe point (Ctrl-C again: at once)")
    try:
        child.wait()
    except KeyboardInterrupt:
        with _interrupts_ignored():
            kill_team(team.layout, team.info, 0.0, say, reason=INTERRUPTED)
    with _interrupts_ignored():
        kill_team(team.layout, team.info, 10.0, say, reason=INTERRUPTED)  # what outlived it
    say("the team is stopped; `team resume` carries on from where it was")
    return 130
