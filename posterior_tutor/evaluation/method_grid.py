"""One image grid of every method on the same digits and the same measurement (chapters 05, 08).

    res = method_grid.compute(den, "sr4", n_digits=3)        # truth, y and one sample per method
    method_grid.plot(res)                                     # rows: digits; columns: methods

``compute`` measures each held-out digit once (``tasks.image_problem``, the benchmark's tasks at
sigma = 0.05) and runs every method that exists for the task on that same ``y``, with the
benchmark's options (``runners.method_runners``: DPS with 1000 steps, DiffPIR, DAPS, LATINO,
Spin zero-shot; UD2M and APS where a sampler ships for the task).  The result is a dict of small
float16 tensors and numbers, as ``pt.files.stored.run`` keeps it, so a chapter reads the heavy
references (DPS-1000) from a stored run instead of recomputing them.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .. import metrics, tasks
from .runners import method_runners, test_images

#: the methods of the course, in the order of the chapters
METHODS = ("dps", "diffpir", "daps", "spin", "latino", "ud2m", "aps")


def compute(den, task: str = "sr4", n_digits: int = 3, methods=METHODS, fast: bool = False,
            seed: int = 0) -> dict:
    """Truth, y (shown at the image's size) and one sample per method and digit.

    Returns {"truth": (k, C, H, W), "y": (k, C, H, W), "methods": [labels], "<label>": (k, C, H,
    W) samples, "psnr": {label: mean PSNR}, "seconds": {label: s per sample}, "digits": label}."""
    if n_digits < 1:
        raise ValueError(f"n_digits must be at least 1, got {n_digits}.")
    xs_true, which = test_images(n_digits, den, seed=seed)
    dev = den.device
    xs_true = xs_true.to(dev)
    runners = method_runners(den, task, list(methods), fast=fast, peer=False)
    probs = [tasks.image_problem(task, generator=torch.Generator().manual_seed(100 + i))
             for i in range(n_digits)]
    ys = [p.measure(x, generator=torch.Generator(device=dev).manual_seed(200 + i))
          for i, (p, x) in enumerate(zip(probs, xs_true))]
    out = {"truth": xs_true.cpu().half(), "digits": which, "task": task,
           "y": torch.stack([_as_image(p, y, xs_true.shape[1:]) for p, y in zip(probs, ys)]).cpu().half(),
           "methods": [], "psnr": {}, "seconds": {}}
    for label, run in runners.items():
        samples, start = [], time.perf_counter()
        for i, (p, y) in enumerate(zip(probs, ys)):
            g = torch.Generator(device=dev).manual_seed(seed + 300 + i)
            samples.append(run(p, y, 1, g)[0])
        xs = torch.stack(samples)
        out["seconds"][label] = (time.perf_counter() - start) / n_digits
        out["psnr"][label] = float(metrics.psnr(xs, xs_true).mean())
        out["methods"].append(label)
        out[label] = xs.detach().cpu().half()
    return out


def _as_image(problem, y, shape):
    """y shown as an image: itself when it has the image's shape, else (a downsampled y) upsampled
    to the image's size with nearest neighbours, else the adjoint A^T y."""
    if tuple(y.shape) == tuple(shape):
        return y
    if y.ndim == len(shape) and y.shape[0] == shape[0]:
        return F.interpolate(y[None], size=tuple(shape[-2:]), mode="nearest")[0]
    return problem.operator.adjoint(y[None])[0]


def plot(res: dict, axes=None, title: str | None = None):
    """Rows: digits; columns: truth, y, then each method (its PSNR in the column title)."""
    import matplotlib.pyplot as plt
    cols = ["truth", "y"] + list(res["methods"])
    k = res["truth"].shape[0]
    if axes is None:
        fig, axes = plt.subplots(k, len(cols), figsize=(1.25 * len(cols), 1.35 * k + 0.4), squeeze=False)
    else:
        fig = axes[0][0].figure
    for c, name in enumerate(cols):
        for r in range(k):
            ax = axes[r][c]
            ax.imshow(res[name][r, 0].float().clamp(-1, 1).numpy(), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        head = name if name in ("truth", "y") else f"{name}\n{res['psnr'][name]:.1f} dB"
        axes[0][c].set_title(head, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
