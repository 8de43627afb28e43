"""Reading what a model wrote as text: thinking stripped, JSON found, tool calls recovered.

Models without native tool calling (or that forget to use it) write the call as text: a bare
JSON object, a fenced ```json block, or `<tool_call>...</tool_call>` (DESIGN §7). Only calls to
tools that were offered are recovered, so prose that happens to contain JSON is left alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

from protocol.llm.types import ToolCall

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_TOOL_CALL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
# Every fenced block with its info string, so that a ```python block is paired correctly
# and then skipped: only json, tool_call and untagged blocks can hold an answer.
_FENCE = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_JSON_FENCES = {"", "json", "tool_call", "jsonc"}
# strict=False: models put raw newlines inside strings (file contents), which JSON forbids.
_DECODER = json.JSONDecoder(strict=False)


def _json_blocks(text: str) -> list[str]:
    return [body for info, body in _FENCE.findall(text) if info.lower() in _JSON_FENCES]


def strip_think(text: str) -> str:
    """Remove `<think>...</think>` reasoning; an unclosed one runs to the end, and a lone
    `</think>` (its opening tag was in the prompt template) drops everything before it."""
    text = _THINK_BLOCK.sub("", text)
    if "<think>" in text:
        text = text[: text.index("<think>")]
    if "</think>" in text:
        text = text[text.rindex("</think>") + len("</think>") :]
    return text.strip()


def call_id(name: str, arguments: dict[str, Any], index: int) -> str:
    """A deterministic id for a call the provider gave none for (replays must match)."""
    digest = hashlib.sha1(
        json.dumps([name, arguments, index], sort_keys=True).encode(), usedforsecurity=False
    ).hexdigest()
    return f"call_{digest[:12]}"


def coerce_arguments(value: Any) -> dict[str, Any]:
    """Tool arguments arrive as an object (Ollama, Anthropic) or a JSON string (OpenAI)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = json.loads(value, strict=False)
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments must be a JSON object, not {type(value).__name__}")
    return value


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON object or array that starts somewhere in `text`, left to right."""
    position = 0
    while True:
        starts = [i for i in (text.find("{", position), text.find("[", position)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        yield value
        position = end


def _as_calls(value: Any, tool_names: set[str]) -> list[tuple[str, dict[str, Any]]]:
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            return []
        if isinstance(item.get("function"), dict):  # OpenAI's shape, written out as text
            item = item["function"]
        name = item.get("name")
        if not isinstance(name, str) or name not in tool_names:
            return []
        raw = item.get("arguments", item.get("parameters", {}))
        try:
            calls.append((name, coerce_arguments(raw)))
        except ValueError:
            return []
    return calls


def recover_tool_calls(text: str, tool_names: set[str]) -> list[ToolCall]:
    """Tool calls written as text, in the first form found: `<tool_call>` tags, then fenced
    blocks, then bare JSON. Empty when the text holds no call to an offered tool."""
    text = strip_think(text)
    tagged = _TOOL_CALL_TAG.findall(text)
    fenced = _json_blocks(text)
    for candidates in (tagged, fenced, [text]):
        found: list[tuple[str, dict[str, Any]]] = []
        for candidate in candidates:
            for value in _json_values(candidate):
                found.extend(_as_calls(value, tool_names))
        if found:
            return [call_id_call(name, arguments, i) for i, (name, arguments) in enumerate(found)]
    return []


def call_id_call(name: str, arguments: dict[str, Any], index: int) -> ToolCall:
    return ToolCall(id=call_id(name, arguments, index), name=name, arguments=arguments)


def extract_json(text: str) -> Any:
    """The JSON value a model meant as its answer: the whole text, else the first fenced
    block, else the first object in the text. Raises `ValueError` when there is none."""
    text = strip_think(text)
    try:
        return json.loads(text, strict=False)
    except ValueError:
        pass
    for block in _json_blocks(text):
        try:
            return json.loads(block, strict=False)
        except ValueError:
            continue
    for value in _json_values(text):
        return value
    raise ValueError("the answer holds no JSON object")
