"""The trained samplers: fitted once to a prior and a task, then called like the zero-shot ones.

    base.py   what they share: sample = the last Step of iterate, the call check, NFE on the
              prior's counters, save / load with the prior's fingerprint, the shipped files
    ud2m/     UD2M (unfolding and distillation): ``pt.ud2m``
APS (``pt.aps``, still ``posterior_tutor/amortized.py``) is to move to ``aps/`` on the same base.

    ud = pt.trained.pretrained("ud2m", "mnist-sr4")     # = pt.ud2m.pretrained("mnist-sr4")
    pt.trained.shipped()                                # {"ud2m": (...), "aps": (...)}
"""
from .base import TrainedSampler

__all__ = ["TrainedSampler", "pretrained", "shipped"]

KINDS = ("ud2m", "aps")


def shipped() -> dict:
    """The shipped trained samplers, by kind: {"ud2m": names, "aps": names}."""
    from ..amortized import PRETRAINED
    from .ud2m import SHIPPED
    return {"ud2m": tuple(SHIPPED), "aps": tuple(PRETRAINED)}


def pretrained(kind: str, name: str, den=None, device=None):
    """A shipped trained sampler of ``kind`` ("ud2m" or "aps") on the shipped MNIST prior ``den``
    (loaded when not given), sha256-checked; its default problem is its training task."""
    if kind not in KINDS:
        raise ValueError(f"unknown trained-sampler kind {kind!r}; use one of {', '.join(KINDS)}.")
    if name not in shipped()[kind]:
        raise ValueError(f"no shipped {kind} sampler {name!r}; shipped: "
                         f"{', '.join(shipped()[kind])}.")
    from ..checkpoints import pretrained as pretrained_prior
    den = den if den is not None else pretrained_prior("mnist", device)
    if kind == "ud2m":
        from .ud2m import pretrained as load
    else:
        from ..amortized import pretrained as load
    return load(name, den)
