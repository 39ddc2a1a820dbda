"""UD2M's conditional discriminator and its loss (the adversarial half of the distillation).

Disc(x, y) is the logit of "a real pair (x0, y)": an MLP on concat(x, y) for vectors, a small conv
net on [x, y as an image] for images (stride-2 convs with LeakyReLU, global average, Linear; y
upsampled when smaller, A^T y when it is not an image).  With BCE written through softplus,

    L_D = 1/2 BCE(Disc(x0, y), 1) + 1/2 BCE(Disc(x^(K), y), 0)
          + gp_weight / 2 E|grad_x Disc(x0, y)|^2

(R1: the gradient penalty zero-centred at the real samples, Mescheder et al. 2018); the sampler's
side, adv_weight BCE(Disc(x^(K), y), 1), is in ``losses.py``.  The public code's penalty is not R1:
gp_weight E|grad Disc(x~, y)|^2, zero-centred at random interpolates x~ = a x0 + (1 - a) x^(K),
a ~ U(0, 1) per sample.

Departures (one line each; measured effects: docs/notes/departures.md, 'UD2M'):
* R1 at the real samples with weight gp_weight / 2, not the code's penalty at real/fake
  interpolates with weight gp_weight: the standard zero-centred penalty, no extra draw per step.
* The image discriminator is stride-2 convs with LeakyReLU and no normalisation (the code: blocks
  of AvgPool, conv, InstanceNorm, LeakyReLU, then Linear): a small net for 32 x 32 digits; the
  shipped samplers train without a discriminator, so it does not enter them.
* Logits with BCE-with-logits (the code applies a sigmoid, then BCEWithLogits: a double sigmoid).
* The shipped MNIST samplers train with adv_weight = 0: the adversarial term lowered the PSNR of
  the mean there (it buys spread); the toy sampler keeps it (weight 3 with 6000 steps: closer to
  the exact posterior than without the larger weight).  Measured: docs/notes/ud2m.md,
  'discriminator.py'.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..base import y_as_image

__all__ = ["Discriminator", "discriminator_features", "discriminator_loss"]


class Discriminator(nn.Module):
    """Logit of "real pair (x0, y)": an MLP on concat(x, y) for vectors, a small conv net on
    [x, y as image] for images (stride-2 convs with LeakyReLU, then global average and Linear)."""

    def __init__(self, x_shape, y_channels_or_dim: int, hidden: int = 128):
        super().__init__()
        self.image = len(x_shape) == 3
        if not self.image:
            d = math.prod(x_shape) + y_channels_or_dim
            self.body = nn.Sequential(nn.Linear(d, hidden), nn.LeakyReLU(0.2),
                                      nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                                      nn.Linear(hidden, 1))
            return
        c, size, layers = x_shape[0] + y_channels_or_dim, min(x_shape[-2:]), []
        width = 16
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.LeakyReLU(0.2)]
        while size > 4:
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            width, size = 2 * width, (size + 1) // 2
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(width, 1))

    def forward(self, x, y_feat):
        if self.image:
            return self.body(torch.cat([x, y_feat], dim=1)).reshape(-1)
        return self.body(torch.cat([x.flatten(1), y_feat.flatten(1)], dim=1)).reshape(-1)


def discriminator_features(problem, y, shape):
    """The discriminator's view of y: y flattened for vectors; for images y as an image of x's
    size (``trained/base.py``; upsampled by nearest neighbour, as it has always been trained)."""
    if len(shape) == 3:
        return y_as_image(problem, y, shape, mode="nearest", what="discriminator")
    return y.flatten(1)


def discriminator_loss(disc, x0, x_hat, y_feat, gp_weight: float):
    """1/2 BCE(D(x0), 1) + 1/2 BCE(D(x_hat), 0) + gp_weight/2 E|grad_x D(x0)|^2 (R1: zero-centred
    at the real samples; the code's penalty sits at real/fake interpolates, weight gp_weight)."""
    real = x0.detach().requires_grad_(True)
    d_real = disc(real, y_feat)
    d_fake = disc(x_hat.detach(), y_feat)
    loss = 0.5 * F.softplus(-d_real).mean() + 0.5 * F.softplus(d_fake).mean()
    if gp_weight > 0:
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        loss = loss + 0.5 * gp_weight * grad.flatten(1).pow(2).sum(1).mean()
    return loss

