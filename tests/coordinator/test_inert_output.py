"""Terminal output is inert: an escape sequence in a message payload, a task title, the team's
detail, a log or a model's text is shown escaped in every view (team inbox, status, logs,
the coordinator's pane and the workers'), never sent raw to the user's terminal."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from rich.console import Console

from agent_worker.view import View
from coordinator.cli import cli
from coordinator.run import Coordinator
from coordinator.runners import SubprocessRunner
from protocol import (
    ErrorCategory,
    ErrorReport,
    ProgressUpdate,
    Task,
    TaskStore,
    TeamInfo,
    make_message,
)
from protocol.display import inert
from tests.conftest import TeamDir

PAYLOAD = "\u001b]0;PWNED\u0007\u001b[2J\rover\u202e"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J\\x0dover\\u202e"


def assert_inert(output: str) -> None:
    assert "\x1b]" not in output and "\x1b[2J" not in output
    assert "\x07" not in output and "\r" not in output and "\u202e" not in output
    assert SHOWN in output


@pytest.fixture
def hostile_team(team_dir: TeamDir) -> TeamDir:
    mailbox = team_dir.mailbox()
    for payload in (
        ProgressUpdate(task_id=1, phase="building", detail=PAYLOAD),
        ErrorReport(task_id=1, category=ErrorCategory.OTHER, message=PAYLOAD, recoverable=True),
    ):
        mailbox.send(
            make_message(payload, team=team_dir.team_id, sender="worker", recipient="coordinator")
        )
    TaskStore(team_dir.layout).add([Task(id=1, title=f"build {PAYLOAD}", files=["a.py"])])
    info = TeamInfo.read(team_dir.layout.team_json)
    info.model_copy(update={"detail": PAYLOAD, "task": PAYLOAD}).write(team_dir.layout.team_json)
    team_dir.layout.logs_dir.mkdir(parents=True, exist_ok=True)
    team_dir.layout.log_file("worker").write_text(f"12:00:00 done    {PAYLOAD}\n")
    return team_dir


def test_inert_escapes_what_a_terminal_would_act_on_and_keeps_text() -> None:
    assert inert(PAYLOAD) == SHOWN
    assert (
        inert("plain text, tabs\tand\nlines, ünïcode ✓")
        == "plain text, tabs\tand\nlines, ünïcode ✓"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["inbox"],
        ["inbox", "--all"],
        ["inbox", "--follow", "--timeout", "0.3"],
        ["status"],
        ["logs", "worker"],
        ["logs", "worker", "--follow", "--timeout", "0.3"],
    ],
    ids=["inbox", "inbox-all", "inbox-follow", "status", "logs", "logs-follow"],
)
def test_every_cli_view_shows_escape_sequences_escaped(
    hostile_team: TeamDir, command: list[str]
) -> None:
    result = CliRunner().invoke(cli, ["-w", str(hostile_team.workspace), *command])
    assert result.exit_code == 0, result.output
    assert_inert(result.output)


def test_json_output_carries_the_text_with_json_escapes(hostile_team: TeamDir) -> None:
    result = CliRunner().invoke(cli, ["-w", str(hostile_team.workspace), "inbox", "--json"])
    assert "\x1b" not in result.output and "\\u001b]0;PWNED" in result.output


def test_a_workers_pane_and_log_show_model_text_escaped(
    team_dir: TeamDir, capsys: pytest.CaptureFixture[str]
) -> None:
    view = View("builder-x", team_dir.layout.log_file("builder-x"))
    view.event("done", f"task 1: {PAYLOAD}")
    assert_inert(capsys.readouterr().out)
    assert_inert(team_dir.layout.log_file("builder-x").read_text())


def test_the_coordinators_pane_and_log_show_message_text_escaped(team_dir: TeamDir) -> None:
    screen = io.StringIO()
    coordinator = Coordinator(
        team_dir.layout,
        SubprocessRunner(team_dir.layout),
        console=Console(file=screen, force_terminal=True, markup=False, highlight=False),
    )
    coordinator.say("done", f"builder-x: task 1: {PAYLOAD}")
    assert_inert(screen.getvalue())
    assert_inert(team_dir.layout.log_file("coordinator").read_text())
