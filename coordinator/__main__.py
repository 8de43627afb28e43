"""`python -m coordinator --workspace DIR`: the coordinator process (pane 0 of the team).

It first takes the workspace's coordinator lock and holds it until it exits: one team per
workspace, however many `team up`, `team resume` or `team demo` are typed at once."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path

from coordinator.registration import SpawnFailed
from coordinator.run import Coordinator
from coordinator.runners import Runner, SubprocessRunner, TmuxRunner
from protocol import (
    COORDINATOR,
    Layout,
    NotATeamWorkspace,
    TeamFileError,
    TeamInfo,
    TeamStatus,
    events,
)
from protocol.config import ConfigError, load_config
from protocol.runlock import coordinator_lock, read_holder, take
from protocol.team import damage_advice, update_team

# A `team up` probing the lock holds it for an instant: wait that out, never more.
LOCK_WAIT = 5.0


def worker_limits(max_rounds: int | None, max_seconds: float | None) -> list[str]:
    """The options that reach every worker's command line (else the config's `[team]`)."""
    extra = []
    if max_rounds:
        extra += ["--max-rounds", str(max_rounds)]
    if max_seconds:
        extra += ["--max-seconds", f"{max_seconds:g}"]
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coordinator")
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--max-iterations", type=int, default=None)
    parser.add_argument("--runner", choices=["tmux", "subprocess"], default="tmux")
    parser.add_argument("--max-rounds", type=int, default=None, help="per task, for workers")
    parser.add_argument("--max-seconds", type=float, default=None, help="per task attempt")
    parser.add_argument("--max-tokens", type=int, default=None, help="for the whole team run")
    options = parser.parse_args(argv)
    events.set_process_agent(COORDINATOR)
    try:
        layout = Layout.of(options.workspace).require()
    except NotATeamWorkspace as exc:
        print(f"coordinator: {exc}", file=sys.stderr)
        return 2
    try:
        lock = take(coordinator_lock(layout), "coordinator", timeout=LOCK_WAIT)
    except OSError as exc:
        return _fail(layout, f"cannot take {coordinator_lock(layout)}: {exc.strerror or exc}")
    if lock is None:
        holder = read_holder(coordinator_lock(layout))
        who = f" (pid {holder.pid})" if holder else ""
        return _fail(layout, f"another coordinator{who} runs this team already")
    try:
        team = TeamInfo.read(layout.team_json)
        settings = load_config(layout.config_toml).team
    except TeamFileError as exc:
        return _fail(layout, damage_advice(layout.team_json, exc))
    except ConfigError as exc:
        return _fail(layout, str(exc))
    extra = worker_limits(options.max_rounds, options.max_seconds)
    runner: Runner
    try:
        if options.runner == "tmux":
            runner = TmuxRunner.for_team(layout, team.id, team.tmux_session or "", extra)
        else:
            runner = SubprocessRunner(layout, extra)
    except SpawnFailed as exc:
        return _fail(layout, f"{exc}: `team resume` starts a new session")
    coordinator = Coordinator(
        layout,
        runner,
        options.workers or settings.workers,
        options.max_iterations or settings.max_iterations,
        # Into a log file (--detach, --wait): the pane's lines are in the log already.
        echo=sys.stdout.isatty(),
        max_tokens=options.max_tokens or settings.max_tokens,
    )
    coordinator.register("starting")  # the lock is ours: say whose it is
    # The first Ctrl-C or SIGTERM stops at the next safe point; a second one at once.
    signals = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)
        if len(signals) > 1:
            raise KeyboardInterrupt
        coordinator.request_stop(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # A closing tmux session must not end the coordinator before it has written its state.
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return coordinator.run()
    except KeyboardInterrupt:  # the second Ctrl-C: no safe point, end the workers now
        force_stop(layout)
        return 130
    finally:
        lock.release()


def _fail(layout: Layout, message: str) -> int:
    """An error before the coordinator's pane has anything else: on stderr (the pane, which
    may close) and in its log (`team logs coordinator`)."""
    print(f"coordinator: {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError), layout.log_file("coordinator").open("a") as log:
        log.write(f"coordinator: {message}\n")
    return 2


def force_stop(layout: Layout) -> None:
    """End every worker of the team at once and say so in team.json; their tasks are freed
    at no cost (as `team kill` does), so `team resume` builds them again."""
    from coordinator.lifecycle import kill_team  # only on this path: keep start-up light

    with contextlib.suppress(TeamFileError, OSError):
        info = update_team(
            layout.team_json, status=TeamStatus.STOPPED, detail="stopped at once (Ctrl-C twice)"
        )
        # The session stays: this process's own pane is in it (and shows what happened).
        kill_team(layout, info, 0.0, lambda line: print(line, flush=True), close_sessions=False)


if __name__ == "__main__":
    sys.exit(main())
