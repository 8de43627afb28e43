"""The three wire formats (DESIGN §7): how a chat becomes a request body, and a response body
becomes a `Reply`. Pure functions; the HTTP happens in transport.py."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.llm.toolcalls import call_id, coerce_arguments
from protocol.llm.types import ChatMessage, Reply, ToolCall, ToolSpec, Usage

ANSWER_TOOL = "respond"  # Anthropic has no JSON mode: a schema answer is a forced tool call


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: Sequence[ChatMessage]
    tools: Sequence[ToolSpec] | None
    schema: dict[str, Any] | None
    schema_name: str
    temperature: float | None
    seed: int | None
    context_window: int
    max_answer_tokens: int
    keep_alive: str | None = None
    official_openai: bool = False
    stream: bool = False


class WireFormat(Protocol):
    name: str

    def path(self) -> str: ...

    def body(self, request: ChatRequest) -> dict[str, Any]: ...

    def reply(self, body: Any) -> Reply: ...


def error_text(body: Any) -> str:
    """The server's own words from an error body, in any of the three formats."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
        if body.get("message"):
            return str(body["message"])
    return str(body)[:500] if body else "no details"


class BadReply(ValueError):
    """A 200 answer whose body is not the wire format."""


def _get(body: Any, *keys: str | int) -> Any:
    value = body
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise BadReply(f"the answer has no {'.'.join(map(str, keys))}") from None
    return value


def message_text(value: Any) -> str:
    """Message content: a string, or a list of parts (`{"type": "text", "text": ...}`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(p.get("text") or "") for p in value if isinstance(p, dict))
    return ""


def decode(wire: WireFormat, body: Any) -> Reply:
    """`wire.reply(body)`, with every way an odd body can fail turned into `BadReply`."""
    if not isinstance(body, dict):
        raise BadReply(f"the answer is not a JSON object: {str(body)[:200]!r}")
    try:
        return wire.reply(body)
    except BadReply:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        raise BadReply(
            f"{type(exc).__name__}: {exc}; the answer began {str(body)[:200]!r}"
        ) from None


def native_call(name: str, raw_arguments: Any, index: int, given_id: str | None) -> ToolCall:
    """A tool call as the server gave it, its arguments read into a dict; arguments that
    cannot be read make a call with `arguments_error` (the model is told, in its attempt)."""
    try:
        arguments = coerce_arguments(raw_arguments)
    except (ValueError, RecursionError) as exc:
        error = str(exc) or type(exc).__name__
        return ToolCall(id=given_id or call_id(name, {}, index), name=name, arguments_error=error)
    return ToolCall(id=given_id or call_id(name, arguments, index), name=name, arguments=arguments)


def _function_spec(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def openai_usage(usage: Any, timings: Any) -> Usage:
    """OpenAI's `usage`, with the cached part of the prompt from OpenAI's
    `prompt_tokens_details.cached_tokens` or llama.cpp's `timings.cache_n`."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    if not cached and isinstance(timings, dict):
        cached = _count(timings.get("cache_n"))
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cached_tokens=cached,
    )


class Ollama:
    name = "ollama"

    def path(self) -> str:
        return "/api/chat"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        # num_predict keeps the answer within the reserve the prompt was sized for.
        options: dict[str, Any] = {
            "num_ctx": request.context_window,
            "num_predict": request.max_answer_tokens,
        }
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.seed is not None:
            options["seed"] = request.seed
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [self._message(m) for m in request.messages],
            "stream": request.stream,  # Ollama streams unless told not to
            "options": options,
        }
        if request.keep_alive:
            body["keep_alive"] = request.keep_alive
        if request.tools:
            body["tools"] = [_function_spec(tool) for tool in request.tools]
        if request.schema is not None:
            body["format"] = request.schema
        return body

    @staticmethod
    def _message(message: ChatMessage) -> dict[str, Any]:
        out: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            out["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls
            ]
        if message.role == "tool" and message.tool_name:
            out["tool_name"] = message.tool_name
        return out

    def reply(self, body: Any) -> Reply:
        message = _get(body, "message")
        calls = [
            native_call(_get(c, "function", "name"), c["function"].get("arguments"), i, None)
            for i, c in enumerate(message.get("tool_calls") or [])
        ]
        return Reply(
            text=message_text(message.get("content")),
            tool_calls=calls,
            finish_reason=body.get("done_reason"),
            usage=Usage(
                prompt_tokens=body.get("prompt_eval_count") or 0,
                completion_tokens=body.get("eval_count") or 0,
            ),
            model=str(body.get("model") or ""),
        )


class OpenAI:
    name = "openai"

    def path(self) -> str:
        return "/chat/completions"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [self._message(m) for m in request.messages],
            "stream": request.stream,
        }
        if request.stream:  # without it, a stream carries no token counts
            body["stream_options"] = {"include_usage": True}
        # OpenAI's own newer models refuse max_tokens; local servers know only max_tokens.
        limit_key = "max_completion_tokens" if request.official_openai else "max_tokens"
        body[limit_key] = request.max_answer_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.seed is not None:
            body["seed"] = request.seed
        if request.tools:
            body["tools"] = [_function_spec(tool) for tool in request.tools]
        if request.schema is not None:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", request.schema_name)[:64] or "answer"
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": request.schema},
            }
        return body

    @staticmethod
    def _message(message: ChatMessage) -> dict[str, Any]:
        out: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    # OpenAI's arguments are a JSON string, not an object
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in message.tool_calls
            ]
        if message.role == "tool":
            out["tool_call_id"] = message.tool_call_id
        return out

    def reply(self, body: Any) -> Reply:
        choice = _get(body, "choices", 0)
        message = _get(choice, "message")
        calls = [
            native_call(_get(c, "function", "name"), c["function"].get("arguments"), i, c.get("id"))
            for i, c in enumerate(message.get("tool_calls") or [])
        ]
        return Reply(
            text=message_text(message.get("content")),
            tool_calls=calls,
            finish_reason=choice.get("finish_reason"),
            usage=openai_usage(body.get("usage"), body.get("timings")),
            model=str(body.get("model") or ""),
        )


class Anthropic:
    name = "anthropic"

    def path(self) -> str:
        return "/v1/messages"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_answer_tokens,
            "messages": self._messages([m for m in request.messages if m.role != "system"]),
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        tools = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools or []
        ]
        if request.schema is not None:
            tools.append(
                {
                    "name": ANSWER_TOOL,
                    "description": "Give your answer as this JSON object.",
                    "input_schema": request.schema,
                }
            )
            body["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
        if tools:
            body["tools"] = tools
        return body

    @staticmethod
    def _messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
        # Tool results travel in user turns, and turns of one role must be merged into one.
        out: list[dict[str, Any]] = []
        for message in messages:
            role = "assistant" if message.role == "assistant" else "user"
            blocks: list[dict[str, Any]] = []
            if message.role == "tool":
                blocks.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": message.tool_call_id,
                        "content": message.content,
                    }
                )
            elif message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                )
            if out and out[-1]["role"] == role:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": role, "content": blocks})
        return out

    def reply(self, body: Any) -> Reply:
        texts, calls = [], []
        for i, block in enumerate(_get(body, "content")):
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_use":
                calls.append(
                    native_call(block.get("name", ""), block.get("input"), i, block.get("id"))
                )
        usage = body.get("usage") or {}
        stop = body.get("stop_reason")
        return Reply(
            text="".join(texts),
            tool_calls=calls,
            finish_reason="length" if stop == "max_tokens" else stop,
            # Anthropic's input_tokens leave out the cached part; OpenAI's prompt_tokens hold
            # it: counted the same way, the cached figure is a part of the prompt's.
            usage=Usage(
                prompt_tokens=_count(usage.get("input_tokens"))
                + _count(usage.get("cache_read_input_tokens"))
                + _count(usage.get("cache_creation_input_tokens")),
                completion_tokens=_count(usage.get("output_tokens")),
                cached_tokens=_count(usage.get("cache_read_input_tokens")),
            ),
            model=str(body.get("model") or ""),
        )


WIRE_FORMATS: dict[str, WireFormat] = {w.name: w for w in (Ollama(), OpenAI(), Anthropic())}
