"""Chapter 02 exercises: the DPS guidance step, DPS with the squared norm (break), the DiffPIR
step, which sampler a learned denoiser hurts most (predict), a DPS loop on a budget (build), and
a mini-project without backward passes.

Equations: DPS's correction -zeta grad_{x_t} |y - A D(x_t, t)| (samplers/dps.py: the reference is
the correction the library's sampler records); DiffPIR's prox and re-noising (samplers/diffpir.py).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .base import Exercise, Mistake, register
from .kinds import Prediction, Scored
from .scoring import sampler_score
from .. import samplers, toy


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 02.1 one DPS guidance step --------------------------------------------------------------------
def dps_correction(den, problem, y, x_t, t, zeta):
    """-zeta grad_{x_t} |y - A D(x_t, t)| per sample, the gradient taken through the denoiser."""
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        err = problem.residual(den(x_in, t), y).flatten(1).norm(dim=1)
        (grad,) = torch.autograd.grad(err.sum(), x_in)
    return -zeta * grad


@lru_cache(maxsize=1)
def _dps_run():
    tp = toy.bimodal_problem_2d()
    den = tp.prior.denoiser()
    steps = [s.detached() for s in samplers.iterate("dps", den, tp.problem, tp.y, n=6, steps=10,
                                                     zeta=0.3, generator=_gen(1))]
    return den, tp.problem, tp.y, den.schedule.timesteps(10), steps


def _dps_cases():
    den, problem, y, grid, steps = _dps_run()
    return [(den, problem, y, steps[i - 1].x, grid[i], 0.3) for i in (2, 5, 8)]


def _dps_ref(den, problem, y, x_t, t, zeta):
    _, _, _, grid, steps = _dps_run()
    i = grid.index(t)
    assert torch.equal(steps[i - 1].x, x_t)
    return steps[i].extras["correction"]


def _dps_squared(den, problem, y, x_t, t, zeta):
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        err = problem.residual(den(x_in, t), y).flatten(1).pow(2).sum(1)
        (grad,) = torch.autograd.grad(err.sum(), x_in)
    return -zeta * grad


def _dps_no_jacobian(den, problem, y, x_t, t, zeta):
    x0 = den(x_t, t)
    r = problem.residual(x0, y)
    return -zeta * problem.operator.adjoint(r) / r.flatten(1).norm(dim=1)[:, None]


register(Exercise(
    "02.1", "one DPS guidance step: the gradient through the denoiser",
    "dps_correction(den, problem, y, x_t, t, zeta) -> correction (n, d)",
    dps_correction, _dps_ref, _dps_cases,
    [Mistake(_dps_squared, "DPS (Algorithm 1) differentiates the norm |y - A x0_hat|, not its square."),
     Mistake(lambda *a: -dps_correction(*a), "the correction goes downhill: -zeta * grad."),
     Mistake(_dps_no_jacobian, "differentiate with respect to x_t, through the denoiser "
             "(torch.autograd.grad with x_t.requires_grad_()), not with respect to x0_hat.")],
    nudge="The misfit is measured on the denoised estimate, but the step moves x_t: which "
          "variable do you differentiate with respect to, and what lies between the two?",
    hint="Make x_t a leaf that requires a gradient, run the denoiser on it, take the residual "
         "norm of each sample, and let autograd carry the gradient back through the network "
         "(summing the per-sample norms is fine: the samples do not interact).",
    formula="correction = -zeta * grad_{x_t} |A D(x_t, t) - y| = -zeta J_D(x_t)^T A^T r / |r|, "
            "r = A D(x_t, t) - y, one norm per sample."))


# -- 02.2 break it: DPS with the squared norm ------------------------------------------------------
SQUARED_OPTIONS = ("the samples diverge", "the samples collapse onto the measurement line",
                   "about the same samples")


def squared_norm_outcome(residual_ratio: float) -> str:
    """Which option a measured (median residual of the broken DPS) / (that of exact samples)
    falls in: above 3 (or not finite) diverges, below 0.3 collapses, between: about the same."""
    r = float(residual_ratio)
    if not torch.isfinite(torch.tensor(r)) or r > 3:
        return SQUARED_OPTIONS[0]
    return SQUARED_OPTIONS[1] if r < 0.3 else SQUARED_OPTIONS[2]


register(Prediction(
    "02.2", "break DPS: the squared residual norm instead of the norm", "squared_outcome",
    SQUARED_OPTIONS[1],
    lambda p, m: ("The gradient of |r|^2 is 2 |r| times that of |r|: it shrinks with the residual, "
                  "so each step removes a fixed share of A x - y (a gradient-descent step on the "
                  "data, about 2 zeta |A|^2 of it). Repeated at every step it drives A x onto y "
                  "and ignores sigma; the norm's step has a fixed length and stops contracting "
                  "once the residual is of its size."),
    options=SQUARED_OPTIONS,
    feedback={SQUARED_OPTIONS[0]: "near y the squared norm's gradient is *smaller* than the "
              "norm's (it is 2 |r| times it), so nothing blows up at the end of the run.",
              SQUARED_OPTIONS[2]: "the two steps differ by the factor 2 |r|, which changes as the "
                                  "residual shrinks: the step is no longer of fixed length."},
    nudge="Write both gradients with the chain rule. How does each step's length depend on the "
          "size of the residual, and what happens when the step is repeated many times?",
    hint="With the norm, the step has length about zeta |A| whatever the residual; with the "
         "square, it is proportional to the residual: repeated, that is a geometric contraction.",
    formula="grad |r|^2 = 2 |r| grad |r|: per step r <- (1 - 2 zeta |A|^2) r roughly, so the "
            "residual goes to 0 and the samples sit on A x = y (median residual far below the "
            "exact samples'): they collapse onto the measurement line."))

# -- 02.3 one DiffPIR step -------------------------------------------------------------------------
def diffpir_step(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    """Denoise, prox with r_t = s(t) / sqrt(lam), re-noise to t_prev with fresh noise z."""
    sched = den.schedule
    x0_hat = problem.prox(den(x_t, t), y, sched.s(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    noise = (1 - zeta) ** 0.5 * eps_hat + zeta ** 0.5 * z
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * noise


def _diffpir_ref(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    """The library's update (samplers/diffpir.py) with the given noise z instead of a fresh draw."""
    sched = den.schedule
    x0_hat = problem.prox(den(x_t, t), y, sched.s(t).item() / lam ** 0.5)
    eps_hat = samplers.diffusion.eps_from_x0(sched, x_t, x0_hat, t)
    ab_prev = sched.abar(t_prev).item()
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * (
        (1 - zeta) ** 0.5 * eps_hat + zeta ** 0.5 * z)


def _diffpir_cases():
    tp, g = toy.bimodal_problem_2d(), _gen(2)
    den = tp.prior.denoiser()
    out = []
    for t, t_prev, lam, zeta in [(600, 500, 1.0, 0.1), (300, 250, 2.0, 0.5), (100, 80, 0.5, 0.3)]:
        x_t = torch.randn(6, 2, generator=g)
        out.append((den, tp.problem, tp.y, x_t, t, t_prev, lam, zeta, torch.randn(6, 2, generator=g)))
    return out


def _diffpir_lam(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    return diffpir_step(den, problem, y, x_t, t, t_prev, 1 / lam, zeta, z)


def _diffpir_zeta(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    sched = den.schedule
    x0_hat = problem.prox(den(x_t, t), y, sched.s(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * ((1 - zeta) * eps_hat + zeta * z)


def _diffpir_eps_prior(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    sched = den.schedule
    x0 = den(x_t, t)
    x0_hat = problem.prox(x0, y, sched.s(t).item() / lam ** 0.5)
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps = (x_t - ab ** 0.5 * x0) / (1 - ab) ** 0.5
    return ab_prev ** 0.5 * x0_hat + (1 - ab_prev) ** 0.5 * ((1 - zeta) ** 0.5 * eps + zeta ** 0.5 * z)


register(Exercise(
    "02.3", "one DiffPIR step: denoise, proximal data step, re-noise",
    "diffpir_step(den, problem, y, x_t, t, t_prev, lam, zeta, z) -> x_{t_prev}",
    diffpir_step, _diffpir_ref, _diffpir_cases,
    [Mistake(_diffpir_lam, "the prox radius is r_t = s(t) / sqrt(lam): a larger lambda trusts the "
             "prior more, so the radius shrinks."),
     Mistake(_diffpir_zeta, "mix the noises by their variances: sqrt(1 - zeta) eps_hat + sqrt(zeta) z."),
     Mistake(_diffpir_eps_prior, "eps_hat comes from the corrected x0_hat, not from the denoiser's x0.")],
    nudge="Three moves: an estimate of x0 that agrees with y, the noise that this estimate implies "
          "for x_t, and a new noisy state at t_prev built from the two. Which moves mix "
          "variances, and which mix values?",
    hint="The data step is problem.prox around the denoiser output, with a radius that shrinks "
         "as lambda grows; the implied noise solves the forward equation x_t = sqrt(ab) x0 + "
         "sqrt(1 - ab) eps for eps, using the corrected estimate; mix the old and fresh noise so "
         "that the result still has unit variance.",
    formula="x0_hat = prox(D(x_t, t), y, s(t) / sqrt(lam)); eps_hat = (x_t - sqrt(ab_t) x0_hat) / "
            "sqrt(1 - ab_t); x' = sqrt(ab') x0_hat + sqrt(1 - ab') (sqrt(1 - zeta) eps_hat + "
            "sqrt(zeta) z)."))



# -- 02.4 which sampler does a learned denoiser hurt most? (predict) -------------------------------
SHOWN = ("dps", "diffpir", "daps")

register(Prediction(
    "02.4", "which sampler loses the most when the exact denoiser becomes the learned MLP?",
    "hurt_most", "dps",
    lambda p, m: ("DiffPIR and DAPS only evaluate the denoiser; DPS differentiates it, and a "
                  "network trained to fit its outputs is not trained to fit their Jacobian: "
                  "the vector-Jacobian product of a learned network can point far from the "
                  "exact one even where its outputs are close."),
    options=SHOWN,
    feedback={"diffpir": "DiffPIR calls the network only 100 times and never differentiates it; "
                         "its proximal step uses the exact operator.",
              "daps": "DAPS uses the network only inside its ODE estimate; its Langevin steps "
                      "on x0 use the exact likelihood, not the network."},
    nudge="The three samplers use the same network in different ways. Which of them needs "
          "something from the network that training never asked it to get right?",
    hint="Denoising score matching fits the network's outputs. Which sampler uses the "
         "network's derivatives as well?",
    formula="the one with the backward pass: DPS uses J_D(x_t)^T, which training does not "
            "control; largest SW(learned) - SW(exact) among dps, diffpir, daps."))


# -- 02.5 build: a whole DPS loop on a budget --------------------------------------------------------
def dps_sampler(den, problem, y, n, generator):
    """DPS with 200 DDPM steps (zeta = 0.3, the norm form), from pure noise."""
    sched = den.schedule
    grid = sched.timesteps(200)
    x = torch.randn(n, problem.operator.adjoint(y).numel(), generator=generator, dtype=y.dtype)
    for k, t in enumerate(grid):
        leaf = x.detach().requires_grad_()
        x0 = den(leaf, t)
        misfit = problem.residual(x0, y).flatten(1).norm(dim=1).sum()
        (g_x,) = torch.autograd.grad(misfit, leaf)
        x0, ab = x0.detach(), sched.abar(t).item()
        ab_prev = sched.abar(grid[k + 1]).item() if k + 1 < len(grid) else 1.0
        eps = (x - ab ** 0.5 * x0) / (1 - ab) ** 0.5
        c = ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = ab_prev ** 0.5 * x0 + (1 - ab_prev - c * c) ** 0.5 * eps + c * z - 0.3 * g_x
    return x.detach()


register(Scored(
    "02.5", "a whole DPS loop on the 2D problem, in at most 200 network calls",
    "dps_sampler(den, problem, y, n, generator) -> (n, 2) samples", dps_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=200), threshold=2.0,
    unit="x the noise floor",
    nudge="One step is two moves you have written already: a prior step of chapter 01 and the "
          "guidance of exercise 02.1. What must one denoiser call give both of them?",
    hint="Start from N(0, I) noise; on a grid of 200 decreasing times, call the denoiser once on "
         "a leaf tensor, take the DDPM step of chapter 01 from (x_t, D(x_t, t)) to the next "
         "time, and subtract zeta times the gradient of the summed residual norms.",
    formula="x0 = D(x_t, t); x' = sqrt(ab') x0 + sqrt(1 - ab' - c^2) eps_hat + c z with "
            "c^2 = (1 - ab')/(1 - ab) (1 - ab/ab'); x_{t'} = x' - zeta grad_{x_t} |A x0 - y|, "
            "zeta = 0.3, 200 steps."))


# -- 02.6 mini-project: beat DiffPIR without a backward pass -----------------------------------------
def no_backward_sampler(den, problem, y, n, generator):
    """DiffPIR's loop with all-fresh re-noising (zeta = 1): each step forgets the old noise."""
    sched = den.schedule
    grid = sched.timesteps(100, "sqrt")
    x = torch.randn(n, problem.operator.adjoint(y).numel(), generator=generator, dtype=y.dtype)
    with torch.no_grad():
        for k, t in enumerate(grid):
            est = problem.prox(den(x, t), y, sched.s(t).item())
            if k + 1 == len(grid):
                return est
            ab_next = sched.abar(grid[k + 1]).item()
            fresh = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = ab_next ** 0.5 * est + (1 - ab_next) ** 0.5 * fresh
    return x


register(Scored(
    "02.6", "mini-project: closer than DiffPIR's defaults on the 2D problem, in at most 100 "
    "calls, no backward pass", "no_backward_sampler(den, problem, y, n, generator) -> (n, 2) "
    "samples", no_backward_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=100, backward=False),
    threshold=7.0, kind="project", unit="x the noise floor",
    nudge="DiffPIR's samples put the wrong mass in each mode. Which of its choices decides how "
          "much a step remembers of where the chain was before?",
    hint="Try DiffPIR's knobs one at a time (zeta, lambda, the grid, the number of steps) and "
         "score each change; then try ideas of your own (docs/adding_a_method.md shows how to "
         "turn one into a library method).",
    formula="no single formula; one that works: DiffPIR with zeta = 1 (all fresh noise at each "
            "re-noising), 100 steps on the sqrt grid."))
