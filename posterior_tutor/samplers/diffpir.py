"""DiffPIR: denoising diffusion models for plug-and-play image restoration
(Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool, CVPR workshops 2023, arXiv 2305.08995).

Half-quadratic splitting inside the reverse diffusion.  At each step t -> t':

    x0       = D(x_t, t)                                        (prior half: one denoiser call)
    x0_hat   = argmin_x |y - A x|^2 + rho_t |x - x0|^2,  rho_t = lambda sigma^2 / s(t)^2
             = prox(x0, y, r_t) with r_t = s(t) / sqrt(lambda)   (data half: closed-form prox)
    eps_hat  = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t)
    x_{t'}   = sqrt(ab_t') x0_hat + sqrt(1 - ab_t') (sqrt(1 - zeta) eps_hat + sqrt(zeta) z)

s(t) = sqrt((1 - ab_t) / ab_t) is the VE noise level.  No backward pass through the network.

Time grid: the official code's default (``skip_type='quad'``), t_i = T - 1 - floor(T sqrt(i / (n - 1))),
last 0: one big first step (999 -> 899 at n = 100), then ever denser towards low noise
(``grid="sqrt"``, ``schedule.timesteps(n, "sqrt")``; deepinv uses the same); ``grid="uniform"``
spaces the n times evenly (measured: docs/notes/diffpir.md, 'samplers/diffpir.py').

lambda and the noise scale.  The official code writes rho_t = lambda sigma01^2 / s(t)^2 with
sigma01 the noise std of the [0, 1]-scale image (sigma01 = sigma / 2 here, images in [-1, 1]), and
deepinv solves its prox with gamma = 1 / (2 rho_t) on 1/2 |A x - y|^2.  In our units (rho_t =
lam sigma^2 / s(t)^2 on |y - A x|^2): our lam = official lambda / 4 = deepinv lambda_ / 2.  Our
default lam = 1 is the official lambda = 4 and deepinv's lambda_ = 2 (deepinv's default 7 is our
3.5).

Paper defaults: 100 steps, zeta = 0.1 (SR, deblur), inpainting 20 steps with zeta = 1.
Departures, and why (one line each):
* lam = 1 (official lambda 4) for every task: the paper's lambda = 1 (our 0.25) did worse on
  Gaussian deblurring with our prior and hardly moved the other tasks (measured:
  docs/notes/diffpir.md, 'samplers/diffpir.py').
* 100 steps with zeta = 0.1 for inpainting too (one setting for all tasks in the benchmark).
* The data prox is applied at the last step too and its x0_hat returned; the official code and
  deepinv skip the data step there (``if seq[i] != seq[-1]``) and return the denoiser's x0: we
  keep one step rule for every t, and at t = 0 (r = s(0) / sqrt(lam) = 0.01) the prox moves x0
  by at most r^2 / (r^2 + sigma^2) = 4% of its residual at sigma = 0.05 (0.2% at the toy's 0.25).
* x0 = D(x_t, t) is not clipped by default (deepinv clamps it to [-1, 1] before the prox): the toy
  data are not in [-1, 1], and on MNIST (SR4, random inpainting) clipping changed the PSNR of the
  mean by a small fraction of a dB (docs/notes/departures.md, 'clip_x0'); ``clip_x0=True`` follows deepinv.
"""
from __future__ import annotations

import torch

from .base import Step, check_grid, register
from .diffusion import initial_noise
from ..checks.options import Choice, Clip, Int, Real, clip_range
from ..schedules import randn

OPTIONS = {"steps": Int(1, lambda c: c["T"], hint="denoiser calls, at most one per time"),
           "lam": Real(0, low_open=True, hint="weight of the prior in the data step"),
           "zeta": Real(0, 1, hint="share of fresh noise in the re-noising"),
           "grid": Choice("sqrt", "uniform",
                          hint="'sqrt' (the official code's grid) or 'uniform'"),
           "clip_x0": Clip(hint="clip the denoiser's x0 to this range before the prox")}


@register("diffpir", "DiffPIR: denoise, proximal data step, re-noise (no backward pass)",
          options=OPTIONS, check=lambda den, problem, shape, o: check_grid(
              "diffpir", den.schedule, o["steps"], o["grid"]))
def run(den, problem, y, n, generator=None, shape=None, steps: int = 100, lam: float = 1.0,
        zeta: float = 0.1, grid: str = "sqrt", clip_x0: bool | tuple | None = None):
    """DiffPIR.

    steps : denoiser calls; paper 100 (20 for inpainting).
    lam   : weight of the prior in the data step; our 1 = official lambda 4 = deepinv lambda_ 2.
    zeta  : share of fresh noise in the re-noising; paper 0.1 (1.0 for inpainting).
    grid  : "sqrt" (the official code's, dense at low noise) or "uniform".
    clip_x0 : None (default: no clipping), True (clip the denoiser's x0 to the image range
            [-1, 1] before the prox, as deepinv) or a (low, high) range.
    """
    if grid not in ("sqrt", "uniform"):
        raise ValueError(f"DiffPIR's grid is 'sqrt' (the official code's) or 'uniform', got {grid!r}.")
    sched = den.schedule
    grid = sched.timesteps(steps, grid)
    x = initial_noise(n, shape, y, generator, den)
    bounds = clip_range(clip_x0)
    with torch.no_grad():
        for i, t in enumerate(grid):
            x0 = den(x, t)
            if bounds is not None:
                x0 = x0.clamp(*bounds)
            r_t = sched.s(t).item() / lam ** 0.5
            x0_hat = problem.prox(x0, y, r_t)
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
