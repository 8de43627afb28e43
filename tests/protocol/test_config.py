from __future__ import annotations

from pathlib import Path

import pytest

from protocol.config import ConfigError, load_config, normalise_host, parse_model_spec


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
