"""Calibration of a posterior sampler at any sample count: rank (PIT) coverage and histogram.

``metrics.coverage`` asks whether the true value lies between two interpolated quantiles of the
samples.  With few samples that interval is too short: an *exact* sampler with n samples reads
about (n - 1) / (n + 1) x level (exactly so for uniform marginals), i.e. 0.54 with 4 samples,
0.70 with 8, 0.85 with 32 at level 0.9, so a small-n reading of 0.6 says nothing about dispersion.

The rank of the truth among the samples does not have that bias.  For one coordinate let
r_lo = #{samples < x} and r_hi = #{samples <= x}.  If x and the n samples are independent draws
of the same law, the randomised probability integral transform

    u ~ Uniform[ r_lo / (n + 1), (r_hi + 1) / (n + 1) ]

is exactly Uniform(0, 1), whatever the law and whatever n (ties, e.g. background pixels that
every sample and the truth share, widen the interval; a full tie gives all of [0, 1]).  So:

- ``rank_coverage``: the probability that u falls in the central band [(1 - level)/2, (1 + level)/2],
  averaged over coordinates (computed exactly from the interval, no random draw).  An exact sampler
  reads ``level`` in expectation at every n; an under-dispersed one (truth often outside the
  samples: u near 0 or 1) reads less, an over-dispersed one (truth in the middle) more.
- ``pit_histogram``: the mass of u in equal bins; flat for an exact sampler, U-shaped when
  under-dispersed, a hump when over-dispersed, tilted when biased.

References: the rank histogram (Anderson 1996; Talagrand et al. 1997), simulation-based
calibration (Talts et al. 2018, arXiv 1804.06788).
"""
from __future__ import annotations

import torch

from ..checks.options import Int, Real, check_option


def _pit_intervals(samples, x_true):
    """(a, b): the randomised PIT's interval per coordinate, flattened, float64."""
    s = torch.as_tensor(samples)
    x = torch.as_tensor(x_true)
    if s.ndim < 1 or tuple(s.shape[1:]) != tuple(x.shape):
        raise ValueError(f"samples {tuple(s.shape)} must be (n, *x_true.shape) with x_true "
                         f"{tuple(x.shape)}.")
    if s.shape[0] < 1:
        raise ValueError("calibration needs at least one sample.")
    for v, name in ((s, "samples"), (x, "x_true")):
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or inf values.")
    s, x = s.double(), x.double().to(s.device)
    n = s.shape[0]
    below = (s < x).sum(0).flatten().double()
    at_or_below = (s <= x).sum(0).flatten().double()
    return below / (n + 1), (at_or_below + 1) / (n + 1)


def _mass_in(a, b, lo, hi):
    """Share of each interval [a, b] that lies in [lo, hi] (lo, hi broadcast)."""
    lo, hi = torch.as_tensor(lo, dtype=a.dtype), torch.as_tensor(hi, dtype=a.dtype)
    return (torch.minimum(b, hi) - torch.maximum(a, lo)).clamp(min=0) / (b - a)


def rank_coverage(samples, x_true, level: float = 0.9) -> torch.Tensor:
    """Calibrated coverage: the share of coordinates whose randomised PIT falls in the central
    ``level`` band (see the module docstring).  ``samples``: (n, ...) with n >= 1; ``x_true``: one
    sample's shape.  An exact sampler reads ``level`` in expectation at every n; below means
    under-dispersed, above over-dispersed.  Returns a 0-d float64 tensor."""
    check_option("rank_coverage", "level", level, Real(0, 1, low_open=True, high_open=True))
    a, b = _pit_intervals(samples, x_true)
    return _mass_in(a, b, (1 - level) / 2, (1 + level) / 2).mean()


def pit_histogram(samples, x_true, bins: int = 10) -> torch.Tensor:
    """The mass of the randomised PIT in ``bins`` equal bins of [0, 1], summed over coordinates
    and divided by their number: (bins,) float64 summing to 1; 1/bins each for an exact sampler."""
    check_option("pit_histogram", "bins", bins, Int(1, 10_000))
    a, b = _pit_intervals(samples, x_true)
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64, device=a.device)
    mass = _mass_in(a[:, None], b[:, None], edges[None, :-1], edges[None, 1:])
    return mass.mean(0)


def interval_coverage_of_exact(n: int, level: float = 0.9) -> float:
    """What ``metrics.coverage`` (interpolated quantiles) reads on average for an exact sampler
    with n samples: (n - 1) / (n + 1) x level, exact for uniform marginals and close for smooth
    ones (4 samples: 0.54; 32: 0.85 at level 0.9).  A yardstick for readings made with it."""
    check_option("interval_coverage_of_exact", "n", n, Int(2))
    check_option("interval_coverage_of_exact", "level", level,
                 Real(0, 1, low_open=True, high_open=True))
    return (n - 1) / (n + 1) * level
