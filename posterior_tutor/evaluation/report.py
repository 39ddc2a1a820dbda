"""What the benchmark writes: Markdown tables, CSV files and the trade-off plot.

    write_toy(rows, out)                          # toy.md, toy.csv
    write_images(rows, out, machine_description(), memory, command)   # images.md/.csv/_tradeoffs.png

A benchmark table is only as useful as what it says about itself, so every Markdown file opens with
the machine (CPU, threads torch uses, GPU, versions) and, for the images, one header line that says
what the samples were compared with, why a column is empty (LPIPS offline), what an exact sampler
would read in the coverage columns at this number of samples, how the peak memory was measured and
the command that produced the table.  The CSV holds every field of the rows, unrounded, and
images_per_image.csv the per-image PSNR / SSIM behind each row's intervals.

Image tables: every PSNR / SSIM reads "mean [lo, hi]", the 95% percentile-bootstrap interval over
images (``held_out.bootstrap_interval``); "vs floor" is the PSNR of the mean minus that of the
task's best trivial row on the same images, with its paired interval (``held_out.paired_interval``).
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
from .held_out import RESAMPLES, SEED, paired_interval

PER_IMAGE = "images_per_image.csv"

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


def _fields(row) -> dict:
    """A row's CSV fields: every dataclass field but the per-image lists."""
    return {k: v for k, v in asdict(row).items() if k != "per_image"}


def _write_csv(rows, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(_fields(rows[0])))
        w.writeheader()
        w.writerows(_fields(r) for r in rows)


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
def _ci(value, lo, hi, spec) -> str:
    """'25.10 [24.30, 25.90]'; without an interval (one image) '25.10 (no interval)'."""
    if math.isnan(value):
        return "-"
    if math.isnan(lo) or math.isnan(hi):
        return f"{value:{spec}} (no interval)"
    return f"{value:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def _num(v, spec) -> str:
    return "-" if math.isnan(v) else f"{v:{spec}}"


def floors(rows) -> dict:
    """task -> the trivial row with the highest PSNR of the mean (that task's floor)."""
    out = {}
    for r in rows:
        if r.trivial and (r.task not in out or r.psnr_mean > out[r.task].psnr_mean):
            out[r.task] = r
    return out


def versus(row, ref, key: str = "psnr_mean") -> tuple[float, float, float]:
    """row minus ref on the same images: (mean, lo, hi) of ``key``, paired; NaN if either row
    lacks per-image values or they differ in the number of images."""
    a, b = row.per_image.get(key), ref.per_image.get(key)
    return paired_interval(a, b) if a and b and len(a) == len(b) else (math.nan,) * 3


def _vs_floor(r, floor) -> str:
    if r.trivial:
        return "floor" if floor is r else "-"
    if floor is None:
        return "-"
    d, lo, hi = versus(r, floor)
    return _ci(d, lo, hi, "+.2f")


def images_markdown(rows) -> str:
    """The image suite's rows (``image_suite.ImageRow``) as a Markdown table."""
    head = ("| task | method | images x samples | PSNR single | PSNR mean | vs floor (dB) | "
            "SSIM single | SSIM mean | LPIPS mean | 90% coverage | rank coverage | NFE | backward "
            "| s / sample | peak MB |\n|" + "---|" * 15 + "\n")
    best = floors(rows)
    return head + "".join(
        f"| {r.task} | {r.method} | {r.images} x {r.samples} "
        f"| {_ci(r.psnr_single, r.psnr_single_lo, r.psnr_single_hi, '.2f')} "
        f"| {_ci(r.psnr_mean, r.psnr_mean_lo, r.psnr_mean_hi, '.2f')} "
        f"| {_vs_floor(r, best.get(r.task))} "
        f"| {_ci(r.ssim_single, r.ssim_single_lo, r.ssim_single_hi, '.3f')} "
        f"| {_ci(r.ssim_mean, r.ssim_mean_lo, r.ssim_mean_hi, '.3f')} "
        f"| {_num(r.lpips_mean, '.3f')} | {_num(r.coverage, '.2f')} "
        f"| {_num(r.rank_coverage, '.2f')} | {r.nfe:.0f} | {r.backward:.0f} "
        f"| {r.s_per_sample:.4f} | {r.peak_mb:.1f} |\n" for r in rows)


def _sizes(rows) -> str:
    """'16 x 4 (54 rows), 16 x 1 (5 rows)': the images x samples of the rows, most common first."""
    count = {}
    for r in rows:
        if not r.trivial:
            count[(r.images, r.samples)] = count.get((r.images, r.samples), 0) + 1
    return ", ".join(f"{i} x {n} ({c} row{'s' * (c > 1)})" for (i, n), c in
                     sorted(count.items(), key=lambda kv: -kv[1])) or "none"


def _coverage_note(rows) -> str:
    ns = sorted({r.samples for r in rows if not r.trivial and r.samples >= 2}, reverse=True)
    reads = ", ".join(f"{metrics.interval_coverage_of_exact(n):.2f} at {n} samples" for n in ns)
    return (f"  Coverage: an exact sampler reads {reads or '- (no row has 2 samples)'} in '90% "
            f"coverage' (interpolated interval) and 0.90 in 'rank coverage' at any number; below "
            f"is under-dispersed, above over-dispersed.")


def header(rows, memory: str = "inline", command=None) -> str:
    """The one-line description above the table: data, sizes, intervals, floors, ground truth,
    empty columns, memory, and the command(s) (a string or a list of them)."""
    truths = sorted({r.truth for r in rows})
    no_lpips = all(math.isnan(r.lpips_mean) for r in rows)
    one = sorted({r.method for r in rows if r.images < 2})
    unstored = sum(1 for r in rows if r.images >= 2 and not r.per_image)
    gone = (f"; no interval for the {unstored} rows whose per-image scores are not stored "
            f"({PER_IMAGE} lacks them)") if unstored else ""
    commands = [command] if isinstance(command, str) else list(command or [])
    return (f"MNIST 32x32, shipped prior, sigma = 0.05; images x samples per row in its column "
            f"(samplers: {_sizes(rows)}; a trivial row is one point estimate per image, NFE 0)."
            f"  Ground truth: {'; '.join(truths)}."
            f"  [lo, hi]: 95% percentile-bootstrap interval of the mean over the images "
            f"({RESAMPLES} resamples, seed {SEED})"
            f"{'; no interval for ' + ', '.join(one) + ' (one image)' if one else ''}"
            f"{gone}."
            f"  vs floor: PSNR of the mean minus that of the task's best trivial row ('floor') on "
            f"the same images, paired bootstrap; an interval above 0 beats the floor."
            f"{f'  LPIPS mean is - because {LPIPS_MISSING}.' if no_lpips else ''}"
            f"{_coverage_note(rows)}"
            f"  Peak MB: {MEMORY_NOTE[memory]}."
            f"{'  Command' + ('s' if len(commands) > 1 else '') + ': ' if commands else ''}"
            f"{'; '.join(f'`{c}`' for c in commands)}{'.' if commands else ''}")


def _plot_task(axes, rows) -> None:
    """One task's column: samplers as points with their interval, trivial rows as dashed floors."""
    for r in rows:
        for ax, x in ((axes[0], r.s_per_sample), (axes[1], max(r.nfe, 1))):
            if r.trivial:
                ax.axhline(r.psnr_mean, ls="--", lw=0.8, color="gray")
                ax.annotate(r.method, (0.02, r.psnr_mean), xycoords=("axes fraction", "data"),
                            fontsize=6, color="gray", xytext=(0, 2), textcoords="offset points")
                continue
            err = None
            if not (math.isnan(r.psnr_mean_lo) or math.isnan(r.psnr_mean_hi)):
                err = [[r.psnr_mean - r.psnr_mean_lo], [r.psnr_mean_hi - r.psnr_mean]]
            ax.errorbar(x, r.psnr_mean, yerr=err, fmt="o", ms=4, capsize=2)
            ax.annotate(r.method, (x, r.psnr_mean), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")


def plot_tradeoffs(rows):
    """PSNR of the sample mean (with its interval over images) against seconds per sample and
    against network calls, per task; the trivial rows as dashed horizontal floors."""
    import matplotlib.pyplot as plt
    task_names = list(dict.fromkeys(r.task for r in rows))
    fig, axes = plt.subplots(2, len(task_names), figsize=(3.6 * len(task_names), 6.4),
                             squeeze=False)
    for j, task in enumerate(task_names):
        _plot_task(axes[:, j], [r for r in rows if r.task == task])
        axes[0, j].set_title(task)
        for ax, label in ((axes[0, j], "s / sample"), (axes[1, j], "network calls")):
            ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("PSNR of the mean (dB)")
    fig.tight_layout()
    return fig


def _write_per_image(rows, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        keys = sorted({k for r in rows for k in r.per_image})
        w.writerow(["task", "method", "image", *keys])
        for r in rows:
            for i in range(max((len(v) for v in r.per_image.values()), default=0)):
                w.writerow([r.task, r.method, i, *(r.per_image[k][i] if k in r.per_image else ""
                                                   for k in keys)])


def paired_markdown(rows, pairs) -> str:
    """For each task and each (a, b) of ``pairs`` (method names) run on it: a - b on the same
    images, PSNR and SSIM of the mean and of single samples, with their paired intervals."""
    by = {(r.task, r.method): r for r in rows}
    keys = ("psnr_mean", "psnr_single", "ssim_mean", "ssim_single")
    lines = [f"| {t} | {a} - {b} | {by[t, a].images} | " + " | ".join(
        _ci(*versus(by[t, a], by[t, b], k), "+.2f" if k.startswith("psnr") else "+.3f")
        for k in keys) + " |" for t in dict.fromkeys(r.task for r in rows) for a, b in pairs
        if (t, a) in by and (t, b) in by]
    return ("Paired differences on the same images (mean [95% paired bootstrap interval]; an "
            "interval that contains 0 does not tell the two apart):\n\n| task | difference | "
            "images | PSNR mean | PSNR single | SSIM mean | SSIM single |\n|---|---|---|---|---|---|"
            "---|\n" + "\n".join(lines) + "\n")


def write_images(rows, out, machine: str, memory: str = "inline", command=None,
                 pairs=()) -> None:
    """images.md (table + machine), images.csv, images_per_image.csv and images_tradeoffs.png in
    ``out``; ``command``: the command that made the rows (or a list, for merged runs); ``pairs``:
    (a, b) method names whose paired differences follow the table (``paired_markdown``)."""
    import matplotlib.pyplot as plt
    if not rows:
        raise ValueError("no rows to write.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(rows, out / "images.csv")
    _write_per_image(rows, out / PER_IMAGE)
    (out / "images.md").write_text(f"Machine: {machine}\n\n{header(rows, memory, command)}\n\n"
                                   f"{images_markdown(rows)}"
                                   f"{chr(10) + paired_markdown(rows, pairs) if pairs else ''}")
    fig = plot_tradeoffs(rows)
    fig.savefig(out / "images_tradeoffs.png", dpi=90)
    plt.close(fig)
