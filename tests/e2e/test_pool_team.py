"""A whole team on a pool of three scripted model servers of capacity 1 (issue 14): its calls
spread over them as they overlap, no server ever answering more than one at once (counted by
the servers themselves), one server stopped in the middle of the run and its calls finished on the
others, then used again once it is back; `team status` and the event log say where each
call ran. Real `team up`, subprocess workers, real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.demo_scenario import scenario
from protocol import Layout, TeamInfo
from protocol.events import ModelCallEnded, read_events
from protocol.llm.scripted import Scenario, ScriptedServer
from tests.e2e.test_team_up import MODEL, env_for
from tests.processes import REPO

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def servers() -> Iterator[list[ScriptedServer]]:
    started = [ScriptedServer(Scenario.model_validate(scenario(MODEL))).start() for _ in range(3)]
    yield started
    for server in started:
        server.stop()


def team(env: dict[str, str], workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "-w", str(workspace), *args],
        env=env, capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip


def answered(server: ScriptedServer) -> int:
    return sum(1 for logged in server.log if logged.status == 200)


def test_a_team_on_three_servers_finishes_when_one_is_stopped_and_uses_it_again(
    servers: list[ScriptedServer], tmp_path: Path
) -> None:
    flaky, steady, third = servers
    config = tmp_path / "config.toml"
    # The flaky one first: an idle pool gives it the next call (a tie goes to the first).
    config.write_text(
        "".join(f'[[endpoints]]\nurl = "{s.url}"\ncapacity = 1\n' for s in servers)
        + "[limits]\nbackoff_base = 0.1\n"
    )
    env = {**env_for(steady), "TEAM_CONFIG": str(config)}
    stopped_after: list[int] = []
    back: list[ScriptedServer] = []

    def stop_then_restart() -> None:
        """Once the flaky server has answered a few calls: stopped, then started again on
        the same port 1 s later."""
        while answered(flaky) < 3:
            threading.Event().wait(0.02)
        port = flaky.port
        flaky.stop()
        stopped_after.append(len(flaky.log))
        threading.Event().wait(1.0)
        back.append(ScriptedServer(Scenario.model_validate(scenario(MODEL)), port=port).start())

    chaos = threading.Thread(target=stop_then_restart, daemon=True)
    chaos.start()
    workspace = tmp_path / "todo"
    try:
        done = team(env, workspace, "up", "a todo list that counts open items",
                    "--runner", "subprocess", "--wait", "--workers", "3")  # fmt: skip
        chaos.join(30)
    finally:
        for server in back:
            server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    layout = Layout.of(workspace)
    assert TeamInfo.read(layout.team_json).status.value == "done"
    assert stopped_after and back, "the flaky server was never stopped"
    peaks = [s.model.busy_peak for s in (flaky, steady, third, *back)]
    assert max(peaks) == 1, peaks  # capacity 1 each: never two answers at once
    assert answered(back[0]) > 0, "the server that came back was never used again"

    ended = [e for e in read_events(layout.events_jsonl).events if isinstance(e, ModelCallEnded)]
    where = Counter(e.endpoint for e in ended if e.outcome == "ok")
    # The flaky one (first listed: an idle pool's choice) and another, when calls overlapped.
    assert where[flaky.url] > 0 and where[steady.url] + where[third.url] > 0, where
    status = json.loads(team(env, workspace, "status", "--json").stdout)
    assert {e["url"] for e in status["endpoints"]} == {s.url for s in servers}
    assert all(e["in_flight"] == 0 for e in status["endpoints"])
    assert os.path.isdir(layout.pool_dir)
