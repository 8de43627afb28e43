"""Streamed answers (Ollama NDJSON, OpenAI-compatible server-sent events) decoded into the same
`Reply` as a whole answer. Pure: bytes go in as the network hands them over, in pieces of any
size, and the HTTP happens in transport.py.

    decoder = StreamDecoder("openai")
    for chunk in chunks:
        decoder.feed(chunk)        # decoder.deltas, decoder.text: how far the answer has come
    reply = decoder.finish()
"""

from __future__ import annotations

import codecs
import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from protocol.llm.types import Reply, ToolCall, Usage
from protocol.llm.wire import BadReply, error_text, message_text, native_call, openai_usage

STREAMED_APIS = ("ollama", "openai")  # Anthropic's events are not decoded: it never streams
_STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "application/ndjson")


class StreamError(Exception):
    """The server sent an error object inside the stream; the message is its words, `status`
    the HTTP-like code it gave (llama.cpp: 500 for a server failure), if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StreamCut(Exception):
    """The stream ended before the answer did (no `[DONE]`, finish reason or `done` line)."""


def is_stream(headers: dict[str, str]) -> bool:
    """Whether an answer is a stream; a server that ignored `stream` sends plain JSON."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return content_type.split(";")[0].strip().lower() in _STREAM_TYPES


class _Lines:
    """Bytes to lines: a piece may end in the middle of a line or of a UTF-8 character."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def feed(self, data: bytes, final: bool = False) -> list[str]:
        text = self._partial + self._decoder.decode(data, final)
        lines = text.split("\n")
        self._partial = "" if final else lines.pop()
        return [line.removesuffix("\r") for line in lines]


class _EventData:
    """Server-sent events: the `data:` of each event (its lines joined), as each one ends."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def line(self, line: str) -> str | None:
        if not line:  # a blank line ends an event
            data, self._data = self._data, []
            return "\n".join(data) if data else None
        field, _, value = line.partition(":")
        if field == "data":  # comments (":...") and other fields (event, id, retry) say nothing
            self._data.append(value.removeprefix(" "))
        return None


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _FunctionPiece(_Lenient):
    name: str | None = None
    arguments: Any = None


class _CallPiece(_Lenient):
    index: int | None = None
    id: str | None = None
    function: _FunctionPiece | None = None


class _Delta(_Lenient):
    content: Any = None
    tool_calls: list[_CallPiece] | None = None


class _Choice(_Lenient):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _OpenAIChunk(_Lenient):
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None  # llama.cpp: where it says how much was cached


class _OllamaMessage(_Lenient):
    content: Any = None
    tool_calls: list[dict[str, Any]] | None = None


class _OllamaLine(_Lenient):
    model: str | None = None
    message: _OllamaMessage | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None


class _PartialCall:
    """One OpenAI tool call as its pieces arrive: id and name come first, then arguments."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.name = ""
        self.arguments: list[str] = []
        self.whole: Any = None  # a server that sends the arguments as one object

    def add(self, piece: _CallPiece) -> None:
        self.id = self.id or piece.id
        function = piece.function or _FunctionPiece()
        self.name = self.name or function.name or ""
        if isinstance(function.arguments, str):
            self.arguments.append(function.arguments)
        elif function.arguments is not None:
            self.whole = function.arguments

    def call(self, index: int) -> ToolCall:
        if not self.name:
            raise BadReply(f"tool call {index} in the stream has no function name")
        raw = self.whole if self.whole is not None else "".join(self.arguments)
        return native_call(self.name, raw, index, self.id)


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise BadReply(f"a piece of the stream is not JSON: {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise BadReply(f"a piece of the stream is not a JSON object: {text[:200]!r}")
    if value.get("error"):
        error = value["error"]
        code = error.get("code") if isinstance(error, dict) else None
        raise StreamError(error_text(value), code if isinstance(code, int) else None)
    return value


class StreamDecoder:
    """Reassembles the `Reply` of one streamed answer of `api` ("ollama" or "openai")."""

    def __init__(self, api: str) -> None:
        if api not in STREAMED_APIS:
            raise ValueError(f"{api} answers are not decoded as streams")
        self._api = api
        self._lines = _Lines()
        self._events = _EventData()
        self._text: list[str] = []
        self._calls: list[_PartialCall] = []  # OpenAI: in the order they began
        self._at_index: dict[int, int] = {}  # the index a piece names -> its call
        self._whole_calls: list[ToolCall] = []  # Ollama: each call whole, in one line
        self._finish: str | None = None
        self._model = ""
        self._usage = Usage()
        self._openai_usage: dict[str, Any] | None = None
        self._timings: dict[str, Any] | None = None
        self._ended = False
        self.deltas = 0  # pieces with text or tool calls so far: about one token each

    @property
    def text(self) -> str:
        """The answer's text so far."""
        return "".join(self._text)

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream. Raises `StreamError` for an error the server
        sent inside it, `BadReply` for a piece that is not the wire format."""
        for line in self._lines.feed(data):
            self._line(line)

    def finish(self) -> Reply:
        """The whole answer, once the stream has ended; `StreamCut` if it ended early."""
        cut = StreamCut(f"the {self._api} stream ended before the answer did")
        try:
            for line in [*self._lines.feed(b"", final=True), ""]:  # the last event's "" may lack
                self._line(line)
        except BadReply:
            if not self._ended:  # a torn last line: the answer was cut, not malformed
                raise cut from None
            raise
        if not self._ended:
            raise cut
        if self._api == "openai":
            calls = [partial.call(i) for i, partial in enumerate(self._calls)]
            usage = openai_usage(self._openai_usage, self._timings)
            if self._openai_usage is None and self._timings is None:
                # A server that ignores include_usage: about a token per piece, so that a
                # budget still counts the answer (its prompt stays uncounted).
                usage = Usage(completion_tokens=self.deltas)
        else:
            calls, usage = self._whole_calls, self._usage
        return Reply(
            text=self.text,
            tool_calls=calls,
            finish_reason=self._finish,
            usage=usage,
            model=self._model,
        )

    def _line(self, line: str) -> None:
        if self._api == "ollama":
            if line.strip():
                self._ollama(_payload(line))
            return
        data = self._events.line(line)
        if data is None:
            return
        if data.strip() == "[DONE]":
            self._ended = True
        else:
            self._openai(_payload(data))

    def _openai(self, payload: dict[str, Any]) -> None:
        chunk = _validated(_OpenAIChunk, payload)
        self._model = chunk.model or self._model
        self._openai_usage = chunk.usage or self._openai_usage
        self._timings = chunk.timings or self._timings
        for choice in (chunk.choices or [])[:1]:  # one answer was asked for
            delta = choice.delta or _Delta()
            text = message_text(delta.content)
            self._text.append(text)
            for piece in delta.tool_calls or []:
                self._piece(piece)
            self.deltas += bool(text or delta.tool_calls)
            if choice.finish_reason:
                self._finish = choice.finish_reason
                self._ended = True  # servers that never send [DONE] stop here

    def _piece(self, piece: _CallPiece) -> None:
        """A piece of a tool call joins the call at its index, unless it names another id:
        some servers (Ollama's /v1) send every call of an answer at index 0."""
        index = piece.index if piece.index is not None else len(self._calls)
        slot = self._at_index.get(index)
        known = self._calls[slot].id if slot is not None else None
        if slot is None or (piece.id and known and piece.id != known):
            slot = len(self._calls)
            self._calls.append(_PartialCall())
            self._at_index[index] = slot
        self._calls[slot].add(piece)

    @property
    def ended(self) -> bool:
        """Whether the answer's end (finish reason, `[DONE]`, `done`) has arrived."""
        return self._ended

    def _ollama(self, payload: dict[str, Any]) -> None:
        line = _validated(_OllamaLine, payload)
        message = line.message or _OllamaMessage()
        text = message_text(message.content)
        self._text.append(text)
        for raw in message.tool_calls or []:
            function = raw.get("function") if isinstance(raw, dict) else None
            if not isinstance(function, dict) or not function.get("name"):
                raise BadReply(f"a tool call in the stream has no function name: {raw!r}")
            index = len(self._whole_calls)
            call = native_call(str(function["name"]), function.get("arguments"), index, None)
            self._whole_calls.append(call)
        self.deltas += bool(text or message.tool_calls)
        self._model = line.model or self._model
        if line.done:
            self._ended = True
            self._finish = line.done_reason
            self._usage = Usage(
                prompt_tokens=line.prompt_eval_count or 0,
                completion_tokens=line.eval_count or 0,
            )


_Shape = TypeVar("_Shape", bound=_Lenient)


def _validated(shape: type[_Shape], payload: dict[str, Any]) -> _Shape:
    try:
        return shape.model_validate(payload)
    except ValidationError as exc:
        raise BadReply(f"a piece of the stream has an unexpected shape: {exc}") from None
