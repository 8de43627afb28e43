"""Odd but plausible answers from real servers: each is a typed error with the server's words,
never a raw KeyError or AttributeError."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from protocol.config import Config, Providers, url_problem
from protocol.llm import (
    BadServerURL,
    ChatMessage,
    ContextOverflow,
    ModelClient,
    ModelError,
    ModelNotFound,
    ServerError,
    ServerUnreachable,
)
from protocol.llm.wire import WIRE_FORMATS, ChatRequest
from tests.protocol.llm.conftest import MakeClient, Sleeps, StartServer

ASK = [ChatMessage.user("hello")]


class _Fixed(BaseHTTPRequestHandler):
    status = 200
    body = b""
    content_type = "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    do_GET = _answer


@pytest.fixture
def fixed_server() -> Iterator[Any]:
    """A server that answers every request with one fixed status and body."""
    servers = []

    def start(status: int, body: bytes, content_type: str = "application/json") -> str:
        handler = type("H", (_Fixed,), {"status": status, "body": body,
                                        "content_type": content_type})  # fmt: skip
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()  # fmt: skip
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("ollama", b'{"message": null}'),
        ("openai", b'{"choices": [{"message": null}]}'),
        ("anthropic", b'{"content": null}'),
        ("openai", b'{"choices": []}'),
        ("ollama", b'"just a string"'),
        ("openai", b"<html><body>Welcome to nginx</body></html>"),
    ],
    ids=["ollama-null", "openai-null", "anthropic-null", "no-choices", "string", "html"],
)
def test_an_odd_200_answer_is_a_server_error_with_an_excerpt(
    provider: str, body: bytes, fixed_server: Any, make_client: MakeClient
) -> None:
    url = fixed_server(200, body)
    with pytest.raises(ServerError, match="answered in an unexpected shape"):
        make_client(url, provider).chat(ASK, tools=None)


def test_content_given_as_parts_is_joined(fixed_server: Any, make_client: MakeClient) -> None:
    parts = b'[{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]'
    body = b'{"choices": [{"message": {"content": %s}, "finish_reason": "stop"}], "model": null}'
    body = body % parts
    url = fixed_server(200, body)
    assert make_client(url, "openai").chat(ASK).text == "ab"


def test_a_200_carrying_an_error_keeps_the_servers_words(
    fixed_server: Any, make_client: MakeClient
) -> None:
    url = fixed_server(200, b'{"error": {"message": "upstream provider overloaded"}}')
    with pytest.raises(ServerError, match="upstream provider overloaded"):
        make_client(url, "openai").chat(ASK)


def test_a_404_from_something_that_is_not_the_api_says_check_the_url(
    fixed_server: Any, make_client: MakeClient
) -> None:
    url = fixed_server(404, b"<html>404 Not Found</html>", "text/html")
    with pytest.raises(ServerError) as caught:
        make_client(url, "openai").chat(ASK)
    assert not isinstance(caught.value, ModelNotFound)
    assert "has no such endpoint" in str(caught.value)
    assert "OPENAI_BASE_URL (it usually ends in /v1)" in str(caught.value)


@pytest.mark.parametrize(
    "words",
    [
        "the request exceeds the available context size, try increasing it",
        "prompt is too long: 250000 tokens > 200000 maximum",
        "This model's maximum context length is 8192 tokens",
    ],
)
def test_a_server_saying_the_prompt_is_too_long_is_a_context_overflow(
    words: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"reply": {"status": 400, "error": words}}])
    with pytest.raises(ContextOverflow, match="too long"):
        make_client(server.url, "openai").chat(ASK)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_strange_retry_after_never_breaks_the_backoff(
    value: str, scripted: StartServer, make_client: MakeClient
) -> None:
    server = scripted([{"replies": [{"status": 503, "headers": {"Retry-After": value}},
                                    {"content": "ok"}]}])  # fmt: skip
    assert make_client(server.url, "ollama").chat(ASK).text == "ok"


def _request(**changes: Any) -> ChatRequest:
    fields: dict[str, Any] = {
        "model": "m", "messages": ASK, "tools": None, "schema": None, "schema_name": "",
        "temperature": None, "seed": None, "context_window": 4096, "max_answer_tokens": 512,
    }  # fmt: skip
    return ChatRequest(**{**fields, **changes})


def test_ollama_is_told_how_long_the_answer_may_be() -> None:
    body = WIRE_FORMATS["ollama"].body(_request())
    assert body["options"]["num_predict"] == 512
    assert body["options"]["num_ctx"] == 4096


def test_openai_itself_gets_max_completion_tokens_and_local_servers_max_tokens() -> None:
    local = WIRE_FORMATS["openai"].body(_request())
    official = WIRE_FORMATS["openai"].body(_request(official_openai=True))
    assert local["max_tokens"] == 512 and "max_completion_tokens" not in local
    assert official["max_completion_tokens"] == 512 and "max_tokens" not in official


def closed_port() -> int:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_for(url: str, sleeps: Sleeps) -> ModelClient:
    """A client for an Ollama at `url`, through a Config built by hand: no check on the way."""
    config = Config(providers=Providers(ollama_host=url))
    config.limits.max_retries = 1
    return ModelClient(config, "build", sleep=sleeps)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:abc",
        "http://127.0.0.1::::",
        "http://[::1",
        "http://[zz]:1",
        "http://xn--a:{port}",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:{port}",
        "http://[::1]:{port}",
        "http://user:pw@127.0.0.1:{port}/",
        "http://localhost:{port}/v1",
    ],
)
def test_the_client_never_lets_an_httpx_url_error_out(url: str, sleeps: Sleeps) -> None:
    """Whatever the URL, a model error; and one the config check accepts fails only as an
    unreachable server."""
    url = url.format(port=closed_port())
    with client_for(url, sleeps) as client, pytest.raises(ModelError) as caught:
        client.available_models()
    if url_problem(url) is None:
        assert isinstance(caught.value, ServerUnreachable)


def test_a_url_httpx_cannot_parse_is_a_bad_server_url_without_retries(sleeps: Sleeps) -> None:
    with client_for("http://localhost:abc", sleeps) as client:
        with pytest.raises(BadServerURL, match="http://localhost:abc is not a usable URL"):
            client.available_models()
        with pytest.raises(BadServerURL, match="fix OLLAMA_HOST"):
            client.chat(ASK)
    assert sleeps == []
