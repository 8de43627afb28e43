"""Streamed answers: the decoder over recorded streams cut at every byte, and streamed calls to
the scripted server over real sockets (Ollama NDJSON, OpenAI server-sent events)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol.config import load_config
from protocol.events import ModelCallEnded, read_events
from protocol.layout import Layout
from protocol.llm import (
    ChatMessage,
    ContextOverflow,
    ModelClient,
    ModelTimeout,
    ServerError,
    ServerUnreachable,
    ToolCall,
    TruncatedAnswer,
    Usage,
)
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.llm.stream import StreamCut, StreamDecoder, StreamError
from protocol.llm.toolcalls import call_id
from protocol.llm.transport import HttpxTransport, RecordingTransport, Transport
from protocol.llm.types import CallProgress, Reply
from protocol.tracing import Tracer
from tests.protocol.llm.conftest import MODEL, Sleeps
from tests.protocol.llm.test_client import WRITE_FILE

ASK = [ChatMessage.user("hello")]
TEXT = "héllo ✓ 日本"
STREAMED = ["ollama", "openai"]

# As an OpenAI-compatible server sends it with stream_options.include_usage: a comment, the
# role, the text in pieces, two tool calls whose arguments come in pieces, the finish reason,
# the usage with the cached part of the prompt, [DONE].
OPENAI_STREAM = """\
: ping

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"content":"héllo "},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"content":"✓ 日本"},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":\
"write_file","arguments":""}}]},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"path\\": \\"m.py\\", "}}]},\
"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"content\\": \\"x = '日本'\\\\n\\"}"\
}}]},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":\
"run_tests","arguments":"{\\"pa"}}]},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{"tool_calls":[{"index":1,"function":{"arguments":"th\\": \\"tests\\"}"}}]},\
"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[{"index":0,\
"delta":{},"finish_reason":"tool_calls"}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"coder:7b","choices":[],"usage":\
{"prompt_tokens":120,"completion_tokens":17,"total_tokens":137,"prompt_tokens_details":\
{"cached_tokens":96}}}

data: [DONE]

""".encode()

# As Ollama sends it: the text a line at a time, the tool calls whole in one line, the done line.
OLLAMA_STREAM = """\
{"model":"coder:7b","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant",\
"content":"héllo "},"done":false}
{"model":"coder:7b","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant",\
"content":"✓ 日本"},"done":false}
{"model":"coder:7b","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant",\
"content":"","tool_calls":[{"function":{"name":"write_file","arguments":{"path":"m.py",\
"content":"x = '日本'\\n"}}}]},"done":false}
{"model":"coder:7b","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant",\
"content":""},"done":true,"done_reason":"stop","total_duration":4200000,\
"prompt_eval_count":120,"eval_count":17}
""".encode()

WRITTEN = {"path": "m.py", "content": "x = '日本'\n"}
EXPECTED = {
    "openai": Reply(
        text=TEXT,
        tool_calls=[
            ToolCall(id="call_a", name="write_file", arguments=WRITTEN),
            ToolCall(id="call_b", name="run_tests", arguments={"path": "tests"}),
        ],
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=120, completion_tokens=17, cached_tokens=96),
        model=MODEL,
    ),
    "ollama": Reply(
        text=TEXT,
        # Ollama gives no call ids: the one wire.py makes for a whole answer
        tool_calls=[
            ToolCall(id=call_id("write_file", WRITTEN, 0), name="write_file", arguments=WRITTEN)
        ],
        finish_reason="stop",
        usage=Usage(prompt_tokens=120, completion_tokens=17),
        model=MODEL,
    ),
}
RECORDED = {"openai": OPENAI_STREAM, "ollama": OLLAMA_STREAM}


def decoded(api: str, pieces: list[bytes]) -> Reply:
    decoder = StreamDecoder(api)
    for piece in pieces:
        decoder.feed(piece)
    return decoder.finish()


def cut(data: bytes, at: list[int]) -> list[bytes]:
    bounds = [0, *sorted(at), len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


# --- the decoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("api", STREAMED)
def test_a_recorded_stream_decodes_to_the_whole_answer(api: str) -> None:
    assert decoded(api, [RECORDED[api]]) == EXPECTED[api]


@pytest.mark.parametrize("api", STREAMED)
def test_a_stream_split_at_any_byte_decodes_to_the_same_answer(api: str) -> None:
    data = RECORDED[api]
    whole = decoded(api, [data])
    for at in range(1, len(data)):
        assert decoded(api, cut(data, [at])) == whole, f"split at byte {at}"


@pytest.mark.parametrize("api", STREAMED)
def test_a_stream_in_many_random_pieces_decodes_to_the_same_answer(api: str) -> None:
    data = RECORDED[api]
    whole = decoded(api, [data])
    rng = random.Random(11)
    for _ in range(200):
        at = rng.sample(range(1, len(data)), rng.randint(2, 40))
        assert decoded(api, cut(data, at)) == whole, f"split at bytes {sorted(at)}"
    assert decoded(api, [bytes([b]) for b in data]) == whole


def test_llama_cpp_timings_say_how_much_of_the_prompt_was_cached() -> None:
    events = (
        b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":'
        b'{"prompt_tokens":50,"completion_tokens":1},"timings":{"cache_n":42}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert decoded("openai", [events]).usage == Usage(
        prompt_tokens=50, completion_tokens=1, cached_tokens=42
    )


@pytest.mark.parametrize("api", STREAMED)
def test_a_stream_that_ends_before_the_answer_is_cut(api: str) -> None:
    data = RECORDED[api]
    end = data.rindex(b"finish_reason" if api == "openai" else b"done_reason")
    for at in (end, data.rindex(b"\n", 0, end) + 1, data.index("日本".encode()) + 1):
        with pytest.raises(StreamCut):
            decoded(api, [data[:at]])


def test_an_error_inside_the_stream_keeps_the_servers_words() -> None:
    error = b'data: {"error":{"code":500,"message":"the slot was lost","type":"server_error"}}\n\n'
    with pytest.raises(StreamError, match="the slot was lost"):
        decoded("openai", [OPENAI_STREAM[: OPENAI_STREAM.index(b"\n\n", 400) + 2], error])
    with pytest.raises(StreamError, match="model crashed"):
        decoded("ollama", [b'{"error":"model crashed"}\n'])


# --- streamed calls to the scripted server ------------------------------------------------------

StartServer = Callable[..., ScriptedServer]
MakeClient = Callable[..., ModelClient]


@pytest.fixture
def serve() -> Iterator[StartServer]:
    """A scripted server giving `replies` in order; `stream=False` is one that cannot stream."""
    servers: list[ScriptedServer] = []

    def start(*replies: dict[str, Any], stream: bool = True) -> ScriptedServer:
        scenario = Scenario.model_validate(
            {"models": [{"name": MODEL}], "rules": [{"replies": list(replies)}], "stream": stream}
        )
        servers.append(ScriptedServer(scenario).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(sleeps: Sleeps, tmp_path: Path) -> MakeClient:
    def make(
        server: ScriptedServer,
        provider: str,
        *,
        stream: bool = True,
        transport: Transport | None = None,
        **limits: Any,
    ) -> ModelClient:
        where = {"ollama": ("ollama_host", server.url),
                 "openai": ("openai_base_url", server.url + "/v1")}[provider]  # fmt: skip
        config = load_config(
            env={},
            user_config=tmp_path / "no-user-config.toml",
            overrides={
                "providers": {where[0]: where[1], "stream": stream},
                "models": {"build": {"provider": provider, "model": MODEL}},
                "limits": {"read_timeout": 5.0, "max_retries": 2, **limits},
            },
        )
        return ModelClient(config, "build", transport=transport, sleep=sleeps)

    return make


ANSWER = {
    "content": TEXT * 3,
    "tool_calls": [{"name": "write_file", "arguments": WRITTEN}],
    "usage": {"prompt_tokens": 300, "completion_tokens": 21, "cached_tokens": 256},
}


def test_the_scripted_server_streams_as_an_openai_server_does(serve: StartServer) -> None:
    server = serve({**ANSWER, "chunks": 5})
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
           "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=ask) as response:
        assert response.headers["content-type"] == "text/event-stream"
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == TEXT * 3
    pieces = [call["function"]["arguments"] for d in deltas for call in d.get("tool_calls", [])]
    assert len([p for p in pieces if p]) > 1
    assert json.loads("".join(pieces)) == WRITTEN
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 256}


def test_the_scripted_server_streams_as_ollama_does_unless_told_not_to(
    serve: StartServer,
) -> None:
    server = serve({**ANSWER, "chunks": 5})
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", server.url + "/api/chat", json=ask) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert "".join(line["message"]["content"] for line in lines) == TEXT * 3
    calls = [c for line in lines for c in line["message"].get("tool_calls", [])]
    function = {"index": 0, "name": "write_file", "arguments": WRITTEN}  # an object, not text
    assert calls == [{"id": "call_scripted_0", "function": function}]
    assert (lines[-1]["prompt_eval_count"], lines[-1]["eval_count"]) == (300, 21)


@pytest.mark.parametrize("provider", STREAMED)
def test_a_streamed_answer_is_the_answer_the_server_sent(
    provider: str, serve: StartServer, client: MakeClient
) -> None:
    server = serve({**ANSWER, "chunks": 9})
    result = client(server, provider).chat(ASK, tools=[WRITE_FILE])
    assert result.streamed
    assert result.text == TEXT * 3
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("write_file", WRITTEN)]
    cached = 256 if provider == "openai" else 0  # Ollama reports no cached tokens
    assert result.usage == Usage(prompt_tokens=300, completion_tokens=21, cached_tokens=cached)
    sent = server.log[-1].body
    assert sent["stream"] is True
    if provider == "openai":
        assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("provider", STREAMED)
def test_streamed_and_whole_answers_are_the_same(
    provider: str, serve: StartServer, client: MakeClient
) -> None:
    server = serve(ANSWER)
    streamed = client(server, provider).chat(ASK, tools=[WRITE_FILE])
    whole = client(server, provider, stream=False).chat(ASK, tools=[WRITE_FILE])
    assert (streamed.streamed, whole.streamed) == (True, False)
    same = ("text", "tool_calls", "usage", "model", "finish_reason")
    assert streamed.model_dump(include=set(same)) == whole.model_dump(include=set(same))


@pytest.mark.parametrize("provider", STREAMED)
def test_progress_is_reported_as_the_answer_arrives(
    provider: str, serve: StartServer, client: MakeClient
) -> None:
    server = serve({"content": "one two three four five six", "chunks": 12, "chunk_delay": 0.03})
    model = client(server, provider)
    seen: list[CallProgress] = []
    model.on_progress = seen.append
    result = model.chat(ASK)
    phases = [p.phase for p in seen]
    assert phases[0] == "start" and phases[-1] == "end"
    chunks = [p for p in seen if p.phase == "chunk"]
    # The first piece at once, then at most ~5 a second: not one report per piece.
    assert 2 <= len(chunks) <= 6
    tokens = [p.tokens for p in chunks]
    assert tokens == sorted(set(tokens)) and tokens[0] >= 1
    assert all(result.text.startswith(p.text) for p in chunks)


def test_a_streamed_call_is_traced_as_streamed_with_the_whole_answer(
    serve: StartServer, client: MakeClient, tmp_path: Path
) -> None:
    server = serve(ANSWER)
    model = client(server, "openai")
    layout = Layout.of(tmp_path)
    layout.traces_dir.mkdir(parents=True)  # as in a team's .agents directory
    model.tracer = Tracer(layout, "trace-1", "builder")
    result = model.chat(ASK, tools=[WRITE_FILE])
    [ended] = [e for e in read_events(model.tracer.events_path).events
               if isinstance(e, ModelCallEnded)]  # fmt: skip
    assert ended.streamed and ended.cached_tokens == 256
    stored = model.tracer.store.load(result.call_id)
    assert stored is not None
    assert stored["request"]["stream"] is True
    assert stored["answer"]["text"] == TEXT * 3


@pytest.mark.parametrize("provider", STREAMED)
def test_a_server_that_cannot_stream_is_answered_whole(
    provider: str, serve: StartServer, client: MakeClient
) -> None:
    server = serve(ANSWER, stream=False)
    result = client(server, provider).chat(ASK, tools=[WRITE_FILE])
    assert server.log[-1].body["stream"] is True
    assert not result.streamed
    assert result.text == TEXT * 3
    assert result.tool_calls[0].arguments == WRITTEN


@pytest.mark.parametrize("provider", STREAMED)
def test_stream_false_in_the_config_asks_for_a_whole_answer(
    provider: str, serve: StartServer, client: MakeClient
) -> None:
    server = serve(ANSWER)
    result = client(server, provider, stream=False).chat(ASK)
    assert server.log[-1].body["stream"] is False
    assert "stream_options" not in server.log[-1].body
    assert not result.streamed
    assert result.text == TEXT * 3


def test_a_recording_transport_asks_for_a_whole_answer(
    serve: StartServer, client: MakeClient, tmp_path: Path
) -> None:
    server = serve(ANSWER)
    recorder = RecordingTransport(HttpxTransport(), tmp_path / "tape.json")
    assert not client(server, "openai", transport=recorder).chat(ASK).streamed
    assert server.log[-1].body["stream"] is False


@pytest.mark.parametrize("provider", STREAMED)
@pytest.mark.parametrize(
    ("words", "error"),
    [
        ("the request exceeds the available context size, try increasing it", ContextOverflow),
        ("the slot was lost", ServerError),
    ],
)
def test_an_error_inside_the_stream_is_the_error_of_a_whole_answer(
    provider: str,
    words: str,
    error: type[Exception],
    serve: StartServer,
    client: MakeClient,
    sleeps: Sleeps,
) -> None:
    server = serve({"content": "partial answer", "error": words, "error_code": 400})
    with pytest.raises(error, match=words):
        client(server, provider).chat(ASK)
    whole = serve({"error": words})
    with pytest.raises(error, match=words):
        client(whole, provider, stream=False).chat(ASK)
    assert sleeps == []


def test_a_server_failure_inside_the_stream_is_retried_as_a_5xx(
    serve: StartServer, client: MakeClient, sleeps: Sleeps
) -> None:
    server = serve({"content": "partial", "error": "the slot was lost"}, ANSWER)
    result = client(server, "openai").chat(ASK)
    assert result.text == ANSWER["content"] and len(sleeps) == 1
    assert len(server.log) == 2


@pytest.mark.parametrize("provider", STREAMED)
def test_a_streamed_answer_cut_at_its_token_limit_is_truncated(
    provider: str, serve: StartServer, client: MakeClient
) -> None:
    server = serve({"content": "def half(", "finish_reason": "length"})
    with pytest.raises(TruncatedAnswer, match="cut off at its token limit"):
        client(server, provider).chat(ASK)


@pytest.mark.parametrize("provider", STREAMED)
def test_a_connection_cut_mid_stream_is_retried(
    provider: str, serve: StartServer, client: MakeClient, sleeps: Sleeps
) -> None:
    server = serve({"content": TEXT, "chunks": 4, "cut_after": 2}, {"content": "ok"})
    assert client(server, provider).chat(ASK).text == "ok"
    assert len(server.log) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("provider", STREAMED)
def test_a_stream_cut_every_time_is_unreachable_after_the_retries(
    provider: str, serve: StartServer, client: MakeClient, sleeps: Sleeps
) -> None:
    server = serve({"content": TEXT, "chunks": 4, "cut_after": 2})
    with pytest.raises(ServerUnreachable, match="after 3 tries"):
        client(server, provider, max_retries=2).chat(ASK)
    assert len(server.log) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("provider", STREAMED)
def test_a_stream_quiet_for_longer_than_the_read_timeout_times_out(
    provider: str, serve: StartServer, client: MakeClient, sleeps: Sleeps
) -> None:
    server = serve({"content": TEXT, "chunks": 2, "chunk_delay": 0.8})
    with pytest.raises(ModelTimeout, match=r"within 0\.2s"):
        client(server, provider, read_timeout=0.2).chat(ASK)
    assert sleeps == []  # a timeout is not retried


@pytest.mark.parametrize("provider", STREAMED)
def test_a_slow_but_steady_stream_outlasts_the_read_timeout(
    provider: str, serve: StartServer, client: MakeClient
) -> None:
    # Gaps of 0.3 s under a 1 s timeout: wide margins on a loaded machine.
    server = serve({"content": TEXT, "chunks": 4, "chunk_delay": 0.3})
    result = client(server, provider, read_timeout=1.0).chat(ASK)
    assert result.duration_s > 1.0
    assert result.text == TEXT


@pytest.mark.parametrize(("provider", "frames"), [("openai", 6), ("ollama", 5)])
def test_a_stream_cut_after_its_end_is_not_asked_again(
    provider: str, frames: int, serve: StartServer, client: MakeClient, sleeps: Sleeps
) -> None:
    # Every piece up to the finish reason (OpenAI) or the done line (Ollama), then the
    # connection drops: the answer is whole, and asking again would spend it twice.
    server = serve({"content": TEXT, "chunks": 4, "cut_after": frames}, {"content": "again"})
    assert client(server, provider).chat(ASK).text == TEXT
    assert len(server.log) == 1 and sleeps == []


def test_tool_calls_that_all_say_index_0_stay_apart() -> None:
    # Ollama's /v1 streams every call of an answer at index 0, each with its own id.
    def piece(**call: Any) -> bytes:
        delta = {"tool_calls": [{"index": 0, **call}]}
        return (
            b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode() + b"\n\n"
        )

    first = {"id": "a", "function": {"name": "read_file", "arguments": '{"path": '}}
    second = {"id": "b", "function": {"name": "read_file", "arguments": '{"path": "w.py"}'}}
    end = b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}\n\n'
    reply = decoded("openai", [piece(**first), piece(function={"arguments": '"h.py"}'}),
                               piece(**second), end, b"data: [DONE]\n\n"])  # fmt: skip
    assert [(c.id, c.arguments) for c in reply.tool_calls] == [
        ("a", {"path": "h.py"}),
        ("b", {"path": "w.py"}),
    ]


def test_a_stream_without_usage_counts_its_pieces() -> None:
    chunks = [
        b'data: {"choices": [{"index": 0, "delta": {"content": "he"}}]}\n\n',
        b'data: {"choices": [{"index": 0, "delta": {"content": "llo"}, "finish_reason": "stop"}]}'
        b"\n\ndata: [DONE]\n\n",
    ]
    assert decoded("openai", chunks).usage == Usage(completion_tokens=2)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_arguments_that_are_not_json_come_back_as_a_call_with_the_parsers_error(
    stream: bool, serve: StartServer, client: MakeClient
) -> None:
    cut = '{"path": "m.py", "content": "x = '
    server = serve({"tool_calls": [{"name": "write_file", "raw_arguments": cut}]})
    [call] = client(server, "openai", stream=stream).chat(ASK, tools=[WRITE_FILE]).tool_calls
    assert (call.name, call.arguments) == ("write_file", {})
    assert call.arguments_error is not None and "Unterminated string" in call.arguments_error
