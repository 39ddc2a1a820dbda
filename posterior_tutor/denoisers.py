"""The Denoiser protocol: one network, three views, every call counted.

A denoiser is called as ``den(x_t, t)`` and returns the Tweedie estimate E[x0 | x_t] for the VP
process x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.  The two other views follow from it:

    eps(x_t, t)   = (x_t - sqrt(abar_t) D(x_t, t)) / sqrt(1 - abar_t)
    score(x_t, t) = grad log p_t(x_t) = -eps(x_t, t) / sqrt(1 - abar_t)

Each call adds one to ``den.nfe`` (number of function evaluations) and its wall time to
``den.net_seconds``; a call that records a graph for a backward pass (grad enabled and x_t requiring
grad) also adds one to ``den.nfe_grad``.  Benchmarks read these counters; samplers never keep their own.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from .checks.values import check_float
from .schedules import VPSchedule


class Denoiser:
    """Base class.  Subclasses implement ``_x0(x_t, t)`` with ``t`` a long tensor of shape (n,)."""

    #: shape of one signal this denoiser accepts, e.g. (2,) or (1, 28, 28); None = any
    shape: tuple | None = None

    def __init__(self, schedule: VPSchedule):
        self.schedule = schedule
        self.reset_counters()

    # -- counters ------------------------------------------------------------------------
    def reset_counters(self) -> None:
        self.nfe = 0
        self.nfe_grad = 0
        self.net_seconds = 0.0

    @contextmanager
    def counting(self):
        """``with den.counting() as c:`` resets the counters and gives the denoiser back."""
        self.reset_counters()
        yield self

    # -- the three views -----------------------------------------------------------------
    def __call__(self, x_t: torch.Tensor, t) -> torch.Tensor:
        self._check_signal(x_t)
        t_vec = self._time_vector(x_t, t)
        start = time.perf_counter()
        out = self._x0(x_t, t_vec)
        if x_t.is_cuda:
            torch.cuda.synchronize(x_t.device)
        self.net_seconds += time.perf_counter() - start
        self.nfe += 1
        if torch.is_grad_enabled() and x_t.requires_grad:
            self.nfe_grad += 1
        return out

    def eps(self, x_t: torch.Tensor, t) -> torch.Tensor:
        ab = self.schedule.abar(self._time_vector(x_t, t), like=x_t)
        return (x_t - ab.sqrt() * self(x_t, t)) / (1 - ab).sqrt()

    def score(self, x_t: torch.Tensor, t) -> torch.Tensor:
        ab = self.schedule.abar(self._time_vector(x_t, t), like=x_t)
        return -self.eps(x_t, t) / (1 - ab).sqrt()

    def _x0(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _check_signal(self, x_t: torch.Tensor) -> None:
        check_float(x_t, "x_t")
        if self.shape is not None and tuple(x_t.shape[1:]) != tuple(self.shape):
            raise ValueError(
                f"this prior models signals of shape {tuple(self.shape)} (batched: (n, "
                f"{', '.join(map(str, self.shape))})), got a batch of shape {tuple(x_t.shape)}. "
                "Resize or pad the images (pt.data.resize) or use a prior trained at that size.")

    def _time_vector(self, x_t, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.long, device=x_t.device)
        self.schedule.check_t(t)
        if t.ndim == 0:
            t = t.expand(x_t.shape[0])
        if t.shape != (x_t.shape[0],):
            raise ValueError(
                f"t must be one integer or one per sample ({x_t.shape[0]}), got shape {tuple(t.shape)}.")
        return t


class _NetDenoiser(Denoiser):
    """A denoiser backed by a torch network: ``.device`` and ``.to(device)`` follow the network."""

    net: torch.nn.Module

    @property
    def device(self) -> torch.device:
        p = next(self.net.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device):
        self.net.to(device)
        return self

    def _check_signal(self, x_t):
        super()._check_signal(x_t)
        if x_t.device != self.device:
            raise ValueError(f"the input is on {x_t.device} but the prior network is on "
                             f"{self.device}: move one of them (den.to(device) or x.to(device)).")


class EpsNetDenoiser(_NetDenoiser):
    """Wraps a network ``net(x_t, t) -> eps`` (the usual DDPM parameterisation)."""

    def __init__(self, net: torch.nn.Module, schedule: VPSchedule, shape: tuple | None = None,
                 clip: float | None = None):
        super().__init__(schedule)
        self.net, self.shape, self.clip = net, shape, clip

    def _x0(self, x_t, t):
        ab = self.schedule.abar(t, like=x_t)
        x0 = (x_t - (1 - ab).sqrt() * self.net(x_t, t)) / ab.sqrt()
        return x0.clamp(-self.clip, self.clip) if self.clip is not None else x0


class X0NetDenoiser(_NetDenoiser):
    """Wraps a network ``net(x_t, t) -> x0`` directly."""

    def __init__(self, net: torch.nn.Module, schedule: VPSchedule, shape: tuple | None = None):
        super().__init__(schedule)
        self.net, self.shape = net, shape

    def _x0(self, x_t, t):
        return self.net(x_t, t)


def parameters_of(den: Denoiser) -> list[torch.Tensor]:
    """The trainable tensors behind a denoiser (empty for an exact one)."""
    net = getattr(den, "net", None)
    return list(net.parameters()) if isinstance(net, torch.nn.Module) else []
