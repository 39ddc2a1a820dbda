"""Chapter 03 exercises: one ULA step, ULA's step-size bias on a Gaussian, LATINO's inpainting prox.

Equations: x <- x + delta grad log pi(x) + sqrt(2 delta) z (samplers/pnp_ula.py); for pi = N(0, v)
the chain is AR(1), x' = (1 - delta / v) x + sqrt(2 delta) z, whose stationary variance is
2 delta / (1 - (1 - delta / v)^2) = v / (1 - delta / (2 v)); the prox of ``Inpainting``
(operators.py) that LATINO's data half calls (samplers/latino.py).
"""
from __future__ import annotations

import torch

from .base import Exercise, Mistake, register
from ..operators import Inpainting


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 03.1 one ULA step -----------------------------------------------------------------------------
def ula_step(x, score, delta, z):
    """x + delta score(x) + sqrt(2 delta) z."""
    return x + delta * score(x) + (2 * delta) ** 0.5 * z


def _ula_ref(x, score, delta, z):
    """The PnP-ULA update of samplers/pnp_ula.py with the drift given by ``score``."""
    return x + delta * score(x) + (2 * delta) ** 0.5 * z


def _quadratic_score(x):
    return -(x - torch.tensor([1.0, -0.5])) / torch.tensor([0.5, 2.0])


def _ula_cases():
    g = _gen(0)
    return [(torch.randn(6, 2, generator=g), _quadratic_score, d, torch.randn(6, 2, generator=g))
            for d in (0.01, 0.05, 0.2)]


register(Exercise(
    "03.1", "one step of the unadjusted Langevin algorithm", "ula_step(x, score, delta, z) -> x_next",
    ula_step, _ula_ref, _ula_cases,
    [Mistake(lambda x, s, d, z: x + d * s(x) + d ** 0.5 * z,
             "the noise is sqrt(2 delta) z: the Langevin diffusion has sqrt(2) dW."),
     Mistake(lambda x, s, d, z: x - d * s(x) + (2 * d) ** 0.5 * z,
             "move *up* the log-density: + delta * score(x)."),
     Mistake(lambda x, s, d, z: x + d * s(x) + 2 * d * z,
             "the noise scale is a square root, sqrt(2 delta), not 2 delta.")],
    hint="x + delta * score(x) + sqrt(2 * delta) * z."))


# -- 03.2 ULA's bias on a Gaussian target ---------------------------------------------------------
def ula_stationary_variance(v, delta):
    """Stationary variance of ULA on N(0, v) with step delta < 2 v: v / (1 - delta / (2 v))."""
    return v / (1 - delta / (2 * v))


def _variance_ref(v, delta):
    a = 1 - delta / v                       # the AR(1) coefficient of x' = a x + sqrt(2 delta) z
    return 2 * delta / (1 - a * a)


def _variance_cases():
    return [(1.0, 0.1), (0.09, 0.02), (2.5, 1.0), (0.5, 0.6)]


register(Exercise(
    "03.2", "ULA step-size experiment: the stationary variance on a Gaussian target",
    "ula_stationary_variance(v, delta) -> a number", ula_stationary_variance, _variance_ref,
    _variance_cases,
    [Mistake(lambda v, d: v, "ULA is *unadjusted*: for delta > 0 the chain's variance is larger "
             "than v. Write x' = (1 - delta/v) x + sqrt(2 delta) z and solve Var = a^2 Var + 2 delta."),
     Mistake(lambda v, d: v / (1 - d / v), "solve Var = (1 - delta/v)^2 Var + 2 delta exactly: "
             "1 - (1 - delta/v)^2 = (delta/v)(2 - delta/v)."),
     Mistake(lambda v, d: v * (1 + d / (2 * v)), "that is only the first-order expansion; "
             "give the exact stationary variance.")],
    hint="x' = a x + sqrt(2 delta) z with a = 1 - delta / v; at stationarity Var = a^2 Var + 2 delta."))


# -- 03.3 LATINO's proximal step for inpainting ---------------------------------------------------
def inpainting_prox(u, y, mask, sigma, rho):
    """argmin_x |M x - y|^2 / (2 sigma^2) + |x - u|^2 / (2 rho^2), pixel by pixel; rho: (n,)."""
    r2 = rho.reshape(-1, *([1] * (u.ndim - 1))) ** 2
    return torch.where(mask.bool(), (r2 * y + sigma ** 2 * u) / (r2 + sigma ** 2), u)


def _prox_ref(u, y, mask, sigma, rho):
    return Inpainting(mask).prox(u, y, rho, sigma)


def _prox_cases():
    g, out = _gen(1), []
    for shape, sigma in [((1, 6, 6), 0.05), ((1, 5, 7), 0.3), ((2, 4, 4), 1.0)]:
        mask = (torch.rand(shape, generator=g) < 0.5).float()
        y = mask * torch.randn(shape, generator=g)
        out.append((torch.randn(4, *shape, generator=g), y, mask, sigma,
                    0.05 + torch.rand(4, generator=g)))
    return out


def _prox_swapped(u, y, mask, sigma, rho):
    r2 = rho.reshape(-1, 1, 1, 1) ** 2
    return torch.where(mask.bool(), (sigma ** 2 * y + r2 * u) / (r2 + sigma ** 2), u)


def _prox_no_mask(u, y, mask, sigma, rho):
    r2 = rho.reshape(-1, 1, 1, 1) ** 2
    return (r2 * y + sigma ** 2 * u) / (r2 + sigma ** 2)


def _prox_not_squared(u, y, mask, sigma, rho):
    r = rho.reshape(-1, 1, 1, 1)
    return torch.where(mask.bool(), (r * y + sigma * u) / (r + sigma), u)


register(Exercise(
    "03.3", "LATINO's proximal data step for inpainting",
    "inpainting_prox(u, y, mask, sigma, rho) -> x (n, C, H, W); rho has one value per sample",
    inpainting_prox, _prox_ref, _prox_cases,
    [Mistake(_prox_swapped, "each term is weighted by the *other* variance: an observed pixel is "
             "(rho^2 y + sigma^2 u) / (rho^2 + sigma^2), so small sigma trusts y."),
     Mistake(_prox_no_mask, "a missing pixel (mask 0) has no data term: there the prox returns u."),
     Mistake(_prox_not_squared, "the weights are variances: rho^2 and sigma^2, not rho and sigma.")],
    hint="observed pixels: (rho^2 y + sigma^2 u) / (rho^2 + sigma^2); missing pixels: u; "
         "rho.reshape(-1, 1, 1, 1) broadcasts one rho per sample."))
