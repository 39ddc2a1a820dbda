"""PnP-ULA (Laumont, De Bortoli, Almansa, Delon, Durmus, Pereyra, SIAM J. Imaging Sci. 2022,
arXiv 2103.04715) and its Moreau-Yosida relative MYULA (Durmus, Moulines, Pereyra, SIAM J.
Imaging Sci. 2018).

An unadjusted Langevin chain on the posterior, with the prior score taken from a denoiser at a
small fixed VE noise level eps, a standard deviation (the option ``denoiser_level``, not the
noise prediction ``den.eps``; Tweedie: grad log p_eps(x) = (D_eps(x) - x) / eps^2):

    x <- x + delta [ alpha (D_eps(x) - x) / eps^2  -  grad g(x) ] + sqrt(2 delta) z.

Here D_eps(x) = D(sqrt(ab_t0) x, t0) with s(t0) = eps, so a VP denoiser serves as the VE one.
With ``likelihood="moreau"`` (MYULA) grad g is replaced by the gradient of its Moreau-Yosida
envelope, (x - prox_{lam g}(x)) / lam, which only needs the proximal step (non-smooth data terms).
Step size as in the paper's condition delta < 1 / (3 L), L = |A|^2 / sigma^2 + alpha / eps^2.
The chain targets the posterior under the eps-smoothed prior; its bias vanishes as eps, delta -> 0.

Parameterisation.  The paper's eps is the denoiser's noise *variance* (D_eps denoises N(0, eps I),
score (D_eps(x) - x) / eps, L = L_y + alpha L_D / eps); ours, ``denoiser_level``, is its standard
deviation: paper eps = denoiser_level^2, hence the eps^2 above (same chain, same step bound).

Paper defaults (images in [0, 1]): eps = (5/255)^2, i.e. a noise std of 5/255 (0.039 on [-1, 1]),
alpha = 1, delta at the bound, hundreds of thousands of iterations with a projection on [0, 1].

Departures, and why (one line each):
* eps = 0.05 on [-1, 1] (a std, t0 = 11), not the paper's sqrt(eps) = 5/255 on [0, 1] = 0.039
  on [-1, 1] (t0 = 8): with the default 3000 steps the larger eps allows a larger step and
  mixes faster (measured: docs/notes/classical_samplers_toy.md, 'samplers/pnp_ula.py');
  ``denoiser_level=2 * 5 / 255`` gives the paper's value.
* The box projection term is left out (the toy problems have unbounded support).
* The number of iterations is an option, and the n parallel chains each return their last
  state (no thinning of one long chain).
"""
from __future__ import annotations

import torch

from .base import Step, register
from .diffusion import data_lipschitz, initial_noise
from ..checks.options import Choice, Int, Real
from ..schedules import randn

OPTIONS = {"steps": Int(1),
           "denoiser_level": Real(0, low_open=True,
                                  hint="the VE noise level eps of the denoiser used as the prior"),
           "alpha": Real(0, hint="weight of the prior score"),
           "step_scale": Real(0, 1, low_open=True,
                               hint="delta = step_scale / L; the paper's stability bound is 1/3"),
           "likelihood": Choice("gradient", "moreau")}


@register("pnp_ula", "PnP-ULA / MYULA: Langevin with a denoiser prior at a fixed small noise",
          options=OPTIONS)
def run(den, problem, y, n, generator=None, shape=None, steps: int = 3000,
        denoiser_level: float = 0.05, alpha: float = 1.0, step_scale: float = 1 / 3,
        likelihood: str = "gradient"):
    """PnP-ULA.

    steps      : Langevin iterations (one denoiser call each); the paper runs 10^5 to 10^6.
    denoiser_level : eps, the VE noise level (a standard deviation) of the denoiser used as the
                 prior, in the signal's units ([-1, 1] for images); the paper's eps is its square,
                 (5/255)^2 on [0, 1], i.e. denoiser_level = 0.039 here (module docstring).
    alpha      : weight of the prior score; paper 1.
    step_scale : delta = step_scale / L; the paper's stability bound is 1/3.
    likelihood : "gradient" (PnP-ULA) or "moreau" (MYULA: Moreau-Yosida envelope via the prox).
    """
    if likelihood not in ("gradient", "moreau"):
        raise ValueError(f"likelihood must be 'gradient' or 'moreau', got {likelihood!r}.")
    sched = den.schedule
    t0 = sched.t_from_s(denoiser_level)
    s0, ab0 = sched.s(t0).item(), sched.abar(t0).item()
    L_data = data_lipschitz(problem, shape)
    delta = step_scale / (L_data + alpha / s0 ** 2)
    lam = 1.0 / L_data  # Moreau-Yosida parameter (Durmus et al.: lam of the order of 1/L)
    x = initial_noise(n, shape, y, generator, den)
    with torch.no_grad():
        for i in range(steps):
            x0 = den(ab0 ** 0.5 * x, t0)
            prior_drift = alpha * (x0 - x) / s0 ** 2
            if likelihood == "gradient":
                data_drift = -problem.grad_data_fit(x, y)
            else:
                data_drift = -(x - problem.prox(x, y, lam ** 0.5)) / lam
            z = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + delta * (prior_drift + data_drift) + (2 * delta) ** 0.5 * z
            yield Step(i, None, x, x0, "langevin", {"correction": delta * data_drift})
