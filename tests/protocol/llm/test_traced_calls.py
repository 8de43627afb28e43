"""A traced model call: its event with the tokens, its span, and its whole exchange in the
store, whether the call succeeded or failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from protocol.events import ModelCallEnded, ModelCallStarted, read_events
from protocol.layout import Layout
from protocol.llm import BadAnswer, ChatMessage
from protocol.tracing import Tracer, read_spans
from tests.protocol.llm.conftest import MakeClient, StartServer


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / ".agents"
    (root / "traces").mkdir(parents=True)
    return root


def test_a_traced_call_records_its_tokens_and_exchange(
    root: Path,
    scripted: StartServer,
    make_client: MakeClient,
) -> None:
    server = scripted([{"reply": {"content": "hello there"}}])
    tracer = Tracer(Layout.of(root.parent), "abc123", "builder-x", task_id=3, attempt=2)
    client = make_client(server.url, "openai")
    client.tracer = tracer
    result = client.chat([ChatMessage.user("hi")], temperature=0.3)
    found = read_events(root / "events.jsonl").events
    assert [type(e) for e in found] == [ModelCallStarted, ModelCallEnded]
    ended = found[1]
    assert isinstance(ended, ModelCallEnded)
    assert ended.call_id == result.call_id
    assert (ended.task_id, ended.attempt, ended.outcome, ended.temperature) == (3, 2, "ok", 0.3)
    assert ended.prompt_tokens == result.usage.prompt_tokens > 0
    assert ended.completion_tokens == result.usage.completion_tokens > 0
    assert ended.stored
    exchange = tracer.store.load(result.call_id)
    assert exchange is not None
    assert exchange["request"]["messages"] == [{"role": "user", "content": "hi"}]
    assert exchange["answer"]["text"] == "hello there"
    [span] = read_spans(tracer.spans_path)
    assert (span.kind, span.span_id, span.attrs["call_id"]) == (
        "model",
        ended.span_id,
        ended.call_id,
    )


class Answer(BaseModel):
    value: int


def test_a_failed_call_is_recorded_with_its_error_and_what_the_model_said(
    root: Path,
    scripted: StartServer,
    make_client: MakeClient,
) -> None:
    server = scripted([{"reply": {"content": "not json at all"}}])
    client = make_client(server.url, "ollama")
    client.tracer = Tracer(Layout.of(root.parent), "abc123", "coordinator")
    with pytest.raises(BadAnswer):
        client.chat([ChatMessage.user("give a number")], schema=Answer)
    ended = read_events(root / "events.jsonl").events[-1]
    assert isinstance(ended, ModelCallEnded)
    assert ended.outcome == "BadAnswer"
    assert "did not give a valid Answer" in ended.error
    # Both tries (the answer and the repair round) are counted.
    assert ended.prompt_tokens == 2 * 10
    exchange = client.tracer.store.load(ended.call_id)
    assert exchange is not None
    assert exchange["answer"]["text"] == "not json at all"
    assert exchange["answer"]["error"].startswith("BadAnswer: ")
    # The stored request is the repair round: the refused answer and the repair prompt.
    assert exchange["request"]["messages"][-2]["content"] == "not json at all"


class Broken:
    """A transport with a bug of ours in it: not a ModelError."""

    def request(self, *args: object) -> object:
        raise RuntimeError("a bug")


def test_a_call_that_fails_in_any_way_still_ends_its_record_and_live_line(
    root: Path, make_client: MakeClient
) -> None:
    seen: list[str] = []
    client = make_client("http://127.0.0.1:9", "anthropic", transport=Broken())
    client.tracer = Tracer(Layout.of(root.parent), "abc123", "builder-x")
    client.on_progress = lambda progress: seen.append(progress.phase)
    with pytest.raises(RuntimeError):
        client.chat([ChatMessage.user("hi")])
    assert seen == ["start", "end"]
    ended = read_events(root / "events.jsonl").events[-1]
    assert isinstance(ended, ModelCallEnded) and ended.outcome == "RuntimeError"


def test_a_lone_surrogate_in_an_answer_reaches_the_log_and_the_store(
    root: Path, scripted: StartServer, make_client: MakeClient
) -> None:
    # A model's JSON arguments with "\ud800" decode to a string UTF-8 cannot hold.
    server = scripted(
        [{"reply": {"tool_calls": [{"name": "w", "arguments": {"content": "a\ud800b"}}]}}]
    )
    client = make_client(server.url, "openai")
    client.tracer = Tracer(Layout.of(root.parent), "abc123", "builder-x")
    result = client.chat([ChatMessage.user("hi")])
    assert result.tool_calls[0].arguments == {"content": "a\ufffdb"}
    ended = read_events(root / "events.jsonl").events[-1]
    assert isinstance(ended, ModelCallEnded) and ended.stored and ended.outcome == "ok"
