"""What a model server says it can do, asked before relying on it (DESIGN §7): whether the
model's chat template takes tools, how many tokens one request really has, how many requests it
serves at once. llama.cpp answers `GET /props` at its root; Ollama `POST /api/show`. A server
without the endpoint (vLLM, OpenAI, an older server) gives unknowns, never an error.

The parsers are pure; `fetch` is the one function that does I/O, and `fitted_route` decides
what the client budgets with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from protocol.config import ModelRoute
from protocol.llm.transport import ConnectFailed, ReadTimedOut, Transport, UnusableURL

Source = Literal["/props", "/api/show", ""]
INFO_TIMEOUT = 30.0  # seconds: both endpoints answer at once; a hung server must not stall a call


@dataclass(frozen=True)
class ServerInfo:
    """The server's facts about one model; None where it did not say."""

    supports_tools: bool | None = None  # False: its template drops tools (text calls instead)
    context: int | None = None  # tokens one request can use: llama.cpp's per-slot n_ctx
    slots: int | None = None  # requests served at once (llama.cpp's -np)
    source: Source = ""  # the endpoint the facts came from; "" when none said anything
    answered: bool = True  # False: no server answered, so the question is asked again later

    @property
    def known(self) -> bool:
        return bool(self.source)


UNKNOWN = ServerInfo()


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def from_props(body: Any) -> ServerInfo:
    """llama.cpp's `/props`: `chat_template_caps.supports_tools`,
    `default_generation_settings.n_ctx` (per slot: `-c 8192 -np 2` gives 4096), `total_slots`."""
    if not isinstance(body, dict):
        return UNKNOWN
    caps = body.get("chat_template_caps")
    tools = caps.get("supports_tools") if isinstance(caps, dict) else None
    settings = body.get("default_generation_settings")
    context = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
    slots = _positive(body.get("total_slots"))
    info = ServerInfo(tools if isinstance(tools, bool) else None, context, slots, "/props")
    return info if (info.supports_tools, info.context, info.slots) != (None,) * 3 else UNKNOWN


def from_show(body: Any) -> ServerInfo:
    """Ollama's `/api/show`: "tools" in `capabilities` (listed since Ollama 0.6.4; a server
    that lists none says nothing), the model's `<arch>.context_length` in `model_info`."""
    if not isinstance(body, dict):
        return UNKNOWN
    capabilities = body.get("capabilities")
    tools = "tools" in capabilities if isinstance(capabilities, list) else None
    model_info = body.get("model_info")
    context = None
    if isinstance(model_info, dict):
        arch = model_info.get("general.architecture")
        context = _positive(model_info.get(f"{arch}.context_length"))
    details = body.get("details")
    if context is None and isinstance(details, dict):
        context = _positive(details.get("context_length"))
    if tools is None and context is None:
        return UNKNOWN
    return ServerInfo(tools, context, None, "/api/show")


def server_root(openai_base_url: str) -> str:
    """llama.cpp's root, where `/props` is: the OpenAI base URL without its `/v1`."""
    url = openai_base_url.rstrip("/")
    return url.removesuffix("/v1")


def fetch(
    transport: Transport,
    provider: str,
    base_url: str,
    model: str,
    headers: dict[str, str],
    timeout: float = INFO_TIMEOUT,
) -> ServerInfo:
    """Ask the server once, without retries: unknowns for a server without the endpoint or
    with a body of another shape, `answered=False` when no server answered at all."""
    if provider == "ollama":
        method, url, body, parse = "POST", base_url + "/api/show", {"model": model}, from_show
    elif provider == "openai" and "api.openai.com" not in base_url:
        method, url, body, parse = "GET", server_root(base_url) + "/props", None, from_props
    else:  # Anthropic and OpenAI itself say nothing of the kind
        return UNKNOWN
    try:
        response = transport.request(method, url, body, headers, timeout)
    except (ConnectFailed, ReadTimedOut, UnusableURL):
        return ServerInfo(answered=False)  # the call itself will say what is wrong
    return parse(response.body) if response.status < 400 else UNKNOWN


def fitted_route(route: ModelRoute, info: ServerInfo) -> ModelRoute:
    """The route the client budgets with: the context window no larger than the server's real
    one, and the answer cap at most half of that, so that room for the prompt remains."""
    if info.context is None:
        return route
    window = min(route.context_window, info.context)
    answer = min(route.max_answer_tokens, window // 2)
    if (window, answer) == (route.context_window, route.max_answer_tokens):
        return route
    return route.model_copy(update={"context_window": window, "max_answer_tokens": answer})
