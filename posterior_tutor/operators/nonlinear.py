"""A nonlinear operator: ``Saturation``, y = tanh(gain * B x) / gain with B linear.

It models a sensor that saturates (a soft clip) after a linear measurement.  Its Jacobian is
J(x) = diag(1 - tanh(gain B x)^2) B, written out here (``vjp``, ``jvp``, ``_linearise``) instead of
left to autograd, so the Gauss-Newton prox of the base class (``base.py``) computes the slope once per step and
costs one B and one B^T per inner CG iteration.  |J| <= |B|, so ``lipschitz_squared`` is |B|^2.  For small gain it tends
to B itself.
"""
from __future__ import annotations

import torch

from .base import Operator


class Saturation(Operator):
    """A smooth nonlinear operator: y = tanh(gain * B x) / gain, with B a linear operator.

    It models a sensor that saturates (a soft clip) after a linear measurement B, e.g. a blurred
    image recorded by a detector that compresses bright values.  For small gain it tends to B."""

    linear = False

    def __init__(self, inner: Operator, gain: float = 1.0):
        if gain <= 0:
            raise ValueError(f"gain must be > 0, got {gain}.")
        if not inner.linear:
            raise ValueError("Saturation wraps a linear operator.")
        self.inner, self.gain = inner, float(gain)
        self.in_shape, self.out_shape = inner.in_shape, inner.out_shape

    def __repr__(self):
        return f"Saturation({self.inner!r}, gain={self.gain:g})"

    def input_shape_for(self, y_shape):
        return self.inner.input_shape_for(y_shape)

    def output_shape_for(self, x_shape):
        return self.inner.output_shape_for(x_shape)

    def forward(self, x):
        return torch.tanh(self.gain * self.inner(x)) / self.gain

    def _slope(self, x):
        """d tanh(gain u)/gain / du = 1 - tanh(gain u)^2 at u = B x."""
        return 1 - torch.tanh(self.gain * self.inner(x)) ** 2

    def vjp(self, x, v):
        return self.inner.adjoint(v * self._slope(x))

    def jvp(self, x, v):
        return self._slope(x) * self.inner(v)

    def _linearise(self, x):
        d = self._slope(x)
        return (lambda v: d * self.inner(v)), (lambda w: self.inner.adjoint(d * w))

    def lipschitz_squared(self, shape=None):
        return self.inner.norm_squared(shape)
