"""DDPM / DDIM prior sampling (Ho et al. 2020; Song, Meng, Ermon 2021, "Denoising Diffusion
Implicit Models").  Ignores the measurement: this is the prior every posterior sampler starts from.

On a decreasing grid t_1 > t_2 > ... > t_N (then t = -1 meaning "clean"):

    x0_hat = D(x_t, t),   eps_hat = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t)
    x_{t'} = sqrt(ab_{t'}) x0_hat + sqrt(1 - ab_{t'} - c^2) eps_hat + c z,
    c = eta sqrt((1 - ab_{t'}) / (1 - ab_t)) sqrt(1 - ab_t / ab_{t'}).

eta = 1 with all T steps is ancestral DDPM sampling; eta = 0 is the deterministic DDIM
(probability-flow) sampler.  The last step returns the final x0 estimate.
"""
from __future__ import annotations

import torch

from .base import Step, register
from .diffusion import ddim_update, eps_from_x0, initial_noise
from ..checks.options import Int, Real

OPTIONS = {"steps": Int(1, lambda c: c["T"], hint="denoiser calls, at most one per time"),
           "eta": Real(0, 1, hint="0: DDIM, 1: DDPM")}


@register("ddpm", "DDPM/DDIM prior sampling (ignores y)", needs_problem=False, options=OPTIONS)
def run(den, problem, y, n, generator=None, shape=None, steps: int = 1000, eta: float = 1.0):
    """Prior samples.

    steps : number of denoiser calls on a uniform grid from T-1 to 0 (DDPM paper: 1000).
    eta   : 1.0 ancestral DDPM noise, 0.0 deterministic DDIM (DDIM paper: 0 with 50-100 steps).
    """
    sched = den.schedule
    grid = sched.timesteps(steps)
    x = initial_noise(n, shape, None, generator, den)
    with torch.no_grad():
        for i, t in enumerate(grid):
            x0 = den(x, t)
            t_prev = grid[i + 1] if i + 1 < len(grid) else -1
            x = ddim_update(sched, x0, eps_from_x0(sched, x, x0, t), t, t_prev, eta, generator)
            yield Step(i, t_prev if t_prev >= 0 else 0, x, x0, "prior")
