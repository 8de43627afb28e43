"""`team doctor`: is this machine ready to run a team? One line per check."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from protocol.config import Config
from protocol.llm import ModelClient, ModelError
from protocol.llm.pool import endpoint_label
from protocol.llm.server_info import ServerInfo
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


def server_facts(info: ServerInfo) -> str:
    """What the server said of a model, for the model's line: tools, real context, slots."""
    if not info.known:
        return "the server does not say what it can do (no /props or /api/show)"
    tools = {True: "tools native", None: "tools native (not stated)",
             False: "tools as text (its template takes none)"}[info.supports_tools]  # fmt: skip
    facts = [tools]
    if info.context is not None:
        per_slot = info.source == "/props"
        facts.append(f"context {info.context} per slot" if per_slot
                     else f"context length {info.context}")  # fmt: skip
    if info.slots is not None:
        facts.append(f"{info.slots} slot{'s' if info.slots != 1 else ''}")
    return ", ".join(facts) + f" (from {info.source})"


def check_context(role: Role, configured: int, info: ServerInfo) -> Check | None:
    """A warning when the configured window exceeds what the server really gives."""
    if info.context is None or configured <= info.context:
        return None
    if info.source == "/props":
        slots = info.slots or 1
        shared = f" (shared by its {slots} slots)" if slots > 1 else ""
        fix = (
            f"start llama-server with -c {configured * slots}{shared}, or set "
            f"models.{role}.context_window = {info.context}"
        )
        served = f"the server gives {info.context} tokens per slot"
    else:
        fix = f"set models.{role}.context_window = {info.context}"
        served = f"the model's context length is {info.context}"
    detail = (
        f"models.{role}.context_window is {configured} but {served} ({info.source}): "
        f"budgets use {info.context}; {fix}"
    )
    return Check(f"context {role}", False, detail, needed=False)


def _model_checks(
    role: Role, client: ModelClient, provider: str, available: set[str]
) -> list[Check]:
    model = client.configured.model
    found = model in available or (provider == "ollama" and f"{model}:latest" in available)
    if not found:
        fix = f"ollama pull {model}" if provider == "ollama" else f"load {model} in the server"
        return [Check(f"model {role}", False, f"{model} is missing: {fix}")]
    info = client.server_info()
    checks = [Check(f"model {role}", True, f"{model} is available: {server_facts(info)}")]
    warning = check_context(role, client.configured.context_window, info)
    return [*checks, warning] if warning else checks


def check_models(config: Config) -> list[Check]:
    """Each server used reachable, each configured model on it, and what the server says it
    can do with it (tools, real context, slots)."""
    checks = []
    by_server: dict[tuple[str, str], list[Role]] = {}
    clients: dict[Role, ModelClient] = {}
    try:
        for role in ROLES:
            route = config.route(role)
            try:
                client = ModelClient(config, role)
            except (ModelError, ValueError) as exc:  # e.g. a cassette file that is missing
                checks.append(Check(f"model {role}", False, str(exc)))
                continue
            clients[role] = client
            if route.provider == "cassette":
                checks.append(Check(f"model {role}", True, f"replays {route.cassette}"))
                continue
            for place in client.places:  # every endpoint of the pool that serves it
                by_server.setdefault((client.provider, place.url), []).append(role)
        for (provider, url), roles in by_server.items():
            checks += _server_checks(config, provider, url, [(r, clients[r]) for r in roles])
        checks += _unused_endpoints(config, {url for _, url in by_server})
    finally:
        for client in clients.values():
            client.close()
    return checks


def _server_checks(
    config: Config, provider: str, url: str, roles: list[tuple[Role, ModelClient]]
) -> list[Check]:
    if provider == "anthropic":
        has_key = bool(config.providers.anthropic_api_key)
        detail = "API key set" if has_key else "ANTHROPIC_API_KEY is not set"
        return [Check(f"{provider} {url}", has_key, detail)]
    try:
        available = set(roles[0][1].available_models(url))
    except ModelError as exc:
        return [Check(f"{provider} {url}", False, str(exc))]
    listed = [p for _, c in roles for p in c.places if p.url == url and p.listed]
    room = f", capacity {listed[0].capacity}" if listed else ""
    serves = f", serves {', '.join(r for r, _ in roles)}" if listed else ""
    detail = f"reachable, {len(available)} models{room}{serves}"
    checks = [Check(f"{provider} {url}", True, detail)]
    for role, client in roles:
        checks += _model_checks(role, client, provider, available)
    return checks


def _unused_endpoints(config: Config, used: set[str]) -> list[Check]:
    """An endpoint of [[endpoints]] that no role's model goes to: a typo in its models or
    roles, most likely (a warning: the team works without it)."""
    return [
        Check(
            f"endpoint {endpoint.url}",
            False,
            f"serves none of the configured models and roles ({endpoint_label(endpoint)}): "
            "check its models, roles and provider",
            needed=False,
        )
        for endpoint in config.endpoints
        if endpoint.url not in used
    ]


def run_checks(config: Config) -> list[Check]:
    return [*check_tools(), *check_models(config), check_sandbox()]
