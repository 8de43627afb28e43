from __future__ import annotations

import json

import pytest

from protocol import BadMessage, ShutdownRequest, make_message, parse_message, parse_payload
from protocol.wire import MAX_MESSAGE_BYTES


def good(**changes: object) -> dict[str, object]:
    message = make_message(ShutdownRequest(reason="x"), team="t1", sender="user", recipient="w")
    return {**json.loads(message.model_dump_json()), **changes}


def reason_for(data: bytes, team: str | None = "t1") -> str:
    with pytest.raises(BadMessage) as caught:
        parse_message(data, team=team)
    return caught.value.reason


def test_a_valid_message_parses() -> None:
    assert parse_message(json.dumps(good()).encode(), team="t1").type == "shutdown_request"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"   \n", "empty file"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "not a JSON object but a list"),
        (b'"text"', "not a JSON object but a str"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'{"v": 1, "x": NaN}', "not JSON"),
        (b'{"v": Infinity}', "not JSON"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "too large"),
    ],
    ids=[
        "empty",
        "blank",
        "broken",
        "bad-utf8",
        "list",
        "string",
        "deep-nesting",
        "nan",
        "infinity",
        "oversized",
    ],
)
def test_malformed_bytes_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    assert reason in reason_for(data)


def test_a_wrong_version_is_named() -> None:
    assert "unsupported protocol version 2" in reason_for(json.dumps(good(v=2)).encode())


def test_an_unknown_type_is_named() -> None:
    assert "unknown message type 'dance'" in reason_for(json.dumps(good(type="dance")).encode())


def test_a_wrong_team_is_named() -> None:
    reason = reason_for(json.dumps(good(team="other")).encode())
    assert "wrong team 'other'" in reason


def test_an_invalid_payload_names_the_field_and_keeps_the_sender() -> None:
    data = json.dumps(good(payload={"grace_seconds": -1})).encode()
    with pytest.raises(BadMessage) as caught:
        parse_message(data, team="t1")
    assert "payload.reason: Field required" in caught.value.reason
    assert caught.value.sender == "user"
    assert caught.value.message_type == "shutdown_request"


def test_parse_payload_validates_a_bare_payload() -> None:
    assert parse_payload("shutdown_request", {"reason": "x"}) == ShutdownRequest(reason="x")
    with pytest.raises(BadMessage, match="unknown message type"):
        parse_payload("nope", {})
    with pytest.raises(BadMessage, match="needs approved"):
        parse_payload("plan_approval", {"stage": "response"})


def test_an_unpaired_surrogate_is_rejected() -> None:
    data = json.dumps(good(payload={"reason": "\ud800"})).encode()
    assert "unpaired surrogate" in reason_for(data)
