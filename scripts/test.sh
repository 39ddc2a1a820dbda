#!/usr/bin/env bash
# Set everything up if needed, then run every test: unit and statistical tests, and the notebooks
# (generated from their jupytext sources, run in fast mode by nbval; they assert their own claims),
# each chapter twice: as a student gets it (exercises unsolved: the chapter must still run to the
# end) and with the reference solutions filled in (every exercise check must pass).
# Extra arguments go to pytest (e.g. -k operators, -x).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
export POSTERIOR_TUTOR_FAST=1 MPLBACKEND=Agg
# offline copies of public data sets, where this checkout has them (tests and CI)
if [ -z "${POSTERIOR_TUTOR_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export POSTERIOR_TUTOR_DATA="$ROOT/../shared/data"
fi
SOLVED="$ROOT/.solved_notebooks"
rm -rf "$SOLVED" && python "$ROOT/scripts/solved_notebooks.py" "$SOLVED" > /dev/null
# The chapters as a student gets them run once: in JupyterLab in headless Chromium when it is here
# (tests/chapters/test_browser_chapters.py: every chapter top to bottom, no error output), else
# through nbval. The solved chapters always go through nbval.
STUDENT=notebooks
if python -c "import playwright" 2> /dev/null && { [ -n "${POSTERIOR_TUTOR_CHROMIUM:-}" ] ||
     command -v chromium > /dev/null || [ -x /usr/bin/chromium ]; }; then
  STUDENT=
  echo "==> the unsolved chapters run in JupyterLab (tests/chapters/test_browser_chapters.py)"
fi
exec python -m pytest -q -rs -p no:cacheprovider --nbval-lax --durations=15 tests $STUDENT "$SOLVED" "$@"
