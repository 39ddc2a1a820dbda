"""Chapter 03 exercises: one ULA step, how ULA's bias scales with the step (predict), the
stationary variance on a Gaussian, a PnP-ULA loop (build), LATINO's inpainting prox, the variance
a Tweedie denoiser keeps, and a mini-project (a Langevin sampler on a budget).

Equations: x <- x + delta grad log pi(x) + sqrt(2 delta) z (samplers/pnp_ula.py); for pi = N(0, v)
the chain is AR(1), x' = (1 - delta / v) x + sqrt(2 delta) z, whose stationary variance is
2 delta / (1 - (1 - delta / v)^2) = v / (1 - delta / (2 v)); the prox of ``Inpainting``
(operators.py) that LATINO's data half calls (samplers/latino.py).
"""
from __future__ import annotations

import torch

from .base import Exercise, Mistake, register
from .kinds import Prediction, Scored
from .scoring import sampler_score
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
    nudge="Discretise the Langevin diffusion over one time step of length delta: how much does "
          "the drift move x in that time, and how large is the Brownian increment?",
    hint="Freeze the drift at the start of the step (Euler-Maruyama); the Brownian increment "
         "over a time delta has variance delta, and the diffusion multiplies it by sqrt(2).",
    formula="x_next = x + delta * score(x) + sqrt(2 * delta) * z."))


# -- 03.2 the ULA bias as the step halves (predict) ----------------------------------------------
register(Prediction(
    "03.2", "ULA on a Gaussian: the variance excess after halving the step, as a fraction",
    "bias_ratio", 0.5,
    lambda p, m: ("ULA is the Euler scheme of the Langevin diffusion, first order in the step: "
                  "its stationary law is O(delta) away from the target, so halving delta about "
                  "halves the excess variance (exercise 03.3 gives the exact value, a little "
                  "under one half)."),
    rtol=0.25,
    nudge="ULA is a discretisation of a diffusion with step delta. To which order in delta is "
          "such a scheme accurate?",
    hint="If the excess variance is c delta + O(delta^2), what is the ratio of the excess at "
         "delta / 2 to the excess at delta?",
    formula="excess(delta / 2) / excess(delta) = 1/2 to first order (exactly "
            "(2v - delta) / (4v - delta) on N(0, v))."))


# -- 03.3 ULA's bias on a Gaussian target ---------------------------------------------------------
def ula_stationary_variance(v, delta):
    """Stationary variance of ULA on N(0, v) with step delta < 2 v: v / (1 - delta / (2 v))."""
    return v / (1 - delta / (2 * v))


def _variance_ref(v, delta):
    a = 1 - delta / v                       # the AR(1) coefficient of x' = a x + sqrt(2 delta) z
    return 2 * delta / (1 - a * a)


def _variance_cases():
    return [(1.0, 0.1), (0.09, 0.02), (2.5, 1.0), (0.5, 0.6)]


register(Exercise(
    "03.3", "ULA step-size experiment: the stationary variance on a Gaussian target",
    "ula_stationary_variance(v, delta) -> a number", ula_stationary_variance, _variance_ref,
    _variance_cases,
    [Mistake(lambda v, d: v, "ULA is *unadjusted*: for delta > 0 the chain's variance is larger "
             "than v. Write x' = (1 - delta/v) x + sqrt(2 delta) z and solve Var = a^2 Var + 2 delta."),
     Mistake(lambda v, d: v / (1 - d / v), "solve Var = (1 - delta/v)^2 Var + 2 delta exactly: "
             "1 - (1 - delta/v)^2 = (delta/v)(2 - delta/v)."),
     Mistake(lambda v, d: v * (1 + d / (2 * v)), "that is only the first-order expansion; "
             "give the exact stationary variance.")],
    nudge="One step maps x to a multiple of x plus independent noise. What does 'stationary' "
          "say about the variance before and after a step?",
    hint="Write the step for the score -x / v as x' = a x + b z, take the variance of both "
         "sides, and set Var(x') = Var(x).",
    formula="a = 1 - delta / v; Var = a^2 Var + 2 delta, so Var = 2 delta / (1 - a^2) "
            "= v / (1 - delta / (2 v))."))


# -- 03.4 build: a whole PnP-ULA loop ----------------------------------------------------------------
def pnp_ula_sampler(den, problem, y, n, generator):
    """PnP-ULA: 1000 Langevin steps with the denoiser's score at eps = 0.05, from N(0, I)."""
    sched = den.schedule
    t0 = sched.t_from_s(0.05)
    s0, ab0 = sched.s(t0).item(), sched.abar(t0).item()
    lip = torch.linalg.matrix_norm(problem.operator.matrix(), 2).item() ** 2 / problem.sigma ** 2
    step = 1 / (3 * (lip + 1 / s0 ** 2))
    x = torch.randn(n, problem.operator.adjoint(y).numel(), generator=generator, dtype=y.dtype)
    with torch.no_grad():
        for _ in range(1000):
            drift = (den(ab0 ** 0.5 * x, t0) - x) / s0 ** 2 - problem.grad_data_fit(x, y)
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + step * drift + (2 * step) ** 0.5 * noise
    return x


register(Scored(
    "03.4", "a whole PnP-ULA chain on the 2D problem, in at most 1000 network calls",
    "pnp_ula_sampler(den, problem, y, n, generator) -> (n, 2) samples", pnp_ula_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=1000, backward=False),
    threshold=8.5, unit="x the noise floor", time_limit=120,
    nudge="ULA needs the posterior's score. The likelihood's part you can write down; where "
          "does the prior's part come from when all you have is a denoiser?",
    hint="Tweedie's formula gives the score of the prior smoothed at a small noise level eps "
         "from the denoiser's output; a VP denoiser at the time t0 with s(t0) = eps takes the "
         "scaled input sqrt(abar_t0) x. The step must stay below 1 / (3 L), with L the sum of "
         "the likelihood's and the smoothed prior's curvatures.",
    formula="x <- x + delta [ (D(sqrt(ab0) x, t0) - x) / eps^2 - A^T (A x - y) / sigma^2 ] + "
            "sqrt(2 delta) z, eps = s(t0) = 0.05, delta = 1 / (3 (|A|^2 / sigma^2 + 1 / eps^2)), "
            "1000 steps from N(0, I)."))


# -- 03.5 LATINO's proximal step for inpainting ---------------------------------------------------
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
    "03.5", "LATINO's proximal data step for inpainting",
    "inpainting_prox(u, y, mask, sigma, rho) -> x (n, C, H, W); rho has one value per sample",
    inpainting_prox, _prox_ref, _prox_cases,
    [Mistake(_prox_swapped, "each term is weighted by the *other* variance: an observed pixel is "
             "(rho^2 y + sigma^2 u) / (rho^2 + sigma^2), so small sigma trusts y."),
     Mistake(_prox_no_mask, "a missing pixel (mask 0) has no data term: there the prox returns u."),
     Mistake(_prox_not_squared, "the weights are variances: rho^2 and sigma^2, not rho and sigma.")],
    nudge="The objective is a sum of one term per pixel. What does it look like for a pixel the "
          "mask hides, and for one it shows?",
    hint="For an observed pixel, minimise a sum of two one-dimensional quadratics: the answer is "
         "a weighted average of y and u, each weighted by the other term's variance; reshape "
         "rho to broadcast one value per sample.",
    formula="observed pixels: (rho^2 y + sigma^2 u) / (rho^2 + sigma^2); missing pixels: u; "
            "rho.reshape(-1, 1, 1, 1) broadcasts one rho per sample."))



# -- 03.6 the variance a Tweedie denoiser keeps (LATINO's prior half) --------------------------------
def tweedie_variance_ratio(v, abar):
    """Var(D(z, t)) / v for x ~ N(0, v), z = sqrt(abar) x + sqrt(1 - abar) eps, D = E[x | z]."""
    return abar * v / (abar * v + 1 - abar)


def _tweedie_ref(v, abar):
    # the law of total variance: Var(E[x | z]) = Var(x) - E[Var(x | z)], Var(x | z) by Kalman
    gain = abar ** 0.5 * v / (abar * v + 1 - abar)
    posterior_var = v - gain * abar ** 0.5 * v
    return (v - posterior_var) / v


register(Exercise(
    "03.6", "the share of the prior variance one noise-then-denoise pass keeps (Tweedie)",
    "tweedie_variance_ratio(v, abar) -> a number", tweedie_variance_ratio, _tweedie_ref,
    lambda: [(1.0, 0.5), (0.25, 0.9), (4.0, 0.1), (2.0, 0.7)],
    [Mistake(lambda v, ab: 1.0, "the denoiser returns the conditional *mean* E[x | z], not a "
             "sample of p(x | z): it loses the posterior variance E[Var(x | z)]."),
     Mistake(lambda v, ab: ab, "that is the answer for v = 1 only; keep v in the posterior "
             "variance of x given z."),
     Mistake(lambda v, ab: (1 - ab) / (ab * v + 1 - ab), "that is the share that is *lost* "
             "(E[Var(x | z)] / v); the question asks for the share kept.")],
    nudge="A denoiser returns a conditional mean. The law of total variance splits Var(x) into "
          "the variance of that mean and the mean of what is left.",
    hint="For a Gaussian x and z = sqrt(abar) x + sqrt(1 - abar) eps, the posterior of x given z "
         "is Gaussian with a variance that does not depend on z (chapter 00's Kalman update); "
         "subtract it from v.",
    formula="Var(x | z) = v (1 - abar) / (abar v + 1 - abar); Var(D) / v = 1 - Var(x | z) / v "
            "= abar v / (abar v + 1 - abar).",
    rtol=1e-6, atol=1e-9))


# -- 03.7 mini-project: a Langevin sampler on a budget ---------------------------------------------
def annealed_langevin(den, problem, y, n, generator):
    """Annealed Langevin: 30 noise levels from eps = 2 to 0.05, 10 ULA steps at each, on the
    eps-smoothed prior times N(y; A x, sigma^2 I + eps^2 A A^T)."""
    sched = den.schedule
    A = problem.operator.matrix().to(y.dtype)
    x = 2.0 * torch.randn(n, A.shape[1], generator=generator, dtype=y.dtype)
    with torch.no_grad():
        for k in range(30):
            t = sched.t_from_s(2.0 * 0.025 ** (k / 29))
            e, ab = sched.s(t).item(), sched.abar(t).item()
            cov_inv = torch.linalg.inv(problem.sigma ** 2 * torch.eye(A.shape[0], dtype=A.dtype)
                                       + e ** 2 * A @ A.T)
            lip = 1 / e ** 2 + torch.linalg.matrix_norm(A.T @ cov_inv @ A, 2).item()
            step = 0.5 / lip
            for _ in range(10):
                score = (den(ab ** 0.5 * x, t) - x) / e ** 2 - (x @ A.T - y) @ cov_inv @ A
                noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
                x = x + step * score + (2 * step) ** 0.5 * noise
    return x


register(Scored(
    "03.7", "mini-project: closer than LATINO on the 2D problem with a Langevin sampler, in at "
    "most 300 calls, no backward pass", "langevin_sampler(den, problem, y, n, generator) -> "
    "(n, 2) samples", annealed_langevin,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=300, backward=False),
    threshold=7.0, kind="project", unit="x the noise floor",
    nudge="PnP-ULA's chains mix slowly between the modes because the smoothed prior has deep "
          "valleys between them. At which noise level are the valleys shallow?",
    hint="Run Langevin steps at a sequence of decreasing noise levels, each with the score of "
         "the prior smoothed at that level (Tweedie) and a likelihood widened to match; score "
         "each variant.",
    formula="no single formula; one that works: 30 levels eps from 2 down to 0.05, 10 ULA steps "
            "each on p_eps(x) N(y; A x, sigma^2 I + eps^2 A A^T), step 0.5 / L."))
