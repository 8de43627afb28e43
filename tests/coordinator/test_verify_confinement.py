"""Verification runs what the models wrote in the sandbox (real bwrap, real pytest, real pip):
a hostile test module, a hostile setup.py and a hostile DoD command each try, as they run, to
write /tmp and `..`, delete a directory outside, connect to a listener on 127.0.0.1, read a
key in the home directory and read a `*_TOKEN` variable. Nothing outside the workspace
changes, nothing connects, no secret is seen."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordinator.verify import verify
from protocol.plan import DodCriterion
from protocol.sandbox import probe_sandbox
from tests.conftest import broken_bwrap_on_path, listening

HOSTILE = """
import os, shutil, socket
seen = []
for attempt, action in [
    ("tmp", lambda: open({tmp_marker!r}, "w").write("x")),
    ("parent", lambda: open("../escaped.txt", "w").write("x")),
    ("delete", lambda: shutil.rmtree({victim!r})),
    ("connect", lambda: socket.create_connection(("127.0.0.1", {port}), 2)),
    ("home", lambda: seen.append(open({home_secret!r}).read())),
    ("ssh", lambda: seen.append(" ".join(os.listdir(os.path.expanduser("~/.ssh"))))),
]:
    try:
        action()
        seen.append(attempt + " worked")
    except Exception as exc:
        seen.append(attempt + " failed: " + type(exc).__name__)
seen.append("token=" + os.environ.get("MY_TOKEN", "(none)"))
open({report!r}, "w").write("\\n".join(seen))
"""


@dataclass
class Trap:
    """What hostile code goes for, outside the workspace, and how to tell it was touched."""

    workspace: Path
    tmp_marker: Path
    victim: Path
    home_secret: Path
    port: int
    accepted: list[object]

    def code(self, report: str) -> str:
        return HOSTILE.format(
            tmp_marker=str(self.tmp_marker),
            victim=str(self.victim),
            home_secret=str(self.home_secret),
            port=self.port,
            report=str(self.workspace / report),
        )

    def assert_nothing_escaped(self, report: str) -> str:
        seen = (self.workspace / report).read_text()
        assert not self.tmp_marker.exists()
        assert not (self.workspace.parent / "escaped.txt").exists()
        assert (self.victim / "precious.txt").read_text() == "keep me"
        assert self.accepted == [], "nothing may connect"
        assert "the-private-key" not in seen and "token=(none)" in seen
        assert "tok-secret" not in seen
        assert "connect worked" not in seen and "home worked" not in seen
        return seen


@pytest.fixture
def trap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trap]:
    probe_sandbox().require()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    home_secret = Path.home() / f".agent-team-test-key-{secrets.token_hex(4)}"
    home_secret.write_text("the-private-key")
    monkeypatch.setenv("MY_TOKEN", "tok-secret")
    marker = Path("/tmp") / f"agent-team-escape-{secrets.token_hex(4)}"
    try:
        with listening() as (port, accepted):
            yield Trap(workspace, marker, victim, home_secret, port, accepted)
    finally:
        home_secret.unlink()
        marker.unlink(missing_ok=True)


def criterion(kind: str, target: str) -> DodCriterion:
    return DodCriterion(id="D1", description="d", verification_type=kind, target_file=target)  # type: ignore[arg-type]


def test_a_hostile_test_module_is_confined_at_import_time(trap: Trap) -> None:
    (trap.workspace / "test_hostile.py").write_text(
        trap.code("seen-by-test.txt") + "\n\ndef test_ok():\n    assert True\n"
    )
    result = verify(trap.workspace, [criterion("test", "test_hostile.py")])
    assert [s.name for s in result.steps] == ["compile", "tests"]
    assert result.passed, result.failures()
    seen = trap.assert_nothing_escaped("seen-by-test.txt")
    assert "tmp worked" in seen, "its /tmp is a private one, thrown away"


def test_a_test_module_deleting_its_parent_reaches_only_the_workspace(trap: Trap) -> None:
    (trap.workspace / ".git").mkdir()
    (trap.workspace / ".git" / "HEAD").write_text("ref: refs/heads/team/t1\n")
    (trap.workspace / "test_wipe.py").write_text(
        "import shutil\nshutil.rmtree('..', ignore_errors=True)\n\ndef test_x():\n    pass\n"
    )
    verify(trap.workspace, [])
    assert (trap.victim / "precious.txt").read_text() == "keep me"
    assert (trap.workspace / ".git" / "HEAD").read_text() == "ref: refs/heads/team/t1\n"
    assert not (trap.workspace / "test_wipe.py").exists(), "the workspace itself is writable"


def test_a_hostile_dod_command_is_confined(trap: Trap) -> None:
    (trap.workspace / "hostile.py").write_text(trap.code("seen-by-command.txt"))
    result = verify(trap.workspace, [criterion("command", "python3 hostile.py")])
    assert result.criteria[0].passed, result.failures()
    trap.assert_nothing_escaped("seen-by-command.txt")


@pytest.mark.timeout(600)
def test_a_hostile_setup_py_runs_offline_and_confined_in_the_install_step(trap: Trap) -> None:
    (trap.workspace / "setup.py").write_text(
        trap.code("seen-by-setup.txt")
        + "\nfrom setuptools import setup\nsetup(name='hostile', version='0.1', py_modules=[])\n"
    )
    result = verify(trap.workspace, [criterion("file_exists", "setup.py")])
    install = next(s for s in result.steps if s.name == "install")
    assert install.passed, install.output
    assert "offline" in install.output and "with network" in install.output
    trap.assert_nothing_escaped("seen-by-setup.txt")


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed on this machine")
def test_a_package_json_install_script_runs_offline_and_confined(trap: Trap) -> None:
    (trap.workspace / "hostile.py").write_text(trap.code("seen-by-npm.txt"))
    (trap.workspace / "package.json").write_text(
        json.dumps(
            {
                "name": "hostile",
                "version": "1.0.0",
                "scripts": {"postinstall": "python3 hostile.py", "test": "echo npm-tests-ran"},
            }
        )
    )
    result = verify(trap.workspace, [])
    steps = {s.name: s for s in result.steps}
    assert steps["npm install"].passed, steps["npm install"].output
    assert "npm-tests-ran" in steps["npm test"].output
    trap.assert_nothing_escaped("seen-by-npm.txt")


def test_without_a_working_sandbox_verification_runs_nothing_of_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "test_side_effect.py").write_text(
        "open('ran.txt', 'w').write('ran')\n\ndef test_ok():\n    assert True\n"
    )
    broken_bwrap_on_path(monkeypatch, tmp_path)
    result = verify(workspace, [criterion("command", "touch ran-too.txt")])
    assert not result.passed
    failed = result.steps[-1]
    assert failed.name == "sandbox" and "Permission denied" in failed.output
    assert not (workspace / "ran.txt").exists() and not (workspace / "ran-too.txt").exists()
