"""Deterministic first, through the real coordinator and a scripted model server: an empty
workspace is planned with no explorer; a non-empty one's explorer is given the facts code
found and only its judgement is kept; criteria the planner gave that cannot be checked are
replaced by those the plan implies, said in the pane, and written with the plan."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from coordinator.run import Coordinator
from coordinator.runners import SubprocessRunner
from protocol import COORDINATOR, Receiver, TaskStore
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.plan import load_plan
from tests.conftest import TeamDir
from tests.processes import REPO

MODEL = "coder:7b"
PLAN = {
    "summary": "hello.py with greet(name), and its test",
    "modules": [
        {"name": "hello", "description": "the greeting", "role": "builder", "depends_on": [],
         "files": [{"path": "hello.py", "purpose": "greet(name)"}]},
        {"name": "tests", "description": "tests of hello.py", "role": "tester",
         "depends_on": ["hello"], "files": [{"path": "test_hello.py", "purpose": "pytest"}]},
    ],
    # What a weak planner gives: a criterion on a file nobody writes.
    "dod": [{"id": "D1", "description": "it works", "verification_type": "file_exists",
             "target_file": "greeting.txt"}],
}  # fmt: skip
EXPLORED = {
    "summary": "a small CLI project",
    "files": ["ghost.py"],
    "languages": ["Rust"],
    "entry_points": [],
    "test_setup": "none",
    "conventions": ["functions have type hints"],
}


def scripted(rules: list[dict[str, Any]]) -> ScriptedServer:
    return ScriptedServer(Scenario.model_validate({"models": [{"name": MODEL}], "rules": rules}))


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    finish = {"tool_calls": [{"name": "finish", "arguments": {"summary": "looked"}}]}
    rules = [
        {"match": {"schema": "ExplorationReport"}, "reply": {"json": EXPLORED}},
        {"match": {"schema": "Plan"}, "reply": {"json": PLAN}},
        {"match": {"role": "explore"}, "reply": finish},
    ]
    with scripted(rules) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        monkeypatch.setenv("TEAM_CONFIG", "/nonexistent")
        for role in ("PLAN", "BUILD", "EXPLORE", "TEST", "RCA"):
            monkeypatch.setenv(f"TEAM_MODEL_{role}", MODEL)
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        )
        yield server


def plan_in(team_dir: TeamDir) -> tuple[Coordinator, str]:
    """The coordinator's explore and plan, as `run` does them; and what its pane said."""
    layout = team_dir.layout
    coordinator = Coordinator(layout, SubprocessRunner(layout), tick=0.1, max_ticks=600)
    try:
        with Receiver(layout, team_dir.team_id, COORDINATOR, coordinator._on_message) as inbox:
            coordinator.receiver = inbox
            coordinator._plan()
    finally:
        coordinator.stop_grace = 5
        coordinator._shut_down_workers()
    return coordinator, layout.log_file(COORDINATOR).read_text()


def planner_prompt(server: ScriptedServer) -> str:
    [asked] = [r for r in server.log if r.seen.schema_title == "Plan"]
    return json.dumps(asked.body)


def test_an_empty_workspace_is_planned_without_an_explorer_and_with_checkable_criteria(
    model: ScriptedServer, team_dir: TeamDir
) -> None:
    _, said = plan_in(team_dir)
    assert not [r for r in model.log if r.seen.role == "explore"], "no model asked to explore"
    assert "the workspace is empty: planning from what code found, no explorer" in said
    assert "an empty workspace: nothing but the team's own files" in planner_prompt(model)
    # The planner's criterion cannot be checked: dropped, and what the plan implies added.
    assert "criterion D1 dropped: greeting.txt is neither a planned nor an existing file" in said
    assert "A1 (test test_hello.py), A2 (import hello.py)" in said
    plan = load_plan(team_dir.layout.plan_json.read_bytes())
    assert [(c.id, c.verification_type.value, c.target_file) for c in plan.dod] == [
        ("A1", "test", "test_hello.py"),
        ("A2", "import", "hello.py"),
    ]
    tasks = {t.module: t for t in TaskStore(team_dir.layout).all()}
    assert sorted(tasks) == ["hello", "tests"]
    assert (tasks["hello"].dod, tasks["tests"].dod) == (["A2"], ["A1"])
    assert "plan: 2 tasks, 2 criteria" in said


@pytest.mark.timeout(120)
def test_the_explorer_is_given_the_facts_and_adds_only_judgement(
    model: ScriptedServer, team_dir: TeamDir
) -> None:
    workspace = team_dir.workspace
    (workspace / "pyproject.toml").write_text('[project]\nname = "cli"\n')
    (workspace / "cli.py").write_text(
        'def main() -> None:\n    pass\n\n\nif __name__ == "__main__":\n    main()\n'
    )
    plan_in(team_dir)
    explored = [r for r in model.log if r.seen.role == "explore"]
    assert explored, "a workspace with files has an explorer"
    first = json.dumps(explored[0].body)
    assert "What code found in the workspace" in first
    assert "package files: pyproject.toml" in first
    assert "cli.py (if __name__ == '__main__')" in first
    prompt = planner_prompt(model)
    assert "functions have type hints" in prompt and "a small CLI project" in prompt
    assert "ghost.py" not in prompt and "Rust" not in prompt, "facts from code win"
    [explore] = [t for t in TaskStore(team_dir.layout).all() if t.module == "explore"]
    assert explore.status.value == "done"
