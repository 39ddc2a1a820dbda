"""DAPS: Decoupled Annealing Posterior Sampling (Zhang, Chen, Zheng, Yang, Bouman, Rozet,
Hsu, CVPR 2025, arXiv 2407.01521).

Anneal over noise levels t_1 > ... > t_L.  At each level, decouple x_t from x0:

    x0_hat = probability-flow ODE solution from x_{t_i} to 0     (``ode_steps`` DDIM eta=0 calls)
    x0     ~ p(x0 | x_t, y)  ∝  N(x0; x0_hat, r_i^2 I) exp(-g(x0)),   r_i = r_scale * s(t_i),
             approximately, by ``langevin_steps`` Langevin steps started at x0_hat:
             x0 <- x0 - eta [ (x0 - x0_hat) / r_i^2 + grad g(x0) ] + sqrt(2 eta) z
    x_{t_{i+1}} = sqrt(ab) x0 + sqrt(1 - ab) eps                  (re-noise to the next level)

and return x0 after the last level.  Paper defaults (EDM, sigma from 100 to 0.1): 200 levels x
5 ODE steps = 1000 network calls ("DAPS-1K"), 100 Langevin steps per level, r_t = sigma_t,
Langevin lr 1e-4 decaying to 1e-6, no backward pass through the network.

Departures, and why (one line each):
* The VP schedule of this package replaces EDM (levels spaced as EDM's rho = 7 grid, mapped to
  the nearest integer t).
* The Langevin step is eta = lr / L_i with L_i = 1 / r_i^2 + |A|^2 / sigma^2, the local Lipschitz
  constant, instead of a hand-tuned lr per task; it keeps the chain stable for every operator and
  noise level without tuning.
* The data term is g(x0) = |y - A x0|^2 / (2 sigma^2) with the true sigma; every public config
  fixes the Langevin likelihood's tau = 0.01 whatever the noise, and its term is |y - A x0|^2 /
  tau^2 (the loss has no 1/2), i.e. 2 sigma^2 / tau^2 = 50x the data weight at sigma = 0.05: we
  sample the exact posterior, which the toy benchmark measures against.
* The inner ODE takes ``ode_steps`` DDIM steps uniform in t from t_i to 0; the public code spaces
  them as EDM's rho = 7 grid in sigma from s(t_i) to 0.01 (denser at low noise): one grid rule for
  the package; on the toy problems the two grids gave sliced Wasserstein distances within 4% of
  each other (docs/notes/departures.md, 'DAPS').
"""
from __future__ import annotations

import torch

from .base import Step, register
from .diffusion import data_lipschitz, ddim_update, eps_from_x0, initial_noise, renoise
from ..checks.options import Int, Real
from ..schedules import randn

OPTIONS = {"levels": Int(1), "ode_steps": Int(1), "langevin_steps": Int(0),
           "lr": Real(0, 2, low_open=True, high_open=True,
                      hint="the Langevin step as a fraction of 1/L; 2 is the stability limit"),
           "r_scale": Real(0, low_open=True, hint="r_t = r_scale * s(t)")}


def annealing_grid(sched, levels: int, s_max: float = 100.0, s_min: float = 0.1,
                   rho: float = 7.0) -> list[int]:
    """EDM-spaced noise levels (Karras et al. 2022) mapped to integer VP times, decreasing."""
    s_max = min(s_max, sched.s(sched.T - 1).item())
    i = torch.linspace(0, 1, levels, dtype=torch.float64)
    s = (s_max ** (1 / rho) + i * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    return [sched.t_from_s(v.item()) for v in s]


def ode_x0(den, x_t, t, ode_steps, generator=None):
    """x0 estimate by ``ode_steps`` deterministic DDIM steps from t to 0 (eta = 0: no draw;
    ``generator`` is passed on so that a change of eta could never reach the global RNG)."""
    sched = den.schedule
    grid = sched.timesteps(min(ode_steps, t + 1), t_max=t)
    x = x_t
    for j, tj in enumerate(grid):
        x0 = den(x, tj)
        t_next = grid[j + 1] if j + 1 < len(grid) else -1
        x = ddim_update(sched, x0, eps_from_x0(sched, x, x0, tj), tj, t_next, 0.0, generator)
    return x


@register("daps", "DAPS: anneal, ODE x0 estimate, Langevin on x0 with the likelihood, re-noise",
          options=OPTIONS, steps_of=lambda o: o["levels"])
def run(den, problem, y, n, generator=None, shape=None, levels: int = 200, ode_steps: int = 5,
        langevin_steps: int = 100, lr: float = 0.2, r_scale: float = 1.0):
    """DAPS.

    levels         : annealing levels; paper 200 (DAPS-1K) or 50.
    ode_steps      : denoiser calls per level for the ODE estimate of x0; paper 5.
    langevin_steps : Langevin steps on x0 per level (operator calls only); paper 100.
    lr             : Langevin step as a fraction of 1 / L (see the module docstring).
    r_scale        : r_t = r_scale * s(t); paper 1.
    """
    sched = den.schedule
    grid = annealing_grid(sched, levels)
    L_data = data_lipschitz(problem, shape)
    x = initial_noise(n, shape, y, generator, den) * 1.0
    with torch.no_grad():
        for i, t in enumerate(grid):
            x0_hat = ode_x0(den, x, t, ode_steps, generator)
            r2 = (r_scale * sched.s(t).item()) ** 2
            step = lr / (1 / r2 + L_data)
            x0 = x0_hat.clone()
            for _ in range(langevin_steps):
                grad = (x0 - x0_hat) / r2 + problem.grad_data_fit(x0, y)
                z = randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
                x0 = x0 - step * grad + (2 * step) ** 0.5 * z
            last = i + 1 == len(grid)
            x = x0 if last else renoise(sched, x0, grid[i + 1], generator)
            yield Step(i, 0 if last else grid[i + 1], x, x0, "anneal",
                       {"correction": x0 - x0_hat, "x0_ode": x0_hat})
