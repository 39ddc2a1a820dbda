"""UD2M's training: fine-tune a prior into a K x N unfolded posterior sampler (``train``).

What is trained (shared across k and t, zero-initialised so that training starts at the prior;
``adapters.py``): LoRA in a copy of the network, or a residual on an exact denoiser, and
lambda = exp(l), l = 0 at start.  Each step alternates one discriminator update
(``discriminator.py``: L_D) and one sampler update (``losses.py``: L_G):

    theta <- AdamW(theta, grad L_G, lr_s),  lr_s cosine-decayed to 0.05 lr,  |grad| clipped to 1

on a batch of clean signals with fresh measurements, one outer time per batch.  ``continue_from``
starts at a trained sampler's adapters (a warm restart); ``checkpoint=`` makes a run resumable
(``posterior_tutor.files.run_checkpoint``).

Defaults.  Paper: K = N = 3, eta = 0.8, LoRA rank 5 on attention, AdamW lr 1e-4 (wd 0.01), batch
32, adversarial weight 1, LPIPS 0.1, gradient penalty 0.01 (MNIST).  Here, one reason each
(measured: docs/notes/ud2m.md, 'Defaults on the toy family'):
* vectors K x N = 4 x 2: LATINO's 8 calls, and of the 8-call splits the one closest to the exact
  posterior over the toy family (``evaluation.toy_family``); images keep the paper's 3 x 3;
* vectors 2000 steps (lr 1e-3, batch 256, gp_weight 0.1): at 500 the mixtures with many modes or
  a small sigma still lose to LATINO, at 2000 none did, in under a minute a problem on one CPU
  thread; images lr 1e-4, batch 32, 2000 steps, gp_weight 0.01; rank 4.

Departures (measurements: docs/notes/ud2m.md and departures.md; recipes: scripts/recipes/):
* The shipped samplers: adversarial weight 0, grid times, every layer, uniform weighting, lr 1e-3,
  2700 steps (900 + 1800 continued); the paper's ~200k steps of batch 32 are beyond a CPU budget
  and each tripling of the steps buys less (docs/notes/ud2m.md, 'train.py').
* RAM re-initialisation and the code's JPEG / general-operator HQS variants are not reproduced
  (the code's general-operator HQS scalars are never optimised: a defect).
* Under torchrun (or ``shards=``) a step's batch is drawn as shards, one generator each, with one
  problem and one outer time per global batch (``runtime.distributed``; docs/scaling.md).
* sigma_factor = 2 by default (the code's 2 converts [0, 1] to [-1, 1] units: its equivalent is
  1, 13 inpainting): on the toy family 1 sigma is clearly worse and 4 sigma no better.
* D and G update at every step (the code alternates: G on even batches, D on the others).
* Cosine decay to 0.05 lr, gradient clipping to norm 1 and D's Adam betas (0.5, 0.999) are not in
  the code: usual stabilisers of short adversarial fine-tuning runs (not measured one by one).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ...checks.values import check_generator, conform, dtype_of, finite_or_raise
from ...denoisers import Denoiser, parameters_of
from ...nets import seeded_init
from ...operators import InverseProblem
from ...checks.options import Anything, Choice, Flag, Int, Real, check_options, refuse_unknown
from ...runtime import distributed
from ...runtime.progress import bar
from ...files.run_checkpoint import as_run_checkpoint
from .run_state import (calls_for, checkpoint_parts, checkpoint_settings, inherited,
                        settings)
from . import losses
from .checks import check_lpips, check_objects, check_training_inputs, y_width
from .discriminator import Discriminator, discriminator_features, discriminator_loss
from .sampler import UD2MSampler

__all__ = ["train", "continue_from", "TRAIN_OPTIONS"]

TRAIN_OPTIONS = {   # kind and range of each option of train() (options.py); None: the default
    "steps": Int(0, optional=True), "batch": Int(1, optional=True),
    "lr": Real(0, low_open=True, optional=True), "K": Int(1, optional=True),
    "N": Int(1, optional=True), "eta": Real(0, 1),
    "rank": Int(1), "adv_weight": Real(0, optional=True), "gp_weight": Real(0, optional=True),
    "lpips_weight": Real(0), "lpips_net": Choice("vgg", "alex", "squeeze", "vgg16"),
    "operators": Anything(), "sigma_factor": Real(0, low_open=True, optional=True),
    "train_times": Choice("uniform", "grid"), "lora_layers": Anything(), "hidden": Int(1),
    "x0_weighting": Choice("snr", "uniform"), "init": Anything(),
    "progress": Flag(optional=True, hint="None: on except under pytest"),
    "checkpoint": Anything(), "checkpoint_every": Int(1, hint="steps between saved states"),
    **distributed.RUN_OPTIONS}


def train(den: Denoiser, problem: InverseProblem, xs_train: torch.Tensor, generator=None,
          steps: int | None = None, batch: int | None = None, lr: float | None = None,
          K: int | None = None, N: int | None = None, eta: float = 0.8, rank: int = 4,
          adv_weight: float | None = None, gp_weight: float | None = None,
          lpips_weight: float = 0.0, lpips_net: str = "vgg", operators=None,
          sigma_factor: float | None = None, train_times: str = "uniform", lora_layers=None,
          hidden: int = 64, x0_weighting: str = "snr", init: "UD2MSampler | None" = None,
          progress: bool | None = None, checkpoint=None, checkpoint_every: int = 100,
          shards: int | None = None, precision: str = "fp32", **unknown) -> UD2MSampler:
    """Fine-tune ``den`` into a K x N unfolded posterior sampler for ``problem`` (UD2M).

    xs_train : clean signals (n, ...) of the prior's shape; measurements are made on the fly.
    generator : draws everything (adapter initialisation, batches, times, noise): the same seed
               gives the same sampler.  Returns a ``UD2MSampler``.
    steps, batch, lr : vectors (toy) 2000, 256, 1e-3; images 2000, 32, 1e-4 (paper: lr 1e-4,
               batch 32, 400 epochs of 16k images on MNIST); steps = 0: the untrained sampler.
    K, N, eta : iterations per block, outer DDIM steps, DDIM eta; vectors 4, 2, images (paper)
               3, 3; eta 0.8.  NFE = K N.
               eta has its DDIM meaning; the paper's 0.8 is under the code's rule (far less
               fresh noise: docs/notes/ud2m.md, 'presets.py'): ``with_preset("code")``.
    rank     : LoRA rank (paper 5); ``lora_layers`` names the adapted layers (default: attention
               projections + output layer, or every Linear layer of a network without attention).
    adv_weight, gp_weight : weights of the adversarial term and of D's gradient penalty (R1 at the
               real samples, times 1/2; the code's sits at real/fake interpolates): vectors 1.0,
               0.1; images 1.0, 0.01 (paper: 1, 0.01 on MNIST); adv_weight=0: no discriminator.
    lpips_weight, lpips_net : LPIPS term (paper 0.1, VGG), images only; 0 = off (default).
    operators : None, a callable returning an InverseProblem, or a list of them: a fresh problem
               per batch ("general operator" training; with the discriminator on, every problem
               must give measurements of one shape); ``problem`` stays the default at inference.
    sigma_factor : sigma' = sigma_factor sigma (default 2, or init's; module docstring; the
               code-equivalent is 1, 13 for inpainting: ``UD2MSampler.with_preset("code")``).
    train_times : "uniform" (paper, t ~ U{1..T-1}) or "grid" (only the N times the sampler visits).
    hidden   : width of the residual MLP used for a denoiser without parameters.
    x0_weighting : "snr" (paper: ab_t / (1 - ab_t) |x^(K) - x0|^2 = the eps error) or "uniform"
               (|x^(K) - x0|^2 at every t: the early blocks, which decide the digit, are not
               weighted down by SNR ~ 1e-4).
    init     : a trained ``UD2MSampler`` on the same prior to continue from: its adapters and
               lambda are copied (``init`` itself is not changed) and its training curve is
               continued; rank and adapted layers must match (default: init's layers), K and N
               may differ (default: init's).  The learning rate starts a fresh cosine decay (a
               warm restart).
    progress : tqdm bar (None: on, except under pytest; ``posterior_tutor.runtime.progress``).
    checkpoint, checkpoint_every : a folder (or a ``RunCheckpoint``) for a resumable run: every
               ``checkpoint_every`` steps ``folder/last.pt`` holds the whole training state; called
               again with the same folder and settings, training resumes there and ends with the
               weights of an uninterrupted run (``posterior_tutor.files.run_checkpoint``; needs
               ``generator``).  Other settings than the run started with are refused.
    """
    refuse_unknown("ud2m.train", unknown, TRAIN_OPTIONS)
    check_options("ud2m.train", TRAIN_OPTIONS, {k: v for k, v in locals().items()
                                                if k in TRAIN_OPTIONS})
    check_objects(operators, lora_layers)
    check_generator(generator)
    if isinstance(xs_train, torch.Tensor):   # the adapters' dtype: the network's, else the default
        xs_train = conform(xs_train, dtype_of(den) or torch.get_default_dtype(), "xs_train")
    shards = _join_processes(den, shards)
    run = as_run_checkpoint(checkpoint, checkpoint_every)
    lora_layers, sigma_factor, K, N = inherited(init, lora_layers, sigma_factor, K, N)
    shape = check_training_inputs(den, problem, xs_train, *calls_for(xs_train, K, N))
    given = dict(K=K, N=N, steps=steps, batch=batch, lr=lr, adv_weight=adv_weight,
                 gp_weight=gp_weight, shards=shards, precision=precision)
    opts, config = settings(den, shape, given, eta=eta, rank=rank,
                             lora_layers=lora_layers, hidden=hidden, sigma_factor=sigma_factor,
                             train_times=train_times, lpips_weight=lpips_weight,
                             x0_weighting=x0_weighting)
    with seeded_init(generator):
        ud = UD2MSampler(den, config, problem)
        ud.config["layers"] = ud.denoiser.layers
        if init is not None:
            continue_from(ud, init)
        if opts["adv_weight"] > 0:
            y_dim = y_width(problem, xs_train[:1], shape)
            ud.discriminator = Discriminator(shape, y_dim).to(ud.denoiser.device)
    weights = dict(adv_weight=opts["adv_weight"], lpips_weight=float(lpips_weight),
                   lpips_net=lpips_net, x0_weighting=x0_weighting)
    if lpips_weight > 0:
        check_lpips(shape, lpips_net, xs_train)
    _fit(ud, problem, xs_train.to(ud.denoiser.device), opts, weights, operators, train_times,
         generator, progress, run)
    return ud


def _join_processes(den, shards):
    """Join torchrun's processes (if any); returns the number of shards (default: one each)."""
    params = parameters_of(den)
    distributed.init(params[0].device if params else "cpu")
    return distributed.world() if shards is None else shards


def continue_from(ud: UD2MSampler, init) -> None:
    """Start ``ud`` (freshly built, untrained) at ``init``'s adapters, lambda and curve."""
    if not isinstance(init, UD2MSampler):
        raise TypeError(f"init must be a trained UD2MSampler, got {type(init).__name__}.")
    if init.den is not ud.den:
        raise ValueError("init was trained on another prior object; load it on this prior "
                         "(UD2MSampler.load(path, den)) and pass that.")
    theirs = {k: init.config[k] for k in ("mode", "rank", "layers", "hidden")}
    mine = {k: ud.config[k] for k in theirs}
    if theirs != mine:
        diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
        raise ValueError(f"init's adapter does not match the one asked for: (asked, init's) "
                         f"{diff}; pass rank= and lora_layers= as init was trained.")
    ud.denoiser.load_adapter_state({k: v.detach().clone()
                                    for k, v in init.denoiser.adapter_state().items()})
    with torch.no_grad():
        ud.log_lam.copy_(init.log_lam.detach())
    ud.losses = list(init.losses)
    ud.loss_parts = {k: list(v) for k, v in init.loss_parts.items()}
    ud.config["init_steps"] = len(init.losses)


def _fit(ud, problem, data, opts, weights, operators, train_times, generator, progress, run=None):
    """The alternating loop: one discriminator update, one sampler update per step; ``run``
    (a RunCheckpoint) saves it every few steps (rank 0) and resumes it.  Under torchrun (or with
    ``shards``) each process draws its shards of the global batch (``runtime.distributed``)."""
    distributed.check_precision(opts["precision"], data.device, "ud2m.train")
    disc = [] if ud.discriminator is None else list(ud.discriminator.parameters())
    distributed.broadcast_(ud.trainable_parameters() + disc)   # all start alike, as under DDP
    opt = torch.optim.AdamW([{"params": ud.denoiser.trainable_parameters(), "weight_decay": 0.01},
                             {"params": [ud.log_lam], "weight_decay": 0.0}], lr=opts["lr"])
    opt_d = (torch.optim.AdamW(ud.discriminator.parameters(), lr=opts["lr"], betas=(0.5, 0.999))
             if ud.discriminator is not None else None)
    decays = [torch.optim.lr_scheduler.CosineAnnealingLR(o, opts["steps"],
                                                         eta_min=0.05 * opts["lr"])
              for o in (opt, opt_d) if o is not None]
    plan = distributed.plan_shards(opts["batch"], opts["shards"], generator, "ud2m.train")
    start = 0
    if run is not None:
        run.bind(checkpoint_settings(ud, problem, data, weights, operators),
                 checkpoint_parts(ud, opt, opt_d, decays), generator, what="ud2m.train")
        start = distributed.resume(run)
    rng = bar(range(start, opts["steps"]), "training UD2M", total=opts["steps"],
              progress=progress if distributed.is_main() else False, initial=start)
    cast = distributed.autocast(opts["precision"], data.device)
    for step in rng:
        with cast:
            batches = _batches(ud, problem, data, opts, operators, train_times, generator, plan,
                               step)
        def loss_d(b):
            feats = discriminator_features(b.problem, b.y, ud.shape)
            return discriminator_loss(ud.discriminator, b.x0, b.x_hat, feats, opts["gp_weight"])
        parts_d = {} if opt_d is None else {"disc": distributed.update(
            opt_d, ud.discriminator.parameters(), batches, cast, None, loss_d)}
        parts = {}

        def loss_g(b):
            total, p, _ = losses.sampler_loss(ud, b.problem, b.x0, b.y, b.t, weights, b.generator,
                                              x_hat=b.x_hat)
            for k, v in p.items():
                parts[k] = parts.get(k, 0.0) + v.detach() / len(batches)
            return total
        total = distributed.update(opt, ud.trainable_parameters(), batches, cast, 1.0, loss_g)
        for d in decays:
            d.step()
        names = list(parts) + list(parts_d)
        values = distributed.mean_across([total] + [float(v) for v in (*parts.values(),
                                                                       *parts_d.values())])
        ud.losses.append(values[0])
        finite_or_raise(ud.losses[-1], "the UD2M training loss", f"at step {len(ud.losses)}",
                        f"lower lr (now {opts['lr']:g}) or the loss weights, or check the data.")
        for k, v in zip(names, values[1:]):
            ud.loss_parts.setdefault(k, []).append(v)
        if run is not None and distributed.is_main():
            run.step_done(step + 1, opts["steps"])
    for p in ud.trainable_parameters():
        finite_or_raise(p.detach(), "a UD2M weight", "after training",
                        f"lower lr (now {opts['lr']:g}).")


class _Batch(NamedTuple):
    """One shard of a step: its generator, problem, clean signals, measurements, time, x^(K)."""
    generator: object
    problem: object
    x0: torch.Tensor
    y: torch.Tensor
    t: int
    x_hat: torch.Tensor


def _batches(ud, problem, data, opts, operators, train_times, generator, plan, step):
    """This process's shards of the step's batch: (generator, problem, x0, y, t, x_hat) each.
    One problem and one outer time per global batch; one process, one shard: the draws of the
    plain loop in its order (index, problem, y, t, x_t, block)."""
    dev = data.device
    if plan is None:
        idx = torch.randint(data.shape[0], (opts["batch"],), generator=generator,
                            device=losses._gen_device(generator)).to(dev)
        pb = losses.problem_for_batch(problem, operators, generator)
        return [_batch(ud, data[idx], pb, lambda: losses.draw_time(ud, train_times, generator),
                       generator)]
    shared = plan.generator(step, None)
    pb = losses.problem_for_batch(problem, operators, shared)
    t = losses.draw_time(ud, train_times, shared)
    out = []
    for s in plan.local:
        g = plan.generator(step, s)
        idx = torch.randint(data.shape[0], (plan.shard_batch,), generator=g, device=g.device)
        out.append(_batch(ud, data[idx.to(dev)], pb, lambda: t, g))
    return out


def _batch(ud, x0, pb, draw_t, g):
    y = losses.measure_batch(pb, x0, g)
    t = draw_t()
    x_t = ud.den.schedule.add_noise(x0, t, generator=g)
    x_hat = None
    for b in ud.block(x_t, y, t, pb, g, batched_y=True):
        x_hat = b.x
    return _Batch(g, pb, x0, y, t, x_hat)
