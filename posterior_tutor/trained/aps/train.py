"""APS training: a conditional flow fitted to measurements only, against a diffusion prior
(Mammadov, Chung, Ye 2024, arXiv 2407.17907; lineage DPI -> Feng et al. 2023 -> Feng & Bouman
2024 -> APS; REFERENCES.md).  With g_y(x) = |y - A(x)|^2 / (2 sigma^2) and x = G_phi(z, y):

    L(phi) = E_y E_z [ g_y(G(z, y)) + beta R(G(z, y)) + log N(z) - log|det dG/dz| ]
           = E_y [ KL(q_phi(. | y) || p_R(. | y)) ] + const,
      p_R(x | y) ∝ exp(-g_y(x) - beta R(x))

R is the negative log prior or its ELBO surrogate (``elbo.py``); beta is ``prior_weight``, ramped
linearly from 0 over ``anneal_steps`` (warm-up; 0 = off).  Adam, cosine-decayed to 5% of lr,
gradients clipped to norm 1; a batch is ``batch`` pairs (y, z), y drawn from ys_train with
replacement; the prior is frozen while the flow trains.

Departures:
* We keep E_z log N(z) in the loss (the paper drops the constant), so the reported loss is the KL
  up to log p_R(y).
* The surrogate: L's minimiser is the posterior under exp(ELBO), not under p; chapter 06 measures
  the gap on the toy problem (exact log p vs ELBO with the exact vs a learned denoiser).
* Under torchrun (or ``shards=``) a step's batch is drawn as shards, one generator each (and one
  set of ELBO times per shard): ``runtime.distributed``; docs/scaling.md.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager

import torch

from ...checks.values import check_generator, conform, finite_or_raise
from ...denoisers import Denoiser, parameters_of
from ...nets import seeded_init
from ...operators import InverseProblem
from ...checks.options import check_options, refuse_unknown
from ...runtime import distributed
from ...runtime.progress import bar
from ..base import y_as_image
from . import checks
from .checks import IMAGE_DEFAULTS, VECTOR_DEFAULTS, check_merged_options, check_prior_output, check_training_inputs
from .elbo import prior_term as evaluate_prior_term
from .flows import std_normal_log_prob
from .sampler import APSSampler

__all__ = ["train", "fit", "aps_loss", "TRAIN_OPTIONS"]

TRAIN_OPTIONS = {**checks.TRAIN_OPTIONS, **distributed.RUN_OPTIONS}   # and torchrun's, bf16


@contextmanager
def _frozen(den):
    """The prior's parameters do not require gradients while the flow trains (then restored)."""
    params = parameters_of(den)
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def train(den: Denoiser, problem: InverseProblem, ys_train: torch.Tensor, generator=None,
          steps: int | None = None, batch: int | None = None, lr: float | None = None,
          prior_term="elbo", prior_weight: float = 1.0, anneal_steps: int = 0, t_samples: int = 1,
          t_sampling: str = "importance", t_min: int = 1, t_groups="auto", flow: str | None = None,
          transforms: int | None = None, hidden: int | None = None, feat: int = 16,
          checker: int = 4, channel: int = 4, init_scale: float = 0.1,
          progress: bool | None = None, shards: int | None = None, precision: str = "fp32",
          **unknown) -> APSSampler:
    """Train a conditional flow q(x | y) for ``problem`` against the prior ``den`` (APS).

    ys_train : measurements (n, *y.shape) of the problem (no clean signals needed).
    generator : draws everything (initialisation, batches, z, t, eps): same seed, same flow.
    steps, batch, lr : vectors 1500, 256, 1e-3; images 2000, 32, 5e-4 (Adam, cosine-decayed to
               5%, gradients clipped to norm 1).  A batch is ``batch`` pairs (y, z), y drawn from
               ys_train with replacement.
    prior_term : R(x), what stands for -log p(x) (the prior itself is ``den``): "elbo" (paper),
               "elbo_sg" (stop-gradient ablation) or a callable x -> log p(x) of shape (n,)
               (an exact log density, e.g. ``gmm.log_prob``).
    prior_weight, anneal_steps : beta, ramped linearly from 0 over anneal_steps (0: no warm-up).
    t_samples : (t, eps) draws per x in the ELBO (score_prior: 1).  t_sampling : "importance"
               (p(t) ∝ w_t, constant weight) or "uniform" (weight w_t (T - t_min)).
    t_min    : first time in the ELBO sum (default 1).  t_groups : distinct t per batch shared
               across it; "auto" = 16 for a denoiser without parameters, else one per draw (None).
    flow     : vectors "nsf" (default), "realnvp", "maf" (zuko); images "coupling" (the only one).
    transforms, hidden : vectors 3 transforms of width 64; images coupling width 64.
    feat, checker, channel : images: conditioning channels (16), checkerboard couplings (4),
               channel couplings at the squeezed level (4).
    init_scale : images: the flow starts at x = y_img + init_scale z (0.1), y_img = y upsampled
               or A^T y; the skip applies when y_img has x's channels.
    progress : tqdm bar (None: on, except under pytest).  Returns an ``APSSampler`` with
    ``losses`` and ``train_seconds``.
    shards, precision : the global batch drawn as ``shards`` shards (default: one per torchrun
               process; one process with shards=W trains what W processes train) and "bf16"
               autocast on CUDA (``fit``; docs/scaling.md).
    """
    if "prior" in unknown:
        raise TypeError("aps.train has no option prior=: the prior is den; the prior term R(x) "
                        "is prior_term= ('elbo', 'elbo_sg' or a callable x -> log p(x)).")
    refuse_unknown("aps.train", unknown, TRAIN_OPTIONS)
    check_options("aps.train", TRAIN_OPTIONS, {k: v for k, v in locals().items()
                                               if k in TRAIN_OPTIONS},
                  T=getattr(getattr(den, "schedule", None), "T", 1000))
    if not (t_groups in ("auto", None) or isinstance(t_groups, int)):
        raise TypeError(f"t_groups must be 'auto', None or a positive integer, got {t_groups!r}.")
    check_generator(generator)
    if isinstance(ys_train, torch.Tensor):   # the flow's dtype: the default one
        ys_train = conform(ys_train, torch.get_default_dtype(), "ys_train")
    shape, y_shape = check_training_inputs(den, problem, ys_train)
    image = len(shape) == 3
    opts = dict(IMAGE_DEFAULTS if image else VECTOR_DEFAULTS)
    given = dict(steps=steps, batch=batch, lr=lr, flow=flow, transforms=transforms, hidden=hidden)
    opts.update({k: v for k, v in given.items() if v is not None})
    if t_groups == "auto":
        t_groups = None if parameters_of(den) else 16
    elbo = dict(t_samples=t_samples, t_sampling=t_sampling, t_min=t_min, t_groups=t_groups)
    check_merged_options(opts, image, prior_term, prior_weight, anneal_steps, elbo, den, init_scale)
    config = dict(shape=list(shape), y_shape=list(y_shape), T=den.schedule.T,
                  sigma=float(problem.sigma), operator=repr(problem.operator),
                  prior_term=prior_term if isinstance(prior_term, str) else "log_prob",
                  prior_weight=float(prior_weight), anneal_steps=int(anneal_steps),
                  **{k: opts[k] for k in ("steps", "batch", "lr", "flow", "transforms", "hidden")},
                  feat=int(feat), checker=int(checker), channel=int(channel),
                  init_scale=float(init_scale),
                  **{k: v for k, v in elbo.items()})
    if image:
        y_img = y_as_image(problem, ys_train[:1], shape, what="image flow")
        config["y_channels"] = int(y_img.shape[1])
    with seeded_init(generator):
        fl = APSSampler(den, config, problem)
    if not image:
        fl.flow.set_context_stats(ys_train.to(fl.device))
    fit(fl, problem, ys_train, steps=opts["steps"], generator=generator, progress=progress,
        prior_term=prior_term, shards=shards, precision=precision)
    return fl


def aps_loss(fl: APSSampler, problem, y, beta: float, prior_term, generator=None):
    """(loss per dimension, parts per signal) for a batch of measurements y (one z each)."""
    c = fl.config
    z = fl.base_noise(y.shape[0], generator, y.device)
    x, ld = fl.flow.generate(z, fl.condition(y, problem))
    data = 0.5 * (problem.operator(x) - y).flatten(1).pow(2).sum(1) / problem.sigma ** 2
    elbo = {k: c[k] for k in ("t_samples", "t_sampling", "t_min", "t_groups")}
    reg = evaluate_prior_term(prior_term, fl.den, x, generator, **elbo)
    fl.last_batch = (x.detach(), reg.detach())     # what fit() inspects when the loss is not finite
    log_q = std_normal_log_prob(z) - ld
    total = (data + beta * reg + log_q).mean() / math.prod(fl.shape)
    return total, {"data": data.mean(), "prior_term": reg.mean(), "log_q": log_q.mean()}


def fit(fl: APSSampler, problem: InverseProblem, ys_train: torch.Tensor, steps: int,
        generator=None, progress: bool | None = None, prior_term=None, lr: float | None = None,
        start_step: int = 0, callback=None, shards: int | None = None,
        precision: str = "fp32") -> APSSampler:
    """Train (or go on training) ``fl`` for ``steps`` steps; ``prior_term`` defaults to the one
    in its config (a callable must be passed again).  ``start_step`` places the run on the
    warm-up ramp; ``callback(step, fl)`` runs after every step (e.g. to checkpoint).  Under
    torchrun (or with ``shards``) each process draws its shards of the global batch; ``precision``
    "bf16" autocasts on CUDA (``posterior_tutor.runtime.distributed``)."""
    check_generator(generator)
    prior_term = fl.config["prior_term"] if prior_term is None else prior_term
    if prior_term == "log_prob":
        raise ValueError("this flow was trained with a callable log density: pass it again as "
                         "prior_term=.")
    check_options("aps.fit", distributed.RUN_OPTIONS, dict(shards=shards, precision=precision))
    distributed.check_precision(precision, fl.device, "aps.fit")
    distributed.init(fl.device)
    c = fl.config
    plan = distributed.plan_shards(c["batch"], distributed.world() if shards is None else shards,
                                   generator, "aps.fit")
    distributed.broadcast_(list(fl.flow.parameters()))      # every process starts alike, as DDP
    opt = torch.optim.Adam(fl.flow.parameters(), lr=lr or c["lr"])
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.05 * (lr or c["lr"]))
    ys = ys_train.to(fl.device)
    rng = bar(range(start_step, start_step + steps), "training APS flow", total=steps,
              progress=progress if distributed.is_main() else False)
    cast = distributed.autocast(precision, fl.device)
    start = time.perf_counter()
    with _frozen(fl.den):
        for step in rng:
            ramp = min(1.0, (step + 1) / c["anneal_steps"]) if c["anneal_steps"] else 1.0
            parts = {}

            def loss_of(g):
                idx = torch.randint(ys.shape[0], (c["batch"] if plan is None else
                                                  plan.shard_batch,), generator=g,
                                    device=g.device if g is not None else "cpu")
                total, p = aps_loss(fl, problem, ys[idx.to(ys.device)],
                                    c["prior_weight"] * ramp, prior_term, g)
                for k, v in p.items():
                    parts[k] = parts.get(k, 0.0) + float(v.detach())
                return total
            gens = [generator] if plan is None else [plan.generator(step, s) for s in plan.local]
            total = distributed.update(opt, fl.flow.parameters(), gens, cast, 1.0, loss_of)
            decay.step()
            values = distributed.mean_across([total] + [v / len(gens) for v in parts.values()])
            _record(fl, values, list(parts), step, prior_term, lr or c["lr"])
            if callback is not None:
                callback(step, fl)
    fl.train_seconds += time.perf_counter() - start
    return fl


def _record(fl, values, names, step, prior_term, lr) -> None:
    """Append the step's loss and parts (means over the global batch); refuse a NaN."""
    fl.losses.append(values[0])
    if not math.isfinite(fl.losses[-1]):
        check_prior_output(prior_term, *fl.last_batch)   # the prior's fault, not lr's?
    finite_or_raise(fl.losses[-1], "the APS training loss", f"at step {step + 1}",
                    f"lower lr (now {lr:g}) or check ys_train.")
    for k, v in zip(names, values[1:]):
        fl.loss_parts.setdefault(k, []).append(v)
