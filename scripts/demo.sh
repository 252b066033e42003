#!/usr/bin/env bash
# The main demo: start the whole assistant and its web page (http://127.0.0.1:7860/); Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/assistant ] || { echo "not set up yet: run scripts/setup.sh first" >&2; exit 1; }
exec .venv/bin/assistant up --web "$@"
