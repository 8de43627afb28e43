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
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class Providers(_Strict):
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key: str | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: str | None = None
    keep_alive: str = "10m"
    record_cassettes: str | None = None  # a directory: every exchange goes to <role>.json


class Limits(_Strict):
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=8.0, ge=0)


def _default_models() -> dict[Role, ModelRoute]:
    big = ModelRoute(model="llama3.3:70b", context_window=32768)
    small = ModelRoute(model="qwen2.5-coder:7b", context_window=16384)
    return {
        "plan": big,
        "rca": big,
        "build": ModelRoute(model="qwen2.5-coder:14b", context_window=16384),
        "explore": small,
        "test": small,
    }


class Config(_Strict):
    models: dict[Role, ModelRoute] = Field(default_factory=_default_models)
    providers: Providers = Field(default_factory=Providers)
    limits: Limits = Field(default_factory=Limits)

    def route(self, role: Role) -> ModelRoute:
        return self.models[role]


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


def _check_url(setting: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"providers.{setting} = {url!r} is not an http(s) URL with a host")
    return url.rstrip("/")


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
    providers.ollama_host = _check_url("ollama_host", normalise_host(providers.ollama_host))
    providers.openai_base_url = _check_url("openai_base_url", providers.openai_base_url)
    providers.anthropic_base_url = _check_url("anthropic_base_url", providers.anthropic_base_url)
    return config
