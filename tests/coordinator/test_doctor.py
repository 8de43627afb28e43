from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordinator.cli import cli
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.roles import ROLES


@pytest.fixture
def ollama() -> Iterator[ScriptedServer]:
    scenario = Scenario.model_validate({"models": [{"name": "small:7b"}, {"name": "big:70b"}]})
    with ScriptedServer(scenario) as server:
        yield server


def doctor(env: dict[str, str], tmp_path: object) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(
        cli, ["-w", str(tmp_path), "doctor", "--json"], env={"TEAM_CONFIG": "/nonexistent", **env}
    )
    return result.exit_code, [json.loads(line) for line in result.output.splitlines()]


def routes(plan: str = "big:70b", small: str = "small:7b") -> dict[str, str]:
    return {
        "TEAM_MODEL_PLAN": plan,
        "TEAM_MODEL_RCA": plan,
        "TEAM_MODEL_BUILD": small,
        "TEAM_MODEL_EXPLORE": small,
        "TEAM_MODEL_TEST": small,
    }


def test_all_models_present_passes(ollama: ScriptedServer, tmp_path: object) -> None:
    code, checks = doctor({"OLLAMA_HOST": ollama.url, **routes()}, tmp_path)
    by_name = {c["check"]: c for c in checks}
    assert code == 0, checks
    assert by_name["tmux"]["ok"] and by_name["git"]["ok"]
    assert by_name[f"ollama {ollama.url}"]["detail"] == "reachable, 2 models"
    assert by_name["model plan"]["detail"] == (
        "big:70b is available: tools native, context length 131072 (from /api/show)"
    )
    assert not any(str(c["check"]).startswith("context") for c in checks)
    assert "sandbox" in by_name


def test_a_missing_model_fails_and_says_how_to_pull_it(
    ollama: ScriptedServer, tmp_path: object
) -> None:
    code, checks = doctor({"OLLAMA_HOST": ollama.url, **routes(plan="huge:405b")}, tmp_path)
    assert code == 1
    plan = next(c for c in checks if c["check"] == "model plan")
    assert plan == {
        "check": "model plan",
        "ok": False,
        "needed": True,
        "detail": "huge:405b is missing: ollama pull huge:405b",
    }


def test_an_unreachable_server_fails_fast_with_advice(tmp_path: object) -> None:
    code, checks = doctor({"OLLAMA_HOST": "http://127.0.0.1:9", **routes()}, tmp_path)
    assert code == 1
    server = next(c for c in checks if str(c["check"]).startswith("ollama"))
    assert "cannot reach the ollama server at http://127.0.0.1:9" in str(server["detail"])
    assert "ollama serve" in str(server["detail"])


def test_a_web_server_that_is_not_ollama_fails_without_a_traceback(tmp_path: object) -> None:
    scenario = Scenario.model_validate({"models": []})
    with ScriptedServer(scenario) as server:
        # The scripted server has no /v1/api/tags: a 404 page, as a wrong URL would give.
        code, checks = doctor({"OLLAMA_HOST": server.url + "/v1", **routes()}, tmp_path)
    assert code == 1
    failing = next(c for c in checks if str(c["check"]).startswith("ollama"))
    assert "no such endpoint" in str(failing["detail"])


def test_a_missing_cassette_is_a_failed_check_not_a_crash(tmp_path: object) -> None:
    config = f"{tmp_path}/.agents/config.toml"
    import pathlib

    pathlib.Path(config).parent.mkdir(parents=True)
    pathlib.Path(config).write_text(
        '[models.build]\nprovider = "cassette"\nmodel = "m"\ncassette = "/nope.json"\n'
        'wire = "ollama"\n'
    )
    code, checks = doctor({"OLLAMA_HOST": "http://127.0.0.1:9", **routes()}, tmp_path)
    build = next(c for c in checks if c["check"] == "model build")
    assert build["ok"] is False
    assert "cannot read cassette /nope.json" in str(build["detail"])
    assert code == 1


def test_a_bwrap_that_cannot_start_fails_the_check_with_its_exact_error(
    ollama: ScriptedServer, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pathlib

    from tests.conftest import broken_bwrap_on_path

    folder = broken_bwrap_on_path(monkeypatch, pathlib.Path(str(tmp_path)))
    import os

    code, checks = doctor(
        {"OLLAMA_HOST": ollama.url, "PATH": os.environ["PATH"], **routes()}, tmp_path
    )
    sandbox = next(c for c in checks if c["check"] == "sandbox")
    assert code == 1 and sandbox["ok"] is False and sandbox["needed"] is True
    assert "bwrap: setting up uid map: Permission denied" in str(sandbox["detail"])
    assert "user namespaces" in str(sandbox["detail"]) and "--no-sandbox" in str(sandbox["detail"])
    assert folder.is_dir()


LLAMA_PROPS = {
    "chat_template_caps": {"supports_tools": False},
    "default_generation_settings": {"n_ctx": 4096},
    "total_slots": 2,
}


def openai_routes(model: str) -> dict[str, str]:
    return {f"TEAM_MODEL_{role.upper()}": f"openai:{model}" for role in ROLES}


def test_a_llamacpp_server_shows_its_facts_and_warns_of_a_smaller_context(
    tmp_path: object,
) -> None:
    scenario = Scenario.model_validate({"models": [{"name": "smollm2"}], "props": LLAMA_PROPS})
    with ScriptedServer(scenario) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", **openai_routes("smollm2")}
        code, checks = doctor(env, tmp_path)
    by_name = {c["check"]: c for c in checks}
    assert code == 0, "a smaller context is a warning, not a failure"
    assert by_name["model build"]["detail"] == (
        "smollm2 is available: tools as text (its template takes none), "
        "context 4096 per slot, 2 slots (from /props)"
    )
    assert by_name["context build"] == {
        "check": "context build",
        "ok": False,
        "needed": False,
        "detail": "models.build.context_window is 16384 but the server gives 4096 tokens per "
        "slot (/props): budgets use 4096; start llama-server with -c 32768 (shared by its 2 "
        "slots), or set models.build.context_window = 4096",
    }


def test_a_server_without_props_says_it_does_not_say(tmp_path: object) -> None:
    scenario = Scenario.model_validate({"models": [{"name": "qwen", "aliases": ["coder"]}]})
    with ScriptedServer(scenario) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", **openai_routes("coder")}
        code, checks = doctor(env, tmp_path)
    build = next(c for c in checks if c["check"] == "model build")
    assert code == 0, checks
    assert build["detail"] == (
        "coder is available: the server does not say what it can do (no /props or /api/show)"
    )


def test_every_endpoint_of_the_pool_is_checked(ollama: ScriptedServer, tmp_path: Path) -> None:
    scenario = Scenario.model_validate({"models": [{"name": "small:7b"}]})
    with ScriptedServer(scenario) as second:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[[endpoints]]\nurl = "{ollama.url}"\nmodels = ["small:7b"]\ncapacity = 2\n'
            f'[[endpoints]]\nurl = "{second.url}"\nmodels = ["small:7b"]\n'
            '[[endpoints]]\nurl = "http://127.0.0.1:9"\nmodels = ["small:7b"]\n'
            '[[endpoints]]\nurl = "http://127.0.0.1:7"\nmodels = ["smal:7b"]\n'
        )
        code, checks = doctor(
            {"OLLAMA_HOST": ollama.url, "TEAM_CONFIG": str(config), **routes()}, tmp_path
        )
    by_name = {str(c["check"]): c for c in checks}
    assert code == 1  # an endpoint is down
    assert by_name[f"ollama {ollama.url}"]["detail"] == (
        "reachable, 2 models, capacity 2, serves plan, build, explore, test, rca"
    )
    assert by_name[f"ollama {second.url}"]["ok"]
    down = by_name["ollama http://127.0.0.1:9"]
    assert not down["ok"] and "cannot reach" in str(down["detail"])
    unused = by_name["endpoint http://127.0.0.1:7"]
    assert not unused["ok"] and not unused["needed"]
    assert "serves none of the configured models" in str(unused["detail"])
    # the planner's model is on no endpoint: the provider's URL serves it
    assert by_name["model plan"]["ok"]
