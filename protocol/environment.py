"""What model-written code may see of the environment: the same rule wherever it runs
(the workers' commands and import checks, the coordinator's verification)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECRET = re.compile(r"(_KEY|_TOKEN|_SECRET)$|PASSWORD|PASSWD", re.IGNORECASE)


def scrubbed_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without secrets (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD*`)."""
    return {k: v for k, v in env.items() if not _SECRET.search(k)}
