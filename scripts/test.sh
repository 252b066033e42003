#!/usr/bin/env bash
# The test suite: unit tests, Rasa data validation and story tests, and conversations through the
# real running stack (started by the tests themselves). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "not set up yet: run scripts/setup.sh first" >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"
