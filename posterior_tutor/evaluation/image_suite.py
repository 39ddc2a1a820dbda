"""The image half of the benchmark: every sampler on the MNIST tasks, measured side by side.

    rows = run_image_suite(fast=True)      # also: python -m posterior_tutor.evaluation.bench --suite images

For each task of ``pt.tasks`` (sigma = 0.05) and each method, on held-out MNIST digits (test[8000:],
not seen by the prior; samples of the prior when MNIST is not installed, ``runners.test_images``):
PSNR and SSIM of single samples and of the sample mean, LPIPS of the mean where its weights are
available, per-pixel coverage of the 90% interval and rank coverage (``evaluation.held_out``), calls
of the diffusion denoiser (NFE; APS makes none: one flow pass per sample) and backward passes
through it per sample, wall time per sample, and the peak memory of the sampling call
(``memory.PeakMemory``; on the CPU in full mode from a fresh process per row,
``memory.peak_memory_fresh``, because in one process freed memory is reused without showing).

Each image i is measured once with its own seeded operator (``tasks.image_problem``, generator
100 + i) and every method samples from that same y, so the rows differ only by the method.
Methods: ``runners.method_runners`` (zero-shot samplers, shipped trained samplers, deepinv's peers)
and the trivial estimators (``runners.trivial_runners``: one point estimate per image, NFE 0, no
coverage), the floors a sampler must clear.

Every PSNR and SSIM comes with a 95% percentile-bootstrap interval over the images (``_lo`` and
``_hi`` fields, ``held_out.bootstrap_interval``: 2000 resamples, seeded; NaN with one image), and
each row keeps its per-image scores (``per_image``, written to images_per_image.csv) so that two
rows can be compared on the same images (``held_out.paired_interval``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .. import metrics, tasks
from ..checks.values import check_positive_int
from ..runtime.config import fast_mode
from .held_out import bootstrap_interval, evaluate_images
from .memory import PeakMemory, peak_memory_fresh
from .report import LPIPS_MISSING
from .runners import HELD_OUT, TRIVIAL_PREFIX, image_methods, method_runners, test_images

#: the quality numbers of a row, in ImageRow's order (``evaluation.image_scores``' keys)
QUALITY = ("psnr_single", "psnr_mean", "ssim_single", "ssim_mean", "lpips_mean", "coverage",
           "rank_coverage")
#: the scores that get a bootstrap interval over images (fields <name>_lo, <name>_hi)
INTERVALS = ("psnr_single", "psnr_mean", "ssim_single", "ssim_mean")
NAN = math.nan


@dataclass
class ImageRow:
    task: str
    method: str
    images: int
    samples: int
    psnr_single: float
    psnr_mean: float
    ssim_single: float
    ssim_mean: float
    lpips_mean: float          # nan where the LPIPS weights are unavailable
    coverage: float
    nfe: float                 # network calls per sample run (a batch counts once)
    backward: float
    s_per_sample: float
    peak_mb: float
    truth: str = HELD_OUT      # what the samples were compared with (see ``runners.test_images``)
    rank_coverage: float = math.nan   # metrics.rank_coverage: 0.90 for an exact sampler at any n
    psnr_single_lo: float = NAN       # 95% bootstrap interval over images (NaN: one image)
    psnr_single_hi: float = NAN
    psnr_mean_lo: float = NAN
    psnr_mean_hi: float = NAN
    ssim_single_lo: float = NAN
    ssim_single_hi: float = NAN
    ssim_mean_lo: float = NAN
    ssim_mean_hi: float = NAN
    #: {score: [value per image]} for INTERVALS (not a CSV column: images_per_image.csv)
    per_image: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def trivial(self) -> bool:
        """A trivial estimator (a floor), not a sampler."""
        return self.method.startswith(TRIVIAL_PREFIX)


def with_intervals(row: ImageRow) -> ImageRow:
    """``row`` with the bootstrap intervals of INTERVALS filled from ``row.per_image``."""
    for key in INTERVALS:
        lo, hi = bootstrap_interval(row.per_image[key]) if key in row.per_image else (NAN, NAN)
        setattr(row, f"{key}_lo", lo)
        setattr(row, f"{key}_hi", hi)
    return row


def measure(run, den, task, xs_true, n, seed, with_lpips: bool = False):
    """One method on one task (``evaluation.evaluate_images``): the mean over images of the
    quality numbers (the order of ``QUALITY``), and its costs per image and sample."""
    dev = den.device
    nfe, backward, peak = [], [], [0.0]

    def counted(call):
        den.reset_counters()
        with PeakMemory(dev) as mem:
            out = call()
        nfe.append(den.nfe)
        backward.append(den.nfe_grad)
        peak[0] = max(peak[0], mem.mb)
        return out

    def generators(i):
        g = torch.Generator(device=dev).manual_seed(seed + i)
        return g, g
    problem_for = lambda i: tasks.image_problem(  # noqa: E731
        task, generator=torch.Generator().manual_seed(100 + i))
    r = evaluate_images(run, xs_true.to(dev), problem_for, generators, n, with_lpips,
                        wrap=counted)
    k = len(xs_true)
    per_image = {key: [d[key] for d in r["per_image"]] for key in INTERVALS}
    return ([r[key] for key in QUALITY], sum(nfe) / k, sum(backward) / k, r["seconds_per_sample"],
            peak[0], per_image)


def _names(given, default, what):
    """``given`` (a non-empty list) or ``default`` when it is None; an empty list is refused."""
    if given is None:
        return list(default)
    if len(given) == 0:
        raise ValueError(f"{what} is empty: give at least one, or None for the default.")
    return list(given)


def _row(run, name, den, task, xs_true, n_samples, seed, with_lpips, memory, truth) -> ImageRow:
    """One row: measure ``run`` on every image; a trivial estimator draws one image and has no
    coverage (a point estimate has no spread)."""
    trivial = name.startswith(TRIVIAL_PREFIX)
    n = 1 if trivial else n_samples
    q, nfe, bwd, sps, peak, per_image = measure(run, den, task, xs_true, n, seed, with_lpips)
    if trivial:
        q[QUALITY.index("coverage")] = q[QUALITY.index("rank_coverage")] = NAN
    elif memory == "fresh":
        peak = peak_memory_fresh(task, name, n, den.device)
    return with_intervals(ImageRow(task, name, len(xs_true), n, *q[:6], nfe, bwd, sps, peak, truth,
                                   rank_coverage=q[6], per_image=per_image))


def run_image_suite(fast: bool | None = None, task_names=None, method_names=None,
                    n_images: int | None = None, n_samples: int | None = None, seed: int = 0,
                    peer: bool = True, device=None, progress: bool = True,
                    memory: str | None = None, skip=None, on_row=None) -> list[ImageRow]:
    """Every method on every task; one ImageRow each.  Fast: 2 tasks, 2 images, 4 samples.

    memory : "inline" (peak during the measured runs, this process) or "fresh" (one call in a
             new process per row, see ``memory``); default: "fresh" on CPU in full mode, else
             "inline" (CUDA's max-allocated counter is exact in-process).
    skip(task, method) -> True leaves that row out (a resumed run: rows already stored);
    on_row(row) is called after each row (e.g. to store it at once)."""
    from ..files.shipped import pretrained
    fast = fast_mode() if fast is None else fast
    if memory is not None and memory not in ("fresh", "inline"):
        raise ValueError(f"memory must be 'fresh' or 'inline', got {memory!r}.")
    n_images = (2 if fast else 8) if n_images is None else n_images
    n_samples = (4 if fast else 32) if n_samples is None else n_samples
    check_positive_int(n_images, "n_images")
    check_positive_int(n_samples, "n_samples")
    task_names = _names(task_names, ["random_inpainting", "sr4"] if fast else tasks.TASKS,
                        "task_names")
    names = _names(method_names, image_methods(), "method_names")
    den = pretrained("mnist", device=device)
    den.clip = 1.0
    xs_true, truth = test_images(n_images, den, seed)
    with_lpips = metrics.lpips_available()       # False offline: the LPIPS column shows "-"
    if progress:
        print(f"MNIST tasks: ground truth = {truth}; LPIPS "
              f"{'measured' if with_lpips else 'not measured: ' + LPIPS_MISSING}", flush=True)
    if memory is None:
        memory = "fresh" if den.device.type == "cpu" and not fast else "inline"
    rows = []
    for task in task_names:
        for name, run in method_runners(den, task, names, fast, peer).items():
            if skip is not None and skip(task, name):
                continue
            r = _row(run, name, den, task, xs_true, n_samples, seed, with_lpips, memory, truth)
            rows.append(r)
            if on_row is not None:
                on_row(r)
            if progress:
                print(f"  {task:18s} {name:16s} PSNR {r.psnr_single:5.2f} / mean {r.psnr_mean:5.2f}"
                      f" [{r.psnr_mean_lo:5.2f}, {r.psnr_mean_hi:5.2f}]  NFE {r.nfe:6.0f}  "
                      f"{r.s_per_sample:.4f} s/sample  {r.peak_mb:7.1f} MB", flush=True)
    return rows
