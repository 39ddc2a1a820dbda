"""Diffusion Posterior Sampling (Chung, Kim, McCann, Klasky, Ye, ICLR 2023, arXiv 2209.14687).

At each of the T ancestral DDPM steps the prior update is followed by a gradient step on the
measurement error of the Tweedie estimate, taken through the denoiser:

    x0_hat   = D(x_t, t)
    x'_{t-1} = DDPM step from (x_t, x0_hat)                     (Ho et al. 2020)
    x_{t-1}  = x'_{t-1} - zeta * grad_{x_t} |y - A(x0_hat(x_t))|

Step form: the public code's, zeta times the gradient of the norm |y - A x0_hat| (not its
square).  The paper's Algorithm 1 writes zeta_i grad |y - A x0_hat|^2 with zeta_i = zeta' /
|y - A x0_hat| (appendix); since grad |r|^2 = 2 |r| grad |r| that is the norm step with
zeta = 2 zeta': the two forms differ by a factor 2, and every zeta quoted here is the code's
(norm form).  Cost: one denoiser call AND one backward pass (vector-Jacobian product through the
network) per step; that backward pass is what Spin and DiffPIR avoid.

Paper (public configs, images in [-1, 1], sigma_y = 0.05): 1000 steps; zeta 0.3 for
super-resolution and deblurring, 0.5 for inpainting, 1.0 only for phase retrieval.

Departures, and why (one line each):
* zeta = 0.3 for every task, inpainting included (paper 0.5 there): one setting for the
  benchmark; 1.0 overshoots on the toy problems (measured: docs/notes/classical_samplers_toy.md,
  'samplers/dps.py').  The guidance acts at every step, so its total grows with the step count:
  fewer steps at the same zeta guide less.
* The step count is an option (``steps``) for teaching on a CPU; the DDPM update then becomes
  DDIM with eta = 1 on a coarser grid.
* x0_hat is not clipped by default (the public code clamps it to [-1, 1], ``clip_denoised``):
  the toy data are not in [-1, 1], and on MNIST (SR4, random inpainting; 50 steps) clipping
  changed the PSNR of the mean by a small fraction of a dB (docs/notes/departures.md, 'clip_x0');
  ``clip_x0=True`` follows the code.
"""
from __future__ import annotations

import torch

from .base import Step, register
from .diffusion import ddim_update, eps_from_x0, initial_noise
from ..checks.options import Clip, Int, Real, clip_range

OPTIONS = {"steps": Int(1, lambda c: c["T"], hint="denoiser calls, at most one per time"),
           "zeta": Real(0, hint="guidance scale"),
           "eta": Real(0, 1, hint="0: DDIM, 1: DDPM"),
           "clip_x0": Clip(hint="clip the Tweedie estimate x0_hat to this range")}


@register("dps", "Diffusion Posterior Sampling: guidance through the denoiser at every step",
          backward_through_denoiser=True, options=OPTIONS)
def run(den, problem, y, n, generator=None, shape=None, steps: int = 1000, zeta: float = 0.3,
        eta: float = 1.0, clip_x0: bool | tuple | None = None):
    """DPS.

    steps : denoiser calls (= backward passes); paper 1000.
    zeta  : guidance scale on grad |y - A(x0_hat)| (norm form, as the public code); paper configs
            0.3 SR/deblur, 0.5 inpainting, 1.0 phase retrieval; default 0.3 (module docstring).
    eta   : 1.0 DDPM noise as in the paper; 0 gives a deterministic (DDIM) prior part.
    clip_x0 : None (default: no clipping), True (clip x0_hat to the image range [-1, 1], as the
            public code) or a (low, high) range; the clipped x0_hat enters both the guidance
            (its gradient through the clamp) and the DDPM step.
    """
    sched = den.schedule
    grid = sched.timesteps(steps)
    x = initial_noise(n, shape, y, generator, den)
    bounds = clip_range(clip_x0)
    for i, t in enumerate(grid):
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            x0 = den(x_in, t)
            if bounds is not None:
                x0 = x0.clamp(*bounds)
            err = problem.residual(x0, y).flatten(1).norm(dim=1)
            (grad,) = torch.autograd.grad(err.sum(), x_in)
        x0 = x0.detach()
        t_prev = grid[i + 1] if i + 1 < len(grid) else -1
        x_prior = ddim_update(sched, x0, eps_from_x0(sched, x, x0, t), t, t_prev, eta, generator)
        correction = -zeta * grad
        x = x_prior + correction
        yield Step(i, max(t_prev, 0), x, x0, "guided", {"correction": correction,
                                                         "before_correction": x_prior})
