"""Chapter 02 exercises: one DPS guidance step, one DiffPIR step.

Equations: DPS's correction -zeta grad_{x_t} |y - A D(x_t, t)| (samplers/dps.py: the reference is
the correction the library's sampler records); DiffPIR's prox and re-noising (samplers/diffpir.py).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .base import Exercise, Mistake, register
from .. import samplers, toy


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 02.1 one DPS guidance step --------------------------------------------------------------------
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
    "02.1", "one DPS guidance step: the gradient through the denoiser",
    "dps_correction(den, problem, y, x_t, t, zeta) -> correction (n, d)",
    dps_correction, _dps_ref, _dps_cases,
    [Mistake(_dps_squared, "DPS (Algorithm 1) differentiates the norm |y - A x0_hat|, not its square."),
     Mistake(lambda *a: -dps_correction(*a), "the correction goes downhill: -zeta * grad."),
     Mistake(_dps_no_jacobian, "differentiate with respect to x_t, through the denoiser "
             "(torch.autograd.grad with x_t.requires_grad_()), not with respect to x0_hat.")],
    hint="x_t.requires_grad_(True); err = |A D(x_t, t) - y| per sample; grad of err.sum() w.r.t. "
         "x_t; return -zeta * grad."))


# -- 02.2 one DiffPIR step -------------------------------------------------------------------------
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
    "02.2", "one DiffPIR step: denoise, proximal data step, re-noise",
    "diffpir_step(den, problem, y, x_t, t, t_prev, lam, zeta, z) -> x_{t_prev}",
    diffpir_step, _diffpir_ref, _diffpir_cases,
    [Mistake(_diffpir_lam, "the prox radius is r_t = s(t) / sqrt(lam): a larger lambda trusts the "
             "prior more, so the radius shrinks."),
     Mistake(_diffpir_zeta, "mix the noises by their variances: sqrt(1 - zeta) eps_hat + sqrt(zeta) z."),
     Mistake(_diffpir_eps_prior, "eps_hat comes from the corrected x0_hat, not from the denoiser's x0.")],
    hint="x0_hat = problem.prox(D(x_t, t), y, s(t) / sqrt(lam)); eps_hat = (x_t - sqrt(ab_t) x0_hat) / "
         "sqrt(1 - ab_t); x' = sqrt(ab') x0_hat + sqrt(1 - ab') (sqrt(1 - zeta) eps_hat + sqrt(zeta) z)."))
