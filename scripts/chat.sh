#!/usr/bin/env bash
# Start the NLU service and the action server, then chat through `rasa shell` (Ctrl-D or /stop quits).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/assistant ] || { echo "not set up yet: run scripts/setup.sh first" >&2; exit 1; }
exec .venv/bin/assistant chat "$@"
