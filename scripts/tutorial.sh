#!/usr/bin/env bash
# Set everything up if needed, then open the tutorial (chapter 00) in JupyterLab.
# Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8890).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
first=$(ls notebooks/[0-9]*.ipynb | head -n 1)
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)   # e.g. inside a container
exec jupyter lab "$first" "${extra[@]}" "$@"
