"""Chapter 01 exercises: forward noising, Tweedie's formula from a score, one DDIM update.

Equations: x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps (schedules.py, ``add_noise``);
E[x0 | x_t] = (x_t + (1 - ab_t) grad log p_t(x_t)) / sqrt(ab_t) (denoisers.py, the exact GMM
denoiser); DDIM with eta = 0 (samplers/diffusion.py, ``ddim_update``).
"""
from __future__ import annotations

import torch

from .base import Exercise, Mistake, register
from .. import toy
from ..samplers.diffusion import ddim_update, eps_from_x0
from ..schedules import VPSchedule


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 01.1 forward noising --------------------------------------------------------------------------
def add_noise(x0, t, eps, sched):
    """x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps."""
    ab = sched.abar(t).item()
    return ab ** 0.5 * x0 + (1 - ab) ** 0.5 * eps


def _noise_cases():
    g, sched = _gen(0), VPSchedule()
    return [(torch.randn(5, 3, generator=g), t, torch.randn(5, 3, generator=g), sched)
            for t in (10, 250, 700)]


def _noise_no_sqrt(x0, t, eps, sched):
    ab = sched.abar(t).item()
    return ab * x0 + (1 - ab) * eps


def _noise_ve(x0, t, eps, sched):
    return x0 + sched.s(t).item() * eps


def _noise_one_step(x0, t, eps, sched):
    b = sched.betas[t].item()
    return (1 - b) ** 0.5 * x0 + b ** 0.5 * eps


register(Exercise(
    "01.1", "forward noising: x_t from x0 in one jump", "add_noise(x0, t, eps, sched) -> x_t",
    add_noise, lambda x0, t, eps, sched: sched.add_noise(x0, t, noise=eps), _noise_cases,
    [Mistake(_noise_no_sqrt, "the coefficients are square roots: sqrt(ab_t) and sqrt(1 - ab_t) "
             "(ab_t and 1 - ab_t are the signal and noise *variances*)."),
     Mistake(_noise_ve, "this is the VE view x0 + s(t) eps; the VP x_t is sqrt(ab_t) times it."),
     Mistake(_noise_one_step, "use abar_t = sched.abar(t), the product of all (1 - beta_s) up to "
             "t, not beta_t of a single step.")],
    hint="ab = sched.abar(t); x_t = sqrt(ab) x0 + sqrt(1 - ab) eps."))


# -- 01.2 Tweedie's formula from a score ----------------------------------------------------------
def tweedie(x_t, score, t, sched):
    """E[x0 | x_t] = (x_t + (1 - ab_t) score) / sqrt(ab_t)."""
    ab = sched.abar(t).item()
    return (x_t + (1 - ab) * score) / ab ** 0.5


def _tweedie_cases():
    g, sched = _gen(1), VPSchedule()
    den = toy.ring_of_gaussians().denoiser(sched)
    out = []
    for t in (50, 300, 800):
        x_t = 1.5 * torch.randn(6, 2, generator=g, dtype=torch.float64)
        out.append((x_t, den.score(x_t, t), t, sched))
    return out


def _tweedie_ref(x_t, score, t, sched):
    return toy.ring_of_gaussians().denoiser(sched)(x_t, t)


def _tweedie_sign(x_t, score, t, sched):
    return tweedie(x_t, -score, t, sched)


def _tweedie_no_scale(x_t, score, t, sched):
    ab = sched.abar(t).item()
    return x_t + (1 - ab) * score


def _tweedie_sqrt(x_t, score, t, sched):
    ab = sched.abar(t).item()
    return (x_t + (1 - ab) ** 0.5 * score) / ab ** 0.5


register(Exercise(
    "01.2", "Tweedie's formula: the denoiser from the score", "tweedie(x_t, score, t, sched) -> x0_hat",
    tweedie, _tweedie_ref, _tweedie_cases,
    [Mistake(_tweedie_sign, "the score points towards the data: x_t + (1 - ab_t) score, a plus sign."),
     Mistake(_tweedie_no_scale, "x_t carries sqrt(ab_t) x0: divide by sqrt(ab_t) at the end."),
     Mistake(_tweedie_sqrt, "the score is multiplied by the noise *variance* 1 - ab_t, not its "
             "square root.")],
    hint="E[x0 | x_t] = (x_t + (1 - ab_t) grad log p_t(x_t)) / sqrt(ab_t)."))


# -- 01.3 one DDIM update --------------------------------------------------------------------------
def ddim_step(x_t, x0_hat, t, t_prev, sched):
    """eta = 0: x_{t'} = sqrt(ab_t') x0_hat + sqrt(1 - ab_t') eps_hat."""
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * eps_hat


def _ddim_ref(x_t, x0_hat, t, t_prev, sched):
    return ddim_update(sched, x0_hat, eps_from_x0(sched, x_t, x0_hat, t), t, t_prev, 0.0, None)


def _ddim_cases():
    g, sched = _gen(2), VPSchedule()
    return [(torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g), t, tp, sched)
            for t, tp in ((999, 899), (500, 450), (120, 60))]


def _ddim_time(x_t, x0_hat, t, t_prev, sched):
    ab = sched.abar(t).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    return ab ** 0.5 * x0_hat + (1 - ab) ** 0.5 * eps_hat


def _ddim_eps(x_t, x0_hat, t, t_prev, sched):
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab * x0_hat) / (1 - ab)
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * eps_hat


def _ddim_swap(x_t, x0_hat, t, t_prev, sched):
    ab_prev = sched.abar(t_prev).item()
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * x_t


register(Exercise(
    "01.3", "one DDIM update (eta = 0) from t to t_prev",
    "ddim_step(x_t, x0_hat, t, t_prev, sched) -> x_{t_prev}",
    ddim_step, _ddim_ref, _ddim_cases,
    [Mistake(_ddim_time, "re-noise to the *earlier* time: use ab_{t_prev}, not ab_t (that gives "
             "x_t back)."),
     Mistake(_ddim_eps, "eps_hat = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t): square roots."),
     Mistake(_ddim_swap, "reuse the predicted noise eps_hat, not x_t itself.")],
    hint="eps_hat = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t); x' = sqrt(ab_t') x0_hat + "
         "sqrt(1 - ab_t') eps_hat."))
