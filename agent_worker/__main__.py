"""`python -m agent_worker --workspace DIR --name NAME --role builder|explorer|tester`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent_worker.loop import Limits
from agent_worker.worker import Worker
from protocol import Layout, NotATeamWorkspace, TeamFileError, events
from protocol.config import ConfigError, load_config
from protocol.team import backup_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_worker", description="Run one agent of a team."
    )
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--name", required=True, help="the agent's name (its inbox)")
    parser.add_argument("--role", choices=["builder", "explorer", "tester"], default="builder")
    # Defaults: `[team]` of the configuration (protocol/config.py TeamSettings).
    parser.add_argument("--max-rounds", type=int, help="model rounds per task attempt")
    parser.add_argument("--max-seconds", type=float, help="seconds per task attempt")
    parser.add_argument("--max-tasks", type=int, help="exit after this many tasks")
    parser.add_argument("--max-idle", type=float, help="exit after this many idle seconds")
    options = parser.parse_args(argv)
    try:
        layout = Layout.of(options.workspace)
        if not layout.exists() and not backup_of(layout.team_json).is_file():
            # A deleted team.json with its last good copy there is not "no team": the
            # coordinator writes it again; the worker starts from the copy.
            raise NotATeamWorkspace(layout.workspace)
        settings = load_config(layout.config_toml).team
        limits = Limits(
            options.max_rounds or settings.max_rounds,
            options.max_seconds or settings.max_seconds,
            settings.task_max_tokens,
        )
        events.set_process_agent(options.name)
        worker = Worker(
            layout,
            options.name,
            options.role,
            limits=limits,
            max_tasks=options.max_tasks,
            max_idle=options.max_idle,
        )
    except (NotATeamWorkspace, TeamFileError, ConfigError, ValueError) as exc:
        print(f"agent_worker: {exc}", file=sys.stderr)
        return 2
    try:
        return worker.run()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
