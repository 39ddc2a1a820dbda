"""Chapter 01 exercises: forward noising, Tweedie's formula from a score, one DDIM update, one DPS
guidance step, one DiffPIR step.

Equations: x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps (schedules.py, ``add_noise``);
E[x0 | x_t] = (x_t + (1 - ab_t) grad log p_t(x_t)) / sqrt(ab_t) (denoisers.py, the exact GMM
denoiser); DDIM with eta = 0 (samplers/diffusion.py, ``ddim_update``); DPS's correction
-zeta grad_{x_t} |y - A D(x_t, t)| (samplers/dps.py: the reference is the correction the library's
sampler records); DiffPIR's prox and re-noising (samplers/diffpir.py).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .base import Exercise, Mistake, register
from .. import samplers, toy
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


# -- 01.4 one DPS guidance step --------------------------------------------------------------------
def dps_correction(den, problem, y, x_t, t, zeta):
    """-zeta grad_{x_t} |y - A D(x_t, t)| per sample, the gradient taken through the denoiser."""
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        err = problem.residual(den(x_in, t), y).flatten(1).norm(dim=1)
        (grad,) = torch.autograd.grad(err.sum(), x_in)
    return -zeta * grad


@lru_cache(maxsize=1)
def _dps_run():
    tp = toy.bimodal_problem_2d()
    den = tp.prior.denoiser()
    steps = [s.detached() for s in samplers.iterate("dps", den, tp.problem, tp.y, n=6, steps=10,
                                                     zeta=0.3, generator=_gen(1))]
    return den, tp.problem, tp.y, den.schedule.timesteps(10), steps


def _dps_cases():
    den, problem, y, grid, steps = _dps_run()
    return [(den, problem, y, steps[i - 1].x, grid[i], 0.3) for i in (2, 5, 8)]


def _dps_ref(den, problem, y, x_t, t, zeta):
    _, _, _, grid, steps = _dps_run()
    i = grid.index(t)
    assert torch.equal(steps[i - 1].x, x_t)
    return steps[i].extras["correction"]


def _dps_squared(den, problem, y, x_t, t, zeta):
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        err = problem.residual(den(x_in, t), y).flatten(1).pow(2).sum(1)
        (grad,) = torch.autograd.grad(err.sum(), x_in)
    return -zeta * grad


def _dps_no_jacobian(den, problem, y, x_t, t, zeta):
    x0 = den(x_t, t)
    r = problem.residual(x0, y)
    return -zeta * problem.operator.adjoint(r) / r.flatten(1).norm(dim=1)[:, None]


register(Exercise(
    "01.4", "one DPS guidance step: the gradient through the denoiser",
    "dps_correction(den, problem, y, x_t, t, zeta) -> correction (n, d)",
    dps_correction, _dps_ref, _dps_cases,
    [Mistake(_dps_squared, "DPS (Algorithm 1) differentiates the norm |y - A x0_hat|, not its square."),
     Mistake(lambda *a: -dps_correction(*a), "the correction goes downhill: -zeta * grad."),
     Mistake(_dps_no_jacobian, "differentiate with respect to x_t, through the denoiser "
             "(torch.autograd.grad with x_t.requires_grad_()), not with respect to x0_hat.")],
    hint="x_t.requires_grad_(True); err = |A D(x_t, t) - y| per sample; grad of err.sum() w.r.t. "
         "x_t; return -zeta * grad."))


# -- 01.5 one DiffPIR step -------------------------------------------------------------------------
def diffpir_step(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    """Denoise, prox with r_t = s(t) / sqrt(lam), re-noise to t_prev with fresh noise z."""
    sched = den.schedule
    x0_hat = problem.prox(den(x_t, t), y, sched.s(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    noise = (1 - zeta) ** 0.5 * eps_hat + zeta ** 0.5 * z
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * noise


def _diffpir_ref(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    """The library's update (samplers/diffpir.py) with the given noise z instead of a fresh draw."""
    sched = den.schedule
    x0_hat = problem.prox(den(x_t, t), y, sched.s(t).item() / lam ** 0.5)
    eps_hat = samplers.diffusion.eps_from_x0(sched, x_t, x0_hat, t)
    ab_prev = sched.abar(t_prev).item()
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * (
        (1 - zeta) ** 0.5 * eps_hat + zeta ** 0.5 * z)


def _diffpir_cases():
    tp, g = toy.bimodal_problem_2d(), _gen(2)
    den = tp.prior.denoiser()
    out = []
    for t, t_prev, lam, zeta in [(600, 500, 1.0, 0.1), (300, 250, 2.0, 0.5), (100, 80, 0.5, 0.3)]:
        x_t = torch.randn(6, 2, generator=g)
        out.append((den, tp.problem, tp.y, x_t, t, t_prev, lam, zeta, torch.randn(6, 2, generator=g)))
    return out


def _diffpir_lam(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    return diffpir_step(den, problem, y, x_t, t, t_prev, 1 / lam, zeta, z)


def _diffpir_zeta(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    sched = den.schedule
    x0_hat = problem.prox(den(x_t, t), y, sched.s(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * ((1 - zeta) * eps_hat + zeta * z)


def _diffpir_eps_prior(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    sched = den.schedule
    x0 = den(x_t, t)
    x0_hat = problem.prox(x0, y, sched.s(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps = (x_t - ab ** 0.5 * x0) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * ((1 - zeta) ** 0.5 * eps + zeta ** 0.5 * z)


register(Exercise(
    "01.5", "one DiffPIR step: denoise, proximal data step, re-noise",
    "diffpir_step(den, problem, y, x_t, t, t_prev, lam, zeta, z) -> x_{t_prev}",
    diffpir_step, _diffpir_ref, _diffpir_cases,
    [Mistake(_diffpir_lam, "the prox radius is r_t = s(t) / sqrt(lam): a larger lambda trusts the "
             "prior more, so the radius shrinks."),
     Mistake(_diffpir_zeta, "mix the noises by their variances: sqrt(1 - zeta) eps_hat + sqrt(zeta) z."),
     Mistake(_diffpir_eps_prior, "eps_hat comes from the corrected x0_hat, not from the denoiser's x0.")],
    hint="x0_hat = problem.prox(D(x_t, t), y, s(t) / sqrt(lam)); eps_hat = (x_t - sqrt(ab_t) x0_hat) / "
         "sqrt(1 - ab_t); x' = sqrt(ab') x0_hat + sqrt(1 - ab') (sqrt(1 - zeta) eps_hat + sqrt(zeta) z)."))
