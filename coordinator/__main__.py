"""`python -m coordinator --workspace DIR`: the coordinator process (pane 0 of the team)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from coordinator.run import Coordinator
from coordinator.runners import Runner, SubprocessRunner, TmuxRunner
from protocol import Layout, NotATeamWorkspace, TeamFileError, TeamInfo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coordinator")
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-iterations", type=int, default=5)
    parser.add_argument("--runner", choices=["tmux", "subprocess"], default="tmux")
    options = parser.parse_args(argv)
    try:
        layout = Layout.of(options.workspace).require()
        team = TeamInfo.read(layout.team_json)
    except (NotATeamWorkspace, TeamFileError) as exc:
        print(f"coordinator: {exc}", file=sys.stderr)
        return 2
    runner: Runner
    if options.runner == "tmux":
        runner = TmuxRunner.for_team(layout, team.id, team.tmux_session or "", [])
    else:
        runner = SubprocessRunner(layout)
    coordinator = Coordinator(layout, runner, options.workers, options.max_iterations)
    # The first Ctrl-C or SIGTERM stops at the next safe point; a second one at once.
    signals = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)
        if len(signals) > 1:
            raise KeyboardInterrupt
        coordinator.request_stop(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return coordinator.run()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
