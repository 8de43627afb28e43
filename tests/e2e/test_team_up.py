"""`team up` end to end with the scripted model: plan, parallel build with a planted bug,
verification fails, RCA, fix, verification passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.demo_scenario import scenario
from protocol import Layout, TaskStore, TeamInfo
from protocol.agents import read_agents
from protocol.events import read_events
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.tracing import read_spans
from tests.processes import REPO

MODEL = "coder:7b"


@pytest.fixture
def model() -> Iterator[ScriptedServer]:
    with ScriptedServer(Scenario.model_validate(scenario(MODEL))) as server:
        yield server


def env_for(server: ScriptedServer) -> dict[str, str]:
    return {
        **os.environ,
        "OLLAMA_HOST": server.url,
        "TEAM_CONFIG": "/nonexistent",
        **{f"TEAM_MODEL_{r}": MODEL for r in ("PLAN", "BUILD", "EXPLORE", "TEST", "RCA")},
        "PYTHONPATH": str(REPO),
    }


def team(workspace: Path, server: ScriptedServer, *args: str, timeout: float = 240):
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "-w", str(workspace), *args],
        env=env_for(server),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.mark.timeout(300)
def test_team_up_with_subprocess_workers_fixes_the_planted_bug(
    model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "todo"
    done = team(
        workspace,
        model,
        "up",
        "a todo list that counts open items",
        "--runner",
        "subprocess",
        "--wait",
        "--workers",
        "3",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    layout = Layout.of(workspace)
    info = TeamInfo.read(layout.team_json)
    assert (info.status.value, info.iteration) == ("done", 2)
    assert "if not item.done" in (workspace / "store.py").read_text()
    tasks = TaskStore(layout).all()
    # An empty workspace needs no explorer: code surveys it, and the planner plans from that.
    assert [t.module for t in tasks] == ["models", "storage", "tests", "storage"]
    assert not [r for r in model.log if r.seen.role == "explore"]
    assert all(t.status.value == "done" for t in tasks)
    assert tasks[-1].edits[0].file == "store.py"
    memory = json.loads(layout.memory_json.read_text())
    assert [i["dod"] for i in memory["iterations"]] == [
        {"D1": False, "D2": True, "D3": True},
        {"D1": True, "D2": True, "D3": True},
    ]
    assert "count_open counts done items" in memory["iterations"][0]["root_cause"]
    log = subprocess.run(
        ["git", "log", "--oneline"], cwd=workspace, capture_output=True, text=True
    ).stdout
    assert "agent-team iteration 2" in log
    status = json.loads(team(workspace, model, "status", "--json").stdout)
    assert status["team"]["status"] == "done"
    assert_one_span_tree(layout, info.trace_id)
    assert_counted_what_the_server_reported(status["usage"], model)
    assert status["progress"] == {"done": 4}
    assert status["dod"]["iteration"] == 2
    assert all(c["passed"] for c in status["dod"]["criteria"])


@pytest.mark.timeout(120)
def test_a_team_stops_when_its_token_budget_is_spent(model: ScriptedServer, tmp_path: Path) -> None:
    workspace = tmp_path / "todo"
    done = team(workspace, model, "up", "a todo list", "--runner", "subprocess", "--wait",
                "--max-tokens", "20")  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    status = json.loads(team(workspace, model, "status", "--json").stdout)
    assert status["team"]["status"] == "failed"
    assert "the team's token budget of 20 is spent" in status["team"]["detail"]
    layout = Layout.of(workspace)
    found = read_events(layout.events_jsonl).events
    [budget] = [e for e in found if e.kind == "budget"]
    spent = sum(e.prompt_tokens + e.completion_tokens for e in found if e.kind == "model_call")
    assert (budget.scope, budget.limit, budget.used) == ("team", 20, spent)
    assert spent >= 20
    # The empty workspace needed no explorer: the planner's answer spent it, and no worker
    # was asked anything after.
    assert [e.role for e in found if e.kind == "model_call"] == ["plan"]


def assert_counted_what_the_server_reported(usage: dict[str, Any], server: ScriptedServer) -> None:
    """The tokens `team status --json` counts are those the server's answers reported, in all
    and per task (the TASK line of the request names it); each call is some agent's."""
    answered = [r for r in server.log if r.reply is not None and r.status == 200
                and not r.reply.error]  # fmt: skip
    tokens = [r.reply.tokens() for r in answered if r.reply is not None]
    assert usage["model_calls"] == len(answered)
    assert usage["prompt_tokens"] == sum(t[0] for t in tokens)
    assert usage["completion_tokens"] == sum(t[1] for t in tokens)
    assert usage["cached_tokens"] == 0, "Ollama's answers carry no cached count"
    assert sum(a["model_calls"] for a in usage["per_agent"].values()) == len(answered)
    per_task: Counter[int] = Counter()
    for request, (prompt, completion, _) in zip(answered, tokens, strict=True):
        if request.seen.task is not None:
            per_task[request.seen.task] += prompt + completion
    counted = {int(k): t["prompt_tokens"] + t["completion_tokens"]
               for k, t in usage["per_task"].items() if t["model_calls"]}  # fmt: skip
    assert per_task, "the build requests name their tasks"
    assert counted == dict(per_task)


# Where each kind of span hangs in a run's trace.
PARENT_KINDS = {
    "iteration": {"run"},
    "explore": {"run"},
    "planning": {"run"},
    "verify": {"iteration"},
    "rca": {"iteration"},
    "task": {"iteration", "explore"},
    "model": {"task", "planning", "rca"},
    "tool": {"task"},
    "sampling": {"task"},
}


def assert_one_span_tree(layout: Layout, trace_id: str) -> None:
    """The run's spans, from the coordinator and every worker, form one tree: one root, every
    parent there, each kind under the kind it belongs to; each model call in the event log
    is a span of it."""
    spans = read_spans(layout.trace_file(trace_id))
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "a span id was written twice"
    roots = [s for s in spans if s.parent_id is None]
    assert [r.kind for r in roots] == ["run"]
    for span in spans:
        if span.parent_id is not None:
            assert span.parent_id in by_id, f"{span.name}: its parent is not in the trace"
            assert by_id[span.parent_id].kind in PARENT_KINDS[span.kind], span.name
    assert {s.kind for s in spans} >= {"run", "iteration", "task", "model", "tool", "verify"}
    calls = [e for e in read_events(layout.events_jsonl).events if e.kind == "model_call"]
    assert calls and {c.span_id for c in calls} <= set(by_id)
    assert all(c.trace_id == trace_id for c in calls)
    # Two iterations, four task attempts (models, storage, tests, the fix).
    assert sum(s.kind == "iteration" for s in spans) == 2
    assert sum(s.kind == "task" for s in spans) == 4


@pytest.mark.timeout(300)
def test_team_up_in_tmux_runs_each_agent_in_its_own_titled_pane(
    model: ScriptedServer, tmp_path: Path
) -> None:
    import libtmux

    from coordinator.tmux import TeamSession, socket_name

    workspace = tmp_path / "todo"
    done = team(workspace, model, "up", "a todo list that counts open items", "--wait")
    layout = Layout.of(workspace)
    info = TeamInfo.read(layout.team_json)
    server = libtmux.Server(socket_name=socket_name(info.id))
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert info.status.value == "done"
        session = TeamSession.find(server, info.tmux_session or "")
        assert session is not None, "the session stays for the user to read"
        assert sorted(session.titles()) == [
            "builder-models",
            "builder-storage",
            "coordinator",
            "tester-tests",
        ]
        records = {r.name: r for r in read_agents(layout)}
        assert all(r.state == "stopped" for r in records.values())
        assert {r.pane for r in records.values()} <= {p.pane_id for p in session.window.panes}
    finally:
        server.kill()


@pytest.mark.timeout(300)
def test_team_demo_runs_the_pipeline_and_says_the_model_is_scripted(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.cli",
            "demo",
            "--runner",
            "subprocess",
            "--wait",
            "--delay",
            "0",
            "-w",
            str(workspace),
        ],
        env={**os.environ, "TEAM_CONFIG": "/nonexistent", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the model is SCRIPTED" in done.stdout
    assert "done (iteration 2)" in done.stdout
    assert "if not item.done" in (workspace / "store.py").read_text()


@pytest.mark.timeout(300)
def test_a_team_up_after_the_demo_does_not_inherit_its_scripted_model(
    model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "demo"
    demo = team(workspace, model, "demo", "--runner", "subprocess", "--wait", "--delay", "0",
                "-w", str(workspace))  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    config = Layout.of(workspace).config_toml
    assert config.read_text().startswith("# written by team demo")
    done = team(workspace, model, "up", "a todo list that counts open items", "--runner",
                "subprocess", "--wait")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not config.exists(), "the demo's routing went with the demo's run"
    archived = list((Layout.of(workspace).root / "history").glob("*/config.toml"))
    assert len(archived) == 1 and "scripted-demo" in archived[0].read_text()
    subprocess.run([sys.executable, "-m", "coordinator.cli", "-w", str(workspace), "kill",
                    "--grace", "1"], env=env_for(model), capture_output=True, cwd=REPO)  # fmt: skip
