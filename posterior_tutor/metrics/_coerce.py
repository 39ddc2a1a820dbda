"""Input handling shared by the metrics: numpy or torch in, checked floating tensors out.

Images are ``(n, C, H, W)`` or one image ``(C, H, W)``; point clouds ``(n, d)`` (a 1-D input
``(n,)`` is read as ``(n, 1)``, images are flattened to ``(n, C*H*W)``).  Every helper raises
``ValueError`` naming the argument and its shape for NaN / inf values, empty sets and shapes that
do not match; ``_check_data_range`` refuses a ``data_range`` that is not a positive finite number
or that the images' values clearly exceed (0..255 images with the default ``data_range = 2``).
"""
from __future__ import annotations

import torch

from ..checks.options import Real, check_option


def _tensor(x, name: str) -> torch.Tensor:
    """As a floating tensor; rejects NaN and inf."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.numel() and not torch.isfinite(x).all():
        bad = "NaN" if torch.isnan(x).any() else "inf"
        raise ValueError(f"{name} contains {bad} values (shape {tuple(x.shape)}).")
    return x


def _image_pair(a, b, fn: str):
    """Batch two image inputs: returns (a4, b4, unbatched) with a4, b4 of shape (n, C, H, W)."""
    a, b = _tensor(a, "a"), _tensor(b, "b")
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (3, 4):
            raise ValueError(f"{fn}: {name} must be an image (C, H, W) or a batch (n, C, H, W); "
                             f"got shapes a {tuple(a.shape)} and b {tuple(b.shape)}.")
    unbatched = a.ndim == 3 and b.ndim == 3
    a4 = a[None] if a.ndim == 3 else a
    b4 = b[None] if b.ndim == 3 else b
    na, nb = a4.shape[0], b4.shape[0]
    if a4.shape[1:] != b4.shape[1:] or (na != nb and 1 not in (na, nb)):
        raise ValueError(f"{fn}: shapes do not match: a {tuple(a.shape)} vs b {tuple(b.shape)} "
                         "(need equal (C, H, W) and equal batch sizes, or one single image).")
    if 0 in (na, nb):
        raise ValueError(f"{fn}: empty batch: a {tuple(a.shape)}, b {tuple(b.shape)}.")
    n = max(na, nb)
    dtype = torch.promote_types(a4.dtype, b4.dtype)
    a4 = a4.to(dtype).expand(n, *a4.shape[1:])
    b4 = b4.to(device=a4.device, dtype=dtype).expand(n, *b4.shape[1:])
    return a4, b4, unbatched


def _cloud(x, name: str) -> torch.Tensor:
    """(n, d) point cloud: (n,) becomes (n, 1); (n, ...) is flattened to (n, prod(...))."""
    x = _tensor(x, name)
    if x.ndim == 0:
        raise ValueError(f"{name} must be a set of points (n, d), got a scalar.")
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}).")
    return x


def _cloud_pair(a, b, fn: str):
    """Two clouds of the same dimension d, in a common float dtype of at least float64."""
    a2, b2 = _cloud(a, "a"), _cloud(b, "b")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"{fn}: point dimensions differ: a {tuple(_shape(a))} gives d = "
                         f"{a2.shape[1]}, b {tuple(_shape(b))} gives d = {b2.shape[1]}.")
    dtype = torch.promote_types(torch.promote_types(a2.dtype, b2.dtype), torch.float64)
    return a2.to(dtype), b2.to(device=a2.device, dtype=dtype)


def _check_data_range(a4, b4, data_range, fn: str) -> None:
    """data_range a finite number > 0, and the images' values not clearly outside it: their
    spread (max - min over both inputs) may exceed data_range (samples overshoot, noisy images
    spread several times wider) but not ten times over, as 0..255 images with data_range=2 do."""
    check_option(fn, "data_range", data_range, Real(0, 1e6, low_open=True, hint="the width of "
                 "the value range: 2 for images in [-1, 1], 1 for [0, 1], 255 for 0..255"))
    lo = min(a4.min().item(), b4.min().item())
    hi = max(a4.max().item(), b4.max().item())
    if hi - lo > 10 * data_range:
        raise ValueError(f"{fn}: the images' values span {lo:g}..{hi:g} (a spread of {hi - lo:g}) "
                         f"but data_range is {data_range:g}: pass the width of their value range "
                         "as data_range (255 for 0..255 images) or scale them to [-1, 1].")


def _shape(x):
    """The shape of a tensor, array or nested list, for error messages."""
    return tuple(x.shape) if hasattr(x, "shape") else tuple(torch.as_tensor(x).shape)


def _out_dtype(a, b):
    """The dtype a distance is returned in: the inputs' floating dtypes promoted (default dtype
    for integer or non-tensor inputs), whatever precision the computation used."""
    da = a.dtype if isinstance(a, torch.Tensor) and a.is_floating_point() else torch.get_default_dtype()
    db = b.dtype if isinstance(b, torch.Tensor) and b.is_floating_point() else torch.get_default_dtype()
    return torch.promote_types(da, db)


RANGE_TOLERANCE = 0.5  # images may stray this far outside [-1, 1] (unclipped samples); more is an error


def check_images(x, name: str, size: int | None = None) -> None:
    """(n, 1, H, W) finite images with values in [-1, 1] (within RANGE_TOLERANCE), H = W = size;
    a ValueError naming ``name``, what it got and what is accepted otherwise."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor (n, 1, H, W) in [-1, 1], got "
                         f"{type(x).__name__} {getattr(x, 'dtype', '')}.")
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch of grey images (n, 1, H, W), got shape "
                         f"{tuple(x.shape)}.")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name} are {x.shape[-2]}x{x.shape[-1]} but the classifier takes "
                         f"{size}x{size} images; use the classifier trained at that size "
                         "(pretrained('digits', 'classifier') is 16x16, 'mnist' is 32x32).")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or inf values.")
    lo, hi = x.min().item(), x.max().item()
    if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise ValueError(f"{name} must be scaled to [-1, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                         "for [0, 1] images use 2 x - 1, for uint8 images x / 127.5 - 1.")
