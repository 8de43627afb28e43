"""Real Ollama's documented shapes (docs/api.md and api/types.go of Ollama v0.33.0-rc2): our
client decodes them as Ollama sends them, and the scripted server answers in them."""

from __future__ import annotations

import json
from typing import Any

import httpx

from protocol.llm import ChatMessage, Usage
from protocol.llm.stream import StreamDecoder
from protocol.llm.wire import Ollama, decode
from tests.protocol.llm.conftest import MODEL, MakeClient, StartServer
from tests.protocol.llm.test_client import ASK, WRITE_FILE

# docs/api.md, "Chat request (No streaming, with tools)": the response, as documented.
DOC_ANSWER_WITH_TOOLS: dict[str, Any] = {
    "model": "llama3.2",
    "created_at": "2025-07-07T20:32:53.844124Z",
    "message": {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}],
    },
    "done_reason": "stop",
    "done": True,
    "total_duration": 3244883583,
    "load_duration": 2969184542,
    "prompt_eval_count": 169,
    "prompt_eval_duration": 141656333,
    "eval_count": 18,
    "eval_duration": 133293625,
}
# docs/api.md, "Chat request (Streaming with tools)", with the call's `id` and `function.index`
# that api/types.go adds (since 0.12.10 and 0.4.7), and "Chat request (Streaming)"'s text line.
DOC_STREAM: list[dict[str, Any]] = [
    {"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00",
     "message": {"role": "assistant", "content": "The", "images": None}, "done": False},
    {"model": "llama3.2", "created_at": "2025-07-07T20:22:19.184789Z",
     "message": {"role": "assistant", "content": "", "tool_calls": [
         {"id": "call_4x9kq2", "function": {"index": 0, "name": "get_weather",
                                            "arguments": {"city": "Tokyo"}}}]},
     "done": False},
    {"model": "llama3.2", "created_at": "2025-07-07T20:22:19.19314Z",
     "message": {"role": "assistant", "content": ""}, "done_reason": "stop", "done": True,
     "total_duration": 182242375, "load_duration": 41295167, "prompt_eval_count": 169,
     "prompt_eval_duration": 24573166, "eval_count": 15, "eval_duration": 115959084},
]  # fmt: skip
FINAL_KEYS = {"model", "created_at", "message", "done", "done_reason", "total_duration",
              "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
              "eval_duration"}  # fmt: skip
DETAILS_KEYS = {"parent_model", "format", "family", "families", "parameter_size",
                "quantization_level"}  # fmt: skip
WRITTEN = {"path": "m.py", "content": "x"}


def test_the_documented_whole_answer_with_a_tool_call_decodes() -> None:
    reply = decode(Ollama(), DOC_ANSWER_WITH_TOOLS)
    [call] = reply.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Tokyo"})
    assert reply.finish_reason == "stop"
    assert reply.usage == Usage(prompt_tokens=169, completion_tokens=18)
    assert reply.model == "llama3.2"


def test_the_documented_stream_decodes_line_by_line() -> None:
    decoder = StreamDecoder("ollama")
    for line in DOC_STREAM:
        decoder.feed((json.dumps(line) + "\n").encode())
    reply = decoder.finish()
    assert reply.text == "The"
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_weather", {"city": "Tokyo"})]
    assert reply.finish_reason == "stop"
    assert reply.usage == Usage(prompt_tokens=169, completion_tokens=15)


def test_the_scripted_whole_answer_has_ollamas_fields(scripted: StartServer) -> None:
    server = scripted([{"reply": {"tool_calls": [{"name": "write_file", "arguments": WRITTEN}]}}])
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    body = httpx.post(server.url + "/api/chat", json=ask).json()
    assert set(body) == FINAL_KEYS
    assert body["done"] is True and body["done_reason"] == "stop"
    assert all(isinstance(body[k], int) for k in FINAL_KEYS if k.endswith(("count", "duration")))
    [call] = body["message"]["tool_calls"]
    assert call["function"]["arguments"] == WRITTEN  # an object, not a JSON string
    assert body["created_at"].endswith("Z") and "." in body["created_at"]


def test_the_scripted_stream_has_ollamas_lines(scripted: StartServer) -> None:
    server = scripted([{"reply": {"content": "hello there, world", "chunks": 3}}])
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}  # streams by default
    with httpx.stream("POST", server.url + "/api/chat", json=ask) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    *pieces, final = lines
    assert all(set(p) == {"model", "created_at", "message", "done"} for p in pieces)
    assert all(p["done"] is False and p["message"]["role"] == "assistant" for p in pieces)
    assert set(final) == FINAL_KEYS
    assert final["message"] == {"role": "assistant", "content": ""}


def test_the_scripted_tags_and_show_have_ollamas_fields(scripted: StartServer) -> None:
    server = scripted([], models=[{"name": MODEL, "family": "qwen2", "context_length": 32768}])
    [tag] = httpx.get(server.url + "/api/tags").json()["models"]
    assert set(tag) == {"name", "model", "modified_at", "size", "digest", "details"}
    assert (tag["name"], tag["model"]) == (MODEL, MODEL)
    assert set(tag["details"]) == DETAILS_KEYS
    show = httpx.post(server.url + "/api/show", json={"model": MODEL}).json()
    assert {"modelfile", "parameters", "template", "details", "model_info", "capabilities"} <= set(
        show
    )
    assert show["model_info"]["general.architecture"] == "qwen2"
    assert show["model_info"]["qwen2.context_length"] == 32768
    assert show["capabilities"] == ["completion", "tools"]


def test_the_client_round_trips_a_tool_call_with_the_scripted_ollama(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted(
        [
            {"match": {"turn": 0}, "reply": {"tool_calls": [
                {"name": "write_file", "arguments": WRITTEN}]}},
            {"match": {"turn": 1}, "reply": {"content": "done"}},
        ]
    )  # fmt: skip
    client = make_client(server.url, "ollama")
    first = client.chat(ASK, tools=[WRITE_FILE])
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("write_file", WRITTEN)]
    history = [*ASK, ChatMessage(role="assistant", tool_calls=first.tool_calls),
               ChatMessage.tool_result(first.tool_calls[0], "ok")]  # fmt: skip
    assert client.chat(history, tools=[WRITE_FILE]).text == "done"
    sent = server.log[1].body["messages"]
    assert sent[-2]["tool_calls"] == [{"function": {"name": "write_file", "arguments": WRITTEN}}]
    assert sent[-1] == {"role": "tool", "content": "ok", "tool_name": "write_file"}
