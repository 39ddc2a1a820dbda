"""Variance-preserving (VP) diffusion schedule and the maps between time and noise level.

Forward process (DDPM, Ho et al. 2020), integer time t in 0..T-1:

    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,      abar_t = prod_{s<=t} (1 - beta_s)

with linear betas from 1e-4 to 0.02 and T = 1000 by default.  Dividing by sqrt(abar_t) gives the
variance-exploding (VE) view x_t / sqrt(abar_t) = x0 + s(t) eps with noise level

    s(t) = sqrt((1 - abar_t) / abar_t)                    (``sched.s(t)``; ``sched.t_from_s(s)``).

It is called s, not sigma, because sigma is the measurement noise of an InverseProblem
(``problem.sigma``).  Every sampler in this package talks about time through this one object.
"""
from __future__ import annotations

import math

import torch

from .checks.values import check_generator


class VPSchedule:
    """Discrete VP schedule. ``alpha_bar`` is a float64 tensor of shape (T,) on the CPU."""

    def __init__(self, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        if T < 2:
            raise ValueError(f"VPSchedule needs T >= 2 time steps, got T={T}.")
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(
                f"VPSchedule needs 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}.")
        self.T = int(T)
        self.betas = torch.linspace(beta_start, beta_end, self.T, dtype=torch.float64)
        self.alpha_bar = torch.cumprod(1.0 - self.betas, dim=0)
        self._s = torch.sqrt((1.0 - self.alpha_bar) / self.alpha_bar)

    def __repr__(self) -> str:
        return (f"VPSchedule(T={self.T}, beta_start={self.betas[0].item():g}, "
                f"beta_end={self.betas[-1].item():g})")

    def __getattr__(self, name):
        """Only reached for a missing attribute: the old names say what they became."""
        renamed = {"sigma": "s", "t_from_sigma": "t_from_s"}
        if name in renamed:
            raise AttributeError(f"VPSchedule.{name} is now VPSchedule.{renamed[name]}: s(t) is "
                                 "the VE noise level (sigma is the measurement noise, "
                                 "problem.sigma).")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- scalar look-ups -------------------------------------------------------------------
    def check_t(self, t) -> None:
        tt = torch.as_tensor(t)
        if tt.dtype.is_floating_point or tt.dtype == torch.bool:
            raise TypeError(f"diffusion time t must be an integer index, got {t!r}.")
        if tt.numel() and (tt.min() < 0 or tt.max() >= self.T):
            raise ValueError(f"diffusion time t must lie in 0..{self.T - 1}, got {t!r}.")

    def abar(self, t, like: torch.Tensor | None = None) -> torch.Tensor:
        """abar_t as a tensor; with ``like`` it has like's device and dtype and broadcasts
        against it along the first (sample) dimension."""
        return self._lookup(self.alpha_bar, t, like)

    def s(self, t, like: torch.Tensor | None = None) -> torch.Tensor:
        """VE noise level s(t) = sqrt((1 - abar_t) / abar_t) (not the measurement noise sigma)."""
        return self._lookup(self._s, t, like)

    def _lookup(self, table, t, like):
        idx = torch.as_tensor(t, dtype=torch.long)
        val = table[idx.cpu()]
        if like is None:
            return val
        val = val.to(device=like.device, dtype=like.dtype)
        if val.ndim == 1:  # one time per sample: shape (n, 1, 1, ...) to broadcast
            val = val.reshape(-1, *([1] * (like.ndim - 1)))
        return val

    def t_from_s(self, s: float) -> int:
        """The integer time whose VE noise level s(t) is closest to ``s`` (s >= 0)."""
        if not s >= 0:
            raise ValueError(f"the VE noise level s must be >= 0, got {s}.")
        return int(torch.argmin((self._s - float(s)).abs()).item())

    # -- noising -------------------------------------------------------------------------
    def add_noise(self, x0: torch.Tensor, t, noise: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw x_t given x0 (t an int or one int per sample)."""
        if noise is None:
            noise = randn_like(x0, generator)
        ab = self.abar(t, like=x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    # -- time grids ----------------------------------------------------------------------
    def timesteps(self, n: int, kind: str = "uniform", t_max: int | None = None,
                  t_min: int = 0) -> list[int]:
        """A decreasing grid of ``n`` distinct integer times from t_max (default T-1) to t_min.

        kind = "uniform" (evenly spaced), "quadratic" (UD2M: t_k = floor((k sqrt(T)/n)^2), dense
        at low noise), "sqrt" (DiffPIR's code, its ``skip_type='quad'``: t_i = t_max -
        floor((t_max - t_min + 1) sqrt(i / (n - 1))), last t_min; one big first step, then ever
        denser towards low noise), or "leading" (DDIM: T-1, T-1-T/n, ...)."""
        t_max = self.T - 1 if t_max is None else int(t_max)
        if not 0 <= t_min <= t_max < self.T:
            raise ValueError(f"need 0 <= t_min <= t_max < {self.T}, got {t_min}, {t_max}.")
        if n < 1 or n > t_max - t_min + 1:
            raise ValueError(
                f"cannot place {n} distinct steps between t={t_max} and t={t_min}.")
        if kind == "uniform":
            grid = torch.linspace(t_max, t_min, n, dtype=torch.float64).round().long().tolist()
        elif kind == "quadratic":
            grid = [min(t_max, int((k * math.sqrt(t_max + 1) / n) ** 2)) for k in range(n, 0, -1)]
            grid[0] = t_max
        elif kind == "sqrt" and n == 1:
            grid = [t_max]
        elif kind == "sqrt":
            span = t_max - t_min + 1
            grid = [t_max - int(span * math.sqrt(i / (n - 1))) for i in range(n - 1)] + [t_min]
        elif kind == "leading":
            step = (t_max - t_min + 1) / n
            grid = [int(round(t_max - k * step)) for k in range(n)]
        else:
            raise ValueError(f"unknown grid kind {kind!r}; use 'uniform', 'quadratic', 'sqrt' or 'leading'.")
        if len(set(grid)) != len(grid):
            raise ValueError(f"{kind} grid with {n} steps has repeated times: {grid}")
        return grid


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn from ``generator`` (on x's device)."""
    check_generator(generator)
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def randn(shape, generator=None, device=None, dtype=None) -> torch.Tensor:
    """Standard normal noise of ``shape`` on ``device`` in ``dtype`` (None: the default dtype);
    the generator must be a torch.Generator living there too."""
    check_generator(generator)
    if generator is not None and device is not None and generator.device.type != torch.device(device).type:
        raise ValueError(
            f"the generator lives on {generator.device} but the samples are drawn on {device}: "
            f"make it with torch.Generator(device={str(device)!r}).")
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
