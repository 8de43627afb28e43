"""team.json: changed only by a locked read-modify-write, with a last good copy beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import TeamFileError, TeamInfo, TeamStatus
from protocol.team import backup_of, damage_advice, read_team_or_backup, update_team
from tests.conftest import TeamDir
from tests.processes import REPO, finish, start, wait_for_line

UPDATER = REPO / "tests" / "protocol" / "procs" / "team_updater.py"


def test_writers_in_three_processes_lose_none_of_each_others_changes(team_dir: TeamDir) -> None:
    path = team_dir.layout.team_json
    before = TeamInfo.read(path).members
    procs = [start(UPDATER, path, key, 40) for key in ("a", "b", "c")]
    for proc in procs:
        wait_for_line(proc, "ready")
    for proc in procs:
        finish(proc)
    members = TeamInfo.read(path).members
    added = [m for m in members if m not in before]
    assert sorted(added) == sorted(f"{k}-{i}" for k in "abc" for i in range(40))
    for key in "abc":  # each writer's own changes stay in its order
        mine = [m for m in added if m.startswith(f"{key}-")]
        assert mine == [f"{key}-{i}" for i in range(40)]


def test_an_update_changes_only_what_it_names_and_is_validated(team_dir: TeamDir) -> None:
    path = team_dir.layout.team_json
    task = TeamInfo.read(path).task
    updated = update_team(path, status=TeamStatus.BUILDING, detail="x")
    assert (updated.status, updated.detail, updated.task) == (TeamStatus.BUILDING, "x", task)
    with pytest.raises(ValueError):
        update_team(path, iteration=-1)
    assert TeamInfo.read(path) == updated  # a refused change wrote nothing


@pytest.mark.parametrize("damage", ["deleted", "truncated", "not json"])
def test_a_damaged_team_file_is_explained_and_its_last_good_copy_offered(
    team_dir: TeamDir, damage: str
) -> None:
    path = team_dir.layout.team_json
    good = update_team(path, detail="the last good state")
    if damage == "deleted":
        path.unlink()
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00garbage")
    with pytest.raises(TeamFileError) as caught:
        TeamInfo.read(path)
    assert caught.value.missing == (damage == "deleted")
    info, error = read_team_or_backup(path)
    assert info == good and error is not None
    advice = damage_advice(path, error)
    assert f"cp {backup_of(path)} {path}" in advice and "team kill" in advice
    with pytest.raises(TeamFileError):
        update_team(path, detail="no fallback: refused")
    heard: list[TeamFileError] = []
    repaired = update_team(path, fallback=good, on_repair=heard.append, detail="written again")
    assert TeamInfo.read(path) == repaired and repaired.id == good.id
    assert len(heard) == 1 and heard[0].missing == (damage == "deleted")
    update_team(path, fallback=good, on_repair=heard.append, detail="healthy now")
    assert len(heard) == 1  # a good file is no repair


def test_without_a_good_copy_the_advice_still_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "team.json"
    path.write_text("{")
    info, error = read_team_or_backup(path)
    assert info is None and error is not None
    assert "team init" in damage_advice(path, error)
