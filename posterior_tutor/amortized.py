"""APS: amortized posterior sampling with a conditional normalising flow trained against a diffusion
prior (Mammadov, Chung, Ye 2024, "Amortized posterior sampling with diffusion prior distillation",
arXiv 2407.17907; no code is public).  Lineage: DPI (Sun & Bouman 2021) -> Feng et al. 2023 (exact
probability-flow log p) -> Feng & Bouman 2024 (ELBO surrogate) -> APS (amortized over y).

    fl = pt.aps.train(den, prob, ys_train, generator=g)   # ys_train: measurements (n, *y.shape)
    xs = fl.sample(y, n=128, generator=g)                 # one flow pass per sample
    for step in fl.iterate(y, n=500): ...                 # the flow's layers, noise -> sample

The model.  q_phi(x | y) is a conditional flow x = G_phi(z, y), z ~ N(0, I), so that

    log q_phi(x | y) = log N(z; 0, I) - log |det dG_phi(z, y) / dz|.

The loss, over measurements only (no clean signals), with g_y(x) = |y - A(x)|^2 / (2 sigma^2):

    L(phi) = E_y E_z [ g_y(G(z, y)) + beta R(G(z, y)) + log N(z) - log|det dG/dz| ]
           = E_y [ KL(q_phi(. | y) || p_R(. | y)) ] + const,
      p_R(x | y) ∝ exp(-g_y(x) - beta R(x)),

(E_z log N(z) is a constant: the paper's loss drops it; we keep it so that the reported loss is the
KL up to log p_R(y)).  R is the negative log prior, or a surrogate of it:

* ``prior="elbo"`` (the paper): R(x) = -ELBO(x) + const, the x-dependent part of the DDPM bound

      -log p(x) <= sum_{t >= t_min} w_t E_eps |eps_theta(x_t, t) - eps|^2 + C,
      x_t = sqrt(ab_t) x + sqrt(1 - ab_t) eps,   w_t = beta_t / (2 alpha_t (1 - ab_t)),

  (the continuous-time likelihood weighting g^2 / (2 sigma_t^2) of score_prior, discretised on
  this package's schedule), estimated with t importance-sampled from p(t) = w_t / Z so that every
  draw carries the same weight Z = sum_t w_t; ``t_samples`` draws (t, eps) per x.  Gradients flow
  through the frozen denoiser into x.  For a Gaussian prior and the exact denoiser the expected
  x-gradient of R equals -grad log p(x) to within 1% on the default schedule (tested).
* ``prior="elbo_sg"`` (ablation): the same value, but the gradient drops the denoiser's Jacobian,
  2 Z sqrt(ab_t) (eps_theta(x_t, t) - eps) (score-distillation style: no backward pass through
  the network; a biased gradient).
* ``prior=callable``: R(x) = -log_prob(x), an exact log density (e.g. ``gmm.log_prob`` on the toy
  problems), to measure what the ELBO costs.

``beta`` is ``prior_weight``, ramped linearly from 0 over ``anneal_steps`` (warm-up; 0 = off).

The flows.
* Vectors (the toy problems): a zuko conditional flow (zuko 1.6) with the standardised y as
  context: ``flow="nsf"`` (neural spline flow, default), ``"realnvp"`` (affine coupling, the
  paper's family) or ``"maf"``.
* Images (n, C, H, W): a convolutional conditional coupling flow written here (zuko has no image
  flows).  From z to x:

      [ActNorm, checkerboard coupling] x k  ->  squeeze 2x2  ->  [ActNorm, fixed channel
      permutation, channel coupling] x m  ->  unsqueeze  ->  [ActNorm, checkerboard coupling] x k
      ->  conditional affine  x = u exp(s(y) + log 0.1) + m(y) + y_img

  Coupling: x_b' = x_b exp(s) + t with (s, t) = NN([x_a, h(y)]), s soft-clamped 2 tanh(s / 2)
  (the paper's tanh log-scale), last layer zero so every coupling starts as the identity.
  h(y) is a small conv net on y_img, y brought to image shape (y itself, y upsampled
  bilinearly, or A^T y); the squeezed level sees it pixel-unshuffled.  The last layer's skip
  and scale make the untrained flow sample y_img + 0.1 z (``init_scale``): training starts near
  the data instead of at N(0, I), which a CPU budget needs.  Invertibility and the
  log-determinant are checked against autograd Jacobians in ``tests/test_amortized.py``.

Measurements (toy fits against the exact posterior, digits 2x SR, the shipped MNIST flows against
DPS) live in ``docs/notes/aps.md`` with the commands that regenerate them.

Departures from the paper and why:
* The paper's flow (a conditional DPI-style RealNVP on flattened images, 32 steps, hidden D/8)
  is not public in detail; a flattened flow over 1024 pixels is also slow to train on a CPU.
  We use a small convolutional coupling flow for images and a spline flow for vectors (in 2D
  affine couplings fit a bimodal posterior poorly; ``flow="realnvp"`` is there to compare).
* ELBO on the discrete DDPM schedule (w_t above, t >= t_min = 1), not the continuous VP-SDE
  on [1e-3, 1]: it is the schedule the package's denoisers were trained on.
* For a denoiser with no parameters (the exact GMM one, which loops over distinct times) the
  t draws are shared in ``t_groups`` = 16 groups per batch: each x still gets t ~ p(t); only the
  draws of different x are correlated.  Network denoisers draw one t per (x, sample).
* The surrogate: the minimiser of L is the posterior under exp(ELBO), not under p; chapter 05
  measures this gap on the toy problem (exact log p vs ELBO with the exact denoiser vs ELBO with a
  learned one).  Samples of image flows are clipped to [-1, 1] at inference only.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .checks import check_generator, conform, dtype_of, finite_or_raise
from .checkpoints import (CheckpointError, check_trained_on, load_state, prior_fingerprint,
                          read_checkpoint, read_verified, save_atomic)
from .denoisers import Denoiser, parameters_of
from .nets import seeded_init
from .operators import InverseProblem
from .options import Anything, Choice, Flag, Int, Real, check_options, refuse_unknown
from .progress import bar
from .samplers.base import Step, check_trained_call
from .trained.base import check_training_set
from .schedules import VPSchedule, randn

__all__ = ["train", "fit", "load", "APSSampler", "VectorFlow", "ImageFlow", "elbo_weights",
           "neg_elbo", "prior_term", "aps_loss", "y_as_image", "pretrained", "shipped_problem",
           "PRETRAINED"]

FORMAT = "posterior_tutor.aps/1"
PRIORS = ("elbo", "elbo_sg")
VECTOR_FLOWS = ("nsf", "realnvp", "maf")


# ---------------------------------------------------------------------------------------------
# the diffusion ELBO as a prior surrogate
# ---------------------------------------------------------------------------------------------
def elbo_weights(sched: VPSchedule, t_min: int = 1) -> torch.Tensor:
    """w_t = beta_t / (2 alpha_t (1 - ab_t)) for t >= t_min, 0 below (float64, shape (T,))."""
    if not (isinstance(t_min, int) and 0 <= t_min < sched.T):
        raise ValueError(f"t_min must be an integer in 0..{sched.T - 1}, got {t_min!r}.")
    b, ab = sched.betas, sched.alpha_bar
    w = b / (2 * (1 - b) * (1 - ab))
    w[:t_min] = 0
    return w


def draw_times(w: torch.Tensor, n: int, how: str, groups, generator, device):
    """(t, weight): n times from p(t) = w / Z ("importance", weight Z) or U{t_min..T-1}
    ("uniform", weight w_t (T - t_min)); ``groups``: only that many distinct draws, shared."""
    gdev = generator.device if generator is not None else "cpu"
    k = n if groups is None else min(int(groups), n)
    if how == "importance":
        p = (w / w.sum()).float().to(gdev)
        t = torch.multinomial(p, k, replacement=True, generator=generator)
    else:
        lo = int((w > 0).nonzero()[0])
        t = torch.randint(lo, len(w), (k,), generator=generator, device=gdev)
    if k < n:
        t = t.repeat_interleave(math.ceil(n / k))[:n]
    t = t.to(device)
    if how == "importance":
        weight = torch.full((n,), float(w.sum()), device=device)
    else:
        weight = (w.to(device)[t] * int((w > 0).sum())).float()
    return t, weight


def neg_elbo(den: Denoiser, x: torch.Tensor, generator=None, t_samples: int = 1,
             t_sampling: str = "importance", t_min: int = 1, t_groups=None,
             stop_gradient: bool = False) -> torch.Tensor:
    """Monte Carlo estimate of -ELBO(x) + const per signal, shape (n,): the mean over
    ``t_samples`` draws of weight(t) |eps_theta(x_t, t) - eps|^2 (module docstring).
    ``stop_gradient``: same value, gradient without the denoiser's Jacobian."""
    check_generator(generator)
    n, k = x.shape[0], int(t_samples)
    w = elbo_weights(den.schedule, t_min)
    xr = x.repeat_interleave(k, 0) if k > 1 else x
    t, weight = draw_times(w, n * k, t_sampling, t_groups, generator, x.device)
    eps = randn(xr.shape, generator=generator, device=x.device, dtype=x.dtype)
    ab = den.schedule.abar(t, like=xr)
    if not stop_gradient:
        r = den.eps(ab.sqrt() * xr + (1 - ab).sqrt() * eps, t) - eps
        per = weight * r.flatten(1).pow(2).sum(1)
    else:
        with torch.no_grad():
            r = den.eps(ab.sqrt() * xr.detach() + (1 - ab).sqrt() * eps, t) - eps
        value = weight * r.flatten(1).pow(2).sum(1)
        lin = (2 * weight.reshape(-1, *[1] * (xr.ndim - 1)) * ab.sqrt() * r * xr).flatten(1).sum(1)
        per = value + lin - lin.detach()
    return per.reshape(n, k).mean(1)


def prior_term(prior, den, x, generator=None, **elbo_options) -> torch.Tensor:
    """R(x) per signal: -ELBO ("elbo"), its stop-gradient variant ("elbo_sg") or -log_prob(x)."""
    if callable(prior):
        lp = prior(x)
        if not isinstance(lp, torch.Tensor) or lp.shape != (x.shape[0],):
            raise ValueError(f"prior(x) must return log p(x) of shape ({x.shape[0]},), got "
                             f"{getattr(lp, 'shape', type(lp).__name__)}.")
        return -lp
    return neg_elbo(den, x, generator, stop_gradient=prior == "elbo_sg", **elbo_options)


# ---------------------------------------------------------------------------------------------
# flows: a common interface  generate(z, c) -> (x, logdet),  encode(x, c) -> (z, logdet),
# layers(z, c) -> iterator of (name, state, running logdet); logdet = log|det dx/dz| per sample
# ---------------------------------------------------------------------------------------------
class VectorFlow(nn.Module):
    """A zuko conditional flow on R^d with the standardised, flattened y as context."""

    def __init__(self, dim: int, y_dim: int, kind: str = "nsf", transforms: int = 4,
                 hidden: int = 64):
        super().__init__()
        import zuko
        cls = {"nsf": zuko.flows.NSF, "realnvp": zuko.flows.RealNVP, "maf": zuko.flows.MAF}[kind]
        self.flow = cls(dim, y_dim, transforms=transforms, hidden_features=(hidden, hidden))
        self.register_buffer("y_mean", torch.zeros(y_dim))
        self.register_buffer("y_std", torch.ones(y_dim))

    def set_context_stats(self, ys: torch.Tensor) -> None:
        ys = ys.flatten(1).float()
        self.y_mean.copy_(ys.mean(0))
        std = ys.std(0).clamp_min(1e-6) if ys.shape[0] > 1 else torch.ones_like(self.y_mean)
        self.y_std.copy_(std)

    def _transform(self, c):
        return self.flow(((c.flatten(1) - self.y_mean) / self.y_std)).transform

    def generate(self, z, c):
        x, ladj = self._transform(c).inv.call_and_ladj(z)
        return x, ladj

    def encode(self, x, c):
        z, ladj = self._transform(c).call_and_ladj(x)
        return z, -ladj

    def layers(self, z, c):
        parts = self._transform(c).transforms
        h, total = z, torch.zeros(z.shape[0], device=z.device)
        for j, tr in enumerate(reversed(parts)):
            h, ladj = tr.inv.call_and_ladj(h)
            total = total + ladj
            yield f"transform {j + 1}/{len(parts)} ({type(tr).__name__})", h, total


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


class ImageFlow(nn.Module):
    """The convolutional conditional coupling flow for images (module docstring)."""

    def __init__(self, shape, y_channels: int, hidden: int = 64, feat: int = 16,
                 checker: int = 4, channel: int = 4, init_scale: float = 0.1):
        super().__init__()
        C, H, W = shape
        if H % 2 or W % 2:
            raise ValueError(f"the image flow squeezes 2x2: H and W must be even, got {H}x{W}.")
        self.cond = nn.Sequential(nn.Conv2d(y_channels, feat, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(feat, feat, 3, padding=1), nn.SiLU())
        layers = []
        for j in range(checker // 2 + checker % 2):
            layers += [ActNorm(C), CheckerboardCoupling(C, feat, hidden, j % 2)]
        layers.append(Squeeze())
        for j in range(channel):
            layers += [ActNorm(4 * C), Permute(4 * C, seed=j),
                       ChannelCoupling(4 * C, 4 * feat, hidden, bool(j % 2))]
        layers.append(Squeeze(undo=True))
        for j in range(checker // 2):
            layers += [ActNorm(C), CheckerboardCoupling(C, feat, hidden, (j + 1) % 2)]
        layers.append(ConditionalAffine(C, feat, hidden, init_scale))
        self.steps = nn.ModuleList(layers)

    def features(self, c):
        full = self.cond(c)
        return {"full": full, "half": F.pixel_unshuffle(full, 2), "out": (full, c), None: None}

    def generate(self, z, c):
        feats, h = self.features(c), z
        total = z.new_zeros(z.shape[0])
        for layer in self.steps:
            h, ld = layer(h, feats[layer.level])
            total = total + ld
        return h, total

    def encode(self, x, c):
        feats, h = self.features(c), x
        total = x.new_zeros(x.shape[0])
        for layer in reversed(self.steps):
            h, ld = layer.inverse(h, feats[layer.level])
            total = total + ld
        return h, total

    def layers(self, z, c):
        feats, h, squeezed = self.features(c), z, False
        total = z.new_zeros(z.shape[0])
        for j, layer in enumerate(self.steps):
            h, ld = layer(h, feats[layer.level])
            total = total + ld
            if isinstance(layer, Squeeze):
                squeezed = not layer.undo
            view = F.pixel_shuffle(h, 2) if squeezed else h
            yield f"layer {j + 1}/{len(self.steps)} ({type(layer).__name__})", view, total


# ---------------------------------------------------------------------------------------------
# the trained sampler
# ---------------------------------------------------------------------------------------------
class APSSampler:
    """A trained amortized posterior sampler: ``sample``, ``iterate``, ``log_prob``, ``save`` /
    ``load``.  ``losses`` is the training curve (loss per dimension), ``loss_parts`` its terms
    ("data", "prior", "log_q", per signal), ``train_seconds`` the training wall time."""

    def __init__(self, prior: Denoiser, config: dict, problem: InverseProblem | None = None):
        self.prior, self.config, self.problem = prior, dict(config), problem
        self.shape, self.y_shape = tuple(config["shape"]), tuple(config["y_shape"])
        self.flow = build_flow(config)
        dev = getattr(prior, "device", torch.device("cpu"))
        self.flow.to(dev)
        self.losses: list[float] = []
        self.loss_parts: dict = {}
        self.train_seconds = 0.0

    def __repr__(self):
        c = self.config
        return (f"APSSampler({c['flow']} flow, {self.n_parameters} parameters, prior "
                f"{c['prior']!r}, trained {len(self.losses)} steps)")

    @property
    def image(self) -> bool:
        return len(self.shape) == 3

    @property
    def device(self):
        p = next(self.flow.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.flow.parameters())

    def condition(self, y: torch.Tensor, problem: InverseProblem) -> torch.Tensor:
        """The flow's context for a batch of measurements y (n, *y_shape)."""
        return y.flatten(1) if not self.image else y_as_image(problem, y, self.shape)

    def base_noise(self, n: int, generator=None, device=None) -> torch.Tensor:
        return randn((n, *self.shape), generator=generator, device=device or self.device,
                     dtype=dtype_of(self.flow))

    def log_prob(self, x: torch.Tensor, y: torch.Tensor, problem=None) -> torch.Tensor:
        """log q(x | y) for x (n, ...) and one measurement y; shape (n,)."""
        prob, y = self._check_sampling(y, x.shape[0], None, problem)
        x = conform(x, y.dtype, "x")
        c = self.condition(y.unsqueeze(0).expand(x.shape[0], *y.shape), prob)
        z, ld = self.flow.encode(x, c)
        return _std_normal_log_prob(z) - ld

    # -- sampling ------------------------------------------------------------------------------
    def iterate(self, y, n: int = 1, generator=None, problem=None):
        """``Step`` records of the flow's layers turning noise z into samples: step 0 is z, then
        one per layer (x is the state, extras["logdet"] the running log|det| per sample)."""
        prob, y = self._check_sampling(y, n, generator, problem)
        return self._steps(prob, y, n, generator)

    def _steps(self, prob, y, n, generator):
        with torch.no_grad():
            z = self.base_noise(n, generator, y.device)
            c = self.condition(y.unsqueeze(0).expand(n, *y.shape), prob)
            yield Step(0, None, z, None, "base noise z ~ N(0, I)",
                       {"logdet": torch.zeros(n, device=z.device)})
            parts = list(self.flow.layers(z, c))
            for i, (name, h, total) in enumerate(parts, start=1):
                if i == len(parts) and self.image:
                    h = h.clamp(-1, 1)
                yield Step(i, None, h, None, name, {"logdet": total, "nfe": 1})

    def sample(self, y, n: int = 1, generator=None, problem=None) -> torch.Tensor:
        """n samples (n, ...) for one measurement y (no sample dimension); one flow pass."""
        prob, y = self._check_sampling(y, n, generator, problem)
        with torch.no_grad():
            z = self.base_noise(n, generator, y.device)
            x, _ = self.flow.generate(z, self.condition(y.unsqueeze(0).expand(n, *y.shape), prob))
        return x.clamp(-1, 1) if self.image else x

    def _check_sampling(self, y, n, generator, problem):
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}.")
        y = conform(y, dtype_of(self.flow), "y")
        if tuple(y.shape) != self.y_shape:
            extra = " (y carries no sample dimension)" if tuple(y.shape[1:]) == self.y_shape else ""
            raise ValueError(f"this flow was trained on measurements of shape {self.y_shape}, got "
                             f"y of shape {tuple(y.shape)}{extra}.")
        prob = check_trained_call(problem, self.problem, y, n, generator, self.shape, self.device,
                                  what="flow")
        _check_problem_matches(self.config, prob)
        return prob, y

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Atomic save of the flow, its config, the training curve and the prior's fingerprint."""
        path = Path(path)
        save_atomic({"format": FORMAT, "config": dict(self.config),
                     "flow": {k: v.detach().cpu() for k, v in self.flow.state_dict().items()},
                     "prior_fingerprint": prior_fingerprint(self.prior, self.shape).cpu(),
                     "losses": torch.tensor(self.losses, dtype=torch.float64),
                     "train_seconds": float(self.train_seconds)}, path)
        return path

    @classmethod
    def load(cls, path, den: Denoiser, problem: InverseProblem | None = None,
             sha256: str | None = None, ckpt: dict | None = None) -> "APSSampler":
        """Rebuild a saved sampler on the prior ``den`` it was trained on (checked)."""
        ckpt = ckpt if ckpt is not None else read_checkpoint(path, sha256)
        if ckpt.get("format") != FORMAT or "flow" not in ckpt:
            raise CheckpointError(f"{path} is not an APS flow checkpoint (format "
                                  f"{ckpt.get('format')!r}, expected {FORMAT!r}).")
        config = dict(ckpt["config"])
        _check_prior_matches(den, config, ckpt.get("prior_fingerprint"), path)
        if problem is not None:
            _check_problem_matches(config, problem)
        fl = cls(den, config, problem)
        load_state(fl.flow, ckpt["flow"], path)
        fl.losses = ckpt.get("losses", torch.zeros(0)).tolist()
        fl.train_seconds = float(ckpt.get("train_seconds", 0.0))
        return fl


def load(path, den: Denoiser, problem: InverseProblem | None = None) -> APSSampler:
    """``APSSampler.load``."""
    return APSSampler.load(path, den, problem)


def y_as_image(prob: InverseProblem, y, shape):
    """A batch of y (n, *y_shape) as images of x's size: y itself, y upsampled (bilinear) when
    it is a smaller image, else A^T y (a linear operator is needed then)."""
    H, W = shape[-2:]
    if y.ndim == 4 and tuple(y.shape[-2:]) == (H, W):
        return y
    if y.ndim == 4:
        return F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
    if prob.operator.linear:
        return prob.operator.adjoint(y)
    raise ValueError("an image flow needs y as an image, or a linear operator for A^T y.")


def _std_normal_log_prob(z):
    return -0.5 * z.flatten(1).pow(2).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi)


def build_flow(config: dict) -> nn.Module:
    if len(config["shape"]) == 3:
        return ImageFlow(config["shape"], config["y_channels"], config["hidden"], config["feat"],
                         config["checker"], config["channel"], config["init_scale"])
    return VectorFlow(math.prod(config["shape"]), math.prod(config["y_shape"]), config["flow"],
                      config["transforms"], config["hidden"])


def _check_problem_matches(config, prob):
    if abs(prob.sigma - config["sigma"]) > 1e-9 * config["sigma"] or \
            repr(prob.operator) != config["operator"]:
        raise ValueError(f"this flow was trained for {config['operator']} with sigma="
                         f"{config['sigma']:g}, got {prob!r}: an amortized flow only knows the "
                         "problem it was trained on; train one for this problem.")


def _check_prior_matches(den, config, fingerprint, path):
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    check_trained_on(den, config["shape"], fingerprint, path)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
_VECTOR_DEFAULTS = dict(steps=1500, batch=256, lr=1e-3, flow="nsf", transforms=3, hidden=64)
_IMAGE_DEFAULTS = dict(steps=2000, batch=32, lr=5e-4, flow="coupling", transforms=None,
                       hidden=64)
TRAIN_OPTIONS = {   # kind and range of each option of train() (options.py); None: the default
    "steps": Int(1, optional=True), "batch": Int(1, optional=True),
    "lr": Real(0, low_open=True, optional=True), "prior": Anything(), "prior_weight": Real(0),
    "anneal_steps": Int(0), "t_samples": Int(1), "t_sampling": Choice("importance", "uniform"),
    "t_min": Int(0, lambda c: c["T"] - 1), "t_groups": Anything(),
    "flow": Choice("coupling", *VECTOR_FLOWS, optional=True), "transforms": Int(1, optional=True),
    "hidden": Int(1, optional=True), "feat": Int(1), "checker": Int(0), "channel": Int(0),
    "init_scale": Real(0, low_open=True),
    "progress": Flag(optional=True, hint="None: on except under pytest")}


@contextmanager
def _frozen(den):
    """The prior's parameters do not require gradients while the flow trains (then restored)."""
    params = parameters_of(den)
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def train(den: Denoiser, prob: InverseProblem, ys_train: torch.Tensor, generator=None,
          steps: int | None = None, batch: int | None = None, lr: float | None = None,
          prior="elbo", prior_weight: float = 1.0, anneal_steps: int = 0, t_samples: int = 1,
          t_sampling: str = "importance", t_min: int = 1, t_groups="auto", flow: str | None = None,
          transforms: int | None = None, hidden: int | None = None, feat: int = 16,
          checker: int = 4, channel: int = 4, init_scale: float = 0.1,
          progress: bool | None = None,
          **unknown) -> APSSampler:
    """Train a conditional flow q(x | y) for ``prob`` against the prior ``den`` (APS).

    ys_train : measurements (n, *y.shape) of the problem (no clean signals needed).
    generator : draws everything (initialisation, batches, z, t, eps): same seed, same flow.
    steps, batch, lr : vectors 1500, 256, 1e-3; images 2000, 32, 5e-4 (Adam, cosine-decayed to
               5%, gradients clipped to norm 1).  A batch is ``batch`` pairs (y, z), y drawn from
               ys_train with replacement.
    prior    : "elbo" (paper), "elbo_sg" (stop-gradient ablation) or a callable x -> log p(x)
               of shape (n,) (exact log density, e.g. ``gmm.log_prob``).
    prior_weight, anneal_steps : beta, ramped linearly from 0 over anneal_steps (0: no warm-up).
    t_samples : (t, eps) draws per x in the ELBO (score_prior: 1).  t_sampling : "importance"
               (p(t) ∝ w_t, constant weight) or "uniform" (weight w_t (T - t_min)).
    t_min    : first time in the ELBO sum (default 1).  t_groups : distinct t per batch shared
               across it; "auto" = 16 for a denoiser without parameters, else one per draw (None).
    flow     : vectors "nsf" (default), "realnvp", "maf" (zuko); images "coupling" (the only one).
    transforms, hidden : vectors 3 transforms of width 64; images coupling width 64.
    feat, checker, channel : images: conditioning channels (16), checkerboard couplings (4),
               channel couplings at the squeezed level (4).
    init_scale : images: the flow starts at x = y_img + init_scale z (0.1), y_img = y upsampled
               or A^T y; the skip applies when y_img has x's channels.
    progress : tqdm bar (None: on, except under pytest).  Returns an ``APSSampler`` with
    ``losses`` and ``train_seconds``.
    """
    refuse_unknown("aps.train", unknown, TRAIN_OPTIONS)
    check_options("aps.train", TRAIN_OPTIONS, {k: v for k, v in locals().items()
                                               if k in TRAIN_OPTIONS},
                  T=getattr(getattr(den, "schedule", None), "T", 1000))
    if not (t_groups in ("auto", None) or isinstance(t_groups, int)):
        raise TypeError(f"t_groups must be 'auto', None or a positive integer, got {t_groups!r}.")
    check_generator(generator)
    if isinstance(ys_train, torch.Tensor):   # the flow's dtype: the default one
        ys_train = conform(ys_train, torch.get_default_dtype(), "ys_train")
    shape, y_shape = _check_training_inputs(den, prob, ys_train)
    image = len(shape) == 3
    opts = dict(_IMAGE_DEFAULTS if image else _VECTOR_DEFAULTS)
    given = dict(steps=steps, batch=batch, lr=lr, flow=flow, transforms=transforms, hidden=hidden)
    opts.update({k: v for k, v in given.items() if v is not None})
    if t_groups == "auto":
        t_groups = None if parameters_of(den) else 16
    elbo = dict(t_samples=t_samples, t_sampling=t_sampling, t_min=t_min, t_groups=t_groups)
    _check_options(opts, image, prior, prior_weight, anneal_steps, elbo, den, init_scale)
    config = dict(shape=list(shape), y_shape=list(y_shape), T=den.schedule.T,
                  sigma=float(prob.sigma), operator=repr(prob.operator),
                  prior=prior if isinstance(prior, str) else "log_prob",
                  prior_weight=float(prior_weight), anneal_steps=int(anneal_steps),
                  **{k: opts[k] for k in ("steps", "batch", "lr", "flow", "transforms", "hidden")},
                  feat=int(feat), checker=int(checker), channel=int(channel),
                  init_scale=float(init_scale),
                  **{k: v for k, v in elbo.items()})
    if image:
        config["y_channels"] = int(y_as_image(prob, ys_train[:1], shape).shape[1])
    with seeded_init(generator):
        fl = APSSampler(den, config, prob)
    if not image:
        fl.flow.set_context_stats(ys_train.to(fl.device))
    fit(fl, prob, ys_train, steps=opts["steps"], generator=generator, progress=progress,
        prior=prior)
    return fl


def aps_loss(fl: APSSampler, prob, y, beta: float, prior, generator=None):
    """(loss per dimension, parts per signal) for a batch of measurements y (one z each)."""
    c = fl.config
    z = fl.base_noise(y.shape[0], generator, y.device)
    x, ld = fl.flow.generate(z, fl.condition(y, prob))
    data = 0.5 * (prob.operator(x) - y).flatten(1).pow(2).sum(1) / prob.sigma ** 2
    elbo = {k: c[k] for k in ("t_samples", "t_sampling", "t_min", "t_groups")}
    reg = prior_term(prior, fl.prior, x, generator, **elbo)
    log_q = _std_normal_log_prob(z) - ld
    total = (data + beta * reg + log_q).mean() / math.prod(fl.shape)
    return total, {"data": data.mean(), "prior": reg.mean(), "log_q": log_q.mean()}


def fit(fl: APSSampler, prob: InverseProblem, ys_train: torch.Tensor, steps: int,
        generator=None, progress: bool | None = None, prior=None, lr: float | None = None,
        start_step: int = 0, callback=None) -> APSSampler:
    """Train (or go on training) ``fl`` for ``steps`` steps; ``prior`` defaults to the one in
    its config (a callable prior must be passed again).  ``start_step`` places the run on the
    warm-up ramp; ``callback(step, fl)`` runs after every step (e.g. to checkpoint)."""
    check_generator(generator)
    prior = fl.config["prior"] if prior is None else prior
    if prior == "log_prob":
        raise ValueError("this flow was trained with a callable log density: pass it as prior=.")
    c = fl.config
    opt = torch.optim.Adam(fl.flow.parameters(), lr=lr or c["lr"])
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.05 * (lr or c["lr"]))
    ys = ys_train.to(fl.device)
    rng = bar(range(start_step, start_step + steps), "training APS flow", total=steps,
              progress=progress)
    gdev = generator.device if generator is not None else "cpu"
    start = time.perf_counter()
    with _frozen(fl.prior):
        for step in rng:
            idx = torch.randint(ys.shape[0], (c["batch"],), generator=generator, device=gdev)
            ramp = min(1.0, (step + 1) / c["anneal_steps"]) if c["anneal_steps"] else 1.0
            total, parts = aps_loss(fl, prob, ys[idx.to(ys.device)], c["prior_weight"] * ramp,
                                    prior, generator)
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(fl.flow.parameters(), 1.0)
            opt.step()
            decay.step()
            fl.losses.append(float(total.detach()))
            finite_or_raise(fl.losses[-1], "the APS training loss", f"at step {step + 1}",
                            f"lower lr (now {lr or c['lr']:g}) or check ys_train.")
            for k, v in parts.items():
                fl.loss_parts.setdefault(k, []).append(float(v.detach()))
            if callback is not None:
                callback(step, fl)
    fl.train_seconds += time.perf_counter() - start
    return fl


def _check_training_inputs(den, prob, ys) -> tuple:
    check_training_set(den, prob, ys, "ys_train", "measurements (n, *y.shape)",
                       "the measurements")
    shape = tuple(prob.check_y(ys[0]))
    if den.shape is not None and shape != tuple(den.shape):
        raise ValueError(f"ys_train holds measurements of signals of shape {shape} but the prior "
                         f"models signals of shape {tuple(den.shape)}; ys_train must be "
                         "(n, *y.shape) with y one measurement of the problem.")
    if len(shape) not in (1, 3):
        raise ValueError(f"APS flows handle vectors (d,) and images (C, H, W), got {shape}.")
    return shape, tuple(ys.shape[1:])


def _positive_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}.")


def _check_options(opts, image, prior, prior_weight, anneal_steps, elbo, den, init_scale):
    for name in ("steps", "batch", "hidden"):
        _positive_int(name, opts[name])
    _positive_int("t_samples", elbo["t_samples"])
    if not opts["lr"] > 0:
        raise ValueError(f"lr must be > 0, got {opts['lr']}.")
    kinds = ("coupling",) if image else VECTOR_FLOWS
    if opts["flow"] not in kinds:
        raise ValueError(f"flow must be one of {kinds} for {'images' if image else 'vectors'}, "
                         f"got {opts['flow']!r}.")
    if not image:
        _positive_int("transforms", opts["transforms"])
    if not (0 < init_scale and math.isfinite(init_scale)):
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale}.")
    if not (callable(prior) or prior in PRIORS):
        raise ValueError(f"prior must be 'elbo', 'elbo_sg' or a callable x -> log p(x), got "
                         f"{prior!r}.")
    if not (prior_weight >= 0 and math.isfinite(prior_weight)):
        raise ValueError(f"prior_weight must be a finite number >= 0, got {prior_weight}.")
    if not isinstance(anneal_steps, int) or anneal_steps < 0:
        raise ValueError(f"anneal_steps must be an integer >= 0, got {anneal_steps!r}.")
    if elbo["t_sampling"] not in ("importance", "uniform"):
        raise ValueError(f"t_sampling must be 'importance' or 'uniform', got "
                         f"{elbo['t_sampling']!r}.")
    if elbo["t_groups"] is not None:
        _positive_int("t_groups", elbo["t_groups"])
    elbo_weights(den.schedule, elbo["t_min"])      # t_min out of range raises here



# ---------------------------------------------------------------------------------------------
# shipped flows
# ---------------------------------------------------------------------------------------------
PRETRAINED = {"mnist-denoising": "aps_mnist_denoising",    # shipped flows -> their folder
              "mnist-sr4": "aps_mnist_sr4"}                # in data/


def shipped_problem(name: str) -> InverseProblem:
    """The problem a shipped flow was trained for (sigma 0.05 on 32x32 MNIST)."""
    from .operators import Denoising, SuperResolution
    if name == "mnist-sr4":
        return InverseProblem(SuperResolution(4, shape=(1, 32, 32)), 0.05)
    if name == "mnist-denoising":
        return InverseProblem(Denoising((1, 32, 32)), 0.05)
    raise ValueError(f"unknown shipped APS flow {name!r}; known: {', '.join(PRETRAINED)}.")


def pretrained(name: str, den: Denoiser, check: bool = True) -> APSSampler:
    """A shipped flow (``data/aps_mnist_<task>/flow.pt``, sha256-checked against its model card)
    on the prior ``den`` it was trained on (``pt.pretrained("mnist")``), with its problem."""
    from .checkpoints import shipped_path
    prob = shipped_problem(name)
    path = shipped_path(PRETRAINED[name], "flow.pt", f"APS flow {name}")
    ckpt, card = read_verified(path, check, what="APS flow")
    fl = APSSampler.load(path, den, prob, ckpt=ckpt)
    fl.card = card
    return fl
