"""Run-time settings read from the environment."""
from __future__ import annotations

import os


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
    import torch

    name = os.environ.get("POSTERIOR_TUTOR_DEVICE", "").strip()
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ValueError(f"POSTERIOR_TUTOR_DEVICE={name!r} is not a device torch knows "
                             f"({err}); use 'cpu', 'cuda' or 'cuda:N', or unset it.") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"POSTERIOR_TUTOR_DEVICE={name!r} asks for CUDA but torch sees no "
                             "CUDA device here; unset it (the CPU is then used) or set it to 'cpu'.")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
