"""What every trained sampler shares: the call check, sampling as the last Step, NFE on the prior's
counters, and files that remember which prior they were trained on.

A trained sampler (UD2M now; APS to follow) is fitted once to a prior ``den`` and a task, then
called like a zero-shot one:

    xs = sampler.sample(y, n, generator=g, problem=prob)    # = the last Step of iterate(...)
    for step in sampler.iterate(y, n, generator=g): ...      # the same chain, step by step

* ``sample`` runs ``iterate`` to its end and returns the last ``Step``'s x, so a widget, a
  benchmark and a test consume one loop (no private second loop per method).
* NFE: the sampler's network (an adapted copy of the prior's) counts its own calls; ``sample``
  adds them to the prior's counters (``den.nfe``, ``den.nfe_grad``), so a benchmark reads a
  trained sampler exactly as it reads a zero-shot one.
* Files: ``save_trained`` writes a checksummed checkpoint (``safe_io``: temporary file, fsync,
  rename) holding a fingerprint of the prior, the prior's output on a fixed probe
  (``prior_fingerprint``); ``check_format`` refuses another kind of file and ``check_prior``
  another prior.
* ``read_shipped`` finds a shipped sampler under ``data/<folder>/`` and checks its sha256 against
  the model card beside it.
"""
from __future__ import annotations

import torch

from ..checkpoints import (CheckpointError, check_trained_on, prior_fingerprint, read_verified,
                           save_atomic, shipped_path)
from ..checks import conform, dtype_of
from ..denoisers import Denoiser
from ..operators import InverseProblem
from ..samplers.base import check_trained_call

__all__ = ["TrainedSampler", "check_trained_call", "check_format", "check_prior", "save_trained",
           "prior_fingerprint", "check_trained_on", "read_shipped", "CheckpointError",
           "check_training_set"]


class TrainedSampler:
    """The shared half of a trained sampler.  A subclass sets ``prior`` (the Denoiser it was
    trained on), ``problem`` (its default InverseProblem or None), ``shape`` (the signal shape),
    ``denoiser`` (the network it calls, which counts its calls) and implements ``iterate``."""

    def iterate(self, y, n: int = 1, generator=None, problem=None):
        raise NotImplementedError

    def sample(self, y, n: int = 1, generator=None, problem=None) -> torch.Tensor:
        """n samples (n, ...) for one measurement y (no sample dimension): the last Step's x."""
        return self._run_to_end(self.iterate(y, n, generator, problem))

    def _run_to_end(self, steps) -> torch.Tensor:
        """Run a chain of Steps to its end; its network calls go onto the prior's counters."""
        net = self.denoiser
        before = (net.nfe, net.nfe_grad)
        last = None
        for last in steps:
            pass
        if net is not self.prior:
            self.prior.nfe += net.nfe - before[0]
            self.prior.nfe_grad += net.nfe_grad - before[1]
        return last.x.detach()

    def _check_sampling(self, y, n, generator, problem, params=None):
        """(problem, y in the sampler's dtype) after checking the call (``check_trained_call``);
        ``params``: the tensors whose dtype y takes (default: the denoiser's)."""
        if isinstance(y, torch.Tensor):
            y = conform(y, dtype_of(params if params is not None else self.denoiser), "y")
        return check_trained_call(problem, self.problem, y, n, generator, self.shape,
                                  self.denoiser.device), y


def check_training_set(den, prob, data, name: str, what: str, clean: str) -> None:
    """The arguments every trainer takes: a Denoiser, an InverseProblem and a finite tensor
    ``data`` of n >= 1 training items (``name``: its argument name; ``what``: what it holds, e.g.
    "clean signals (n, ...)"; ``clean``: what to clean when it holds NaN or Inf)."""
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if not isinstance(prob, InverseProblem):
        raise TypeError(f"prob must be an InverseProblem, got {type(prob).__name__}.")
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


def check_prior(den, config: dict, fingerprint, path) -> None:
    """Refuse a prior that is not the one the checkpoint at ``path`` was trained on: not a
    Denoiser, another schedule length T, another signal shape or another output on the probe."""
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if den.schedule.T != config["T"]:
        raise CheckpointError(f"{path} was trained with T={config['T']}, this prior has "
                              f"T={den.schedule.T}.")
    check_trained_on(den, config["shape"], fingerprint, path)


def read_shipped(folder: str, filename: str, what: str) -> tuple:
    """(path, checkpoint, card) of the shipped ``data/<folder>/<filename>``, sha256-checked."""
    path = shipped_path(folder, filename, what)
    ckpt, card = read_verified(path, what=what)
    return path, ckpt, card
