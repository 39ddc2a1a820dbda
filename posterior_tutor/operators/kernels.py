"""Blur kernels for ``Blur`` and ``SuperResolution``: 2D float64 tensors summing to 1.

* ``gaussian_kernel(size, std)``: k[i, j] proportional to exp(-((i - c)^2 + (j - c)^2) / (2 std^2)),
  c = (size - 1) / 2.
* ``uniform_kernel(size)``: the size x size box, every entry 1 / size^2 (with decimation by size it
  makes super-resolution exactly average pooling).
* ``motion_kernel(size, angle, length)``: an anti-aliased line segment through the centre, as
  MATLAB's fspecial('motion').

Kernels are *centred* by the operators that use them: pixel (kh // 2, kw // 2) sits on the output
pixel, so a delta kernel is the identity and a symmetric kernel gives a self-adjoint blur.
"""
from __future__ import annotations

import math

import torch


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def gaussian_kernel(size: int, std: float) -> torch.Tensor:
    """size x size kernel k[i, j] proportional to exp(-((i - c)^2 + (j - c)^2) / (2 std^2)),
    c = (size - 1) / 2, normalised to sum 1."""
    size = _positive_int(size, "size")
    std = float(std)
    if not (std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be a finite number > 0, got {std}.")
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * std ** 2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def uniform_kernel(size: int) -> torch.Tensor:
    """size x size box kernel, every entry 1 / size^2."""
    size = _positive_int(size, "size")
    return torch.full((size, size), 1.0 / size ** 2, dtype=torch.float64)


def motion_kernel(size: int, angle_degrees: float = 0.0, length: float | None = None) -> torch.Tensor:
    """Linear motion blur: a segment of ``length`` pixels (default ``size``; 1 <= length <= size)
    through the kernel's centre c = (size - 1) / 2 at ``angle_degrees`` counter-clockwise from the
    horizontal (rows point down).  Anti-aliased as in MATLAB's fspecial('motion'): pixel p gets
    weight max(0, 1 - dist(p, segment)), the segment running between the centres of its end pixels
    (half-length (length - 1) / 2); then normalised to sum 1.  A horizontal or vertical segment of
    integer length is a uniform row or column of ``length`` pixels; length 1 is a delta."""
    size = _positive_int(size, "size")
    length = float(size if length is None else length)
    if not (1 <= length <= size):
        raise ValueError(f"length must be in [1, size] = [1, {size}], got {length}.")
    theta = math.radians(float(angle_degrees))
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    dx, dy = r[None, :], -r[:, None]  # column offset to the right, row offset upwards
    along = dx * math.cos(theta) + dy * math.sin(theta)
    across = -dx * math.sin(theta) + dy * math.cos(theta)
    beyond_end = (along.abs() - (length - 1) / 2).clamp_min(0)
    k = (1 - torch.sqrt(beyond_end ** 2 + across ** 2)).clamp_min(0)
    return k / k.sum()
