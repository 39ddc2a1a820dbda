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
Methods: ``runners.method_runners`` (zero-shot samplers, shipped trained samplers, deepinv's peers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import metrics, tasks
from ..checks.values import check_positive_int
from ..runtime.config import fast_mode
from .held_out import evaluate_images
from .memory import PeakMemory, peak_memory_fresh
from .report import LPIPS_MISSING
from .runners import HELD_OUT, image_methods, method_runners, test_images

#: the quality numbers of a row, in ImageRow's order (``evaluation.image_scores``' keys)
QUALITY = ("psnr_single", "psnr_mean", "ssim_single", "ssim_mean", "lpips_mean", "coverage",
           "rank_coverage")


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
    return ([r[key] for key in QUALITY], sum(nfe) / k, sum(backward) / k, r["seconds_per_sample"],
            peak[0])


def _names(given, default, what):
    """``given`` (a non-empty list) or ``default`` when it is None; an empty list is refused."""
    if given is None:
        return list(default)
    if len(given) == 0:
        raise ValueError(f"{what} is empty: give at least one, or None for the default.")
    return list(given)


def run_image_suite(fast: bool | None = None, task_names=None, method_names=None,
                    n_images: int | None = None, n_samples: int | None = None, seed: int = 0,
                    peer: bool = True, device=None, progress: bool = True,
                    memory: str | None = None) -> list[ImageRow]:
    """Every method on every task; one ImageRow each.  Fast: 2 tasks, 2 images, 4 samples.

    memory : "inline" (peak during the measured runs, this process) or "fresh" (one call in a
             new process per row, see ``memory``); default: "fresh" on CPU in full mode, else
             "inline" (CUDA's max-allocated counter is exact in-process)."""
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
            q, nfe, bwd, sps, peak = measure(run, den, task, xs_true, n_samples, seed, with_lpips)
            if memory == "fresh":
                peak = peak_memory_fresh(task, name, n_samples, den.device)
            rows.append(ImageRow(task, name, n_images, n_samples, *q[:6], nfe, bwd, sps, peak,
                                 truth, rank_coverage=q[6]))
            if progress:
                print(f"  {task:18s} {name:16s} PSNR {q[0]:5.2f} / mean {q[1]:5.2f}  "
                      f"NFE {nfe:6.0f}  {sps:.4f} s/sample  {peak:7.1f} MB", flush=True)
    return rows
