"""Small networks for learned priors.  ``MLP``: a time-conditioned multilayer perceptron for
vectors (the toy problems), predicting the noise eps from (x_t, t) as in DDPM (Ho et al. 2020)."""
from __future__ import annotations

import math

import torch
from torch import nn


def time_embedding(t: torch.Tensor, dim: int, T: int = 1000) -> torch.Tensor:
    """Sinusoidal embedding of integer times (Vaswani et al. 2017; DDPM), shape (n, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None] * (1000.0 / T)
    return torch.cat([args.sin(), args.cos()], dim=1)


class MLP(nn.Module):
    """eps_theta(x_t, t) for x in R^d: [x, emb(t)] -> hidden layers with SiLU -> d."""

    def __init__(self, dim: int, hidden: int = 128, layers: int = 3, t_dim: int = 32,
                 T: int = 1000):
        super().__init__()
        self.dim, self.t_dim, self.T = dim, t_dim, T
        blocks, width = [], dim + t_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.body = nn.Sequential(*blocks, nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"MLP expects inputs of shape (n, {self.dim}), got {tuple(x.shape)}.")
        return self.body(torch.cat([x, time_embedding(t, self.t_dim, self.T)], dim=1))
