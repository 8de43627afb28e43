"""A scripted model server: the Ollama, OpenAI and Anthropic wire formats on a loopback port,
answering from a scenario file instead of a model. Tests and `team demo` drive the team with it.

    python -m protocol.llm.scripted SCENARIO.json [--port 0] [--port-file FILE]

A scenario lists models and rules. The first rule whose `match` holds (and that has replies
left) answers; a rule's `replies` are given in order and the last one repeats:

    {"models": [{"name": "qwen2.5-coder:7b", "capabilities": ["completion", "tools"]}],
     "rules": [
       {"match": {"schema": "Plan"}, "reply": {"json": {"modules": []}}},
       {"match": {"files": "models.py", "turn": 0},
        "reply": {"tool_calls": [{"name": "write_file",
                                  "arguments": {"path": "models.py", "content": "..."}}]}},
       {"match": {"contains": "hello"},
        "replies": [{"status": 500, "error": "boom"}, {"content": "hi", "delay": 0.5}]}]}

`match` keys (all optional, all must hold): `api` (ollama/openai/anthropic), `model`, `role`
(the X-Agent-Team-Role header), `schema` (the requested JSON schema's title), `task` and `files`
(from the `TASK <id>:` and `FILES:` lines of DESIGN §7; `files` is one of the paths listed),
`contains` (in the last user message), `turn` (assistant turns so far), `tools` (whether tools
were offered), `temperature` (`[low, high]`: the request's temperature within it) and `seed`,
so that answers can depend on the sampling asked for.

A request with `stream: true` (Ollama's default) gets a streamed answer, as a real server sends
it (scripted_stream.py): `chunks` says how many pieces the content comes in, `chunk_delay` how
long the server waits between two pieces, `cut_after` after how many it drops the connection.
A reply with status 200 and an `error` sends that error in the answer (inside the stream when
streaming). `usage` sets the token counts the answer reports. A scenario with `"stream": false`
is a server that cannot stream: it answers every request whole. A tool call's `raw_arguments`
is sent as its arguments string as it is (OpenAI's API), e.g. malformed JSON (weak_models.py).

Ollama's answers (`/api/chat`, `/api/tags`, `/api/show`) have real Ollama's shapes
(scripted_ollama.py); a model entry's `family` and `context_length` go into its `/api/show`.
A scenario's `props` is the body of llama.cpp's `GET /props` (e.g. `{"chat_template_caps":
{"supports_tools": false}, "default_generation_settings": {"n_ctx": 4096}, "total_slots": 2}`);
without it `/props` is a 404, as on vLLM.

A scenario's `slots` makes it queue as a real server does (llama.cpp's `-np N`): at most N
requests are answered at once, the rest wait for a free slot; `cost` makes each answer take
the time its tokens would (`prompt_seconds` and `completion_seconds` per token, on top of a
reply's `delay`), held in the slot. `--slots N` on the command line overrides the scenario's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.atomic import atomic_write_text
from protocol.llm import scripted_ollama as ollama
from protocol.llm.scripted_stream import stream_frames

_TASK_LINE = re.compile(r"^TASK (\d+):", re.MULTILINE)
_FILES_LINE = re.compile(r"^FILES:(.*)$", re.MULTILINE)
Api = Literal["ollama", "openai", "anthropic"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScriptedToolCall(_Strict):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # Sent as the call's arguments string as it is (OpenAI's API only): malformed JSON, say.
    raw_arguments: str | None = None

    def arguments_text(self) -> str:
        return json.dumps(self.arguments) if self.raw_arguments is None else self.raw_arguments


class ScriptedUsage(_Strict):
    prompt_tokens: int = Field(default=10, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)  # None: a token per 4 characters
    cached_tokens: int = Field(default=0, ge=0)


class ScriptedReply(_Strict):
    content: str = ""
    json_value: Any = Field(default=None, alias="json")
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    status: int = 200
    error: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    delay: float = Field(default=0.0, ge=0)  # before the answer: the model thinking
    finish_reason: str | None = None
    usage: ScriptedUsage = Field(default_factory=ScriptedUsage)
    chunks: int | None = Field(default=None, ge=1)
    chunk_delay: float = Field(default=0.0, ge=0)
    cut_after: int | None = Field(default=None, ge=0)
    error_code: int = 500  # the code of an `error` sent inside an OpenAI stream

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def text(self) -> str:
        return json.dumps(self.json_value) if self.json_value is not None else self.content

    def tokens(self) -> tuple[int, int, int]:
        """Prompt, completion and cached tokens, as the answer reports them."""
        usage = self.usage
        completion = usage.completion_tokens
        if completion is None:
            completion = max(1, len(self.text()) // 4)
        return usage.prompt_tokens, completion, usage.cached_tokens


class Match(_Strict):
    api: Api | None = None
    model: str | None = None
    role: str | None = None
    schema_title: str | None = Field(default=None, alias="schema")
    task: int | None = None
    files: str | None = None
    contains: str | None = None
    turn: int | None = None
    tools: bool | None = None
    # The sampling asked for: a temperature within [low, high] (a request that sends none
    # matches no range), and a seed.
    temperature: tuple[float, float] | None = None
    seed: int | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Rule(_Strict):
    name: str = ""
    match: Match = Field(default_factory=Match)
    reply: ScriptedReply | None = None
    replies: list[ScriptedReply] = Field(default_factory=list)

    def answers(self) -> list[ScriptedReply]:
        return self.replies or ([self.reply] if self.reply else [ScriptedReply()])


class ModelEntry(_Strict):
    name: str
    capabilities: list[str] = Field(default_factory=lambda: ["completion", "tools"])
    family: str = "qwen2"  # /api/show's architecture, and the prefix of its model_info keys
    context_length: int = Field(default=131072, ge=1)  # /api/show's <family>.context_length
    aliases: list[str] = Field(default_factory=list)  # other names, listed as llama.cpp does


class TokenCost(_Strict):
    """What an answer costs in time, per token: reading the prompt, writing the answer."""

    prompt_seconds: float = Field(default=0.0, ge=0)
    completion_seconds: float = Field(default=0.0, ge=0)

    def seconds(self, prompt: int, completion: int, cached: int = 0) -> float:
        return (prompt - min(cached, prompt)) * self.prompt_seconds + (
            completion * self.completion_seconds
        )


class Scenario(_Strict):
    models: list[ModelEntry] = Field(default_factory=list)
    slots: int | None = Field(default=None, ge=1)  # None: every request at once
    cost: TokenCost | None = None
    rules: list[Rule] = Field(default_factory=list)
    stream: bool = True  # false: a server that ignores `stream` and answers whole
    props: dict[str, Any] | None = None  # llama.cpp's GET /props body; None: a 404, as vLLM

    @classmethod
    def load(cls, path: Path) -> Scenario:
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except (OSError, ValidationError) as exc:
            raise SystemExit(f"scenario {path}: {exc}") from None


@dataclass(frozen=True)
class Seen:
    """What a request looked like, in the terms rules match on."""

    api: Api
    model: str
    role: str
    schema_title: str | None
    task: int | None
    files: str | None
    last_user: str
    turn: int
    tools: bool
    temperature: float | None = None
    seed: int | None = None


@dataclass
class LoggedRequest:
    seen: Seen
    rule: str | None
    status: int
    body: Any = field(repr=False)
    reply: ScriptedReply | None = field(default=None, repr=False)  # what it answered


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Anthropic blocks
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return message.get("role") == "tool" or any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks
    )


def inspect(api: Api, body: dict[str, Any], role: str) -> Seen:
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    users = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"
             and not _is_tool_result(m)]  # fmt: skip
    # The TASK/FILES lines sit in the build request, which may be several turns back.
    task_prompt = next((u for u in reversed(users) if _TASK_LINE.search(u)), "")
    task = _TASK_LINE.search(task_prompt)
    files = _FILES_LINE.search(task_prompt)
    schema: Any = None
    if api == "ollama":
        schema = body.get("format")
    elif api == "openai":
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
    else:
        forced = [t for t in body.get("tools", []) if t.get("name") == "respond"]
        schema = forced[0].get("input_schema") if forced else None
    offered = [t for t in body.get("tools", []) if t.get("name") != "respond"]
    sampling = body.get("options") if api == "ollama" else body
    sampling = sampling if isinstance(sampling, dict) else {}
    temperature, seed = sampling.get("temperature"), sampling.get("seed")
    return Seen(
        api=api,
        model=str(body.get("model", "")),
        role=role,
        schema_title=schema.get("title") if isinstance(schema, dict) else None,
        task=int(task.group(1)) if task else None,
        files=files.group(1).strip() if files else None,
        last_user=users[-1] if users else "",
        turn=sum(1 for m in messages if m.get("role") == "assistant"),
        tools=bool(offered),
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        seed=seed if isinstance(seed, int) else None,
    )


def matches(match: Match, seen: Seen) -> bool:
    exact = {
        "api": seen.api,
        "model": seen.model,
        "role": seen.role,
        "schema_title": seen.schema_title,
        "task": seen.task,
        "turn": seen.turn,
        "tools": seen.tools,
        "seed": seen.seed,
    }
    for key, actual in exact.items():
        wanted = getattr(match, key)
        if wanted is not None and wanted != actual:
            return False
    if match.temperature is not None:
        low, high = match.temperature
        if seen.temperature is None or not low <= seen.temperature <= high:
            return False
    if match.files is not None:
        listed = [f.strip() for f in (seen.files or "").split(",")]
        if match.files not in listed:
            return False
    return match.contains is None or match.contains in seen.last_user


class ScriptedModel:
    """The scenario with its state: which reply each rule gives next."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._given = [0] * len(scenario.rules)
        self._lock = threading.Lock()
        self.log: list[LoggedRequest] = []
        self.shows: list[str] = []  # the models /api/show was asked about
        self.props_asked = 0  # how often GET /props was
        self.last_request = time.monotonic()
        self._slots = threading.BoundedSemaphore(scenario.slots) if scenario.slots else None
        self.busy = 0  # requests being answered now
        self.busy_peak = 0  # the most there were at once

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A slot for the time an answer takes: queued while all are taken."""
        if self._slots is not None:
            self._slots.acquire()
        with self._lock:
            self.busy += 1
            self.busy_peak = max(self.busy_peak, self.busy)
        try:
            yield
        finally:
            with self._lock:
                self.busy -= 1
            if self._slots is not None:
                self._slots.release()

    def thinking(self, reply: ScriptedReply) -> float:
        """How long `reply` takes before it is sent: its delay, and its tokens' cost."""
        cost = self.scenario.cost
        return reply.delay + (cost.seconds(*reply.tokens()) if cost else 0.0)

    def knows(self, model: str) -> bool:
        return self.entry(model) is not None

    def entry(self, model: str) -> ModelEntry | None:
        """The model as listed; any model is known (with defaults) when none are listed."""
        for entry in self.scenario.models:
            if model == entry.name or model in entry.aliases:
                return entry
        return None if self.scenario.models else ModelEntry(name=model)

    def answer(self, seen: Seen) -> tuple[str | None, ScriptedReply | None]:
        with self._lock:
            self.last_request = time.monotonic()
            for index, rule in enumerate(self.scenario.rules):
                if matches(rule.match, seen):
                    answers = rule.answers()
                    reply = answers[min(self._given[index], len(answers) - 1)]
                    self._given[index] += 1
                    return rule.name or f"rule {index + 1}", reply
        return None, None


# --- encoding answers in each wire format --------------------------------------------------


def _call_id(index: int) -> str:
    return f"call_scripted_{index}"


def encode(api: Api, seen: Seen, reply: ScriptedReply) -> dict[str, Any]:
    content = reply.text()
    prompt, completion, cached = reply.tokens()
    calls = reply.tool_calls
    if api == "ollama":
        return ollama.chat_answer(
            seen.model,
            content,
            [ollama.tool_call(i, c.name, c.arguments) for i, c in enumerate(calls)],
            reply.finish_reason or "stop",
            ollama.metrics(prompt, completion, reply.delay),
        )
    if api == "openai":
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": _call_id(i),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments_text()},
                }
                for i, c in enumerate(calls)
            ]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "model": seen.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }
    blocks: list[dict[str, Any]] = []
    if reply.json_value is not None and seen.schema_title is not None:
        blocks.append({"type": "tool_use", "id": _call_id(99), "name": "respond",
                       "input": reply.json_value})  # fmt: skip
    elif content:
        blocks.append({"type": "text", "text": content})
    for i, c in enumerate(calls):
        blocks.append({"type": "tool_use", "id": _call_id(i), "name": c.name, "input": c.arguments})
    stop = {"length": "max_tokens"}.get(reply.finish_reason or "", reply.finish_reason)
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": seen.model,
        "content": blocks,
        "stop_reason": stop or ("tool_use" if calls else "end_turn"),
        "usage": {  # as Anthropic counts: input_tokens leave out the cached part
            "input_tokens": max(prompt - cached, 0),
            "output_tokens": completion,
            "cache_read_input_tokens": cached,
        },
    }


def encode_error(api: Api, status: int, text: str) -> dict[str, Any]:
    if api == "ollama":
        return {"error": text}
    if api == "openai":
        return {"error": {"message": text, "type": "server_error", "code": status}}
    return {"type": "error", "error": {"type": "api_error", "message": text}}


# --- HTTP -------------------------------------------------------------------------------------

_CHAT_PATHS: dict[str, Api] = {
    "/api/chat": "ollama",
    "/v1/chat/completions": "openai",
    "/chat/completions": "openai",
    "/v1/messages": "anthropic",
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # The headers and the body go out as two writes: with Nagle's algorithm the body waits
    # for the client's delayed ACK of the headers, 40 ms a call on a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the log
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def do_GET(self) -> None:
        model = self.server.model
        models = model.scenario.models
        if self.path == "/api/tags":
            self._send(200, {"models": [ollama.tag(m.name, m.family) for m in models]})
        elif self.path in ("/v1/models", "/models"):
            data = [{"id": m.name, "object": "model", "owned_by": "scripted"}
                    | ({"aliases": m.aliases} if m.aliases else {}) for m in models]  # fmt: skip
            self._send(200, {"object": "list", "data": data})
        elif self.path == "/props" and model.scenario.props is not None:
            model.props_asked += 1
            slots = {"total_slots": model.scenario.slots} if model.scenario.slots else {}
            self._send(200, {**model.scenario.props, **slots})
        elif self.path == "/api/version":
            self._send(200, {"version": "0.0.0-scripted"})
        else:
            self._send(404, {"error": f"scripted model server: no GET {self.path}"})

    def do_POST(self) -> None:
        body = self._body()
        if not isinstance(body, dict):
            self._send(400, {"error": "scripted model server: the body is not a JSON object"})
            return
        if self.path == "/api/show":
            self._show(body)
            return
        api = _CHAT_PATHS.get(self.path)
        if api is None:
            self._send(404, {"error": f"scripted model server: no POST {self.path}"})
            return
        self._chat(api, body)

    def _show(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        self.server.model.shows.append(name)
        entry = self.server.model.entry(name)
        if entry is None:
            self._send(404, {"error": f"model '{name}' not found"})
        else:
            self._send(200, ollama.show(name, entry.family, entry.context_length,
                                        entry.capabilities))  # fmt: skip

    def _chat(self, api: Api, body: dict[str, Any]) -> None:
        model = self.server.model
        seen = inspect(api, body, self.headers.get("X-Agent-Team-Role", ""))
        if not model.knows(seen.model):
            text = (
                f'model "{seen.model}" not found, try pulling it first'
                if api == "ollama"
                else f"The model `{seen.model}` does not exist."
            )
            model.log.append(LoggedRequest(seen, None, 404, body))
            self._send(404, encode_error(api, 404, text))
            return
        rule, reply = model.answer(seen)
        if reply is None:
            text = f"scripted model: no rule matches this request ({seen})"
            model.log.append(LoggedRequest(seen, None, 400, body))
            self._send(400, encode_error(api, 400, text))
            return
        model.log.append(LoggedRequest(seen, rule, reply.status, body, reply))
        with model.slot():
            self._answer(api, body, seen, reply)

    def _answer(self, api: Api, body: dict[str, Any], seen: Seen, reply: ScriptedReply) -> None:
        model = self.server.model
        thinking = model.thinking(reply)
        if thinking:
            time.sleep(thinking)  # stands for the model reading and writing
        # Ollama streams unless told not to; OpenAI only when asked; Anthropic is not streamed.
        asked = body.get("stream", api == "ollama") is True and api != "anthropic"
        streams = asked and model.scenario.stream
        if reply.status >= 400 or (reply.error and not streams):
            self._send(reply.status, encode_error(api, reply.status, reply.error), reply.headers)
        elif streams:
            self._stream(api, body, encode(api, seen, reply), reply)
        else:
            self._send(reply.status, encode(api, seen, reply), reply.headers)

    def _stream(self, api: Api, body: dict[str, Any], whole: Any, reply: ScriptedReply) -> None:
        """The answer in chunked pieces, `chunk_delay` apart; cut after `cut_after` pieces."""
        content_type, frames = stream_frames(
            api, body, whole, reply.chunks, reply.error, reply.error_code
        )
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        for index, frame in enumerate(frames):
            if index == reply.cut_after:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # no last chunk: a cut, not an end
                return
            if index and reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], model: ScriptedModel) -> None:
        super().__init__(address, _Handler)
        self.model = model
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut kept-alive connections too: a stopped server must not answer anyone."""
        with self._open_lock:
            for connection in list(self._open):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a read timeout under test) is expected, not a server error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ScriptedServer:
    """The server in a background thread of this process: `with ScriptedServer(s) as srv:`."""

    def __init__(self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0) -> None:
        self.model = ScriptedModel(scenario)
        self._server = _Server((host, port), self.model)
        # A short poll interval: stop() waits for it, and tests start and stop many servers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def log(self) -> list[LoggedRequest]:
        return self.model.log

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve(scenario: Scenario) -> Iterator[ScriptedServer]:
    with ScriptedServer(scenario) as server:
        yield server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m protocol.llm.scripted",
        description="Serve a scripted model (Ollama, OpenAI and Anthropic wire formats).",
    )
    parser.add_argument("scenario", type=Path, help="the scenario JSON file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here")
    parser.add_argument("--idle-exit", type=float, help="exit after this many idle seconds")
    parser.add_argument(
        "--slots", type=int, help="answer at most N requests at once; the others queue"
    )
    options = parser.parse_args(argv)
    scenario = Scenario.load(options.scenario)
    if options.slots is not None:
        if options.slots < 1:
            parser.error("--slots must be at least 1")
        scenario = scenario.model_copy(update={"slots": options.slots})
    server = ScriptedServer(scenario, options.host, options.port)
    if options.port_file:
        atomic_write_text(options.port_file, str(server.port))
    print(f"scripted model server on {server.url} (scenario {options.scenario})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    try:
        while not stop.wait(1.0):
            if (
                options.idle_exit
                and time.monotonic() - server.model.last_request > options.idle_exit
            ):
                break
    finally:
        server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
