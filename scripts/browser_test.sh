#!/usr/bin/env bash
# Run only the browser test (JupyterLab in headless Chromium moves a stepper) and refresh the
# screenshot in docs/. Installs Debian's chromium first when it is missing and this user can.
# Extra arguments go to pytest (e.g. -s to see the timings).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
bash "$ROOT/scripts/install_chromium.sh" || true
export POSTERIOR_TUTOR_FAST=1
export POSTERIOR_TUTOR_SCREENSHOT="${POSTERIOR_TUTOR_SCREENSHOT:-$ROOT/docs/stepper_in_jupyterlab.png}"
if [ -z "${POSTERIOR_TUTOR_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export POSTERIOR_TUTOR_DATA="$ROOT/../shared/data"
fi
exec python -m pytest -q -p no:cacheprovider -m browser -rs tests/chapters/test_browser.py "$@"
