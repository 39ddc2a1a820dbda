"""LATINO: Langevin sampling with a "noise, then denoise in one call" prior half and a proximal data
half (Spagnoletti, Prost, Almansa, Papadakis, Pereyra 2025, "LATINO-PRO", arXiv 2503.12615;
public code LATINO-PRO/LATINO-PRO @b0168a9).  Pixel space, as this project implements it.

On a decreasing grid t_1 > ... > t_K (default K = 8: 999, 874, ..., 124), from x = A^T y:

    z      = sqrt(ab_t) x + sqrt(1 - ab_t) eps,   eps ~ N(0, I)       (noise to t_k)
    u      = D(z, t_k)                                                 (denoise: one network call)
    x      = prox_{rho_k}(u, y) = argmin_x |A x - y|^2/(2 sigma^2) + |x - u|^2/(2 rho_k^2),
    rho_k^2 = delta_k (1 - ab_{t_k})

with the step size delta_k = c |A u - y| (adaptive, as in the public code; |.| is the Euclidean norm
of one sample's residual) or a fixed delta.  The chain is a splitting of an (overdamped) Langevin
diffusion whose prior half is the consistency-model "noise to t, jump to t = 0" step; the prox is the
implicit (backward) step on the likelihood, so it is stable for any delta.

Departures from the paper/code, and why:
* pixel space, Tweedie denoiser: the paper uses a latent consistency model (SDXL + DMD2), whose one
  call returns a *sample* of p(x0 | x_t); our Tweedie denoiser returns the *mean* E[x0 | x_t], so
  each prior half shrinks towards the mean and the chain under-disperses.  Chapter 03 measures by how
  much against the exact posterior.  This is the method as one would run it with a standard
  diffusion prior, not a defect we hide.
* the public code starts from clip(A^T y) and re-encodes; we start from A^T y (clipped to the data
  range only for images, where the prior lives in [-1, 1]).
* c: in pixel units, as in the public code (its residual |A u - y| is taken on the decoded image,
  in the measurement's units), but |A u - y| grows as sqrt(m) with the number m of measurements,
  so the code's per-task values (blur 5e-4, SR 0.3, inpainting a fixed delta 1.0, for 1024^2 RGB
  images) do not carry over to m = 1 (2D toy) or m = 64..1024 (MNIST); we swept c in {0.05, ..., 5}
  on the 2D and d = 16 toy problems (exact denoiser, sliced Wasserstein to the exact posterior):
  flat for c in [0.5, 5], c = 1 best in both, so c = 1 is the default; ``delta``: the fixed rule.
* u is not clipped by default (the public code clamps its decoded image to [-1, 1]): the toy data
  are not in [-1, 1], and on MNIST clipping changed the PSNR of the mean by a small fraction of a
  dB (docs/notes/departures.md, 'clip_x0'); ``clip_x0=True`` follows the code.
"""
from __future__ import annotations

import torch

from .base import Step, register
from .diffusion import back_projection
from ..checks.options import Clip, Int, Real, clip_range
from ..schedules import randn

OPTIONS = {"steps": Int(1), "t_max": Int(0, lambda c: c["T"] - 1),
           "t_min": Int(0, lambda c: c["t_max"], hint="the last time, at most t_max"),
           "c": Real(0, 1e6, low_open=True, hint="adaptive step size c |A u - y|"),
           "delta": Real(0, 1e6, low_open=True, optional=True,
                          hint="a fixed step size; None for the adaptive rule"),
           "clip_x0": Clip(hint="clip the denoiser's output u to this range before the prox")}


def latino_grid(steps: int, t_max: int = 999, t_min: int = 124) -> list[int]:
    """K equally spaced times from t_max down to t_min (K = 8 gives 999, 874, ..., 124)."""
    if steps < 1:
        raise ValueError(f"LATINO needs at least one step, got steps={steps}.")
    if steps == 1:
        return [t_max]
    return [round(t_max - k * (t_max - t_min) / (steps - 1)) for k in range(steps)]


def step_size(problem, u, y, c: float, delta: float | None) -> torch.Tensor:
    """delta_k per sample, shape (n,): fixed ``delta``, or c |A u - y| (the public code's rule)."""
    if delta is not None:
        return torch.full((u.shape[0],), float(delta), device=u.device, dtype=u.dtype)
    return c * problem.residual(u, y).flatten(1).norm(dim=1)


def start_point(problem, y, n, shape):
    """A^T y (zeros for a nonlinear A), clipped to [-1, 1] for images; one copy per sample."""
    x = back_projection(problem, y, torch.zeros((n, *shape), device=y.device, dtype=y.dtype))
    return x.clamp(-1, 1) if len(shape) == 3 else x.clone()


@register("latino", "LATINO: noise then denoise in one call, proximal data step (K = 8)",
          options=OPTIONS)
def run(den, problem, y, n, generator=None, shape=None, steps: int = 8, t_max: int = 999,
        t_min: int = 124, c: float = 1.0, delta: float | None = None,
        clip_x0: bool | tuple | None = None):
    """LATINO (pixel space).

    steps : K, chain length = network calls; paper 8.
    t_max, t_min : first and last time of the equally spaced grid; paper 999 and 124.
    c     : adaptive step size delta_k = c |A u - y|, pixel units; default 1.0 (the public code
            tunes c per task for 1024^2 images, and |A u - y| grows as the square root of the
            measurement size; docs/notes/latino.md, 'Step size c').
    delta : if given, a fixed step size instead of the adaptive rule.
    clip_x0 : None (default: no clipping), True (clip u to the image range [-1, 1] before the prox
            and the step size, as the public code clamps its decoded image) or a (low, high) range.
    """
    sched = den.schedule
    x = start_point(problem, y, n, shape)
    bounds = clip_range(clip_x0)
    with torch.no_grad():
        for k, t in enumerate(latino_grid(steps, t_max, t_min)):
            ab = sched.abar(t).item()
            z = ab ** 0.5 * x + (1 - ab) ** 0.5 * randn(x.shape, generator=generator,
                                                        device=x.device, dtype=x.dtype)
            u = den(z, t)
            if bounds is not None:
                u = u.clamp(*bounds)
            rho = (step_size(problem, u, y, c, delta) * (1 - ab)).sqrt().clamp_min(1e-6)
            x = problem.prox(u, y, rho)
            yield Step(k, t, x, u, "prox", {"correction": x - u, "noised": z, "rho": rho})
