"""APS's prior term: the diffusion ELBO as a surrogate of -log p(x) (Mammadov, Chung, Ye 2024,
arXiv 2407.17907, after Feng & Bouman 2024; REFERENCES.md).

    R(x) = -ELBO(x) + const = sum_{t >= t_min} w_t E_eps |eps_theta(x_t, t) - eps|^2,
    x_t = sqrt(ab_t) x + sqrt(1 - ab_t) eps,     w_t = beta_t / (2 alpha_t (1 - ab_t))

(the continuous-time likelihood weighting g^2 / (2 sigma_t^2) of score_prior, discretised on this
package's schedule), estimated with t importance-sampled from p(t) = w_t / Z, so every draw
carries the same weight Z = sum_t w_t; ``t_samples`` draws (t, eps) per x.  Gradients flow through
the frozen denoiser into x: for a Gaussian prior and the exact denoiser the expected x-gradient of
R equals -grad log p(x) to within 1% on the default schedule (tests/test_amortized.py).

* ``prior_term="elbo_sg"`` (ablation): the same value, but the gradient drops the denoiser's Jacobian,
  2 Z sqrt(ab_t) (eps_theta(x_t, t) - eps) (score distillation; no backward pass through the
  network; a biased gradient).
* ``prior_term=callable``: R(x) = -log_prob(x), an exact log density (e.g. ``gmm.log_prob``).

Departures:
* The discrete DDPM schedule (t >= t_min = 1), not the continuous VP-SDE on [1e-3, 1]: it is the
  schedule the package's denoisers were trained on.
* A denoiser with no parameters (the exact GMM one, which loops over distinct times) shares the t
  draws in ``t_groups`` = 16 groups per batch: each x still gets t ~ p(t), only draws of
  different x are correlated (a 16x cheaper exact denoiser).
"""
from __future__ import annotations

import math

import torch

from ...checks.values import check_generator
from ...denoisers import Denoiser
from ...schedules import VPSchedule, randn

__all__ = ["PRIOR_TERMS", "elbo_weights", "draw_times", "neg_elbo", "prior_term"]

PRIOR_TERMS = ("elbo", "elbo_sg")   # the named choices of R(x); a callable is the third

def elbo_weights(sched: VPSchedule, t_min: int = 1) -> torch.Tensor:
    """w_t = beta_t / (2 alpha_t (1 - ab_t)) for t >= t_min, 0 below (float64, shape (T,))."""
    if not (isinstance(t_min, int) and 0 <= t_min < sched.T):
        raise ValueError(f"t_min must be an integer in 0..{sched.T - 1}, got {t_min!r}.")
    b, ab = sched.betas, sched.alpha_bar
    w = b / (2 * (1 - b) * (1 - ab))
    w[:t_min] = 0
    return w


def draw_times(w: torch.Tensor, n: int, how: str, groups, generator, device):
    """(t, weight): n times from p(t) = w / Z ("importance", weight Z) or U{t_min..T-1}
    ("uniform", weight w_t (T - t_min)); ``groups``: only that many distinct draws, shared."""
    gdev = generator.device if generator is not None else "cpu"
    k = n if groups is None else min(int(groups), n)
    if how == "importance":
        p = (w / w.sum()).float().to(gdev)
        t = torch.multinomial(p, k, replacement=True, generator=generator)
    else:
        lo = int((w > 0).nonzero()[0])
        t = torch.randint(lo, len(w), (k,), generator=generator, device=gdev)
    if k < n:
        t = t.repeat_interleave(math.ceil(n / k))[:n]
    t = t.to(device)
    if how == "importance":
        weight = torch.full((n,), float(w.sum()), device=device)
    else:
        weight = (w.to(device)[t] * int((w > 0).sum())).float()
    return t, weight


def neg_elbo(den: Denoiser, x: torch.Tensor, generator=None, t_samples: int = 1,
             t_sampling: str = "importance", t_min: int = 1, t_groups=None,
             stop_gradient: bool = False) -> torch.Tensor:
    """Monte Carlo estimate of -ELBO(x) + const per signal, shape (n,): the mean over
    ``t_samples`` draws of weight(t) |eps_theta(x_t, t) - eps|^2 (module docstring).
    ``stop_gradient``: same value, gradient without the denoiser's Jacobian."""
    check_generator(generator)
    n, k = x.shape[0], int(t_samples)
    w = elbo_weights(den.schedule, t_min)
    xr = x.repeat_interleave(k, 0) if k > 1 else x
    t, weight = draw_times(w, n * k, t_sampling, t_groups, generator, x.device)
    eps = randn(xr.shape, generator=generator, device=x.device, dtype=x.dtype)
    ab = den.schedule.abar(t, like=xr)
    if not stop_gradient:
        r = den.eps(ab.sqrt() * xr + (1 - ab).sqrt() * eps, t) - eps
        per = weight * r.flatten(1).pow(2).sum(1)
    else:
        with torch.no_grad():
            r = den.eps(ab.sqrt() * xr.detach() + (1 - ab).sqrt() * eps, t) - eps
        value = weight * r.flatten(1).pow(2).sum(1)
        lin = (2 * weight.reshape(-1, *[1] * (xr.ndim - 1)) * ab.sqrt() * r * xr).flatten(1).sum(1)
        per = value + lin - lin.detach()
    return per.reshape(n, k).mean(1)


def prior_term(term, den, x, generator=None, **elbo_options) -> torch.Tensor:
    """R(x) per signal for the choice ``term``: -ELBO ("elbo"), its stop-gradient variant
    ("elbo_sg") or -term(x) for a callable log density."""
    if callable(term):
        lp = term(x)
        if not isinstance(lp, torch.Tensor) or lp.shape != (x.shape[0],):
            raise ValueError(f"prior_term(x) must return log p(x) of shape ({x.shape[0]},), got "
                             f"{getattr(lp, 'shape', type(lp).__name__)}.")
        return -lp
    return neg_elbo(den, x, generator, stop_gradient=term == "elbo_sg", **elbo_options)

