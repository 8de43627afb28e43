#!/usr/bin/env bash
# Set up agent-team, then run it.
#   scripts/run.sh "a todo CLI with tests" [-w DIR] [team up options]
#       runs `team up` on that task when a model server answers (`team doctor` passes);
#       when it does not, says why and exits 1: the task did not run (no demo instead, so
#       that a script or CI calling this never takes a demo for the task done).
#   scripts/run.sh
#       runs `team demo`: the whole pipeline on an example, with a scripted model standing
#       in for a real one.
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
if [ $# -eq 0 ]; then
    exec .venv/bin/team demo
fi
if .venv/bin/team doctor; then
    exec .venv/bin/team up "$@"
fi
cat >&2 <<MESSAGE

The task did not run: \`team doctor\` failed (its report is above; usually no model server
answers, or a model is missing). To run it:
  - start the model server (Ollama: \`ollama serve\`, then \`ollama pull\` the missing models), or
  - point the team at yours: OLLAMA_HOST=http://HOST:11434; for an OpenAI-compatible server,
    OPENAI_BASE_URL=http://HOST:8000/v1 and TEAM_MODEL_<ROLE>=openai:MODEL ($repo/docs/model-client.md),
then run this again. To see the whole pipeline with a scripted model: $repo/.venv/bin/team demo
MESSAGE
exit 1
