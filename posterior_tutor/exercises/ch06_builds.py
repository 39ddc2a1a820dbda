"""Chapter 06's two scored exercises: a variational sampler of one's own (06.4, build) and APS
in miniature, one training run for every y (06.6, mini-project); the other four are in ch06.py.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from functools import lru_cache

import torch
from torch import nn

from .base import register
from .kinds import Scored
from .scoring import sampler_score


def _gen(seed):
    return torch.Generator().manual_seed(seed)

# -- 06.4 a variational sampler of one's own (build) ------------------------------------------------
def mixture_vi(log_prior, problem, y, n, generator):
    """A mixture of 6 full-covariance Gaussians fitted by the reverse KL, then sampled."""
    K, d = 6, 2
    means = (2 * torch.randn(K, d, generator=generator, dtype=torch.float64)).requires_grad_()
    raw = torch.diag_embed(torch.full((K, d), math.log(0.5), dtype=torch.float64)).requires_grad_()
    logits = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([means, raw, logits], lr=0.05)

    def chol():
        return torch.tril(raw, -1) + torch.diag_embed(raw.diagonal(dim1=1, dim2=2).exp())
    for _ in range(500):
        L = chol()
        x = (means[:, None] + torch.randn(K, 64, d, generator=generator, dtype=torch.float64)
             @ L.transpose(1, 2)).reshape(-1, d)
        white = torch.linalg.solve_triangular(L, (x[:, None] - means)[..., None], upper=False)
        log_n = (-0.5 * white[..., 0].pow(2).sum(-1) - d / 2 * math.log(2 * math.pi)
                 - L.diagonal(dim1=1, dim2=2).log().sum(-1))               # (K * 64, K)
        log_q = torch.logsumexp(torch.log_softmax(logits, 0) + log_n, 1)
        f = (problem.data_fit(x, y) - log_prior(x) + log_q).reshape(K, 64).mean(1)
        objective = (torch.softmax(logits, 0) * f).sum()   # sum_k pi_k E_{q_k}[...]: exact in pi
        optimiser.zero_grad()
        objective.backward()
        optimiser.step()
    pi = torch.softmax(logits, 0).detach()
    k = torch.multinomial(pi, n, replacement=True, generator=generator)
    z = torch.randn(n, d, 1, generator=generator, dtype=torch.float64)
    return (means[k] + (chol()[k] @ z)[..., 0]).detach()


@contextmanager
def _one_thread():
    """Small tensors: one torch thread is faster than several (and than oversubscribed cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def vi_score(f, n: int = 1000):
    """(SW to the exact 2D posterior / noise floor, a sentence) of ``f(log_prior, problem, y, n,
    generator)``, given the 2D prior's exact log-density."""
    from ..toy import bimodal_problem_2d
    log_prior = bimodal_problem_2d().prior.log_prob
    with _one_thread():
        ratio, _ = sampler_score(lambda den, problem, y, k, g: f(log_prior, problem, y, k, g),
                                 "2d-bimodal", n=n)
    return ratio, f"2d-bimodal: SW = {ratio:.2f} x the noise floor at n = {n}."


register(Scored(
    "06.4", "a variational sampler that covers the 2D posterior",
    "mixture_vi(log_prior, problem, y, n, generator) -> (n, 2) samples", mixture_vi, vi_score,
    threshold=2.5, unit="x the noise floor", time_limit=180,
    nudge="Exercise 06.1 showed what one Gaussian does. What family can put mass on several "
          "modes, and can you still compute log q for it?",
    hint="A mixture of Gaussians with learnable weights: write the loss as the weighted sum over "
         "components of each component's expected integrand, so the weights get exact gradients "
         "and every draw is reparameterised.",
    formula="loss = sum_k pi_k E_{z}[g(x_k) - log p(x_k) + log q(x_k)], x_k = m_k + L_k z, "
            "log q = logsumexp_j(log pi_j + log N(x; m_j, L_j L_j^T)); then draw k ~ pi, x = "
            "m_k + L_k z."))


# -- 06.6 mini-project: one training run for every y (APS in miniature) ----------------------------
PROJECT_YS = (None, -1.5, 0.0, 2.0)       # None: the chapter's y; each y has its exact posterior


def train_amortized(log_prior, problem, prior_sample, generator):
    """A mixture of 6 Gaussians whose parameters an MLP reads from y, trained by the reverse KL
    averaged over y ~ p(y); returns sample(y, n, generator)."""
    K = 6
    torch.manual_seed(int(torch.randint(2 ** 31, (1,), generator=generator)))   # the MLP's init
    net = nn.Sequential(nn.Linear(1, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(),
                        nn.Linear(64, 6 * K))
    adam = torch.optim.Adam(net.parameters(), lr=3e-3)

    def mixture(ys):                       # (B, 1) -> per y: log weights, means, Cholesky factors
        o = net(ys).reshape(-1, K, 6)
        zero = torch.zeros_like(o[..., 3])
        tril = torch.stack([torch.stack([0.5 * o[..., 3].exp(), zero], -1),
                            torch.stack([o[..., 4], 0.5 * o[..., 5].exp()], -1)], -2)
        return torch.log_softmax(o[..., 2], -1), 2 * o[..., :2], tril
    for _ in range(1000):
        xs = prior_sample(64, generator)
        ys = problem.operator(xs) + problem.sigma * torch.randn(64, 1, generator=generator)
        log_pi, mu, tril = mixture(ys)
        draws = mu[:, :, None] + torch.randn(64, K, 4, 2, generator=generator) @ tril.transpose(-1, -2)
        pts = draws.reshape(64, 4 * K, 2)
        diff = pts[:, :, None] - mu[:, None]                      # (64, 4K, K, 2)
        a, c, b = tril[:, None, :, 0, 0], tril[:, None, :, 1, 0], tril[:, None, :, 1, 1]
        u1 = diff[..., 0] / a
        u2 = (diff[..., 1] - c * u1) / b
        log_n = -0.5 * (u1 ** 2 + u2 ** 2) - (a * b).log() - math.log(2 * math.pi)
        log_q = torch.logsumexp(log_pi[:, None] + log_n, -1)
        y_rep = ys.repeat_interleave(4 * K, 0)
        integrand = problem.data_fit(pts.reshape(-1, 2), y_rep) - log_prior(pts.reshape(-1, 2))
        per = (integrand.reshape(64, 4 * K) + log_q).reshape(64, K, 4).mean(-1)
        kl = (log_pi.exp() * per).sum(-1).mean()          # + log p(y), a constant
        adam.zero_grad()
        kl.backward()
        adam.step()

    def sample(y, n, generator):
        log_pi, mu, tril = (v.detach()[0] for v in mixture(y.reshape(1, 1)))
        k = torch.multinomial(log_pi.exp(), n, replacement=True, generator=generator)
        return mu[k] + (tril[k] @ torch.randn(n, 2, 1, generator=generator))[..., 0]
    return sample


@lru_cache(maxsize=8)
def _project_floor(y_value: float, n: int) -> float:
    from ..metrics.distances import noise_floor
    from ..toy import bimodal_problem_2d
    tp = bimodal_problem_2d()
    post = tp.prior.posterior(tp.problem, torch.tensor([y_value]))
    return noise_floor(lambda k, g: post.sample(k, generator=g), n, repeats=5,
                       generator=_gen(123)).mean


def amortized_score(train, n: int = 1000, max_sample_s: float = 0.5):
    """(mean over PROJECT_YS of SW / noise floor, a sentence) of the sampler ``train`` returns;
    each ``sample(y, n, generator)`` call must take at most ``max_sample_s`` (amortized)."""
    import time

    from ..metrics.distances import sliced_wasserstein
    from ..toy import bimodal_problem_2d
    tp = bimodal_problem_2d()
    with _one_thread():
        sample = train(tp.prior.log_prob, tp.problem,
                       lambda k, g: tp.prior.sample(k, generator=g), _gen(0))
    ratios = []
    for i, y_value in enumerate(float(tp.y) if v is None else v for v in PROJECT_YS):
        y = torch.tensor([y_value])
        t0 = time.perf_counter()
        xs = sample(y, n, _gen(10 + i))
        if time.perf_counter() - t0 > max_sample_s:
            raise ValueError(f"sample(y, {n}) took more than {max_sample_s} s: an amortized "
                             "sampler trains once and then samples in one pass.")
        if not isinstance(xs, torch.Tensor) or tuple(xs.shape) != (n, 2):
            raise ValueError(f"sample(y, n) should return a tensor of shape ({n}, 2).")
        exact = tp.prior.posterior(tp.problem, y).sample(n, generator=_gen(20 + i))
        sw = sliced_wasserstein(xs.detach().double(), exact.double(), generator=_gen(30 + i))
        ratios.append(float(sw) / _project_floor(y_value, n))
    per = ", ".join(f"y = {v:.2f}: {r:.2f}" for v, r in
                    zip((float(tp.y) if v is None else v for v in PROJECT_YS), ratios))
    return sum(ratios) / len(ratios), f"SW / noise floor per y ({per})."


register(Scored(
    "06.6", "mini-project: one training run, a sampler for every y of the 2D problem",
    "train_amortized(log_prior, problem, prior_sample, generator) -> sample(y, n, generator)",
    train_amortized, amortized_score, threshold=2.0, kind="project", unit="x the noise floor",
    time_limit=300,
    nudge="What changes from exercise 06.4 when the same parameters must serve every y? What "
          "does the training loop draw, besides z?",
    hint="Let a small network map y to the mixture's weights, means and Cholesky factors; at "
         "each step draw fresh measurements y from the prior predictive (x ~ p, y = A x + noise) "
         "and average the reverse KL over them.",
    formula="min_phi E_{y ~ p(y)} sum_k pi_k(y) E_z[g_y(x_k) - log p(x_k) + log q_phi(x_k | y)], "
            "x_k = m_k(y) + L_k(y) z; sampling is one pass of the network."))
