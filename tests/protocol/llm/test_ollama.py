"""What only Ollama needs: the request shape of DESIGN §7 and models without native tools."""

from __future__ import annotations

from protocol.llm import ChatMessage
from tests.protocol.llm.conftest import MODEL, MakeClient, StartServer
from tests.protocol.llm.test_client import ASK, WRITE_FILE


def test_every_request_streams_with_num_ctx_and_keep_alive(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "ok"}}])
    client = make_client(server.url, "ollama", context_window=8192)
    client.chat([ChatMessage.user("hi")], temperature=0.1, seed=7)
    body = server.log[0].body
    assert body["stream"] is True  # providers.stream; false in test_streaming.py
    assert body["options"] == {"num_ctx": 8192, "num_predict": 4096, "temperature": 0.1, "seed": 7}
    assert body["keep_alive"] == "10m"


def test_a_model_without_tool_support_gets_the_tools_as_text(
    scripted: StartServer, make_client: MakeClient
) -> None:
    written = (
        '<tool_call>{"name": "write_file", "arguments": {"path": "m.py", "content": ""}}'
        "</tool_call>"
    )
    server = scripted(
        [{"reply": {"content": written}}],
        models=[{"name": MODEL, "capabilities": ["completion"]}],
    )
    result = make_client(server.url, "ollama").chat(ASK, tools=[WRITE_FILE])
    [call] = result.tool_calls
    assert call.name == "write_file"
    assert result.recovered_tool_calls
    body = server.log[0].body
    assert "tools" not in body
    assert "<tool_call>" in body["messages"][0]["content"]
    assert "write_file" in body["messages"][0]["content"]


def test_capabilities_are_asked_once_per_client(
    scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"content": "ok"}}])
    client = make_client(server.url, "ollama")
    client.chat(ASK, tools=[WRITE_FILE])
    client.chat(ASK, tools=[WRITE_FILE])
    assert server.model.shows == ["coder:7b"]
    assert "tools" in server.log[1].body
