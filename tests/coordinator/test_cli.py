from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordinator import views
from coordinator.cli import cli
from coordinator.inbox_watch import ALL_STATES, collect
from protocol import Layout, Task, TaskStatus, TaskStore, TeamInfo, create_inbox, list_inbox
from protocol.agents import AgentRecord, AgentRole, AgentState
from protocol.mailbox import MessageName
from tests.coordinator.conftest import Team

SHUTDOWN = '{"reason": "time to go"}'


def team_id(workspace: Path) -> str:
    return TeamInfo.read(Layout.of(workspace).team_json).id


def test_init_creates_the_team_and_is_idempotent(team: Team, workspace: Path) -> None:
    first = team("init", "--task", "build a todo app")
    assert first.exit_code == 0, first.output
    assert "created team" in first.output
    layout = Layout.of(workspace)
    assert layout.inbox_names() == ["coordinator", "user"]
    assert (layout.root / ".gitignore").read_text().splitlines()[-1] == "*"
    original = team_id(workspace)

    again = team("init")
    assert again.exit_code == 0
    assert "already there" in again.output
    assert team_id(workspace) == original
    assert TeamInfo.read(layout.team_json).task == "build a todo app"


def test_the_workspace_option_works_after_the_command_and_from_the_environment(
    workspace: Path,
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "-w", str(workspace)]).exit_code == 0
    result = runner.invoke(cli, ["status"], env={"TEAM_WORKSPACE": str(workspace)})
    assert result.exit_code == 0, result.output
    assert team_id(workspace) in result.output


@pytest.mark.parametrize("command", [["status"], ["inbox"], ["send", "--to", "x", "--type",
                                     "shutdown_request", "--payload", "{}"]])  # fmt: skip
def test_commands_outside_a_team_say_how_to_start_one(team: Team, command: list[str]) -> None:
    result = team(*command)
    assert result.exit_code == 1
    assert "no team in" in result.output
    assert "team init" in result.output


def test_a_message_sent_shows_up_in_the_inbox(team: Team) -> None:
    team("init")
    sent = team("send", "--to", "coordinator", "--type", "shutdown_request", "--payload", SHUTDOWN)
    assert sent.exit_code == 0, sent.output
    assert "delivered shutdown_request" in sent.output

    table = team("inbox")
    assert table.exit_code == 0
    for cell in ("user", "coordinator", "shutdown_request", "time to go"):
        assert cell in table.output

    [line] = team("inbox", "--json").output.splitlines()
    record = json.loads(line)
    assert record["state"] == "pending"
    assert record["seq"] == 1
    assert record["message"]["payload"] == {"reason": "time to go", "grace_seconds": 30.0}


def test_inbox_of_one_agent_and_of_an_unknown_agent(team: Team) -> None:
    team("init")
    team("send", "--to", "user", "--type", "shutdown_request", "--payload", SHUTDOWN)
    assert "time to go" in team("inbox", "user").output
    assert "time to go" not in team("inbox", "coordinator").output
    unknown = team("inbox", "ghost")
    assert unknown.exit_code == 2
    assert "no inbox named 'ghost'" in unknown.output


def test_inbox_all_shows_handled_and_quarantined_messages(team: Team, workspace: Path) -> None:
    team("init")
    team("send", "--to", "coordinator", "--type", "shutdown_request", "--payload", SHUTDOWN)
    inbox = Layout.of(workspace).inbox("coordinator")
    [name] = os.listdir(inbox.new)
    os.rename(inbox.new / name, inbox.cur / name)
    bad = MessageName(9, "user", "junk").file_name()
    (inbox.bad / bad).write_text("{nope")
    (inbox.bad / (bad + ".reason")).write_text("not JSON: Expecting property name\n")

    assert "no messages waiting" in team("inbox").output
    everything = team("inbox", "--all", "--json").output.splitlines()
    states = {json.loads(line)["state"]: json.loads(line) for line in everything}
    assert set(states) == {"handled", "quarantined"}
    assert states["quarantined"]["problem"] == "not JSON: Expecting property name"
    table = team("inbox", "--all").output
    assert "handled" in table
    assert "quarantined" in table


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--type", "shutdown_request", "--payload", "{not json"], "not JSON"),
        (["--type", "shutdown_request", "--payload", '{"reasn": "x"}'], "reason: Field required"),
        (["--type", "plan_approval", "--payload", '{"stage": "response"}'], "needs approved"),
        (["--type", "gossip", "--payload", "{}"], "'gossip' is not one of"),
        (["--type", "shutdown_request", "--payload", SHUTDOWN, "--from", "Bad/Name"], "--from"),
    ],
    ids=["not-json", "missing-field", "bad-stage", "unknown-type", "bad-sender"],
)
def test_a_bad_send_is_exit_2_with_a_clear_error_and_delivers_nothing(
    team: Team, workspace: Path, args: list[str], complaint: str
) -> None:
    team("init")
    result = team("send", "--to", "coordinator", *args)
    assert result.exit_code == 2
    assert complaint in result.output
    assert list_inbox(Layout.of(workspace), "coordinator", team=None) == []


def test_sending_to_an_unknown_agent_is_exit_2(team: Team) -> None:
    team("init")
    result = team("send", "--to", "nobody", "--type", "shutdown_request", "--payload", SHUTDOWN)
    assert result.exit_code == 2
    assert "no inbox named 'nobody' (inboxes: coordinator, user)" in result.output


def make_tasks(workspace: Path) -> TaskStore:
    store = TaskStore(Layout.of(workspace))
    store.add(
        [
            Task(id=1, title="data models", files=["models.py"]),
            Task(id=2, title="storage", depends_on=[1]),
            Task(id=3, title="cli and tests", depends_on=[1, 2]),
        ]
    )
    store.promote_ready()
    store.claim(1, "builder-models")
    return store


def test_status_shows_the_dag(team: Team, workspace: Path) -> None:
    team("init", "--task", "todo app")
    make_tasks(workspace)
    result = team("status")
    assert result.exit_code == 0, result.output
    assert "todo app" in result.output
    assert "builder-models" in result.output
    assert "assigned" in result.output
    assert "1, 2" in result.output

    data = json.loads(team("status", "--json").output)
    assert data["team"]["id"] == team_id(workspace)
    assert [(t["id"], t["status"]) for t in data["tasks"]] == [
        (1, "assigned"), (2, "pending"), (3, "pending"),
    ]  # fmt: skip
    assert data["problems"] == []


def test_status_with_a_damaged_task_file_shows_the_rest_and_exits_1(
    team: Team, workspace: Path
) -> None:
    team("init")
    store = make_tasks(workspace)
    store.layout.task_file(2).write_text("{garbage")
    result = team("status")
    assert result.exit_code == 1
    assert "data models" in result.output
    assert "0002.json is not a valid task file" in result.output
    data = json.loads(team("status", "--json").output)
    assert [t["id"] for t in data["tasks"]] == [1, 3]
    assert TaskStatus.ASSIGNED.value in data["tasks"][0]["status"]


@pytest.mark.parametrize(
    "command",
    ["init", "inbox", "send", "status", "up", "kill", "resume", "attach", "logs", "demo", "doctor"],
)
def test_every_command_explains_itself_with_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_inbox_follow_streams_a_message_sent_by_another_process(
    team: Team, workspace: Path
) -> None:
    """The real `team` executable, following while `team send` delivers from another process."""
    team("init")
    executable = shutil.which("team", path=os.path.dirname(sys.executable))
    assert executable, "the team console script is installed next to this Python"
    follower = subprocess.Popen(
        [executable, "-w", str(workspace), "inbox", "--follow", "--json", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stderr is not None
        assert select.select([follower.stderr], [], [], 20)[0], "the follower never started"
        assert "following new messages" in follower.stderr.readline()
        sender = subprocess.run(
            [executable, "-w", str(workspace), "send", "--to", "coordinator",
             "--type", "shutdown_request", "--payload", SHUTDOWN],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "delivered" in sender.stdout
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 20)
        assert ready, "no line streamed within 20 s"
        record = json.loads(follower.stdout.readline())
        assert record["message"]["payload"]["reason"] == "time to go"
    finally:
        follower.terminate()
        follower.communicate(timeout=10)


def test_brackets_in_message_text_and_titles_are_printed_not_parsed(
    team: Team, workspace: Path
) -> None:
    team("init", "--task", "fix [/x] and [bold]")
    payload = json.dumps({"task_id": 1, "phase": "see [/x]", "detail": "[red]not red[/red]"})
    assert team("send", "--to", "coordinator", "--type", "progress_update",
                "--payload", payload).exit_code == 0  # fmt: skip
    TaskStore(Layout.of(workspace)).add([Task(id=1, title="parse [/tmp] paths")])
    shown = team("inbox")
    assert shown.exit_code == 0, shown.output
    assert "see [/x]" in shown.output
    assert "[red]not red[/red]" in shown.output
    status = team("status")
    assert status.exit_code == 0, status.output
    assert "parse [/tmp] paths" in status.output
    assert "fix [/x] and [bold]" in status.output


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
        ('{"reason": "\\ud800"}', "unpaired surrogate"),
        ('{"reason": NaN}', "not JSON"),
        ("[1, 2]", "not a JSON object"),
    ],
    ids=["deep", "surrogate", "nan", "list"],
)
def test_hostile_payloads_are_exit_2_not_a_traceback(
    team: Team, payload: str, complaint: str
) -> None:
    team("init")
    result = team("send", "--to", "coordinator", "--type", "shutdown_request", "--payload", payload)
    assert result.exit_code == 2, result.output
    assert complaint in result.output


def test_init_over_a_damaged_team_file_says_what_to_do(team: Team, workspace: Path) -> None:
    team("init")
    Layout.of(workspace).team_json.write_text("{half")
    result = team("init")
    assert result.exit_code == 1
    assert "team.json is not a valid team file" in result.output
    assert "fix or remove it" in result.output


def test_init_where_nothing_can_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(cli, ["init", "-w", str(blocker / "project")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_inbox_orders_by_inbox_then_sequence(team: Team, workspace: Path) -> None:
    team("init")
    for n in range(3):
        team("send", "--to", "user", "--type", "shutdown_request", "--payload",
             json.dumps({"reason": f"u{n}"}))  # fmt: skip
        team("send", "--to", "coordinator", "--type", "shutdown_request", "--payload",
             json.dumps({"reason": f"c{n}"}))  # fmt: skip
    lines = [json.loads(line) for line in team("inbox", "--json").output.splitlines()]
    assert [(r["inbox"], r["seq"]) for r in lines] == [
        ("coordinator", 1), ("coordinator", 2), ("coordinator", 3),
        ("user", 1), ("user", 2), ("user", 3),
    ]  # fmt: skip


@pytest.mark.parametrize("host", ["localhost:abc", "::::", "http://[::1"])
def test_doctor_with_a_bad_ollama_host_is_exit_1_with_what_to_fix(
    tmp_path: Path, host: str
) -> None:
    """The real `team` executable: a bad URL is a config error, never a traceback."""
    executable = shutil.which("team", path=os.path.dirname(sys.executable))
    assert executable, "the team console script is installed next to this Python"
    env = {**os.environ, "OLLAMA_HOST": host, "TEAM_CONFIG": str(tmp_path / "none.toml")}
    done = subprocess.run(
        [executable, "-w", str(tmp_path), "doctor"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"OLLAMA_HOST={host!r} (from the environment)" in done.stderr
    assert "a good one looks like http://127.0.0.1:11434" in done.stderr


@pytest.fixture
def sleeper() -> Iterator[int]:
    """The pid of a real process that stays alive for the test: an agent that is running."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def register(workspace: Path, name: str, pid: int, state: AgentState = "working") -> None:
    role: AgentRole = "coordinator" if name == "coordinator" else "builder"
    AgentRecord(name=name, role=role, pid=pid, state=state).write(Layout.of(workspace))


@pytest.mark.parametrize(
    ("coordinator", "note"),
    [
        (None, "builder-x is not running (the team has not started): it will read it then"),
        ("stopped", "builder-x is not running (the team is stopped): it will read it when "
                    "`team resume` starts it"),
        ("running", "builder-x is not running: it will read it when the coordinator starts it "
                    "again"),
    ],
)  # fmt: skip
def test_a_message_to_an_agent_that_is_not_running_is_delivered_with_a_note_on_stderr(
    team: Team, workspace: Path, sleeper: int, coordinator: str | None, note: str
) -> None:
    team("init")
    create_inbox(Layout.of(workspace), "builder-x")
    register(workspace, "builder-x", dead_pid())
    if coordinator is not None:
        register(workspace, "coordinator", sleeper if coordinator == "running" else dead_pid())
    sent = team("send", "--to", "builder-x", "--type", "shutdown_request", "--payload", SHUTDOWN)
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.startswith("delivered shutdown_request")
    assert sent.stderr == f"delivered, but {note}\n"
    assert len(list_inbox(Layout.of(workspace), "builder-x", team=None)) == 1


def test_a_message_to_a_running_agent_or_to_the_user_has_no_note(
    team: Team, workspace: Path, sleeper: int
) -> None:
    team("init")
    register(workspace, "coordinator", sleeper)
    for recipient in ("coordinator", "user"):
        sent = team("send", "--to", recipient, "--type", "shutdown_request", "--payload", SHUTDOWN)
        assert sent.exit_code == 0, sent.output
        assert sent.stderr == ""


def test_a_stopped_agent_whose_pid_lives_on_counts_as_not_running(
    team: Team, workspace: Path, sleeper: int
) -> None:
    team("init")
    register(workspace, "coordinator", sleeper, state="stopped")
    sent = team("send", "--to", "coordinator", "--type", "shutdown_request", "--payload", SHUTDOWN)
    assert "coordinator is not running (the team is stopped)" in sent.stderr


def test_the_payload_comes_from_a_file_or_from_stdin(
    team: Team, workspace: Path, tmp_path: Path
) -> None:
    team("init")
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"reason": "from a file"}\n')
    by_file = team("send", "--to", "user", "--type", "shutdown_request",
                   "--payload", f"@{payload_file}")  # fmt: skip
    assert by_file.exit_code == 0, by_file.output
    by_stdin = team("send", "--to", "user", "--type", "shutdown_request", "--payload", "-",
                    input='{"reason": "from stdin"}')  # fmt: skip
    assert by_stdin.exit_code == 0, by_stdin.output
    inbox = list_inbox(Layout.of(workspace), "user", team=None)
    assert [json.loads(e.path.read_bytes())["payload"]["reason"] for e in inbox] == [
        "from a file", "from stdin",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ("@{tmp}/missing.json", "cannot read '{tmp}/missing.json': No such file or directory"),
        ("@{tmp}", "cannot read '{tmp}': Is a directory"),
        ("@{tmp}/huge.json", "holds more than a message may (1048576 bytes)"),
        ("@{tmp}/empty.json", "empty file"),
    ],
    ids=["missing", "directory", "too-big", "empty"],
)
def test_a_payload_file_that_cannot_be_used_is_exit_2_naming_it(
    team: Team, workspace: Path, tmp_path: Path, payload: str, complaint: str
) -> None:
    team("init")
    (tmp_path / "huge.json").write_bytes(b" " * (2 * 1024 * 1024))
    (tmp_path / "empty.json").write_bytes(b"")
    result = team("send", "--to", "user", "--type", "shutdown_request",
                  "--payload", payload.format(tmp=tmp_path))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert complaint.format(tmp=tmp_path) in result.output
    assert "Traceback" not in result.output
    assert list_inbox(Layout.of(workspace), "user", team=None) == []


def write_log(workspace: Path, name: str, text: str) -> Path:
    path = Layout.of(workspace).logs_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_logs_without_an_agent_lists_every_log_with_its_size_and_time(
    team: Team, workspace: Path
) -> None:
    team("init")
    assert "no logs yet" in team("logs").output
    write_log(workspace, "coordinator.log", "x" * 2048)
    write_log(workspace, "builder-x.out", "hello\n")
    listing = team("logs")
    assert listing.exit_code == 0, listing.output
    rows = [line for line in listing.output.splitlines() if ".log" in line or ".out" in line]
    assert len(rows) == 2
    assert "builder-x.out" in rows[0] and "6 B" in rows[0]
    assert "coordinator.log" in rows[1] and "2.0 KiB" in rows[1]


def test_logs_of_an_unknown_agent_names_the_ones_there_are(team: Team, workspace: Path) -> None:
    team("init")
    write_log(workspace, "builder-x.log", "hi\n")
    result = team("logs", "nobody")
    assert result.exit_code == 2
    assert "no log for 'nobody' (logs: builder-x)" in result.output


def test_logs_follow_with_a_timeout_prints_the_last_lines_then_stops(
    team: Team, workspace: Path
) -> None:
    team("init")
    write_log(workspace, "builder-x.log", "one\ntwo\nthree\nhalf a li")
    result = team("logs", "builder-x", "-n", "2", "--follow", "--timeout", "0.3")
    assert result.exit_code == 0, result.output
    # The line without its newline waits for the rest, and is shown when following stops.
    assert result.stdout == "two\nthree\nhalf a li\n"
    assert "following builder-x.log" in result.stderr


def test_logs_follow_prints_lines_as_another_process_writes_them_until_ctrl_c(
    team: Team, workspace: Path
) -> None:
    """The real `team` executable, following while another process appends to the log."""
    team("init")
    log = write_log(workspace, "builder-x.log", "before\n")
    executable = shutil.which("team", path=os.path.dirname(sys.executable))
    assert executable, "the team console script is installed next to this Python"
    follower = subprocess.Popen(
        [executable, "-w", str(workspace), "logs", "builder-x", "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None and follower.stderr is not None
        assert select.select([follower.stdout], [], [], 20)[0], "the last lines never came"
        assert follower.stdout.readline() == "before\n"
        assert select.select([follower.stderr], [], [], 20)[0], "the follower never started"
        assert "following builder-x.log" in follower.stderr.readline()
        subprocess.run(
            [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('after \\x1b[2J\\n')",
             str(log)], check=True,
        )  # fmt: skip
        assert select.select([follower.stdout], [], [], 20)[0], "no new line within 20 s"
        assert follower.stdout.readline() == "after \\x1b[2J\n"  # made inert
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=20)
        assert follower.returncode == 0
        assert "Traceback" not in err
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()


ANSWER = '{"accepted": true, "unfinished": ["task 3"]}'


def test_an_answer_to_the_user_that_needs_no_reply_is_not_pending_work(team: Team) -> None:
    team("init")
    for sender in ("builder-a", "coordinator"):
        team("send", "--from", sender, "--to", "user", "--type", "shutdown_response",
             "--payload", ANSWER)  # fmt: skip
    team("send", "--to", "coordinator", "--type", "shutdown_request", "--payload", SHUTDOWN)
    shown = team("inbox")
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if "│" in line]
    assert not [row for row in rows if "shutdown_response" in row]
    assert "time to go" in shown.output
    assert "2 answers need no reply (shutdown_response from builder-a, coordinator)" in (
        shown.output
    )
    assert "no messages waiting" in team("inbox", "user").output


def test_all_lists_answers_to_the_user_as_info_and_json_says_they_need_no_handling(
    team: Team,
) -> None:
    team("init")
    team("send", "--from", "builder-a", "--to", "user", "--type", "shutdown_response",
         "--payload", ANSWER)  # fmt: skip
    team("send", "--to", "user", "--type", "shutdown_request", "--payload", SHUTDOWN)
    [info_row] = [line for line in team("inbox", "--all").output.splitlines() if "left:" in line]
    assert "info" in info_row and "pending" not in info_row
    records = [json.loads(line) for line in team("inbox", "--json").output.splitlines()]
    assert [(r["message"]["type"], r["state"], r["needs_handling"]) for r in records] == [
        ("shutdown_response", "info", False), ("shutdown_request", "pending", True),
    ]  # fmt: skip


def test_a_followed_answer_to_the_user_is_marked_info(team: Team, workspace: Path) -> None:
    team("init")
    team("send", "--from", "builder-a", "--to", "user", "--type", "shutdown_response",
         "--payload", ANSWER)  # fmt: skip
    [entry] = collect(Layout.of(workspace), ["user"], ALL_STATES, team_id(workspace))
    assert "[info] accepted, left: task 3" in views.inbox_line(entry).plain
