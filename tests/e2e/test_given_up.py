"""A team whose builders get nowhere: each attempt is stopped after a nudge (not 25 rounds),
the tasks are given up with their dependants, and the team says nothing was built and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.demo_scenario import PLAN
from protocol import Layout, TaskStatus, TaskStore, TeamInfo
from protocol.events import read_events
from protocol.llm.scripted import Scenario, ScriptedServer
from tests.e2e.test_team_up import MODEL, team

pytestmark = pytest.mark.timeout(300)

PROSE = {"content": "I would write the code like this, in words, without calling a tool."}


def test_builders_that_only_answer_prose_end_the_team_saying_nothing_was_built(
    tmp_path: Path,
) -> None:
    rules = [
        {"match": {"schema": "Plan"}, "reply": {"json": PLAN}},
        {"reply": PROSE},
    ]
    scenario = Scenario.model_validate({"models": [{"name": MODEL}], "rules": rules})
    with ScriptedServer(scenario) as server:
        workspace = tmp_path / "todo"
        done = team(workspace, server, "up", "a todo list", "--runner", "subprocess", "--wait")
    layout = Layout.of(workspace)
    info = TeamInfo.read(layout.team_json)
    assert done.returncode == 1, done.stdout + done.stderr
    assert info.status.value == "failed"
    tasks = {t.module: t for t in TaskStore(layout).all()}
    models, storage, tests = tasks["models"], tasks["storage"], tasks["tests"]
    assert [t.status for t in (models, storage, tests)] == [TaskStatus.ABANDONED] * 3
    assert info.detail.startswith("nothing was built: ")
    assert f"task {models.id} (" in info.detail and "no_progress: no progress in 2 rounds" in (
        info.detail
    )
    # The tests depend on what they test: skipped with storage, and said so.
    assert f"skipped because of it: tasks {storage.id}, {tests.id}" in info.detail
    assert info.detail.count("was given up") == 1
    # Each attempt: two model turns (the prose, then the prose after the nudge), no more.
    builds = [r for r in server.log if r.seen.role == "build"]
    assert len(builds) == 3 * 2
    # No criterion was run on the empty workspace; the team's detail while verifying said
    # what was given up (team.json's changes are events).
    events = read_events(layout.events_jsonl).events
    assert not [e for e in events if e.kind == "criterion"]
    details = [e.detail for e in events if e.kind == "team" and e.status == "verifying"]
    assert any("was given up" in d for d in details)
