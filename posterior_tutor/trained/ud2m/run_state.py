"""What a resumable UD2M training run saves and what a resume must share with it.

``files/run_checkpoint.py`` (``RunCheckpoint``) saves and restores a run without knowing the
method: ``train.py`` binds it to the two things defined here,

    checkpoint_settings(ud, problem, data, weights, operators)   compared on resume (refused when
                                                                 one differs, naming it)
    checkpoint_parts(ud, opt, opt_d, decays)                     name -> (get, set) of each state:
                                                                 adapter, log_lambda, loss curves,
                                                                 optimisers, lr decays and, with
                                                                 the adversarial loss, the
                                                                 discriminator and its optimiser

and the training's settings themselves: the defaults of vectors and images (their reasons:
``train.py``), ``calls_for`` (K, N), ``inherited`` (from ``init=``) and ``settings`` (the options
and the sampler's config as saved in its file).
"""
from __future__ import annotations

import torch

from ...denoisers import parameters_of
from ...files.checkpoints import prior_fingerprint
from ...files.safe import content_sha256
from .sampler import UD2MSampler

VECTOR_DEFAULTS = dict(K=4, N=2, steps=2000, batch=256, lr=1e-3, adv_weight=1.0, gp_weight=0.1)
IMAGE_DEFAULTS = dict(K=3, N=3, steps=2000, batch=32, lr=1e-4, adv_weight=1.0, gp_weight=0.01)


def inherited(init, lora_layers, sigma_factor, K, N):
    """(lora_layers, sigma_factor, K, N): the ones given, else init's, else (None, 2, None, None)."""
    if isinstance(init, UD2MSampler):   # anything else is refused by continue_from
        lora_layers = init.config["layers"] if lora_layers is None else lora_layers
        sigma_factor = init.config["sigma_factor"] if sigma_factor is None else sigma_factor
        K, N = init.K if K is None else K, init.N if N is None else N
    return lora_layers, 2.0 if sigma_factor is None else sigma_factor, K, N


def calls_for(xs, K, N):
    """(K, N): the ones given, else the defaults of vectors (xs of shape (n, d)) or images."""
    defaults = IMAGE_DEFAULTS if getattr(xs, "ndim", 0) == 4 else VECTOR_DEFAULTS
    return defaults["K"] if K is None else K, defaults["N"] if N is None else N


def settings(den, shape, given, *, eta, rank, lora_layers, hidden, sigma_factor, train_times,
             lpips_weight, x0_weighting):
    """(opts, config): the training options (the defaults of vectors or images, then the ones
    given) and the sampler's config as saved in its file."""
    opts = dict(IMAGE_DEFAULTS if len(shape) == 3 else VECTOR_DEFAULTS)
    opts.update({k: v for k, v in given.items() if v is not None})
    mode = "lora" if parameters_of(den) else "residual"
    config = dict(K=int(opts["K"]), N=int(opts["N"]), eta=float(eta), rank=int(rank), mode=mode,
                  shape=list(shape),
                  layers=None if lora_layers is None else list(lora_layers), hidden=int(hidden),
                  sigma_factor=float(sigma_factor), T=den.schedule.T, train_times=train_times,
                  **{k: opts[k] for k in ("steps", "batch", "lr", "adv_weight", "gp_weight")},
                  lpips_weight=float(lpips_weight), x0_weighting=x0_weighting)
    config.update({k: given[k] for k in ("shards", "precision") if given[k] not in (1, "fp32")})
    return opts, config


def checkpoint_parts(ud, opt, opt_d, decays) -> dict:
    """The state of a UD2M training run (``train.py``: ``_fit``): name -> (get, set)."""
    def set_lam(v):
        with torch.no_grad():
            ud.log_lam.copy_(v)

    def curves():
        return {"losses": torch.tensor(ud.losses, dtype=torch.float64),
                **{k: torch.tensor(v, dtype=torch.float64) for k, v in ud.loss_parts.items()}}

    def set_curves(c):
        ud.losses = c["losses"].tolist()
        ud.loss_parts = {k: v.tolist() for k, v in c.items() if k != "losses"}
    parts = {"adapter": (lambda: {k: v.detach().clone() for k, v in
                                  ud.denoiser.adapter_state().items()},
                         ud.denoiser.load_adapter_state),
             "log_lambda": (lambda: ud.log_lam.detach().clone(), set_lam),
             "curves": (curves, set_curves), "opt": (opt.state_dict, opt.load_state_dict),
             "decays": (lambda: [d.state_dict() for d in decays],
                        lambda s: [d.load_state_dict(v) for d, v in zip(decays, s)])}
    if opt_d is not None:
        parts["discriminator"] = (ud.discriminator.state_dict, ud.discriminator.load_state_dict)
        parts["opt_d"] = (opt_d.state_dict, opt_d.load_state_dict)
    return parts


def checkpoint_settings(ud, problem, data, weights, operators) -> dict:
    """What a resumed UD2M run must share with the one it continues: the sampler's config, the
    problem (its operator on a fixed probe: two masks of one density differ), the training data,
    the prior (its fingerprint) and the kind of ``operators``."""
    ops = (None if operators is None else "callable" if callable(operators)
           else f"list of {len(operators)}")
    probe = torch.randn((1, *ud.shape), generator=torch.Generator().manual_seed(0)).to(data)
    with torch.no_grad():
        a_probe = content_sha256(problem.operator(probe))[:16]
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in ud.config.items()}
    return {**config, "problem": f"{problem.operator!r}, sigma {problem.sigma}, A(probe) sha256 "
            f"{a_probe}", "operators": ops, "lpips_net": weights["lpips_net"],
            "data": f"{tuple(data.shape)} sha256 {content_sha256(data)[:16]}",
            "prior": f"sha256 {content_sha256(prior_fingerprint(ud.den, ud.shape))[:16]}"}
