from __future__ import annotations

import os
from pathlib import Path

import pytest

from protocol.atomic import move_file


def test_a_file_is_moved_and_its_old_name_is_gone(tmp_path: Path) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    source.write_text("hello")
    move_file(source, target)
    assert target.read_text() == "hello"
    assert not source.exists()


def test_an_existing_target_is_never_replaced(tmp_path: Path) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    source.write_text("new")
    target.write_text("old")
    with pytest.raises(FileExistsError):
        move_file(source, target)
    assert target.read_text() == "old"
    assert source.read_text() == "new"


def test_a_symlink_is_moved_as_a_link_not_as_its_target(tmp_path: Path) -> None:
    source, target = tmp_path / "link", tmp_path / "moved"
    source.symlink_to("/etc/passwd")
    move_file(source, target)
    assert target.is_symlink()
    assert os.readlink(target) == "/etc/passwd"
    assert not os.path.lexists(source)


def test_a_directory_is_renamed(tmp_path: Path) -> None:
    source, target = tmp_path / "d", tmp_path / "e"
    source.mkdir()
    (source / "x").write_text("1")
    move_file(source, target)
    assert (target / "x").read_text() == "1"
    (tmp_path / "f").mkdir()
    with pytest.raises(FileExistsError):
        move_file(target, tmp_path / "f")
