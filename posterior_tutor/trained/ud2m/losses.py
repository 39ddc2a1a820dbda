"""UD2M's training batch and the sampler's loss (the distillation half).

Pairs (x0, y) are made on the fly from clean signals, y = A x0 + sigma n, with one problem per
batch (``problem``, or a fresh one from ``operators=``: random masks, several operators) and one
outer time t per batch (U{1..T-1} as in the paper, or ``"grid"``: the N times the sampler visits);
x_t = add_noise(x0, t) and one block runs with gradients.  The sampler's loss:

    L_G = w_t mean|x^(K) - x0|^2 + adv_weight BCE(Disc(x^(K), y), 1) + lpips_weight LPIPS(x^(K), x0)
    w_t = ab_t / (1 - ab_t)  ("snr": the paper's, = the code's |eps_hat - eps|^2)   or 1 ("uniform")

Departures (measurements: docs/notes/ud2m.md):
* ``x0_weighting="uniform"`` (the shipped samplers): the SNR weights 4e-5 and 0.04 at t = 999 and
  562 send the training to the last block, but the first blocks decide the digit; uniform
  weighting did better than SNR on held-out digits (measured: docs/notes/ud2m.md, 'losses.py').
* ``train_times="grid"`` optionally restricts t to the sampler's own outer times.
* LPIPS off by default (its ImageNet weights need a download); the paper's weight is 0.1.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ...operators import InverseProblem
from ...schedules import randn
from .discriminator import discriminator_features

__all__ = ["measure_batch", "problem_for_batch", "draw_time", "sampler_loss"]


def measure_batch(problem: InverseProblem, x0, generator=None):
    """y_i = A(x0_i) + sigma n_i for a batch (one measurement per signal)."""
    clean = problem.operator(x0)
    return clean + problem.sigma * randn(clean.shape, generator=generator, device=x0.device,
                                      dtype=x0.dtype)


def problem_for_batch(problem, operators, generator):
    """The training problem of this batch: ``problem``, or a fresh one from ``operators``."""
    if operators is None:
        return problem
    if callable(operators):
        new = operators()
    else:
        i = int(torch.randint(len(operators), (1,), generator=generator,
                              device=_gen_device(generator)))
        new = operators[i]
    if not isinstance(new, InverseProblem):
        raise TypeError(f"operators must give InverseProblems, got {type(new).__name__}.")
    return new


def _gen_device(generator):
    return generator.device if generator is not None else "cpu"


def draw_time(ud, how: str, generator) -> int:
    """One outer time per batch: U{1..T-1} (paper) or one of the sampler's N grid times."""
    dev = _gen_device(generator)
    if how == "grid":
        grid = ud.grid
        return grid[int(torch.randint(len(grid), (1,), generator=generator, device=dev))]
    return int(torch.randint(1, ud.den.schedule.T, (1,), generator=generator, device=dev))


def sampler_loss(ud, problem, x0, y, t: int, weights: dict, generator=None,
                 x_hat=None):
    """(total, parts, x_hat): SNR-weighted x0 error of one block at t, + adversarial, + LPIPS."""
    sched = ud.den.schedule
    if x_hat is None:
        x_t = sched.add_noise(x0, t, generator=generator)
        for b in ud.block(x_t, y, t, problem, generator, batched_y=True):
            x_hat = b.x
    ab = sched.abar(t).item()
    weight = ab / (1 - ab) if weights.get("x0_weighting", "snr") == "snr" else 1.0
    mse = weight * (x_hat - x0).flatten(1).pow(2).mean(1).mean()
    parts, total = {"x0": mse}, mse
    if weights["adv_weight"] > 0 and ud.discriminator is not None:
        feats = discriminator_features(problem, y, ud.shape)
        parts["adv"] = F.softplus(-ud.discriminator(x_hat, feats)).mean()
        total = total + weights["adv_weight"] * parts["adv"]
    if weights["lpips_weight"] > 0:
        from ...metrics import lpips
        parts["lpips"] = lpips(x_hat, x0, net=weights["lpips_net"]).mean()
        total = total + weights["lpips_weight"] * parts["lpips"]
    return total, parts, x_hat

