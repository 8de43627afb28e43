"""Reading messages from untrusted bytes: every way a file can be wrong gets a reason.

A parser of untrusted JSON caps the size before reading, catches `ValueError` (bad UTF-8,
bad JSON) and `RecursionError` (deep nesting), rejects NaN/Infinity and non-objects (DESIGN §4).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from pydantic import ValidationError

from protocol.messages import (
    MESSAGE_ADAPTER,
    MESSAGE_TYPES,
    PAYLOAD_TYPES,
    PROTOCOL_VERSION,
    Message,
)

MAX_MESSAGE_BYTES = 1024 * 1024


class BadMessage(Exception):
    """A message that cannot be accepted; `reason` says why in one line."""

    def __init__(
        self,
        reason: str,
        *,
        sender: str | None = None,
        message_id: str | None = None,
        message_type: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sender = sender
        self.message_id = message_id
        self.message_type = message_type


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def load_json_object(data: bytes) -> dict[str, Any]:
    """Parse `data` as one JSON object, or raise `BadMessage` saying what is wrong."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"too large: {len(data)} bytes (limit {MAX_MESSAGE_BYTES})")
    if not data.strip():
        raise BadMessage("empty file")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise BadMessage("not JSON: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadMessage(f"not a JSON object but a {type(value).__name__}")
    try:
        # "\ud800" is valid JSON but no valid text: it would break every later write of it.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage(
            "not JSON text: it holds an unpaired surrogate (\\ud800-\\udfff)"
        ) from None
    return value


def _validation_summary(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(part) for part in error["loc"])
        text = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {text}" if where else text)
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_message(data: bytes, *, team: str | None = None) -> Message:
    """Validate one message file's bytes; `team`, when given, must match the envelope's."""
    raw = load_json_object(data)

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    def bad(reason: str) -> BadMessage:
        return BadMessage(
            reason, sender=text("sender"), message_id=text("id"), message_type=text("type")
        )

    if raw.get("v") != PROTOCOL_VERSION:
        raise bad(f"unsupported protocol version {raw.get('v')!r} (this team speaks v1)")
    if raw.get("type") not in MESSAGE_TYPES:
        raise bad(f"unknown message type {raw.get('type')!r}; known: {', '.join(MESSAGE_TYPES)}")
    if team is not None and raw.get("team") != team:
        raise bad(f"wrong team {raw.get('team')!r}: this inbox belongs to team {team!r}")
    try:
        return MESSAGE_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise bad(f"invalid {raw['type']}: {_validation_summary(exc)}") from None


def parse_payload(message_type: str, payload: Any) -> Any:
    """Validate a bare payload for `message_type` (used by `team send`); raise `BadMessage`."""
    if message_type not in PAYLOAD_TYPES:
        raise BadMessage(
            f"unknown message type {message_type!r}; known: {', '.join(MESSAGE_TYPES)}"
        )
    try:
        return PAYLOAD_TYPES[message_type].model_validate(payload)
    except ValidationError as exc:
        raise BadMessage(f"invalid {message_type} payload: {_validation_summary(exc)}") from None
