from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol.config import (
    ConfigError,
    ModelRoute,
    load_config,
    normalise_host,
    parse_model_spec,
    url_problem,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_route_each_role_to_a_local_ollama_model(tmp_path: Path) -> None:
    config = load_config(env={}, user_config=tmp_path / "none.toml")
    assert config.providers.ollama_host == "http://127.0.0.1:11434"
    assert config.route("plan").model == "llama3.3:70b"
    assert config.route("explore").model == "qwen2.5-coder:7b"
    assert {config.route(r).provider for r in ("plan", "build", "explore", "test", "rca")} == {
        "ollama"
    }


def test_each_role_has_an_answer_cap_for_what_its_turns_hold(tmp_path: Path) -> None:
    env = {"TEAM_MODEL_EXPLORE": "openai:smollm2"}  # a model named alone keeps its role's cap
    config = load_config(env=env, user_config=tmp_path / "none.toml")
    caps = {r: config.route(r).max_answer_tokens for r in ("plan", "rca", "build", "test")}
    assert config.route("explore").max_answer_tokens == 1024
    assert all(cap > 1024 for cap in caps.values())
    team = write(tmp_path / "team.toml", "[models.explore]\nmax_answer_tokens = 2048\n")
    assert (
        load_config(team, env=env, user_config=tmp_path / "none.toml")
        .route("explore")
        .max_answer_tokens
        == 2048
    )


def test_layers_apply_in_order_user_team_environment_command_line(tmp_path: Path) -> None:
    user = write(
        tmp_path / "user.toml",
        '[models.build]\nmodel = "user-model"\ncontext_window = 4096\n'
        '[models.plan]\nmodel = "user-plan"\n',
    )
    team = write(tmp_path / "team.toml", '[models.build]\nmodel = "team-model"\n')
    config = load_config(
        team,
        env={"TEAM_MODEL_PLAN": "openai:env-plan", "OLLAMA_HOST": "gpu-box"},
        user_config=user,
        overrides={"limits": {"max_retries": 1}},
    )
    assert config.route("build").model == "team-model"
    assert config.route("build").context_window == 4096  # kept from the user's file
    assert (config.route("plan").provider, config.route("plan").model) == ("openai", "env-plan")
    assert config.providers.ollama_host == "http://gpu-box:11434"
    assert config.limits.max_retries == 1


def test_a_typo_in_a_config_file_is_named_with_its_file(tmp_path: Path) -> None:
    team = write(tmp_path / "config.toml", "[limits]\nread_timout = 5\n")
    with pytest.raises(ConfigError, match=f"limits.read_timout from {team}: Extra inputs"):
        load_config(team, env={}, user_config=tmp_path / "none.toml")


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    team = write(tmp_path / "config.toml", "[models\n")
    with pytest.raises(ConfigError, match=r"cannot read config file .*config\.toml"):
        load_config(team, env={}, user_config=tmp_path / "none.toml")


def test_a_bad_command_line_value_is_blamed_on_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"limits\.read_timeout from the command line"):
        load_config(
            env={}, user_config=tmp_path / "none.toml", overrides={"limits": {"read_timeout": -1}}
        )


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("myhost:1234", "http://myhost:1234"),
        ("https://ollama.example/", "https://ollama.example"),
        ("localhost", "http://localhost:11434"),
        (":11434", "http://127.0.0.1:11434"),
        ("[::1]", "http://[::1]:11434"),
        ("http://10.0.0.2:11434", "http://10.0.0.2:11434"),
    ],
)
def test_ollama_host_forms(raw: str, url: str) -> None:
    assert normalise_host(raw) == url


def test_model_specs_tell_a_provider_prefix_from_a_tag() -> None:
    assert parse_model_spec("qwen2.5-coder:7b") == {"model": "qwen2.5-coder:7b"}
    assert parse_model_spec("ollama:qwen2.5-coder:7b") == {
        "provider": "ollama",
        "model": "qwen2.5-coder:7b",
    }
    assert parse_model_spec("anthropic:claude-x") == {"provider": "anthropic", "model": "claude-x"}


def test_hosts_in_config_files_are_normalised_too(tmp_path: Path) -> None:
    team = write(tmp_path / "config.toml", '[providers]\nollama_host = "gpu-box"\n')
    config = load_config(team, env={}, user_config=tmp_path / "none.toml")
    assert config.providers.ollama_host == "http://gpu-box:11434"


def test_a_url_that_is_not_http_is_a_config_error(tmp_path: Path) -> None:
    team = write(tmp_path / "config.toml", '[providers]\nopenai_base_url = "localhost:8000"\n')
    with pytest.raises(ConfigError, match="openai_base_url"):
        load_config(team, env={}, user_config=tmp_path / "none.toml")


def test_recording_is_switched_on_from_the_environment(tmp_path: Path) -> None:
    config = load_config(
        env={"TEAM_RECORD_CASSETTES": str(tmp_path / "tapes")}, user_config=tmp_path / "n.toml"
    )
    assert config.providers.record_cassettes == str(tmp_path / "tapes")


BAD_URLS = {
    "port-not-a-number": ("http://localhost:abc", "its port 'abc' is not a number"),
    "port-too-big": ("http://localhost:99999", "its port '99999' is not a number"),
    "unpaired-bracket": ("http://[::1", "brackets do not pair"),
    "no-host": ("http://:8080", "it has no host"),
    "space-in-host": ("http://gpu box:8080", "a space"),
    "bad-idna-name": ("http://xn--a:8080", "httpx cannot use it"),
}
GOOD = {
    "ollama_host": "http://127.0.0.1:11434",
    "openai_base_url": "http://127.0.0.1:8000/v1",
    "anthropic_base_url": "https://api.anthropic.com",
}
ENV_VAR = {"ollama_host": "OLLAMA_HOST", "openai_base_url": "OPENAI_BASE_URL"}
LAYERS = [
    (setting, layer)
    for setting in GOOD
    for layer in ("user file", "team file", "environment", "command line")
    if layer != "environment" or setting in ENV_VAR
]


@pytest.mark.parametrize(("value", "problem"), BAD_URLS.values(), ids=BAD_URLS.keys())
@pytest.mark.parametrize(("setting", "layer"), LAYERS, ids=[f"{s}-{w}" for s, w in LAYERS])
def test_a_bad_url_in_any_layer_is_a_config_error_naming_it(
    tmp_path: Path, setting: str, layer: str, value: str, problem: str
) -> None:
    user, team = tmp_path / "user.toml", tmp_path / "team.toml"
    table = f"[providers]\n{setting} = {json.dumps(value)}\n"
    env: dict[str, str] = {}
    overrides: dict[str, Any] = {}
    if layer == "user file":
        write(user, table)
    elif layer == "team file":
        write(team, table)
    elif layer == "environment":
        env[ENV_VAR[setting]] = value
    else:
        overrides["providers"] = {setting: value}
    with pytest.raises(ConfigError) as caught:
        load_config(team, env=env, user_config=user, overrides=overrides)
    message = str(caught.value)
    where = {
        "user file": f"providers.{setting} = {value!r} (from {user})",
        "team file": f"providers.{setting} = {value!r} (from {team})",
        "environment": f"{ENV_VAR.get(setting)}={value!r} (from the environment)",
        "command line": f"providers.{setting} = {value!r} (from the command line)",
    }[layer]
    assert where in message
    assert problem in message
    assert f"a good one looks like {GOOD[setting]}" in message


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("localhost:abc", "read as 'http://localhost:abc', is not a usable URL: its port 'abc'"),
        ("::::", "read as 'http://127.0.0.1::::', is not a usable URL: its port ':::'"),
        ("http://[::1", "its [ ] brackets do not pair"),
        ("[::1]:x", "its port 'x'"),
        ("gpu-box:0", "its port 0"),
        ("ftp://gpu-box", "not an http:// or https:// URL"),
        ("gpu-box:11434/?x=1", "no ?query"),
    ],
)
def test_a_bad_ollama_host_says_how_it_was_read_and_what_is_wrong(
    tmp_path: Path, raw: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match="OLLAMA_HOST=") as caught:
        load_config(env={"OLLAMA_HOST": raw}, user_config=tmp_path / "none.toml")
    assert problem in str(caught.value)


@pytest.mark.parametrize("url", ["http://[::1]:8080", "https://gpu-box", "http://h:1/v1/"])
def test_good_urls_pass_the_check(url: str) -> None:
    assert url_problem(url) is None


def test_a_cascade_goes_down_its_models_in_order_and_stays_at_the_last() -> None:
    route = ModelRoute(model="small", cascade=["small", "openai:big", "huge"])
    assert route.cascade_step(0) is route
    assert (route.cascade_step(1).provider, route.cascade_step(1).model) == ("openai", "big")
    assert (route.cascade_step(2).provider, route.cascade_step(2).model) == ("ollama", "huge")
    assert route.cascade_step(9).model == "huge"
    assert ModelRoute(model="only").cascade_step(3).model == "only"
    # The role's model comes first whether it is listed or not.
    assert ModelRoute(model="a", cascade=["b"]).cascade_step(1).model == "b"


def test_a_cascade_step_changes_one_role_and_the_edit_format_follows_the_model(
    tmp_path: Path,
) -> None:
    team = tmp_path / "config.toml"
    team.write_text(
        '[models.build]\nmodel = "a"\ncascade = ["b"]\nedit_format = "edit"\n'
        '[edit_formats]\nb = "whole"\n[providers]\nslots = { openai = 2 }\n'
    )
    config = load_config(team, env={}, user_config=tmp_path / "none.toml")
    stepped = config.at_cascade_step("build", 1)
    assert stepped.route("build").model == "b" and stepped.route("test") == config.route("test")
    assert config.edit_format(config.route("build")) == "edit"
    assert config.edit_format(stepped.route("build")) == "whole"
    assert config.providers.slots == {"openai": 2}
    assert config.at_cascade_step("build", 0) is config


def test_sampling_settings_are_bounded(tmp_path: Path) -> None:
    team = tmp_path / "config.toml"
    team.write_text("[sampling]\ntest_candidates = 99\n")
    with pytest.raises(ConfigError, match=r"sampling\.test_candidates"):
        load_config(team, env={}, user_config=tmp_path / "none.toml")
