#!/usr/bin/env bash
# Re-resolve the two lock files after editing requirements/*.in (setup never re-resolves).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
links=(); for d in ${PIP_FIND_LINKS:-}; do links+=(--find-links "$d"); done
"$UV" pip compile requirements/app.in -c requirements/app.constraints --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 "${links[@]}" -o requirements/app.lock
"$UV" pip compile requirements/rasa.in --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
  -o requirements/rasa.lock
