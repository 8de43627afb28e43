"""Fixtures: a team with one assigned task, a scripted model, and a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protocol import (
    Task,
    TaskAssignment,
    TaskStore,
    list_inbox,
    make_message,
)
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.mailbox import create_inbox
from tests.conftest import TeamDir
from tests.processes import REPO

MODEL = "coder:7b"


@dataclass
class Team:
    dir: TeamDir
    server: ScriptedServer

    @property
    def layout(self):  # type: ignore[no-untyped-def]
        return self.dir.layout

    def assign(self, task: Task, worker: str) -> TaskAssignment:
        """Write the task, make it ready, claim it for `worker`, and send the assignment."""
        create_inbox(self.layout, worker)
        store = TaskStore(self.layout)
        store.add([task])
        store.promote_ready()
        assignment = store.claim(task.id, worker).assignment()
        self.dir.mailbox().send(
            make_message(assignment, team=self.dir.team_id, sender="coordinator", recipient=worker)
        )
        return assignment

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "OLLAMA_HOST": self.server.url,
            "TEAM_CONFIG": "/nonexistent",
            **{f"TEAM_MODEL_{r}": MODEL for r in ("BUILD", "EXPLORE", "TEST", "PLAN", "RCA")},
            "PYTHONPATH": str(REPO),
        }

    def start_worker(self, name: str, *args: str, role: str = "builder") -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent_worker",
                "--workspace",
                str(self.layout.workspace),
                "--name",
                name,
                "--role",
                role,
                *args,
            ],
            env=self.env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def coordinator_messages(self) -> list[Any]:
        entries = list_inbox(self.layout, "coordinator", team=self.dir.team_id)
        return [e.message for e in entries if e.message is not None]


StartTeam = Callable[[list[dict[str, Any]]], Team]


@pytest.fixture
def team(team_dir: TeamDir) -> Iterator[StartTeam]:
    servers: list[ScriptedServer] = []

    def start(rules: list[dict[str, Any]], capabilities: list[str] | None = None) -> Team:
        scenario = Scenario.model_validate(
            {
                "models": [
                    {"name": MODEL, "capabilities": capabilities or ["completion", "tools"]}
                ],
                "rules": rules,
            }
        )
        server = ScriptedServer(scenario).start()
        servers.append(server)
        return Team(team_dir, server)

    yield start  # type: ignore[misc]
    for server in servers:
        server.stop()


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def finish_worker(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker exit {proc.returncode}\n{out}\n{err}"
    return out, err


def write_workspace_file(workspace: Path, relative: str, text: str) -> None:
    path = workspace / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
