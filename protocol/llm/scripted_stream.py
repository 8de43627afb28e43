"""How the scripted server streams: a whole answer, as `scripted.encode` writes it, cut into the
pieces a real server sends: OpenAI server-sent events (`data: {...}` and `data: [DONE]`) and
Ollama NDJSON lines ending in a `done` line. Deriving the stream from the whole answer keeps the
two ways of answering the same answer."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

PIECE = 8  # characters per piece when a reply does not say how many pieces


def split(text: str, count: int | None = None) -> list[str]:
    """`text` in `count` pieces of about equal length (about `PIECE` characters each by
    default); no pieces for an empty text."""
    if not text:
        return []
    count = min(count or -(-len(text) // PIECE), len(text))
    bounds = [len(text) * i // count for i in range(count + 1)]
    return [text[start:end] for start, end in pairwise(bounds)]


def _event(body: Any) -> bytes:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def _line(body: Any) -> bytes:
    return (json.dumps(body, ensure_ascii=False) + "\n").encode()


def openai_events(
    answer: dict[str, Any],
    *,
    chunks: int | None,
    include_usage: bool,
    error: str = "",
    error_code: int = 500,
) -> list[bytes]:
    """A chat completion as `chat.completion.chunk` events: the role, the content in pieces,
    each tool call's id and name and then its arguments in pieces, the finish reason, the usage
    if asked for (`stream_options.include_usage`), `[DONE]`. With `error`, the stream stops
    after the content with an error event, as llama.cpp's does (its code 500 for a server
    failure, 400 for a request it refuses, such as one over the context)."""
    choice = answer["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": answer["id"],
            "object": "chat.completion.chunk",
            "model": answer["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None  # OpenAI: every chunk but the last has a null usage
        return _event(body)

    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": piece}) for piece in split(message["content"] or "", chunks)]
    if error:
        failure = {"code": error_code, "message": error, "type": "server_error"}
        return [*frames, _event({"error": failure})]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        start = {"name": function["name"], "arguments": ""}
        frames.append(chunk({"tool_calls": [{"index": index, "id": call["id"],
                                             "type": "function", "function": start}]}))  # fmt: skip
        frames += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in split(function["arguments"])
        ]
    frames.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        usage = {key: answer[key] for key in ("id", "model", "usage")}
        frames.append(_event({**usage, "object": "chat.completion.chunk", "choices": []}))
    return [*frames, b"data: [DONE]\n\n"]


def ollama_lines(answer: dict[str, Any], *, chunks: int | None, error: str = "") -> list[bytes]:
    """An Ollama chat answer as NDJSON: the content in pieces, the tool calls whole in one line,
    then the `done` line with the reason and the token counts. With `error`, an error line
    follows the content instead."""
    message = answer["message"]

    def line(content: str, **extra: Any) -> bytes:
        part = {"role": "assistant", "content": content, **extra}
        return _line({"model": answer["model"], "created_at": answer["created_at"],
                      "message": part, "done": False})  # fmt: skip

    frames = [line(piece) for piece in split(message["content"], chunks)]
    if error:
        return [*frames, _line({"error": error})]
    if message.get("tool_calls"):
        frames.append(line("", tool_calls=message["tool_calls"]))
    return [*frames, _line({**answer, "message": {"role": "assistant", "content": ""}})]


def stream_frames(
    api: str,
    request: dict[str, Any],
    answer: dict[str, Any],
    chunks: int | None,
    error: str,
    error_code: int = 500,
) -> tuple[str, list[bytes]]:
    """The content type and the pieces of `answer` streamed in the `api`'s way."""
    if api == "openai":
        asked = request.get("stream_options")
        usage = isinstance(asked, dict) and asked.get("include_usage") is True
        events = openai_events(
            answer, chunks=chunks, include_usage=usage, error=error, error_code=error_code
        )
        return "text/event-stream", events
    return "application/x-ndjson", ollama_lines(answer, chunks=chunks, error=error)
