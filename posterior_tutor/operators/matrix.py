"""A dense matrix y = A x on vectors: the operator of the exact toy world.

With A of shape (m, d), ``forward`` is x @ A^T on a batch x of shape (n, d).  The prox of the data
term is a direct float64 solve of the d x d normal equation

    (A^T A / sigma^2 + I / rho^2) x = A^T y / sigma^2 + z / rho^2,

one solve for a scalar rho (the n right-hand sides as columns), one per sample when rho is a
tensor of shape (n,).  With Gaussian-mixture priors this operator is where the posterior is known
exactly (``toy.GaussianMixture.posterior``), so every sampler is measured against it.
"""
from __future__ import annotations

import torch

from . import prox as _batched
from .base import Operator, _per_sample


class Matrix(Operator):
    """y = A x for vectors: A of shape (m, d) acts on x of shape (n, d)."""

    def __init__(self, A):
        A = torch.as_tensor(A)
        if A.ndim != 2:
            raise ValueError(f"Matrix needs a 2D matrix (m, d), got shape {tuple(A.shape)}.")
        self.A = A.to(torch.float64)
        self.in_shape, self.out_shape = (A.shape[1],), (A.shape[0],)

    def __repr__(self):
        return f"Matrix({self.A.shape[0]}x{self.A.shape[1]})"

    def forward(self, x):
        return x @ self.A.to(x).T

    def adjoint(self, y):
        return y @ self.A.to(y)

    def matrix(self):
        return self.A.clone()

    def prox_batched(self, z, y, rho, sigma):
        return _batched.matrix(self.A, z, y, rho, sigma)

    def prox(self, z, y, rho, sigma):
        A = self.A.to(z.device)
        s2 = float(sigma) ** 2
        _per_sample(rho, z)  # validates the shape of rho
        r2 = torch.as_tensor(rho, dtype=torch.float64, device=z.device).reshape(-1) ** 2
        AtA = A.T @ A / s2
        eye = torch.eye(A.shape[1], dtype=torch.float64, device=z.device)
        rhs = (A.T @ y.double()) / s2 + z.double() / r2[:, None]
        if r2.numel() == 1:
            return torch.linalg.solve(AtA + eye / r2, rhs.T).T.to(z.dtype)
        mats = AtA[None] + eye[None] / r2[:, None, None]
        return torch.linalg.solve(mats, rhs[..., None])[..., 0].to(z.dtype)
