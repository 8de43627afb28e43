"""The secrets rule, by name: files whose content never reaches a model or a commit, and the
environment model code runs with."""

from __future__ import annotations

import pytest

from protocol.environment import is_secret_path, model_environment


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", "app/.env.production", ".envrc", "certs/site.pem", "tls.key",
     "id_rsa", "id_ed25519.pub", ".netrc", ".npmrc", ".pypirc", "credentials.json",
     "secrets.yaml", "client_secret_123.json", "store.p12"],
)  # fmt: skip
def test_secret_looking_files_are_recognised(path: str) -> None:
    assert is_secret_path(path)


@pytest.mark.parametrize(
    "path", ["app.py", "environment.py", "keys.py", "README.md", "tests/test_env.py", "key.txt"]
)
def test_ordinary_files_are_not(path: str) -> None:
    assert not is_secret_path(path)


def test_model_code_gets_an_allow_list_and_the_registry_only_for_installs() -> None:
    env = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "OLLAMA_HOST": "http://gpu:11434",
        "GITHUB_TOKEN": "t",
        "PIP_INDEX_URL": "https://mirror/simple",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    assert model_environment(env) == {"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8"}
    installing = model_environment(env, registry=True)
    assert installing["PIP_INDEX_URL"] == "https://mirror/simple"
    assert installing["HTTPS_PROXY"] == "http://proxy:3128"
    assert "GITHUB_TOKEN" not in installing and "OLLAMA_HOST" not in installing
