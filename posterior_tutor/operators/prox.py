"""Proximal steps of the data term with one measurement per sample (a batch of y), for training
trained samplers on batches of (x0, y) pairs.  ``Operator.prox_batched`` dispatches here.

    prox_i = argmin_x |A x - y_i|^2 / (2 sigma^2) + |x - z_i|^2 / (2 rho^2),   i = 1..n
           = (A^T A / sigma^2 + I / rho^2)^{-1} (A^T y_i / sigma^2 + z_i / rho^2)

* Closed-form operators whose ``prox`` is elementwise or per-frequency (denoising, inpainting,
  blur, super-resolution) broadcast over y already: ``prox_broadcasts_y = True``, no code here.
* A dense matrix: one float64 solve with the n right-hand sides as columns (``matrix``).
* Any other operator: one ``prox`` per sample (``per_sample``).
Both keep the gradient in z and in a tensor rho (UD2M's lambda is learned through it).
"""
from __future__ import annotations

import torch

__all__ = ["matrix", "per_sample"]


def matrix(A: torch.Tensor, z, y, rho, sigma) -> torch.Tensor:
    """The prox of y = A x (A: (m, d)) for z (n, d), y (n, m) and one rho (a number or a 0-d
    tensor), solved in float64 and returned in z's dtype."""
    A = A.to(z.device)
    s2 = float(sigma) ** 2
    r2 = torch.as_tensor(rho, dtype=torch.float64, device=z.device) ** 2
    lhs = A.T @ A / s2 + torch.eye(A.shape[1], dtype=torch.float64, device=z.device) / r2
    rhs = y.double() @ A / s2 + z.double() / r2
    return torch.linalg.solve(lhs, rhs.T).T.to(z.dtype)


def per_sample(op, z, y, rho, sigma) -> torch.Tensor:
    """``op.prox`` row by row: z (n, ...), y (n, *out_shape), rho a number or one per sample."""
    rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).expand(z.shape[0])
    return torch.cat([op.prox(z[i:i + 1], y[i], rho[i:i + 1], sigma) for i in range(z.shape[0])])
