"""Chapter 08 exercises (the synthesis): the gain of averaging samples, the d = 16 verdict, a
sampler on a budget, and an open mini-project.

Equations: for an exact sampler, x and the samples x_1..x_k are i.i.d. draws from p(x | y), so
E|mean_k - x|^2 = tr(Cov) (1 + 1/k) and E|x_1 - x|^2 = 2 tr(Cov): the k-sample mean's PSNR beats a
single sample's by 10 log10(2k / (k + 1)) decibels (log10(2) of them as k grows).
"""
from __future__ import annotations

import math

import torch

from .base import Exercise, Mistake, register
from .kinds import Prediction, Scored, band
from .scoring import sampler_score


# -- 08.1 the PSNR gain of averaging k samples ------------------------------------------------------
def mean_gain_db(k):
    """dB by which the k-sample mean beats one sample, for an exact sampler."""
    return 10 * math.log10(2 * k / (k + 1))


def _gain_ref(k):
    # expected squared errors for i.i.d. posterior draws, as traces of one covariance (any C works)
    trace = torch.eye(3, dtype=torch.float64).trace()
    single, mean_k = 2 * trace, trace * (1 + 1 / k)
    return 10 * torch.log10(single / mean_k)


register(Exercise(
    "08.1", "the PSNR gain of the k-sample mean, for an exact sampler", "mean_gain_db(k) -> dB",
    mean_gain_db, _gain_ref, lambda: [(1,), (2,), (4,), (32,), (1000,)],
    [Mistake(lambda k: 10 * math.log10(k), "averaging k samples divides their *spread* by k, but "
             "the truth x is itself a posterior draw: the mean's error keeps tr(Cov) from x."),
     Mistake(lambda k: 20 * math.log10(2 * k / (k + 1)), "PSNR is 10 log10 of a ratio of squared "
             "errors (20 log10 is for a ratio of amplitudes)."),
     Mistake(lambda k: 10 * math.log10(2), "that is the limit k -> infinity (the posterior mean "
             "itself); with k samples the mean still carries tr(Cov) / k of sampling error.")],
    nudge="x (the truth) and each sample are independent draws from the same posterior. Write "
          "each error as (sample - m) - (x - m), with m the posterior mean.",
    hint="E|x_1 - x|^2 has two independent parts of size tr(Cov) each; the mean of k samples has "
         "tr(Cov)/k from the samples and tr(Cov) from x.",
    formula="gain = 10 log10( 2 tr(Cov) / (tr(Cov) (1 + 1/k)) ) = 10 log10(2k / (k + 1)).",
    rtol=1e-6, atol=1e-9))


# -- 08.2 the d = 16 verdict (a prediction, a choice) -----------------------------------------------
D16_OPTIONS = ("much closer than the prior", "about as far as the prior", "farther than the prior")
D16_BANDS = (0.7, 1.15)          # the edges between the three options, in SW / prior's SW


def d16_band(sw_over_prior: float) -> str:
    """Which option a measured SW / (prior's SW) falls in (edges: ``D16_BANDS``)."""
    return band(sw_over_prior, D16_BANDS, D16_OPTIONS)


register(Prediction(
    "08.2", "LATINO on the d = 16 problem: closer to the posterior than the prior is?",
    "latino_d16", D16_OPTIONS[1],
    lambda p, m: ("A rank-4 operator informs 4 of 16 directions; LATINO's proximal step fixes "
                  "those, and its few denoiser calls shrink the 12 others towards the prior's "
                  "conditional mean instead of sampling the right modes, so its samples are "
                  "about as far from the posterior as samples that ignore y."),
    options=D16_OPTIONS,
    feedback={D16_OPTIONS[0]: "the data fix only 4 of the 16 directions; in the other 12 the "
              "posterior is a reweighted mixture that a few shrinking denoiser calls do not find.",
              D16_OPTIONS[2]: "LATINO's proximal step does agree with y in the measured "
                              "directions; it does not make the other 12 worse than the prior."},
    nudge="How many of the 16 directions does a rank-4 A measure? What does the posterior look "
          "like in the others?",
    hint="Chapter 03 measured LATINO's under-dispersion: each denoiser call returns a mean. In "
         "the unmeasured directions, what is left of the prior's modes after 8 such calls?",
    formula="SW/prior = SW(LATINO, exact) / SW(prior samples, exact); the bands are < 0.7, "
            "0.7-1.15, > 1.15."))


# -- 08.3 a sampler on a budget (build) -------------------------------------------------------------
def budget_sampler(den, problem, y, n, generator):
    """Noise, denoise, prox, 12 times from t = 999 to 124 (LATINO's loop, by hand)."""
    sched = den.schedule
    x = problem.operator.adjoint(y).expand(n, -1).clone()
    times = [round(999 - k * (999 - 124) / 11) for k in range(12)]
    for t in times:
        ab = sched.abar(t).item()
        z = ab ** 0.5 * x + (1 - ab) ** 0.5 * torch.randn(x.shape, generator=generator,
                                                            dtype=x.dtype)
        u = den(z, t)
        delta = problem.residual(u, y).flatten(1).norm(dim=1)
        x = problem.prox(u, y, (delta * (1 - ab)).sqrt().clamp_min(1e-6))
    return x


register(Scored(
    "08.3", "a posterior sampler for the 2D problem in at most 20 network calls",
    "budget_sampler(den, problem, y, n, generator) -> (n, 2) samples", budget_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=20), threshold=8.5,
    unit="x the noise floor",
    nudge="Which of the course's methods need neither a backward pass nor many steps? What are "
          "the two halves of one of its steps?",
    hint="Start from A^T y; at each of a few decreasing times: noise x to t, denoise in one call "
         "on the whole batch, then a proximal step towards y.",
    formula="z = sqrt(ab_t) x + sqrt(1 - ab_t) eps; u = den(z, t); x = problem.prox(u, y, rho) "
            "with rho^2 = c |A u - y| (1 - ab_t)."))


# -- 08.4 mini-project: beat LATINO without a backward pass --------------------------------------------
def project_sampler(den, problem, y, n, generator):
    """LATINO's loop with 100 steps, down to t = 10: more, smaller steps at low noise."""
    sched = den.schedule
    x = problem.operator.adjoint(y).expand(n, -1).clone()
    for t in [round(999 - k * (999 - 10) / 99) for k in range(100)]:
        ab = sched.abar(t).item()
        z = ab ** 0.5 * x + (1 - ab) ** 0.5 * torch.randn(x.shape, generator=generator,
                                                            dtype=x.dtype)
        u = den(z, t)
        delta = problem.residual(u, y).flatten(1).norm(dim=1)
        x = problem.prox(u, y, (delta * (1 - ab)).sqrt().clamp_min(1e-6))
    return x


register(Scored(
    "08.4", "mini-project: closer than LATINO on the 2D problem, in at most 100 calls, no "
    "backward pass", "project_sampler(den, problem, y, n, generator) -> (n, 2) samples",
    project_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=100, backward=False),
    threshold=7.0,
    kind="project", unit="x the noise floor",
    nudge="Where do the few-step samplers lose against the exact posterior: the mode weights, "
          "or the spread inside each mode?",
    hint="Try more steps at low noise, a smaller c, or a final Langevin step with the exact "
         "likelihood; measure each change with the score.",
    formula="no single formula; one that works: LATINO's loop with 100 steps down to t = 10 "
            "(the chapter measures LATINO's and DPS's scores beside yours)."))
