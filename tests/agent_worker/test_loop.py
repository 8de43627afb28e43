"""The agent loop's bookkeeping: what it sends back, and how it fits the context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent_worker.loop import AgentLoop, Limits, LoopStopped, NoProgress
from agent_worker.progress import StallKind
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


def run_loop(
    team_dir: TeamDir, tmp_path: Path, replies: list[dict[str, Any]], files: tuple[str, ...]
) -> tuple[ScriptedServer, list[ChatMessage], str | LoopStopped]:
    """Drive a loop with `replies` (the last repeats): what the server saw, the conversation,
    and the summary or the way the loop stopped."""
    scenario = Scenario.model_validate({"models": [{"name": "m"}], "rules": [{"replies": replies}]})
    messages = [ChatMessage.user(f"TASK 1: x\nFILES: {', '.join(files)}")]
    with ScriptedServer(scenario) as server:
        loop = AgentLoop(
            client_for(server.url, tmp_path),
            Toolbox(team_dir.layout, "b", None, ALL_TOOLS),
            Limits(),
            files=files,
        )
        try:
            outcome: str | LoopStopped = loop.run(messages)
        except LoopStopped as stopped:
            outcome = stopped
    return server, messages, outcome


def sent_last(server: ScriptedServer) -> str:
    """The last message of the last request the server had."""
    return json.dumps(server.log[-1].body["messages"][-1])


PROSE = {"content": "I will now write the file."}
WRITE_A = {
    "tool_calls": [{"name": "write_file", "arguments": {"path": "a.py", "content": "x=1\n"}}]
}
FINISH = {"tool_calls": [{"name": "finish", "arguments": {"summary": "wrote a.py"}}]}


def test_prose_is_nudged_with_the_tools_and_files_then_the_agent_carries_on(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    server, _, outcome = run_loop(team_dir, tmp_path, [PROSE, WRITE_A, FINISH], ("a.py", "b.py"))
    assert outcome == "wrote a.py"
    nudge = json.dumps(server.log[1].body["messages"][-1])
    assert "no tool call" in nudge and "write_file" in nudge and "finish" in nudge
    assert "not written yet: a.py, b.py" in nudge


def test_prose_after_the_nudge_stops_the_loop_in_two_rounds(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    server, _, outcome = run_loop(team_dir, tmp_path, [PROSE], ("a.py",))
    assert isinstance(outcome, NoProgress)
    assert outcome.kinds == [StallKind.PROSE, StallKind.PROSE]
    assert "no progress in 2 rounds in a row" in str(
        outcome
    ) and "round 2: answered with prose" in (str(outcome))
    assert len(server.log) == 2


def test_a_model_that_wrote_every_file_and_only_looks_around_is_finished_for(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    looks = [{"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py", "start": n}}]}
             for n in range(1, 10)]  # fmt: skip
    server, _, outcome = run_loop(team_dir, tmp_path, [WRITE_A, *looks], ("a.py",))
    assert outcome == "wrote a.py, then kept looking around without calling finish: finished for it"
    assert len(server.log) == 4, "the write, a review, a look (nudged), a look (finished)"
    assert "call finish now" in json.dumps(server.log[3].body["messages"][-1])


def test_the_same_call_over_and_over_is_stopped(team_dir: TeamDir, tmp_path: Path) -> None:
    listing = {"tool_calls": [{"name": "list_files", "arguments": {"path": "."}}]}
    server, _, outcome = run_loop(team_dir, tmp_path, [listing], ("a.py",))
    assert isinstance(outcome, NoProgress) and outcome.kinds == [StallKind.REPEATED] * 2
    assert "the same call again: list_files(path=.)" in str(outcome)
    assert "same call again" in json.dumps(server.log[2].body["messages"][-1])
    assert len(server.log) == 3  # one new call, then a repeat (nudged), then another repeat


def test_only_unknown_tools_are_stopped_naming_the_real_ones(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    unknown = {"tool_calls": [{"name": "create_file", "arguments": {"file": "a.py"}}]}
    server, _, outcome = run_loop(team_dir, tmp_path, [unknown], ("a.py",))
    assert isinstance(outcome, NoProgress) and outcome.kinds == [StallKind.FAILED] * 2
    assert "create_file" in str(outcome)
    nudge = json.dumps(server.log[1].body["messages"][-1])
    assert "Your calls failed" in nudge and "list_files, read_file, write_file" in nudge


def test_an_answer_cut_at_its_cap_is_asked_again_shorter_once(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    cut = {"content": "Let me explain at length", "finish_reason": "length"}
    server, messages, outcome = run_loop(team_dir, tmp_path, [cut, WRITE_A, FINISH], ("a.py",))
    assert outcome == "wrote a.py"
    assert "cut off at its cap of 512 tokens" in json.dumps(server.log[1].body["messages"][-1])
    assert [m.role for m in messages[:3]] == ["user", "assistant", "user"]  # turns alternate


def test_an_answer_cut_twice_stops_saying_which_cap_to_raise(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    cut = {"content": "Let me explain at length", "finish_reason": "length"}
    server, _, outcome = run_loop(team_dir, tmp_path, [cut], ("a.py",))
    assert isinstance(outcome, NoProgress) and outcome.kinds == [StallKind.CUT] * 2
    assert "raise models.build.max_answer_tokens (now 512) in .agents/config.toml" in str(outcome)
    assert len(server.log) == 2


def test_guidance_that_arrives_between_turns_is_in_the_next_request(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    write = {"name": "write_file", "arguments": {"path": "a.py", "content": "x = 1\n"}}
    rules = [
        {"match": {"contains": "Guidance from the user"},
         "reply": {"tool_calls": [{"name": "finish", "arguments": {"summary": "told"}}]}},
        {"reply": {"tool_calls": [write]}},
    ]  # fmt: skip
    scenario = Scenario.model_validate({"models": [{"name": "m"}], "rules": rules})
    pending = [[], ["use pathlib"]]  # nothing before the first turn, then the user's words
    with ScriptedServer(scenario) as server:
        loop = AgentLoop(
            client_for(server.url, tmp_path),
            Toolbox(team_dir.layout, "b", None, ALL_TOOLS),
            Limits(),
            guidance=lambda: pending.pop(0) if pending else [],
        )
        messages = [ChatMessage.user("TASK 1: x\nFILES: a.py")]
        assert loop.run(messages) == "told"
        turns = [r.seen for r in server.log]
    assert [t.turn for t in turns] == [0, 1]
    assert "use pathlib" not in turns[0].last_user
    assert turns[1].last_user.endswith("(follow it): use pathlib")
