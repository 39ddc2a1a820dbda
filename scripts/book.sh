#!/usr/bin/env bash
# Build the book: every chapter executed (fast mode unless --full) and rendered to static HTML in
# _build/html/ (open _build/html/index.html), with the notation, study guide and stored benchmark.
# Sphinx + myst-nb, offline (posterior_tutor/runtime/book.py says why this tool). Extra arguments go
# to `posterior-tutor book` (--full, --instructor, --chapters 00,08, --out DIR).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
if [ -z "${POSTERIOR_TUTOR_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export POSTERIOR_TUTOR_DATA="$ROOT/../shared/data"
fi
exec python -m posterior_tutor book "$@"
