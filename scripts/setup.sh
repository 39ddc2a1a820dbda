#!/usr/bin/env bash
# Create (or update) the project's virtual environment and generate the notebooks.
# Sourced by tutorial.sh and test.sh; safe to run again (it only reinstalls when pyproject changes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${POSTERIOR_TUTOR_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "posterior_tutor needs Python >= 3.10; found: $("$PY" --version 2>&1). Set PYTHON=/path/to/python3.x." >&2
  exit 1
fi
stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$PY") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> setting up $VENV (first run downloads PyTorch, a few minutes)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[test,browser]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
# Notebooks are generated from the jupytext sources (notebooks/*.py); .ipynb files are not in git.
shopt -s nullglob
for src in notebooks/[0-9]*.py; do
  nb="${src%.py}.ipynb"
  if [ ! -f "$nb" ] || [ "$src" -nt "$nb" ]; then
    jupytext --quiet --to ipynb --output "$nb" "$src"
  fi
done
shopt -u nullglob
