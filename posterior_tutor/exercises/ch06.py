"""Chapter 06 exercises: the APS ELBO weight w_t and the log-density of an affine coupling flow.

Equations: w_t = beta_t / (2 alpha_t (1 - ab_t)) for t >= t_min, 0 below (trained/aps/elbo.py,
``elbo_weights``); for x = G(z) with x_a = z_a, x_b = z_b exp(s(z_a)) + t(z_a) (the coupling of
trained/aps/layers.py and of RealNVP), log q(x) = log N(z; 0, I) - sum s(x_a), z = G^-1(x).  The coupling's
reference is the change of variables with the Jacobian computed by autograd.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import Exercise, Mistake, register
from ..schedules import VPSchedule


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 06.1 the ELBO weight --------------------------------------------------------------------------
def elbo_weights(sched, t_min=1):
    """w_t = beta_t / (2 alpha_t (1 - ab_t)), alpha_t = 1 - beta_t; zero for t < t_min."""
    b, ab = sched.betas, sched.alpha_bar
    w = b / (2 * (1 - b) * (1 - ab))
    w[:t_min] = 0
    return w


def _elbo_ref(sched, t_min=1):
    from ..trained.aps.elbo import elbo_weights as library_weights   # torch.nn loads here
    return library_weights(sched, t_min)


def _elbo_cases():
    return [(VPSchedule(), 1), (VPSchedule(T=200, beta_end=0.05), 10), (VPSchedule(), 50)]


def _elbo_no_alpha(sched, t_min=1):
    w = sched.betas / (2 * (1 - sched.alpha_bar))
    w[:t_min] = 0
    return w


def _elbo_abar(sched, t_min=1):
    w = sched.betas / (2 * sched.alpha_bar * (1 - sched.alpha_bar))
    w[:t_min] = 0
    return w


def _elbo_no_cut(sched, t_min=1):
    b, ab = sched.betas, sched.alpha_bar
    w = b / (2 * (1 - b) * (1 - ab))
    w[:1] = 0
    return w


register(Exercise(
    "06.1", "the APS ELBO weight w_t of the diffusion prior term", "elbo_weights(sched, t_min=1) -> w (T,)",
    elbo_weights, _elbo_ref, _elbo_cases,
    [Mistake(_elbo_no_alpha, "the denominator has alpha_t = 1 - beta_t too: "
             "w_t = beta_t / (2 alpha_t (1 - ab_t))."),
     Mistake(_elbo_abar, "alpha_t is the one-step 1 - beta_t (sched.betas), not abar_t."),
     Mistake(_elbo_no_cut, "set every w_t with t < t_min to 0 (w[:t_min] = 0).")],
    hint="b, ab = sched.betas, sched.alpha_bar; w = b / (2 (1 - b) (1 - ab)); w[:t_min] = 0.",
    rtol=1e-8, atol=1e-12))


# -- 06.2 the change of variables through an affine coupling --------------------------------------
def coupling_log_prob(x, s_net, t_net):
    """log q(x) for x = G(z), z ~ N(0, I): x_a = z_a, x_b = z_b exp(s(z_a)) + t(z_a), a the first
    half of the coordinates (d // 2)."""
    k = x.shape[1] // 2
    xa, xb = x[:, :k], x[:, k:]
    s = s_net(xa)
    z = torch.cat([xa, (xb - t_net(xa)) * torch.exp(-s)], 1)
    log_n = -0.5 * z.pow(2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)
    return log_n - s.sum(1)


def _coupling_ref(x, s_net, t_net):
    """log N(G^-1(x)) + log |det d G^-1 / dx|, the Jacobian by autograd, one sample at a time."""
    k = x.shape[1] // 2

    def inverse(v):
        va, vb = v[:k], v[k:]
        return torch.cat([va, (vb - t_net(va[None])[0]) * torch.exp(-s_net(va[None])[0])])

    out = []
    for v in x:
        z = inverse(v)
        J = torch.autograd.functional.jacobian(inverse, v)
        normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
        out.append(normal.log_prob(z).sum() + torch.linalg.slogdet(J)[1])
    return torch.stack(out).detach()


def _net(k_in, k_out, seed):
    torch.manual_seed(seed)  # a fixed, seeded small network
    net = nn.Sequential(nn.Linear(k_in, 16), nn.Tanh(), nn.Linear(16, k_out)).double()
    return net.requires_grad_(False)


def _coupling_cases():
    g, out = _gen(6), []
    rng = torch.random.get_rng_state()
    try:
        for d, seed in [(2, 10), (4, 11), (6, 12)]:
            k = d // 2
            out.append((1.5 * torch.randn(7, d, generator=g, dtype=torch.float64),
                        _net(k, d - k, seed), _net(k, d - k, seed + 100)))
    finally:
        torch.random.set_rng_state(rng)  # do not disturb the caller's global random stream
    return out


def _coupling_sign(x, s_net, t_net):
    return coupling_log_prob(x, s_net, t_net) + 2 * s_net(x[:, :x.shape[1] // 2]).sum(1)


def _coupling_no_const(x, s_net, t_net):
    return coupling_log_prob(x, s_net, t_net) + 0.5 * x.shape[1] * math.log(2 * math.pi)


def _coupling_no_inverse(x, s_net, t_net):
    s = s_net(x[:, :x.shape[1] // 2])
    return -0.5 * x.pow(2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi) - s.sum(1)


register(Exercise(
    "06.2", "the change of variables through an affine coupling layer",
    "coupling_log_prob(x, s_net, t_net) -> log q(x) (n,)",
    coupling_log_prob, _coupling_ref, _coupling_cases,
    [Mistake(_coupling_sign, "x_b = z_b exp(s) stretches volume by exp(sum s): log q(x) = "
             "log N(z) - sum s (a minus sign)."),
     Mistake(_coupling_no_const, "log N(z; 0, I) includes -d/2 log(2 pi)."),
     Mistake(_coupling_no_inverse, "evaluate the Gaussian at z = G^-1(x): z_b = (x_b - t(x_a)) "
             "exp(-s(x_a)), not at x.")],
    hint="k = d // 2; s = s_net(x_a); z = [x_a, (x_b - t_net(x_a)) exp(-s)]; "
         "log q = -|z|^2/2 - d/2 log(2 pi) - sum s.", rtol=1e-6, atol=1e-8))
