"""The image half of the benchmark: every sampler on the MNIST tasks, measured side by side.

    rows = run_image_suite(fast=True)            # also: python -m posterior_tutor.evaluation.bench --images

For each task of ``pt.tasks`` (sigma = 0.05) and each method, on held-out MNIST digits (test[8000:],
not seen by the prior; samples of the prior when MNIST is not installed): PSNR and SSIM of single
samples and of the sample mean, LPIPS of the mean where its weights are available, per-pixel
coverage of the 90% interval, calls of the diffusion denoiser (NFE; APS makes none: one flow pass per
sample) and backward passes through it per sample, wall time per
sample, and peak memory of the sampling call: CUDA, ``torch.cuda.max_memory_allocated``; CPU, the
peak resident set above the level before the call (sampled every 2 ms by a watcher thread).  On the
CPU that reading is only honest in a fresh process: after the first method, PyTorch's allocator and
malloc keep freed memory and hand it to the next method without the resident set growing.  So with
``memory="fresh"`` (the default on CPU in full mode) each row's peak comes from one sampling call
(first held-out image, the row's number of samples, fast-mode step counts: the peak is per step,
not per run; a trained sampler's own weights count) in a new Python process (``python -m posterior_tutor.evaluation.images --peak-memory``).

Methods: the registered zero-shot samplers with image options below, the trained samplers that
ship for a task (UD2M, APS: ``trained_runners``, from the table in ``files/shipped.py``), and, with ``peer=True``, deepinv's DPS and DiffPIR on the
same prior and problem (``posterior_tutor.evaluation.peer``).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from dataclasses import dataclass

import torch

from .. import metrics, tasks
from ..runtime.config import fast_mode
from .held_out import evaluate_images
from ..samplers import methods, sample
from ..trained.shipped import KINDS as TRAINED_KINDS

#: zero-shot options on 32x32 images per method: (full mode, fast mode).  PnP-ULA is left out: its
#: thousands of steps at a small noise level are a 2D lesson (chapter 02), not an image sampler.
IMAGE_OPTIONS = {
    "dps": ({}, {"steps": 100}),
    "diffpir": ({}, {"steps": 20}),
    "daps": ({"levels": 50, "langevin_steps": 50}, {"levels": 10, "langevin_steps": 20}),
    "latino": ({}, {}),
    "spin": ({}, {}),
}


HELD_OUT = "held-out MNIST digits (test[8000:])"
PRIOR_TRUTH = ("samples of the prior (DDIM, 50 steps), not held-out digits, because MNIST is not "
               "installed: not comparable with runs on MNIST; pt.data.load('mnist') says how to "
               "get it")


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
    truth: str = HELD_OUT      # what the samples were compared with (see ``test_images``)
    rank_coverage: float = math.nan   # metrics.rank_coverage: 0.90 for an exact sampler at any n


class PeakMemory:
    """Peak memory of a block: CUDA max allocated, or the CPU resident set above its start level."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.peak_bytes = 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        import psutil
        self._proc, self._stop = psutil.Process(), threading.Event()
        self.base = self._proc.memory_info().rss
        self._watch = threading.Thread(target=self._poll, daemon=True)
        self._watch.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.002):
            self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss - self.base)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self._stop.set()
            self._watch.join()
            self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss - self.base)
        return False

    @property
    def mb(self) -> float:
        return self.peak_bytes / 2 ** 20


def test_images(n: int, den, seed: int = 0) -> tuple[torch.Tensor, str]:
    """n held-out MNIST digits (test[8000:]), or prior samples when MNIST is not installed;
    returns them with a label saying which (``HELD_OUT`` or ``PRIOR_TRUTH``)."""
    from ..data import DataUnavailable, load
    try:
        return load("mnist", split="test")[8000:8000 + n], HELD_OUT
    except DataUnavailable:
        g = torch.Generator(device=den.device).manual_seed(seed)
        xs = sample("ddpm", den, None, None, n=n, steps=50, eta=0.0, generator=g)
        return xs.cpu(), PRIOR_TRUTH


def trained_runners(kind: str, task: str, den) -> dict:
    """{label: sample function} of the shipped trained samplers of ``kind`` that serve ``task``
    (the table in ``files/shipped.py``: their own task, or for UD2M every shipped one labelled
    with its training task, since its operator enters only through the prox).  Each is loaded
    with ``pt.pretrained(name, kind, den=den)`` and called like any sampler; what it calls of the diffusion
    network lands on ``den``'s counters (``trained/base.py``)."""
    from ..files.shipped import pretrained
    from ..trained.shipped import serving
    runs = {}
    for suffix, name in serving(kind, task).items():
        sampler = pretrained(name, kind, den=den)
        runs[kind + suffix] = (lambda prob, y, n, g, s=sampler:
                               s.sample(y, n, generator=g, problem=prob))
    return runs


#: deepinv's samplers at the settings of ours (peer.py): DPS with the paper's zeta (deepinv's
#: default weight 1 guides about 60x less), DiffPIR with lambda_ = 2 (= our lambda 1)
PEER_OPTIONS = {"dps": {"zeta": 0.3}, "diffpir": {"lambda_": 2.0}}


def _peer(name, fast: bool):
    def make(task, den):
        from .peer import run_deepinv
        opts = dict(PEER_OPTIONS[name], **(IMAGE_OPTIONS[name][1] if fast else {}))
        return lambda prob, y, n, g: run_deepinv(name, den, prob, y, n, generator=g, **opts)
    return make


def _peer_available() -> bool:
    try:
        from . import peer  # noqa: F401  (needs deepinv)
        return True
    except ImportError:
        return False


def method_runners(den, task, names, fast: bool, peer: bool) -> dict:
    """name -> sample function (prob, y, n, generator) for every method available on this task."""
    runners = {}
    for name in names:
        if name in IMAGE_OPTIONS and name in methods():
            opts = IMAGE_OPTIONS[name][1 if fast else 0]
            runners[name] = (lambda prob, y, n, g, name=name, opts=opts:
                             sample(name, den, prob, y, n=n, generator=g, **opts))
        elif name in TRAINED_KINDS:
            runners.update(trained_runners(name, task, den))
    if peer and _peer_available():
        linear = tasks.image_operator(task).linear
        for name in ("dps", "diffpir"):
            if name in names and (linear or name == "dps"):   # deepinv's DiffPIR needs a linear A
                runners[f"deepinv {name}"] = _peer(name, fast)(task, den)
    return runners


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


def peak_memory_here(task: str, label: str, n: int, device="cpu") -> float:
    """Peak memory (MB) that the row ``label`` adds on ``task`` to a process holding the prior:
    building the method (a trained sampler's own weights) and one sampling call (first held-out
    image, n samples, fast-mode options).  Honest on the CPU only in a fresh process."""
    from ..files.shipped import pretrained
    den = pretrained("mnist", device=device)
    den.clip = 1.0
    x = test_images(1, den)[0][0].to(den.device)
    prob = tasks.image_problem(task, generator=torch.Generator().manual_seed(100))
    g = torch.Generator(device=den.device).manual_seed(0)
    y = prob.measure(x, generator=g)
    base = label.split(" (")[0].removeprefix("deepinv ")
    if label.startswith("deepinv "):
        from . import peer  # noqa: F401  (importing deepinv is not the sampler's memory)
    with PeakMemory(den.device) as mem:
        runners = method_runners(den, task, [base], fast=True, peer=label.startswith("deepinv "))
        if label not in runners:
            raise ValueError(f"no method {label!r} on task {task!r}; there are {sorted(runners)}.")
        runners[label](prob, y, n, g)
    return mem.mb


def peak_memory_fresh(task: str, label: str, n: int, device="cpu", timeout: float = 600) -> float:
    """``peak_memory_here`` in a new Python process (one torch thread, like the suite's runs)."""
    cmd = [sys.executable, "-m", "posterior_tutor.evaluation.images", "--peak-memory", task, label,
           str(n), str(device)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"measuring the peak memory of {label!r} on {task!r} in a fresh "
                           f"process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def run_image_suite(fast: bool | None = None, task_names=None, method_names=None,
                    n_images: int | None = None, n_samples: int | None = None, seed: int = 0,
                    peer: bool = True, device=None, progress: bool = True,
                    memory: str | None = None) -> list[ImageRow]:
    """Every method on every task; one ImageRow each.  Fast: 2 tasks, 2 images, 4 samples.

    memory : "inline" (peak during the measured runs, this process) or "fresh" (one call in a
             new process per row, see the module docstring); default: "fresh" on CPU in full
             mode, else "inline" (CUDA's max-allocated counter is exact in-process)."""
    from ..files.shipped import pretrained
    fast = fast_mode() if fast is None else fast
    den = pretrained("mnist", device=device)
    den.clip = 1.0
    task_names = task_names or (["random_inpainting", "sr4"] if fast else list(tasks.TASKS))
    names = method_names or [m for m in IMAGE_OPTIONS if m in methods()] + list(TRAINED_KINDS)
    n_images = n_images or (2 if fast else 8)
    n_samples = n_samples or (4 if fast else 32)
    xs_true, truth = test_images(n_images, den, seed)
    with_lpips = metrics.lpips_available()       # False offline: the LPIPS column shows "-"
    if progress:
        print(f"MNIST tasks: ground truth = {truth}; LPIPS "
              f"{'measured' if with_lpips else 'not measured: ' + LPIPS_MISSING}", flush=True)
    memory = memory or ("fresh" if den.device.type == "cpu" and not fast else "inline")
    if memory not in ("fresh", "inline"):
        raise ValueError(f"memory must be 'fresh' or 'inline', got {memory!r}.")
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


def to_markdown(rows: list[ImageRow]) -> str:
    head = ("| task | method | PSNR single | PSNR mean | SSIM single | SSIM mean | LPIPS mean | "
            "90% coverage | rank coverage | NFE | backward | s / sample | peak MB |\n|"
            + "---|" * 13 + "\n")
    return head + "".join(
        f"| {r.task} | {r.method} | {r.psnr_single:.2f} | {r.psnr_mean:.2f} | {r.ssim_single:.3f} "
        f"| {r.ssim_mean:.3f} | {'-' if math.isnan(r.lpips_mean) else f'{r.lpips_mean:.3f}'} "
        f"| {r.coverage:.2f} | {r.rank_coverage:.2f} | {r.nfe:.0f} | {r.backward:.0f} | {r.s_per_sample:.4f} "
        f"| {r.peak_mb:.1f} |\n" for r in rows)


MEMORY_NOTE = {
    "fresh": "one sampling call per row in a fresh process (CPU resident set above its level "
             "before the call; CUDA max allocated)",
    "inline": "during the measured runs in one process (exact on CUDA; on the CPU memory "
              "freed by an earlier row is reused without showing, so later rows read low)"}


LPIPS_MISSING = ("its AlexNet weights are unavailable here (offline; pt.metrics.lpips says how to "
                 "supply them)")


def header(rows: list[ImageRow], memory: str = "inline", command: str | None = None) -> str:
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


def plot_tradeoffs(rows: list[ImageRow]):
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


def write(rows: list[ImageRow], out, machine: str, memory: str = "inline",
          command: str | None = None) -> None:
    """images.md (table + machine), images.csv and images_tradeoffs.png in ``out``."""
    import csv
    from dataclasses import asdict
    from pathlib import Path
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "images.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    (out / "images.md").write_text(f"Machine: {machine}\n\n{header(rows, memory, command)}\n\n"
                                   f"{to_markdown(rows)}")
    fig = plot_tradeoffs(rows)
    fig.savefig(out / "images_tradeoffs.png", dpi=90)
    import matplotlib.pyplot as plt
    plt.close(fig)


if __name__ == "__main__":      # python -m posterior_tutor.evaluation.images --peak-memory TASK LABEL N DEVICE
    if len(sys.argv) != 6 or sys.argv[1] != "--peak-memory":
        sys.exit("usage: python -m posterior_tutor.evaluation.images --peak-memory TASK LABEL N DEVICE")
    torch.set_num_threads(1)
    _task, _label, _n, _dev = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    print(json.dumps({"peak_mb": peak_memory_here(_task, _label, _n, _dev)}))
