"""Chapter 08 exercises: the PSNR of the posterior mean and the coverage of a credible interval.

Equations (metrics.py): PSNR(a, b) = 10 log10(range^2 / mean (a - b)^2) with range 2 for images in
[-1, 1], applied to the mean of the samples; coverage = fraction of coordinates of x_true inside
[q_(1-level)/2, q_(1+level)/2] of the samples (linear-interpolated quantiles).
"""
from __future__ import annotations

import math

import torch

from .base import Exercise, Mistake, register


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _metrics():
    from .. import metrics   # loaded on first use, as pt.metrics is
    return metrics


# -- 08.1 PSNR of the mean -------------------------------------------------------------------------
def psnr_of_mean(samples, x_true, data_range=2.0):
    """PSNR in dB of the samples' mean against x_true."""
    mse = (samples.mean(0) - x_true).pow(2).mean()
    return 10 * torch.log10(data_range ** 2 / mse)


def _psnr_ref(samples, x_true, data_range=2.0):
    return _metrics().psnr(samples.mean(0), x_true, data_range)


def _psnr_cases():
    g, out = _gen(7), []
    for n, scale, rng in [(8, 0.3, 2.0), (4, 0.1, 2.0), (16, 0.5, 1.0)]:
        x = torch.rand(1, 10, 10, generator=g) * rng - rng / 2
        out.append((x + scale * torch.randn(n, 1, 10, 10, generator=g), x, rng))
    return out


def _psnr_per_sample(samples, x_true, data_range=2.0):
    mse = (samples - x_true).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range ** 2 / mse)).mean()


def _psnr_range(samples, x_true, data_range=2.0):
    mse = (samples.mean(0) - x_true).pow(2).mean()
    return 10 * torch.log10(data_range / mse)


def _psnr_rmse(samples, x_true, data_range=2.0):
    mse = (samples.mean(0) - x_true).pow(2).mean()
    return 10 * torch.log10(data_range ** 2 / mse.sqrt())


register(Exercise(
    "08.1", "the PSNR of the posterior mean", "psnr_of_mean(samples, x_true, data_range=2.0) -> dB",
    psnr_of_mean, _psnr_ref, _psnr_cases,
    [Mistake(_psnr_per_sample, "average the samples first, then compute one PSNR of that mean "
             "(the mean of per-sample PSNRs is a different, lower number)."),
     Mistake(_psnr_range, "the peak is squared: 10 log10(data_range^2 / MSE)."),
     Mistake(_psnr_rmse, "use the mean *squared* error, not its square root (or use 20 log10 "
             "with the RMSE).")],
    hint="mse = mean((samples.mean(0) - x_true)^2); 10 log10(data_range^2 / mse).", rtol=1e-4))


# -- 08.2 coverage of the central interval ---------------------------------------------------------
def coverage(samples, x_true, level=0.9):
    """Fraction of coordinates of x_true inside the samples' central ``level`` interval."""
    s = samples.double()
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(s.flatten(1), q, dim=0)
    x = x_true.double().flatten()
    return ((x >= lo) & (x <= hi)).double().mean()


def _coverage_ref(samples, x_true, level=0.9):
    return _metrics().coverage(samples, x_true, level)


def _coverage_cases():
    g, out = _gen(8), []
    for n, shape, level, spread in [(20, (1, 16, 16), 0.9, 1.0), (50, (300,), 0.8, 0.7),
                                    (9, (2, 8, 8), 0.5, 1.3)]:
        x = torch.randn(shape, generator=g)
        out.append((x + spread * torch.randn(n, *shape, generator=g) + 0.2, x, level))
    return out


def _coverage_one_sided(samples, x_true, level=0.9):
    s = samples.double().flatten(1)
    q = torch.tensor([1 - level, level], dtype=torch.float64)
    lo, hi = torch.quantile(s, q, dim=0)
    x = x_true.double().flatten()
    return ((x >= lo) & (x <= hi)).double().mean()


def _coverage_std(samples, x_true, level=0.9):
    s = samples.double()
    half = math.sqrt(2) * torch.special.erfinv(torch.tensor(level, dtype=torch.float64)) * s.std(0)
    return ((x_true.double() - s.mean(0)).abs() <= half).double().mean()


def _coverage_count(samples, x_true, level=0.9):
    return coverage(samples, x_true, level) * x_true.numel()


register(Exercise(
    "08.2", "the coverage of the central credible interval",
    "coverage(samples, x_true, level=0.9) -> a fraction in [0, 1]",
    coverage, _coverage_ref, _coverage_cases,
    [Mistake(_coverage_one_sided, "a central interval of mass `level` leaves (1 - level) / 2 in "
             "each tail: [q_(1-level)/2, q_(1+level)/2], e.g. [q_0.05, q_0.95] for 0.9."),
     Mistake(_coverage_std, "use the samples' empirical quantiles (torch.quantile), not a "
             "Gaussian interval mean +- z std: the posterior need not be Gaussian."),
     Mistake(_coverage_count, "return the fraction of coordinates, not their number.")],
    hint="lo, hi = torch.quantile(samples.flatten(1), [(1 - level) / 2, (1 + level) / 2], dim=0); "
         "the mean of (lo <= x) & (x <= hi) over the coordinates.", rtol=1e-9, atol=1e-9))
