"""Sampled fixes (issue 13): a fix task of a builder with `sampling.fix_candidates = K` makes
up to K fixes, each from the files as they were, judged by the plan's criteria run in the
sandbox; the one that makes the most pass without breaking one that passed is kept."""

from __future__ import annotations

import json
from typing import Any

from protocol import Task, TaskStatus, TaskStore
from protocol.plan import Plan
from protocol.tasks import FileEdit
from tests.agent_worker.conftest import StartTeam, Team, call, finish_worker, write_workspace_file

BUGGY = "def double(n):\n    return n + n + 1\n"
STILL_WRONG = "def double(n):\n    return n + n + 2\n"
RIGHT = "def double(n):\n    return 2 * n\n"
VALUE = "VALUE = 1\n"


def plan() -> str:
    module = {"name": "double", "description": "a doubler", "role": "builder", "depends_on": [],
              "files": [{"path": "double.py", "purpose": "double(n)"},
                        {"path": "value.py", "purpose": "VALUE"}]}  # fmt: skip
    dod = [
        {"id": "D1", "description": "doubles", "verification_type": "command",
         "target_file": "python3 -c 'import double; assert double.double(2) == 4'"},
        {"id": "D2", "description": "the value", "verification_type": "command",
         "target_file": "python3 -c 'import value; assert value.VALUE == 1'"},
    ]  # fmt: skip
    summary = "a doubler and a value"
    return Plan.model_validate(
        {"summary": summary, "modules": [module], "dod": dod}
    ).model_dump_json()


def fix(low: float, high: float, *writes: tuple[str, str]) -> dict[str, Any]:
    """The fixer at temperatures [low, high]: `writes`, then finish."""
    calls = [{"tool_calls": [call("write_file", path=p, content=c)]} for p, c in writes]
    return {"name": f"fix at {low}", "match": {"temperature": [low, high]},
            "replies": [*calls, {"tool_calls": [call("finish", summary="fixed")]}]}  # fmt: skip


def run_fix(t: Team, candidates: int) -> Task:
    workspace = t.layout.workspace
    write_workspace_file(workspace, "double.py", BUGGY)
    write_workspace_file(workspace, "value.py", VALUE)
    t.layout.plan_json.write_text(plan())
    t.layout.config_toml.write_text(f"[sampling]\nfix_candidates = {candidates}\n")
    edit = FileEdit(file="double.py", action="edit", details="double(2) must be 4")
    task = Task(id=1, title="fix double", files=["double.py", "value.py"], edits=[edit])
    t.assign(task, "builder-a")
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1"), timeout=180)
    return TaskStore(t.layout).get(1)


def test_the_fix_that_makes_every_criterion_pass_is_kept_and_the_rest_not_made(
    team: StartTeam,
) -> None:
    t = team([fix(0.15, 0.25, ("double.py", STILL_WRONG)), fix(0.55, 0.65, ("double.py", RIGHT)),
              fix(0.85, 1.5, ("double.py", STILL_WRONG))])  # fmt: skip
    task = run_fix(t, 3)
    assert task.status == TaskStatus.DONE
    assert (t.layout.workspace / "double.py").read_text() == RIGHT
    assert [r.seen.temperature for r in t.server.log] == [0.2, 0.2, 0.6, 0.6]  # no third fix
    assert task.result is not None
    assert "fix 2 (temperature 0.6): 2 of 2 criteria pass" in task.result.summary
    log = t.layout.log_file("builder-a").read_text()
    assert "fix 1 (temperature 0.2): 1 of 2 criteria pass" in log


def test_a_fix_that_breaks_what_passed_loses_to_one_that_breaks_nothing(team: StartTeam) -> None:
    breaking = fix(0.15, 0.25, ("double.py", RIGHT), ("value.py", "VALUE = 2\n"))
    harmless = fix(0.55, 0.65, ("double.py", STILL_WRONG))
    t = team([breaking, harmless])
    task = run_fix(t, 2)
    assert task.status == TaskStatus.DONE
    # The second fix leaves D1 failing, but the first broke D2, which passed.
    assert (t.layout.workspace / "value.py").read_text() == VALUE
    assert (t.layout.workspace / "double.py").read_text() == STILL_WRONG
    assert task.result is not None and "fix 2 (temperature 0.6)" in task.result.summary
    log = t.layout.log_file("builder-a").read_text()
    assert "fix 1 (temperature 0.2): 1 of 2 criteria pass, breaks D2" in log


def test_one_fix_by_default_asks_once_and_judges_nothing(team: StartTeam) -> None:
    t = team([fix(0.0, 2.0, ("double.py", STILL_WRONG))])
    task = run_fix(t, 1)
    assert task.status == TaskStatus.DONE
    assert len(t.server.log) == 2
    assert "criteria pass" not in json.dumps(task.model_dump(mode="json"))
