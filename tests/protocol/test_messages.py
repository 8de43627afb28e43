from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from protocol import (
    MESSAGE_ADAPTER,
    MESSAGE_TYPES,
    Completion,
    ErrorCategory,
    ErrorReport,
    Guidance,
    PlanApproval,
    ShutdownRequest,
    TaskAssignment,
    make_message,
    message_json_schema,
    summarize,
)
from protocol.messages import FileEdit, ProgressUpdate, ShutdownResponse

EVERY_PAYLOAD = [
    TaskAssignment(
        task_id=3,
        attempt=2,
        title="storage",
        files=["store.py"],
        context=[FileEdit(file="store.py", action="edit", details="close the file")],
    ),
    ProgressUpdate(task_id=3, phase="building", detail="store.py"),
    Completion(task_id=3, attempt=1, files_changed=["store.py"], summary="wrote it"),
    ErrorReport(task_id=None, category=ErrorCategory.MODEL, message="down", recoverable=True),
    PlanApproval(stage="request", plan_summary="3 modules"),
    PlanApproval(stage="response", approved=False, feedback="split storage"),
    Guidance(text="use pathlib"),
    ShutdownRequest(reason="done", grace_seconds=5),
    ShutdownResponse(accepted=True, unfinished=["task 4"]),
]


@pytest.mark.parametrize("payload", EVERY_PAYLOAD, ids=lambda p: type(p).__name__)
def test_every_message_type_round_trips_through_json(payload: object) -> None:
    message = make_message(payload, team="t1", sender="coordinator", recipient="builder-a")  # type: ignore[arg-type]
    parsed = MESSAGE_ADAPTER.validate_json(message.model_dump_json())
    assert parsed == message
    assert type(parsed.payload) is type(payload)
    assert summarize(parsed)


def test_the_wire_format_is_the_documented_envelope() -> None:
    message = make_message(
        ShutdownRequest(reason="bye"), team="t1", sender="coordinator", recipient="worker"
    )
    wire = json.loads(message.model_dump_json())
    assert set(wire) == {
        "v", "id", "type", "team", "sender", "recipient", "created_at", "reply_to", "payload"
    }  # fmt: skip
    assert wire["v"] == 1
    assert wire["type"] == "shutdown_request"
    assert wire["created_at"].endswith("Z")


def test_the_json_schema_lists_all_eight_types() -> None:
    schema = message_json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(MESSAGE_TYPES)
    assert len(MESSAGE_TYPES) == 8


@pytest.mark.parametrize("text", ["", "   \n", "x" * 4001])
def test_guidance_is_some_text_of_bounded_length(text: str) -> None:
    with pytest.raises(ValidationError):
        Guidance(text=text)


def test_an_unknown_payload_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        ShutdownRequest.model_validate({"reason": "x", "graceful": True})


def test_plan_approval_stages_require_their_fields() -> None:
    with pytest.raises(ValidationError, match="needs a plan_summary"):
        PlanApproval(stage="request")
    with pytest.raises(ValidationError, match="needs approved"):
        PlanApproval(stage="response")


def test_agent_names_must_be_safe_directory_names() -> None:
    for bad in ["../etc", "Builder", "a/b", "", "x" * 64]:
        with pytest.raises(ValidationError):
            make_message(ShutdownRequest(reason="x"), team="t", sender="user", recipient=bad)
