"""Cassettes: a run recorded from the scripted server replays identically with it stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from protocol.config import load_config
from protocol.llm import (
    CassetteMismatch,
    ChatMessage,
    ModelClient,
    RecordingTransport,
    ReplayTransport,
    ServerUnreachable,
)
from protocol.llm.transport import HttpxTransport
from tests.protocol.llm.conftest import MODEL, PROVIDERS, MakeClient, Sleeps, StartServer
from tests.protocol.llm.test_client import ASK, WRITE_FILE


class Answer(BaseModel):
    verdict: str


def run_session(client: ModelClient) -> list[object]:
    """A small session: a tool call, its result, a schema answer."""
    first = client.chat(ASK, tools=[WRITE_FILE], seed=1)
    history = [*ASK, ChatMessage(role="assistant", tool_calls=first.tool_calls),
               ChatMessage.tool_result(first.tool_calls[0], "ok")]  # fmt: skip
    second = client.chat(history, schema=Answer)
    return [first.tool_calls, first.text, second.parsed, second.usage]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_recorded_session_replays_identically_without_the_server(
    provider: str, scripted: StartServer, make_client: MakeClient, tmp_path: Path
) -> None:
    cassette = tmp_path / "session.json"
    server = scripted(
        [
            {"match": {"turn": 0}, "reply": {"tool_calls": [
                {"name": "write_file", "arguments": {"path": "m.py", "content": "x"}}]}},
            {"match": {"turn": 1}, "reply": {"json": {"verdict": "pass"}}},
        ]
    )  # fmt: skip
    recorder = RecordingTransport(HttpxTransport(), cassette)
    recorded = run_session(make_client(server.url, provider, transport=recorder))
    server.stop()

    config = load_config(
        env={},
        user_config=tmp_path / "none.toml",
        overrides={"models": {"build": {"provider": "cassette", "model": MODEL,
                                        "cassette": str(cassette), "wire": provider}}},
    )  # fmt: skip
    replayed = run_session(ModelClient(config, "build"))
    assert replayed == recorded


def test_a_request_that_differs_from_the_recording_fails_loudly(
    scripted: StartServer, make_client: MakeClient, tmp_path: Path
) -> None:
    cassette = tmp_path / "session.json"
    server = scripted([{"reply": {"content": "hello"}}])
    recorder = RecordingTransport(HttpxTransport(), cassette)
    make_client(server.url, "openai", transport=recorder).chat([ChatMessage.user("one")])
    server.stop()

    config = load_config(
        env={},
        user_config=tmp_path / "none.toml",
        overrides={"models": {"build": {"provider": "cassette", "model": MODEL,
                                        "cassette": str(cassette), "wire": "openai"}}},
    )  # fmt: skip
    client = ModelClient(config, "build")
    with pytest.raises(CassetteMismatch) as caught:
        client.chat([ChatMessage.user("two")])
    # Request 1 was the question of what the server can do (GET /props), replayed as recorded.
    assert "request 2 differs from cassette" in str(caught.value)
    assert '"one"' in str(caught.value) and '"two"' in str(caught.value)

    again = ModelClient(config, "build")
    again.chat([ChatMessage.user("one")])
    with pytest.raises(CassetteMismatch, match="has no exchange left"):
        again.chat([ChatMessage.user("one")])


def test_a_connection_failure_and_retry_after_replay_as_recorded(
    scripted: StartServer, make_client: MakeClient, sleeps: Sleeps, tmp_path: Path
) -> None:
    cassette = tmp_path / "busy.json"
    server = scripted([{"replies": [{"status": 429, "headers": {"Retry-After": "2"}},
                                    {"content": "ok"}]}])  # fmt: skip
    recorder = RecordingTransport(HttpxTransport(), cassette)
    make_client(server.url, "ollama", transport=recorder).chat([ChatMessage.user("hi")])
    server.stop()
    once = {"max_retries": 0}
    with pytest.raises(ServerUnreachable):
        make_client(server.url, "ollama", transport=recorder, limits=once).chat(
            [ChatMessage.user("hi")]
        )
    sleeps.clear()

    tape = ReplayTransport(cassette)
    replay = make_client(server.url, "ollama", transport=tape)
    assert replay.chat([ChatMessage.user("hi")]).text == "ok"
    assert sleeps == [2.0], "the recorded Retry-After is honoured"
    with pytest.raises(ServerUnreachable):
        make_client(server.url, "ollama", transport=tape, limits=once).chat(
            [ChatMessage.user("hi")]
        )
    assert tape.remaining == 0
