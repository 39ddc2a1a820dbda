"""Small networks for learned priors.  ``MLP``: a time-conditioned multilayer perceptron for
vectors (the toy problems), predicting the noise eps from (x_t, t) as in DDPM (Ho et al. 2020);
``UNet`` for images; ``DigitClassifier``: the small CNN whose features define the Frechet distance."""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F


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


# -- a small time-conditioned UNet for images ------------------------------------------------------
def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus a per-channel shift from the time embedding, twice; residual."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.time = nn.Linear(t_dim, c_out)
        self.conv2 = nn.Sequential(_norm(c_out), nn.SiLU(), nn.Dropout(dropout),
                                   nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(x) + self.time(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(h)


class SelfAttention(nn.Module):
    """Single-head self-attention over pixels (used at the coarsest resolution only)."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm, self.qkv, self.out = _norm(ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(-1, -2).unbind(1)
        a = nn.functional.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """eps_theta(x_t, t) for images (n, C, H, W): a DDPM-style UNet (Ho et al. 2020), kept small.

    ``channels=(32, 64, 64)``: width at each resolution (H, H/2, H/4); one residual block per level
    on the way down and one on the way up (after concatenating that level's skip); self-attention in
    the middle (coarsest level).  H and W must be divisible by 2**(len(channels) - 1)."""

    def __init__(self, in_ch: int = 1, channels=(32, 64, 64), attention: bool = True,
                 dropout: float = 0.0, T: int = 1000):
        super().__init__()
        self.config = dict(in_ch=in_ch, channels=tuple(channels), attention=attention,
                           dropout=dropout, T=T)
        self.in_ch, self.T, c0 = in_ch, T, channels[0]
        t_dim = 4 * c0
        self.t_dim = c0
        self.time_mlp = nn.Sequential(nn.Linear(c0, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inp = nn.Conv2d(in_ch, c0, 3, padding=1)
        self.down, self.pool = nn.ModuleList(), nn.ModuleList()
        prev = c0
        for i, ch in enumerate(channels):
            self.down.append(ResBlock(prev, ch, t_dim, dropout))
            self.pool.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1)
                             if i < len(channels) - 1 else nn.Identity())
            prev = ch
        self.mid1 = ResBlock(prev, prev, t_dim, dropout)
        self.attn = SelfAttention(prev) if attention else nn.Identity()
        self.mid2 = ResBlock(prev, prev, t_dim, dropout)
        self.up, self.unpool = nn.ModuleList(), nn.ModuleList()
        for i, ch in reversed(list(enumerate(channels))):
            self.up.append(ResBlock(prev + ch, ch, t_dim, dropout))
            self.unpool.append(nn.Upsample(scale_factor=2, mode="nearest") if i > 0 else nn.Identity())
            prev = ch
        self.out = nn.Sequential(_norm(prev), nn.SiLU(), nn.Conv2d(prev, in_ch, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        self.factor = 2 ** (len(channels) - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self._check(x)
        emb = self.time_mlp(time_embedding(t, self.t_dim, self.T))
        h, skips = self.inp(x), []
        for block, pool in zip(self.down, self.pool):
            h = block(h, emb)
            skips.append(h)
            h = pool(h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for block, unpool in zip(self.up, self.unpool):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            h = unpool(h)
        return self.out(h)

    def _check(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"UNet expects images (n, {self.in_ch}, H, W), got {tuple(x.shape)}.")
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"UNet image size must be divisible by {self.factor}, got "
                             f"{tuple(x.shape[-2:])}.")


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@contextmanager
def seeded_init(generator):
    """Module initialisations inside the block are drawn from ``generator`` (reproducible) and
    leave the global RNG as it was; ``None``: the global RNG, as usual."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class DigitClassifier(nn.Module):
    """A small CNN for (n, 1, in_size, in_size) images in [-1, 1]: three 3x3 conv blocks (ReLU,
    2x2 max-pool while the map is larger than 4x4), a ``feature_dim`` embedding and 10 logits.

    ``features(x)`` is the embedding (before its ReLU) used by the Frechet distance."""

    def __init__(self, in_size: int, channels=(16, 32, 64), feature_dim: int = 64,
                 n_classes: int = 10):
        """Build the layers for ``in_size`` x ``in_size`` inputs (the pools follow the size)."""
        super().__init__()
        self.in_size, self.channels, self.feature_dim = int(in_size), tuple(channels), feature_dim
        self.n_classes = n_classes
        blocks, size, c_in = [], self.in_size, 1
        for c_out in self.channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
            if size > 4 and size % 2 == 0:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        self.embed = nn.Linear(c_in * size * size, feature_dim)
        self.head = nn.Linear(feature_dim, n_classes)

    def config(self) -> dict:
        """The constructor's arguments, saved with the weights so the file rebuilds the net."""
        return {"in_size": self.in_size, "channels": list(self.channels),
                "feature_dim": self.feature_dim, "n_classes": self.n_classes}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, feature_dim) embedding, before the ReLU: the feature map phi of the FD."""
        return self.embed(self.conv(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, n_classes) logits."""
        return self.head(F.relu(self.features(x)))
