#!/usr/bin/env bash
# Start JupyterLab on the tutorial (no set-up; tutorial.sh sets up, then runs this): the server's
# default page is chapter 00, so the URL it prints (and the browser it opens) shows chapter 00,
# and the file browser lists one entry per chapter (the generated .ipynb; the jupytext .py sources
# stay on disk, paired, and are updated when a chapter is saved).
# Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8890).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
first=$(ls notebooks/[0-9]*.ipynb | head -n 1)
hide='["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", "*.egg-info", "[0-9][0-9]_*.py"]'
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)   # e.g. inside a container
exec jupyter lab --ServerApp.root_dir="$ROOT" --LabApp.default_url="/lab/tree/$first" \
  --ContentsManager.hide_globs="$hide" "${extra[@]}" "$@"
