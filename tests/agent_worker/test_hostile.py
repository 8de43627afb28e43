"""Hostile inputs from a model, each refused with a reason it can act on (and nothing harmed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_worker.tools import ALL_TOOLS, Toolbox
from protocol.llm import ToolCall
from tests.conftest import TeamDir


@pytest.fixture
def toolbox(team_dir: TeamDir) -> Toolbox:
    return Toolbox(team_dir.layout, "builder-a", None, ALL_TOOLS, command_timeout=2.0)


def use(toolbox: Toolbox, name: str, **arguments: object) -> str:
    return toolbox.call(ToolCall(id="c1", name=name, arguments=arguments))


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "sub/../../escape.txt", "/tmp/escape.txt", "/etc/passwd", "~/escape.txt"],
)
def test_a_write_outside_the_workspace_is_refused(toolbox: Toolbox, path: str) -> None:
    result = use(toolbox, "write_file", path=path, content="x")
    assert result.startswith("REFUSED:")
    assert "outside the workspace" in result or "not expanded" in result
    assert not (toolbox.workspace.parent / "escape.txt").exists()


def test_a_symlink_planted_inside_that_points_out_is_refused(
    toolbox: Toolbox, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (toolbox.workspace / "link").symlink_to(outside)
    result = use(toolbox, "write_file", path="link/evil.txt", content="x")
    assert "outside the workspace" in result
    assert not (outside / "evil.txt").exists()
    assert "outside the workspace" in use(toolbox, "read_file", path="link/../outside/x")


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".git/hooks/pre-commit",
        ".agents/team.json",
        ".agents/tasks/0001.json",
        ".venv/bin/python",
        "venv/lib/site.py",
    ],
)
def test_writes_into_protected_directories_are_refused(toolbox: Toolbox, path: str) -> None:
    before = (
        (toolbox.workspace / path).read_bytes() if (toolbox.workspace / path).exists() else None
    )
    result = use(toolbox, "write_file", path=path, content="pwned")
    assert result.startswith("REFUSED:")
    assert "never writes" in result
    after = (toolbox.workspace / path).read_bytes() if (toolbox.workspace / path).exists() else None
    assert after == before


def test_a_gitignore_edit_that_drops_venv_is_refused(toolbox: Toolbox) -> None:
    gitignore = toolbox.workspace / ".gitignore"
    gitignore.write_text("__pycache__/\nvenv/\n.venv/\n")
    result = use(toolbox, "edit_file", path=".gitignore", old="venv/\n.venv/\n", new="")
    assert result.startswith("REFUSED:")
    assert "must keep" in result
    assert use(toolbox, "write_file", path=".gitignore", content="*.pyc\n").startswith("REFUSED")
    assert gitignore.read_text() == "__pycache__/\nvenv/\n.venv/\n"
    assert "wrote" in use(
        toolbox, "write_file", path=".gitignore", content="__pycache__/\nvenv/\n.venv/\n*.log\n"
    )


def test_a_50_mb_write_is_refused_and_nothing_is_written(toolbox: Toolbox) -> None:
    result = use(toolbox, "write_file", path="big.txt", content="x" * 50_000_000)
    assert result.startswith("REFUSED:")
    assert "limit" in result
    assert not (toolbox.workspace / "big.txt").exists()


def test_a_command_that_never_ends_is_stopped(toolbox: Toolbox) -> None:
    result = use(toolbox, "run_command", command="sleep 600")
    assert result.startswith("TIMED OUT")
    assert "stopped after 2s" in result


def test_a_refused_command_never_runs(toolbox: Toolbox) -> None:
    (toolbox.workspace / "keep.txt").write_text("precious")
    result = use(toolbox, "run_command", command="rm -rf . ; echo ran > ran.txt")
    assert result.startswith("REFUSED:")
    assert (toolbox.workspace / "keep.txt").read_text() == "precious"
    assert not (toolbox.workspace / "ran.txt").exists()


def test_unknown_tools_and_bad_arguments_are_answered_not_raised(toolbox: Toolbox) -> None:
    assert "there is no tool 'rm'" in use(toolbox, "rm", path="x")
    assert "bad arguments for write_file" in use(toolbox, "write_file", path="x")


def test_a_file_owned_by_another_running_task_is_refused(team_dir: TeamDir) -> None:
    from agent_worker.tools import ownership_guard
    from protocol import Task, TaskStore

    store = TaskStore(team_dir.layout)
    store.add(
        [
            Task(id=1, title="models", files=["models.py"]),
            Task(id=2, title="store", files=["store.py", "shared.py"]),
            Task(id=3, title="cli", files=["cli.py", "shared.py"]),
        ]
    )
    store.promote_ready()
    for task_id, owner in ((1, "builder-a"), (3, "builder-c")):
        store.claim(task_id, owner)
    toolbox = Toolbox(
        team_dir.layout,
        "builder-b",
        2,
        ALL_TOOLS,
        may_write=ownership_guard(team_dir.layout, 2, ["store.py", "shared.py"]),
    )
    result = use(toolbox, "write_file", path="models.py", content="x = 1\n")
    assert result.startswith("REFUSED:")
    assert "models.py belongs to task 1 (builder-a)" in result
    assert not (team_dir.workspace / "models.py").exists()
    assert "wrote" in use(toolbox, "write_file", path="shared.py", content="y = 2\n")
    assert "wrote" in use(toolbox, "write_file", path="store.py", content="z = 3\n")


def test_a_file_no_task_owns_is_refused_naming_the_tasks_own_files(team_dir: TeamDir) -> None:
    from agent_worker.tools import ownership_guard

    guard = ownership_guard(team_dir.layout, 1, ["./pkg/store.py", "cli.py"])
    toolbox = Toolbox(team_dir.layout, "builder-a", 1, ALL_TOOLS, may_write=guard)
    run = toolbox.run(ToolCall(id="c1", name="write_file",
                               arguments={"path": "helpers.py", "content": "x = 1\n"}))  # fmt: skip
    assert run.outcome == "refused"
    assert "helpers.py is not one of your task's files" in run.output
    assert "FILES: ./pkg/store.py, cli.py" in run.output
    assert not (team_dir.workspace / "helpers.py").exists()
    assert "wrote pkg/store.py" in use(toolbox, "write_file", path="pkg/store.py", content="y\n")


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("edit_file", {"path": "blob.bin", "old": "a", "new": "b"}, "UnicodeDecodeError"),
        ("write_file", {"path": "adir", "content": "x"}, "failed"),
        ("write_file", {"path": 123, "content": "x"}, "ERROR"),
        ("read_file", {"path": "loop/x"}, "ERROR"),
    ],
    ids=["binary-edit", "onto-directory", "number-path", "symlink-loop"],
)
def test_a_tool_that_fails_answers_with_an_error_instead_of_crashing(
    toolbox: Toolbox, name: str, arguments: dict[str, object], expected: str
) -> None:
    (toolbox.workspace / "blob.bin").write_bytes(b"\xff\xfe\x00a")
    (toolbox.workspace / "adir").mkdir()
    (toolbox.workspace / "loop").symlink_to(toolbox.workspace / "loop")
    result = use(toolbox, name, **arguments)
    assert result.startswith(("ERROR", "REFUSED")), result
    assert expected in result or result.startswith("REFUSED")


def test_a_lone_surrogate_from_a_model_is_written_as_a_replacement_character(
    toolbox: Toolbox,
) -> None:
    # A model's JSON "\ud83d" decodes to a string UTF-8 cannot hold: the tool call is made
    # whole (U+FFFD) as it is decoded, so the file is written and nothing downstream breaks.
    result = use(toolbox, "write_file", path="s.txt", content="a\ud83db")
    assert result.startswith("wrote s.txt"), result
    assert (toolbox.workspace / "s.txt").read_text() == "a\ufffdb"


def test_read_file_reads_a_line_range_and_says_so(toolbox: Toolbox) -> None:
    (toolbox.workspace / "big.py").write_text("".join(f"x{i} = {i}\n" for i in range(1, 101)))
    part = use(toolbox, "read_file", path="big.py", start=10, end=12)
    assert part == "[lines 10-12 of 100]\nx10 = 10\nx11 = 11\nx12 = 12\n"


def test_the_teams_own_files_cannot_be_read(toolbox: Toolbox) -> None:
    result = use(toolbox, "read_file", path=".agents/team.json")
    assert result.startswith("REFUSED:")


@pytest.mark.parametrize(
    "path", [".env", ".env.production", "config/deploy.pem", "id_rsa", "keys/server.key"]
)
def test_a_secret_looking_file_is_said_to_exist_but_its_content_is_withheld(
    toolbox: Toolbox, path: str
) -> None:
    target = toolbox.workspace / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("API_TOKEN=the-secret-value\n")
    result = use(toolbox, "read_file", path=path)
    assert result.startswith("WITHHELD:") and path in result
    assert "the-secret-value" not in result
    assert path in use(toolbox, "list_files", path=".")


def test_secret_files_stay_out_of_a_build_prompt(team_dir: TeamDir) -> None:
    from agent_worker.prompts import imported_sources

    (team_dir.workspace / "client_secret.py").write_text("TOKEN = 'the-secret-value'\n")
    (team_dir.workspace / "app.py").write_text("import client_secret\n")
    sources = imported_sources(team_dir.workspace, ["main.py"], "use app.py and client_secret.py")
    assert [name for name, _ in sources] == ["app.py"]


def test_a_call_whose_arguments_are_not_json_is_answered_with_the_error(
    toolbox: Toolbox,
) -> None:
    error = "Unterminated string starting at: line 1 column 29 (char 28)"
    before = sorted(toolbox.workspace.rglob("*"))
    run = toolbox.run(ToolCall(id="c1", name="write_file", arguments_error=error))
    assert run.outcome == "error"
    assert "arguments to write_file are not valid JSON" in run.output and error in run.output
    assert sorted(toolbox.workspace.rglob("*")) == before
