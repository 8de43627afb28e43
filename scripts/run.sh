#!/usr/bin/env bash
# Set up agent-team, then show a team at work on disk: its task DAG, its inboxes, a quarantine.
# Usage: scripts/run.sh [WORKSPACE]   (default: a new scratch directory)
#
# The coordinator and workers that plan and build with a model are not built yet; this runs the
# parts that are: the `team` commands on a workspace whose state a script writes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
workspace=${1:-$(mktemp -d)/todo-app}
team() {
    printf '\n$ team'
    printf ' %q' "$@"
    printf '\n'
    .venv/bin/team -w "$workspace" "$@"
}
team init --task "a todo app: models, storage, a CLI, and tests"
.venv/bin/python scripts/walkthrough.py "$workspace"
team status
team inbox
team send --to coordinator --type plan_approval --payload '{"stage": "response", "approved": true}'
team inbox coordinator --all
printf '\nThe team lives in %s/.agents; try: .venv/bin/team -w %s inbox --follow\n' \
    "$workspace" "$workspace"
