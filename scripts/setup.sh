#!/usr/bin/env bash
# Set up agent-team in ./.venv: system tools (tmux, git, bubblewrap) when missing, then the
# package.
# Usage: scripts/setup.sh [--dev]     (--dev adds pytest, ruff and mypy)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in tmux git; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing ${missing[*]} with apt-get..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "agent-team needs ${missing[*]}: install them with your package manager" >&2
        exit 1
    fi
fi

# bubblewrap is the sandbox every piece of model-written code runs in: without it, team up
# refuses to start (unless --no-sandbox); team doctor says why it does not work.
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing bubblewrap (the agents' sandbox) with apt-get..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
        || echo "could not install bubblewrap: team up will refuse to run model code (team doctor)" >&2
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "agent-team needs Python 3.11 or newer (tried: $python; set PYTHON=...)" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
echo "ready: .venv/bin/team --help"
