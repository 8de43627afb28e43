"""`team doctor`: is this machine ready to run a team? One line per check."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from protocol.config import Config
from protocol.llm import ModelClient, ModelError
from protocol.roles import ROLES, Role
from protocol.sandbox import NO_SANDBOX_HINT, probe_sandbox


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    needed: bool = True

    @property
    def label(self) -> str:
        return "ok" if self.ok else ("FAIL" if self.needed else "warn")


def _version(command: list[str]) -> tuple[bool, str]:
    if shutil.which(command[0]) is None:
        return False, f"{command[0]} is not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{command[0]} did not run: {exc}"
    output = (done.stdout or done.stderr).strip().splitlines()
    return done.returncode == 0, output[0] if output else f"exit {done.returncode}"


def check_tools() -> list[Check]:
    checks = []
    for tool, command in (("tmux", ["tmux", "-V"]), ("git", ["git", "--version"])):
        ok, detail = _version(command)
        if not ok and "not installed" in detail:
            detail += " (apt-get install " + tool + ")"
        checks.append(Check(tool, ok, detail))
    return checks


def check_sandbox() -> Check:
    """bubblewrap must really start the team's sandbox policy here, not just be installed:
    without it `team up` runs no model code (unless --no-sandbox)."""
    probe = probe_sandbox()
    if not probe.ok:
        return Check("sandbox", False, f"{probe.problem}; {probe.fix}; {NO_SANDBOX_HINT}")
    return Check(
        "sandbox",
        True,
        "bubblewrap confines the models' code (workspace only, no network, no home, private /tmp)",
    )


def check_models(config: Config) -> list[Check]:
    """Each server used reachable, each configured model on it."""
    checks = []
    by_server: dict[tuple[str, str], list[Role]] = {}
    clients: dict[tuple[str, str], ModelClient] = {}
    for role in ROLES:
        route = config.route(role)
        try:
            client = ModelClient(config, role)
        except (ModelError, ValueError) as exc:  # e.g. a cassette file that is missing
            checks.append(Check(f"model {role}", False, str(exc)))
            continue
        if route.provider == "cassette":
            checks.append(Check(f"model {role}", True, f"replays {route.cassette}"))
            continue
        key = (client.provider, client.base_url)
        by_server.setdefault(key, []).append(role)
        clients.setdefault(key, client)
    for (provider, url), roles in by_server.items():
        client = clients[(provider, url)]
        if provider == "anthropic":
            has_key = bool(config.providers.anthropic_api_key)
            detail = "API key set" if has_key else "ANTHROPIC_API_KEY is not set"
            checks.append(Check(f"{provider} {url}", has_key, detail))
            continue
        try:
            with client:
                available = set(client.available_models())
        except ModelError as exc:
            checks.append(Check(f"{provider} {url}", False, str(exc)))
            continue
        checks.append(Check(f"{provider} {url}", True, f"reachable, {len(available)} models"))
        for role in roles:
            model = config.route(role).model
            found = model in available or (provider == "ollama" and f"{model}:latest" in available)
            fix = f"ollama pull {model}" if provider == "ollama" else f"load {model} in the server"
            detail = f"{model} is available" if found else f"{model} is missing: {fix}"
            checks.append(Check(f"model {role}", found, detail))
    return checks


def run_checks(config: Config) -> list[Check]:
    return [*check_tools(), *check_models(config), check_sandbox()]
