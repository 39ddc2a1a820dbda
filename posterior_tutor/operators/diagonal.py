"""Diagonal operators: A is a 0/1 (or identity) mask, so every pixel is its own problem.

* ``Denoising``: A = I, y = x + sigma n.
* ``Inpainting``: A = diag(M) with a 0/1 mask M of the signal's shape; missing pixels are 0 in y.
* ``BoxInpainting``: one missing rectangle (by default the central half of the image).

Because A^T A = diag(M) is diagonal, the prox of the data term is elementwise and exact:

    prox(z, y, rho, sigma) = (M y / sigma^2 + z / rho^2) / (M / sigma^2 + 1 / rho^2),

which also broadcasts over a batch of y (``prox_broadcasts_y = True``).  |A|^2 = 1.
"""
from __future__ import annotations

import torch

from .base import Operator, _per_sample
from ..checks.values import check_generator


class Denoising(Operator):
    """y = x + noise (A = I) for signals of any shape."""
    prox_broadcasts_y = True

    def __init__(self, shape=None):
        self.in_shape = self.out_shape = tuple(shape) if shape is not None else None

    def __repr__(self):
        return "Denoising()"

    def forward(self, x):
        return x.clone()

    def adjoint(self, y):
        return y.clone()

    def norm_squared(self, *args, **kwargs):
        return 1.0

    def prox(self, z, y, rho, sigma):
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        return (y / s2 + z / r2) / (1 / s2 + 1 / r2)


class Inpainting(Operator):
    """y = M * x with a 0/1 mask M of the signal's shape (missing entries are 0 in y)."""
    prox_broadcasts_y = True

    def __init__(self, mask):
        mask = torch.as_tensor(mask)
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("an inpainting mask must contain only 0 (missing) and 1 (observed).")
        self.mask = mask.to(torch.float32)
        self.in_shape = self.out_shape = tuple(mask.shape)

    def __repr__(self):
        return f"Inpainting(observed={self.mask.mean().item():.0%})"

    @classmethod
    def random(cls, shape, observed: float = 0.5, generator=None, device=None) -> "Inpainting":
        """Each pixel observed with probability ``observed`` (same mask for all channels), drawn
        from ``generator`` on ``device`` (default: the generator's device, else the CPU)."""
        check_generator(generator)
        shape = tuple(shape)
        pix = shape[-2:] if len(shape) == 3 else shape
        if device is None:
            device = generator.device if generator is not None else "cpu"
        m = (torch.rand(pix, generator=generator, device=device) < observed).float()
        return cls(m.expand(shape).clone())

    def forward(self, x):
        return self.mask.to(x) * x

    adjoint = forward

    def norm_squared(self, *args, **kwargs):
        return 1.0

    def prox(self, z, y, rho, sigma):
        m = self.mask.to(z)
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        return (m * y / s2 + z / r2) / (m / s2 + 1 / r2)


class BoxInpainting(Inpainting):
    """Inpainting with one missing rectangle (top, left, height, width); by default the central
    half of the image is hidden."""

    def __init__(self, shape, box=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"BoxInpainting needs an image shape (..., H, W), got {shape}.")
        H, W = shape[-2:]
        box = tuple(box) if box is not None else (H // 4, W // 4, H // 2, W // 2)
        if len(box) != 4:
            raise ValueError(f"box must be (top, left, height, width), got {box}.")
        top, left, h, w = box
        if not (0 <= top and 0 <= left and h > 0 and w > 0 and top + h <= H and left + w <= W):
            raise ValueError(f"box (top, left, height, width) = {box} does not fit an image of "
                             f"size {H}x{W}: it needs height, width > 0, top + height <= {H} "
                             f"and left + width <= {W}.")
        mask = torch.ones(shape)
        mask[..., top:top + h, left:left + w] = 0
        super().__init__(mask)
        self.box = (top, left, h, w)

    def __repr__(self):
        return f"BoxInpainting(box={self.box})"
