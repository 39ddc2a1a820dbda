"""The layers of APS's image flow: invertible maps h -> h' with their log|det|, conditioned on
features of y (Dinh et al. 2017, RealNVP; the APS paper's coupling family, arXiv 2407.17907).

Each layer has ``forward(h, feats) -> (h', log|det dh'/dh|)`` and ``inverse(h', feats) ->
(h, log|det dh'/dh|)`` (the same log-determinant, so a flow subtracts it when encoding); ``level``
says which features it reads ("full", "half" = pixel-unshuffled, "out", None = none).

    coupling     x_b' = x_b exp(s) + t,  (s, t) = NN([x_a, h(y)]),  log|det| = sum s
    soft clamp   s <- 2 tanh(s / 2)       (the paper's tanh log-scale)
    ActNorm      h' = h exp(s_c) + b_c per channel, log|det| = H W sum_c s_c
    affine out   x = u exp(s(y) + log init_scale) + m(y) + y_img

Every network's last layer starts at zero, so every coupling starts as the identity and the
untrained flow samples y_img + init_scale z.

Departures:
* ActNorm without the data-dependent initialisation of Glow: training sees no clean x.
* The conditional affine output layer with the y_img skip is ours: training starts near the data
  instead of at N(0, I), which a CPU budget needs.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ActNorm", "Permute", "CheckerboardCoupling", "ChannelCoupling", "Squeeze",
           "ConditionalAffine"]


def _soft_clamp(s, bound: float = 2.0):
    return bound * torch.tanh(s / bound)


def _coupling_net(c_in: int, c_out: int, hidden: int) -> nn.Sequential:
    net = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.SiLU(),
                        nn.Conv2d(hidden, hidden, 1), nn.SiLU(),
                        nn.Conv2d(hidden, c_out, 3, padding=1))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class ActNorm(nn.Module):
    """h exp(s) + b per channel (identity at start; no data-dependent init: we have no x)."""
    level = None

    def __init__(self, channels: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def _ld(self, h):
        return (self.log_scale.sum() * h.shape[2] * h.shape[3]).expand(h.shape[0])

    def forward(self, h, feats):
        return h * self.log_scale.exp() + self.bias, self._ld(h)

    def inverse(self, h, feats):
        return (h - self.bias) * torch.exp(-self.log_scale), self._ld(h)


class Permute(nn.Module):
    """A fixed random channel permutation (log-det 0), drawn from ``seed``."""
    level = None

    def __init__(self, channels: int, seed: int):
        super().__init__()
        perm = torch.randperm(channels, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, h, feats):
        return h[:, self.perm], h.new_zeros(h.shape[0])

    def inverse(self, h, feats):
        return h[:, self.inv], h.new_zeros(h.shape[0])


class CheckerboardCoupling(nn.Module):
    """x' = x exp(s) + t on the pixels where (i + j + parity) is odd, (s, t) from the others."""
    level = "full"

    def __init__(self, channels: int, feat: int, hidden: int, parity: int):
        super().__init__()
        self.parity = parity
        self.net = _coupling_net(channels + feat, 2 * channels, hidden)

    def _st(self, h, feats):
        H, W = h.shape[-2:]
        ij = torch.arange(H, device=h.device)[:, None] + torch.arange(W, device=h.device)
        m = ((ij + self.parity) % 2 == 0).to(h.dtype)            # 1 = kept (conditioning) pixels
        s, t = self.net(torch.cat([h * m, feats], 1)).chunk(2, 1)
        return _soft_clamp(s) * (1 - m), t * (1 - m)

    def forward(self, h, feats):
        s, t = self._st(h, feats)
        return h * s.exp() + t, s.flatten(1).sum(1)

    def inverse(self, h, feats):
        s, t = self._st(h, feats)          # the kept pixels are the same before and after
        return (h - t) * torch.exp(-s), s.flatten(1).sum(1)


class ChannelCoupling(nn.Module):
    """Split channels (a, b) (swapped when ``flip``); b' = b exp(s) + t with (s, t) from a."""
    level = "half"

    def __init__(self, channels: int, feat: int, hidden: int, flip: bool):
        super().__init__()
        self.flip, self.half = flip, channels // 2
        self.net = _coupling_net(self.half + feat, 2 * (channels - self.half), hidden)

    def _split(self, h):
        a, b = h[:, :self.half], h[:, self.half:]
        return (b, a) if self.flip else (a, b)

    def _join(self, a, b):
        return torch.cat([b, a] if self.flip else [a, b], 1)

    def _couple(self, h, feats, sign):
        a, b = self._split(h)
        s, t = self.net(torch.cat([a, feats], 1)).chunk(2, 1)
        s = _soft_clamp(s)
        b = b * s.exp() + t if sign > 0 else (b - t) * torch.exp(-s)
        return self._join(a, b), s.flatten(1).sum(1)

    def forward(self, h, feats):
        return self._couple(h, feats, +1)

    def inverse(self, h, feats):
        return self._couple(h, feats, -1)


class Squeeze(nn.Module):
    """(C, H, W) -> (4C, H/2, W/2) (pixel unshuffle); ``undo=True``: the reverse."""
    level = None

    def __init__(self, undo: bool = False):
        super().__init__()
        self.undo = undo

    def forward(self, h, feats):
        out = F.pixel_shuffle(h, 2) if self.undo else F.pixel_unshuffle(h, 2)
        return out, h.new_zeros(h.shape[0])

    def inverse(self, h, feats):
        out = F.pixel_unshuffle(h, 2) if self.undo else F.pixel_shuffle(h, 2)
        return out, h.new_zeros(h.shape[0])


class ConditionalAffine(nn.Module):
    """x = u exp(s(y) + log init_scale) + m(y) + y_img per pixel: (s, m) from the conditioning
    features (zero at start), so the flow starts at y brought to image shape plus small noise."""
    level = "out"

    def __init__(self, channels: int, feat: int, hidden: int, init_scale: float = 0.1):
        super().__init__()
        self.channels, self.log_init = channels, math.log(init_scale)
        self.net = _coupling_net(feat, 2 * channels, hidden)

    def _sm(self, feats):
        f, y_img = feats
        s, m = self.net(f).chunk(2, 1)
        skip = y_img if y_img.shape[1] == self.channels else 0.0
        return _soft_clamp(s) + self.log_init, m + skip

    def forward(self, h, feats):
        s, m = self._sm(feats)
        return h * s.exp() + m, s.flatten(1).sum(1).expand(h.shape[0])

    def inverse(self, h, feats):
        s, m = self._sm(feats)
        return (h - m) * torch.exp(-s), s.flatten(1).sum(1).expand(h.shape[0])

