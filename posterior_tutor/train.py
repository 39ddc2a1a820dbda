"""Denoising score matching (Ho et al. 2020; Vincent 2011) for eps-prediction networks.

    L(theta) = E_{x0, t ~ U{0..T-1}, eps} | eps_theta(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t) - eps |^2

minimised with AdamW; an exponential moving average (EMA) of the weights is what gets used for
sampling (it gives visibly better samples at no cost).  ``train_denoiser`` is the in-memory loop
used by the notebooks for the toy priors.
"""
from __future__ import annotations

import copy
import time

import torch

from .denoisers import EpsNetDenoiser
from .schedules import VPSchedule


def dsm_loss(net, x0: torch.Tensor, sched: VPSchedule, generator=None) -> torch.Tensor:
    """One Monte Carlo estimate of the DSM loss on a batch x0."""
    t = torch.randint(0, sched.T, (x0.shape[0],), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0)
    x_t = sched.add_noise(x0, t, noise=eps)
    return (net(x_t, t) - eps).pow(2).flatten(1).sum(1).mean()


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p, 1 - decay)


def train_denoiser(net: torch.nn.Module, data: torch.Tensor, sched: VPSchedule | None = None,
                   steps: int = 2000, batch: int = 256, lr: float = 2e-3, ema_decay: float = 0.995,
                   generator: torch.Generator | None = None, progress: bool = False):
    """Fit ``net`` (an eps predictor) to ``data`` (N, ...) by DSM; returns (denoiser, losses).

    The returned denoiser wraps the EMA copy of the network.  ``progress=True`` shows a tqdm bar."""
    if not torch.isfinite(data).all():
        raise ValueError("training data contains NaN or Inf values.")
    sched = sched or VPSchedule()
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    lr_decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    losses = []
    rng = range(steps)
    if progress:
        from tqdm.auto import tqdm
        rng = tqdm(rng, desc="training denoiser")
    start = time.perf_counter()
    for _ in rng:
        idx = torch.randint(0, data.shape[0], (batch,), generator=generator)
        loss = dsm_loss(net, data[idx], sched, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        lr_decay.step()
        ema_update(ema, net, ema_decay)
        losses.append(loss.item())
    den = EpsNetDenoiser(ema.eval(), sched, shape=tuple(data.shape[1:]))
    den.train_seconds = time.perf_counter() - start
    return den, losses
