"""Chapter 04 exercises (UD2M): the block's two quadratics as one, the untrained chain against
LATINO, the K x N unfolded loop built by hand, the block without its re-noising, and an open
mini-project on the chain's knobs.

Equations (trained/ud2m/block.py and sampler.py): |z - a|^2 / (2 rho^2) + |z - b|^2 / (2 s^2) =
|z - m|^2 / (2 r^2) + const with 1 / r^2 = 1 / rho^2 + 1 / s^2 and m = r^2 (a / rho^2 + b / s^2),
a = x^(k-1), b = x_t / sqrt(ab_t); rho = sigma' s / sqrt(sigma'^2 + s^2), tau with s(tau) = rho;
the outer loop is DDIM (eta = 0.8) on the quadratic grid with x^(K) as the x0 estimate.
"""
from __future__ import annotations

import math

import torch

from .base import Exercise, Mistake, register
from .kinds import Prediction, Scored, band
from .scoring import sampler_score
from ..trained import ud2m
from ..schedules import VPSchedule


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 04.1 the two quadratics as one (derive) -------------------------------------------------------
def combine(x_prev, x_t, ab, rho, s):
    """(m, r) with |z - x_prev|^2/(2 rho^2) + |z - x_t/sqrt(ab)|^2/(2 s^2) = |z - m|^2/(2 r^2) + c."""
    r2 = 1 / (1 / rho ** 2 + 1 / s ** 2)
    return r2 * (x_prev / rho ** 2 + x_t / (math.sqrt(ab) * s ** 2)), math.sqrt(r2)


def _combine_cases():
    g, sched, out = _gen(3), VPSchedule(), []
    for t, rho in [(999, 0.1), (444, 0.09), (111, 0.3)]:
        ab, s = sched.abar(t).item(), sched.s(t).item()
        out.append((torch.randn(5, 2, generator=g, dtype=torch.float64),
                    torch.randn(5, 2, generator=g, dtype=torch.float64), ab, rho, s))
    return out


def _combine_radius(x_prev, x_t, ab, rho, s):
    m, r = combine(x_prev, x_t, ab, rho, s)
    return m, r * r


def _combine_no_scale(x_prev, x_t, ab, rho, s):
    r2 = 1 / (1 / rho ** 2 + 1 / s ** 2)
    return r2 * (x_prev / rho ** 2 + x_t / s ** 2), math.sqrt(r2)


def _combine_average(x_prev, x_t, ab, rho, s):
    r2 = 1 / (1 / rho ** 2 + 1 / s ** 2)
    return (x_prev + x_t / math.sqrt(ab)) / 2, math.sqrt(r2)


def _combine_add_radii(x_prev, x_t, ab, rho, s):
    r2 = 1 / (1 / rho ** 2 + 1 / s ** 2)
    return r2 * (x_prev / rho ** 2 + x_t / (math.sqrt(ab) * s ** 2)), math.sqrt(rho ** 2 + s ** 2)


register(Exercise(
    "04.1", "one quadratic from two: the centre and radius of the block's prox",
    "combine(x_prev, x_t, ab, rho, s) -> (m, r)", combine,
    ud2m.combined_quadratic, _combine_cases,
    [Mistake(_combine_radius, "return the radius r, not its square r^2."),
     Mistake(_combine_no_scale, "the second centre is x_t / sqrt(ab_t): x_t carries sqrt(ab_t) x0, "
             "so x_t / sqrt(ab_t) is the estimate of x0 whose spread is s."),
     Mistake(_combine_average, "the centres are not equally trusted: weight each by its precision "
             "(one over its squared radius)."),
     Mistake(_combine_add_radii, "precisions add, not variances: two pieces of evidence make the "
             "combined radius smaller than either.")],
    nudge="Each quadratic is the log of a Gaussian in z. What is the product of two Gaussians "
          "with different centres and widths? Expand both squares and collect the terms in z.",
    hint="Match the coefficient of |z|^2 (it gives 1/r^2) and the one linear in z (it gives m/r^2); "
         "the second centre is b = x_t / sqrt(ab), not x_t. Return the radius r, not r^2.",
    formula="1/r^2 = 1/rho^2 + 1/s^2,  m = r^2 (x_prev / rho^2 + x_t / (sqrt(ab) s^2)).",
    rtol=1e-6, atol=1e-8))


# -- 04.2 the untrained chain against LATINO (predict) ---------------------------------------------
LATINO_OPTIONS = ("clearly closer than LATINO", "about as close as LATINO",
                  "clearly farther than LATINO")
LATINO_BANDS = (0.8, 1.25)       # edges in SW(untrained chain) / SW(LATINO)


def latino_band(ratio: float) -> str:
    """Which option a measured SW(untrained) / SW(LATINO) falls in (edges: ``LATINO_BANDS``)."""
    return band(ratio, LATINO_BANDS, LATINO_OPTIONS)


register(Prediction(
    "04.2", "the untrained unfolded chain (9 calls) against LATINO (8 calls)", "untrained_vs_latino",
    LATINO_OPTIONS[1],
    lambda p, m: ("Before training, with the exact denoiser, every block iteration has the form "
                  "of LATINO's step (prox, re-noise, denoise) with one more quadratic, the pull "
                  "towards x_t / sqrt(ab_t), but every call sits at s(tau) <= sigma', where "
                  "LATINO's sweep down from s(999). On this problem, whose posterior lies along "
                  "the measurement line where each block starts, that lands about as close as "
                  "LATINO; on a 3D mixture (the end of section 2) it does not. Training is what "
                  "must buy the difference."),
    options=LATINO_OPTIONS,
    feedback={LATINO_OPTIONS[0]: "the extra quadratic only ties each block to the outer state; "
              "with nothing trained, it cannot fix what LATINO's steps miss (the mode weights).",
              LATINO_OPTIONS[2]: "the block is LATINO's own step plus a pull towards x_t; nine "
              "such calls do not undo what eight of LATINO's achieve."},
    nudge="What is left of UD2M when nothing is trained and the denoiser is exact? Compare one "
          "block iteration with one LATINO step.",
    hint="With zero adapters and lambda = 1 each iteration is a LATINO step with one extra "
         "quadratic; where did chapter 03 find LATINO's error on this problem?",
    formula="ratio = SW(untrained 3 x 3, exact) / SW(LATINO, exact); the bands are < 0.8, "
            "0.8-1.25, > 1.25: here the untrained block lands about as close as LATINO."))


# -- 04.3 the unfolded K x N loop (build) ----------------------------------------------------------
def unfolded_sampler(den, problem, y, n, generator, K=3, N=3, sigma_factor=2.0, eta=0.8,
                     renoise=True):
    """UD2M's chain before training (lambda = 1, no adapters): N outer DDIM steps on the
    quadratic grid, each with a K-iteration block (prox, re-noise to tau, denoise)."""
    sched, sp = den.schedule, sigma_factor * problem.sigma
    aty = problem.operator.adjoint(y[None]).expand(n, -1)
    x = torch.randn(n, aty.shape[1], generator=generator, dtype=aty.dtype)
    grid = sched.timesteps(N, "quadratic")
    for j, t in enumerate(grid):
        ab, s = sched.abar(t).item(), sched.s(t).item()
        rho = sp * s / math.sqrt(sp ** 2 + s ** 2)
        tau = sched.t_from_s(rho)
        ab_tau = sched.abar(tau).item()
        u = (math.sqrt(1 - ab) * aty + math.sqrt(ab) * sp * x) / math.sqrt(sp ** 2 + 1 - ab)
        for _ in range(K):
            m, r = combine(u, x, ab, rho, s)
            z = problem.prox(m, y, r)
            fresh = torch.randn(z.shape, generator=generator, dtype=z.dtype) if renoise else 0.0
            u = den(math.sqrt(ab_tau) * z + math.sqrt(1 - ab_tau) * fresh, tau)
        if j + 1 == len(grid):
            return u
        ab_next = sched.abar(grid[j + 1]).item()
        eps = (x - math.sqrt(ab) * u) / math.sqrt(1 - ab)
        c = min(eta * math.sqrt((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)),
                math.sqrt(1 - ab_next))
        x = (math.sqrt(ab_next) * u + math.sqrt(max(1 - ab_next - c * c, 0.0)) * eps
             + c * torch.randn(x.shape, generator=generator, dtype=x.dtype))
    return x


register(Scored(
    "04.3", "UD2M's unfolded K x N chain (untrained), written by hand, on the 2D problem",
    "unfolded_sampler(den, problem, y, n, generator) -> (n, 2) samples", unfolded_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=9, backward=False),
    threshold=10.0, unit="x the noise floor",
    nudge="Two loops: the outer one walks down the noise levels as DDIM does; the inner one "
          "refines an estimate of x0 given both y and the current state. Which quantity of the "
          "inner loop plays the role of the denoiser's x0 estimate in the outer one?",
    hint="Per outer time t: the levels s(t), rho, tau; the starting estimate x^(0) from A^T y and "
         "x_t; K times: combine (exercise 04.1), problem.prox with radius r, re-noise to tau, one "
         "den call. Then eps_hat from x_t and x^(K), and a DDIM step with eta = 0.8 to the next "
         "grid time; the last block's x^(K) is the sample.",
    formula="grid = sched.timesteps(3, 'quadratic'); rho = sp s / sqrt(sp^2 + s^2), sp = 2 sigma; "
            "x^(0) = (sqrt(1-ab) A^T y + sqrt(ab) sp x_t) / sqrt(sp^2 + 1 - ab); z = prox(m, y, r); "
            "x^(k) = den(sqrt(ab_tau) z + sqrt(1-ab_tau) eps, tau); eps_hat = (x_t - sqrt(ab) "
            "x^(K)) / sqrt(1-ab); x' = sqrt(ab') x^(K) + sqrt(1-ab'-c^2) eps_hat + c noise."))


# -- 04.4 break it: the block without its re-noising -----------------------------------------------
RENOISE_OPTIONS = ("the samples collapse: far narrower, most weight on one mode",
                   "little changes: the outer DDIM noise keeps the spread",
                   "the samples spread wider")
RENOISE_BANDS = (0.5, 1.5)       # edges in spread(broken) / spread(with re-noising)


def renoise_band(ratio: float) -> str:
    """Which option a measured spread ratio falls in (edges: ``RENOISE_BANDS``)."""
    return band(ratio, RENOISE_BANDS, RENOISE_OPTIONS)


register(Prediction(
    "04.4", "break it: the unfolded chain without the block's re-noising", "no_renoise",
    RENOISE_OPTIONS[0],
    lambda p, m: ("The block's prox and the denoiser both return means: without fresh noise at "
                  "tau, each block maps x_t to one deterministic estimate pulled towards A^T y, "
                  "and the outer DDIM noise (eta = 0.8) is too weak at low noise to spread it "
                  "again. The re-noising is the block's only source of spread, so the chain "
                  "collapses onto the mode nearest the data."),
    kind="break", options=RENOISE_OPTIONS,
    feedback={RENOISE_OPTIONS[1]: "the outer noise enters only between blocks, and each block "
              "then contracts it: a prox and a denoiser (a conditional mean) both shrink.",
              RENOISE_OPTIONS[2]: "removing noise cannot add spread: every remaining step is "
              "a mean or a contraction."},
    nudge="List the block's three steps and say, for each, whether it adds randomness or "
          "removes it.",
    hint="A prox is a weighted average; a Tweedie denoiser returns a conditional mean. What is "
         "left to make two samples with the same x_t differ?",
    formula="spread = tr Cov(samples) / tr Cov(exact); ratio = spread(no re-noise) / spread(with "
            "it); bands < 0.5 (collapse), 0.5-1.5, > 1.5."))


# -- 04.5 mini-project: closer than LATINO, untrained, in at most 12 calls -------------------------
def project_sampler(den, problem, y, n, generator):
    """The untrained chain at K = 4, N = 3 with sigma' = 4 sigma: 12 calls, a wider re-noise."""
    return unfolded_sampler(den, problem, y, n, generator, K=4, N=3, sigma_factor=4.0)


register(Scored(
    "04.5", "mini-project: an untrained unfolded chain closer than LATINO, in at most 12 calls",
    "project_sampler(den, problem, y, n, generator) -> (n, 2) samples", project_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=12, backward=False),
    threshold=7.5, kind="project", unit="x the noise floor",
    nudge="The chain's knobs are K, N, the re-noise cap sigma' and eta. Which of them decides how "
          "far a block may wander from the mode nearest A^T y?",
    hint="Measure one knob at a time with the score: the split of 12 calls into K x N, then "
         "sigma_factor (the default is 2), then eta.",
    formula="no single formula; one that works: K = 4, N = 3, sigma' = 4 sigma (the chapter "
            "prints LATINO's score on the same scale)."))
