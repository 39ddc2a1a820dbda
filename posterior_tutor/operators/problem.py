"""The inverse problem y = A(x) + sigma n, n ~ N(0, I), and its data term.

    g(x) = |A(x) - y|^2 / (2 sigma^2),     grad g(x) = J_A(x)^T (A(x) - y) / sigma^2,
    prox(z, y, rho) = argmin_x g(x) + |x - z|^2 / (2 rho^2)   (solved by the operator).

``InverseProblem`` binds an ``Operator`` to one noise level sigma: a single finite number > 0, the
same for every entry of y (white Gaussian noise).  sigma is checked where it is set, at
construction and on any later assignment ``problem.sigma = ...``: every sampler divides by sigma^2
(DAPS's and PnP-ULA's step sizes, DiffPIR's and LATINO's proxes), so a zero, negative or non-finite
value is refused there rather than surfacing as Inf or NaN samples.  ``measure`` draws y for one
signal; ``check_y`` validates a y and says what signal shape it measures.
"""
from __future__ import annotations

import math
import numbers

import torch

from .base import Operator, _check_finite
from ..checks.values import check_float, check_generator
from ..schedules import randn


class InverseProblem:
    """y = A(x) + sigma * n with n ~ N(0, I).  g(x) = |A(x) - y|^2 / (2 sigma^2)."""

    def __init__(self, operator: Operator, sigma: float):
        if not isinstance(operator, Operator):
            raise TypeError(f"operator must be a posterior_tutor.operators.Operator, "
                            f"got {type(operator).__name__}.")
        self.operator = operator
        self.sigma = sigma  # checked by the property below

    @property
    def sigma(self) -> float:
        """The noise level: one finite float > 0, checked on every assignment."""
        return self._sigma

    @sigma.setter
    def sigma(self, value) -> None:
        self._sigma = noise_level(value)

    def __repr__(self):
        return f"InverseProblem({self.operator!r}, sigma={self.sigma:g})"

    def measure(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """y for one signal x (no sample dimension)."""
        check_float(x, "x")
        check_generator(generator)
        if self.operator.in_shape is not None and tuple(x.shape) != tuple(self.operator.in_shape):
            raise ValueError(f"measure() takes one signal of shape {tuple(self.operator.in_shape)}"
                             f" (no sample dimension), got {tuple(x.shape)}.")
        self.operator.output_shape_for(tuple(x.shape))  # operators without a fixed size check here
        _check_finite(x, "x")
        clean = self.operator(x[None])[0]
        return clean + self.sigma * randn(clean.shape, generator=generator,
                                          device=x.device, dtype=x.dtype)

    def check_y(self, y: torch.Tensor, device=None) -> tuple:
        """Validate y; return the shape of one signal x that it measures."""
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}.")
        _check_finite(y, "y")
        op = self.operator
        if op.out_shape is not None and tuple(y.shape) != tuple(op.out_shape):
            extra = (" (y carries no sample dimension)"
                     if tuple(y.shape[1:]) == tuple(op.out_shape) else "")
            raise ValueError(f"y has shape {tuple(y.shape)} but {op!r} produces measurements of "
                             f"shape {tuple(op.out_shape)}{extra}.")
        if device is not None and torch.device(device).type != y.device.type:
            raise ValueError(f"y is on {y.device} but the sampler runs on {device}: "
                             f"move it with y.to({str(device)!r}).")
        return op.input_shape_for(tuple(y.shape))

    def residual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.operator(x) - y

    def data_fit(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """g(x) per sample, shape (n,)."""
        return 0.5 * self.residual(x, y).flatten(1).pow(2).sum(1) / self.sigma ** 2

    def log_likelihood(self, x, y):
        return -self.data_fit(x, y)

    def grad_data_fit(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """grad g(x) = J_A(x)^T (A(x) - y) / sigma^2."""
        return self.operator.vjp(x, self.residual(x, y)) / self.sigma ** 2

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho) -> torch.Tensor:
        """argmin_x |A x - y|^2 / (2 sigma^2) + |x - z|^2 / (2 rho^2), batched over z."""
        return self.operator.prox(z, y, rho, self.sigma)

    def prox_batched(self, z: torch.Tensor, y: torch.Tensor, rho) -> torch.Tensor:
        """The same with one measurement per sample, y of shape (n, *y_shape)."""
        return self.operator.prox_batched(z, y, rho, self.sigma)


def noise_level(value) -> float:
    """``value`` as the noise level sigma: one finite number > 0 (a Python or NumPy number, or a
    tensor / array holding exactly one element); anything else raises naming sigma and the value."""
    shape = getattr(value, "shape", None)
    if shape is not None and math.prod(shape) != 1:
        raise ValueError(f"sigma must be one number, the same noise level for every entry of y; got "
                         f"a {type(value).__name__} of shape {tuple(shape)}.  A per-measurement noise "
                         "level is not supported: pass a float, e.g. sigma=0.05 (or whiten y and A "
                         "by the noise level first, then pass sigma=1.0).")
    if isinstance(value, bool) or not (shape is not None or isinstance(value, numbers.Real)):
        raise TypeError(f"sigma (the noise level) must be a number > 0, e.g. sigma=0.05; got "
                        f"{type(value).__name__} {value!r}.")
    try:
        sigma = float(value.reshape(-1)[0] if shape is not None else value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"sigma (the noise level) must be a real number > 0, got {value!r} "
                        f"({err}).") from None
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"the noise level sigma must be a finite number > 0, got {sigma} (every "
                         "sampler divides by sigma^2): pass the standard deviation of the noise "
                         "in y, e.g. sigma=0.05.")
    return sigma
