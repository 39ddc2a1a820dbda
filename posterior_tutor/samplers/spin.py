"""Spin: sparse scheduled guidance with a warm start (Shtanchaev et al. 2026, arXiv 2603.07860;
v1 "Guess & Guide", ICLR 2026 workshop).  No code is public; this is the method as the paper
describes it, in pixel space.

One *correction* C(x0) takes a denoised estimate x0 and runs a few optimiser steps on

    f(x) = |y - A(x)|^2 + mu |x - x0|^2,          started at x = x0,

with gradients through the operator A only (2 J_A(x)^T (A(x) - y) + 2 mu (x - x0)); the denoiser is
never differentiated, so no backward pass goes through the network, and a nonlinear A needs nothing
more than its vector-Jacobian product (autograd through A).  "gd": x <- x - (lr / L) grad f, L = 2 (|A|^2 + mu) the Lipschitz
constant of grad f (so lr < 2 is stable for every operator; lr = 1 on inpainting replaces the observed
pixels by y in one step); "adam": torch.optim.Adam with learning rate lr (pixel units).  A few steps
of gradient descent from x0 are an early-stopped (Landweber) fit: the directions A sees well are
fitted, those it hardly sees keep the prior's value.

Phase 1, warm start at a fixed t* ("guess"):

    x0^(0) = C(0)                                      (the data's own guess; no network call)
    x_t*   = sqrt(ab_t*) x0^(0) + sqrt(1 - ab_t*) z
    repeat M times:  x0 = D(x_t*, t*);  x0 <- C(x0);  x_t* = sqrt(ab_t*) x0 + sqrt(1 - ab_t*) z

Phase 2, DDIM from t* to 0 on ``steps`` uniform times t* = t_1 > ... > t_N ("guide"):

    x0 = D(x_t, t);  eps = (x_t - sqrt(ab_t) x0) / sqrt(1 - ab_t)
    at the scheduled (guided) times only:  x0 <- C(x0)          (eps keeps the network's value)
    x_{t'} = sqrt(ab_t') x0 + sqrt(1 - ab_t' - c^2) eps + c z,   c from eta (DDIM, Song et al. 2021)

Network calls: M + N; backward passes through the network: 0.  The guided times are an explicit
list of grid times, or a number k spread evenly over the grid times in [guide_until, t*) (the
intermediate noise levels: the first DDIM step at t* follows the warm start, which has just
corrected, and below ``guide_until`` a correction leaves artefacts the few remaining denoising
steps cannot remove).

Departures from the paper, and why:
* The paper's t*, M, schedule, optimiser and its settings are not public; ours were chosen by a
  one-change-at-a-time sweep on four MNIST tasks and the toy problems (``docs/notes/spin.md``):
  t* 400, M 3, 30 DDIM steps, 8 guided in [30, 400), gd with lr 1/L, 30 steps, mu 0, eta 0
  (33 network calls); eta 1 and mu 0.5 both did worse (measured: docs/notes/spin.md,
  'samplers/spin.py').
* The initial guess C(0) (the same correction started at 0) is our choice; the paper warm-starts
  from a "guess" it does not specify.  It uses no network call and works for nonlinear A.
* After a guided correction the DDIM update keeps the network's eps (DDNM / DiffPIR with zeta = 0)
  rather than drawing fresh noise, so that eta alone sets how stochastic phase 2 is.
"""
from __future__ import annotations

import torch

from .base import Step, register
from .diffusion import ddim_update, eps_from_x0, renoise
from ..checks.options import Anything, Choice, Int, Real

OPTIMIZERS = ("gd", "adam")
OPTIONS = {"t_star": Int(1, lambda c: c["T"] - 1), "warm_start": Int(0), "steps": Int(1),
           "guided": Anything(), "guide_until": Int(0, lambda c: c["T"] - 1),
           "optimizer": Choice(*OPTIMIZERS), "opt_steps": Int(0),
           "lr": Real(0, low_open=True, hint="< 2 for 'gd'"), "mu": Real(0), "eta": Real(0, 1)}


# -- the correction --------------------------------------------------------------------------------
def data_lipschitz_sq(problem, shape) -> float:
    """|A|^2 (largest eigenvalue of A^T A; for a nonlinear A the operator's bound on |J_A|^2)."""
    op = problem.operator
    return float(op.norm_squared(shape) if op.linear else op.lipschitz_squared(shape))


def correct(problem, y, x0, optimizer: str = "gd", opt_steps: int = 30, lr: float = 1.0,
            mu: float = 0.0, a_norm_sq: float | None = None) -> torch.Tensor:
    """C(x0): ``opt_steps`` steps of ``optimizer`` on f (see the module docstring), started at x0.

    grad f(x) = 2 J_A(x)^T (A(x) - y) + 2 mu (x - x0) comes from the operator's vector-Jacobian
    product (the adjoint for a linear A, autograd through A for a nonlinear one): gradients go
    through A only.  ``a_norm_sq`` is |A|^2 (computed when not given; "gd" needs it)."""
    x0 = x0.detach()
    if optimizer == "gd" and a_norm_sq is None:
        a_norm_sq = data_lipschitz_sq(problem, x0.shape[1:])
    x = x0.clone()
    adam = torch.optim.Adam([x], lr=lr) if optimizer == "adam" else None
    with torch.enable_grad():  # a nonlinear operator's vjp differentiates A (and only A)
        for _ in range(opt_steps):
            grad = 2 * problem.operator.vjp(x, problem.residual(x, y))
            if mu:
                grad = grad + 2 * mu * (x - x0)
            if adam is None:
                x = x - lr / (2 * (a_norm_sq + mu)) * grad
            else:
                x.grad = grad
                adam.step()
    return x.detach()


# -- options -------------------------------------------------------------------------------------
def guided_times(grid: list[int], guided, guide_until: int) -> list[int]:
    """The DDIM times where the correction runs: ``guided`` as an explicit list of grid times, or a
    number k of times spread evenly over the grid times in [guide_until, t*) (t* = grid[0]); with
    fewer grid times than k in that window (few ``steps``), every one of them."""
    if isinstance(guided, bool):
        raise ValueError(f"guided must be a number of steps or a list of times, got {guided!r}.")
    if isinstance(guided, int):
        if guided < 0:
            raise ValueError(f"guided must be >= 0 (a number of corrected DDIM steps), got {guided}.")
        window = [t for t in grid[1:] if t >= guide_until]
        k = min(guided, len(window))
        if k == 0:
            return []
        idx = torch.linspace(0, len(window) - 1, k).round().long().tolist()
        return sorted({window[i] for i in idx}, reverse=True)
    try:
        times = [int(t) for t in guided]
    except (TypeError, ValueError):
        raise ValueError(f"guided must be a number of steps (int) or a list of grid times, got "
                         f"{guided!r}.") from None
    outside = [t for t in times if t not in grid]
    if outside:
        raise ValueError(f"guided times {outside} are not on the DDIM grid; pick times from the "
                         f"grid {grid} (it depends on t_star and steps).")
    return sorted(set(times), reverse=True)


def _residual_norm(problem, y, x):
    return problem.residual(x, y).flatten(1).norm(dim=1)


def _extras(problem, y, x0_prior, x0):
    return {"correction": x0 - x0_prior, "x0_prior": x0_prior,
            "residual_before": _residual_norm(problem, y, x0_prior),
            "residual_after": _residual_norm(problem, y, x0)}


def check_call(den, problem, shape, o):
    """The rules across options, at the call (each option's own kind and range is in OPTIONS):
    steps fit below t_star, lr < 2 for 'gd', guided times on the grid."""
    if o["steps"] > o["t_star"] + 1:
        raise ValueError(f"cannot place steps={o['steps']} distinct DDIM steps between "
                         f"t_star={o['t_star']} and 0: use steps <= {o['t_star'] + 1} or a larger "
                         "t_star.")
    if o["optimizer"] == "gd" and not o["lr"] < 2:
        raise ValueError(f"lr must be > 0 (and < 2 for 'gd', where it is a fraction of 1/L and "
                         f"2 is the stability limit), got {o['lr']!r}.")
    guided_times(den.schedule.timesteps(o["steps"], t_max=o["t_star"]), o["guided"],
                 o["guide_until"])


# -- the sampler -----------------------------------------------------------------------------------
@register("spin", "Spin: warm start at t*, then DDIM with a few scheduled pixel-space corrections "
                  "(no backward pass)", options=OPTIONS, check=check_call,
          steps_of=lambda o: o["warm_start"] + o["steps"])
def run(den, problem, y, n, generator=None, shape=None, t_star: int = 400, warm_start: int = 3,
        steps: int = 30, guided=8, guide_until: int = 30, optimizer: str = "gd",
        opt_steps: int = 30, lr: float = 1.0, mu: float = 0.0, eta: float = 0.0):
    """Spin (the module docstring has the equations, docs/notes/spin.md the sweep behind the
    defaults).

    t_star      : warm-start time t* (0 < t* < T); the paper's value is not public.
    warm_start  : M, denoise -> correct -> re-noise rounds at t* (M network calls).
    steps       : DDIM steps from t* down to 0 (network calls).
    guided      : number of corrected DDIM steps (spread over the grid times in [guide_until, t*);
                  all of them if there are fewer) or a list of grid times; 0 gives the warm start
                  followed by plain DDIM.
    guide_until : lowest time the rule ``guided=k`` may pick.
    optimizer   : "gd" (lr as a fraction of 1/L) or "adam" (lr in pixel units).
    opt_steps   : optimiser steps per correction (operator calls only).
    lr          : learning rate (see optimizer).
    mu          : weight of the proximity term mu |x - x0|^2.
    eta         : DDIM noise (0 deterministic, 1 DDPM-like).
    """
    sched = den.schedule      # options checked at the call (OPTIONS, check_call)
    grid = sched.timesteps(steps, t_max=t_star)
    guided_at = set(guided_times(grid, guided, guide_until))
    opts = dict(optimizer=optimizer, opt_steps=opt_steps, lr=lr, mu=mu,
                a_norm_sq=data_lipschitz_sq(problem, shape))
    zeros = torch.zeros((n, *shape), device=y.device, dtype=y.dtype)
    x0 = correct(problem, y, zeros, **opts)
    x = renoise(sched, x0, t_star, generator)
    with torch.no_grad():
        for i in range(warm_start):
            x0_prior = den(x, t_star)
            x0 = correct(problem, y, x0_prior, **opts)
            x = renoise(sched, x0, t_star, generator)
            yield Step(i, t_star, x, x0, "warm start", _extras(problem, y, x0_prior, x0))
        yield from _ddim_phase(den, problem, y, x, grid, guided_at, opts, eta, generator, warm_start)


def _ddim_phase(den, problem, y, x, grid, guided_at, opts, eta, generator, first_index):
    sched = den.schedule
    for j, t in enumerate(grid):
        x0_prior = den(x, t)
        eps = eps_from_x0(sched, x, x0_prior, t)
        t_prev = grid[j + 1] if j + 1 < len(grid) else -1
        if t in guided_at:
            x0 = correct(problem, y, x0_prior, **opts)
            phase, extras = "guided", _extras(problem, y, x0_prior, x0)
        else:
            x0, phase, extras = x0_prior, "ddim", {"x0_prior": x0_prior}
        x = ddim_update(sched, x0, eps, t, t_prev, eta, generator)
        yield Step(first_index + j, max(t_prev, 0), x, x0, phase, extras)
