"""Chapter 00 exercises: the exact Gaussian posterior, one DPS guidance step, one DiffPIR step.

Equations: the Kalman update of ``GaussianMixture.posterior`` (toy.py); DPS's correction
-zeta grad_{x_t} |y - A D(x_t, t)| (samplers/dps.py); DiffPIR's prox and re-noising
(samplers/diffpir.py).  DPS's reference is the correction the library's sampler records.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .base import Exercise, Mistake, register
from .. import samplers, toy
from ..operators import InverseProblem, Matrix


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 00.1 the exact posterior of a Gaussian prior ------------------------------------------------
def gaussian_posterior(mu, C, A, y, sigma):
    """Prior N(mu, C), likelihood y = A x + sigma n: the posterior mean and covariance."""
    G = A @ C @ A.T + sigma ** 2 * torch.eye(A.shape[0], dtype=A.dtype)
    K = C @ A.T @ torch.linalg.inv(G)
    return mu + K @ (y - A @ mu), C - K @ A @ C


def _posterior_ref(mu, C, A, y, sigma):
    post = toy.GaussianMixture([1.0], mu[None], C[None]).posterior(InverseProblem(Matrix(A), sigma), y)
    return post.means[0], post.covs[0]


def _posterior_cases():
    g, out = _gen(0), []
    for d, m in [(2, 1), (3, 2), (4, 2)]:
        B = torch.randn(d, d, generator=g, dtype=torch.float64)
        C = B @ B.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
        out.append((torch.randn(d, generator=g, dtype=torch.float64), C,
                    torch.randn(m, d, generator=g, dtype=torch.float64),
                    torch.randn(m, generator=g, dtype=torch.float64), 0.3 + 0.4 * len(out)))
    return out


def _post_sigma(mu, C, A, y, sigma):
    return gaussian_posterior(mu, C, A, y, sigma ** 0.5)


def _post_sign(mu, C, A, y, sigma):
    m, P = gaussian_posterior(mu, C, A, y, sigma)
    return m, 2 * C - P


def _post_no_prior(mu, C, A, y, sigma):
    G = A @ C @ A.T + sigma ** 2 * torch.eye(A.shape[0], dtype=A.dtype)
    K = C @ A.T @ torch.linalg.inv(G)
    return K @ y, C - K @ A @ C


register(Exercise(
    "00.1", "the exact posterior of a Gaussian prior under a linear Gaussian likelihood",
    "gaussian_posterior(mu, C, A, y, sigma) -> (mean, cov)",
    gaussian_posterior, _posterior_ref, _posterior_cases,
    [Mistake(_post_sigma, "the noise covariance is sigma^2 I, not sigma I: G = A C A^T + sigma^2 I."),
     Mistake(_post_sign, "the covariance shrinks: P = C - K A C (a minus sign)."),
     Mistake(_post_no_prior, "the mean starts at the prior mean: m = mu + K (y - A mu).")],
    hint="G = A C A^T + sigma^2 I, K = C A^T G^-1, m = mu + K (y - A mu), P = C - K A C."))


# -- 00.2 one DPS guidance step --------------------------------------------------------------------
def dps_correction(den, prob, y, x_t, t, zeta):
    """-zeta grad_{x_t} |y - A D(x_t, t)| per sample, the gradient taken through the denoiser."""
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        err = prob.residual(den(x_in, t), y).flatten(1).norm(dim=1)
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
    den, prob, y, grid, steps = _dps_run()
    return [(den, prob, y, steps[i - 1].x, grid[i], 0.3) for i in (2, 5, 8)]


def _dps_ref(den, prob, y, x_t, t, zeta):
    _, _, _, grid, steps = _dps_run()
    i = grid.index(t)
    assert torch.equal(steps[i - 1].x, x_t)
    return steps[i].extras["correction"]


def _dps_squared(den, prob, y, x_t, t, zeta):
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        err = prob.residual(den(x_in, t), y).flatten(1).pow(2).sum(1)
        (grad,) = torch.autograd.grad(err.sum(), x_in)
    return -zeta * grad


def _dps_no_jacobian(den, prob, y, x_t, t, zeta):
    x0 = den(x_t, t)
    r = prob.residual(x0, y)
    return -zeta * prob.operator.adjoint(r) / r.flatten(1).norm(dim=1)[:, None]


register(Exercise(
    "00.2", "one DPS guidance step: the gradient through the denoiser",
    "dps_correction(den, prob, y, x_t, t, zeta) -> correction (n, d)",
    dps_correction, _dps_ref, _dps_cases,
    [Mistake(_dps_squared, "DPS (Algorithm 1) differentiates the norm |y - A x0_hat|, not its square."),
     Mistake(lambda *a: -dps_correction(*a), "the correction goes downhill: -zeta * grad."),
     Mistake(_dps_no_jacobian, "differentiate with respect to x_t, through the denoiser "
             "(torch.autograd.grad with x_t.requires_grad_()), not with respect to x0_hat.")],
    hint="x_t.requires_grad_(True); err = |A D(x_t, t) - y| per sample; grad of err.sum() w.r.t. "
         "x_t; return -zeta * grad."))


# -- 00.3 one DiffPIR step -------------------------------------------------------------------------
def diffpir_step(den, prob, y, x_t, t, t_prev, lam, zeta, z):
    """Denoise, prox with r_t = s(t) / sqrt(lam), re-noise to t_prev with fresh noise z."""
    sched = den.schedule
    x0_hat = prob.prox(den(x_t, t), y, sched.sigma(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    noise = (1 - zeta) ** 0.5 * eps_hat + zeta ** 0.5 * z
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * noise


def _diffpir_ref(den, prob, y, x_t, t, t_prev, lam, zeta, z):
    """The library's update (samplers/diffpir.py) with the given noise z instead of a fresh draw."""
    sched = den.schedule
    x0_hat = prob.prox(den(x_t, t), y, sched.sigma(t).item() / lam ** 0.5)
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


def _diffpir_lam(den, prob, y, x_t, t, t_prev, lam, zeta, z):
    return diffpir_step(den, prob, y, x_t, t, t_prev, 1 / lam, zeta, z)


def _diffpir_zeta(den, prob, y, x_t, t, t_prev, lam, zeta, z):
    sched = den.schedule
    x0_hat = prob.prox(den(x_t, t), y, sched.sigma(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * ((1 - zeta) * eps_hat + zeta * z)


def _diffpir_eps_prior(den, prob, y, x_t, t, t_prev, lam, zeta, z):
    sched = den.schedule
    x0 = den(x_t, t)
    x0_hat = prob.prox(x0, y, sched.sigma(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps = (x_t - ab ** 0.5 * x0) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * ((1 - zeta) ** 0.5 * eps + zeta ** 0.5 * z)


register(Exercise(
    "00.3", "one DiffPIR step: denoise, proximal data step, re-noise",
    "diffpir_step(den, prob, y, x_t, t, t_prev, lam, zeta, z) -> x_{t_prev}",
    diffpir_step, _diffpir_ref, _diffpir_cases,
    [Mistake(_diffpir_lam, "the prox radius is r_t = s(t) / sqrt(lam): a larger lambda trusts the "
             "prior more, so the radius shrinks."),
     Mistake(_diffpir_zeta, "mix the noises by their variances: sqrt(1 - zeta) eps_hat + sqrt(zeta) z."),
     Mistake(_diffpir_eps_prior, "eps_hat comes from the corrected x0_hat, not from the denoiser's x0.")],
    hint="x0_hat = prob.prox(D(x_t, t), y, s(t) / sqrt(lam)); eps_hat = (x_t - sqrt(ab_t) x0_hat) / "
         "sqrt(1 - ab_t); x' = sqrt(ab') x0_hat + sqrt(1 - ab') (sqrt(1 - zeta) eps_hat + sqrt(zeta) z)."))
