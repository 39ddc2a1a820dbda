"""Run-time settings read from the environment."""
from __future__ import annotations

import os


def fast_mode() -> bool:
    """True when POSTERIOR_TUTOR_FAST=1 or CI=true: notebooks and the benchmark shrink steps and
    sizes (every code path still runs and the claims are still asserted)."""
    flag = os.environ.get("POSTERIOR_TUTOR_FAST", "").strip().lower()
    ci = os.environ.get("CI", "").strip().lower()
    return flag in {"1", "true", "yes"} or ci in {"1", "true", "yes"}
