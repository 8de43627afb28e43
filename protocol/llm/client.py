"""One model client for every role (DESIGN §7): `chat(messages, tools, schema, temperature,
seed)` returns text, tool calls, the parsed object, token counts and timing.

The happy path is `_exchange` once; the failure modes are the named errors of errors.py, raised
from one place each: retries with backoff for connection errors, 429 and 5xx; never for other
4xx; one repair round for an answer that does not fit its schema. Ollama and OpenAI-compatible
answers stream when the transport can (stream.py decodes them), so progress shows as they come.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from protocol.config import Config, ModelRoute, Providers
from protocol.events import ModelCallEnded
from protocol.llm import budget, server_info
from protocol.llm.errors import (
    BadAnswer,
    BadServerURL,
    ContextOverflow,
    ModelTimeout,
    ServerError,
    ServerUnreachable,
    TruncatedAnswer,
)
from protocol.llm.pool import AllDown, Place, places
from protocol.llm.pool_board import PROCESS_BOARD, Board, Held
from protocol.llm.server_errors import URL_FIELD, URL_SETTING, client_error, how_to_start
from protocol.llm.server_info import ServerInfo, fitted_route
from protocol.llm.shaping import (
    REPAIR_PROMPT,
    calls_text,
    describe,
    parse_answer,
    tool_calls_of,
    with_text_tools,
)
from protocol.llm.stream import STREAMED_APIS, StreamCut, StreamDecoder, StreamError, is_stream
from protocol.llm.toolcalls import strip_think
from protocol.llm.transport import (
    ConnectFailed,
    HttpResponse,
    HttpxTransport,
    ReadTimedOut,
    RecordingTransport,
    ReplayTransport,
    StreamingTransport,
    StreamResponse,
    Transport,
    UnusableURL,
)
from protocol.llm.types import (
    CallProgress,
    ChatMessage,
    ChatResult,
    Reply,
    Role,
    ToolSpec,
    Usage,
)
from protocol.llm.wire import WIRE_FORMATS, BadReply, ChatRequest, decode, error_text
from protocol.tracing import OpenSpan, Tracer

ROLE_HEADER = "X-Agent-Team-Role"  # lets a scripted server tell the roles apart
PROGRESS_EVERY = 0.2  # seconds between two progress reports of a streaming answer
PROGRESS_TAIL = 2000  # characters of the text so far that a progress report carries
SLOT_POLL = 0.02  # seconds between two looks for a free slot when every endpoint is full
# Failovers a call may make, per endpoint, besides its retries: each marks an endpoint down,
# so they come only as fast as down endpoints are probed back in.
FAILOVERS_PER_ENDPOINT = 3


@dataclass
class Retries:
    """What a call has left after a failure: a failover to an endpoint that is up costs no
    retry (a call waiting for a busy endpoint while a dead one is probed must not run out of
    retries); a backoff, when every endpoint is down, costs one."""

    max_retries: int
    failovers: int
    tries: int = 0  # HTTP tries made
    retries: int = 0  # backoffs taken
    failover: bool = False  # what the last failure led to

    def more(self, another_is_up: bool) -> bool:
        """Whether the call goes on after a failure, and how (`failover`)."""
        self.failover = another_is_up and self.failovers > 0
        if self.failover:
            self.failovers -= 1
            return True
        self.retries += 1
        return self.retries <= self.max_retries


class ModelClient:
    """Talks to the model of one role. Thread-safe enough for one agent loop per client."""

    def __init__(
        self,
        config: Config,
        role: Role,
        *,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        tracer: Tracer | None = None,
        on_progress: Callable[[CallProgress], None] | None = None,
        board: Board | None = None,
    ) -> None:
        self.config = config
        self.role = role
        self.configured: ModelRoute = config.route(role)  # as configured; `route` as served
        if self.configured.provider == "cassette":
            if not self.configured.cassette or not self.configured.wire:
                raise ValueError(f"models.{role}: provider cassette needs `cassette` and `wire`")
            transport = transport or ReplayTransport(Path(self.configured.cassette))
            self.provider = self.configured.wire
        else:
            self.provider = self.configured.provider
        self.wire = WIRE_FORMATS[self.provider]
        # Where its calls may go (pool.py), and the slots they take there: on the team's
        # board when an agent gives it, else on this process's.
        self.places = places(config, self.provider, self.configured.model, role)
        self.board = board if board is not None else PROCESS_BOARD
        self._url = self.places[0].url  # the endpoint of the call in progress (or the last)
        self.transport = transport or HttpxTransport(config.limits.connect_timeout)
        if config.providers.record_cassettes and self.configured.provider != "cassette":
            folder = Path(config.providers.record_cassettes).expanduser()
            folder.mkdir(parents=True, exist_ok=True)
            self.transport = RecordingTransport(self.transport, folder / f"{role}.json")
        self._sleep = sleep
        self._rng = rng
        self._info: ServerInfo | None = None  # what the server said, asked once
        self.tracer = tracer
        self.on_progress = on_progress
        # What the call in progress sent, got and spent: what the tracer records.
        self._sent: dict[str, Any] | None = None
        self._answer: Reply | None = None
        self._spent = Usage()
        self._streamed = False
        self._started = time.monotonic()

    def close(self) -> None:
        """Close the HTTP connections (a no-op for cassettes)."""
        close = getattr(self.transport, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- where and how ---------------------------------------------------------------

    @property
    def route(self) -> ModelRoute:
        """The role's route as the server allows it: the context window no larger than the
        server's real one and the answer cap fitted to it (the server is asked on first use)."""
        return fitted_route(self.configured, self.server_info())

    def server_info(self) -> ServerInfo:
        """What the server says of this model (llama.cpp's /props, Ollama's /api/show), asked
        once per client; unknowns from a server that does not say, never an error."""
        if self._info is None:
            for place in self.places:  # the first endpoint that answers tells
                self._info = server_info.fetch(
                    self.transport,
                    self.provider,
                    place.url,
                    self.configured.model,
                    self._headers(),
                    min(self.config.limits.read_timeout, server_info.INFO_TIMEOUT),
                )
                if self._info.answered:
                    break
        assert self._info is not None
        return self._info

    @property
    def base_url(self) -> str:
        """The URL of the endpoint that has the call in progress (or had the last one)."""
        return self._url

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {ROLE_HEADER: self.role}
        keys = self.config.providers
        if self.provider == "openai" and keys.openai_api_key:
            headers["Authorization"] = f"Bearer {keys.openai_api_key}"
        if self.provider == "anthropic":
            headers["anthropic-version"] = "2023-06-01"
            if keys.anthropic_api_key:
                headers["x-api-key"] = keys.anthropic_api_key
        return headers

    # --- the call --------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None = None,
        schema: type[BaseModel] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        """Ask the model. With `tools`, tool calls come back in `tool_calls` whether the model
        used native calls or wrote them as text; with `schema`, `parsed` is a validated
        instance (one repair round is tried with the validation error shown to the model).
        With a tracer, the call, its tokens and its whole exchange are recorded either way."""
        call_id = self.tracer.new_call_id() if self.tracer else ""
        span = (
            self.tracer.model_started(call_id, self.role, self.configured.model, self.provider)
            if self.tracer
            else None
        )
        if self._info is not None and not self._info.answered:
            self._info = None  # no server answered last time: ask again with this call
        self._spent, self._sent, self._answer = Usage(), None, None
        self._streamed, self._started = False, time.monotonic()
        self._progress("start")
        try:
            result = self._chat(messages, tools, schema, temperature, seed)
        except BaseException as exc:  # any way out ends the call: its record, its live line
            self._record(span, call_id, temperature, exc)
            self._progress("end", ok=False)
            raise
        result.call_id = call_id
        self._record(span, call_id, temperature, None)
        self._progress("end", tokens=result.usage.completion_tokens)
        return result

    def _chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        schema: type[BaseModel] | None,
        temperature: float | None,
        seed: int | None,
    ) -> ChatResult:
        conversation = list(messages)
        native_tools = not tools or self._supports_native_tools()
        if tools and not native_tools:
            conversation = with_text_tools(conversation, tools)
        self._check_context(conversation, tools if native_tools else None, schema)

        attempts = 0
        while True:
            attempts += 1
            reply = self._exchange(conversation, tools if native_tools else None, schema,
                                   temperature, seed)  # fmt: skip
            calls, recovered = tool_calls_of(reply, tools)
            if schema is None:
                parsed = None
                break
            try:
                parsed = parse_answer(reply, schema)
                break
            except (ValueError, ValidationError) as exc:
                error = describe(exc)
                if attempts >= 2:
                    raise BadAnswer(
                        f"{self.configured.model} ({self.role}) did not give a valid "
                        f"{schema.__name__} after {attempts} tries: {error}; "
                        f"its answer began: {reply.text[:200]!r}"
                    ) from None
                conversation += [
                    ChatMessage(role="assistant", content=reply.text or calls_text(reply)),
                    ChatMessage.user(REPAIR_PROMPT.format(error=error)),
                ]
        return ChatResult(
            text=strip_think(reply.text),
            tool_calls=calls,
            parsed=parsed,
            usage=self._spent,
            duration_s=time.monotonic() - self._started,
            model=reply.model or self.configured.model,
            provider=self.provider,
            finish_reason=reply.finish_reason,
            attempts=attempts,
            recovered_tool_calls=recovered,
            streamed=self._streamed,
        )

    # --- what is recorded and shown -----------------------------------------------------------

    def _progress(
        self,
        phase: Literal["start", "chunk", "end"],
        tokens: int = 0,
        text: str = "",
        ok: bool = True,
    ) -> None:
        if self.on_progress is not None:
            elapsed = time.monotonic() - self._started
            self.on_progress(CallProgress(phase, self.role, self.configured.model, elapsed, tokens,
                                          text, ok))  # fmt: skip

    def _record(
        self,
        span: OpenSpan | None,
        call_id: str,
        temperature: float | None,
        error: BaseException | None,
    ) -> None:
        """The call, as it ended (`error` None: well), to the tracer: what the call in
        progress sent, got and spent."""
        if self.tracer is None or span is None:
            return
        answer = self._answer.model_dump() if self._answer else {}
        if error is not None:
            answer["error"] = f"{type(error).__name__}: {error}"
        self.tracer.model_ended(
            span,
            ModelCallEnded(
                call_id=call_id,
                role=self.role,
                model=self.configured.model,
                provider=self.provider,
                duration_s=round(time.monotonic() - self._started, 4),
                prompt_tokens=self._spent.prompt_tokens,
                completion_tokens=self._spent.completion_tokens,
                cached_tokens=self._spent.cached_tokens,
                outcome="ok" if error is None else type(error).__name__,
                error=str(error)[:500] if error else "",
                temperature=temperature,
                finish_reason=self._answer.finish_reason if self._answer else None,
                streamed=self._streamed,
                endpoint=self._url,
            ),
            self._sent,
            answer,
        )

    def _exchange(
        self,
        conversation: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        schema: type[BaseModel] | None,
        temperature: float | None,
        seed: int | None,
    ) -> Reply:
        request = ChatRequest(
            model=self.configured.model,
            messages=conversation,
            tools=tools,
            schema=schema.model_json_schema() if schema else None,
            schema_name=schema.__name__ if schema else "",
            temperature=temperature,
            seed=seed,
            context_window=self.route.context_window,
            max_answer_tokens=self.route.max_answer_tokens,
            keep_alive=self.config.providers.keep_alive if self.provider == "ollama" else None,
            official_openai="api.openai.com" in self.base_url,
            stream=self._streams(),
        )
        sent = self.wire.body(request)
        self._sent, self._answer = sent, None  # a repair round that fails has no answer
        try:
            response = self._request("POST", self.wire.path(), sent, stream=request.stream)
            reply = self._reply(response)
        except BadReply as exc:
            raise ServerError(f"{self._where()} answered in an unexpected shape: {exc}") from None
        self._answer = reply
        self._spent = self._spent + reply.usage
        if reply.finish_reason == "length":
            raise TruncatedAnswer(
                f"the answer of {self.configured.model} ({self.role}) was cut off at its token "
                f"limit (finish reason 'length'): raise max_answer_tokens or context_window "
                f"for models.{self.role}, or ask for less"
            )
        return reply

    def _reply(self, response: HttpResponse) -> Reply:
        body = response.body
        if isinstance(body, Reply):  # streamed, and decoded as it came
            return body
        if isinstance(body, dict) and body.get("error") and not _looks_like_answer(body):
            # Some proxies answer 200 with an error body: keep the server's own words.
            raise self._client_error(response.status, error_text(body))
        return decode(self.wire, body)

    # --- streaming ---------------------------------------------------------------------

    def _streams(self) -> bool:
        return (
            self.provider in STREAMED_APIS
            and self.config.providers.stream
            and isinstance(self.transport, StreamingTransport)
        )

    def _stream(self, url: str, body: Any) -> HttpResponse:
        """POST `body` for a streamed answer: a response whose body is the reassembled `Reply`,
        or the plain body of an error or of a server that does not stream."""
        assert isinstance(self.transport, StreamingTransport)
        timeout = self.config.limits.read_timeout
        with self.transport.stream("POST", url, body, self._headers(), timeout) as response:
            if response.status >= 400 or not is_stream(response.headers):
                return HttpResponse(response.status, response.read(), response.headers)
            try:
                reply = self._read_stream(response)
            except StreamError as exc:  # llama.cpp reports a failure inside the stream
                if exc.status is not None and (exc.status == 429 or exc.status >= 500):
                    # A server failure, as a whole answer's 5xx: retried the same way.
                    return HttpResponse(exc.status, {"error": str(exc)}, response.headers)
                raise self._client_error(response.status, str(exc)) from None
            except StreamCut as exc:  # retried as any connection lost before the answer
                raise ConnectFailed(str(exc)) from None
        self._streamed = True
        return HttpResponse(response.status, reply, response.headers)

    def _read_stream(self, response: StreamResponse) -> Reply:
        decoder = StreamDecoder(self.provider)
        shown = -math.inf
        try:
            for chunk in response.chunks:
                decoder.feed(chunk)
                if decoder.deltas and time.monotonic() - shown >= PROGRESS_EVERY:
                    shown = time.monotonic()
                    self._progress("chunk", decoder.deltas, decoder.text[-PROGRESS_TAIL:])
        except ConnectFailed:
            if not decoder.ended:
                raise
            # Cut after the answer's end: the answer is whole, and asking again would
            # generate (and spend) it twice.
        return decoder.finish()

    # --- HTTP with retries -------------------------------------------------------------

    def _where(self) -> str:
        return f"the {self.provider} server at {self._url}"

    def _request(
        self, method: str, path: str, body: Any = None, *, stream: bool = False, url: str = ""
    ) -> HttpResponse:
        """Send to an endpoint of the pool (or to `url` alone), within its capacity. A failure
        of the connection, a 429 or a 5xx marks the endpoint down: the call goes on at once to
        another one that is up (a failover, which costs no retry), or after a backoff when
        none is (a retry: `max_retries` of them)."""
        limits = self.config.limits
        options = [Place(url.rstrip("/"), None, listed=False)] if url else self.places
        retry = Retries(limits.max_retries, FAILOVERS_PER_ENDPOINT * len(options))
        force = False
        while True:
            held = self._take(options, force)
            self._url = held.place.url
            retry.tries += 1
            try:
                response = self._send(method, self._url + path, body, stream)
            except ConnectFailed as exc:
                self.board.failed(held.place)
                if not retry.more(self.board.up_besides(options, held.place)):
                    advice = (
                        "Start one of them, or fix their url in [[endpoints]] (`team doctor` "
                        "checks each)."
                        if options[0].listed
                        else how_to_start(self.provider, self._url)
                    )
                    raise ServerUnreachable(
                        f"cannot reach {self._everywhere(options)} ({exc}) after "
                        f"{_tries(retry.tries)}. {advice}"
                    ) from None
                force = self._pause(retry, None)
                continue
            except UnusableURL as exc:
                raise BadServerURL(
                    f"{self._where()} is not a usable URL ({exc}): fix "
                    f"{URL_SETTING[self.provider]} (the default is "
                    f"{getattr(Providers(), URL_FIELD[self.provider])})"
                ) from None
            except ReadTimedOut:
                self.board.failed(held.place)  # calls go elsewhere meanwhile, if they can
                raise ModelTimeout(
                    f"no answer from {self.configured.model} at {self._url} within "
                    f"{limits.read_timeout:g}s: the model may be too slow for this machine; "
                    "raise limits.read_timeout or choose a smaller model"
                ) from None
            finally:
                self.board.give_back(held)
            status = response.status
            if held.failing and status < 500 and status != 429:  # a probe that found it back
                self.board.succeeded(held.place)
            if status < 400:
                return response
            detail = error_text(response.body)
            if status == 429 or status >= 500:
                retry_after = _seconds(response.headers.get("retry-after"))
                self.board.failed(held.place, retry_after or 0.0)
                if retry.more(self.board.up_besides(options, held.place)):
                    force = self._pause(retry, retry_after)
                    continue
                busy = "busy (429)" if status == 429 else f"failing ({status})"
                raise ServerError(
                    f"{self._where()} kept {busy} through {_tries(retry.tries)}: {detail}", status
                )
            raise self._client_error(status, detail)

    def _send(self, method: str, url: str, body: Any, stream: bool) -> HttpResponse:
        if stream:
            return self._stream(url, body)
        return self.transport.request(
            method, url, body, self._headers(), self.config.limits.read_timeout
        )

    def _take(self, options: list[Place], force: bool) -> Held:
        """A slot on an endpoint, waiting while every endpoint that is up is at its capacity
        (as a server's own queue would, up to the read timeout)."""
        waited = 0.0  # counted in polls: the sleep may be a test's, which does not wait
        while True:
            got = self.board.take(options, force=force)
            if isinstance(got, Held):
                return got
            if isinstance(got, AllDown):  # down by others' failures: probe the soonest back
                force = True
                continue
            waited += SLOT_POLL
            if waited > self.config.limits.read_timeout:
                raise ModelTimeout(
                    f"no free slot on {self._everywhere(options)} within "
                    f"{self.config.limits.read_timeout:g}s: every one was at its capacity; "
                    "raise an endpoint's capacity or add one ([[endpoints]])"
                )
            self._sleep(SLOT_POLL)

    def _pause(self, retry: Retries, retry_after: float | None) -> bool:
        """Before the next try: nothing for a failover (the call goes to an endpoint that is
        up), else the backoff. Returns whether the next try must force a down endpoint."""
        if retry.failover:
            return False
        self._sleep(self._backoff(retry.retries, retry_after))
        return True

    def _everywhere(self, options: list[Place]) -> str:
        if len(options) == 1:
            return self._where()
        urls = ", ".join(p.url for p in options)
        return f"any of the {len(options)} {self.provider} endpoints ({urls})"

    def _client_error(self, status: int, detail: str) -> Exception:
        return client_error(status, detail, self.provider, self.configured.model, self.role,
                            self._where())  # fmt: skip

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        limits = self.config.limits
        if retry_after is not None:
            return retry_after
        delay: float = min(limits.backoff_max, limits.backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + self._rng() / 2)  # jitter: spread retries of parallel agents

    # --- tools, schemas, context ---------------------------------------------------------

    def _supports_native_tools(self) -> bool:
        """A model whose server says it cannot take tools (Ollama's capabilities without
        "tools", llama.cpp's `supports_tools: false`) is driven with text calls; a server that
        does not say is trusted with native ones, as they usually work."""
        return self.server_info().supports_tools is not False

    def _check_context(
        self,
        conversation: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        schema: type[BaseModel] | None,
    ) -> None:
        """Refuse loudly a prompt that would not fit: Ollama would silently drop its start."""
        extra = json.dumps([t.model_dump() for t in tools or []]) if tools else ""
        extra += json.dumps(schema.model_json_schema()) if schema else ""
        prompt = budget.estimate_message_tokens(
            [m.model_dump(exclude_defaults=True) for m in conversation]
        ) + budget.estimate_tokens(extra)
        route = self.route
        room = route.context_window - route.max_answer_tokens
        if prompt > room:
            served = route.context_window < self.configured.context_window
            fix = (
                f"the server gives it {route.context_window} of the configured "
                f"{self.configured.context_window} ({self.server_info().source}): shorten the "
                "prompt or start the server with a larger context per slot"
                if served
                else f"shorten the prompt or raise models.{self.role}.context_window"
            )
            raise ContextOverflow(
                f"the prompt for {self.role} is about {prompt} tokens, but {self.configured.model} "
                f"has a context window of {route.context_window} with {route.max_answer_tokens} "
                f"kept for the answer: {fix}"
            )

    # --- listing models (for `team doctor`) ------------------------------------------------

    def available_models(self, url: str = "") -> list[str]:
        """The models the server has: Ollama's /api/tags, or OpenAI's /models (with
        llama.cpp's aliases). `url`: that endpoint's; else any endpoint's that answers."""
        if self.provider not in ("ollama", "openai"):
            raise NotImplementedError("Anthropic's model list needs no check: the key decides")
        path, key, field = (
            ("/api/tags", "models", "name")
            if self.provider == "ollama"
            else ("/models", "data", "id")
        )
        body = self._request("GET", path, url=url).body
        entries = body.get(key) if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise ServerError(
                f"{self._where()} answered {path} with something that is not a model list "
                f"({str(body)[:100]!r}): is it really a {self.provider} server?"
            )
        names = [str(e.get(field, "")) for e in entries if isinstance(e, dict)]
        # llama.cpp lists a model's --alias names too
        aliases = [e.get("aliases") for e in entries if isinstance(e, dict)]
        return names + [str(a) for group in aliases if isinstance(group, list) for a in group]


def _looks_like_answer(body: dict[str, Any]) -> bool:
    return any(key in body for key in ("message", "choices", "content"))


def _seconds(retry_after: str | None) -> float | None:
    """A Retry-After of seconds, within 0..60; None when absent or not a number."""
    if not retry_after:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        return None
    return min(max(seconds, 0.0), 60.0) if math.isfinite(seconds) else None


def _tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"
