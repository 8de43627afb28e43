"""The model client against the scripted server, over real sockets, for every provider."""

from __future__ import annotations

import json
import socket

import pytest
from pydantic import BaseModel

from protocol.llm import (
    BadAnswer,
    ChatMessage,
    ContextOverflow,
    ModelNotFound,
    ModelTimeout,
    ServerError,
    ServerUnreachable,
    ToolSpec,
    TruncatedAnswer,
    Usage,
)
from tests.protocol.llm.conftest import MODEL, PROVIDERS, MakeClient, Sleeps, StartServer

WRITE_FILE = ToolSpec(
    name="write_file",
    description="Write a whole file.",
    parameters={
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
)
ASK = [ChatMessage.system("You are a builder."), ChatMessage.user("TASK 1: models\nFILES: m.py")]


class Module(BaseModel):
    name: str
    files: list[str]


pytestmark = pytest.mark.parametrize("provider", PROVIDERS)


def test_plain_chat(provider: str, scripted: StartServer, make_client: MakeClient) -> None:
    server = scripted([{"match": {"contains": "hello"}, "reply": {"content": "hi there"}}])
    result = make_client(server.url, provider).chat([ChatMessage.user("hello")])
    assert result.text == "hi there"
    assert result.tool_calls == []
    assert result.provider == provider
    assert result.usage.prompt_tokens == 10
    assert server.log[0].seen.api == provider
    assert server.log[0].seen.role == "build"


def test_every_provider_counts_the_cached_part_inside_the_prompt(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    # Anthropic's input_tokens leave the cached part out, OpenAI's prompt_tokens hold it.
    usage = {"prompt_tokens": 300, "completion_tokens": 21, "cached_tokens": 256}
    server = scripted([{"reply": {"content": "hi", "usage": usage}}])
    result = make_client(server.url, provider).chat([ChatMessage.user("hello")])
    cached = 0 if provider == "ollama" else 256  # Ollama reports no cache
    assert result.usage == Usage(prompt_tokens=300, completion_tokens=21, cached_tokens=cached)


def test_native_tool_calls_and_the_tool_result_round_trip(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    call = {"name": "write_file", "arguments": {"path": "m.py", "content": "x = 1\n"}}
    server = scripted(
        [
            {"match": {"files": "m.py", "turn": 0}, "reply": {"tool_calls": [call]}},
            {"match": {"files": "m.py", "turn": 1}, "reply": {"content": "done"}},
        ]
    )
    client = make_client(server.url, provider)
    first = client.chat(ASK, tools=[WRITE_FILE])
    [tool_call] = first.tool_calls
    assert (tool_call.name, tool_call.arguments) == ("write_file", call["arguments"])
    assert not first.recovered_tool_calls

    history = [*ASK, ChatMessage(role="assistant", tool_calls=first.tool_calls),
               ChatMessage.tool_result(tool_call, "wrote m.py")]  # fmt: skip
    second = client.chat(history, tools=[WRITE_FILE])
    assert second.text == "done"
    sent = json.dumps(server.log[1].body)
    assert "wrote m.py" in sent
    assert tool_call.id in sent or provider == "ollama"  # Ollama matches results by name


@pytest.mark.parametrize(
    "written",
    [
        '<tool_call>{"name": "write_file", "arguments": {"path": "m.py", "content": "x"}}'
        "</tool_call>",
        'I will write it.\n```json\n{"name": "write_file", "arguments": {"path": "m.py", '
        '"content": "x"}}\n```',
        '{"name": "write_file", "arguments": "{\\"path\\": \\"m.py\\", \\"content\\": \\"x\\"}"}',
    ],
    ids=["tag", "fence", "bare-with-string-arguments"],
)
def test_tool_calls_written_as_text_are_recovered(
    provider: str, written: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "<think>plan it</think>" + written}}])
    result = make_client(server.url, provider).chat(ASK, tools=[WRITE_FILE])
    [call] = result.tool_calls
    assert call.name == "write_file"
    assert call.arguments == {"path": "m.py", "content": "x"}
    assert result.recovered_tool_calls


def test_a_schema_answer_is_parsed(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    answer = {"name": "storage", "files": ["store.py"]}
    server = scripted([{"match": {"schema": "Module"}, "reply": {"json": answer}}])
    result = make_client(server.url, provider).chat(ASK, schema=Module)
    assert result.parsed == Module(**answer)
    assert result.attempts == 1


def test_a_non_json_answer_is_repaired_on_the_second_try(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted(
        [
            {"match": {"turn": 0}, "reply": {"content": "Sure! The module is storage."}},
            {"match": {"turn": 1}, "reply": {"json": {"name": "storage", "files": []}}},
        ]
    )
    result = make_client(server.url, provider).chat(ASK, schema=Module)
    assert result.parsed == Module(name="storage", files=[])
    assert result.attempts == 2
    assert "could not be used" in server.log[1].seen.last_user


def test_an_answer_that_never_fits_the_schema_is_a_bad_answer(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"json": {"name": 5}}}])
    with pytest.raises(BadAnswer) as caught:
        make_client(server.url, provider).chat(ASK, schema=Module)
    message = str(caught.value)
    assert f"{MODEL} (build) did not give a valid Module after 2 tries" in message
    assert "files: Field required" in message
    assert len(server.log) == 2


def test_a_500_is_retried_then_succeeds(
    provider: str, scripted: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    server = scripted([{"replies": [{"status": 500, "error": "boom"}, {"content": "ok"}]}])
    assert make_client(server.url, provider).chat(ASK).text == "ok"
    assert len(sleeps) == 1
    assert 0.25 <= sleeps[0] <= 0.5  # base 0.5 s, with jitter


def test_429_backs_off_exponentially_and_honours_retry_after(
    provider: str, scripted: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    busy = {"status": 429, "error": "queue full"}
    server = scripted(
        [{"replies": [busy, busy, {**busy, "headers": {"Retry-After": "3"}}, {"content": "ok"}]}]
    )
    assert make_client(server.url, provider).chat(ASK).text == "ok"
    assert len(sleeps) == 3
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0
    assert sleeps[2] == 3.0


def test_a_server_that_stays_busy_is_an_error_after_the_retries(
    provider: str, scripted: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    server = scripted([{"reply": {"status": 503, "error": "overloaded"}}])
    with pytest.raises(ServerError, match="kept failing \\(503\\) through 3 tries: overloaded"):
        make_client(server.url, provider, limits={"max_retries": 2}).chat(ASK)
    assert len(sleeps) == 2


def test_a_4xx_is_not_retried(
    provider: str, scripted: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    server = scripted([{"reply": {"status": 400, "error": "bad request: messages"}}])
    with pytest.raises(ServerError, match="refused the request \\(400\\): bad request"):
        make_client(server.url, provider).chat(ASK)
    assert sleeps == []
    assert len(server.log) == 1


def test_a_read_timeout_says_the_model_is_too_slow(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "late", "delay": 2.0}}])
    client = make_client(server.url, provider, limits={"read_timeout": 0.3})
    with pytest.raises(ModelTimeout) as caught:
        client.chat(ASK)
    assert f"no answer from {MODEL}" in str(caught.value)
    assert "within 0.3s" in str(caught.value)
    assert "limits.read_timeout" in str(caught.value)


def test_connection_refused_names_the_url_and_how_to_start_the_server(
    provider: str, make_client: MakeClient, sleeps: Sleeps
) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ServerUnreachable) as caught:
        make_client(url, provider, limits={"max_retries": 2}).chat(ASK)
    message = str(caught.value)
    assert f"cannot reach the {provider} server at {url}" in message
    assert "after 3 tries" in message
    advice = {"ollama": "ollama serve", "openai": "OPENAI_BASE_URL", "anthropic": "base URL"}
    assert advice[provider] in message
    assert len(sleeps) == 2


def test_a_missing_model_says_how_to_get_it(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "never"}}])
    with pytest.raises(ModelNotFound) as caught:
        make_client(server.url, provider, model="llama9:400b").chat(ASK)
    message = str(caught.value)
    assert "model 'llama9:400b' is not available" in message
    if provider == "ollama":
        assert "run `ollama pull llama9:400b`" in message


def test_an_answer_cut_at_the_token_limit_is_an_error(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "def half(", "finish_reason": "length"}}])
    with pytest.raises(TruncatedAnswer, match="cut off at its token limit"):
        make_client(server.url, provider).chat(ASK)


def test_a_prompt_over_the_context_window_is_refused_before_sending(
    provider: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "never"}}])
    client = make_client(server.url, provider, context_window=1024, max_answer_tokens=256)
    with pytest.raises(ContextOverflow) as caught:
        client.chat([ChatMessage.user("x" * 10_000)])
    assert "context window of 1024" in str(caught.value)
    assert "models.build.context_window" in str(caught.value)
    assert [r for r in server.log if r.seen.api == provider] == []
