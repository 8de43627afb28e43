"""What the server says it can do (server_info.py), and what the client does with it: text tool
calls for a template without tools, budgets within the server's real context."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from protocol.config import ModelRoute
from protocol.llm import ChatMessage, ContextOverflow
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.llm.server_info import (
    UNKNOWN,
    ServerInfo,
    fitted_route,
    from_props,
    from_show,
    server_root,
)
from tests.protocol.llm.conftest import MODEL, MakeClient, StartServer
from tests.protocol.llm.test_client import ASK, WRITE_FILE

# What a real llama-server (SmolLM2-135M, `--jinja -c 8192 -np 2`) answered at GET /props.
REAL_PROPS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "llamacpp_props.json").read_text(encoding="utf-8")
)
NO_TOOLS_4K = {
    "chat_template_caps": {"supports_tools": False},
    "default_generation_settings": {"n_ctx": 4096},
    "total_slots": 2,
}
WRITTEN_CALL = (
    '<tool_call>{"name": "write_file", "arguments": {"path": "m.py", "content": "x"}}</tool_call>'
)


# --- the parsers ------------------------------------------------------------------------------


def test_real_llamacpp_props_give_no_tools_the_per_slot_context_and_the_slots() -> None:
    assert from_props(REAL_PROPS) == ServerInfo(
        supports_tools=False, context=4096, slots=2, source="/props"
    )


@pytest.mark.parametrize("body", [{}, {"detail": "Not Found"}, "<html>", None, []])
def test_a_props_body_that_says_nothing_gives_unknowns(body: Any) -> None:
    assert from_props(body) == UNKNOWN


def test_ollama_show_gives_tools_from_capabilities_and_the_models_context_length() -> None:
    body = {
        "capabilities": ["completion", "vision"],
        "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
    }
    assert from_show(body) == ServerInfo(supports_tools=False, context=8192, source="/api/show")


def test_an_ollama_that_lists_no_capabilities_is_not_taken_to_refuse_tools() -> None:
    body = {"model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768}}
    assert from_show(body).supports_tools is None
    assert from_show({"details": {"family": "qwen2"}}) == UNKNOWN


def test_the_route_fits_the_servers_context_and_leaves_room_for_the_prompt() -> None:
    route = ModelRoute(model="m", context_window=8192, max_answer_tokens=4096)
    fitted = fitted_route(route, ServerInfo(context=4096))
    assert (fitted.context_window, fitted.max_answer_tokens) == (4096, 2048)
    assert fitted_route(route, ServerInfo(context=32768)) == route
    assert fitted_route(route, UNKNOWN) == route


def test_props_sit_at_the_server_root_without_v1() -> None:
    assert server_root("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080"
    assert server_root("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080"
    assert server_root("http://box:8080") == "http://box:8080"


# --- the client, over HTTP to the scripted server -------------------------------------------


def test_a_template_without_tools_gets_text_calls_and_they_are_recovered(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": WRITTEN_CALL}}], props=NO_TOOLS_4K)
    client = make_client(server.url, "openai", context_window=8192)
    result = client.chat(ASK, tools=[WRITE_FILE])
    client.chat(ASK, tools=[WRITE_FILE])
    [call] = result.tool_calls
    assert (call.name, call.arguments) == ("write_file", {"path": "m.py", "content": "x"})
    assert result.recovered_tool_calls
    body = server.log[0].body
    assert "tools" not in body
    assert "write_file" in body["messages"][0]["content"]
    assert server.model.props_asked == 1, "asked once per client"


def test_a_server_that_says_it_takes_tools_gets_them_natively(
    scripted: StartServer, make_client: MakeClient
) -> None:
    props = {**NO_TOOLS_4K, "chat_template_caps": {"supports_tools": True}}
    server = scripted([{"reply": {"content": "ok"}}], props=props)
    make_client(server.url, "openai").chat(ASK, tools=[WRITE_FILE])
    assert [t["function"]["name"] for t in server.log[0].body["tools"]] == ["write_file"]


def test_the_budget_is_the_servers_per_slot_context_not_the_configured_one(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "ok"}}], props=NO_TOOLS_4K)
    client = make_client(server.url, "openai", context_window=8192, max_answer_tokens=4096)
    # The agent loop and the worker budget with `client.route`: it is the served one.
    assert (client.route.context_window, client.route.max_answer_tokens) == (4096, 2048)
    assert client.configured.context_window == 8192
    client.chat([ChatMessage.user("hi")])
    assert server.log[0].body["max_tokens"] == 2048


def test_a_prompt_over_the_servers_context_is_refused_and_says_whose_limit_it_is(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "never"}}], props=NO_TOOLS_4K)
    client = make_client(server.url, "openai", context_window=16384, max_answer_tokens=1024)
    with pytest.raises(ContextOverflow) as caught:
        client.chat([ChatMessage.user("x" * 20_000)])  # ~5,000 tokens: fits 16k, not 4k
    message = str(caught.value)
    assert "context window of 4096" in message
    assert "the server gives it 4096 of the configured 16384 (/props)" in message
    assert server.log == []


def test_a_server_without_props_changes_nothing(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "ok"}}])  # /props is a 404, as on vLLM
    client = make_client(server.url, "openai", context_window=8192)
    assert client.server_info() == UNKNOWN
    assert client.route == client.configured
    client.chat(ASK, tools=[WRITE_FILE])
    assert "tools" in server.log[0].body


def test_ollama_sends_num_ctx_within_the_models_context_length(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted(
        [{"reply": {"content": "ok"}}], models=[{"name": MODEL, "context_length": 4096}]
    )
    client = make_client(server.url, "ollama", context_window=16384, max_answer_tokens=4096)
    client.chat([ChatMessage.user("hi")])
    options = server.log[0].body["options"]
    assert (options["num_ctx"], options["num_predict"]) == (4096, 2048)
    assert client.server_info() == ServerInfo(True, 4096, None, "/api/show")


def test_a_server_that_was_not_up_is_asked_again_with_the_next_call(
    make_client: MakeClient,
) -> None:
    with socket.socket() as probe:  # a free port, where nothing listens yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", "openai", context_window=8192)
    assert client.server_info() == ServerInfo(answered=False)
    assert client.route == client.configured
    scenario = Scenario.model_validate(
        {"models": [{"name": MODEL}], "rules": [{"reply": {"content": "ok"}}],
         "props": NO_TOOLS_4K}
    )  # fmt: skip
    with ScriptedServer(scenario, port=port) as server:
        client.chat([ChatMessage.user("hi")])
        assert server.model.props_asked == 1
        assert client.route.context_window == 4096
