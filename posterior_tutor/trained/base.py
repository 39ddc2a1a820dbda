"""What every trained sampler shares: the call check, sampling as the last Step, NFE on the prior's
counters, and files that remember which prior (and problem) they were trained on.

A trained sampler (UD2M, APS) is fitted once to a prior ``den`` and a task, then called like a
zero-shot one:

    xs = sampler.sample(y, n, generator=g, problem=problem)    # = the last Step of iterate(...)
    for step in sampler.iterate(y, n, generator=g): ...      # the same chain, step by step

* ``sample`` runs ``iterate`` to its end and returns the last ``Step``'s x, so a widget, a
  benchmark and a test consume one loop (no private second loop per method).
* The call: ``check_trained_call`` (a problem, n >= 1, y of its measurement shape, a generator on
  y's device), the same for every trained sampler.
* NFE: a sampler that calls an adapted copy of the prior (UD2M) counts the copy's calls and
  ``sample`` adds them to the prior's counters (``den.nfe``, ``den.nfe_grad``); one that calls no
  diffusion network (APS's flow) adds nothing.  A benchmark reads a trained sampler exactly as it
  reads a zero-shot one.
* Files: ``save_trained`` writes a checksummed checkpoint (``safe_io``: temporary file, fsync,
  rename) holding a fingerprint of the prior, the prior's output on a fixed probe
  (``prior_fingerprint``); ``check_format`` refuses another kind of file, ``check_prior`` another
  prior and, for a sampler tied to its problem (APS), another operator or sigma (``check_problem``).
* ``read_shipped`` finds a shipped sampler under ``data/<folder>/`` (the table: ``shipped.py``) and
  checks its sha256 against the model card beside it; ``verify_shipped(path)`` does the same for
  any path ``load`` is given that is one of the shipped files (a shipped file predates the
  embedded checksum, so its card is its only check).
* The data convention (``check_signal_range``, ``check_y_range``; DESIGN.md): images live in
  [-1, 1] (uint8 digits: x / 127.5 - 1).  Training images outside [-1.1, 1.1] are refused, and so
  is a y that no image in that range can produce: for a linear A and x in [-1, 1]^d,
  |A x| <= |A| |x| <= |A| sqrt(d), and Gaussian noise has |e| <= sigma (sqrt(m) + 10) but with
  probability exp(-50), so

      |y| > 1.1 * 1.05 |A| sqrt(d) + sigma (sqrt(m) + 10)     (d = x.numel(), m = y.numel())

  is refused (1.05: margin on a power-iteration |A|).  The rule never fires on a y measured from
  data in range; it catches y measured from 0..255 images, not y from [0, 1] images (those are a
  possible measurement).  Vectors (the toy problems) have no range convention and are not checked.
* ``y_as_image``: a batch of y brought to x's image size, for networks conditioned on y.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

import math
from pathlib import Path

from ..files.checkpoints import (CheckpointError, check_trained_on, checkpoint_dir, file_sha256,
                                 prior_fingerprint, read_verified, save_atomic, shipped_path)
from ..files.safe import read_card
from ..checks.values import check_generator, check_generator_on, check_positive_int, conform, dtype_of
from ..denoisers import Denoiser
from ..operators import InverseProblem

__all__ = ["TrainedSampler", "check_trained_call", "check_format", "check_prior", "save_trained",
           "prior_fingerprint", "check_trained_on", "read_shipped", "CheckpointError",
           "check_training_set", "check_problem", "y_as_image", "verify_shipped",
           "check_signal_range", "check_y_range", "RANGE_TOLERANCE"]

RANGE_TOLERANCE = 0.1   # images may stray this far outside [-1, 1] (resampling overshoot)


class TrainedSampler:
    """The shared half of a trained sampler.  A subclass sets ``den`` (the prior's Denoiser it
    was trained on, named as the zero-shot samplers name it), ``problem`` (its default InverseProblem or None), ``shape`` (the signal shape),
    ``denoiser`` (the network it calls, which counts its calls; None when it calls no diffusion
    network) and implements ``iterate``; ``what`` names it in error messages."""

    denoiser = None
    what = "sampler"

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    def iterate(self, y, n: int = 1, generator=None, problem=None):
        raise NotImplementedError

    def sample(self, y, n: int = 1, generator=None, problem=None) -> torch.Tensor:
        """n samples (n, ...) for one measurement y (no sample dimension): the last Step's x."""
        return self._run_to_end(self.iterate(y, n, generator, problem))

    @classmethod
    def from_shipped(cls, row, den, check: bool = True, label: str | None = None):
        """The shipped file of ``row`` (a row of ``files.shipped.SHIPPED``) on ``den``, its
        sha256 checked against the card beside it; its default problem is its training task."""
        from .shipped import shipped_problem
        path, ckpt, card = read_shipped(row.folder, row.filename, label or f"{cls.what} {row.name}",
                                        check)
        sampler = cls.from_checkpoint(ckpt, den, shipped_problem(row.kind, row.name), path)
        sampler.card = card
        return sampler

    def _run_to_end(self, steps) -> torch.Tensor:
        """Run a chain of Steps to its end; its network calls go onto the prior's counters."""
        net = self.denoiser if self.denoiser is not self.den else None
        before = (net.nfe, net.nfe_grad) if net is not None else None
        last = None
        for last in steps:
            pass
        if net is not None:
            self.den.nfe += net.nfe - before[0]
            self.den.nfe_grad += net.nfe_grad - before[1]
        return last.x.detach()

    def _check_sampling(self, y, n, generator, problem, params=None):
        """(problem, y in the sampler's dtype) after checking the call (``check_trained_call``);
        ``params``: the tensors whose dtype y takes (default: the denoiser's)."""
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}.")
        y = conform(y, dtype_of(params if params is not None else self.denoiser), "y")
        problem = check_trained_call(problem, self.problem, y, n, generator, self.shape,
                                  self.device, self.what)
        check_y_range(problem, y[None], self.shape, "y")
        return problem, y


def check_trained_call(problem, default, y, n, generator, shape, device, what: str = "sampler"):
    """The problem a trained sampler (UD2M, APS) samples for, after checking the call: a problem
    (``problem`` or the sampler's ``default``), n >= 1, y of that problem's measurement shape
    (``problem.check_y``: shape, NaN, device) measuring signals of ``shape``, a generator on y's
    device; ``what`` names the sampler in the messages."""
    check_generator(generator)
    problem = problem if problem is not None else default
    if problem is None:
        raise ValueError(f"this {what} has no default problem (it was loaded from a file): "
                         "pass problem=InverseProblem(...).")
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"problem must be an InverseProblem, got {type(problem).__name__}.")
    check_positive_int(n, "n (number of samples)")
    measured = problem.check_y(y, device=device)
    if tuple(measured) != tuple(shape):
        raise ValueError(f"y measures signals of shape {tuple(measured)} but this {what} was "
                         f"trained on signals of shape {tuple(shape)}.")
    check_generator_on(generator, y)
    return problem


def check_training_set(den, problem, data, name: str, what: str, clean: str) -> None:
    """The arguments every trainer takes: a Denoiser, an InverseProblem and a finite tensor
    ``data`` of n >= 1 training items (``name``: its argument name; ``what``: what it holds, e.g.
    "clean signals (n, ...)"; ``clean``: what to clean when it holds NaN or Inf)."""
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"problem must be an InverseProblem, got {type(problem).__name__}.")
    if not isinstance(data, torch.Tensor) or data.ndim < 2 or data.shape[0] < 1:
        raise ValueError(f"{name} must be a tensor of {what}, n >= 1; got "
                         f"{getattr(data, 'shape', type(data).__name__)}.")
    if not torch.isfinite(data).all():
        raise ValueError(f"{name} contains {(~torch.isfinite(data)).sum().item()} NaN or Inf "
                         f"value(s); clean {clean} first.")


def save_trained(path, fmt: str, prior, shape, **entries) -> None:
    """Atomic, checksummed save of ``entries`` with the format tag and the prior's fingerprint."""
    save_atomic({"format": fmt, **entries,
                 "prior_fingerprint": prior_fingerprint(prior, shape).cpu()}, path)


def check_format(ckpt: dict, fmt: str, keys, path, what: str) -> None:
    """Refuse a checkpoint of another kind: its format tag must be ``fmt`` and it must hold
    ``keys`` (``what``: "a UD2M sampler", for the message)."""
    if ckpt.get("format") != fmt or not set(keys) <= set(ckpt):
        raise CheckpointError(f"{path} is not {what} checkpoint (format "
                              f"{ckpt.get('format')!r}, expected {fmt!r}).")


def check_prior(den, config: dict, fingerprint, path, problem=None) -> None:
    """Refuse a prior that is not the one the checkpoint at ``path`` was trained on: not a
    Denoiser, another schedule length T, another signal shape or another output on the probe;
    with ``problem``, also a problem that is not the one in ``config`` (``check_problem``)."""
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if den.schedule.T != config["T"]:
        raise CheckpointError(f"{path} was trained with T={config['T']}, this prior has "
                              f"T={den.schedule.T}.")
    check_trained_on(den, config["shape"], fingerprint, path)
    if problem is not None:
        check_problem(config, problem)


def check_problem(config: dict, problem) -> None:
    """Refuse a problem other than the one a problem-bound sampler (APS) was trained for: its
    ``config`` records the operator (repr) and sigma."""
    if abs(problem.sigma - config["sigma"]) > 1e-9 * config["sigma"] or \
            repr(problem.operator) != config["operator"]:
        raise ValueError(f"this flow was trained for {config['operator']} with sigma="
                         f"{config['sigma']:g}, got {problem!r}: an amortized flow only knows the "
                         "problem it was trained on; train one for this problem.")


def read_shipped(folder: str, filename: str, what: str, check: bool = True) -> tuple:
    """(path, checkpoint, card) of the shipped ``data/<folder>/<filename>``, sha256-checked
    against its model card (``check=False``: unverified)."""
    path = shipped_path(folder, filename, what)
    ckpt, card = read_verified(path, check, what=what)
    return path, ckpt, card


def y_as_image(problem: InverseProblem, y, shape, mode: str = "bilinear", what: str = "network"):
    """A batch of y (n, *y_shape) as images of x's size (``shape`` = (C, H, W)): y itself, y
    upsampled when it is a smaller image (``mode``: "bilinear", APS's flow; "nearest", UD2M's
    discriminator), else A^T y (a linear operator is needed then; ``what`` names the caller)."""
    H, W = shape[-2:]
    if y.ndim == 4 and tuple(y.shape[-2:]) == (H, W):
        return y
    if y.ndim == 4:
        if mode == "nearest":
            return F.interpolate(y, size=(H, W), mode="nearest")
        return F.interpolate(y, size=(H, W), mode=mode, align_corners=False)
    if problem.operator.linear:
        return problem.operator.adjoint(y)
    raise ValueError(f"the {what} needs y as an image, or a linear operator for A^T y.")


def verify_shipped(path) -> str | None:
    """The sha256 that the file at ``path`` must have: its model card's when ``path`` is one of
    the shipped samplers (``shipped.SHIPPED`` under ``checkpoint_dir()``), else None (a file saved
    by ``save`` carries its own checksum).  A shipped file whose card is missing or has no sha256
    gives a CheckpointError: it cannot be verified."""
    from .shipped import SHIPPED
    path = Path(path)
    try:
        here = path.resolve()
        row = next((s for s in SHIPPED
                    if (checkpoint_dir() / s.folder / s.filename).resolve() == here), None)
    except OSError:
        return None
    if row is None:
        return None
    card_path = path.parent / "model_card.json"
    if not card_path.is_file():
        raise CheckpointError(f"{card_path} is missing, so the shipped {row.kind} sampler {path} "
                              f"cannot be verified; restore it with git checkout data/{row.folder}"
                              " (or copy the file elsewhere to load it as an unverified one).")
    return read_card(card_path)["sha256"]


def check_signal_range(xs, name: str) -> None:
    """Training images (n, C, H, W) must be in [-1, 1] (within RANGE_TOLERANCE); vectors: any."""
    if xs.ndim != 4:
        return
    lo, hi = xs.min().item(), xs.max().item()
    if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise ValueError(f"{name} holds values in [{lo:.4g}, {hi:.4g}], but images are scaled to "
                         f"[-1, 1] (DESIGN.md; up to {RANGE_TOLERANCE:g} outside is accepted): "
                         "for uint8 (0..255) images use x / 127.5 - 1, for [0, 1] images 2 x - 1.")


def y_norm_bound(problem, shape, m: int) -> float | None:
    """The largest |y| (2-norm; m entries) a measurement of an image in the accepted range can
    have (module docstring), or None where there is no bound: vectors, nonlinear operators, an
    operator whose |A| cannot be computed."""
    op = problem.operator
    if len(shape) != 3 or not op.linear:
        return None
    try:
        a = math.sqrt(op.norm_squared(tuple(shape)))
    except (NotImplementedError, RuntimeError, ValueError, TypeError):
        return None
    d = math.prod(shape)
    return (1 + RANGE_TOLERANCE) * 1.05 * a * math.sqrt(d) + problem.sigma * (math.sqrt(m) + 10)


def check_y_range(problem, ys, shape, name: str) -> None:
    """Refuse a batch of measurements ys (n, *y_shape) that no image in [-1, 1] can produce
    through ``problem`` (the rule: module docstring)."""
    bound = y_norm_bound(problem, shape, ys[0].numel())
    if bound is None:
        return
    norms = ys.detach().flatten(1).norm(dim=1)
    worst = int(norms.argmax())
    if norms[worst].item() > bound:
        which = f"{name}[{worst}]" if ys.shape[0] > 1 else name
        raise ValueError(f"{which} has norm {norms[worst].item():.4g}, more than any measurement "
                         f"of an image in [-1, 1] by {problem!r} can have ({bound:.4g} = 1.155 |A| "
                         "sqrt(d) + sigma (sqrt(m) + 10)): it was measured from images in another "
                         "range. Scale the images to [-1, 1] (uint8: x / 127.5 - 1) and measure "
                         "them again.")
