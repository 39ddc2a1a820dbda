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
"""
from __future__ import annotations

import torch

from ...files.checkpoints import prior_fingerprint
from ...files.safe import content_sha256


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
