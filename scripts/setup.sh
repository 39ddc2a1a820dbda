#!/usr/bin/env bash
# Create (or update) the project's virtual environment and generate the notebooks.
# Sourced by tutorial.sh and test.sh; safe to run again (it only reinstalls when pyproject or the
# install recipe below changes).  The editable install is a plain path entry for this folder (see
# pyproject.toml's package-dir), not an import hook, so `import posterior_tutor` finds the package
# from any working folder, also from the folder that holds a clone named posterior_tutor.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${POSTERIOR_TUTOR_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
RECIPE="static-pth-editable-3"       # change to force a reinstall when the steps below change

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "posterior_tutor needs Python >= 3.10; found: $("$PY" --version 2>&1). Set PYTHON=/path/to/python3.x." >&2
  exit 1
fi

# pip, quiet: what it has to say goes to stderr, minus one notice about this machine's own pip
# configuration (find-links folders that do not exist) that is not about this project.
_pip() {
  "$VENV/bin/python" -m pip --quiet --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$PY $RECIPE") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  start=$SECONDS
  echo "==> setting up $VENV (first run: about 6 GB, a few minutes)"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> [1/3] creating the virtual environment"
    "$PY" -m venv "$VENV"
  fi
  _pip install --upgrade pip
  echo "==> [2/3] installing PyTorch and torchvision (the PyPI build, which also runs on CPU)"
  _pip install "torch>=2.2" "torchvision>=0.17"
  echo "==> [3/3] installing JupyterLab, the package and its test tools"
  _pip install -e ".[test,browser,book]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  echo "==> set up in $((SECONDS - start)) s"
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
