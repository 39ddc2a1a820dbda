"""Chapter 05 exercises (Spin): the correction (gradient descent through A only), Spin without
its guided steps, the worth of more guided steps, a whole Spin loop built by hand, and an open
mini-project.

Equations (samplers/spin.py): C(x0) runs ``opt_steps`` steps x <- x - lr / L grad f(x) on
f(x) = |y - A x|^2 + mu |x - x0|^2 from x = x0, grad f = 2 A^T (A x - y) + 2 mu (x - x0),
L = 2 (|A|^2 + mu); a warm-start round is x0 = C(D(x_t*, t*)), x_t* = sqrt(ab) x0 + sqrt(1 - ab) z;
then DDIM from t* with C applied to the denoised x0 at a few scheduled times.
"""
from __future__ import annotations

import torch

import math

from .base import Exercise, Mistake, register
from .kinds import Prediction, Scored, band
from .scoring import sampler_score
from .. import operators
from ..operators import InverseProblem
from ..samplers import spin


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 05.1 the correction ---------------------------------------------------------------------------
def spin_correction(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0):
    """Gradient descent on |y - A x|^2 + mu |x - x0|^2 from x0, step lr / (2 (|A|^2 + mu))."""
    op = problem.operator
    L = 2 * (op.norm_squared(x0.shape[1:]) + mu)
    x = x0.clone()
    for _ in range(opt_steps):
        grad = 2 * op.adjoint(op(x) - y) + 2 * mu * (x - x0)
        x = x - lr / L * grad
    return x


def _correction_ref(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0):
    return spin.correct(problem, y, x0, "gd", opt_steps, lr, mu)


def _correction_cases():
    g, out = _gen(4), []
    blur = InverseProblem(operators.Blur(operators.gaussian_kernel(5, 1.2), (1, 8, 8)), 0.05)
    y = blur.measure(torch.randn(1, 8, 8, generator=g), generator=g)
    out.append((blur, y, torch.randn(3, 1, 8, 8, generator=g), 10, 1.0, 0.0))
    out.append((blur, y, torch.randn(3, 1, 8, 8, generator=g), 5, 0.8, 0.5))
    U = torch.linalg.qr(torch.randn(3, 3, generator=g))[0]
    V = torch.linalg.qr(torch.randn(5, 3, generator=g))[0]
    A = U @ torch.diag(torch.tensor([2.0, 0.7, 0.3])) @ V.T   # |A|^2 = 4, a clear spectral gap
    mat = InverseProblem(operators.Matrix(A), 0.1)
    out.append((mat, torch.randn(3, generator=g), torch.randn(4, 5, generator=g), 8, 1.0, 0.2))
    return out


def _correction_no_two(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0):
    return spin_correction(problem, y, x0, opt_steps, 2 * lr, mu)


def _correction_sign(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0):
    op = problem.operator
    L = 2 * (op.norm_squared(x0.shape[1:]) + mu)
    x = x0.clone()
    for _ in range(opt_steps):
        x = x - lr / L * (2 * op.adjoint(op(x) - y) - 2 * mu * (x - x0))
    return x


def _correction_one_step(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0):
    return spin_correction(problem, y, x0, 1, lr, mu)


register(Exercise(
    "05.1", "the Spin correction: a few gradient steps through the operator only",
    "spin_correction(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0) -> x",
    spin_correction, _correction_ref, _correction_cases,
    [Mistake(_correction_no_two, "the Lipschitz constant of grad f is L = 2 (|A|^2 + mu): the "
             "gradient carries a factor 2, so does L."),
     Mistake(_correction_sign, "the proximity term pulls towards x0: its gradient is +2 mu (x - x0)."),
     Mistake(_correction_one_step, "run opt_steps steps, each from the current x (x0 stays fixed "
             "only inside the mu term).")],
    nudge="Write f as a sum of two squared norms and differentiate each; the step size that is "
          "safe for any x is one over the largest curvature of f.",
    hint="The gradient of |y - A x|^2 goes through A's adjoint (op.adjoint), and carries a factor "
         "2, as does that of the proximity term; the curvature of f is twice (|A|^2 + mu), with "
         "|A|^2 from op.norm_squared(x0.shape[1:]). Each step starts from the current x.",
    formula="grad f(x) = 2 A^T (A x - y) + 2 mu (x - x0);  L = 2 (|A|^2 + mu);  repeat opt_steps "
            "times: x <- x - (lr / L) grad f(x), from x = x0."))


# -- 05.2 break it: Spin without its guided steps -----------------------------------------------------
UNGUIDED_OPTIONS = ("the samples leave the measurement line: the residual grows several-fold",
                    "little changes: the warm start has already put the chain on the line",
                    "the samples fit y even more closely")
UNGUIDED_BANDS = (0.7, 3.0)      # edges in residual(no guided steps) / residual(Spin)


def unguided_band(ratio: float) -> str:
    """Which option a measured residual ratio falls in (edges: ``UNGUIDED_BANDS``)."""
    return band(ratio, UNGUIDED_BANDS, UNGUIDED_OPTIONS[::-1])


register(Prediction(
    "05.2", "break it: Spin without its guided steps, on the 2D problem", "no_guidance",
    UNGUIDED_OPTIONS[0],
    lambda p, m: ("The warm start puts x0 on the line a^T x = y, but it then re-noises to t*: at "
                  "s(t*) of about 2 the noise is far larger than the posterior's width across the "
                  "line, and plain DDIM from there follows the prior alone. Nothing after t* "
                  "knows y, so the samples spread over the prior's modes near the line's region "
                  "instead of on it; the scheduled corrections are what keep fitting y."),
    kind="break", options=UNGUIDED_OPTIONS,
    feedback={UNGUIDED_OPTIONS[1]: "the warm start's x_t* carries the data only through its "
              "mean; DDIM's 30 steps from t* = 400 denoise with the prior, which does not know y.",
              UNGUIDED_OPTIONS[2]: "removing every data step after t* cannot fit y better: the "
              "DDIM steps see only the prior."},
    nudge="After the warm start, which steps of Spin still know y? What does DDIM do to a state "
          "with noise level s(t*) when nothing pulls it towards the data?",
    hint="Compare the size of the noise at t* = 400 with the posterior's width across the line "
         "a^T x = y (sigma = 0.25 over |a|); plain DDIM from there lands where the prior puts "
         "mass.",
    formula="ratio = mean |a^T x - y| without guided steps / the same with 8; bands < 0.7, "
            "0.7-3, > 3 (the residual grows several-fold)."))


# -- 05.3 more guided steps (predict) -------------------------------------------------------------
MORE_OPTIONS = ("rises by more than 1 dB", "changes by less than 1 dB", "falls by more than 1 dB")


def more_band(gain_db: float) -> str:
    """Which option a measured PSNR change (20 guided steps minus 8) falls in."""
    return MORE_OPTIONS[0] if gain_db > 1 else MORE_OPTIONS[2] if gain_db < -1 else MORE_OPTIONS[1]


register(Prediction(
    "05.3", "Spin with 20 guided steps instead of 8 (super-resolution by 4)", "more_guidance",
    MORE_OPTIONS[1],
    lambda p, m: ("Each correction fits the directions A sees (the 4 x 4 block means); after 8 "
                  "of them spread over the intermediate times, the denoising steps between them "
                  "keep the hidden pixels consistent with those means. More corrections fit the same directions again: 2.5 times "
                  "the operator work for a change within the spread of a few digits."),
    options=MORE_OPTIONS,
    feedback={MORE_OPTIONS[0]: "the corrections only ever fit what A measures; once that is "
              "fitted, repeating them adds no information about the hidden pixels.",
              MORE_OPTIONS[2]: "a correction is an early-stopped fit from the denoised estimate; "
              "at intermediate times the later denoising steps smooth what it leaves."},
    nudge="What does one correction change, and what can it never change? Once the directions A "
          "sees are fitted, what is a further correction left to do?",
    hint="Super-resolution measures block means; a correction sets those and leaves the rest to "
         "the prior. Think of the residual after 8 corrections against the noise level.",
    formula="gain = PSNR(20 guided) - PSNR(8 guided), mean over the sweep's digits; bands > 1 dB, "
            "-1 to 1 dB, < -1 dB: diminishing returns, within 1 dB."))


# -- 05.4 a whole Spin loop (build) ---------------------------------------------------------------
def spin_sampler(den, problem, y, n, generator, t_star=400, warm=3, steps=30, guided=8, eta=0.0):
    """Spin by hand: C(0), M warm-start rounds at t*, then DDIM with a few corrected steps."""
    sched = den.schedule

    def noised(x0, t):
        ab = sched.abar(t).item()
        fresh = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        return math.sqrt(ab) * x0 + math.sqrt(1 - ab) * fresh

    shape = problem.operator.adjoint(y[None]).shape[1:]
    x = noised(spin_correction(problem, y, torch.zeros(n, *shape)), t_star)
    for _ in range(warm):
        x = noised(spin_correction(problem, y, den(x, t_star)), t_star)
    grid = sched.timesteps(steps, t_max=t_star)
    window = [t for t in grid[1:] if t >= 30]
    picks = [round(i * (len(window) - 1) / max(guided - 1, 1)) for i in range(guided)]
    at = {window[i] for i in picks}
    for j, t in enumerate(grid):
        ab = sched.abar(t).item()
        x0 = den(x, t)
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        if t in at:
            x0 = spin_correction(problem, y, x0)
        if j + 1 == len(grid):
            return x0
        ab_next = sched.abar(grid[j + 1]).item()
        c = min(eta * math.sqrt((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)),
                math.sqrt(1 - ab_next))
        x = math.sqrt(ab_next) * x0 + math.sqrt(max(1 - ab_next - c * c, 0.0)) * eps
        if c > 0:
            x = x + c * torch.randn(x.shape, generator=generator, dtype=x.dtype)


register(Scored(
    "05.4", "a whole Spin loop on the 2D problem, written by hand",
    "spin_sampler(den, problem, y, n, generator) -> (n, 2) samples", spin_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=33, backward=False),
    threshold=9.5, unit="x the noise floor",
    nudge="Two phases: one that places the chain at an intermediate noise level already "
          "consistent with y, and one that walks down from there, fitting y only now and then. "
          "Which of the course's updates does the walking?",
    hint="Start from your correction of exercise 05.1 applied to zeros; noise it to t* = 400; "
         "three rounds of denoise at t*, correct, re-noise; then 30 DDIM steps from t* "
         "(sched.timesteps(30, t_max=400)), with the correction replacing the denoised x0 at "
         "8 of them spread over the times in [30, 400). Keep the network's eps after a "
         "correction; the last step returns x0.",
    formula="x0 = C(0); x = sqrt(ab*) x0 + sqrt(1-ab*) z; 3 x: x = renoise(C(den(x, t*))); for t in "
            "grid: x0 = den(x, t), eps = (x - sqrt(ab) x0) / sqrt(1-ab), x0 = C(x0) at guided t, "
            "x = sqrt(ab') x0 + sqrt(1-ab') eps (eta = 0)."))


# -- 05.5 mini-project: beat the default Spin on the 2D problem -----------------------------------
def project_sampler(den, problem, y, n, generator):
    """Spin with DDPM-like noise (eta = 1) and 16 guided steps: 33 calls, no backward pass."""
    return spin_sampler(den, problem, y, n, generator, guided=16, eta=1.0)


register(Scored(
    "05.5", "mini-project: closer than the default Spin on the 2D problem, same budget",
    "project_sampler(den, problem, y, n, generator) -> (n, 2) samples", project_sampler,
    lambda f: sampler_score(f, "2d-bimodal", n=1000, nfe_budget=33, backward=False),
    threshold=6.9, kind="project", unit="x the noise floor",
    nudge="Spin's samples sit almost exactly on the measurement line and its DDIM phase is "
          "deterministic: where does the posterior have spread that Spin's samples lack?",
    hint="Try one change at a time with the score: eta (fresh noise in the DDIM steps), the "
         "number of guided steps, t*, the split of the 33 calls between warm start and DDIM.",
    formula="no single formula; one that works: eta = 1 with 16 guided steps (the chapter prints "
            "the default's score on the same scale)."))
