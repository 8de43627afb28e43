#!/usr/bin/env bash
# Set up (with the dev tools) and run the whole test suite, then the linters, then the
# real-model tier (tests/real: a real llama.cpp server with SmolLM2, built once per machine by
# scripts/real_model.sh; TEAM_REAL_MODEL=0 leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/python -m pytest -m "not real_model" "$@"
.venv/bin/ruff check .
.venv/bin/mypy --strict protocol
if [[ "${TEAM_REAL_MODEL:-1}" != 0 ]]; then
    # A failed build is not hidden: the tier's tests are then skipped, naming the build log.
    bash scripts/real_model.sh install || echo "real_model: install failed; tests/real will say so" >&2
    .venv/bin/python -m pytest -m real_model tests/real "$@"
fi
