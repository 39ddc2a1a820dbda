"""The pieces every diffusion sampler is built from: the starting noise, one DDIM/DDPM update,
the noise estimate behind an x0 estimate, re-noising, the back-projection A^T y and the data
term's Lipschitz constant.  The zero-shot samplers (``samplers/``) and the trained ones (UD2M)
share them; the registry and the ``Step`` protocol live in ``base.py``.

With abar_t the VP schedule's cumulative product (``sched.abar(t)``):

    x_t   = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps                       (forward / re-noise)
    eps   = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)                   (eps from an x0 estimate)
    x_t'  = sqrt(abar_t') x0 + sqrt(1 - abar_t' - c^2) eps + c z,        (DDIM, Song et al. 2021,
    c     = eta sqrt((1 - abar_t') / (1 - abar_t)) sqrt(1 - abar_t / abar_t')   arXiv 2010.02502)
"""
from __future__ import annotations

import torch

from ..checks.values import dtype_of
from ..operators import InverseProblem
from ..schedules import randn


def initial_noise(n, shape, y, generator, den=None):
    """x_T ~ N(0, I) with the device and dtype of y (else of the denoiser's network, else the
    default dtype)."""
    device, dtype = "cpu", dtype_of(den) or torch.get_default_dtype()
    if y is not None:
        device, dtype = y.device, y.dtype
    elif den is not None and getattr(den, "device", None) is not None:
        device = den.device
    elif generator is not None:
        device = generator.device
    return randn((n, *shape), generator=generator, device=device, dtype=dtype)


def ddim_noise(sched, t, t_prev, eta) -> float:
    """c, the std of the fresh noise of the DDIM step t -> t_prev >= 0 (Song et al. 2021):
    c = eta sqrt((1 - ab') / (1 - ab)) sqrt(1 - ab / ab'), at most sqrt(1 - ab')."""
    ab = sched.abar(t).item()
    ab_prev = sched.abar(t_prev).item()
    c = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5
    return min(c, (1 - ab_prev) ** 0.5)


def ddim_update(sched, x0, eps, t, t_prev, eta, generator, noise_scale=ddim_noise):
    """One DDIM / DDPM update from time t to t_prev given x0 and eps estimates.

    x_{t'} = sqrt(ab') x0 + sqrt(1 - ab' - c^2) eps + c z,
    c = eta * sqrt((1 - ab') / (1 - ab)) * sqrt(1 - ab / ab')   (eta = 1: DDPM, eta = 0: DDIM).
    ``noise_scale(sched, t, t_prev, eta) -> c`` is the rule for c (default ``ddim_noise``, the
    one above; UD2M's "code" preset passes the public code's single-step rule, ``presets.py``).
    t_prev < 0 ends the chain at x0; c = 0 (eta = 0) draws no noise at all, so a deterministic
    step leaves the generator (and torch's global random state) untouched."""
    if t_prev < 0:
        return x0
    ab_prev = sched.abar(t_prev).item()
    c = noise_scale(sched, t, t_prev, eta)
    x = ab_prev ** 0.5 * x0 + max(1 - ab_prev - c * c, 0.0) ** 0.5 * eps
    if c == 0:
        return x
    return x + c * randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)


def eps_from_x0(sched, x_t, x0, t):
    ab = sched.abar(t).item()
    return (x_t - ab ** 0.5 * x0) / (1 - ab) ** 0.5


def renoise(sched, x0, t, generator):
    """x_t ~ q(x_t | x0)."""
    return sched.add_noise(x0, int(t), generator=generator)


def back_projection(problem: InverseProblem, y, like, batched_y: bool = False):
    """A^T y shaped like ``like`` (zeros for a nonlinear A, which has no adjoint); ``batched_y``:
    one measurement per sample instead of one for all."""
    op = problem.operator
    if not op.linear:
        return torch.zeros_like(like)
    aty = op.adjoint(y if batched_y else y.unsqueeze(0)).to(like)
    return aty.expand_as(like)


def data_lipschitz(problem, shape) -> float:
    """L of grad g(x) = J^T (A x - y) / sigma^2, i.e. |A|^2 / sigma^2 (a bound for nonlinear A)."""
    op = problem.operator
    sq = op.norm_squared(shape) if op.linear else op.lipschitz_squared(shape)
    return sq / problem.sigma ** 2
