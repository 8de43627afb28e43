"""What model-written code may see of the environment, and which files are secrets: the same
rules wherever they apply (the workers' commands and import checks, the coordinator's
verification, the tools that read files for a model, the team's git commits)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

_SECRET = re.compile(r"(_KEY|_TOKEN|_SECRET)$|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)

# Passed to model code, and nothing else: a name not listed here never reaches it.
_ALLOWED = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME"})
_ALLOWED_PREFIXES = ("LC_",)
# Only the install step, which reaches the package registry, sees how to reach it.
_REGISTRY = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy"})
_REGISTRY_PREFIXES = ("PIP_", "npm_config_", "NPM_CONFIG_")

# File names whose content never goes to a model nor into a commit.
SECRET_FILE_PATTERNS = (
    ".env",
    ".env.*",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "credentials",
    "credentials.json",
    "credentials.yaml",
    "credentials.yml",
    "secrets.json",
    "secrets.yaml",
    "secrets.yml",
    "secrets.toml",
    "*.secret",
    "client_secret*",
)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return bool(_SECRET.search(name))


def model_environment(env: Mapping[str, str], *, registry: bool = False) -> dict[str, str]:
    """The environment model-written code runs with: an allow-list (PATH, HOME, locale,
    terminal), plus, for the install step, the package registry's settings; never a name
    that looks like a secret."""

    def allowed(name: str) -> bool:
        if name in _ALLOWED or name.startswith(_ALLOWED_PREFIXES):
            return True
        return registry and (name in _REGISTRY or name.startswith(_REGISTRY_PREFIXES))

    return {k: v for k, v in env.items() if allowed(k) and not is_secret_name(k)}


def is_secret_path(relative: str) -> bool:
    """Whether a file looks like it holds secrets (`.env*`, keys, credentials), by its name."""
    name = PurePosixPath(relative).name.lower()
    return any(fnmatchcase(name, pattern) for pattern in SECRET_FILE_PATTERNS)
