"""Two agents editing one file keep both their edits."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import TeamDir
from tests.processes import finish, start, wait_for_line


def test_two_agents_editing_different_parts_of_one_file_keep_both_edits(
    team_dir: TeamDir,
) -> None:
    lines = [f"A_{i} = 0\n" for i in range(150)] + [f"B_{i} = 0\n" for i in range(150)]
    shared = team_dir.workspace / "shared.py"
    shared.write_text("".join(lines))
    editor = Path(__file__).parent / "procs_editor.py"
    first = start(editor, team_dir.workspace, "builder-a", "A", 150)
    second = start(editor, team_dir.workspace, "builder-b", "B", 150)
    wait_for_line(first, "started")
    wait_for_line(second, "started")
    finish(first)
    finish(second)
    text = shared.read_text()
    for i in range(150):
        assert f"A_{i} = 1  # edited by builder-a\n" in text
        assert f"B_{i} = 1  # edited by builder-b\n" in text
