"""Run-time settings read from the environment."""
from __future__ import annotations

import os
from pathlib import Path

#: the checkout (or install prefix) that holds ``data/`` and ``scripts/`` beside the package
REPO_ROOT = Path(__file__).resolve().parents[2]


def fast_mode() -> bool:
    """True when POSTERIOR_TUTOR_FAST=1 or CI=true: notebooks and the benchmark shrink steps and
    sizes (every code path still runs and the claims are still asserted)."""
    flag = os.environ.get("POSTERIOR_TUTOR_FAST", "").strip().lower()
    ci = os.environ.get("CI", "").strip().lower()
    return flag in {"1", "true", "yes"} or ci in {"1", "true", "yes"}


def default_device():
    """The device a chapter or script runs on: ``POSTERIOR_TUTOR_DEVICE`` when set (``cpu``,
    ``cuda``, ``cuda:1``), else CUDA when torch sees one, else the CPU.  Chapters start with
    ``DEVICE = pt.default_device()`` and pass it to every prior, sampler, training loop and
    stepper, so the same chapter runs on a laptop and on a GPU machine unchanged."""
    return resolve_device(os.environ.get("POSTERIOR_TUTOR_DEVICE", "").strip() or None,
                          what="POSTERIOR_TUTOR_DEVICE")


def resolve_device(name=None, what: str = "--device", exit_on_error: bool = False):
    """``name`` ('cpu', 'cuda', 'cuda:N' or a torch.device) checked, or the default: CUDA when
    present, else the CPU.  Asking for CUDA where torch sees none is a clear error (a ValueError,
    or with ``exit_on_error`` a SystemExit with that message, for command-line scripts)."""
    try:
        return _resolve_device(name, what)
    except ValueError as err:
        if exit_on_error:
            raise SystemExit(f"error: {err}") from None
        raise


def _resolve_device(name, what):
    import torch

    if name is None or name == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{what}={name!r} is not a device torch knows ({err}); use 'cpu', "
                         "'cuda' or 'cuda:N'.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{what}={name!r} asks for CUDA but torch sees no CUDA device here; use "
                         "'cpu' (or leave it unset: the CPU is then used).")
    return device
