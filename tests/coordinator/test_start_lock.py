"""The start lock of `team up`/`resume`/`demo`: one place per directory, whatever the first
`team up` has done there meanwhile (the race CI once lost: a second `team up` saw the git
repository the first had just made, decided it was the user's and took another lock)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coordinator import git
from coordinator.up import UpError, start_lock_path, take_start_lock
from coordinator.workspace import init_workspace


def test_the_lock_stays_put_while_team_up_turns_the_directory_into_a_team(tmp_path: Path) -> None:
    directory = tmp_path / "todo"
    directory.mkdir()
    before = start_lock_path(directory)
    git.init_own(directory)
    in_a_repository = start_lock_path(directory)
    init_workspace(directory, task="a todo list")
    assert before == in_a_repository == start_lock_path(directory)
    assert not before.is_relative_to(directory)


def test_a_second_start_in_a_fresh_repository_is_refused_while_the_first_holds(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "todo"
    directory.mkdir()
    first = take_start_lock(directory, "team up")
    try:
        git.init_own(directory)  # what the first has done when the second looks
        with pytest.raises(UpError, match=r"another `team up` \(pid \d+, since .*\) is starting"):
            take_start_lock(directory, "team up")
    finally:
        first.release()
    take_start_lock(directory, "team up").release()


def test_two_directories_have_two_locks(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert start_lock_path(tmp_path / "a") != start_lock_path(tmp_path / "b")
    held = take_start_lock(tmp_path / "a", "team up")
    try:
        take_start_lock(tmp_path / "b", "team up").release()
    finally:
        held.release()


def test_an_unwritable_lock_folder_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "runtime"
    blocked.mkdir()
    (blocked / f"agent-team-{os.getuid()}").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(blocked))
    with pytest.raises(UpError, match="set XDG_RUNTIME_DIR"):
        start_lock_path(tmp_path)


def test_a_lock_folder_another_could_write_to_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = tmp_path / f"agent-team-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with pytest.raises(UpError, match="not a folder of yours that only you can write to"):
        start_lock_path(tmp_path)
    folder.rmdir()
    folder.symlink_to(tmp_path)
    with pytest.raises(UpError, match="not a folder of yours"):
        start_lock_path(tmp_path)
