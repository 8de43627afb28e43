from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from coordinator.cli import cli

Team = Callable[..., Result]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture
def team(workspace: Path) -> Team:
    """Run `team -w WORKSPACE ARGS...` through click's runner; returns the result."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, ["-w", str(workspace), *args], input=input)

    return run
