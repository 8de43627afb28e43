"""Configuration, in one home: defaults, then the user's config file, then the team's
`.agents/config.toml`, then the environment, then the command line (STYLE 15).

    [models.build]                     # one table per role: plan, build, explore, test, rca
    provider = "ollama"                # ollama | openai | anthropic | cassette
    model = "qwen2.5-coder:14b"
    context_window = 16384

    [providers]
    ollama_host = "http://127.0.0.1:11434"

    [limits]
    read_timeout = 600

    [[endpoints]]                      # a pool of model servers (protocol/llm/pool.py)
    url = "http://gpu2:11434"
    provider = "ollama"
    models = ["qwen2.5-coder:14b"]     # what it serves; empty: any model
    capacity = 2                       # requests it answers at once
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from protocol.roles import ROLES, Role

ProviderName = Literal["ollama", "openai", "anthropic", "cassette"]
PROVIDERS: tuple[str, ...] = ("ollama", "openai", "anthropic", "cassette")
USER_CONFIG = Path("~/.config/agent-team/config.toml")


class ConfigError(Exception):
    """A configuration file or variable that cannot be used; the message names it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRoute(_Strict):
    """Which model answers one role, and how much it can read."""

    provider: ProviderName = "ollama"
    model: str = Field(min_length=1)
    context_window: int = Field(default=16384, ge=512)
    max_answer_tokens: int = Field(default=4096, ge=16)
    cassette: str | None = None  # provider "cassette": the file to replay
    wire: Literal["ollama", "openai", "anthropic"] | None = None  # the format it recorded
    # Models to try next, in order, for a task whose files failed verification (each
    # `[provider:]model`; the role's `model` comes first whether listed or not).
    cascade: list[str] = Field(default_factory=list)
    # How a fix changes files: "whole" rewrites each file with write_file (what weak models do
    # far better: Aider measured 16.4% against 8.0% for Qwen2.5-Coder-32B), "edit" makes
    # targeted edit_file changes. `edit_formats` at the top level sets it per model.
    edit_format: Literal["whole", "edit"] = "whole"

    def cascade_step(self, step: int) -> ModelRoute:
        """The route of the cascade's `step` (0: this one; past the end: its last model)."""
        specs = list(dict.fromkeys([self.model, *self.cascade]))
        if step <= 0 or len(specs) == 1:
            return self
        spec = parse_model_spec(specs[min(step, len(specs) - 1)])
        return self.model_copy(update={"provider": spec.get("provider", self.provider),
                                       "model": spec["model"]})  # fmt: skip


class Providers(_Strict):
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key: str | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: str | None = None
    keep_alive: str = "10m"
    record_cassettes: str | None = None  # a directory: every exchange goes to <role>.json
    # Requests each provider's server answers at once (llama.cpp's -np, OLLAMA_NUM_PARALLEL);
    # unset: what the server says (llama.cpp's /props), else 1. Candidates never ask more.
    slots: dict[ProviderName, PositiveInt] = Field(default_factory=dict)
    # Stream answers (Ollama NDJSON, OpenAI SSE) so that a pane shows a call as it runs;
    # false for a server that cannot. Anthropic and cassettes never stream.
    stream: bool = True


class Endpoint(_Strict):
    """One model server of the pool. The endpoints listed for a provider are where its calls
    go, each call to the one with the fewest outstanding requests that serves the call's model
    and role; a model or role none of them serves goes to the provider's URL above."""

    url: str = Field(min_length=1)
    provider: Literal["ollama", "openai", "anthropic"] = "ollama"
    models: list[str] = Field(default_factory=list)  # empty: every model of the provider
    roles: list[Role] = Field(default_factory=list)  # empty: every role
    capacity: int = Field(default=1, ge=1, le=256)  # requests answered at once (-np N)

    def serves(self, provider: str, model: str, role: str) -> bool:
        return (
            self.provider == provider
            and (not self.models or model in self.models)
            and (not self.roles or role in self.roles)
        )


class Limits(_Strict):
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=8.0, ge=0)


def _default_models() -> dict[Role, ModelRoute]:
    # Answer caps by what a turn must hold: an explorer's tool call (and its short report),
    # a plan or an RCA as JSON, a builder's or tester's whole file in one write_file.
    big, small = "llama3.3:70b", "qwen2.5-coder:7b"
    return {
        "plan": ModelRoute(model=big, context_window=32768, max_answer_tokens=4096),
        "rca": ModelRoute(model=big, context_window=32768, max_answer_tokens=3072),
        "build": ModelRoute(model="qwen2.5-coder:14b", max_answer_tokens=4096),
        "explore": ModelRoute(model=small, max_answer_tokens=1024),
        "test": ModelRoute(model=small, max_answer_tokens=4096),
    }


class TeamSettings(_Strict):
    """How the team works: the one place these defaults are written (`team up` options and
    `[team]` in a config file override them)."""

    workers: int = Field(default=4, ge=1, le=32)  # agents building at once
    max_iterations: int = Field(default=5, ge=1, le=50)  # build-verify-fix rounds
    max_rounds: int = Field(default=25, ge=1, le=500)  # model turns per task attempt
    max_seconds: float = Field(default=600.0, gt=0)  # wall time per task attempt
    # Token budgets (prompt + completion, as the servers report them); None: no limit.
    max_tokens: int | None = Field(default=None, ge=1)  # the whole team run
    task_max_tokens: int | None = Field(default=None, ge=1)  # one task attempt
    trace_store_mb: int = Field(default=256, ge=0)  # full model exchanges kept in traces/
    # Wait for the user to approve each plan (`team approve`) before any worker builds.
    approve_plan: bool = False

    @property
    def trace_store_bytes(self) -> int:
        return self.trace_store_mb * 1024 * 1024


class SamplingSettings(_Strict):
    """Best-of-N (issue 13): a tester's test file as candidates validated by running them."""

    test_candidates: int = Field(default=4, ge=0, le=16)  # the first wave; 0: no sampling
    second_wave: int = Field(default=4, ge=0, le=16)  # told the first wave's errors
    first_temperatures: list[float] = Field(default=[0.3, 0.6, 0.8, 1.0], min_length=1)
    second_temperatures: list[float] = Field(default=[0.4, 0.7, 0.9, 1.1], min_length=1)
    test_timeout: float = Field(default=120.0, gt=0)  # seconds for one candidate's tests
    # A builder's fix after a failed verification: up to K fixes, each judged by the plan's
    # criteria; the one that passes most without breaking any is kept.
    fix_candidates: int = Field(default=1, ge=1, le=4)


class Config(_Strict):
    models: dict[Role, ModelRoute] = Field(default_factory=_default_models)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    edit_formats: dict[str, Literal["whole", "edit"]] = Field(default_factory=dict)
    providers: Providers = Field(default_factory=Providers)
    limits: Limits = Field(default_factory=Limits)
    team: TeamSettings = Field(default_factory=TeamSettings)
    endpoints: list[Endpoint] = Field(default_factory=list)

    def route(self, role: Role) -> ModelRoute:
        return self.models[role]

    def edit_format(self, route: ModelRoute) -> Literal["whole", "edit"]:
        """How fixes by `route`'s model change files: per model, else per role."""
        return self.edit_formats.get(route.model, route.edit_format)

    def at_cascade_step(self, role: Role, step: int) -> Config:
        """This configuration with `role` answered by the model of its cascade's `step`."""
        if step <= 0:
            return self
        models = {**self.models, role: self.models[role].cascade_step(step)}
        return self.model_copy(update={"models": models})


def normalise_host(host: str) -> str:
    """`OLLAMA_HOST` may be `host`, `host:port`, `:port` or a bind address like `0.0.0.0`:
    make it a URL. Ollama's port is assumed only when no scheme was given."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        authority, slash, rest = host.partition("/")
        if authority.startswith(":"):
            authority = "127.0.0.1" + authority
        has_port = "]:" in authority if authority.startswith("[") else ":" in authority
        if not has_port:
            authority += ":11434"
        host = f"http://{authority}{slash}{rest}"
    scheme, rest = host.split("://", 1)
    if rest.startswith("0.0.0.0"):
        rest = "127.0.0.1" + rest[len("0.0.0.0") :]
    return f"{scheme}://{rest}"


def url_problem(url: str) -> str | None:
    """What makes `url` unusable as a model server's base URL, or None when it is usable:
    then httpx accepts it and every path the client appends to it."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "it has a space or a control character"
    if url.count("[") != url.count("]"):
        return "its [ ] brackets do not pair (an IPv6 host is written [::1])"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "[zz]" is no IPv6 address
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it is not an http:// or https:// URL"
    if not parts.hostname:
        return "it has no host"
    try:
        port = parts.port
    except ValueError:  # not a number, or over 65535
        return f"its port {_port_text(parts.netloc)!r} is not a number from 1 to 65535"
    if port == 0:
        return "its port 0 is not a port a server listens on"
    if parts.query or parts.fragment:
        return "a base URL has no ?query or #fragment (paths are appended to it)"
    try:
        # .host decodes an IDNA name, where httpx would fail at the first request.
        _ = httpx.URL(url + "/api").host
    except (httpx.InvalidURL, ValueError) as exc:  # IDNA errors are ValueErrors
        return f"httpx cannot use it ({exc})"
    return None


def _port_text(netloc: str) -> str:
    """What stands after the host's colon in `netloc` ("" when no port was written)."""
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):
        host_port = host_port.partition("]")[2]
        return host_port[1:] if host_port.startswith(":") else host_port
    return host_port.partition(":")[2]


_ENV_VARS = {"ollama_host": "OLLAMA_HOST", "openai_base_url": "OPENAI_BASE_URL"}


def _check_url(
    setting: str, url: str, layers: list[tuple[str, Mapping[str, Any]]], *, given: str
) -> str:
    """`url`, or a ConfigError naming the setting, the layer that gave it, the value and a
    good example. `given` is the value as written (`url` may be it normalised)."""
    problem = url_problem(url)
    if problem is None:
        return url.rstrip("/")
    source = next(
        (
            name
            for name, layer in reversed(layers)
            if isinstance(layer.get("providers"), Mapping) and setting in layer["providers"]
        ),
        "the defaults",
    )
    if source == "the environment" and setting in _ENV_VARS:
        what = f"{_ENV_VARS[setting]}={given!r} (from the environment)"
    else:
        what = f"providers.{setting} = {given!r} (from {source})"
    read_as = f", read as {url!r}," if url != given.strip().rstrip("/") else ""
    raise ConfigError(
        f"{what}{read_as} is not a usable URL: {problem}; "
        f"a good one looks like {getattr(Providers(), setting)}"  # the default is one
    )


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None


def parse_model_spec(spec: str) -> dict[str, str]:
    """`[provider:]model`, e.g. `openai:qwen2.5-coder` or `qwen2.5-coder:7b` (a tag, not a
    provider: only the four provider names count as a prefix)."""
    prefix, _, rest = spec.partition(":")
    if prefix in PROVIDERS and rest:
        return {"provider": prefix, "model": rest}
    return {"model": spec}


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    providers: dict[str, Any] = {}
    if env.get("OLLAMA_HOST"):
        providers["ollama_host"] = env["OLLAMA_HOST"]
    if env.get("OPENAI_BASE_URL"):
        providers["openai_base_url"] = env["OPENAI_BASE_URL"].rstrip("/")
    if env.get("OPENAI_API_KEY"):
        providers["openai_api_key"] = env["OPENAI_API_KEY"]
    if env.get("ANTHROPIC_API_KEY"):
        providers["anthropic_api_key"] = env["ANTHROPIC_API_KEY"]
    if env.get("TEAM_RECORD_CASSETTES"):
        providers["record_cassettes"] = env["TEAM_RECORD_CASSETTES"]
    models = {
        role: parse_model_spec(env[f"TEAM_MODEL_{role.upper()}"])
        for role in ROLES
        if env.get(f"TEAM_MODEL_{role.upper()}")
    }
    out: dict[str, Any] = {}
    if providers:
        out["providers"] = providers
    if models:
        out["models"] = models
    return out


def load_config(
    team_config: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_config: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from every layer. `team_config` is a team's
    `.agents/config.toml`; `user_config` defaults to `$TEAM_CONFIG` or
    `~/.config/agent-team/config.toml`."""
    env = os.environ if env is None else env
    if user_config is None:
        user_config = Path(env.get("TEAM_CONFIG") or USER_CONFIG).expanduser()
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (str(user_config), _read_toml(user_config)),
        (str(team_config), _read_toml(team_config) if team_config else {}),
        ("the environment", _from_environment(env)),
        ("the command line", overrides or {}),
    ]
    merged: dict[str, Any] = Config().model_dump()
    for source, layer in layers:
        merged = _merge(merged, layer)
        try:
            Config.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"bad setting {where} from {source}: {first['msg']}") from None
    config = Config.model_validate(merged)
    providers = config.providers
    # URLs are checked here, whichever layer gave them: a bad one is a config error, not a
    # connection to retry five times.
    host = providers.ollama_host
    providers.ollama_host = _check_url("ollama_host", normalise_host(host), layers, given=host)
    for setting in ("openai_base_url", "anthropic_base_url"):
        url = getattr(providers, setting)
        setattr(providers, setting, _check_url(setting, url, layers, given=url))
    for number, endpoint in enumerate(config.endpoints, 1):
        given = endpoint.url
        url = normalise_host(given) if endpoint.provider == "ollama" else given.strip()
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError(
                f"endpoint {number} ([[endpoints]] url = {given!r}) is not a usable URL: "
                f"{problem}; a good one looks like {_EXAMPLE_URL[endpoint.provider]}"
            )
        endpoint.url = url.rstrip("/")
    return config


_EXAMPLE_URL = {
    "ollama": "http://gpu2:11434",
    "openai": "http://gpu2:8080/v1",
    "anthropic": "https://api.anthropic.com",
}
