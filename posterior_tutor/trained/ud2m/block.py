"""The unfolded block of UD2M and its data prox (Mbakam, Spence, Pereyra 2025, arXiv 2507.02686;
public code charles-kmc/UD2M @a10f9f8).

Notation: s(t) = sqrt((1 - ab_t) / ab_t) the VE noise level, D the (adapted) Tweedie denoiser,
sigma the measurement noise, sigma' = ``sigma_factor`` sigma (``presets.py``: "ours" or "code").
At an outer time t the block L(x_t, y, t) estimates x0 from p(x0 | x_t, y) in K iterations:

    rho   = sigma' s / sqrt(sigma'^2 + s^2),     s = s(t)
    tau   = argmin_tau |s(tau) - rho|                                   (schedule.t_from_s)
    x^(0) = (A^T y sqrt(1 - ab_t) + sqrt(ab_t) x_t sigma') / sqrt(sigma'^2 + 1 - ab_t)
    for k = 1..K:
        z_k   = argmin_z |y - A z|^2 / (2 lambda sigma^2) + |z - x^(k-1)|^2 / (2 rho^2)
                        + |z - x_t / sqrt(ab_t)|^2 / (2 s^2)
        z~_k  = sqrt(ab_tau) z_k + sqrt(1 - ab_tau) eps_k,   eps_k ~ N(0, I)   (re-noise to tau)
        x^(k) = D(z~_k, tau)                                                (one network call)

The prox with two quadratics.  The last two terms are one quadratic in z,
|z - a|^2 / (2 rho^2) + |z - b|^2 / (2 s^2) = |z - m|^2 / (2 r^2) + const with
1 / r^2 = 1 / rho^2 + 1 / s^2 and m = r^2 (a / rho^2 + b / s^2), a = x^(k-1), b = x_t / sqrt(ab_t)
(b / s^2 = sqrt(ab_t) x_t / (1 - ab_t), so b, ~160 at t = 999, is never formed).  Multiplying the
objective by lambda does not move its minimiser, so z_k = problem.prox(m, y, r / sqrt(lambda)): the
problem's own prox, and lambda's gradient flows through the radius (``tests/test_unfolding.py``
checks it against a dense solve of the three-term normal equation).

Departures (measurements: docs/notes/ud2m.md):
* Exact proxes for every operator of ``pt.operators`` (the code approximates SR's); a nonlinear A
  has no A^T y, so its x^(0) drops that term.
* No hard data replacement for inpainting between iterations: the exact prox already enforces
  the data, and one rule for every operator is what the general-operator mode needs.
* x^(0) uses the same sigma' as rho (the code: the true sigma): within the spread on the shipped
  samplers, ``with_preset("ours+code_x0")`` (measured: docs/notes/ud2m.md, 'block.py').
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...operators import InverseProblem
from ...samplers.diffusion import back_projection
from ...schedules import randn
from . import presets

__all__ = ["combined_quadratic", "data_prox", "initial_estimate", "BlockStep", "block_levels",
           "unfolded_block"]


def combined_quadratic(x_prev, x_t, ab: float, rho: float, s: float):
    """(m, r) such that |z - x_prev|^2/(2 rho^2) + |z - x_t/sqrt(ab)|^2/(2 s^2)
    = |z - m|^2/(2 r^2) + const."""
    r2 = 1.0 / (1.0 / rho ** 2 + 1.0 / s ** 2)
    m = r2 * (x_prev / rho ** 2 + math.sqrt(ab) / (1 - ab) * x_t)  # b / s^2 = sqrt(ab) x_t / (1-ab)
    return m, math.sqrt(r2)


def data_prox(problem: InverseProblem, z, y, radius, batched_y: bool = False):
    """argmin_x |A x - y|^2/(2 sigma^2) + |x - z|^2/(2 radius^2); ``batched_y``: one y per sample
    (training: ``problem.prox_batched``, operators.py / prox.py).  Differentiable in z and in a
    tensor radius: exactly for linear operators; for a nonlinear one through the unrolled
    Gauss-Newton steps (their Jacobians are taken at detached iterates, so it is not the
    implicit-function gradient, but lambda and z do get one)."""
    if batched_y:
        return problem.prox_batched(z, y, radius)
    return problem.prox(z, y, radius)


def initial_estimate(problem, x_t, y, ab: float, sp: float, batched_y: bool):
    """x^(0) = (A^T y sqrt(1 - ab) + sqrt(ab) x_t sigma') / sqrt(sigma'^2 + 1 - ab) (the code)."""
    aty = back_projection(problem, y, x_t, batched_y)
    return (aty * math.sqrt(1 - ab) + math.sqrt(ab) * sp * x_t) / math.sqrt(sp ** 2 + 1 - ab)


@dataclass
class BlockStep:
    k: int                  # 1..K
    z: torch.Tensor         # prox output z_k
    noised: torch.Tensor    # z~_k, the denoiser's input at tau
    x: torch.Tensor         # x^(k) = D(z~_k, tau)
    tau: int
    rho: float


def block_levels(sched, t: int, sigma: float, sigma_factor: float):
    """(ab_t, s(t), sigma', rho, tau) of the block at outer time t."""
    ab, s = sched.abar(t).item(), sched.s(t).item()
    sp = sigma_factor * sigma
    rho = sp * s / math.sqrt(sp ** 2 + s ** 2)
    return ab, s, sp, rho, sched.t_from_s(rho)


def unfolded_block(den, log_lam, problem, x_t, y, t: int, K: int, sigma_factor: float = 2.0,
                   generator=None, batched_y: bool = False, preset: str = "ours"):
    """The block L(x_t, y, t): a ``BlockStep`` per iteration k = 1..K (the last x is x^(K));
    ``preset``: whose sigma' (``presets``: "ours" = sigma_factor sigma, or "code")."""
    sp, sp_init = presets.sigma_primes(preset, problem, sigma_factor)
    ab, s, sp, rho, tau = block_levels(den.schedule, t, 1.0, sp)
    ab_tau = den.schedule.abar(tau).item()
    x = initial_estimate(problem, x_t, y, ab, sp_init, batched_y)
    for k in range(1, K + 1):
        m, r = combined_quadratic(x, x_t, ab, rho, s)
        z = data_prox(problem, m, y, torch.exp(-0.5 * log_lam) * r, batched_y)
        noise = randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        noised = math.sqrt(ab_tau) * z + math.sqrt(1 - ab_tau) * noise
        x = den(noised, tau)
        yield BlockStep(k, z, noised, x, tau, rho)

