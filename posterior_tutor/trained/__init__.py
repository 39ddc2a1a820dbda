"""The trained samplers: fitted once to a prior and a task, then called like the zero-shot ones.

    base.py     what they share: sample = the last Step of iterate, the call check, NFE on the
                prior's counters, save / load with the prior's fingerprint, the shipped files
    shipped.py  the one table of shipped samplers: kind, name, file, task
    ud2m/       UD2M (unfolding and distillation): ``pt.ud2m``
    aps/        APS (amortized posterior sampling with a conditional flow): ``pt.aps``

    ud = pt.trained.pretrained("ud2m", "mnist-sr4")     # = pt.ud2m.pretrained("mnist-sr4")
    pt.trained.shipped()                                # {"ud2m": (...), "aps": (...)}
"""
from .base import TrainedSampler
from .shipped import KINDS, entry, names

__all__ = ["TrainedSampler", "pretrained", "shipped", "KINDS"]


def shipped() -> dict:
    """The shipped trained samplers, by kind: {"ud2m": names, "aps": names}."""
    return {kind: names(kind) for kind in KINDS}


def pretrained(kind: str, name: str, den=None, device=None):
    """A shipped trained sampler of ``kind`` ("ud2m" or "aps") on the shipped MNIST prior ``den``
    (loaded when not given), sha256-checked; its default problem is its training task."""
    entry(kind, name)          # an unknown kind or name is refused before anything loads
    if kind == "ud2m":
        from .ud2m import pretrained as load
    else:
        from .aps import pretrained as load
    return load(name, den, device=device)
