"""Chapter 05 exercises: the Spin correction (gradient descent through A only) and one warm-start
round.

Equations (samplers/spin.py): C(x0) runs ``opt_steps`` steps x <- x - lr / L grad f(x) on
f(x) = |y - A x|^2 + mu |x - x0|^2 from x = x0, grad f = 2 A^T (A x - y) + 2 mu (x - x0),
L = 2 (|A|^2 + mu); a warm-start round is x0 = C(D(x_t*, t*)), x_t* = sqrt(ab) x0 + sqrt(1 - ab) z.
"""
from __future__ import annotations

import torch

from .base import Exercise, Mistake, register
from .. import operators, toy
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
    hint="L = 2 (op.norm_squared(shape) + mu); repeat opt_steps times: grad = 2 A^T (A x - y) + "
         "2 mu (x - x0); x = x - lr / L * grad (op.adjoint gives A^T)."))


# -- 05.2 one warm-start round ---------------------------------------------------------------------
def warm_start_round(den, correct, x_t, t_star, z):
    """Denoise at t*, correct, re-noise to t* with the noise z: returns (x0, x_t*)."""
    ab = den.schedule.abar(t_star).item()
    x0 = correct(den(x_t, t_star))
    return x0, ab ** 0.5 * x0 + (1 - ab) ** 0.5 * z


def _warm_ref(den, correct, x_t, t_star, z):
    x0 = correct(den(x_t, t_star))
    return x0, den.schedule.add_noise(x0, t_star, noise=z)


class _Projection:
    """The toy problem's correction: one projection onto the measurement line (spin.correct)."""

    def __init__(self, problem, y):
        self.problem, self.y = problem, y

    def __call__(self, x0):
        return spin.correct(self.problem, self.y, x0, "gd", 30, 1.0, 0.0)


def _warm_cases():
    tp, g = toy.bimodal_problem_2d(), _gen(5)
    den, corr = tp.prior.denoiser(), _Projection(tp.problem, tp.y)
    return [(den, corr, torch.randn(5, 2, generator=g), t, torch.randn(5, 2, generator=g))
            for t in (400, 250)]


def _warm_prior(den, correct, x_t, t_star, z):
    ab = den.schedule.abar(t_star).item()
    x0_prior = den(x_t, t_star)
    return correct(x0_prior), ab ** 0.5 * x0_prior + (1 - ab) ** 0.5 * z


def _warm_ve(den, correct, x_t, t_star, z):
    x0 = correct(den(x_t, t_star))
    return x0, x0 + den.schedule.s(t_star).item() * z


register(Exercise(
    "05.2", "one warm-start round at t*: denoise, correct, re-noise",
    "warm_start_round(den, correct, x_t, t_star, z) -> (x0, x_t_star)",
    warm_start_round, _warm_ref, _warm_cases,
    [Mistake(_warm_prior, "re-noise the *corrected* x0, so the data's information is carried "
             "into the next round."),
     Mistake(_warm_ve, "re-noise with the VP formula sqrt(ab) x0 + sqrt(1 - ab) z (the denoiser "
             "expects VP inputs), not x0 + s(t) z."),
     Mistake(lambda den, c, x, t, z: (den(x, t), den.schedule.add_noise(c(den(x, t)), t, noise=z)),
             "return the corrected x0 as the first value.")],
    hint="x0 = correct(den(x_t, t_star)); ab = den.schedule.abar(t_star); "
         "return x0, sqrt(ab) x0 + sqrt(1 - ab) z."))
