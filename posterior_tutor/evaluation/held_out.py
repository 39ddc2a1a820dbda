"""One evaluation of a sampler on held-out images, used by the benchmark, the chapters and the
training scripts.

For each test image x (shape (C, H, W)): build its problem, measure y, draw n samples, and score
them against x:

    PSNR / SSIM single  mean over samples s_j of PSNR(s_j, x), SSIM(s_j, x)   (a typical draw)
    PSNR / SSIM mean    PSNR(mean_j s_j, x), SSIM(mean_j s_j, x)             (the MMSE estimate)
    LPIPS mean          LPIPS(mean_j s_j, x), where its weights are available (else NaN)
    coverage            share of pixels inside the samples' central 90% interval (biased low at
                        small n: ``metrics.interval_coverage_of_exact``)
    rank coverage       the same question by the truth's rank (0.90 for an exact sampler, any n)

and average over images; seconds per sample count the sampling call only.  The per-image scores
come back too (``per_image``), so that a table can give each mean an interval over images
(``bootstrap_interval``) and compare two methods on the same images (``paired_interval``).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch

from .. import metrics


def image_scores(samples: torch.Tensor, x: torch.Tensor, with_lpips: bool = False) -> dict:
    """The scores of n samples (n, C, H, W) of one image x (C, H, W), as floats."""
    s, x = samples.detach().float(), x.detach().float().to(samples.device)
    ref, mean = x[None].expand_as(s), s.mean(0, keepdim=True)
    return dict(
        psnr_single=metrics.psnr(s, ref).mean().item(),
        psnr_mean=metrics.psnr(mean, x[None]).item(),
        ssim_single=metrics.ssim(s, ref).mean().item(),
        ssim_mean=metrics.ssim(mean, x[None]).item(),
        lpips_mean=metrics.lpips(mean, x[None]).item() if with_lpips else math.nan,
        coverage=float(metrics.coverage(s, x)) if s.shape[0] >= 2 else math.nan,
        rank_coverage=float(metrics.rank_coverage(s, x)))


def mean_scores(rows: list[dict]) -> dict:
    """Key-wise mean over images, ignoring NaN (a score that could not be computed)."""
    if not rows:
        raise ValueError("no images were evaluated.")
    out = {}
    for key in rows[0]:
        vals = [r[key] for r in rows if not math.isnan(r[key])]
        out[key] = sum(vals) / len(vals) if vals else math.nan
    return out


def evaluate_images(run: Callable, xs, problem_for: Callable, generators: Callable, n: int,
                    with_lpips: bool = False, extra: Callable | None = None,
                    wrap: Callable | None = None) -> dict:
    """Mean scores of ``run`` over the images ``xs`` (see the module docstring).

    run(problem, y, n, generator) -> (n, C, H, W) samples;  problem_for(i) -> the i-th problem;
    generators(i) -> (generator for the measurement, generator for the samples) (may be one
    object twice);  extra(problem, y, samples, x) -> more scores per image (a dict of floats);
    wrap(call) -> call(), e.g. to count network calls or memory around the sampling call.
    Returns the mean scores, ``seconds_per_sample``, ``images`` and ``samples``."""
    rows, seconds = [], 0.0
    for i, x in enumerate(xs):
        problem = problem_for(i)
        g_measure, g_sample = generators(i)
        y = problem.measure(x, generator=g_measure)

        def call():
            start = time.perf_counter()
            out = run(problem, y, n, g_sample)
            return out, time.perf_counter() - start
        samples, took = wrap(call) if wrap is not None else call()
        seconds += took
        row = image_scores(samples, x, with_lpips)
        if extra is not None:
            row.update(extra(problem, y, samples.detach(), x))
        rows.append(row)
    return {**mean_scores(rows), "seconds_per_sample": seconds / (len(rows) * n),
            "images": len(rows), "samples": n, "per_image": rows}


#: resamples and seed of the benchmark's bootstrap intervals (fixed: a table reruns identically)
RESAMPLES, SEED = 2000, 0


def bootstrap_interval(values, level: float = 0.95, resamples: int = RESAMPLES,
                       seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one number per image): resample
    the images with replacement ``resamples`` times (seeded), take the mean of each resample, and
    return its (1 - level) / 2 and (1 + level) / 2 quantiles.  It says how much the mean would move
    on another draw of as many images.  NaN values are dropped; with fewer than 2 left there is no
    interval and (nan, nan) comes back."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}.")
    if int(resamples) != resamples or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}.")
    v = torch.as_tensor([float(x) for x in values], dtype=torch.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be one number per image, got shape {tuple(v.shape)}.")
    if torch.isinf(v).any():
        raise ValueError("values contain inf (a PSNR of identical images?): no interval.")
    v = v[~torch.isnan(v)]
    if len(v) < 2:
        return math.nan, math.nan
    g = torch.Generator().manual_seed(seed)
    means = v[torch.randint(len(v), (int(resamples), len(v)), generator=g)].mean(1)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(means, q).tolist()
    return lo, hi


def paired_interval(a, b, level: float = 0.95, resamples: int = RESAMPLES,
                    seed: int = SEED) -> tuple[float, float, float]:
    """Mean of a - b over the same images and its bootstrap interval: (mean, lo, hi).  Pairing
    removes what the images share (a hard digit is hard for every method), so the interval of a
    difference is narrower than the two intervals of the means side by side suggest."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same images: got {len(a)} and {len(b)}.")
    if len(a) == 0:
        raise ValueError("no images to compare.")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    lo, hi = bootstrap_interval(d, level, resamples, seed)
    finite = [x for x in d if not math.isnan(x)]
    return (sum(finite) / len(finite) if finite else math.nan), lo, hi
