#!/usr/bin/env bash
# Set everything up if needed, then open the tutorial (chapter 00) in JupyterLab.
# Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8890).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec bash "$ROOT/scripts/lab.sh" "$@"
