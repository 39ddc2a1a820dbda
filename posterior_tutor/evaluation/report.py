"""What the benchmark writes: Markdown tables, CSV files and the trade-off plot.

    write_toy(rows, out)                          # toy.md, toy.csv
    write_images(rows, out, machine_description(), memory, command)   # images.md/.csv/_tradeoffs.png

A benchmark table is only as useful as what it says about itself, so every Markdown file opens with
the machine (CPU, threads torch uses, GPU, versions) and, for the images, one header line that says
what the samples were compared with, why a column is empty (LPIPS offline), what an exact sampler
would read in the coverage columns at this number of samples, how the peak memory was measured and
the command that produced the table.  The CSV holds every field of the rows, unrounded.
"""
from __future__ import annotations

import csv
import math
import os
import platform
from dataclasses import asdict
from pathlib import Path

import torch

from .. import metrics

MEMORY_NOTE = {
    "fresh": "one sampling call per row in a fresh process (CPU resident set above its level "
             "before the call; CUDA max allocated)",
    "inline": "during the measured runs in one process (exact on CUDA; on the CPU memory "
              "freed by an earlier row is reused without showing, so later rows read low)"}

LPIPS_MISSING = ("its AlexNet weights are unavailable here (offline; pt.metrics.lpips says how to "
                 "supply them)")


def machine_description() -> str:
    """CPU, threads (and how many torch uses), GPU, torch and Python versions, on one line."""
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads "
            f"(torch uses {torch.get_num_threads()}), {dev}, "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def _write_csv(rows, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)


# -- the toy suite --------------------------------------------------------------------------------
def toy_markdown(rows) -> str:
    """The toy suite's rows (``toy_suite.Row``) as a Markdown table."""
    head = ("| problem | method | SW to exact | x noise floor | x prior | NFE | backward | "
            "wall s | net s | wall/net |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        costs = (f"{r.nfe} | {r.backward} | {r.wall_s:.2f} | {r.net_s:.2f} | {r.overhead:.2f}"
                 if r.nfe else "- | - | - | - | -")
        lines.append(f"| {r.problem} | {r.method} | {r.sw:.3f} | {r.sw_over_floor:.1f} "
                     f"| {r.sw_over_prior:.2f} | {costs} |\n")
    return head + "".join(lines)


def write_toy(rows, out) -> None:
    """toy.csv and toy.md (machine + table) in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(rows, out / "toy.csv")
    (out / "toy.md").write_text(f"Machine: {machine_description()}\n\n{toy_markdown(rows)}")


# -- the image suite ------------------------------------------------------------------------------
def images_markdown(rows) -> str:
    """The image suite's rows (``image_suite.ImageRow``) as a Markdown table."""
    head = ("| task | method | PSNR single | PSNR mean | SSIM single | SSIM mean | LPIPS mean | "
            "90% coverage | rank coverage | NFE | backward | s / sample | peak MB |\n|"
            + "---|" * 13 + "\n")
    return head + "".join(
        f"| {r.task} | {r.method} | {r.psnr_single:.2f} | {r.psnr_mean:.2f} | {r.ssim_single:.3f} "
        f"| {r.ssim_mean:.3f} | {'-' if math.isnan(r.lpips_mean) else f'{r.lpips_mean:.3f}'} "
        f"| {r.coverage:.2f} | {r.rank_coverage:.2f} | {r.nfe:.0f} | {r.backward:.0f} "
        f"| {r.s_per_sample:.4f} | {r.peak_mb:.1f} |\n" for r in rows)


def header(rows, memory: str = "inline", command: str | None = None) -> str:
    """The one-line description above the table: data, ground truth, empty columns, memory."""
    r0 = rows[0]
    truths = sorted({r.truth for r in rows})
    no_lpips = all(math.isnan(r.lpips_mean) for r in rows)
    return (f"MNIST 32x32, shipped prior, sigma = 0.05, {r0.images} images x {r0.samples} "
            f"samples per task.  Ground truth: {'; '.join(truths)}."
            f"{f'  LPIPS mean is - because {LPIPS_MISSING}.' if no_lpips else ''}"
            f"  Coverage: an exact sampler reads "
            f"{metrics.interval_coverage_of_exact(max(r0.samples, 2)):.2f} in '90% coverage' "
            f"(interpolated interval) at {r0.samples} samples and 0.90 in 'rank coverage' at any "
            f"number; below is under-dispersed, above over-dispersed."
            f"  Peak MB: {MEMORY_NOTE[memory]}.{f'  Command: `{command}`.' if command else ''}")


def plot_tradeoffs(rows):
    """PSNR of the sample mean against seconds per sample and against network calls, per task."""
    import matplotlib.pyplot as plt
    task_names = list(dict.fromkeys(r.task for r in rows))
    fig, axes = plt.subplots(2, len(task_names), figsize=(3.6 * len(task_names), 6.4),
                             squeeze=False)
    for j, task in enumerate(task_names):
        for r in (r for r in rows if r.task == task):
            for ax, x in ((axes[0, j], r.s_per_sample), (axes[1, j], max(r.nfe, 1))):
                ax.scatter(x, r.psnr_mean)
                ax.annotate(r.method, (x, r.psnr_mean), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        axes[0, j].set_title(task)
        for ax, label in ((axes[0, j], "s / sample"), (axes[1, j], "network calls")):
            ax.set_xscale("log")
            ax.set_xlabel(label)
        axes[0, j].set_ylabel("PSNR of the mean (dB)")
        axes[1, j].set_ylabel("PSNR of the mean (dB)")
    fig.tight_layout()
    return fig


def write_images(rows, out, machine: str, memory: str = "inline",
                 command: str | None = None) -> None:
    """images.md (table + machine), images.csv and images_tradeoffs.png in ``out``."""
    import matplotlib.pyplot as plt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(rows, out / "images.csv")
    (out / "images.md").write_text(f"Machine: {machine}\n\n{header(rows, memory, command)}\n\n"
                                   f"{images_markdown(rows)}")
    fig = plot_tradeoffs(rows)
    fig.savefig(out / "images_tradeoffs.png", dpi=90)
    plt.close(fig)
