#!/usr/bin/env bash
# Set up agent-team, then run it.
#   scripts/run.sh "a todo CLI with tests" [-w DIR] [team up options]
#       runs `team up` on that task when a model server answers (`team doctor` passes);
#   scripts/run.sh
#       (or when no model server answers) runs `team demo`: the whole pipeline on an example,
#       with a scripted model standing in for a real one.
#   The workspace is the directory you run it from (or TEAM_WORKSPACE, or -w DIR); from inside
#   this repository it is ./workspace.
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."
repo=$PWD
if [ -z "${TEAM_WORKSPACE:-}" ]; then
    if [ "$here" = "$repo" ]; then export TEAM_WORKSPACE="$repo/workspace"; else export TEAM_WORKSPACE="$here"; fi
fi
scripts/setup.sh
if [ $# -gt 0 ]; then
    if .venv/bin/team doctor; then
        exec .venv/bin/team up "$@"
    fi
    echo
    echo "No model server answers (see above): running 'team demo' instead."
    echo "Start Ollama (ollama serve; ollama pull the models listed) and run this again."
fi
exec .venv/bin/team demo
