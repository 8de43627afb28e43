"""Fixtures shared by every test: a real workspace with a team on disk."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol import Layout, Mailbox, TeamInfo, create_inbox
from protocol.sandbox import HIDDEN_DIRS


@dataclass(frozen=True)
class TeamDir:
    """A workspace with `.agents/`, team.json and a few inboxes, built from `protocol` alone."""

    layout: Layout
    team_id: str

    @property
    def workspace(self) -> Path:
        return self.layout.workspace

    def mailbox(self) -> Mailbox:
        return Mailbox(self.layout, self.team_id)


@pytest.fixture
def team_dir(tmp_path: Path) -> TeamDir:
    layout = Layout.of(tmp_path / "ws")
    layout.create_dirs()
    info = TeamInfo(task="a test team", members=["coordinator", "user", "worker"])
    info.write(layout.team_json)
    for agent in info.members:
        create_inbox(layout, agent)
    return TeamDir(layout, info.id)


@pytest.fixture(autouse=True)
def _no_user_workspace_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own TEAM_WORKSPACE must never leak into a test.
    monkeypatch.delenv("TEAM_WORKSPACE", raising=False)
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    assert "TEAM_WORKSPACE" not in os.environ


BROKEN_BWRAP = """#!/bin/sh
echo "bwrap: setting up uid map: Permission denied" >&2
exit 1
"""


def broken_bwrap_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A `bwrap` first on PATH that fails as it does where user namespaces are off."""
    folder = tmp_path / "broken-bwrap"
    folder.mkdir()
    fake = folder / "bwrap"
    fake.write_text(BROKEN_BWRAP)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


class listening:
    """A TCP listener on loopback that counts the connections it accepts."""

    def __enter__(self) -> tuple[int, list[object]]:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.accepted: list[object] = []

        def accept() -> None:
            while True:
                try:
                    self.accepted.append(self.socket.accept())
                except OSError:  # closed
                    return

        threading.Thread(target=accept, daemon=True).start()
        return self.socket.getsockname()[1], self.accepted

    def __exit__(self, *exc: object) -> None:
        self.socket.close()


@pytest.fixture
def unhidden_dir() -> Iterator[Path]:
    """A scratch directory outside the directories the sandbox hides anyway (/tmp, homes)."""
    for parent in (Path("/srv"), Path("/opt"), Path("/var/lib"), Path(__file__).parents[1]):
        if os.access(parent, os.W_OK) and not any(
            parent.resolve().is_relative_to(hidden) for hidden in HIDDEN_DIRS
        ):
            folder = parent / f"agent-team-test-{secrets.token_hex(4)}"
            folder.mkdir()
            try:
                yield folder
            finally:
                shutil.rmtree(folder)
            return
    pytest.fail("no writable directory outside /tmp and the home directories for this test")
