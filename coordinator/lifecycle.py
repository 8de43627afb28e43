"""Stopping a team (`team kill`) and clearing a finished run away before a new one. Nothing
of the team's work on disk is lost; no process of the team is left running."""

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

from coordinator.demo import is_demo, stop_scripted_model
from coordinator.processes import team_pids
from coordinator.tmux import TeamSession, sessions_in, socket_name
from protocol import (
    COORDINATOR,
    USER,
    Layout,
    Mailbox,
    ShutdownRequest,
    TaskFileError,
    TaskStatus,
    TaskStore,
    TeamFileError,
    TeamInfo,
    TeamStatus,
    TransitionConflict,
    UnknownRecipient,
    make_message,
)
from protocol.agents import AgentRecord, is_running, pid_alive, read_agents
from protocol.locks import LockTimeout
from protocol.team import modify_team

S = TaskStatus


def kill_team(
    layout: Layout,
    info: TeamInfo | None,
    grace: float,
    say: Callable[[str], None],
    *,
    close_sessions: bool = True,
    reason: str = "team kill",
) -> int:
    """Ask every running agent (the coordinator first) to stop; after `grace` seconds, end
    every process of the team still there, found from the agents' records and from the
    process table; close the tmux session. `info` is None when team.json is lost: then no
    message can be sent, and the processes are ended by signal. Returns how many processes
    had to be ended. `close_sessions=False` for a coordinator stopping its own team: its pane
    is in that session."""
    # Never this process (a coordinator forcing its own team to stop).
    running = [r for r in read_agents(layout) if is_running(r) and r.pid != os.getpid()]
    if info is not None:
        _ask_to_stop(layout, info, running, grace, say, reason)
    pids = {r.pid for r in running} | set(team_pids(layout.workspace))
    if info is None:
        for pid in sorted(pids):  # SIGTERM is the agents' "stop at a safe point"
            _signal(pid, signal.SIGTERM)
        if pids:
            say(f"team.json is unreadable: asked {len(pids)} processes to stop by signal")
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    names = {r.pid: r.name for r in running}
    ended = 0
    for pid in sorted(pids | set(team_pids(layout.workspace))):
        if pid_alive(pid):
            say(f"{names.get(pid, f'pid {pid}')} did not stop within {grace:g}s: ending it")
            _signal(pid, signal.SIGKILL)
            ended += 1
    _stop_demo_model(layout)
    try:  # the state first: closing the session may end the process that runs this
        _release_tasks(layout, say)
        if info is not None:
            modify_team(layout.team_json, lambda info: _stopped_unless_finished(info, reason))
    except (TeamFileError, LockTimeout, OSError) as exc:
        say(f"the team's state was not updated: {exc}")
    if close_sessions:
        _close_sessions(layout, info, say)
    return ended


def _stopped_unless_finished(info: TeamInfo, reason: str) -> dict[str, object]:
    if info.status in (TeamStatus.DONE, TeamStatus.FAILED):
        return {}
    return {"status": TeamStatus.STOPPED, "detail": f"stopped by {reason}"}


def _signal(pid: int, signum: int) -> None:
    # Gone meanwhile, or (not as root) a process of another user: not ours to end.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _ask_to_stop(
    layout: Layout,
    info: TeamInfo,
    running: list[AgentRecord],
    grace: float,
    say: Callable[[str], None],
    reason: str,
) -> None:
    mailbox = Mailbox(layout, info.id)
    for record in sorted(running, key=lambda r: r.name != COORDINATOR):
        request = ShutdownRequest(reason=reason, grace_seconds=grace)
        with contextlib.suppress(UnknownRecipient, OSError):  # no inbox: it is ended below
            mailbox.send(make_message(request, team=info.id, sender=USER, recipient=record.name))
        say(f"asked {record.name} (pid {record.pid}) to stop")


def _close_sessions(layout: Layout, info: TeamInfo | None, say: Callable[[str], None]) -> None:
    sessions = []
    if info is not None:
        name = info.tmux_session or f"team-{info.id}"  # the default, if team.json lost it
        found = TeamSession.find(libtmux.Server(socket_name=socket_name(info.id)), name)
        sessions = [found] if found is not None else []
    if not sessions:  # team.json lost, or it named another session: look by the workspace
        sessions = sessions_in(layout.workspace)
    for session in sessions:
        name = session.name
        session.kill()
        say(f"closed tmux session {name}")


def _stop_demo_model(layout: Layout) -> None:
    stop_scripted_model(layout.workspace)  # team demo's scripted model server, if any


def _release_tasks(layout: Layout, say: Callable[[str], None]) -> None:
    """Tasks left assigned or running by the processes just ended: failed, at no cost of an
    attempt (the kill was not their fault), so that `team resume` builds them again."""
    if not layout.tasks_dir.is_dir():
        return
    store = TaskStore(layout)
    for task_id in store.ids():
        try:
            task = store.get(task_id)
        except (TaskFileError, KeyError):
            continue
        if task.status in (S.ASSIGNED, S.RUNNING):
            with contextlib.suppress(TransitionConflict, TaskFileError):
                store.transition(
                    task.id,
                    task.status,
                    S.FAILED,
                    by=USER,
                    note="stopped by team kill",
                    costs_attempt=False,
                )
                say(f"task {task.id} stopped; `team resume` builds it again")


def archive_finished_run(layout: Layout) -> str | None:
    """Before a new task in the same workspace: move everything of the last run (plan, tasks,
    memory, snapshots, inboxes, agents' records, logs, events and traces) into
    `.agents/history/<time>/`, so that nothing of it is handled again. Returns where, or None
    if there was nothing."""
    if not layout.plan_json.exists() and not any(_task_files(layout)):
        return None
    leftovers = [
        p
        for p in (
            layout.plan_json,
            layout.plan_proposal_json,
            layout.tasks_dir,
            layout.memory_json,
            layout.snapshots_dir,
            layout.inboxes_dir,
            layout.agents_dir,
            layout.logs_dir,
            layout.events_jsonl,
            layout.traces_dir,
        )
        if p.exists()
    ]
    if is_demo(layout.config_toml):  # the scripted model is not for a real task
        leftovers.append(layout.config_toml)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    target = layout.root / "history" / stamp
    target.mkdir(parents=True, exist_ok=True)
    for path in leftovers:
        shutil.move(str(path), str(target / path.name))
    layout.create_dirs()
    return str(target)


def _task_files(layout: Layout) -> list[Path]:
    return list(layout.tasks_dir.glob("*.json")) if layout.tasks_dir.is_dir() else []
