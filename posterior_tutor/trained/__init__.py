"""The trained samplers: fitted once to a prior and a task, then called like the zero-shot ones.

    base.py     what they share: sample = the last Step of iterate, the call check, NFE on the
                prior's counters, save / load with the prior's fingerprint, the shipped files
    shipped.py  the shipped ones' problems and which the benchmark runs on which task (the
                table of everything shipped is ``files/shipped.py``)
    ud2m/       UD2M (unfolding and distillation): ``pt.ud2m``
    aps/        APS (amortized posterior sampling with a conditional flow): ``pt.aps``

    ud = pt.pretrained("mnist-sr4", kind="ud2m")        # = pt.ud2m.pretrained("mnist-sr4")
    pt.files.shipped.names("aps")                       # ("mnist-denoising", "mnist-sr4")
"""
from .base import TrainedSampler
from .shipped import KINDS

__all__ = ["TrainedSampler", "KINDS"]
