"""Malformed inbox files are moved to bad/ with a reason; good messages around them still arrive."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol import (
    ErrorReport,
    ProgressUpdate,
    Receiver,
    ShutdownRequest,
    list_inbox,
    make_message,
)
from protocol.mailbox import MessageName
from tests.conftest import TeamDir


def valid_json(t: TeamDir, **changes: object) -> bytes:
    """A good message from coordinator to worker with id "planted", then `changes` applied."""
    message = make_message(
        ShutdownRequest(reason="x"),
        team=t.team_id,
        sender="coordinator",
        recipient="worker",
        message_id="planted",
    )
    return json.dumps({**json.loads(message.model_dump_json()), **changes}).encode()


def plant(team: TeamDir, seq: int, data: bytes, message_id: str = "planted") -> Path:
    """Write a file straight into worker's new/, named like a delivered message."""
    path = team.layout.inbox("worker").new / MessageName(seq, "coordinator", message_id).file_name()
    path.write_bytes(data)
    return path


def make_directory(team: TeamDir, seq: int) -> Path:
    path = team.layout.inbox("worker").new / MessageName(seq, "coordinator", "dir").file_name()
    path.mkdir()
    (path / "inner.json").write_text("{}")
    return path


def make_symlink(team: TeamDir, seq: int) -> Path:
    path = team.layout.inbox("worker").new / MessageName(seq, "coordinator", "link").file_name()
    path.symlink_to("/etc/passwd")
    return path


PlantFn = Callable[[TeamDir, int], Path]
CASES: dict[str, tuple[PlantFn, str]] = {
    "not-json": (lambda t, s: plant(t, s, b"this is not json"), "not JSON"),
    "wrong-version": (lambda t, s: plant(t, s, valid_json(t, v=2)), "unsupported protocol version"),
    "unknown-type": (
        lambda t, s: plant(t, s, valid_json(t, type="gossip")),
        "unknown message type",
    ),
    "wrong-team": (lambda t, s: plant(t, s, valid_json(t, team="intruders")), "wrong team"),
    "10mb": (lambda t, s: plant(t, s, b"{" + b" " * 10_000_000 + b"}"), "too large"),
    "empty": (lambda t, s: plant(t, s, b""), "empty file"),
    "directory": (make_directory, "a directory"),
    "symlink-to-passwd": (make_symlink, "a symbolic link"),
    "bad-payload": (
        lambda t, s: plant(t, s, valid_json(t, payload={"reason": 5})),
        "invalid shutdown_request",
    ),
    "wrong-recipient": (
        lambda t, s: plant(t, s, valid_json(t, recipient="user")),
        "addressed to 'user'",
    ),
    "name-mismatch": (
        lambda t, s: plant(t, s, valid_json(t), message_id="someone-else"),
        "file name does not match",
    ),
    "stray-name": (
        lambda t, s: _write(t.layout.inbox("worker").new / "notes.txt", b"hello"),
        "not a message file name",
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_file_is_quarantined_between_good_messages(
    team_dir: TeamDir, case: str
) -> None:
    mailbox = team_dir.mailbox()

    def good(n: int) -> None:
        mailbox.send(
            make_message(
                ProgressUpdate(task_id=1, phase="p", detail=str(n)),
                team=team_dir.team_id,
                sender="user",
                recipient="worker",
            )
        )

    good(1)
    plant_fn, expected_reason = CASES[case]
    planted = plant_fn(team_dir, 2)
    mailbox.layout.inbox("worker").seq.write_text("2")  # the planted file took number 2
    good(3)

    handled: list[str] = []
    with Receiver(
        team_dir.layout,
        team_dir.team_id,
        "worker",
        lambda d: handled.append(d.message.payload.detail),  # type: ignore[union-attr]
        watch=False,
    ) as receiver:
        assert receiver.process_pending() == 2

    assert handled == ["1", "3"]
    inbox = team_dir.layout.inbox("worker")
    assert os.listdir(inbox.new) == []
    quarantined = inbox.bad / planted.name
    assert os.path.lexists(quarantined), "the bad file is kept, not deleted"
    reason = (inbox.bad / (planted.name + ".reason")).read_text()
    assert expected_reason in reason
    assert Path("/etc/passwd").exists()


def test_the_sender_of_a_bad_message_gets_an_error_report(team_dir: TeamDir) -> None:
    plant(team_dir, 1, valid_json(team_dir, payload={"reason": 5}, id="m42"), message_id="m42")
    with Receiver(team_dir.layout, team_dir.team_id, "worker", lambda d: None, watch=False) as r:
        r.process_pending()
    [entry] = list_inbox(team_dir.layout, "coordinator", team=team_dir.team_id)
    assert entry.message is not None
    report = entry.message.payload
    assert isinstance(report, ErrorReport)
    assert entry.message.reply_to == "m42"
    assert entry.message.sender == "worker"
    assert "was quarantined: invalid shutdown_request" in report.message


def test_a_bad_error_report_is_not_answered_with_another(team_dir: TeamDir) -> None:
    data = valid_json(team_dir, type="error_report", payload={"nonsense": True})
    plant(team_dir, 1, data)
    with Receiver(team_dir.layout, team_dir.team_id, "worker", lambda d: None, watch=False) as r:
        r.process_pending()
    assert list_inbox(team_dir.layout, "coordinator", team=team_dir.team_id) == []
    assert len(list_inbox(team_dir.layout, "worker", states=("bad",), team=team_dir.team_id)) == 1
