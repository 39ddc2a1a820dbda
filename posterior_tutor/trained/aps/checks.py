"""APS's training options and input checks: the defaults per kind of signal, each option's kind and
range (``options.py``), and the checks that need the merged options or the prior.

No equations here: the loss they configure is in ``train.py``, the prior term in ``elbo.py``.
Defaults (vectors / images): 1500 / 2000 steps, batch 256 / 32, lr 1e-3 / 5e-4, a 3-transform
spline flow of width 64 / the coupling flow of width 64 (measurements: docs/notes/aps.md).
"""
from __future__ import annotations

import math

import torch

from ...checks.values import NonFiniteError, check_positive_int
from ...checks.options import Anything, Choice, Flag, Int, Real
from ..base import check_training_set, check_y_range
from .elbo import PRIOR_TERMS, elbo_weights
from .flows import VECTOR_FLOWS

__all__ = ["TRAIN_OPTIONS", "VECTOR_DEFAULTS", "IMAGE_DEFAULTS", "check_training_inputs",
           "check_merged_options", "check_prior_output"]

VECTOR_DEFAULTS = dict(steps=1500, batch=256, lr=1e-3, flow="nsf", transforms=3, hidden=64)
IMAGE_DEFAULTS = dict(steps=2000, batch=32, lr=5e-4, flow="coupling", transforms=None,
                      hidden=64)
TRAIN_OPTIONS = {   # kind and range of each option of train() (options.py); None: the default
    "steps": Int(1, optional=True), "batch": Int(1, optional=True),
    "lr": Real(0, low_open=True, optional=True), "prior_term": Anything(),
    "prior_weight": Real(0),
    "anneal_steps": Int(0), "t_samples": Int(1), "t_sampling": Choice("importance", "uniform"),
    "t_min": Int(0, lambda c: c["T"] - 1), "t_groups": Anything(),
    "flow": Choice("coupling", *VECTOR_FLOWS, optional=True), "transforms": Int(1, optional=True),
    "hidden": Int(1, optional=True), "feat": Int(1), "checker": Int(0), "channel": Int(0),
    "init_scale": Real(0, low_open=True),
    "progress": Flag(optional=True, hint="None: on except under pytest")}


def check_training_inputs(den, problem, ys) -> tuple:
    """(signal shape, measurement shape) after checking the prior, the problem and ys_train."""
    check_training_set(den, problem, ys, "ys_train", "measurements (n, *y.shape)",
                       "the measurements")
    shape = tuple(problem.check_y(ys[0]))
    if den.shape is not None and shape != tuple(den.shape):
        raise ValueError(f"ys_train holds measurements of signals of shape {shape} but the prior "
                         f"models signals of shape {tuple(den.shape)}; ys_train must be "
                         "(n, *y.shape) with y one measurement of the problem.")
    if len(shape) not in (1, 3):
        raise ValueError(f"APS flows handle vectors (d,) and images (C, H, W), got {shape}.")
    check_y_range(problem, ys, shape, "ys_train")
    return shape, tuple(ys.shape[1:])


def check_merged_options(opts, image, prior_term, prior_weight, anneal_steps, elbo, den, init_scale):
    """The options once merged with the defaults of the signal's kind (``opts``), the ELBO's
    (``elbo``) and the rules across them (a flow for this kind of signal, t_min on the schedule)."""
    for name in ("steps", "batch", "hidden"):
        check_positive_int(opts[name], name)
    check_positive_int(elbo["t_samples"], "t_samples")
    if not opts["lr"] > 0:
        raise ValueError(f"lr must be > 0, got {opts['lr']}.")
    kinds = ("coupling",) if image else VECTOR_FLOWS
    if opts["flow"] not in kinds:
        raise ValueError(f"flow must be one of {kinds} for {'images' if image else 'vectors'}, "
                         f"got {opts['flow']!r}.")
    if not image:
        check_positive_int(opts["transforms"], "transforms")
    if not (0 < init_scale and math.isfinite(init_scale)):
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale}.")
    if not (callable(prior_term) or prior_term in PRIOR_TERMS):
        raise ValueError(f"prior_term must be 'elbo' (the diffusion ELBO), 'elbo_sg' (its "
                         f"stop-gradient ablation) or a callable x -> log p(x), got "
                         f"{prior_term!r}.")
    if not (prior_weight >= 0 and math.isfinite(prior_weight)):
        raise ValueError(f"prior_weight must be a finite number >= 0, got {prior_weight}.")
    if not isinstance(anneal_steps, int) or anneal_steps < 0:
        raise ValueError(f"anneal_steps must be an integer >= 0, got {anneal_steps!r}.")
    if elbo["t_sampling"] not in ("importance", "uniform"):
        raise ValueError(f"t_sampling must be 'importance' or 'uniform', got "
                         f"{elbo['t_sampling']!r}.")
    if elbo["t_groups"] is not None:
        check_positive_int(elbo["t_groups"], "t_groups")
    elbo_weights(den.schedule, elbo["t_min"])      # t_min out of range raises here



def check_prior_output(prior_term, x, reg) -> None:
    """The prior term R(x) of a batch of flow samples x: when x is finite but R(x) is not, the
    prior is the cause (a log density that returns NaN or Inf, or a denoiser that does), and no
    lr can fix it; a non-finite x is the flow's (the loss check's lr hint then applies)."""
    if torch.isfinite(x).all() and not torch.isfinite(reg).all():
        bad = int((~torch.isfinite(reg)).sum())
        who = (f"the prior_term callable "
               f"{getattr(prior_term, '__name__', type(prior_term).__name__)}"
               if callable(prior_term) else f"the prior term {prior_term!r} (the diffusion ELBO: the "
               "denoiser's output)")
        raise NonFiniteError(f"{who} returned NaN or Inf for {bad} of {reg.numel()} finite flow "
                             "samples: the prior is the cause, not the learning rate. Check it "
                             "on finite inputs (e.g. prior(torch.randn(4, *shape))) and make it "
                             "finite everywhere the flow can reach (log densities: logsumexp).")
