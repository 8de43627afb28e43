"""A pane shows a model call while it runs: with a local model a call takes seconds to
minutes, and a pane that says nothing for that long looks dead. Real tmux, a real worker."""

from __future__ import annotations

import shlex
import sys

import libtmux
from libtmux.test.retry import retry_until

from protocol import Task
from tests.agent_worker.conftest import StartTeam, call
from tests.processes import REPO


def pane_text(pane: libtmux.Pane) -> str:
    return "\n".join(pane.capture_pane())


def test_the_pane_shows_a_slow_call_live_then_its_figures(
    server: libtmux.Server, team: StartTeam
) -> None:
    t = team(
        [
            {
                "match": {"turn": 0},
                "reply": {"content": "thinking it over, then writing", "delay": 5},
            },
            {"reply": {"tool_calls": [call("finish", summary="nothing to do")]}},
        ]
    )
    t.assign(Task(id=1, title="x", files=["a.py"]), "builder-a")
    command = [
        sys.executable, "-m", "agent_worker", "--workspace", str(t.layout.workspace),
        "--name", "builder-a", "--max-tasks", "1",
    ]  # fmt: skip
    env = {k: v for k, v in t.env().items() if k in ("OLLAMA_HOST", "TEAM_CONFIG", "PYTHONPATH")}
    env |= {k: t.env()[k] for k in t.env() if k.startswith("TEAM_MODEL_")}
    session = server.new_session(
        "live",
        window_command=f"cd {shlex.quote(str(REPO))} && {shlex.join(command)}; sleep 60",
        environment=env,
        x=160,
        y=40,
    )
    pane = session.active_window.active_pane
    assert pane is not None
    # While the server thinks: the call, its seconds counting, waiting for the first token.
    assert retry_until(lambda: "waiting for the first token" in pane_text(pane), 20, raises=False)
    assert retry_until(lambda: "build (coder:7b): 3 s" in pane_text(pane), 20, raises=False), (
        pane_text(pane)
    )
    # Then the figures of the call that ended, and the line is gone.
    assert retry_until(lambda: "build answered in" in pane_text(pane), 30, raises=False), pane_text(
        pane
    )
    assert retry_until(lambda: "nothing to do" in pane_text(pane), 30, raises=False)
    assert "waiting for the first token" not in pane_text(pane)
