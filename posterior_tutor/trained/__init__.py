"""The trained samplers: fitted once to a prior and a task, then called like the zero-shot ones.

    base.py   what they share: sample = the last Step of iterate, the call check, NFE on the
              prior's counters, save / load with the prior's fingerprint, the shipped files
    ud2m/     UD2M (unfolding and distillation): ``pt.ud2m``
APS (``pt.aps``, still ``posterior_tutor/amortized.py``) is to move to ``aps/`` on the same base.
"""
from .base import TrainedSampler

__all__ = ["TrainedSampler"]
