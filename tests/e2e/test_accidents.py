"""Accidents a user can cause, end to end: two `team up`s at once, a task file or team.json
edited or lost, the coordinator killed, Ctrl-C, a second run in a finished workspace, a
read-only directory, a bad setting. Real processes, tmux, git and sandbox, with the scripted
model; each test asserts the exit code, what the user is told, that no process of the team is
left (counted from /proc by the test itself), and that the state on disk still reads."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libtmux
import pytest

from coordinator.demo_scenario import scenario
from protocol import Layout, TeamInfo, TeamStatus
from protocol.agents import is_running, read_agent, read_agents
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.team import read_team_or_backup
from tests.e2e.test_faults import running_task
from tests.e2e.test_team_up import MODEL, env_for
from tests.processes import REPO, Output, team_processes

pytestmark = pytest.mark.timeout(120)

TASK = "a todo list that counts open items"
WAITING = ("--runner", "subprocess", "--wait")


# --- the model, the workspace, and running `team` as a user does ----------------------------


def scripted(delay: float) -> Iterator[ScriptedServer]:
    with ScriptedServer(Scenario.model_validate(scenario(MODEL, delay=delay))) as server:
        yield server


@pytest.fixture(scope="module")
def slow_model() -> Iterator[ScriptedServer]:
    """Each first write of a file takes the model 1.5 s: time to act while the team builds."""
    yield from scripted(1.5)


@pytest.fixture
def quick_model() -> Iterator[ScriptedServer]:
    yield from scripted(0.0)


@pytest.fixture
def stuck_model() -> Iterator[ScriptedServer]:
    """The first write takes the model a minute: its worker reaches no safe point to stop at."""
    yield from scripted(60.0)


def end_what_is_left(workspace: Path) -> None:
    """After a test, whatever it failed to stop: never left to slow down the rest of the suite."""
    for pid in team_processes(workspace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    info, _ = read_team_or_backup(Layout.of(workspace).team_json)
    if info is not None:
        server = tmux_server(info)
        if server.is_alive():
            server.kill()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "todo"
    yield folder
    end_what_is_left(folder)


def tmux_server(info: TeamInfo) -> libtmux.Server:
    return libtmux.Server(socket_name=f"agent-team-{info.id}")


def team_command(
    *args: object, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def run(
    workspace: Path, server: ScriptedServer, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`team -w WORKSPACE ARGS...`, to its end."""
    return team_command("-w", workspace, *args, env=env_for(server), timeout=timeout)


def start(workspace: Path, server: ScriptedServer, *args: str) -> Output:
    """`team -w WORKSPACE ARGS...` left running; what it prints is collected."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordinator.cli", "-w", str(workspace), *args],
        env=env_for(server),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Output(proc)


def flat(text: str) -> str:
    return " ".join(text.split())


def eventually(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:g}s")
        time.sleep(0.05)


def building(workspace: Path, module: str = "models") -> None:
    """Until the task of `module` runs; a team that failed meanwhile fails the test at once."""
    layout = Layout.of(workspace)

    def running() -> bool:
        info, _ = read_team_or_backup(layout.team_json)
        if info is not None and info.status == TeamStatus.FAILED:
            pytest.fail(f"the team failed: {info.detail}")
        return running_task(layout, module)

    eventually(running, f"task of {module} running")


def detached_team(workspace: Path, server: ScriptedServer) -> Layout:
    """A team set to work by `team up --detach` as plain processes, caught mid-build."""
    up = run(workspace, server, "up", TASK, "--runner", "subprocess", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    building(workspace)
    return Layout.of(workspace)


def assert_no_process_left(workspace: Path) -> None:
    """A process SIGKILLed by `team kill` is gone a moment later, not at once."""
    deadline = time.monotonic() + 15
    while (left := team_processes(workspace)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes of the team still running: {left}"


def readable_status(workspace: Path, server: ScriptedServer, code: int = 0) -> dict[str, Any]:
    """`team status --json`: it parses, and exits with `code`."""
    done = run(workspace, server, "status", "--json")
    assert done.returncode == code, done.stdout + done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def coordinator_pid(workspace: Path) -> int:
    record = read_agent(Layout.of(workspace), "coordinator")
    assert record is not None
    return record.pid


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP: while the test looks, the coordinator cannot write team.json again."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


# --- 1. two `team up` in one workspace at once ---------------------------------------------


def test_two_team_ups_at_once_run_one_team_on_its_own_task_and_the_other_says_why(
    slow_model: ScriptedServer, workspace: Path
) -> None:
    tasks = [f"{TASK}, asked first", f"{TASK}, asked second"]
    ups = [start(workspace, slow_model, "up", t, *WAITING) for t in tasks]
    eventually(lambda: any(u.proc.poll() is not None for u in ups), "`team up` giving way", 30)
    loser = next(u for u in ups if u.proc.poll() is not None)
    survivor = next(u for u in ups if u is not loser)
    assert loser.wait(5) == 1, loser.text
    building(workspace)
    assert survivor.proc.poll() is None, survivor.text
    layout = Layout.of(workspace)
    info = TeamInfo.read(layout.team_json)
    assert info.task == tasks[ups.index(survivor)], "the team works on its own task"
    coordinator = coordinator_pid(workspace)
    said = flat(loser.text)
    # The loser was turned away by the start lock, or (if it came late) by the coordinator's.
    starting = re.search(
        r"another (`team up` \(pid (\d+), since \d\d:\d\d:\d\d\)|team command) is starting a "
        rf"team for {re.escape(str(workspace))} right now",
        said,
    )
    if starting:  # without its holder when it asked in the instant before that was written
        assert starting[2] is None or int(starting[2]) == survivor.proc.pid
    else:
        assert f"team {info.id} is at work in {workspace}" in said, said
        assert f"its coordinator (pid {coordinator})" in said
        assert f"`team kill -w {workspace}`" in said

    third = run(workspace, slow_model, "up", "another task", *WAITING)
    assert third.returncode == 1
    said = flat(third.stderr)
    assert re.search(rf"team {info.id} is at work in {re.escape(str(workspace))} \(\w+\)", said)
    assert re.search(rf"its coordinator \(pid {coordinator}\) runs since \d\d:\d\d:\d\d", said)
    assert f"stop it with `team kill -w {workspace}`" in said
    assert TeamInfo.read(layout.team_json).task == info.task
    assert list(team_processes(workspace).values()).count("coordinator") == 1

    killed = run(workspace, slow_model, "kill", "--grace", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert survivor.wait(30) == 1
    assert "stopped (iteration 1)" in survivor.text
    assert_no_process_left(workspace)
    assert readable_status(workspace, slow_model)["team"]["status"] == "stopped"


def test_two_detached_team_ups_in_tmux_start_one_team_and_it_says_how_to_watch_it(
    slow_model: ScriptedServer, workspace: Path
) -> None:
    tasks = [f"{TASK}, asked first", f"{TASK}, asked second"]
    ups = [start(workspace, slow_model, "up", t, "--detach") for t in tasks]
    codes = [u.wait(60) for u in ups]
    assert sorted(codes) == [0, 1], [u.text for u in ups]
    survivor, loser = ups[codes.index(0)], ups[codes.index(1)]
    info = TeamInfo.read(Layout.of(workspace).team_json)
    assert info.task == tasks[codes.index(0)]
    said = flat(survivor.text)
    assert (
        f"watch it with `team attach -w {workspace}`, or `tmux -L agent-team-{info.id} "
        f"attach -t team-{info.id}`" in said
    )
    assert f"`team attach -w {workspace}`; `team kill -w {workspace}` stops it" in said
    refused = flat(loser.text)
    assert "is starting a team for" in refused or f"team {info.id} is at work" in refused, refused

    building(workspace)
    server = tmux_server(info)
    assert [s.name for s in server.sessions] == [f"team-{info.id}"]
    assert list(team_processes(workspace).values()).count("coordinator") == 1
    killed = run(workspace, slow_model, "kill", "--grace", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert f"closed tmux session team-{info.id}" in killed.stdout
    assert_no_process_left(workspace)
    eventually(lambda: not server.is_alive(), "end of the team's tmux server", 10)
    assert readable_status(workspace, slow_model)["team"]["status"] == "stopped"


# --- 2. `team resume` on task files edited into something that cannot be built ------------


@pytest.fixture(scope="module")
def stopped_team(
    slow_model: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A team stopped by `team kill` mid-build: its task files on disk, as a user finds them
    (1 models, 2 storage after 1, 3 tests after 2; the empty workspace needed no explorer)."""
    workspace = tmp_path_factory.mktemp("stopped") / "todo"
    try:
        detached_team(workspace, slow_model)
        killed = run(workspace, slow_model, "kill", "--grace", "1")
        assert killed.returncode == 0, killed.stdout + killed.stderr
        yield workspace
    finally:
        end_what_is_left(workspace)


@dataclass(frozen=True)
class Damage:
    apply: Callable[[Path], None]  # given the tasks directory
    says: str  # a pattern of what `team resume` says, after the tasks directory
    status_code: int  # of `team status` afterwards: 1 when a file cannot be read


def edit_depends_on(task_file: Path, depends_on: list[int]) -> None:
    task = json.loads(task_file.read_text())
    task_file.write_text(json.dumps({**task, "depends_on": depends_on}))


def cut_short(task_file: Path) -> None:
    task_file.write_bytes(task_file.read_bytes()[:20])


def replace_with_a_directory(task_file: Path) -> None:
    task_file.unlink()
    task_file.mkdir()


# Unreadable by chmod 000 is not among them: the tests run as root, who reads such a file
# anyway. A file that is not JSON, and a directory in its place, root cannot read either.
DAMAGES = {
    "a dependency on a task that does not exist": Damage(
        lambda tasks: edit_depends_on(tasks / "0003.json", [2, 99]),
        r"/0003\.json: depends on task 99, which does not exist; "
        r"fix: remove 99 from its depends_on",
        0,
    ),
    "a dependency cycle": Damage(
        lambda tasks: edit_depends_on(tasks / "0002.json", [1, 3]),
        r"/000[23]\.json: is in a dependency cycle: (2 -> 3 -> 2|3 -> 2 -> 3) "
        r"\(each depends on the next\); fix: remove one of these dependencies",
        0,
    ),
    "a task file that is not JSON": Damage(
        lambda tasks: cut_short(tasks / "0003.json"),
        r"/0003\.json: is not a valid task file: .*; fix: repair it",
        1,
    ),
    "a directory where a task file was": Damage(
        lambda tasks: replace_with_a_directory(tasks / "0003.json"),
        r"/0003\.json: cannot be read: Is a directory; fix: repair it",
        1,
    ),
}


@pytest.fixture
def tasks_dir(stopped_team: Path) -> Iterator[Path]:
    """The stopped team's tasks directory, put back as it was after the test damaged it."""
    tasks = Layout.of(stopped_team).tasks_dir
    saved = {p.name: p.read_bytes() for p in tasks.glob("*.json")}
    yield tasks
    for name, content in saved.items():
        path = tasks / name
        if path.is_dir():
            path.rmdir()
        path.write_bytes(content)


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_team_resume_refuses_task_files_that_cannot_be_built_naming_the_file_and_the_fix(
    damage: Damage, stopped_team: Path, tasks_dir: Path, slow_model: ScriptedServer
) -> None:
    damage.apply(tasks_dir)
    resumed = run(stopped_team, slow_model, "resume", *WAITING, timeout=20)  # within seconds
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    said = flat(resumed.stderr)
    assert "the task files cannot be built" in said
    assert re.search(re.escape(str(tasks_dir)) + damage.says, said), said
    assert "Traceback" not in resumed.stdout + resumed.stderr
    assert not team_processes(stopped_team)
    status = readable_status(stopped_team, slow_model, damage.status_code)
    assert status["team"]["status"] == "stopped", "nothing was started"


# --- 3. team.json deleted or truncated while the team works ------------------------------


def test_team_json_deleted_while_the_team_works_is_reported_and_written_again(
    slow_model: ScriptedServer, workspace: Path
) -> None:
    layout = detached_team(workspace, slow_model)
    info = TeamInfo.read(layout.team_json)
    pid = coordinator_pid(workspace)
    with frozen(pid):
        layout.team_json.unlink()
        status = run(workspace, slow_model, "status")
        as_json = readable_status(workspace, slow_model, 1)
    assert status.returncode == 1
    said = flat(status.stdout)
    assert f"problem: {layout.team_json} does not exist" in said
    assert f"put it back with `cp {layout.team_json}.bak {layout.team_json}`" in said
    assert "builder-models" in said and "models: the data model" in said, "agents and tasks"
    assert as_json["team"]["id"] == info.id and len(as_json["tasks"]) == 3
    assert "does not exist" in as_json["problems"][0]

    # Thawed, the coordinator writes it again from memory before it starts the next worker.
    building(workspace, "storage")
    log = (layout.logs_dir / "coordinator.log").read_text()
    assert "team.json was damaged" in log and "writing it again from memory" in log
    assert "died at start" not in log
    assert readable_status(workspace, slow_model)["team"]["id"] == info.id

    # Lost again, with the coordinator frozen until `team kill` ends it: nothing writes it back.
    os.kill(pid, signal.SIGSTOP)
    layout.team_json.unlink()
    killed = run(workspace, slow_model, "kill", "--grace", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert f"warning: {layout.team_json} does not exist" in flat(killed.stderr)
    assert f"team {info.id} stopped" in killed.stdout
    assert_no_process_left(workspace)
    resumed = run(workspace, slow_model, "resume", *WAITING)
    assert resumed.returncode == 1
    said = flat(resumed.stderr)
    assert f"{layout.team_json} does not exist" in said
    assert f"`cp {layout.team_json}.bak {layout.team_json}`" in said
    assert "team init" not in said, "a new team would lose this one's id"
    assert not team_processes(workspace)
    assert readable_status(workspace, slow_model, 1)["team"]["id"] == info.id


def test_team_json_truncated_while_the_team_works_is_reported_killed_and_restorable(
    slow_model: ScriptedServer, workspace: Path
) -> None:
    layout = detached_team(workspace, slow_model)
    info = TeamInfo.read(layout.team_json)
    # Frozen until `team kill` ends it, the coordinator never repairs the file.
    os.kill(coordinator_pid(workspace), signal.SIGSTOP)
    whole = layout.team_json.read_bytes()
    layout.team_json.write_bytes(whole[: len(whole) // 2])
    status = run(workspace, slow_model, "status")
    assert status.returncode == 1
    said = flat(status.stdout)
    assert f"problem: {layout.team_json} is not a valid team file" in said
    assert f"put it back with `cp {layout.team_json}.bak {layout.team_json}`" in said
    assert "builder-models" in said and "models: the data model" in said, "agents and tasks"
    assert readable_status(workspace, slow_model, 1)["team"]["id"] == info.id

    killed = run(workspace, slow_model, "kill", "--grace", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert f"warning: {layout.team_json} is not a valid team file" in flat(killed.stderr)
    assert f"team {info.id} stopped" in killed.stdout
    assert_no_process_left(workspace)
    resumed = run(workspace, slow_model, "resume", *WAITING)
    assert resumed.returncode == 1
    assert f"`cp {layout.team_json}.bak {layout.team_json}`" in flat(resumed.stderr)
    assert not team_processes(workspace)

    shutil.copyfile(f"{layout.team_json}.bak", layout.team_json)  # as advised
    assert readable_status(workspace, slow_model)["team"]["id"] == info.id


# --- 4. the coordinator killed with SIGKILL --------------------------------------------------


def orphan_names(layout: Layout) -> list[str]:
    return [r.name for r in read_agents(layout) if r.name != "coordinator" and is_running(r)]


def test_a_coordinator_killed_with_sigkill_is_named_by_status_and_kill_ends_its_orphans(
    slow_model: ScriptedServer, workspace: Path
) -> None:
    layout = detached_team(workspace, slow_model)
    pid = coordinator_pid(workspace)
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: pid not in team_processes(workspace), "end of the coordinator", 10)
    orphans = team_processes(workspace)
    assert orphans and set(orphans.values()) == {"agent_worker"}, orphans
    record = read_agent(layout, "coordinator")
    assert record is not None
    since = record.heartbeat_at.astimezone().strftime("%H:%M:%S")
    line = (
        f"the coordinator (pid {pid}) is not running since {since}: `team resume` carries on; "
        f"its workers still run ({', '.join(sorted(orphan_names(layout)))}): `team kill` ends them"
    )

    status = run(workspace, slow_model, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"not running: {line}" in flat(status.stdout)
    assert readable_status(workspace, slow_model)["not_running"] == [line]

    killed = run(workspace, slow_model, "kill", "--grace", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert_no_process_left(workspace)
    assert readable_status(workspace, slow_model)["team"]["status"] == "stopped"


# --- 5. Ctrl-C on `team up --wait` -----------------------------------------------------------


def test_ctrl_c_on_a_waiting_team_up_stops_the_team_as_team_kill_does_and_exits_130(
    slow_model: ScriptedServer, workspace: Path
) -> None:
    up = start(workspace, slow_model, "up", TASK, *WAITING)
    building(workspace)
    up.proc.send_signal(signal.SIGINT)
    assert up.wait(60) == 130, up.text
    said = flat(up.text)
    assert "Ctrl-C: stopping the team as `team kill` does (Ctrl-C again to end it at once)" in said
    assert "asked coordinator (pid" in said
    assert "the team is stopped; `team resume` carries on from where it was" in said
    assert "Traceback" not in up.text
    assert_no_process_left(workspace)
    assert readable_status(workspace, slow_model)["team"]["status"] == "stopped"


def test_a_second_ctrl_c_ends_the_team_without_waiting_for_a_stuck_worker(
    stuck_model: ScriptedServer, workspace: Path
) -> None:
    up = start(workspace, stuck_model, "up", TASK, *WAITING)
    building(workspace)
    up.proc.send_signal(signal.SIGINT)
    eventually(lambda: "Ctrl-C: stopping the team" in up.text, "answer to the first Ctrl-C", 10)
    up.proc.send_signal(signal.SIGINT)
    # Well inside the 30 s grace that the first Ctrl-C gives the worker stuck on the model.
    assert up.wait(20) == 130, up.text
    said = flat(up.text)
    assert "Ctrl-C again: ending the team's processes now" in said
    assert "the team is stopped; `team resume` carries on from where it was" in said
    assert "Traceback" not in up.text
    assert_no_process_left(workspace)
    assert readable_status(workspace, stuck_model)["team"]["status"] == "stopped"


# --- 6. `team up` again in a finished workspace ----------------------------------------------


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_a_second_team_up_in_a_finished_workspace_handles_nothing_of_the_first_run(
    quick_model: ScriptedServer, workspace: Path
) -> None:
    layout = Layout.of(workspace)
    first = run(workspace, quick_model, "up", f"{TASK}, first", *WAITING)
    assert first.returncode == 0, first.stdout + first.stderr
    messages = files_under(layout.inboxes_dir)
    # Handled ones, and the workers' last answers, which nobody handled: neither is for the
    # next run's coordinator.
    assert any("/cur/" in m for m in messages) and any("/new/" in m for m in messages)

    second = run(workspace, quick_model, "up", f"{TASK}, second", *WAITING)
    assert second.returncode == 0, second.stdout + second.stderr
    (old,) = (layout.root / "history").iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}", old.name)
    assert files_under(old / "inboxes") == messages, "every message of the first run, as it was"
    for part in ("plan.json", "memory.json", "tasks/0001.json", "agents/coordinator.json"):
        assert (old / part).is_file(), part
    assert (old / "logs" / "coordinator.log").is_file()
    logs = "\n".join(p.read_text() for p in layout.logs_dir.glob("*.log"))
    assert "duplicate" not in logs and "quarantined" not in logs
    assert not list(layout.inboxes_dir.glob("*/bad/*"))
    assert TeamInfo.read(layout.team_json).task == f"{TASK}, second"
    assert_no_process_left(workspace)
    assert readable_status(workspace, quick_model)["team"]["status"] == "done"


# --- 7. errors, not tracebacks ---------------------------------------------------------------


def succeeds(*command: object) -> bool:
    try:
        return subprocess.run(list(map(str, command)), capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write in. Root ignores mode bits: for root, a read-only bind
    mount, else an immutable directory (chattr +i)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    undo: list[object] | None = None
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", folder]
    elif succeeds("mount", "--bind", folder, folder):
        if succeeds("mount", "-o", "remount,bind,ro", folder):
            undo = ["umount", folder]
        else:
            succeeds("umount", folder)
    if undo is None and succeeds("chattr", "+i", folder):
        undo = ["chattr", "-i", folder]
    if undo is None:
        pytest.skip(
            "neither a read-only bind mount nor chattr +i works here, and root ignores modes"
        )
    try:
        yield folder
    finally:
        assert succeeds(*undo)


READ_ONLY_COMMANDS: dict[str, Callable[[Path], list[object]]] = {
    "team up in it": lambda d: ["-w", d, "up", TASK, *WAITING],
    "team up in a new directory in it": lambda d: ["-w", d / "new", "up", TASK, "--wait"],
    "team demo in it": lambda d: ["demo", "-w", d, *WAITING],
}


def plain_env(**changes: str) -> dict[str, str]:
    env = {**os.environ, "TEAM_CONFIG": "/nonexistent", "PYTHONPATH": str(REPO), **changes}
    env.pop("OPENAI_BASE_URL", None)
    return env


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS.values(), ids=READ_ONLY_COMMANDS.keys())
def test_a_read_only_directory_is_an_error_that_says_so_not_a_traceback(
    command: Callable[[Path], list[object]], read_only_dir: Path, slow_model: ScriptedServer
) -> None:
    args = command(read_only_dir)
    # A model server that answers: `team up` checks it before the directory.
    done = team_command(*args, env=env_for(slow_model))
    assert done.returncode == 1, done.stdout + done.stderr
    said = flat(done.stderr)
    assert f"cannot set up a team in {args[args.index('-w') + 1]}" in said, said
    assert "run it in a directory you can write to, or name one with -w DIR" in said
    assert "Traceback" not in done.stdout + done.stderr
    assert not team_processes(read_only_dir) and not team_processes(read_only_dir / "new")


@pytest.mark.parametrize("host", ["localhost:abc", "::::", "http://[::1"])
def test_an_unusable_ollama_host_is_an_error_naming_the_setting_not_a_traceback(
    host: str, workspace: Path
) -> None:
    done = team_command("-w", workspace, "up", TASK, *WAITING, env=plain_env(OLLAMA_HOST=host))
    assert done.returncode == 1, done.stdout + done.stderr
    said = flat(done.stderr)
    assert f"OLLAMA_HOST={host!r} (from the environment)" in said
    assert "is not a usable URL" in said and "a good one looks like http://127.0.0.1:11434" in said
    assert "Traceback" not in done.stdout + done.stderr
    assert not workspace.exists(), "refused before anything was set up"


# --- 8. a `--wait` whose team `team kill` stops ---------------------------------------------


def test_a_waiting_team_up_whose_team_is_killed_does_not_say_the_panes_stay_readable(
    slow_model: ScriptedServer, workspace: Path
) -> None:
    up = start(workspace, slow_model, "up", TASK, "--wait")
    building(workspace)
    info = TeamInfo.read(Layout.of(workspace).team_json)
    killed = run(workspace, slow_model, "kill", "--grace", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert f"closed tmux session team-{info.id}" in killed.stdout
    assert up.wait(30) == 1, up.text
    said = flat(up.text)
    assert "stopped (iteration 1)" in said
    assert "panes stay readable" not in said
    assert_no_process_left(workspace)
    eventually(lambda: not tmux_server(info).is_alive(), "end of the team's tmux server", 10)
    assert readable_status(workspace, slow_model)["team"]["status"] == "stopped"


def test_team_up_with_no_model_server_says_so_and_starts_nothing(workspace: Path) -> None:
    done = team_command(
        "-w", workspace, "up", TASK, "--wait", env=plain_env(OLLAMA_HOST="127.0.0.1:9")
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = flat(done.stderr)
    assert "cannot reach the ollama server at http://127.0.0.1:9 (" in said
    assert "The team needs its model server from the start: nothing was started." in said
    assert "Traceback" not in done.stdout + done.stderr
    assert not team_processes(workspace) and not (workspace / ".agents").exists()
