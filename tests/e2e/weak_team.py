"""One whole `team up --wait` run against a scripted weak model, and what it left behind, read
from the outside: task files, the event log, `team status --json`, the workspace, and the
requests the model server was sent (what the model was told)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from protocol import Layout, Task, TaskStore, TeamInfo
from protocol.events import read_events
from protocol.llm.scripted import LoggedRequest, Scenario, ScriptedServer
from protocol.llm.weak_models import FINISH
from protocol.reports import ExplorationReport
from tests.processes import REPO

MODEL = "weak"
ROLES = ("PLAN", "BUILD", "EXPLORE", "TEST", "RCA")
# Checked against the strict schema: a report that does not fit it would be refused.
EXPLORATION = ExplorationReport.model_validate(
    {"summary": "an empty workspace", "files": [], "languages": [], "entry_points": [],
     "test_setup": "none yet", "conventions": []}
).model_dump()  # fmt: skip


def module(name: str, path: str, role: str = "builder", depends_on: tuple[str, ...] = ()) -> Any:
    return {"name": name, "description": f"the {name} module", "role": role,
            "files": [{"path": path, "purpose": name}], "depends_on": list(depends_on)}  # fmt: skip


def criterion(id: str, kind: str, target: str) -> dict[str, str]:
    return {"id": id, "description": f"{kind} {target}", "verification_type": kind,
            "target_file": target}  # fmt: skip


# A doubler with a planted bug: the plan, and the first build's file, of more than one run.
DOUBLE_BUGGY = "def double(n: int) -> int:\n    return n + n + 1\n"
DOUBLER_PLAN = {
    "summary": "a doubler",
    "modules": [module("double", "double.py")],
    "dod": [criterion("D1", "command", "python3 -c 'import double; assert double.double(2) == 4'")],
}


def common_rules() -> list[dict[str, Any]]:
    """What every weak team's scenario ends with: an explorer that looks and finishes, and
    any request no other rule took answered with `finish`."""
    return [
        {"match": {"schema": "ExplorationReport"}, "reply": {"json": EXPLORATION}},
        {"match": {"role": "explore"}, "reply": FINISH},
        {"reply": FINISH},
    ]


@dataclass
class WeakRun:
    workspace: Path
    server: ScriptedServer
    done: subprocess.CompletedProcess[str]
    env: dict[str, str]

    @property
    def layout(self) -> Layout:
        return Layout.of(self.workspace)

    @property
    def output(self) -> str:
        return self.done.stdout + self.done.stderr

    def info(self) -> TeamInfo:
        return TeamInfo.read(self.layout.team_json)

    def task(self, path: str) -> Task:
        """The last task that owns `path` (a fix task comes after the build)."""
        return [t for t in TaskStore(self.layout).all() if path in t.files][-1]

    @cached_property
    def events(self) -> list[Any]:
        return list(read_events(self.layout.events_jsonl).events)

    def task_events(self, path: str) -> list[Any]:
        ids = {t.id for t in TaskStore(self.layout).all() if path in t.files}
        return [e for e in self.events if getattr(e, "task_id", None) in ids]

    def tool_calls(self, path: str) -> list[Any]:
        return [e for e in self.task_events(path) if e.kind == "tool_call"]

    def failures(self, path: str) -> list[Any]:
        return [e for e in self.task_events(path) if e.kind == "task" and e.status == "failed"]

    def requests(self, path: str) -> list[LoggedRequest]:
        """The build requests of the tasks that own `path`, in the order they were sent."""
        return [r for r in self.server.log
                if path in [f.strip() for f in (r.seen.files or "").split(",")]]  # fmt: skip

    def told(self, path: str, after: int) -> str:
        """What the agent building `path` was told after its answer number `after` (from 1):
        the tool results and user messages of the next request that came after it."""
        body = self.requests(path)[after].body
        messages = body["messages"]
        answered = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
        start = answered[after - 1] + 1 if len(answered) >= after else 0
        return "\n".join(str(m.get("content") or "") for m in messages[start:])

    def status(self) -> dict[str, Any]:
        shown = subprocess.run(
            [sys.executable, "-m", "coordinator.cli", "-w", str(self.workspace), "status",
             "--json"], env=self.env, capture_output=True, text=True, cwd=REPO, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stdout + shown.stderr
        return dict(json.loads(shown.stdout))

    def coordinator_log(self) -> str:
        return self.layout.log_file("coordinator").read_text()


def weak_env(server: ScriptedServer, config: Path) -> dict[str, str]:
    """Every role on the scripted server through the OpenAI-compatible API (as llama.cpp's
    server), with the settings of `config`."""
    env = {k: v for k, v in os.environ.items() if k != "TEAM_WORKSPACE"}
    return {
        **env,
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "TEAM_CONFIG": str(config),
        **{f"TEAM_MODEL_{role}": f"openai:{MODEL}" for role in ROLES},
        "PYTHONPATH": str(REPO),
    }


def run_weak_team(
    folder: Path,
    rules: list[dict[str, Any]],
    *,
    settings: str = "",
    args: tuple[str, ...] = (),
    models: tuple[str, ...] = (),
) -> WeakRun:
    """`team up --wait` in `folder/ws` with the scripted model answering by `rules` (then
    `common_rules`); `settings` is TOML added to the user config (no retries by the client);
    `models` are served beside the weak one (a cascade's next models)."""
    config = folder / "config.toml"
    config.write_text("[limits]\nmax_retries = 0\n" + settings)
    scenario = Scenario.model_validate(
        {"models": [{"name": m} for m in (MODEL, *models)], "rules": [*rules, *common_rules()]}
    )
    server = ScriptedServer(scenario).start()
    try:
        env = weak_env(server, config)
        workspace = folder / "ws"
        done = subprocess.run(
            [sys.executable, "-m", "coordinator.cli", "-w", str(workspace), "up", "a weak team",
             "--runner", "subprocess", "--wait", *args],
            env=env, capture_output=True, text=True, timeout=240, cwd=REPO,
        )  # fmt: skip
    finally:
        server.stop()
    run = WeakRun(workspace, server, done, env)
    assert "Traceback" not in run.output, run.output
    return run
