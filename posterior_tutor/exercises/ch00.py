"""Chapter 00 exercises: the exact Gaussian posterior, the posterior weights of a mixture.

Equations: the Kalman update of ``GaussianMixture.posterior`` (toy.py) and its re-weighting of
the components by their evidence w_k N(y; A mu_k, A C_k A^T + sigma^2 I).
"""
from __future__ import annotations

import torch

from .base import Exercise, Mistake, register
from .. import toy
from ..operators import InverseProblem, Matrix


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 00.1 the exact posterior of a Gaussian prior ------------------------------------------------
def gaussian_posterior(mu, C, A, y, sigma):
    """Prior N(mu, C), likelihood y = A x + sigma n: the posterior mean and covariance."""
    G = A @ C @ A.T + sigma ** 2 * torch.eye(A.shape[0], dtype=A.dtype)
    K = C @ A.T @ torch.linalg.inv(G)
    return mu + K @ (y - A @ mu), C - K @ A @ C


def _posterior_ref(mu, C, A, y, sigma):
    post = toy.GaussianMixture([1.0], mu[None], C[None]).posterior(InverseProblem(Matrix(A), sigma), y)
    return post.means[0], post.covs[0]


def _posterior_cases():
    g, out = _gen(0), []
    for d, m in [(2, 1), (3, 2), (4, 2)]:
        B = torch.randn(d, d, generator=g, dtype=torch.float64)
        C = B @ B.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
        out.append((torch.randn(d, generator=g, dtype=torch.float64), C,
                    torch.randn(m, d, generator=g, dtype=torch.float64),
                    torch.randn(m, generator=g, dtype=torch.float64), 0.3 + 0.4 * len(out)))
    return out


def _post_sigma(mu, C, A, y, sigma):
    return gaussian_posterior(mu, C, A, y, sigma ** 0.5)


def _post_sign(mu, C, A, y, sigma):
    m, P = gaussian_posterior(mu, C, A, y, sigma)
    return m, 2 * C - P


def _post_no_prior(mu, C, A, y, sigma):
    G = A @ C @ A.T + sigma ** 2 * torch.eye(A.shape[0], dtype=A.dtype)
    K = C @ A.T @ torch.linalg.inv(G)
    return K @ y, C - K @ A @ C


register(Exercise(
    "00.1", "the exact posterior of a Gaussian prior under a linear Gaussian likelihood",
    "gaussian_posterior(mu, C, A, y, sigma) -> (mean, cov)",
    gaussian_posterior, _posterior_ref, _posterior_cases,
    [Mistake(_post_sigma, "the noise covariance is sigma^2 I, not sigma I: G = A C A^T + sigma^2 I."),
     Mistake(_post_sign, "the covariance shrinks: P = C - K A C (a minus sign)."),
     Mistake(_post_no_prior, "the mean starts at the prior mean: m = mu + K (y - A mu).")],
    hint="G = A C A^T + sigma^2 I, K = C A^T G^-1, m = mu + K (y - A mu), P = C - K A C."))


# -- 00.2 the posterior weights of a mixture: the evidence -------------------------------------
def posterior_weights(weights, means, covs, A, y, sigma):
    """w'_k proportional to w_k N(y; A mu_k, A C_k A^T + sigma^2 I), normalised to sum to 1."""
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    logs = torch.stack([w.log() + torch.distributions.MultivariateNormal(
        A @ mu, A @ C @ A.T + sigma ** 2 * eye).log_prob(y) for w, mu, C in zip(weights, means, covs)])
    return torch.softmax(logs, 0)


def _weights_ref(weights, means, covs, A, y, sigma):
    gmm = toy.GaussianMixture(weights, means, covs)
    return gmm.posterior(InverseProblem(Matrix(A), sigma), y).weights


def _weights_cases():
    g, out = _gen(3), []
    for d, m, k in [(2, 1, 3), (3, 2, 4), (4, 2, 3)]:
        B = 0.5 * torch.randn(k, d, d, generator=g, dtype=torch.float64)
        covs = B @ B.transpose(1, 2) + 0.1 * torch.eye(d, dtype=torch.float64)
        w = torch.rand(k, generator=g, dtype=torch.float64) + 0.2
        out.append((w / w.sum(), 1.5 * torch.randn(k, d, generator=g, dtype=torch.float64), covs,
                    torch.randn(m, d, generator=g, dtype=torch.float64),
                    torch.randn(m, generator=g, dtype=torch.float64), 0.4))
    return out


def _weights_no_prior_cov(weights, means, covs, A, y, sigma):
    return posterior_weights(weights, means, 0 * covs, A, y, sigma)


def _weights_unnormalised(weights, means, covs, A, y, sigma):
    return 2 * posterior_weights(weights, means, covs, A, y, sigma)


def _weights_no_prior_weight(weights, means, covs, A, y, sigma):
    return posterior_weights(torch.ones_like(weights) / len(weights), means, covs, A, y, sigma)


register(Exercise(
    "00.2", "the posterior weights of a Gaussian mixture: each component's evidence",
    "posterior_weights(weights, means, covs, A, y, sigma) -> weights (K,)",
    posterior_weights, _weights_ref, _weights_cases,
    [Mistake(_weights_no_prior_cov, "y predicted by component k is spread by the prior too: its "
             "covariance is G_k = A C_k A^T + sigma^2 I, not sigma^2 I."),
     Mistake(_weights_no_prior_weight, "multiply each evidence by the prior weight w_k."),
     Mistake(_weights_unnormalised, "normalise: the posterior weights sum to 1.")],
    hint="w'_k = w_k N(y; A mu_k, A C_k A^T + sigma^2 I), then divide by the sum (in logs: softmax)."))
