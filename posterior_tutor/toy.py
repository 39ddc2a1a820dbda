"""The exact toy world: Gaussian mixtures, where prior, noised marginals, Tweedie denoiser and the
posterior under a linear Gaussian measurement are all available in closed form.

Prior  p(x) = sum_k w_k N(x; mu_k, C_k),  x in R^d.

Noised marginal (VP, x_t = sqrt(ab) x0 + sqrt(1-ab) eps):
    p_t(x_t) = sum_k w_k N(x_t; sqrt(ab) mu_k, ab C_k + (1-ab) I).

Tweedie denoiser, with responsibilities r_k(x_t) under p_t and S_k = ab C_k + (1-ab) I:
    E[x0 | x_t] = sum_k r_k(x_t) [mu_k + sqrt(ab) C_k S_k^{-1} (x_t - sqrt(ab) mu_k)].

Posterior under y = A x + sigma n (Kalman form, valid for singular C_k too):
    p(x | y) = sum_k w'_k N(x; m_k, P_k),  G_k = A C_k A^T + sigma^2 I,  K_k = C_k A^T G_k^{-1},
    m_k = mu_k + K_k (y - A mu_k),  P_k = C_k - K_k A C_k,  w'_k ∝ w_k N(y; A mu_k, G_k).

All internal algebra runs in float64; results come back in the caller's dtype and device.
"""
from __future__ import annotations

import math

import torch

from .checks.values import check_float, check_generator, check_positive_int
from .denoisers import Denoiser
from .schedules import VPSchedule


class GaussianMixture:
    """A Gaussian mixture in R^d: weights (K,), means (K, d), covariances (K, d, d)."""

    def __init__(self, weights, means, covs):
        w = torch.as_tensor(weights, dtype=torch.float64)
        mu = torch.as_tensor(means, dtype=torch.float64)
        C = torch.as_tensor(covs, dtype=torch.float64)
        if mu.ndim != 2 or w.shape != (mu.shape[0],) or C.shape != (*mu.shape, mu.shape[1]):
            raise ValueError(
                "GaussianMixture needs weights (K,), means (K, d) and covs (K, d, d); got "
                f"{tuple(w.shape)}, {tuple(mu.shape)}, {tuple(C.shape)}.")
        if (w < 0).any() or not torch.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"mixture weights must be finite, >= 0 and not all 0, got {w.tolist()}.")
        if not torch.allclose(C, C.transpose(-1, -2), atol=1e-10):
            raise ValueError("each covariance must be symmetric.")
        if torch.linalg.eigvalsh(C).min() < -1e-10:
            raise ValueError("each covariance must be positive semi-definite.")
        self.weights = w / w.sum()
        self.means, self.covs = mu, C
        self.K, self.d = mu.shape

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.K}, d={self.d})"

    # -- sampling and density ------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None,
               device=None, dtype=None) -> torch.Tensor:
        """n independent draws, shape (n, d), in ``dtype`` (None: the default dtype)."""
        check_generator(generator)
        check_positive_int(n, "n (number of samples)")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        gen_device = generator.device if generator is not None else "cpu"
        k = torch.multinomial(self.weights.to(gen_device), n, replacement=True, generator=generator)
        z = torch.randn(n, self.d, generator=generator, dtype=torch.float64, device=gen_device)
        L = _psd_sqrt(self.covs).to(gen_device)
        x = self.means.to(gen_device)[k] + torch.einsum("nij,nj->ni", L[k], z)
        return x.to(device=device or gen_device, dtype=dtype)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for x of shape (n, d); returns (n,)."""
        self._check_x(x)
        return _mixture_log_prob(x.double(), self.weights, self.means, self.covs).to(x.dtype)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """grad_x log p(x), shape (n, d)."""
        self._check_x(x)
        xd = x.double().cpu()
        r = self.responsibilities(xd)                               # (n, K)
        prec = torch.linalg.inv(self.covs)                          # (K, d, d)
        diff = xd[:, None, :] - self.means[None]                    # (n, K, d)
        per = -torch.einsum("kij,nkj->nki", prec, diff)
        return (r[..., None] * per).sum(1).to(x)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior probability of each component given x, shape (n, K)."""
        self._check_x(x)
        logs = _component_log_probs(x.double().cpu(), self.means, self.covs) + self.weights.log()
        return torch.softmax(logs, dim=1)

    def mean(self) -> torch.Tensor:
        return (self.weights[:, None] * self.means).sum(0)

    def covariance(self) -> torch.Tensor:
        m = self.mean()
        d = self.means - m
        return (self.weights[:, None, None] * (self.covs + d[:, :, None] * d[:, None, :])).sum(0)

    # -- diffusion -------------------------------------------------------------------------
    def noised(self, schedule: VPSchedule, t: int) -> "GaussianMixture":
        """The marginal of x_t, itself a Gaussian mixture."""
        ab = schedule.abar(int(t)).item()
        eye = torch.eye(self.d, dtype=torch.float64)
        return GaussianMixture(self.weights, math.sqrt(ab) * self.means,
                               ab * self.covs + (1 - ab) * eye)

    def denoiser(self, schedule: VPSchedule | None = None) -> "GMMDenoiser":
        """The exact Tweedie denoiser E[x0 | x_t] of this prior."""
        return GMMDenoiser(self, schedule or VPSchedule())

    # -- posterior -------------------------------------------------------------------------
    def posterior(self, problem, y: torch.Tensor) -> "GaussianMixture":
        """Exact posterior p(x | y) for a linear operator, as a GaussianMixture."""
        A = problem.operator.matrix().double().cpu()
        if A.shape[1] != self.d:
            raise ValueError(f"the operator acts on dimension {A.shape[1]}, the prior on {self.d}.")
        problem.check_y(y)
        yv = y.detach().double().cpu().reshape(-1)
        s2 = float(problem.sigma) ** 2
        G = A @ self.covs @ A.T + s2 * torch.eye(A.shape[0], dtype=torch.float64)   # (K, m, m)
        Kg = self.covs @ A.T @ torch.linalg.inv(G)                                   # (K, d, m)
        resid = yv - self.means @ A.T                                                 # (K, m)
        m = self.means + torch.einsum("kdm,km->kd", Kg, resid)
        P = self.covs - Kg @ A @ self.covs
        P = 0.5 * (P + P.transpose(-1, -2))
        logw = self.weights.log() + _gauss_log_prob(yv[None].expand(self.K, -1), self.means @ A.T, G)
        return GaussianMixture(torch.softmax(logw, 0), m, P)

    def _check_x(self, x):
        check_float(x, "x")
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"expected points of shape (n, {self.d}), got {tuple(x.shape)}.")


class GMMDenoiser(Denoiser):
    """Exact Tweedie denoiser of a GaussianMixture prior."""

    def __init__(self, gmm: GaussianMixture, schedule: VPSchedule):
        super().__init__(schedule)
        self.gmm = gmm
        self.shape = (gmm.d,)
        self._cache = {}

    def _x0(self, x_t, t):
        if x_t.ndim != 2 or x_t.shape[1] != self.gmm.d:
            raise ValueError(f"this denoiser takes points of shape (n, {self.gmm.d}), "
                             f"got {tuple(x_t.shape)}.")
        x = x_t.double()
        times = torch.unique(t).tolist()
        if len(times) == 1:  # the usual case: one time for the whole batch
            return self._x0_at(x, times[0]).to(x_t.dtype)
        out = torch.empty_like(x)
        for tv in times:
            out[t == tv] = self._x0_at(x[t == tv], tv)
        return out.to(x_t.dtype)

    def _x0_at(self, x, t: int):
        mean, prec, logdet, gain, mu = self._level(int(t), x.device)
        diff = x[:, None, :] - mean[None]                               # (n, K, d)
        maha = (torch.einsum("nkj,kij->nki", diff, prec) * diff).sum(-1)
        r = torch.softmax(-0.5 * (maha + logdet) + self.gmm.weights.to(x.device).log(), 1)
        comp = mu[None] + torch.einsum("nkj,kij->nki", diff, gain)
        return (r[..., None] * comp).sum(1)

    def _level(self, t: int, device):
        """Per-time constants, cached: noised means, precisions S^-1, log det S, gains."""
        key = (t, str(device))
        if key not in self._cache:
            g = self.gmm
            ab = self.schedule.alpha_bar[t].item()
            S = ab * g.covs + (1 - ab) * torch.eye(g.d, dtype=torch.float64)
            prec = torch.linalg.inv(S)
            gain = math.sqrt(ab) * g.covs @ prec
            vals = (math.sqrt(ab) * g.means, prec, torch.linalg.slogdet(S)[1], gain, g.means)
            self._cache[key] = tuple(v.to(device) for v in vals)
        return self._cache[key]


# -- Gaussian helpers (float64) ---------------------------------------------------------------
def _psd_sqrt(C: torch.Tensor) -> torch.Tensor:
    """A matrix L with L L^T = C, also for singular PSD C."""
    evals, evecs = torch.linalg.eigh(C)
    return evecs * evals.clamp_min(0).sqrt()[..., None, :]


def _gauss_log_prob(x, mean, cov):
    """log N(x; mean, cov) with batch broadcasting over the leading dimension."""
    d = x.shape[-1]
    L = torch.linalg.cholesky(cov)
    z = torch.linalg.solve_triangular(L, (x - mean)[..., None], upper=False)[..., 0]
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (z ** 2).sum(-1) - 0.5 * logdet - 0.5 * d * math.log(2 * math.pi)


def _component_log_probs(x, means, covs):
    """(n, K) matrix of log N(x_n; mean_k, cov_k)."""
    return _gauss_log_prob(x[:, None, :], means[None].to(x.device), covs[None].to(x.device))


def _mixture_log_prob(x, w, means, covs):
    dev = x.device
    return torch.logsumexp(_component_log_probs(x, means.to(dev), covs.to(dev)) + w.log().to(dev), 1)


# -- ready-made toy problems ------------------------------------------------------------------
def ring_of_gaussians(k: int = 6, radius: float = 2.0, std: float = 0.3) -> GaussianMixture:
    """k isotropic components evenly spaced on a circle: a 2D prior with clear modes."""
    ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    means = radius * torch.stack([ang.cos(), ang.sin()], 1)
    covs = (std ** 2) * torch.eye(2, dtype=torch.float64).expand(k, 2, 2).clone()
    return GaussianMixture(torch.full((k,), 1.0 / k), means, covs)


def random_mixture(d: int = 16, k: int = 5, spread: float = 2.0, scale: float = 0.3,
                   seed: int = 0) -> GaussianMixture:
    """A reproducible mixture in R^d with anisotropic random covariances."""
    g = torch.Generator().manual_seed(seed)
    means = spread * torch.randn(k, d, generator=g, dtype=torch.float64)
    B = scale * torch.randn(k, d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    covs = B @ B.transpose(1, 2) + (0.5 * scale) ** 2 * torch.eye(d, dtype=torch.float64)
    w = torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    return GaussianMixture(w / w.sum(), means, covs)


def _device_of(generator, device):
    if device is not None:
        return torch.device(device)
    return generator.device if generator is not None else torch.device("cpu")


def two_moons(n: int, noise: float = 0.1, generator: torch.Generator | None = None,
              device=None) -> torch.Tensor:
    """n points of the two-moons set (scaled to about [-2, 2]^2), shape (n, 2), drawn from
    ``generator`` on ``device`` (default: the generator's device, else the CPU)."""
    check_generator(generator)
    dev = _device_of(generator, device)
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=dev) * math.pi
    upper = torch.rand(n, generator=generator, device=dev) < 0.5
    x = torch.where(upper, u.cos(), 1 - u.cos())
    y = torch.where(upper, u.sin(), 0.5 - u.sin())
    pts = torch.stack([x - 0.5, y - 0.25], 1) * 1.6
    pts = pts + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64, device=dev)
    return pts.to(torch.get_default_dtype())


def rings(n: int, radii=(0.8, 1.8), noise: float = 0.08,
          generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """n points on concentric circles, shape (n, 2), drawn from ``generator`` on ``device``
    (default: the generator's device, else the CPU)."""
    check_generator(generator)
    dev = _device_of(generator, device)
    radii = torch.as_tensor(radii, dtype=torch.float64, device=dev)
    r = radii[torch.randint(len(radii), (n,), generator=generator, device=dev)]
    ang = torch.rand(n, generator=generator, dtype=torch.float64, device=dev) * 2 * math.pi
    pts = torch.stack([r * ang.cos(), r * ang.sin()], 1)
    pts = pts + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64, device=dev)
    return pts.to(torch.get_default_dtype())


class ToyProblem:
    """A prior, an inverse problem, one measurement y (with the x that made it) and the exact
    posterior: everything a sampler needs and everything its output is judged against."""

    def __init__(self, name, prior, problem, x_true, y):
        self.name, self.prior, self.problem, self.x_true, self.y = name, prior, problem, x_true, y
        self.posterior = prior.posterior(problem, y)

    def __repr__(self):
        return f"ToyProblem({self.name!r}, prior={self.prior}, {self.problem})"


def bimodal_problem_2d(sigma: float = 0.25) -> ToyProblem:
    """The 2D teaching problem: a ring of six Gaussians, one noisy linear measurement
    y = 0.3 x_1 + x_2 + sigma n.  The line {a^T x = y} crosses two of the modes, so the posterior is
    bimodal with unequal weights."""
    from .operators import InverseProblem, Matrix
    prior = ring_of_gaussians(6, radius=2.0, std=0.3)
    x_true = torch.tensor([-1.0, 1.73])
    problem = InverseProblem(Matrix([[0.3, 1.0]]), sigma)
    y = torch.tensor([0.3 * -1.0 + 1.73 + 0.1])  # a fixed, typical draw (noise +0.1)
    return ToyProblem("2d-bimodal", prior, problem, x_true, y)


def gmm_problem(d: int = 16, rank: int = 4, sigma: float = 0.3, seed: int = 0) -> ToyProblem:
    """A higher-dimensional check: a random mixture in R^d seen through a random rank-``rank``
    matrix, with y measured from a prior draw (reproducible from ``seed``).  With the defaults the
    posterior keeps four of the five modes (weights 0.67, 0.14, 0.13, 0.05)."""
    from .operators import InverseProblem, Matrix
    prior = random_mixture(d=d, k=5, spread=1.0, scale=0.5, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    A = torch.randn(rank, d, generator=g) / math.sqrt(d) * 2
    problem = InverseProblem(Matrix(A), sigma)
    x_true = prior.sample(1, generator=g)[0]
    y = problem.measure(x_true, generator=g)
    return ToyProblem(f"gmm-d{d}-rank{rank}", prior, problem, x_true, y)
