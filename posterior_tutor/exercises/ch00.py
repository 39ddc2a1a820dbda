"""Chapter 00 exercises: the exact Gaussian posterior, the posterior weights of a mixture, the
noise floor of the sliced Wasserstein distance, and a posterior sampler built from prior draws.

Equations: the Kalman update of ``GaussianMixture.posterior`` (toy.py) and its re-weighting of
the components by their evidence w_k N(y; A mu_k, A C_k A^T + sigma^2 I); the noise floor of SW
shrinks like n^(-1/2); self-normalised importance sampling (prior draws weighted by the
likelihood, then resampled) targets p(x | y) and is scored against the exact posterior.
"""
from __future__ import annotations

import torch

from .base import Exercise, Mistake, register
from .kinds import Prediction, Scored
from .scoring import floor
from .. import toy
from ..metrics.distances import sliced_wasserstein
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
    nudge="Both log-densities, of the prior and of the likelihood, are quadratics in x; so is "
          "their sum. A Gaussian is fixed by the quadratic and the linear part of its log-density.",
    hint="Collect the terms of the exponent that are quadratic in x (they give the inverse "
         "covariance) and those linear in x (they give the inverse covariance times the mean). "
         "torch.linalg.inv or torch.linalg.solve does the rest.",
    formula="P = (C^-1 + A^T A / sigma^2)^-1, m = P (C^-1 mu + A^T y / sigma^2); the same in "
            "Kalman form: G = A C A^T + sigma^2 I, K = C A^T G^-1, m = mu + K (y - A mu), "
            "P = C - K A C."))


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
    nudge="Treat the component label k as one more unknown, with prior w_k. Bayes' rule for k "
          "needs p(y | k): how probable the measurement is if x came from component k.",
    hint="Given k, x is Gaussian and y = A x + sigma n is a linear map of x plus independent "
         "noise: y is Gaussian too. Its mean and covariance follow from those of x; work in logs "
         "and normalise with a softmax.",
    formula="w'_k = w_k N(y; A mu_k, A C_k A^T + sigma^2 I) / sum_j w_j N(y; A mu_j, "
            "A C_j A^T + sigma^2 I)."))


# -- 00.3 the noise floor as n quadruples (predict) ----------------------------------------------
register(Prediction(
    "00.3", "the SW noise floor when the sample size is multiplied by 4",
    "floor_ratio", 0.5,
    lambda p, m: ("SW compares sorted projections; each empirical quantile is off by a random "
                  "error of order n^(-1/2), so the floor between two exact sets shrinks like "
                  f"1/sqrt(n): 4 times the samples, half the floor (measured {m:.2f})."),
    rtol=0.2,
    nudge="The floor is pure sampling error: two exact sets differ only because they are finite. "
          "How does the error of an average of n independent numbers shrink with n?",
    hint="In 1-D, W_2 pairs sorted samples; each sorted sample estimates a quantile with an error "
         "that behaves like a standard error. Four times the samples: how much smaller is a "
         "standard error?",
    formula="floor(4n) / floor(n) = sqrt(n / 4n) = 1/2 (the floor shrinks like n^(-1/2))."))


# -- 00.4 a posterior sampler from prior draws (build) -------------------------------------------
SNIS_N = 2000                      # samples scored
SNIS_THRESHOLD = 2.2               # exact samples score 0.7 to 1.9 over five seeds (n = 2000)


def snis_sampler(prior, problem, y, n, generator):
    """Self-normalised importance sampling: prior draws, weighted by the likelihood, resampled."""
    pool = prior.sample(100 * n, generator=generator, dtype=torch.float64)
    logw = problem.log_likelihood(pool, y)
    idx = torch.multinomial(torch.softmax(logw, 0), n, replacement=True, generator=generator)
    return pool[idx]


def posterior_score(sampler, n: int = SNIS_N, seed: int = 0) -> tuple:
    """(SW to n exact posterior samples / noise floor, a sentence) of ``sampler(prior, problem,
    y, n, generator)`` on the 2D problem."""
    tp = toy.bimodal_problem_2d()
    xs = sampler(tp.prior, tp.problem, tp.y, n, _gen(seed))
    if not isinstance(xs, torch.Tensor) or tuple(xs.shape) != (n, 2):
        got = tuple(xs.shape) if isinstance(xs, torch.Tensor) else type(xs).__name__
        raise ValueError(f"the sampler returned {got}; expected a tensor of shape ({n}, 2).")
    if not torch.isfinite(xs).all():
        raise ValueError("the samples contain NaN or Inf (a log of 0, or exp of a large number?).")
    exact = tp.posterior.sample(n, generator=_gen(seed + 1))
    sw = sliced_wasserstein(xs.detach().double(), exact.double(), generator=_gen(seed + 2)).item()
    ratio = sw / floor("2d-bimodal", n)
    return ratio, f"SW {sw:.3f} = {ratio:.2f} x the noise floor at n = {n}."


register(Scored(
    "00.4", "a posterior sampler built from prior samples and the likelihood",
    "snis_sampler(prior, problem, y, n, generator) -> (n, 2) samples", snis_sampler,
    posterior_score, threshold=SNIS_THRESHOLD, unit="x the noise floor",
    nudge="Bayes' rule says the posterior is the prior, reweighted point by point. You can draw "
          "from the prior; how do you turn weighted points into unweighted samples?",
    hint="Draw many more prior samples than you need (x100), give each a weight from the "
         "likelihood (problem.log_likelihood, in logs), normalise, then draw n of them with "
         "probability equal to their weight (torch.multinomial).",
    formula="x_i ~ p(x), i = 1..M; w_i = exp(-|A x_i - y|^2 / (2 sigma^2)) / sum_j (...); "
            "resample n indices with probabilities w_i."))
