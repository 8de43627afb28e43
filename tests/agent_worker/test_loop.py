"""The agent loop's bookkeeping: what it sends back, and how it fits the context."""

from __future__ import annotations

from pathlib import Path

from agent_worker.loop import AgentLoop, Limits
from agent_worker.tools import ALL_TOOLS, Toolbox
from protocol.config import load_config
from protocol.llm import ChatMessage, ModelClient, ToolCall
from protocol.llm.budget import estimate_message_tokens
from protocol.llm.scripted import Scenario, ScriptedServer
from tests.conftest import TeamDir


def client_for(url: str, tmp_path: Path, window: int = 4096) -> ModelClient:
    config = load_config(
        env={},
        user_config=tmp_path / "none.toml",
        overrides={
            "providers": {"ollama_host": url},
            "models": {"build": {"model": "m", "context_window": window, "max_answer_tokens": 512}},
        },
    )
    return ModelClient(config, "build")


def test_every_call_gets_a_result_even_finish_and_calls_after_it(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    calls = [
        {"name": "finish", "arguments": {"summary": "done"}},
        {"name": "write_file", "arguments": {"path": "late.py", "content": "x = 1\n"}},
    ]
    scenario = Scenario.model_validate(
        {"models": [{"name": "m"}], "rules": [{"reply": {"tool_calls": calls}}]}
    )
    with ScriptedServer(scenario) as server:
        loop = AgentLoop(
            client_for(server.url, tmp_path),
            Toolbox(team_dir.layout, "b", None, ALL_TOOLS),
            Limits(),
        )
        messages = [ChatMessage.user("TASK 1: x\nFILES: a.py")]
        assert loop.run(messages) == "done"
    results = [m for m in messages if m.role == "tool"]
    assert [m.content for m in results] == ["finished", "not run: finish was called"]
    assert not (team_dir.workspace / "late.py").exists()


def test_a_long_conversation_is_fitted_text_mode_calls_included(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    big = "x = 1\n" * 3000  # ~5k tokens, more than the window
    call = ToolCall(id="c1", name="write_file", arguments={"path": "a.py", "content": big})
    messages = [
        ChatMessage.user("TASK 1: x\nFILES: a.py"),
        ChatMessage(role="assistant", tool_calls=[call]),  # native
        ChatMessage.tool_result(call, "wrote a.py"),
        ChatMessage(role="assistant", content=f"<tool_call>{big}</tool_call>"),  # text mode
        ChatMessage.user("[write_file result]\nwrote a.py"),
        ChatMessage.tool_result(call, big),
        ChatMessage.user("go on"),
        ChatMessage.user("go on"),
        ChatMessage.user("go on"),
        ChatMessage.user("go on"),
    ]
    loop = AgentLoop(
        client_for("http://127.0.0.1:9", tmp_path, window=4096),
        Toolbox(team_dir.layout, "b", None, ALL_TOOLS),
        Limits(),
    )
    fitted = loop.fitted(messages)
    assert estimate_message_tokens([m.model_dump() for m in fitted]) <= 4096 - 512 - 1000
    assert len(fitted) == len(messages)
    assert "cut from the middle" in fitted[3].content
    assert fitted[0] == messages[0]
