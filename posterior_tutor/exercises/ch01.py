"""Chapter 01 exercises: forward noising, the time where the signal-to-noise ratio crosses 1,
Tweedie's formula from a score, one DDIM update from the marginals, a whole prior sampler.

Equations: x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps (schedules.py, ``add_noise``); ab_t = 1/2
where sum_s beta_s = ln 2 (log(1 - beta) ~ -beta); E[x0 | x_t] = (x_t + (1 - ab_t) grad log
p_t(x_t)) / sqrt(ab_t) (denoisers.py, the exact GMM denoiser); DDIM with eta = 0
(samplers/diffusion.py, ``ddim_update``): x_t' = a x0_hat + b x_t with b = sqrt((1 - ab_t') /
(1 - ab_t)), a = sqrt(ab_t') - b sqrt(ab_t), the deterministic map that keeps the marginals.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from .base import Exercise, Mistake, register
from .kinds import Prediction, Scored
from .. import toy
from ..metrics.distances import noise_floor, sliced_wasserstein
from ..samplers.diffusion import ddim_update, eps_from_x0
from ..schedules import VPSchedule


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 01.1 forward noising --------------------------------------------------------------------------
def add_noise(x0, t, eps, sched):
    """x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps."""
    ab = sched.abar(t).item()
    return ab ** 0.5 * x0 + (1 - ab) ** 0.5 * eps


def _noise_cases():
    g, sched = _gen(0), VPSchedule()
    return [(torch.randn(5, 3, generator=g), t, torch.randn(5, 3, generator=g), sched)
            for t in (10, 250, 700)]


def _noise_no_sqrt(x0, t, eps, sched):
    ab = sched.abar(t).item()
    return ab * x0 + (1 - ab) * eps


def _noise_ve(x0, t, eps, sched):
    return x0 + sched.s(t).item() * eps


def _noise_one_step(x0, t, eps, sched):
    b = sched.betas[t].item()
    return (1 - b) ** 0.5 * x0 + b ** 0.5 * eps


register(Exercise(
    "01.1", "forward noising: x_t from x0 in one jump", "add_noise(x0, t, eps, sched) -> x_t",
    add_noise, lambda x0, t, eps, sched: sched.add_noise(x0, t, noise=eps), _noise_cases,
    [Mistake(_noise_no_sqrt, "the coefficients are square roots: sqrt(ab_t) and sqrt(1 - ab_t) "
             "(ab_t and 1 - ab_t are the signal and noise *variances*)."),
     Mistake(_noise_ve, "this is the VE view x0 + s(t) eps; the VP x_t is sqrt(ab_t) times it."),
     Mistake(_noise_one_step, "use abar_t = sched.abar(t), the product of all (1 - beta_s) up to "
             "t, not beta_t of a single step.")],
    nudge="Each step scales the signal and adds independent Gaussian noise. Follow two numbers "
          "through the steps: the factor in front of x0 and the variance of the noise.",
    hint="The factor in front of x0 is a product of the per-step factors; the noise variances of "
         "independent Gaussians add (after scaling). Check your answer by induction on t.",
    formula="x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, abar_t = prod_{s <= t} (1 - beta_s)."))


# -- 01.2 where the signal-to-noise ratio crosses 1 (predict) ------------------------------------
def _snr_formula(beta_min=1e-4, beta_max=0.02, T=1000):
    """First t with abar_t < 1/2, from log(1 - beta) ~ -beta: b t + (B - b) t^2 / (2 (T - 1)) = ln 2."""
    q = (beta_max - beta_min) / (2 * (T - 1))
    return (-beta_min + math.sqrt(beta_min ** 2 + 4 * q * math.log(2))) / (2 * q)


register(Prediction(
    "01.2", "the time where the noise power overtakes the signal power", "t_half",
    round(_snr_formula()),
    lambda p, m: ("abar_t = prod (1 - beta_s) ~ exp(-sum beta_s); with beta growing linearly the "
                  "sum is beta_min t + (beta_max - beta_min) t^2 / 2T, and it reaches ln 2 at "
                  f"t = {_snr_formula():.0f}: the signal power halves in about a quarter of the "
                  f"schedule (measured: t = {m:.0f}), long before the middle."),
    rtol=0.2,
    nudge="The signal power is a product of many factors slightly below 1. A product of such "
          "factors is easiest to follow through its logarithm.",
    hint="log(1 - beta) is about -beta for small beta, so log abar_t is about minus the sum of "
         "the betas up to t. That sum grows like t^2 here (beta grows linearly). When is it ln 2?",
    formula="sum_{s <= t} beta_s = beta_min t + (beta_max - beta_min) t^2 / (2 (T - 1)) = ln 2, "
            "solved for t: t = 259."))


# -- 01.3 Tweedie's formula from a score ----------------------------------------------------------
def tweedie(x_t, score, t, sched):
    """E[x0 | x_t] = (x_t + (1 - ab_t) score) / sqrt(ab_t)."""
    ab = sched.abar(t).item()
    return (x_t + (1 - ab) * score) / ab ** 0.5


def _tweedie_cases():
    g, sched = _gen(1), VPSchedule()
    den = toy.ring_of_gaussians().denoiser(sched)
    out = []
    for t in (50, 300, 800):
        x_t = 1.5 * torch.randn(6, 2, generator=g, dtype=torch.float64)
        out.append((x_t, den.score(x_t, t), t, sched))
    return out


def _tweedie_ref(x_t, score, t, sched):
    return toy.ring_of_gaussians().denoiser(sched)(x_t, t)


def _tweedie_sign(x_t, score, t, sched):
    return tweedie(x_t, -score, t, sched)


def _tweedie_no_scale(x_t, score, t, sched):
    ab = sched.abar(t).item()
    return x_t + (1 - ab) * score


def _tweedie_sqrt(x_t, score, t, sched):
    ab = sched.abar(t).item()
    return (x_t + (1 - ab) ** 0.5 * score) / ab ** 0.5


register(Exercise(
    "01.3", "Tweedie's formula: the denoiser from the score", "tweedie(x_t, score, t, sched) -> x0_hat",
    tweedie, _tweedie_ref, _tweedie_cases,
    [Mistake(_tweedie_sign, "the score points towards the data: x_t + (1 - ab_t) score, a plus sign."),
     Mistake(_tweedie_no_scale, "x_t carries sqrt(ab_t) x0: divide by sqrt(ab_t) at the end."),
     Mistake(_tweedie_sqrt, "the score is multiplied by the noise *variance* 1 - ab_t, not its "
             "square root.")],
    nudge="p_t is the prior smoothed by a Gaussian kernel. Differentiate the integral that "
          "defines p_t under the integral sign, then divide by p_t: what do you recognise?",
    hint="The gradient of a Gaussian in x_t is the Gaussian times (its mean - x_t) / variance. "
         "After dividing by p_t(x_t), the weights p(x0) N(...) / p_t(x_t) are Bayes' rule for "
         "x0 given x_t: the integral is a posterior expectation. Solve for E[x0 | x_t].",
    formula="grad log p_t(x_t) = (sqrt(ab_t) E[x0 | x_t] - x_t) / (1 - ab_t), so "
            "E[x0 | x_t] = (x_t + (1 - ab_t) grad log p_t(x_t)) / sqrt(ab_t)."))


# -- 01.4 one DDIM update --------------------------------------------------------------------------
def ddim_step(x_t, x0_hat, t, t_prev, sched):
    """eta = 0: x_{t'} = sqrt(ab_t') x0_hat + sqrt(1 - ab_t') eps_hat."""
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * eps_hat


def _ddim_ref(x_t, x0_hat, t, t_prev, sched):
    return ddim_update(sched, x0_hat, eps_from_x0(sched, x_t, x0_hat, t), t, t_prev, 0.0, None)


def _ddim_cases():
    g, sched = _gen(2), VPSchedule()
    return [(torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g), t, tp, sched)
            for t, tp in ((999, 899), (500, 450), (120, 60))]


def _ddim_time(x_t, x0_hat, t, t_prev, sched):
    ab = sched.abar(t).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    return ab ** 0.5 * x0_hat + (1 - ab) ** 0.5 * eps_hat


def _ddim_eps(x_t, x0_hat, t, t_prev, sched):
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab * x0_hat) / (1 - ab)
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * eps_hat


def _ddim_swap(x_t, x0_hat, t, t_prev, sched):
    ab_prev = sched.abar(t_prev).item()
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * x_t


register(Exercise(
    "01.4", "one DDIM update (eta = 0) from t to t_prev",
    "ddim_step(x_t, x0_hat, t, t_prev, sched) -> x_{t_prev}",
    ddim_step, _ddim_ref, _ddim_cases,
    [Mistake(_ddim_time, "re-noise to the *earlier* time: use ab_{t_prev}, not ab_t (that gives "
             "x_t back)."),
     Mistake(_ddim_eps, "eps_hat = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t): square roots."),
     Mistake(_ddim_swap, "reuse the predicted noise eps_hat, not x_t itself.")],
    nudge="If x0_hat were the true x0, x_t would be the forward formula at time t. What must "
          "x_{t_prev} look like at time t_prev, and which noise can you reuse without drawing any?",
    hint="Write x_{t_prev} = a x0_hat + b x_t and substitute x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) "
         "eps with x0 = x0_hat: match the noise coefficient to sqrt(1 - ab_{t_prev}) first, then "
         "the signal coefficient to sqrt(ab_{t_prev}).",
    formula="b = sqrt((1 - ab_{t_prev}) / (1 - ab_t)), a = sqrt(ab_{t_prev}) - b sqrt(ab_t); "
            "equivalently eps_hat = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t) and "
            "x' = sqrt(ab_{t_prev}) x0_hat + sqrt(1 - ab_{t_prev}) eps_hat."))


# -- 01.5 a whole prior sampler (build) -----------------------------------------------------------
PRIOR_N = 2000                     # samples scored
PRIOR_NFE = 20                     # denoiser calls allowed
PRIOR_THRESHOLD = 2.3              # 20-step DDIM or DDPM: 1.2 to 1.9 over seeds; one call: 22


def prior_sampler(den, n, generator):
    """DDIM (eta = 0) on a uniform grid of 20 times, from N(0, I) at t = 999."""
    sched = den.schedule
    grid = sched.timesteps(PRIOR_NFE)
    x = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    for t, t_next in zip(grid, grid[1:]):
        x0 = den(x, t)
        ab, ab_next = sched.abar(t).item(), sched.abar(t_next).item()
        eps = (x - ab ** 0.5 * x0) / (1 - ab) ** 0.5
        x = ab_next ** 0.5 * x0 + (1 - ab_next) ** 0.5 * eps
    return den(x, grid[-1])


@lru_cache(maxsize=4)
def ring_floor(n: int) -> float:
    """The noise floor of SW for n samples of the ring prior (5 repeats, seeded)."""
    ring = toy.ring_of_gaussians()
    return noise_floor(lambda k, g: ring.sample(k, generator=g), n, repeats=5,
                       generator=_gen(123)).mean


def prior_score(sampler, n: int = PRIOR_N, nfe_budget: int = PRIOR_NFE, seed: int = 0) -> tuple:
    """(SW to n exact ring samples / noise floor, a sentence) of ``sampler(den, n, generator)``,
    run with the ring's exact denoiser; more than ``nfe_budget`` calls is refused."""
    ring = toy.ring_of_gaussians()
    den = ring.denoiser(VPSchedule())
    den.reset_counters()
    xs = sampler(den, n, _gen(seed))
    if not isinstance(xs, torch.Tensor) or tuple(xs.shape) != (n, 2):
        got = tuple(xs.shape) if isinstance(xs, torch.Tensor) else type(xs).__name__
        raise ValueError(f"the sampler returned {got}; expected a tensor of shape ({n}, 2).")
    if not torch.isfinite(xs).all():
        raise ValueError("the samples contain NaN or Inf; print x after each step to see where.")
    if den.nfe > nfe_budget:
        raise ValueError(f"the sampler called the denoiser {den.nfe} times; the budget is "
                         f"{nfe_budget} (call it once per step on the whole batch).")
    exact = ring.sample(n, generator=_gen(seed + 1))
    sw = sliced_wasserstein(xs.detach().double(), exact.double(), generator=_gen(seed + 2)).item()
    ratio = sw / ring_floor(n)
    return ratio, (f"SW {sw:.3f} = {ratio:.2f} x the noise floor at n = {n}, with {den.nfe} "
                   "network calls.")


register(Scored(
    "01.5", "a sampler of the 2D ring prior in at most 20 network calls",
    "prior_sampler(den, n, generator) -> (n, 2) samples", prior_sampler, prior_score,
    threshold=PRIOR_THRESHOLD, unit="x the noise floor",
    nudge="Where does the reverse process start, and what does one step need from the denoiser? "
          "You derived that step in exercise 01.4; what is left is the loop around it.",
    hint="Draw x from N(0, I) (that is the marginal at t = 999), pick 20 decreasing times from "
         "999 to 0 (den.schedule.timesteps), call den(x, t) once per time on the whole batch, "
         "and finish by returning the last denoised estimate, not the noisy state.",
    formula="x ~ N(0, I); for each (t, t') in the grid: x0 = den(x, t), eps = (x - sqrt(ab_t) x0) "
            "/ sqrt(1 - ab_t), x = sqrt(ab_t') x0 + sqrt(1 - ab_t') eps; return den(x, t_last)."))
