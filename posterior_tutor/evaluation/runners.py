"""What the image suite runs: one sample function per row, and the digits it is scored on.

    runs = method_runners(den, "sr4", ["dps", "ud2m"], fast=True, peer=False)
    xs = runs["dps"](problem, y, n, generator)                 # (n, C, H, W)

Every row of the benchmark, whatever its family, is reduced to the same call ``run(problem, y, n,
generator) -> samples``: a zero-shot sampler is ``pt.sample`` with the options of ``options.py``; a
trained sampler (UD2M, APS) is loaded with ``pt.pretrained(name, kind, den=den)`` from the
shipped table (``trained/shipped.py``) and called like any sampler, its calls of the diffusion
network landing on ``den``'s counters; deepinv's DPS and DiffPIR (``peer``) run on the same prior
and problem.  The suite then needs no case per method: it times and scores calls.

Trivial estimators (``trivial_runners``, the rows named "trivial: ..."): the floors every sampler
must clear on the same y, with no network call: the mean digit, A^T y, and where it is cheap the
pseudo-inverse A^+ y (inpainting and denoising: A^T y itself; super-resolution: nearest, bilinear
and bicubic upsampling of y).  Each returns one image (a point estimate, no spread).

Ground truth: held-out MNIST digits (test[8000:], not seen by the prior), or, when MNIST is not
installed, samples of the prior, labelled so that nobody compares the two kinds of run.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import tasks
from ..samplers import methods, sample
from ..samplers.base import get_method, options_of
from ..trained.shipped import KINDS as TRAINED_KINDS
from .options import IMAGE_OPTIONS, PEER_OPTIONS, image_options

HELD_OUT = "held-out MNIST digits (test[8000:])"
PRIOR_TRUTH = ("samples of the prior (DDIM, 50 steps), not held-out digits, because MNIST is not "
               "installed: not comparable with runs on MNIST; pt.data.load('mnist') says how to "
               "get it")


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


#: the --methods name of the trivial rows, and the prefix of their labels
TRIVIAL = "trivial"
TRIVIAL_PREFIX = "trivial: "
#: tasks whose A A^T = I (mask or identity): there A^+ y = A^T y
_TIGHT = ("denoising", "random_inpainting", "box_inpainting")


def mean_digit(den, seed: int = 0) -> tuple[torch.Tensor, str]:
    """The prior-mean estimate (C, H, W) and what it is: the mean of the MNIST training digits,
    else of the test digits test[:8000] (disjoint from the scored test[8000:]), else (MNIST not
    installed) of 64 prior samples (DDIM, 50 steps)."""
    from ..data import DataUnavailable, load
    for split, part, label in (("train", slice(None), "mean training digit"),
                               ("test", slice(0, 8000), "mean digit of test[:8000]")):
        try:
            return load("mnist", split=split, download=False)[part].mean(0), label
        except DataUnavailable:
            continue
    g = torch.Generator(device=den.device).manual_seed(seed + 1000)
    xs = sample("ddpm", den, None, None, n=64, steps=50, eta=0.0, generator=g)
    return xs.mean(0).cpu(), "mean of 64 prior samples"


def _point(fn):
    """A run (problem, y, n, generator) -> one estimate (1, C, H, W) in [-1, 1], from fn(problem,
    y batched as (1, ...))."""
    return lambda problem, y, n, g: fn(problem, y[None]).clamp(-1, 1)


def trivial_runners(den, task: str) -> dict:
    """{"trivial: ...": run} for ``task``: the mean digit (every task), A^T y (linear tasks; = A^+ y
    where A A^T = I), and for sr4 A^+ y (= 16 A^T y: nearest upsampling) and bilinear and bicubic
    upsampling of y (``torch.nn.functional.interpolate``).  Runs return one image."""
    mean, label = mean_digit(den)
    runs = {TRIVIAL_PREFIX + label: _point(lambda p, y: mean[None].to(y))}
    if tasks.image_operator(task).linear:
        name = "A^T y = A^+ y" if task in _TIGHT else "A^T y"
        runs[TRIVIAL_PREFIX + name] = _point(lambda p, y: p.operator.adjoint(y))
    if task == "sr4":
        runs[TRIVIAL_PREFIX + "A^+ y (nearest upsampling)"] = _point(
            lambda p, y: p.operator.adjoint(y) / p.operator.norm_squared())
        for mode in ("bilinear", "bicubic"):
            runs[TRIVIAL_PREFIX + f"{mode} upsampling"] = _point(
                lambda p, y, mode=mode: F.interpolate(y, size=p.operator.in_shape[-2:], mode=mode,
                                                      align_corners=False))
    return runs


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
        runs[kind + suffix] = (lambda problem, y, n, g, s=sampler:
                               s.sample(y, n, generator=g, problem=problem))
    return runs


def _peer(name, fast: bool):
    def make(task, den):
        from .peer import run_deepinv
        opts = dict(PEER_OPTIONS[name], **(IMAGE_OPTIONS[name][1] if fast else {}))
        return lambda problem, y, n, g: run_deepinv(name, den, problem, y, n, generator=g, **opts)
    return make


def peer_available() -> bool:
    """Whether deepinv imports here (the peer rows need it)."""
    try:
        from . import peer  # noqa: F401  (needs deepinv)
        return True
    except ImportError:
        return False


def image_methods() -> list[str]:
    """The names the image suite accepts: zero-shot samplers with image options, trained kinds,
    and "trivial" (the floors, ``trivial_runners``)."""
    return [m for m in IMAGE_OPTIONS if m in methods()] + list(TRAINED_KINDS) + [TRIVIAL]


def refused(name, den, task, fast: bool) -> bool:
    """True (and one printed line with the sampler's reason) when the sampler ``name`` refuses
    the operator of ``task``, as MCGdiff refuses a nonlinear one: its row is left out."""
    check = get_method(name).check
    if check is None:
        return False
    problem = tasks.image_problem(task)
    try:
        check(den, problem, tuple(den.shape or tasks.MNIST_SHAPE),
              {**options_of(name), **image_options(name, fast)})
    except ValueError as e:
        print(f"  {task:18s} {name:16s} not run: {e}", flush=True)
        return True
    return False


def method_runners(den, task, names, fast: bool, peer: bool) -> dict:
    """name -> sample function (problem, y, n, generator) for every method available on this task."""
    runners = trivial_runners(den, task) if TRIVIAL in names else {}
    for name in names:
        if name in IMAGE_OPTIONS and name in methods() and not refused(name, den, task, fast):
            opts = image_options(name, fast)
            runners[name] = (lambda problem, y, n, g, name=name, opts=opts:
                             sample(name, den, problem, y, n=n, generator=g, **opts))
        elif name in TRAINED_KINDS:
            runners.update(trained_runners(name, task, den))
    if peer and peer_available():
        linear = tasks.image_operator(task).linear
        for name in ("dps", "diffpir"):
            if name in names and (linear or name == "dps"):   # deepinv's DiffPIR needs a linear A
                runners[f"deepinv {name}"] = _peer(name, fast)(task, den)
    return runners
