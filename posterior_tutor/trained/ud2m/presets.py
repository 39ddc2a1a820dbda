"""UD2M's noise bookkeeping: the public code's ("code") next to this package's measured ("ours").

    ud = pt.ud2m.pretrained("mnist-sr4")             # preset "ours" (what it was trained with)
    xs = ud.with_preset("code").sample(y, n=32)      # the same adapters, the code's bookkeeping

Three quantities of the unfolded sampler (``block.py``, ``sampler.py``) carry a noise level
or a noise amount; the public code (charles-kmc/UD2M @a10f9f8) and this package set them apart:

    quantity                   "code" (public code, in [-1, 1] units)   "ours" (default)
    sigma' in rho and tau      sigma (x13 for inpainting)               sigma_factor * sigma
    sigma' in x^(0)            sigma (also for inpainting)              sigma_factor * sigma
    DDIM noise c (eta = 0.8)   eta sqrt((1-ab')/(1-ab)) sqrt(beta_t)    eta sqrt((1-ab')/(1-ab))
                                                                            sqrt(1 - ab/ab')

where x^(0) = (A^T y sqrt(1 - ab) + sqrt(ab) x_t sigma') / sqrt(sigma'^2 + 1 - ab), rho = sigma' s
/ sqrt(sigma'^2 + s^2), and beta_t = 1 - ab_t / ab_{t-1} the single-step beta of the outer time t.

Why the code's sigma' is sigma.  The code multiplies its noise level by 2 (``sigma_model = 2 *
sigma_model``) to go from [0, 1] image units to [-1, 1]; our ``problem.sigma`` is already in [-1, 1]
units, so the code-equivalent is sigma' = sigma (13 sigma for inpainting, the code's constant).
The data term uses the true sigma in both presets.

The DDIM noise.  With the code's single-step beta_t the fresh-noise variance of an outer step is
c^2 = eta^2 (1 - ab') / (1 - ab) beta_t, a small fraction of x_{t'}'s noise variance 1 - ab',
against most of it for the standard DDIM rule under the same eta = 0.8 (``noise_scale``; the
values on the 3- and 4-step grids: docs/notes/ud2m.md, 'presets.py').  The "code" preset omits
the code solver's second fresh-noise term (its ``ddim_solver(x0, eps, eta, zeta)`` also mixes
fresh noise into the eps direction with weight zeta): the preset reproduces the code's noise
levels sigma' and c, the quantities the shipped samplers were measured on, not its whole solver.

Measured on the shipped samplers: see ``docs/notes/ud2m.md`` (and the samplers' model cards);
the departures of "ours" from "code" are in ``DEPARTURES`` below, one line each with its reason,
and the number that justifies each is in that note ('presets.py').
"""
from __future__ import annotations

import math

from ...operators import Inpainting
from ...samplers.diffusion import ddim_noise

PRESETS = ("ours", "code")
CODE_INPAINTING_FACTOR = 13.0

#: one line each: where "ours" departs from "code" and why (the numbers that keep each one: PSNR
#: of the 32-sample mean, stored benchmark's 4 digits, shipped samplers: docs/notes/ud2m.md,
#: 'presets.py', with the command that regenerates them).
DEPARTURES = {
    "sigma": "sigma' = sigma_factor sigma in rho and tau (shipped: 13 inpainting, as the code; "
             "20 SR where the code has sigma): on SR the code's sigma' fails.",
    "x0": "x^(0) with the same sigma' as rho, not the true sigma: within the spread; kept "
          "because the shipped samplers were trained so.",
    "eta": "DDIM noise by the standard rule, not the code's single-step beta_t (far less fresh "
           "noise): within the spread; eta keeps its DDIM meaning.",
}


PARTS = ("sigma", "x0", "eta")


def check_preset(preset: str) -> str:
    """"ours", "code", or "ours+code_<part>" (ours with one part of the code's bookkeeping, to
    measure each departure alone; parts: sigma (sigma' in rho and tau), x0, eta)."""
    mixes = tuple(f"ours+code_{p}" for p in PARTS)
    if preset not in PRESETS + mixes:
        raise ValueError(f"unknown UD2M preset {preset!r}; use 'ours' (this package's measured "
                         f"default), 'code' (the public code's noise bookkeeping) or one of "
                         f"{', '.join(mixes)} (ours with one part of the code's).")
    return preset


def uses_code(preset: str, part: str) -> bool:
    """Whether ``preset`` takes ``part`` (sigma, x0 or eta) from the public code."""
    return check_preset(preset) == "code" or preset == f"ours+code_{part}"


def sigma_primes(preset: str, problem, sigma_factor: float) -> tuple[float, float]:
    """(sigma' in rho and tau, sigma' in x^(0)) of a block for ``problem`` under ``preset``."""
    sigma = float(problem.sigma)
    ours = sigma_factor * sigma
    factor = CODE_INPAINTING_FACTOR if isinstance(problem.operator, Inpainting) else 1.0
    return (factor * sigma if uses_code(preset, "sigma") else ours,
            sigma if uses_code(preset, "x0") else ours)


def noise_scale(sched, t: int, t_prev: int, eta: float, preset: str) -> float:
    """c, the std of the fresh noise of the outer DDIM step t -> t_prev (see the table above)."""
    return noise_rule(preset)(sched, t, t_prev, eta)


def code_noise(sched, t: int, t_prev: int, eta: float) -> float:
    """The public code's c = eta sqrt((1 - ab') / (1 - ab)) sqrt(beta_t), at most sqrt(1 - ab')."""
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    beta_t = 1 - ab / (sched.abar(t - 1).item() if t > 0 else 1.0)
    c = eta * math.sqrt((1 - ab_prev) / (1 - ab) * beta_t)
    return min(c, math.sqrt(1 - ab_prev))


def noise_rule(preset: str):
    """The rule for c under ``preset``, as ``samplers.diffusion.ddim_update`` takes it
    (``noise_scale=``): the standard DDIM one (``ddim_noise``) or the code's (``code_noise``)."""
    return code_noise if uses_code(preset, "eta") else ddim_noise
