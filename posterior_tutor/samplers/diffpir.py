"""DiffPIR: denoising diffusion models for plug-and-play image restoration
(Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool, CVPR workshops 2023, arXiv 2305.08995).

Half-quadratic splitting inside the reverse diffusion.  At each step t -> t':

    x0       = D(x_t, t)                                        (prior half: one denoiser call)
    x0_hat   = argmin_x |y - A x|^2 + rho_t |x - x0|^2,  rho_t = lambda sigma^2 / s(t)^2
             = prox(x0, y, r_t) with r_t = s(t) / sqrt(lambda)   (data half: closed-form prox)
    eps_hat  = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t)
    x_{t'}   = sqrt(ab_t') x0_hat + sqrt(1 - ab_t') (sqrt(1 - zeta) eps_hat + sqrt(zeta) z)

s(t) = sqrt((1 - ab_t) / ab_t) is the VE noise level.  No backward pass through the network.
Paper defaults: 100 steps, lambda = 1 (official code; deepinv uses 7), zeta = 0.1 (SR, deblur),
inpainting 20 steps with zeta = 1.  Departure: none in the update; ``steps`` places the grid
uniformly (the paper skips uniformly too).
"""
from __future__ import annotations

import torch

from .base import Step, initial_noise, register
from ..schedules import randn


@register("diffpir", "DiffPIR: denoise, proximal data step, re-noise (no backward pass)")
def run(den, prob, y, n, generator=None, shape=None, steps: int = 100, lam: float = 1.0,
        zeta: float = 0.1):
    """DiffPIR.

    steps : denoiser calls; paper 100 (20 for inpainting).
    lam   : lambda, weight of the prior in the data step; official code 1.0, deepinv 7.0.
    zeta  : share of fresh noise in the re-noising; paper 0.1 (1.0 for inpainting).
    """
    sched = den.schedule
    grid = sched.timesteps(steps)
    x = initial_noise(n, shape, y, generator, den)
    with torch.no_grad():
        for i, t in enumerate(grid):
            x0 = den(x, t)
            r_t = sched.sigma(t).item() / lam ** 0.5
            x0_hat = prob.prox(x0, y, r_t)
            ab = sched.abar(t).item()
            eps_hat = (x - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
            t_prev = grid[i + 1] if i + 1 < len(grid) else -1
            if t_prev < 0:
                x = x0_hat
            else:
                ab_prev = sched.abar(t_prev).item()
                z = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                noise = (1 - zeta) ** 0.5 * eps_hat + zeta ** 0.5 * z
                x = ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * noise
            yield Step(i, max(t_prev, 0), x, x0_hat, "prox",
                       {"correction": x0_hat - x0, "x0_prior": x0})
