"""Chapter 04 exercises: UD2M's rho / tau rule and the two quadratics of its block combined.

Equations (trained/ud2m/block.py, ``block_levels`` and ``combined_quadratic``):
rho = sigma' s / sqrt(sigma'^2 + s^2) with s = s(t), sigma' = sigma_factor * sigma, tau the time
with s(tau) closest to rho; |z - a|^2 / (2 rho^2) + |z - x_t / sqrt(ab_t)|^2 / (2 s^2) =
|z - m|^2 / (2 r^2) + const with 1 / r^2 = 1 / rho^2 + 1 / s^2, m = r^2 (a / rho^2 + b / s^2).
"""
from __future__ import annotations

import math

import torch

from .base import Exercise, Mistake, register
from ..trained import ud2m
from ..schedules import VPSchedule


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 04.1 rho and tau ------------------------------------------------------------------------------
def rho_tau(sched, t, sigma, sigma_factor=2.0):
    """(rho, tau) of the block at outer time t."""
    s, sp = sched.s(t).item(), sigma_factor * sigma
    rho = sp * s / math.sqrt(sp ** 2 + s ** 2)
    return rho, sched.t_from_s(rho)


def _rho_ref(sched, t, sigma, sigma_factor=2.0):
    _, _, _, rho, tau = ud2m.block_levels(sched, t, sigma, sigma_factor)
    return rho, tau


def _rho_cases():
    sched = VPSchedule()
    return [(sched, 999, 0.05, 2.0), (sched, 444, 0.25, 2.0), (sched, 111, 0.05, 2.0),
            (sched, 600, 0.1, 4.0)]


def _rho_no_sqrt(sched, t, sigma, sigma_factor=2.0):
    s, sp = sched.s(t).item(), sigma_factor * sigma
    rho = sp * s / (sp ** 2 + s ** 2)
    return rho, sched.t_from_s(rho)


def _rho_sigma(sched, t, sigma, sigma_factor=2.0):
    return rho_tau(sched, t, sigma, 1.0)


def _rho_vp(sched, t, sigma, sigma_factor=2.0):
    s, sp = (1 - sched.abar(t).item()) ** 0.5, sigma_factor * sigma
    rho = sp * s / math.sqrt(sp ** 2 + s ** 2)
    return rho, sched.t_from_s(rho)


register(Exercise(
    "04.1", "UD2M's rho / tau rule: the noise level of the block's prior steps",
    "rho_tau(sched, t, sigma, sigma_factor=2.0) -> (rho, tau)", rho_tau, _rho_ref, _rho_cases,
    [Mistake(_rho_no_sqrt, "rho combines two standard deviations like parallel resistors: "
             "1/rho^2 = 1/sigma'^2 + 1/s^2, so rho = sigma' s / sqrt(sigma'^2 + s^2)."),
     Mistake(_rho_sigma, "use sigma' = sigma_factor * sigma (2 sigma by default), not sigma."),
     Mistake(_rho_vp, "s is the VE noise level s(t) = sqrt((1 - ab_t) / ab_t) (sched.s(t)), "
             "not sqrt(1 - ab_t).")],
    hint="s = sched.s(t); sigma' = sigma_factor * sigma; rho = sigma' s / sqrt(sigma'^2 + s^2); "
         "tau = sched.t_from_s(rho)."))


# -- 04.2 the two quadratics as one ----------------------------------------------------------------
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


register(Exercise(
    "04.2", "one quadratic from two: the centre and radius of the block's prox",
    "combine(x_prev, x_t, ab, rho, s) -> (m, r)", combine,
    ud2m.combined_quadratic, _combine_cases,
    [Mistake(_combine_radius, "return the radius r, not its square r^2."),
     Mistake(_combine_no_scale, "the second centre is x_t / sqrt(ab_t) (x_t carries sqrt(ab_t) x0)."),
     Mistake(_combine_average, "weight each centre by its precision: m = r^2 (a / rho^2 + b / s^2).")],
    hint="1/r^2 = 1/rho^2 + 1/s^2; m = r^2 (x_prev / rho^2 + x_t / (sqrt(ab) s^2)); return (m, r).",
    rtol=1e-6, atol=1e-8))
