#!/usr/bin/env bash
# Set everything up if needed, then open the tutorial (chapter 00) in JupyterLab.
# Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8890).
# This opens the clone's own chapters (notebooks/); outside a clone, `posterior-tutor lab` writes
# them into a folder of your own (see the README).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec bash "$ROOT/scripts/lab.sh" "$@"
