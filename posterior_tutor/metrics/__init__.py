r"""Metrics for posterior samples: per-image quality and distances between sample sets.

Conventions: images are ``(n, C, H, W)`` (or one image ``(C, H, W)``) scaled to [-1, 1];
point clouds are ``(n, d)`` (images are flattened to ``(n, C*H*W)`` where a cloud is expected).
Numpy arrays are accepted. Mismatched shapes and non-finite inputs raise ``ValueError``, as do
parameters out of range (NaN, Inf, data_range <= 0) and images whose values spread over more than
ten times ``data_range`` (0..255 images with the default data_range = 2: pass data_range=255).

Per-image quality (``a`` a batch, ``b`` a batch of the same size or one reference broadcast
against it; the result has shape ``(n,)``, or is 0-d when both inputs are single images):

* PSNR   ``psnr = 10 log10(R^2 / MSE)``, ``MSE = mean over (C, H, W) of (a - b)^2``, R = data_range
  (2 for [-1, 1]). Identical images give ``inf``.
* SSIM   (Wang et al. 2004) ``SSIM(x, y) = mean over pixels of
  (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``,
  local statistics under a Gaussian window (11 taps, sigma 1.5), ``C1 = (0.01 R)^2``,
  ``C2 = (0.03 R)^2``; computed by ``torchmetrics`` and averaged over the *valid* pixels (those
  whose window lies inside the image, as in Wang's reference code and ``skimage``) and channels.
* LPIPS  (Zhang et al. 2018) ``d(x, y) = sum_l mean_{h,w} |w_l * (phi_l(x) - phi_l(y))|^2`` with
  unit-normalised AlexNet/VGG features phi_l and learned channel weights w_l (``lpips`` package).

Distances between sample sets ``a ~ P`` (n points) and ``b ~ Q`` (m points):

* Sliced Wasserstein ``SW_p = (E_theta W_p^p(theta.P, theta.Q))^(1/p)``, theta uniform on the unit
  sphere (Monte Carlo over ``n_projections`` directions); the 1-D ``W_p^p = int_0^1 |F^-1(u) -
  G^-1(u)|^p du`` is computed exactly from the empirical quantile functions.
* Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Szekely; no square root, unlike
  ``scipy.stats.energy_distance`` which returns its square root).
* MMD^2 with the Gaussian kernel ``k(x, y) = exp(-|x - y|^2 / (2 h^2))``:
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

from .calibration import interval_coverage_of_exact, pit_histogram, rank_coverage
from ..checks.values import check_generator
# the LPIPS backbone lives in lpips_backbone.py; its cache and download helpers stay reachable
# here as before (metrics._lpips_model, ._LPIPS_MODELS, ._backbone_checkpoint, ...)
from .lpips_backbone import _LPIPS_FAILURES, _LPIPS_MIN_SIDE, _LPIPS_MODELS, LPIPSWeightsUnavailable, _backbone_checkpoint, _check_net, _lpips_model, lpips_available
from ..checks.options import Int, Real, check_option

__all__ = [
    "psnr", "ssim", "lpips", "lpips_available", "LPIPSWeightsUnavailable",
    "sliced_wasserstein", "energy_distance", "mmd",
    "mode_weights", "mode_weight_error", "noise_floor", "NoiseFloor", "coverage",
    "rank_coverage", "pit_histogram", "interval_coverage_of_exact",
]


# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------
def _tensor(x, name: str) -> torch.Tensor:
    """As a floating tensor; rejects NaN and inf."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.numel() and not torch.isfinite(x).all():
        bad = "NaN" if torch.isnan(x).any() else "inf"
        raise ValueError(f"{name} contains {bad} values (shape {tuple(x.shape)}).")
    return x


def _image_pair(a, b, fn: str):
    """Batch two image inputs: returns (a4, b4, unbatched) with a4, b4 of shape (n, C, H, W)."""
    a, b = _tensor(a, "a"), _tensor(b, "b")
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (3, 4):
            raise ValueError(f"{fn}: {name} must be an image (C, H, W) or a batch (n, C, H, W); "
                             f"got shapes a {tuple(a.shape)} and b {tuple(b.shape)}.")
    unbatched = a.ndim == 3 and b.ndim == 3
    a4 = a[None] if a.ndim == 3 else a
    b4 = b[None] if b.ndim == 3 else b
    na, nb = a4.shape[0], b4.shape[0]
    if a4.shape[1:] != b4.shape[1:] or (na != nb and 1 not in (na, nb)):
        raise ValueError(f"{fn}: shapes do not match: a {tuple(a.shape)} vs b {tuple(b.shape)} "
                         "(need equal (C, H, W) and equal batch sizes, or one single image).")
    if 0 in (na, nb):
        raise ValueError(f"{fn}: empty batch: a {tuple(a.shape)}, b {tuple(b.shape)}.")
    n = max(na, nb)
    dtype = torch.promote_types(a4.dtype, b4.dtype)
    a4 = a4.to(dtype).expand(n, *a4.shape[1:])
    b4 = b4.to(device=a4.device, dtype=dtype).expand(n, *b4.shape[1:])
    return a4, b4, unbatched


def _cloud(x, name: str) -> torch.Tensor:
    """(n, d) point cloud: (n,) becomes (n, 1); (n, ...) is flattened to (n, prod(...))."""
    x = _tensor(x, name)
    if x.ndim == 0:
        raise ValueError(f"{name} must be a set of points (n, d), got a scalar.")
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}).")
    return x


def _cloud_pair(a, b, fn: str):
    a2, b2 = _cloud(a, "a"), _cloud(b, "b")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"{fn}: point dimensions differ: a {tuple(_shape(a))} gives d = "
                         f"{a2.shape[1]}, b {tuple(_shape(b))} gives d = {b2.shape[1]}.")
    dtype = torch.promote_types(torch.promote_types(a2.dtype, b2.dtype), torch.float64)
    return a2.to(dtype), b2.to(device=a2.device, dtype=dtype)


def _check_data_range(a4, b4, data_range, fn: str) -> None:
    """data_range a finite number > 0, and the images' values not clearly outside it: their
    spread (max - min over both inputs) may exceed data_range (samples overshoot, noisy images
    spread several times wider) but not ten times over, as 0..255 images with data_range=2 do."""
    check_option(fn, "data_range", data_range, Real(0, 1e6, low_open=True, hint="the width of "
                 "the value range: 2 for images in [-1, 1], 1 for [0, 1], 255 for 0..255"))
    lo = min(a4.min().item(), b4.min().item())
    hi = max(a4.max().item(), b4.max().item())
    if hi - lo > 10 * data_range:
        raise ValueError(f"{fn}: the images' values span {lo:g}..{hi:g} (a spread of {hi - lo:g}) "
                         f"but data_range is {data_range:g}: pass the width of their value range "
                         "as data_range (255 for 0..255 images) or scale them to [-1, 1].")


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else tuple(torch.as_tensor(x).shape)


def _out_dtype(a, b):
    da = a.dtype if isinstance(a, torch.Tensor) and a.is_floating_point() else torch.get_default_dtype()
    db = b.dtype if isinstance(b, torch.Tensor) and b.is_floating_point() else torch.get_default_dtype()
    return torch.promote_types(da, db)


# ---------------------------------------------------------------------------------------------
# per-image quality
# ---------------------------------------------------------------------------------------------
def psnr(a, b, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` per image.

    ``a``, ``b``: (n, C, H, W) or (C, H, W); either may be a single image broadcast against the
    other batch. Returns (n,) (0-d for two single images); ``inf`` where the images are equal.
    ``data_range`` is the width of the value range: 2.0 for images in [-1, 1].
    """
    a4, b4, single = _image_pair(a, b, "psnr")
    _check_data_range(a4, b4, data_range, "psnr")
    mse = (a4 - b4).pow(2).flatten(1).mean(1)
    out = 10 * torch.log10(data_range ** 2 / mse)
    return out[0] if single else out


def _ssim_window(h: int, w: int) -> int:
    """Gaussian window width for an h x w image: 11, or smaller so that the valid region keeps
    at least half the side (window = largest odd <= min(11, min(h, w)//2 + 1), at least 3)."""
    side = min(h, w)
    if side < 3:
        raise ValueError(f"ssim needs images of at least 3 x 3 pixels, got {h} x {w}.")
    win = min(11, side // 2 + 1)
    win -= 1 - win % 2
    return max(3, win)


def ssim(a, b, data_range: float = 2.0, window: int | None = None) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, via ``torchmetrics``.

    Gaussian window of 11 taps with sigma 1.5, K1 = 0.01, K2 = 0.03, ``data_range`` = 2 for
    [-1, 1] images. The SSIM map comes from
    ``torchmetrics.functional.structural_similarity_index_measure`` and is averaged over the
    valid pixels only (window inside the image; torchmetrics itself would also average the
    reflect-padded border) and over channels. This matches
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=2)``.

    Small images: the window shrinks automatically to the largest odd width
    ``<= min(11, min(H, W)//2 + 1)`` (at least 3) with ``sigma = 1.5 * window / 11``; e.g. 8 x 8
    digits use a 5-tap window (sigma 0.68), 28 x 28 MNIST the full 11. Pass ``window`` (odd,
    3..min(H, W)) to choose it yourself. Images need at least 3 x 3 pixels.

    Shapes and broadcasting as in :func:`psnr`; returns (n,) (0-d for two single images).
    """
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    a4, b4, single = _image_pair(a, b, "ssim")
    _check_data_range(a4, b4, data_range, "ssim")
    H, W = a4.shape[-2:]
    if window is None:
        window = _ssim_window(H, W)
    elif isinstance(window, bool) or not isinstance(window, int) or window % 2 == 0 or not \
            3 <= window <= min(H, W):
        raise ValueError(f"ssim window must be odd and within 3..{min(H, W)} for {H} x {W} "
                         f"images, got {window!r}.")
    sigma = 1.5 * window / 11                # torchmetrics' window = 2 int(3.5 sigma + 0.5) + 1
    _, smap = tm_ssim(a4.contiguous(), b4.contiguous(), gaussian_kernel=True, sigma=sigma,
                      data_range=float(data_range), reduction="none", return_full_image=True)
    p = (window - 1) // 2
    out = smap[..., p:H - p, p:W - p].flatten(1).mean(1)
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------------
# the backbone weights, their download and the cached models: lpips_backbone.py


def lpips(a, b, net: str = "alex", pretrained_backbone: bool = True,
          min_size: int = 64) -> torch.Tensor:
    """Learned perceptual distance (Zhang et al. 2018, ``lpips`` package, version 0.1) per image.

    ``a``, ``b``: images in [-1, 1], (n, C, H, W) or (C, H, W) with C = 1 (repeated to 3
    channels) or 3; broadcasting as in :func:`psnr`. Returns (n,) (0-d for two single images),
    >= 0 and 0 for identical images. Differentiable in the inputs (the network is frozen).

    Images whose shorter side is below ``min_size`` are upsampled bilinearly so that it equals
    ``min_size`` (AlexNet cannot process images under 32 pixels; 28 x 28 MNIST becomes 64 x 64).
    ``net``: "alex" (default, the usual metric), "vgg" or "squeeze".

    The backbone's ImageNet weights come from torchvision (downloaded once into
    ``torch.hub.get_dir()/checkpoints``); where they cannot be had this raises
    :class:`LPIPSWeightsUnavailable` saying how to supply them. ``pretrained_backbone=False``
    uses a randomly initialised backbone (fixed seed) with the shipped LPIPS linear weights:
    works offline, for tests only, not a perceptual metric. The model is cached per
    (net, pretrained_backbone, device).
    """
    a4, b4, single = _image_pair(a, b, "lpips")
    if a4.shape[1] not in (1, 3):
        raise ValueError(f"lpips needs 1- or 3-channel images, got a {_shape(a)}, b {_shape(b)}.")
    model = _lpips_model(net, pretrained_backbone, a4.device)
    out_dtype = a4.dtype
    x, y = a4.float(), b4.float()
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    H, W = x.shape[-2:]
    if min(H, W) < min_size:
        s = min_size / min(H, W)
        size = (max(min_size, round(H * s)), max(min_size, round(W * s)))
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        y = torch.nn.functional.interpolate(y, size=size, mode="bilinear", align_corners=False)
    if min(x.shape[-2:]) < _LPIPS_MIN_SIDE[_check_net(net)]:
        raise ValueError(f"lpips({net!r}) needs images of at least {_LPIPS_MIN_SIDE[_check_net(net)]}"
                         f" pixels per side; raise min_size (got {H} x {W}, min_size={min_size}).")
    d = model(x.contiguous(), y.contiguous()).reshape(-1).to(out_dtype)
    return d[0] if single else d


# ---------------------------------------------------------------------------------------------
# distances between sample sets
# ---------------------------------------------------------------------------------------------
def _directions(n_projections: int, d: int, generator, device, dtype) -> torch.Tensor:
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
