r"""Distances between sample sets, mixture mode weights, coverage and the noise floor.

Sample sets are point clouds ``a ~ P`` (n points, ``(n, d)``) and ``b ~ Q`` (m points); images
``(n, C, H, W)`` are flattened, 1-D inputs ``(n,)`` read as ``(n, 1)`` (``_coerce.py``).

* Sliced Wasserstein ``SW_p = (E_theta W_p^p(theta.P, theta.Q))^(1/p)``, theta uniform on the unit
  sphere (Monte Carlo over ``n_projections`` directions); the 1-D ``W_p^p = int_0^1 |F^-1(u) -
  G^-1(u)|^p du`` is computed exactly from the empirical quantile functions (Rabin et al. 2011,
  "Wasserstein barycenter and its application to texture mixing").
* Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Szekely; no square root, unlike
  ``scipy.stats.energy_distance`` which returns its square root).
* MMD^2 with the Gaussian kernel ``k(x, y) = exp(-|x - y|^2 / (2 h^2))`` (Gretton et al. 2012):
  ``E k(X, X') + E k(Y, Y') - 2 E k(X, Y)``; h = median pairwise distance of the pooled sample
  by default.
  Both are V-statistics by default (all pairs, diagonal included: always >= 0, biased upward by
  O(1/n)); ``unbiased=True`` drops the diagonal (U-statistic: unbiased, may be slightly < 0).

Mixture and calibration checks:

* ``mode_weights``: ``w_k = #{i : argmax_j r_j(x_i) = k} / n`` with responsibilities r of a
  ``GaussianMixture``; ``mode_weight_error = TV(w, w_post) = 1/2 sum_k |w_k - w_post_k|``.
* ``coverage``: fraction of coordinates j with ``q_lo_j <= x_true_j <= q_hi_j``, the per-coordinate
  empirical quantiles of the samples at ``(1 - level)/2`` and ``(1 + level)/2`` (biased low at
  small n); ``rank_coverage`` / ``pit_histogram`` (``calibration.py``): the same question asked of
  the truth's rank among the samples, which an exact sampler passes at every n.
* ``noise_floor``: ``E metric(S1, S2)`` for two independent exact sample sets of size n, the value a
  perfect sampler would score; compare sampler results against it.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import torch

from ..checks.options import Int, Real, check_option
from ..checks.values import check_generator
from ._coerce import _cloud, _cloud_pair, _out_dtype, _shape, _tensor

__all__ = ["sliced_wasserstein", "energy_distance", "mmd", "mode_weights", "mode_weight_error",
           "noise_floor", "NoiseFloor", "coverage"]


def _directions(n_projections: int, d: int, generator, device, dtype) -> torch.Tensor:
    """(n_projections, d) directions uniform on the unit sphere (normalised Gaussians, drawn in
    float64 on the generator's device so a seed gives the same directions on any device)."""
    gdev = generator.device if generator is not None else "cpu"
    th = torch.randn(n_projections, d, generator=generator, device=gdev, dtype=torch.float64)
    th = th / th.norm(dim=1, keepdim=True)
    return th.to(device=device, dtype=dtype)


def _wasserstein_1d_pp(pa: torch.Tensor, pb: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between the columns of pa (n, P) and pb (m, P) as empirical measures, exactly."""
    sa, sb = pa.sort(0).values, pb.sort(0).values
    n, m = sa.shape[0], sb.shape[0]
    if n == m:
        return (sa - sb).abs().pow(p).mean(0)
    # quantile functions are piecewise constant with breaks at i/n and j/m: integrate exactly
    # on the merged grid (interval midpoints pick the active order statistic of each side)
    dev = sa.device
    u = torch.cat([torch.arange(1, n + 1, device=dev, dtype=torch.float64) / n,
                   torch.arange(1, m + 1, device=dev, dtype=torch.float64) / m]).unique()
    du = torch.diff(u, prepend=u.new_zeros(1))
    mid = u - du / 2
    ia = (mid * n).floor().long().clamp_(max=n - 1)
    ib = (mid * m).floor().long().clamp_(max=m - 1)
    return ((sa[ia] - sb[ib]).abs().pow(p) * du.to(sa.dtype)[:, None]).sum(0)


def sliced_wasserstein(a, b, n_projections: int = 256, p: float = 2,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Sliced Wasserstein distance ``SW_p = (mean over directions of W_p^p)^(1/p)``.

    ``a`` (n, d), ``b`` (m, d); images (n, C, H, W) are flattened and 1-D inputs (n,) are read
    as (n, 1). ``n_projections`` random unit directions are drawn from ``generator`` (the global
    RNG when None); on each, the 1-D ``W_p^p`` between the projected empirical measures is exact
    (sorted samples for n = m, merged quantile grid otherwise). Returns a 0-d tensor in the
    inputs' dtype. SW shrinks with the dimension: for a shift, ``SW_2(X, X + c) ~ |c| / sqrt(d)``.
    """
    check_option("sliced_wasserstein", "n_projections", n_projections, Int(1))
    check_option("sliced_wasserstein", "p", p, Real(1, 100, hint="the order of W_p; |x|^p "
                                                         "overflows for larger p"))
    check_generator(generator)
    out = _out_dtype(a, b)
    a2, b2 = _cloud_pair(a, b, "sliced_wasserstein")
    th = _directions(n_projections, a2.shape[1], generator, a2.device, a2.dtype)
    wpp = _wasserstein_1d_pp(a2 @ th.T, b2 @ th.T, p)
    return wpp.mean().pow(1 / p).to(out)


def _pair_means(a, b, kernel, unbiased: bool):
    """(mean k(a,a'), mean k(b,b'), mean k(a,b)); U-statistics drop the diagonal."""
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    n, m = a.shape[0], b.shape[0]
    if unbiased:
        if min(n, m) < 2:
            raise ValueError(f"unbiased estimates need >= 2 points per set, got {n} and {m}.")
        eaa = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
        ebb = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    else:
        eaa, ebb = kaa.mean(), kbb.mean()
    return eaa, ebb, kab.mean()


def energy_distance(a, b, unbiased: bool = False) -> torch.Tensor:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Euclidean norms), 0-d tensor.

    Default: V-statistic (means over all pairs, X = X' included), always >= 0 and equal to
    ``scipy.stats.energy_distance(a, b)**2`` in 1-D. ``unbiased=True``: U-statistic (distinct
    pairs only). Shapes as in :func:`sliced_wasserstein`; memory O((n + m)^2).
    """
    out = _out_dtype(a, b)
    a2, b2 = _cloud_pair(a, b, "energy_distance")
    eaa, ebb, eab = _pair_means(a2, b2, torch.cdist, unbiased)
    return (2 * eab - eaa - ebb).to(out)


def _median_bandwidth(a, b) -> float:
    """Median distance between distinct points of the pooled sample (1 if that is 0)."""
    z = torch.cat([a, b])
    dist = torch.cdist(z, z)
    off = dist[~torch.eye(len(z), dtype=torch.bool, device=z.device)]
    h = off.median().item() if off.numel() else 0.0
    return h if h > 0 else 1.0


def mmd(a, b, bandwidth: float | None = None, unbiased: bool = False) -> torch.Tensor:
    """Squared maximum mean discrepancy with a Gaussian kernel, 0-d tensor.

    ``MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y)``, ``k(x, y) = exp(-|x - y|^2 / (2 h^2))``;
    ``h = bandwidth``, or the median pairwise distance of the pooled points when None (median
    heuristic; 1 if that is 0). V-statistic by default (>= 0); ``unbiased=True`` gives the
    U-statistic. Shapes as in :func:`sliced_wasserstein`; memory O((n + m)^2).
    """
    out = _out_dtype(a, b)
    a2, b2 = _cloud_pair(a, b, "mmd")
    check_option("mmd", "bandwidth", bandwidth, Real(0, low_open=True, optional=True))
    h = _median_bandwidth(a2, b2) if bandwidth is None else float(bandwidth)

    def kernel(x, y):
        """Gaussian kernel matrix k(x_i, y_j) with bandwidth h."""
        return torch.exp(-torch.cdist(x, y).pow(2) / (2 * h * h))

    eaa, ebb, eab = _pair_means(a2, b2, kernel, unbiased)
    return (eaa + ebb - 2 * eab).to(out)


# ---------------------------------------------------------------------------------------------
# mixtures, noise floor, coverage
# ---------------------------------------------------------------------------------------------
def mode_weights(x, gmm) -> torch.Tensor:
    """Fraction of samples whose most responsible component is k, shape (K,) (float64).

    ``x``: (n, d) samples; ``gmm``: any object with ``responsibilities(x) -> (n, K)``, such as
    ``posterior_tutor.toy.GaussianMixture``.
    """
    x2 = _cloud(x, "x")
    if not hasattr(gmm, "responsibilities"):
        raise ValueError(f"gmm must have a responsibilities(x) method, got {type(gmm).__name__}.")
    d = getattr(gmm, "d", None)
    if isinstance(d, int) and x2.shape[1] != d:
        raise ValueError(f"mode_weights: x holds points of dimension {x2.shape[1]} (shape "
                         f"{_shape(x)}) but the mixture lives in dimension {d}: pass x of shape "
                         f"(n, {d}).")
    r = torch.as_tensor(gmm.responsibilities(x2))
    if r.ndim != 2 or r.shape[0] != x2.shape[0]:
        raise ValueError(f"responsibilities should be (n, K) with n = {x2.shape[0]}, "
                         f"got {tuple(r.shape)} for x {tuple(x2.shape)}.")
    k = r.argmax(1).cpu()
    return torch.bincount(k, minlength=r.shape[1]).double() / x2.shape[0]


def mode_weight_error(x, gmm_posterior) -> torch.Tensor:
    """Total variation ``1/2 sum_k |w_k(x) - w_k|`` between the sample's mode weights and the
    mixture's ``weights``; 0-d float64 tensor in [0, 1]."""
    w_hat = mode_weights(x, gmm_posterior)
    w = torch.as_tensor(gmm_posterior.weights, dtype=torch.float64).cpu().reshape(-1)
    if w.shape != w_hat.shape:
        raise ValueError(f"gmm weights have shape {tuple(w.shape)} but responsibilities give "
                         f"{tuple(w_hat.shape)} components.")
    return 0.5 * (w_hat - w).abs().sum()


@dataclass
class NoiseFloor:
    """Distance between independent exact sample sets: ``mean`` and ``std`` (sample standard
    deviation, 0 for one repeat) over ``values``, one per repeat."""
    mean: float
    std: float
    values: list = field(default_factory=list)


def noise_floor(sampler_fn, n: int, metric=sliced_wasserstein, repeats: int = 5,
                generator: torch.Generator | None = None) -> NoiseFloor:
    """The score of a perfect sampler: ``metric(S1, S2)`` for two independent sets of n exact
    samples, ``S = sampler_fn(n, generator)`` of shape (n, d), over ``repeats`` repeats.

    ``generator`` also feeds ``metric`` when it takes a ``generator`` argument (random
    projections). Returns a :class:`NoiseFloor` (mean, std, values). The floor shrinks with n
    (roughly like n^-1/2 for SW); a sampler is indistinguishable from exact at this n when its
    distance to an exact set is within a few std of ``mean``.
    """
    check_option("noise_floor", "n", n, Int(1))
    check_option("noise_floor", "repeats", repeats, Int(1))
    check_generator(generator)
    try:
        takes_gen = "generator" in inspect.signature(metric).parameters
    except (TypeError, ValueError):
        takes_gen = False
    values = []
    for _ in range(repeats):
        s1, s2 = sampler_fn(n, generator), sampler_fn(n, generator)
        d = metric(s1, s2, generator=generator) if takes_gen else metric(s1, s2)
        values.append(float(d))
    t = torch.tensor(values, dtype=torch.float64)
    std = t.std().item() if repeats > 1 else 0.0
    return NoiseFloor(mean=t.mean().item(), std=std, values=values)


def _quantile0(s: torch.Tensor, q: float) -> torch.Tensor:
    """Linear-interpolated quantile along dim 0 of sorted s (numpy's default method)."""
    pos = q * (s.shape[0] - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, s.shape[0] - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def coverage(samples, x_true, level: float = 0.9) -> torch.Tensor:
    """Fraction of coordinates of ``x_true`` inside the samples' central ``level`` interval.

    ``samples``: (n, ...) with n >= 2; ``x_true``: (...) the same shape as one sample. The
    interval per coordinate is [q_(1-level)/2, q_(1+level)/2] of the samples (linear
    interpolation). Biased low at small n: an exact sampler reads about (n - 1) / (n + 1) x
    level (``interval_coverage_of_exact``; 0.54 with 4 samples at level 0.9), so compare with
    that, or use ``rank_coverage``, which an exact sampler passes at every n. Returns a 0-d
    float64 tensor.
    """
    check_option("coverage", "level", level, Real(0, 1, low_open=True, high_open=True))
    s, x = _tensor(samples, "samples"), _tensor(x_true, "x_true")
    if s.ndim < 1 or s.shape[1:] != x.shape:
        raise ValueError(f"coverage: samples {tuple(s.shape)} must be (n, *x_true.shape) with "
                         f"x_true {tuple(x.shape)}.")
    if s.shape[0] < 2:
        raise ValueError(f"coverage needs at least 2 samples, got shape {tuple(s.shape)}.")
    srt = s.double().sort(0).values
    lo, hi = _quantile0(srt, (1 - level) / 2), _quantile0(srt, (1 + level) / 2)
    xd = x.double().to(srt.device)
    return ((xd >= lo) & (xd <= hi)).double().mean()
