"""UD2M: unfolded diffusion posterior sampling, fine-tuned by distillation (Mbakam, Spence, Pereyra
2025, "Learning few-step posterior samplers by unfolding and distillation of diffusion models",
arXiv 2507.02686; public code charles-kmc/UD2M @a10f9f8).

    ud = pt.ud2m.train(den, prob, xs_train, generator=g)      # xs_train: clean signals (n, ...)
    xs = ud.sample(y, n=500, generator=g)                    # 9 network calls per sample
    xs = ud.sample(y2, n=500, problem=other_prob)            # another operator, same sampler

Notation: s(t) = sqrt((1 - ab_t) / ab_t) the VE noise level, D the (adapted) Tweedie denoiser,
sigma the measurement noise, sigma' = ``sigma_factor`` sigma (default 2; the public code's is
sigma, x13 for inpainting, in our [-1, 1] units: ``with_preset("code")``, ``ud2m_presets``).

Outer loop: N DDIM steps on the quadratic grid t_n = floor((n sqrt(T) / N)^2), first = T - 1
(N = 3: 999, 444, 111), started from x ~ N(0, I).  At each outer time t one unfolded block
L(x_t, y, t) of K iterations estimates x0 from p(x0 | x_t, y):

    rho   = sigma' s / sqrt(sigma'^2 + s^2),     s = s(t)
    tau   = argmin_tau |s(tau) - rho|                                   (schedule.t_from_sigma)
    x^(0) = (A^T y sqrt(1 - ab_t) + sqrt(ab_t) x_t sigma') / sqrt(sigma'^2 + 1 - ab_t)   (code's
            form; the code puts the true sigma there)
    for k = 1..K:
        z_k   = argmin_z |y - A z|^2 / (2 lambda sigma^2) + |z - x^(k-1)|^2 / (2 rho^2)
                        + |z - x_t / sqrt(ab_t)|^2 / (2 s^2)
        z~_k  = sqrt(ab_tau) z_k + sqrt(1 - ab_tau) eps_k,   eps_k ~ N(0, I)   (re-noise to tau)
        x^(k) = D(z~_k, tau)                                                (one network call)
    eps_hat = (x_t - sqrt(ab_t) x^(K)) / sqrt(1 - ab_t);  x_{t'} = DDIM(x^(K), eps_hat, eta = 0.8)
(standard DDIM noise; the code's rule with the single-step beta_t adds 1.3% fresh variance, not 64%)

so NFE = K N (9 with the defaults), and the last block's x^(K) is the sample.

The prox with two quadratics.  The last two terms are one quadratic in z:

    |z - a|^2 / (2 rho^2) + |z - b|^2 / (2 s^2) = |z - m|^2 / (2 r^2) + const,
    1 / r^2 = 1 / rho^2 + 1 / s^2,     m = r^2 (a / rho^2 + b / s^2),

with a = x^(k-1) and b = x_t / sqrt(ab_t) (so b / s^2 = sqrt(ab_t) x_t / (1 - ab_t), computed in
that form so that b, of size 1/sqrt(ab_999) ~ 160, is never formed).  Multiplying the objective
by lambda does not move its minimiser:

    z_k = argmin_z |y - A z|^2 / (2 sigma^2) + |z - m|^2 / (2 r^2 / lambda)
        = prob.prox(m, y, r / sqrt(lambda)),

i.e. the problem's own prox with radius r / sqrt(lambda): no scaled InverseProblem is needed, and
lambda's gradient flows through the radius.  ``tests/test_unfolding.py`` checks this against a
dense linear solve of the three-term normal equation.

What is trained (shared across k and t, zero-initialised so that training starts at the prior):
* a network denoiser: low-rank adapters W x + B A x (LoRA, Hu et al. 2021; rank 4, B = 0 at start)
  on the attention projections (qkv, out) and the output convolution of ``pt.nets.UNet``, or on all
  Linear layers of a network without attention (``pt.nets.MLP``); ``add_lora`` works on a copy and
  never touches the prior;
* a denoiser with no parameters (the exact GMM one): a time-conditioned MLP r(x_tau, tau) added to
  its output, last layer zero at start;
* lambda = exp(l), l = 0 at start.

Losses on pairs (x0, y) made on the fly from clean signals (y = A x0 + sigma n), one random outer
time t per batch (U{1..T-1} as in the paper, or ``train_times="grid"``: the N times the sampler
visits), x_t = add_noise(x0, t), one block with gradients:

    L_G = ab_t / (1 - ab_t) mean|x^(K) - x0|^2  (= the code's |eps_hat - eps|^2)
          + adv_weight BCE(Disc(x^(K), y), 1) + lpips_weight LPIPS(x^(K), x0)
    L_D = 1/2 BCE(Disc(x0, y), 1) + 1/2 BCE(Disc(x^(K), y), 0)
          + gp_weight / 2 E|grad_x Disc(x0, y)|^2

alternating one discriminator and one sampler update per step (AdamW, cosine-decayed learning
rate, sampler gradients clipped to norm 1).  Disc is a conditional discriminator: an MLP on
concat(x, y) for vectors, a small conv net on [x, y as an image] for images (y upsampled when
smaller, A^T y when it is not an image).  The R1 penalty is zero-centred on real samples.
``operators=`` (a callable or a list of InverseProblems) draws a fresh problem per batch (e.g.
random masks): the operator enters only through the prox, so a trained sampler accepts another
operator at inference (``problem=``).

Defaults.  Paper: K = 3, N = 3, eta = 0.8, sigma' = sigma ([-1, 1] units; x13 inpainting), LoRA
rank 5 (alpha 1.5) on attention, AdamW lr 1e-4 (wd 0.01), batch 32, adversarial weight 1, LPIPS
weight 0.1, R1 weight 0.01 (MNIST).
Here: rank 4, adversarial weight 1 (the paper's; on the toy problem 0 and 0.05 left the sampler
where it started, 1 improved it); vectors (toy) lr 1e-3, batch 256, 500 steps, R1 weight 0.1;
images lr 1e-4, batch 32, 2000 steps, R1 weight 0.01; LPIPS off (its ImageNet weights need a
download; ask for it with lpips_weight=0.1).

sigma' on images matters more than training.  s(tau) = rho <= sigma', so sigma' caps the noise at
which the prior ever works; at 2 sigma = 0.1 it cannot fill in what A removed (nor at the
code's sigma' = sigma for SR: shipped SR sampler 12.91 dB against 24.28 at 20 sigma,
docs/notes/ud2m.md).  MNIST, sigma = 0.05,
16 held-out digits x 32 samples, PSNR of the mean (90% coverage):
  random inpainting  untrained sigma' = 2 sigma 13.3 (6 digits); trained (1500 steps, adversarial
                     weight 1) 21.5 (0.91); untrained 13 sigma (the code's inpainting factor) 25.9
                     (0.97); trained at 13 sigma: adversarial weight 1, lr 1e-3 23.7 (0.94);
                     weight 0.1, lr 3e-4 24.5 (0.90); weight 0, grid times, lr 1e-4 25.9 (0.96).
  4x SR              untrained 2 sigma 12.9 (6 digits); trained 16.5 (0.90); untrained 20 sigma 20.8
                     (0.96); trained at 20 sigma, weight 1, lr 3e-4 19.7 (0.99).
So on MNIST the adversarial term costs 1.5-2 dB of PSNR of the mean (it buys spread), and the
SNR-weighted x0 loss alone hardly moves a sampler that sigma' already made good (+0.06 / +0.12 dB).

Why, and what moves it.  Started from the *true* x_t = add_noise(x0, t) at each outer time
(``ud.sample_from``), the untrained 4 x 4 inpainting chain gives (8 held-out digits x 16 samples,
PSNR of the mean) t = 999: 27.1, 562: 27.2, 250: 30.8, 62: 35.9 dB.  The first two blocks see x0
through noise s(t) = 157 and 4.9, so even the true x_t does not help them: the chain's accuracy is
decided there, from y and the prior.  The paper's loss weights each block's x0 error by
ab_t / (1 - ab_t) = 4e-5, 0.04, 1.1, 22 at those times: the training goes to the last block, the
one that already works.  ``x0_weighting="uniform"`` weights every time alike.  Same 8 x 16 (4 x 4
inpainting, 300 steps, lr 1e-3, adversarial 0, grid times), PSNR of the mean over the untrained
27.35: SNR weighting, LoRA on attention + output 27.48; on all 36 layers 27.60; all layers and
uniform weighting 27.76.  Trained that way (all layers, uniform, lr 1e-3; 16 x 32 held-out
evaluation, PSNR of the mean): random inpainting untrained 26.82, 900 steps 27.54, 2700 steps
(900 continued by 1800 with ``init=``) 27.76 dB (single 25.06, coverage 0.958); 4x SR untrained
21.53, 900 steps 22.73, 2700 steps 23.05 (single 20.93, coverage 0.946): each tripling of the
steps buys less (+0.7 then +0.2 dB inpainting, +1.2 then +0.3 SR); the paper trains 400 epochs of
16k images (~200k steps of batch 32), about 100 CPU hours here.  From the true x_250 the trained
(900-step) inpainting chain reaches 30.6 dB, its own chain 27.8: what is left is in the first two
blocks.  On the stored benchmark's digits and measurements (test[8000:8004], 32 samples;
docs/benchmark/ud2m_vs_dps), the shipped 2700-step samplers started from the true x_t:
inpainting 29.76 (t = 999, the chain itself), 30.05 (562), 32.18 (250), 36.19 dB (62); SR
24.29 (999), 25.42 (444), 31.72 dB (111); DPS there 31.32 / 24.88.  To match DPS the first
block (SR) or the first two (inpainting) must hand on a state as good as the true x_t: that is
the bar the training has to reach.  LoRA on every layer costs ~50% more time per call when run as
adapters; sampling folds W + B A into one weight (``merge_lora``), so a call costs what the prior's
does.  The shipped samplers use 13 sigma / 20 sigma, adversarial weight 0, the grid times, LoRA
rank 4 on every layer, uniform weighting, lr 1e-3, 2700 steps (``scripts/train_ud2m_mnist.py``, the
commands in their READMEs).

Where the inpainting gap to DPS is, and what did not close it (the stored benchmark's 4 digits, 32
samples, squared error of the mean on [-1, 1]; DPS rerun there: 31.28 dB, stored 31.32).  Observed
pixels: UD2M 0.00086, DPS 0.00025 (y itself 0.0025; a single UD2M sample keeps about y's error
there, 0.0026, a DPS sample 0.0003); missing pixels 0.0086 vs 0.0063: three quarters of the gap is
the fill-in; per digit -2.4, -0.2, -1.6, -2.0 dB.  Inference schedules (outer times per block, K
per block, sigma' per block, lambda x 0.5 to 4, up to 10 outer times ending at t = 1, 16 to 35
calls) gain up to 0.8 dB on the tuning digits (test[9000:9008]) and 0.1 to 0.4 dB on the
benchmark's: not a lever.  Training saturates early: 300 steps (all layers, uniform weighting) at
rank 4 or 16, lr 1e-3 or 3e-3 reach 27.74 to 27.76 (8 x 16); 300 more steps of the shipped
sampler's recipe +0.19 dB on the benchmark digits (29.94; +0.08 on the tuning digits).  Training
each block on x_t drawn from the sampler's own chain (no gradient through the earlier blocks)
instead of the forward process add_noise(x0, t) (300 steps from the shipped sampler) makes single
samples better (27.20 dB, shipped 26.50) and the mean worse (29.31, coverage 0.94): the samples
move closer together, their mean away from x0.  Fine-tuning every weight of the network (778k
parameters, 300 steps, lr 1e-4 / 3e-4) instead of the adapters: 29.93 / 29.69 on the benchmark
digits, the adapters' 29.94: the adapters are not what limits it.

More calls than the paper's 3 x 3 buy more than training did.  The adapters are shared across k
and t, so the 3 x 3 samplers run at any K x N (``ud.with_calls(K, N)``); PSNR of the 8-sample
mean on 8 held-out digits (mnist test[8000:8008]):
  random inpainting (13 sigma)  3x3 26.8, 3x5 28.0, 5x3 27.8, 4x4 28.4, 4x5 28.5, 5x4 28.0, 5x5 28.0,
                                4x6 28.3, 6x4 28.4, 3x8 27.7; 4x4 at 8 / 18 sigma: 27.0 / 28.1
  4x SR (20 sigma)              3x3 21.2, 4x4 21.9, 3x5 21.6, 5x3 22.6, 4x5 22.2, 5x4 22.7;
                                4x4 at 13 / 30 sigma: 20.4 / 22.0
(SR wants more iterations per block, inpainting more outer steps.)  At 15-16 calls a sample
still costs about 1/200 of DPS's 1000 calls + 1000 backward passes.

Measured on ``pt.toy.bimodal_problem_2d()`` with the exact denoiser (sliced Wasserstein to the
exact posterior, n = 2000; exact-sampling floor 0.06, prior 1.47; DPS with 1000 NFE + 1000 backward
passes 0.39, DAPS 0.54, DiffPIR (100 NFE) 0.61, LATINO (8 NFE) 0.59).  A sweep (one seed each,
CPU): with the defaults (K = N = 3, sigma' = 2 sigma, 500 steps, hidden 64) 0.61-0.66; K = 2,
N = 4: 0.60; sigma' = 4 sigma: 0.62-0.64; 2000 steps with hidden 128: K = N = 3, sigma' = 2 sigma
0.62, and K = 2, N = 4, sigma' = 4 sigma 0.56-0.59 (8 NFE; 1.4-1.5x DPS).  On the d = 16 problem
that setting gives 0.72 (DPS 0.43, DAPS 0.71, DiffPIR 0.73, LATINO 0.77, prior 0.79): 1.7x DPS.
Second sweep (seed 0 unless said; d = 16): sigma' = 8 / 13 sigma 0.73 / 0.75 (no help); 6000
steps 0.64; hidden 256 0.67; adversarial weight 3 0.64; K = 4, N = 2 0.68; **6000 steps with
adversarial weight 3: 0.59 (seed 1: 0.62 vs 0.68 at the old setting), and 0.52 in 2D** (old
0.59): the setting the benchmark and chapter 03 use (``bench.TOY_UD2M``; 1.4x DPS on both
problems).  What remains is the mode weights: each block starts near A^T y and its K re-noise/denoise
steps (at tau with s(tau) ~ sigma') rarely jump between modes 2 apart, so the sampler over-weights
the mode nearest to A^T y; more steps with a larger adversarial weight narrow that (above) without
removing it, and a time-conditioned discriminator did not help.

Departures from the paper and its code, and why:
* Zero-initialised LoRA (B = 0).  The code initialises both factors with Xavier, so its sampler at
  step 0 is not the prior's and the fine-tuning starts from a perturbed network.  With B = 0 the
  adapted denoiser equals the prior exactly before training (tested), which is what "fine-tuning
  a prior" means and what lets the chapter compare trained and untrained samplers.  Consequence:
  at the very first backward pass the A factors get zero gradient (B = 0 blocks it); from the
  second step on every factor moves.  The same holds for the hidden layers of the residual MLP.
* No learned time offsets.  The code adds learned offsets to tau and t (TAUG, TLAT) and casts the
  result to an integer (.long()), so they never receive a gradient: dead parameters.  We learn only
  what gets a gradient (LoRA / residual, lambda); tests check that every trained parameter does.
* No learned rho scale.  sigma' = ``sigma_factor`` sigma for every operator (shipped: 13 for
  inpainting, the code's factor; 20 for SR, where the code's sigma gives 12.91 dB against 24.28),
  the same sigma' in x^(0) (the code: the true sigma; within 0.1 dB) and the standard DDIM eta
  rule (the code: single-step beta_t; within 0.1 dB): ``ud2m_presets``, docs/notes/ud2m.md.
  No hard data replacement for inpainting ((1 - M) x + M y between iterations): the exact prox
  already enforces the data; it is the same for every operator, which the general-operator mode
  needs.
* Exact proxes for every operator of ``pt.operators`` (closed form for SR, where the code
  approximates); a nonlinear A has no A^T y, so its x^(0) drops that term.
* Discriminator with logits and BCE-with-logits (the code applies a sigmoid, then BCEWithLogits:
  a double sigmoid).  Options are typed keyword arguments (the code's argparse type=bool parses
  "False" as true).
* Clipping x^(K) to [-1, 1] only at inference and only for images (the code clips always);
  training sees the unclipped output, so clipping cannot cut gradients.
* The x0 error may be weighted alike at every t (``x0_weighting="uniform"``, used by the shipped
  samplers) instead of by the SNR (the paper's eps loss, the default): see above.
* One outer time per batch (as the paper) but optionally restricted to the sampler's own grid;
  RAM re-initialisation and the JPEG / general-operator HQS variants of the code are not
  reproduced (the code's general-operator HQS scalars are never optimised: a defect).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .checks import check_generator, conform, dtype_of, finite_or_raise
from .checkpoints import (CheckpointError, check_trained_on, prior_fingerprint,
                          read_checkpoint, save_atomic)
from .denoisers import Denoiser, parameters_of
from .nets import seeded_init, time_embedding
from .operators import Blur, Denoising, Inpainting, InverseProblem, Matrix, SuperResolution
from . import ud2m_presets
from .options import Anything, Choice, Flag, Int, Real, check_options
from .progress import bar
from .run_checkpoint import as_run_checkpoint, ud2m_parts, ud2m_settings
from .samplers.base import Step, check_trained_call
from .samplers.diffusion import back_projection, eps_from_x0, initial_noise
from .schedules import randn

__all__ = ["train", "pretrained", "UD2MSampler", "AdaptedDenoiser", "LoRA", "add_lora", "merge_lora",
           "adaptable_layers", "default_lora_layers",
           "unfolded_block", "combined_quadratic", "data_prox", "Discriminator"]

FORMAT = "posterior_tutor.ud2m/1"


# ---------------------------------------------------------------------------------------------
# the unfolded block
# ---------------------------------------------------------------------------------------------
def combined_quadratic(x_prev, x_t, ab: float, rho: float, s: float):
    """(m, r) such that |z - x_prev|^2/(2 rho^2) + |z - x_t/sqrt(ab)|^2/(2 s^2)
    = |z - m|^2/(2 r^2) + const."""
    r2 = 1.0 / (1.0 / rho ** 2 + 1.0 / s ** 2)
    m = r2 * (x_prev / rho ** 2 + math.sqrt(ab) / (1 - ab) * x_t)  # b / s^2 = sqrt(ab) x_t / (1-ab)
    return m, math.sqrt(r2)


_BATCHED_Y_PROX = (Inpainting, Denoising, Blur, SuperResolution)  # their prox broadcasts over y


def data_prox(prob: InverseProblem, z, y, radius, batched_y: bool = False):
    """argmin_x |A x - y|^2/(2 sigma^2) + |x - z|^2/(2 radius^2); ``batched_y``: one y per sample
    (training).  Differentiable in z and in a tensor radius: exactly for linear operators; for a
    nonlinear one through the unrolled Gauss-Newton steps (their Jacobians are taken at detached
    iterates, so it is not the implicit-function gradient, but lambda and z do get one)."""
    if not batched_y:
        return prob.prox(z, y, radius)
    op = prob.operator
    if isinstance(op, Matrix):
        return _matrix_prox_batched(op.A, z, y, radius, prob.sigma)
    if type(op) in _BATCHED_Y_PROX:
        return op.prox(z, y, radius, prob.sigma)
    radius = torch.as_tensor(radius, dtype=z.dtype, device=z.device).expand(z.shape[0])
    return torch.cat([prob.prox(z[i:i + 1], y[i], radius[i:i + 1]) for i in range(z.shape[0])])


def _matrix_prox_batched(A, z, y, radius, sigma):
    A = A.to(z.device)
    s2 = float(sigma) ** 2
    r2 = torch.as_tensor(radius, dtype=torch.float64, device=z.device) ** 2
    lhs = A.T @ A / s2 + torch.eye(A.shape[1], dtype=torch.float64, device=z.device) / r2
    rhs = y.double() @ A / s2 + z.double() / r2
    return torch.linalg.solve(lhs, rhs.T).T.to(z.dtype)


def initial_estimate(prob, x_t, y, ab: float, sp: float, batched_y: bool):
    """x^(0) = (A^T y sqrt(1 - ab) + sqrt(ab) x_t sigma') / sqrt(sigma'^2 + 1 - ab) (the code)."""
    aty = back_projection(prob, y, x_t, batched_y)
    return (aty * math.sqrt(1 - ab) + math.sqrt(ab) * sp * x_t) / math.sqrt(sp ** 2 + 1 - ab)


@dataclass
class BlockStep:
    k: int                  # 1..K
    z: torch.Tensor         # prox output z_k
    noised: torch.Tensor    # z~_k, the denoiser's input at tau
    x: torch.Tensor         # x^(k) = D(z~_k, tau)
    tau: int
    rho: float


def block_levels(sched, t: int, sigma: float, sigma_factor: float):
    """(ab_t, s(t), sigma', rho, tau) of the block at outer time t."""
    ab, s = sched.abar(t).item(), sched.sigma(t).item()
    sp = sigma_factor * sigma
    rho = sp * s / math.sqrt(sp ** 2 + s ** 2)
    return ab, s, sp, rho, sched.t_from_sigma(rho)


def unfolded_block(den, log_lam, prob, x_t, y, t: int, K: int, sigma_factor: float = 2.0,
                   generator=None, batched_y: bool = False, preset: str = "ours"):
    """The block L(x_t, y, t): a ``BlockStep`` per iteration k = 1..K (the last x is x^(K));
    ``preset``: whose sigma' (``ud2m_presets``: "ours" = sigma_factor sigma, or "code")."""
    sp, sp_init = ud2m_presets.sigma_primes(preset, prob, sigma_factor)
    ab, s, sp, rho, tau = block_levels(den.schedule, t, 1.0, sp)
    ab_tau = den.schedule.abar(tau).item()
    x = initial_estimate(prob, x_t, y, ab, sp_init, batched_y)
    for k in range(1, K + 1):
        m, r = combined_quadratic(x, x_t, ab, rho, s)
        z = data_prox(prob, m, y, torch.exp(-0.5 * log_lam) * r, batched_y)
        noise = randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        noised = math.sqrt(ab_tau) * z + math.sqrt(1 - ab_tau) * noise
        x = den(noised, tau)
        yield BlockStep(k, z, noised, x, tau, rho)


# ---------------------------------------------------------------------------------------------
# adapters: LoRA for networks, a residual MLP for exact denoisers
# ---------------------------------------------------------------------------------------------
class LoRA(nn.Module):
    """base(x) + B(A(x)) around a frozen Linear or Conv2d; A has the base layer's geometry and
    ``rank`` outputs (Kaiming init), B is a zero-initialised Linear / 1x1 conv to the outputs."""

    def __init__(self, base: nn.Module, rank: int):
        super().__init__()
        self.base = base.requires_grad_(False)
        if isinstance(base, nn.Linear):
            self.lora_A = nn.Linear(base.in_features, rank, bias=False)
            self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        elif isinstance(base, nn.Conv2d) and base.groups == 1:
            self.lora_A = nn.Conv2d(base.in_channels, rank, base.kernel_size, base.stride,
                                    base.padding, base.dilation, bias=False,
                                    padding_mode=base.padding_mode)
            self.lora_B = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        else:
            raise TypeError(f"LoRA wraps nn.Linear or nn.Conv2d (groups=1), got {base!r}.")
        nn.init.zeros_(self.lora_B.weight)
        self.to(base.weight.device)

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x))


def merged_layer(lora: LoRA) -> nn.Module:
    """The plain layer W + B A that computes what ``lora`` does (one layer instead of three)."""
    base = copy.deepcopy(lora.base)
    with torch.no_grad():
        if isinstance(base, nn.Linear):
            base.weight += lora.lora_B.weight @ lora.lora_A.weight
        else:   # B is a 1x1 conv after A, so B A is a conv with A's geometry
            base.weight += torch.einsum("or,rikl->oikl", lora.lora_B.weight[:, :, 0, 0],
                                        lora.lora_A.weight)
    return base


def merge_lora(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every LoRA folded into its base layer (for sampling: the adapters
    on every layer would otherwise cost ~50% more time per call)."""
    new = copy.deepcopy(net)
    for name, mod in list(new.named_modules()):
        if isinstance(mod, LoRA):
            parent_name, _, child = name.rpartition(".")
            setattr(new.get_submodule(parent_name), child, merged_layer(mod))
    return new


def _adaptable(mod) -> bool:
    return isinstance(mod, nn.Linear) or (isinstance(mod, nn.Conv2d) and mod.groups == 1)


def adaptable_layers(net: nn.Module) -> list[str]:
    """Every layer LoRA can wrap: the Linear and the (ungrouped) Conv2d layers, in order."""
    return [name for name, mod in net.named_modules() if _adaptable(mod)]


def default_lora_layers(net: nn.Module) -> list[str]:
    """Attention projections (modules with ``qkv`` and ``out``/``proj_out``) plus the output layer
    when the network has attention (the paper's choice); otherwise every Linear/Conv2d layer."""
    names = []
    for name, mod in net.named_modules():
        children = dict(mod.named_children())
        if "qkv" in children and ({"out", "proj_out"} & set(children)):
            names += [f"{name}.{c}".lstrip(".") for c in ("qkv", "out", "proj_out")
                      if c in children and _adaptable(children[c])]
    layers = adaptable_layers(net)
    if not layers:
        raise ValueError(f"{type(net).__name__} has no Linear or Conv2d layer to adapt.")
    if names:
        return names + ([layers[-1]] if layers[-1] not in names else [])
    return layers


def add_lora(net: nn.Module, rank: int = 4, layers: list[str] | None = None) -> nn.Module:
    """A frozen copy of ``net`` with LoRA adapters on ``layers`` (default ``default_lora_layers``);
    the original network is left untouched."""
    layers = default_lora_layers(net) if layers is None else list(layers)
    new = copy.deepcopy(net).requires_grad_(False)
    for name in layers:
        parent_name, _, child = name.rpartition(".")
        try:
            parent = new.get_submodule(parent_name)
            base = getattr(parent, child)
        except AttributeError:
            raise ValueError(f"the network has no layer {name!r} to adapt.") from None
        setattr(parent, child, LoRA(base, rank))
    return new


class ResidualMLP(nn.Module):
    """r(x, t): [x flattened, emb(t)] -> SiLU MLP -> x's shape; last layer zero (r = 0 at start)."""

    def __init__(self, dim: int, hidden: int = 64, t_dim: int = 32, T: int = 1000):
        super().__init__()
        self.t_dim, self.T = t_dim, T
        self.body = nn.Sequential(nn.Linear(dim + t_dim, hidden), nn.SiLU(),
                                  nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x, t):
        h = torch.cat([x.flatten(1), time_embedding(t, self.t_dim, self.T).to(x)], dim=1)
        return self.body(h).reshape(x.shape)


class AdaptedDenoiser(Denoiser):
    """The prior's denoiser with its trainable adapter: LoRA inside a copy of the network, or a
    residual network added to the output of a denoiser with no parameters.  Counts its own NFE."""

    def __init__(self, prior: Denoiser, mode: str, rank: int = 4, layers=None, shape=None,
                 hidden: int = 64):
        super().__init__(prior.schedule)
        self.prior, self.mode = prior, mode
        self.shape = tuple(shape) if shape is not None else prior.shape
        self.inner = copy.copy(prior)
        self.residual = None
        self._merged = None   # (adapter tensors' (data_ptr, version), prior with LoRA folded in)
        if mode == "lora":
            self.layers = default_lora_layers(prior.net) if layers is None else list(layers)
            self.inner.net = add_lora(prior.net, rank, self.layers)
            self.adapter = self.inner.net
        elif mode == "residual":
            self.layers = []
            self.residual = ResidualMLP(math.prod(self.shape), hidden, T=prior.schedule.T)
            self.adapter = self.residual
        else:
            raise ValueError(f"unknown adapter mode {mode!r}; use 'lora' or 'residual'.")

    @property
    def device(self):
        return getattr(self.prior, "device", torch.device("cpu"))

    def to(self, device):
        self.adapter.to(device)
        return self

    def trainable_parameters(self) -> list[torch.Tensor]:
        return [p for p in self.adapter.parameters() if p.requires_grad]

    def adapter_state(self) -> dict:
        if self.mode == "residual":
            return dict(self.residual.state_dict())
        return {k: v for k, v in self.inner.net.state_dict().items() if ".lora_" in k}

    def load_adapter_state(self, state: dict) -> None:
        mine = self.adapter_state()
        if set(mine) != set(state) or any(mine[k].shape != state[k].shape for k in mine):
            raise CheckpointError("the adapter weights in the checkpoint do not fit this prior's "
                                  "network (different layers, rank or size).")
        target = self.residual if self.mode == "residual" else self.inner.net
        target.load_state_dict(state, strict=False)

    def _merged_inner(self):
        """The prior with its LoRA folded in, rebuilt whenever an adapter weight has changed."""
        key = tuple((p.data_ptr(), p._version) for p in self.trainable_parameters())
        if self._merged is None or self._merged[0] != key:
            inner = copy.copy(self.inner)
            inner.net = merge_lora(self.inner.net)
            self._merged = (key, inner)
        return self._merged[1]

    def _x0(self, x_t, t):
        fold = self.mode == "lora" and not torch.is_grad_enabled()   # sampling: merged weights
        out = (self._merged_inner() if fold else self.inner)._x0(x_t, t)
        if self.residual is not None:
            out = out + self.residual(x_t, t)
        return out


# ---------------------------------------------------------------------------------------------
# the conditional discriminator
# ---------------------------------------------------------------------------------------------
def y_as_image(prob: InverseProblem, y, shape):
    """y (batched) as images of x's size: itself, upsampled (nearest), or A^T y."""
    H, W = shape[-2:]
    if y.ndim == 4 and tuple(y.shape[-2:]) == (H, W):
        return y
    if y.ndim == 4:
        return F.interpolate(y, size=(H, W), mode="nearest")
    if prob.operator.linear:
        return prob.operator.adjoint(y)
    raise ValueError("the discriminator needs y as an image (or a linear operator for A^T y).")


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


def discriminator_features(prob, y, shape):
    return y_as_image(prob, y, shape) if len(shape) == 3 else y.flatten(1)


def discriminator_loss(disc, x0, x_hat, y_feat, gp_weight: float):
    """1/2 BCE(D(x0), 1) + 1/2 BCE(D(x_hat), 0) + gp_weight/2 E|grad_x D(x0)|^2 (R1 penalty,
    zero-centred on the real samples)."""
    real = x0.detach().requires_grad_(True)
    d_real = disc(real, y_feat)
    d_fake = disc(x_hat.detach(), y_feat)
    loss = 0.5 * F.softplus(-d_real).mean() + 0.5 * F.softplus(d_fake).mean()
    if gp_weight > 0:
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        loss = loss + 0.5 * gp_weight * grad.flatten(1).pow(2).sum(1).mean()
    return loss


# ---------------------------------------------------------------------------------------------
# the sampler
# ---------------------------------------------------------------------------------------------
class UD2MSampler:
    """A trained unfolded sampler: ``sample``, ``iterate``, ``save`` / ``load``.

    ``denoiser`` is the adapted denoiser (its ``nfe`` counts the network calls), ``lam`` the
    learned lambda, ``losses`` the training curve (sampler loss per step; ``loss_parts``: per
    term, "x0", "adv", "lpips", "disc")."""

    def __init__(self, prior: Denoiser, config: dict, problem: InverseProblem | None = None,
                 denoiser: AdaptedDenoiser | None = None):
        self.prior, self.config, self.problem = prior, dict(config), problem
        self.shape = tuple(config["shape"])
        self.denoiser = denoiser or AdaptedDenoiser(prior, config["mode"], config["rank"],
                                                    config["layers"], self.shape,
                                                    config["hidden"])
        self.log_lam = nn.Parameter(torch.zeros((), device=self.denoiser.device))
        self.discriminator = None
        self.losses: list[float] = []
        self.loss_parts: dict = {}

    def __repr__(self):
        c = self.config
        return (f"UD2MSampler(K={c['K']}, N={c['N']}, {c['mode']} adapter, "
                f"lambda={self.lam:.3g}, trained {len(self.losses)} steps)")

    @property
    def K(self) -> int:
        return self.config["K"]

    @property
    def N(self) -> int:
        return self.config["N"]

    @property
    def nfe_per_sample(self) -> int:
        return self.K * self.N

    @property
    def lam(self) -> float:
        return float(self.log_lam.detach().exp())

    @property
    def grid(self) -> list[int]:
        return self.prior.schedule.timesteps(self.N, "quadratic")

    def trainable_parameters(self) -> list[torch.Tensor]:
        return self.denoiser.trainable_parameters() + [self.log_lam]

    def with_calls(self, K: int | None = None, N: int | None = None) -> "UD2MSampler":
        """The same trained adapters and lambda (shared, not copied) run as a K x N sampler:
        they are shared across k and t, so any K and N are defined; what they are worth is
        measured, not promised (see the module docstring's table)."""
        K, N = self.K if K is None else K, self.N if N is None else N
        _check_calls(self.prior.schedule, K, N)
        other = copy.copy(self)
        other.config = dict(self.config, K=K, N=N)
        return other

    def block(self, x_t, y, t, problem, generator=None, batched_y=False):
        """The unfolded block at outer time t (an iterator of ``BlockStep``)."""
        return unfolded_block(self.denoiser, self.log_lam, problem, x_t, y, t, self.K,
                              self.config["sigma_factor"], generator, batched_y, self.preset)

    @property
    def preset(self) -> str:
        """Whose noise bookkeeping the sampler runs (``posterior_tutor/ud2m_presets.py``)."""
        return self.config.get("preset", "ours")

    def with_preset(self, preset: str) -> "UD2MSampler":
        """The same adapters and lambda (shared) run with another noise bookkeeping: "ours"
        (sigma_factor sigma everywhere, standard DDIM eta) or "code" (the public code's)."""
        other = copy.copy(self)
        other.config = dict(self.config, preset=ud2m_presets.check_preset(preset))
        return other

    # -- sampling ------------------------------------------------------------------------------
    def iterate(self, y, n: int = 1, generator=None, problem=None):
        """``Step`` records of the K N inner steps: x is the state (x_t; after a block's last
        iteration the next DDIM state, and the sample at the end), x0 the block's x^(k)."""
        prob, y = self._check_sampling(y, n, generator, problem)
        return self._steps(prob, y, n, generator)

    def _steps(self, prob, y, n, generator, start: int = 0, x=None):
        """The chain from outer step ``start`` (0: from noise; else from the state ``x``)."""
        if x is None:
            x = initial_noise(n, self.shape, y, generator, self.denoiser)
        grid, image = self.grid, len(self.shape) == 3
        i = 0
        with torch.no_grad():
            for j, t in enumerate(grid[start:], start):
                t_next = grid[j + 1] if j + 1 < len(grid) else -1
                for b in self.block(x, y, t, prob, generator):
                    state = x
                    if b.k == self.K:
                        x0 = b.x.clamp(-1, 1) if image else b.x
                        eps = eps_from_x0(self.prior.schedule, x, x0, t)
                        x = state = ud2m_presets.ddim_step(self.prior.schedule, x0, eps, t,
                                                           t_next, self.config["eta"],
                                                           generator, self.preset)
                    yield Step(i, t if b.k < self.K else max(t_next, 0), state, b.x,
                               f"outer {j + 1}/{len(grid)}, block {b.k}/{self.K}",
                               {"prox": b.z, "noised": b.noised, "t": t, "tau": b.tau,
                                "rho": b.rho, "lam": self.lam, "nfe": i + 1})
                    i += 1

    def sample(self, y, n: int = 1, generator=None, problem=None) -> torch.Tensor:
        """n samples (n, ...) for one measurement y (no sample dimension); no gradients."""
        last = None
        for last in self.iterate(y, n, generator, problem):
            pass
        return last.x.detach()

    def sample_from(self, x_t, t: int, y, generator=None, problem=None) -> torch.Tensor:
        """The rest of the chain from the state x_t (n, ...) at the grid time t: one sample per
        row.  With x_t = add_noise(x0, t) for the true x0 it shows what the later blocks can do
        when the earlier ones were perfect (chapter 03)."""
        if not torch.is_tensor(x_t) or tuple(x_t.shape[1:]) != self.shape:
            raise ValueError(f"x_t must be a batch (n, {', '.join(map(str, self.shape))}) of "
                             f"states, got {getattr(x_t, 'shape', type(x_t).__name__)}.")
        prob, y = self._check_sampling(y, x_t.shape[0], generator, problem)
        x_t = conform(x_t, y.dtype, "x_t")
        if x_t.device != y.device or not torch.isfinite(x_t).all():
            raise ValueError(f"x_t must be finite and on y's device ({y.device}); got "
                             f"{x_t.device}, finite: {bool(torch.isfinite(x_t).all())}.")
        if t not in self.grid:
            raise ValueError(f"t = {t} is not one of this sampler's outer times {self.grid}.")
        last = None
        for last in self._steps(prob, y, x_t.shape[0], generator, self.grid.index(t), x_t):
            pass
        return last.x.detach()

    def _check_sampling(self, y, n, generator, problem):
        """(problem, y in the sampler's dtype) after checking the call."""
        if isinstance(y, torch.Tensor):
            y = conform(y, dtype_of(self.trainable_parameters()), "y")
        return check_trained_call(problem, self.problem, y, n, generator, self.shape,
                                  self.denoiser.device), y

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Atomic save of adapter, lambda, config, training curve and a fingerprint of the prior."""
        path = Path(path)
        save_atomic({"format": FORMAT, "config": _plain(self.config),
                     "adapter": {k: v.detach().cpu()
                                 for k, v in self.denoiser.adapter_state().items()},
                     "log_lambda": self.log_lam.detach().cpu(),
                     "prior_fingerprint": prior_fingerprint(self.prior, self.shape).cpu(),
                     "losses": torch.tensor(self.losses, dtype=torch.float64)}, path)
        return path

    @classmethod
    def load(cls, path, den: Denoiser, problem: InverseProblem | None = None) -> "UD2MSampler":
        """Rebuild a saved sampler on the prior ``den`` (the one it was trained on)."""
        return cls.from_checkpoint(read_checkpoint(path), den, problem, path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, den: Denoiser, problem=None, path="checkpoint"):
        """Rebuild a sampler from an already-read checkpoint dict (see ``load``)."""
        if ckpt.get("format") != FORMAT or not {"adapter", "log_lambda"} <= set(ckpt):
            raise CheckpointError(f"{path} is not a UD2M sampler checkpoint (format "
                                  f"{ckpt.get('format')!r}, expected {FORMAT!r}).")
        config = dict(ckpt["config"])
        _check_prior_matches(den, config, ckpt.get("prior_fingerprint"), path)
        ud = cls(den, config, problem)
        ud.denoiser.load_adapter_state({k: v.to(ud.denoiser.device)
                                        for k, v in ckpt["adapter"].items()})
        with torch.no_grad():
            ud.log_lam.copy_(ckpt["log_lambda"])
        ud.losses = ckpt.get("losses", torch.zeros(0)).tolist()
        return ud


SHIPPED = ("mnist-random-inpainting", "mnist-sr4")


def pretrained(name: str = "mnist-random-inpainting", den: Denoiser | None = None,
               device=None) -> UD2MSampler:
    """A shipped UD2M sampler (``data/ud2m_<name>/``) on the shipped MNIST prior, sha256-checked.

    Its default problem is its training task at sigma = 0.05 (random inpainting: one random 50% mask,
    seed 0); pass ``problem=`` to ``sample`` for your own mask or operator.  ``den``: the shipped
    MNIST prior (loaded when not given; another prior is refused)."""
    from .checkpoints import pretrained as pretrained_prior, read_verified, shipped_path
    from .tasks import image_problem
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped UD2M sampler {name!r}; shipped: {', '.join(SHIPPED)}.")
    path = shipped_path(f"ud2m_{name.replace('-', '_')}", "sampler.pt", f"UD2M sampler {name}")
    ckpt, card = read_verified(path, what="UD2M sampler")
    den = den if den is not None else pretrained_prior("mnist", device)
    prob = image_problem(card["task"], card["sigma"], generator=torch.Generator().manual_seed(0))
    ud = UD2MSampler.from_checkpoint(ckpt, den, prob, path)
    ud.card = card
    return ud


def _plain(config: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()}


def _check_prior_matches(den, config, fingerprint, path):
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    mode = "lora" if parameters_of(den) else "residual"
    if mode != config["mode"]:
        raise CheckpointError(f"{path} holds a {config['mode']} adapter, but this prior calls for "
                              f"a {mode} adapter: it is not the prior the sampler was trained on.")
    if den.schedule.T != config["T"]:
        raise CheckpointError(f"{path} was trained with T={config['T']}, this prior has "
                              f"T={den.schedule.T}.")
    check_trained_on(den, config["shape"], fingerprint, path)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
_VECTOR_DEFAULTS = dict(steps=500, batch=256, lr=1e-3, adv_weight=1.0, gp_weight=0.1)
_IMAGE_DEFAULTS = dict(steps=2000, batch=32, lr=1e-4, adv_weight=1.0, gp_weight=0.01)
TRAIN_OPTIONS = {   # kind and range of each option of train() (options.py); None: the default
    "steps": Int(0, optional=True), "batch": Int(1, optional=True),
    "lr": Real(0, low_open=True, optional=True), "K": Int(1), "N": Int(1), "eta": Real(0, 1),
    "rank": Int(1), "adv_weight": Real(0, optional=True), "gp_weight": Real(0, optional=True),
    "lpips_weight": Real(0), "lpips_net": Choice("vgg", "alex", "squeeze", "vgg16"),
    "operators": Anything(), "sigma_factor": Real(0, low_open=True, optional=True),
    "train_times": Choice("uniform", "grid"), "lora_layers": Anything(), "hidden": Int(1),
    "x0_weighting": Choice("snr", "uniform"), "init": Anything(),
    "progress": Flag(optional=True, hint="None: on except under pytest"),
    "checkpoint": Anything(), "checkpoint_every": Int(1, hint="steps between saved states")}


def measure_batch(prob: InverseProblem, x0, generator=None):
    """y_i = A(x0_i) + sigma n_i for a batch (one measurement per signal)."""
    clean = prob.operator(x0)
    return clean + prob.sigma * randn(clean.shape, generator=generator, device=x0.device,
                                      dtype=x0.dtype)


def problem_for_batch(prob, operators, generator):
    """The training problem of this batch: ``prob``, or a fresh one from ``operators``."""
    if operators is None:
        return prob
    if callable(operators):
        new = operators()
    else:
        i = int(torch.randint(len(operators), (1,), generator=generator,
                              device=_gen_device(generator)))
        new = operators[i]
    if not isinstance(new, InverseProblem):
        raise TypeError(f"operators must give InverseProblems, got {type(new).__name__}.")
    return new


def _gen_device(generator):
    return generator.device if generator is not None else "cpu"


def draw_time(ud: UD2MSampler, how: str, generator) -> int:
    """One outer time per batch: U{1..T-1} (paper) or one of the sampler's N grid times."""
    dev = _gen_device(generator)
    if how == "grid":
        grid = ud.grid
        return grid[int(torch.randint(len(grid), (1,), generator=generator, device=dev))]
    return int(torch.randint(1, ud.prior.schedule.T, (1,), generator=generator, device=dev))


def sampler_loss(ud: UD2MSampler, prob, x0, y, t: int, weights: dict, generator=None,
                 x_hat=None):
    """(total, parts, x_hat): SNR-weighted x0 error of one block at t, + adversarial, + LPIPS."""
    sched = ud.prior.schedule
    if x_hat is None:
        x_t = sched.add_noise(x0, t, generator=generator)
        for b in ud.block(x_t, y, t, prob, generator, batched_y=True):
            x_hat = b.x
    ab = sched.abar(t).item()
    weight = ab / (1 - ab) if weights.get("x0_weighting", "snr") == "snr" else 1.0
    mse = weight * (x_hat - x0).flatten(1).pow(2).mean(1).mean()
    parts, total = {"x0": mse}, mse
    if weights["adv_weight"] > 0 and ud.discriminator is not None:
        feats = discriminator_features(prob, y, ud.shape)
        parts["adv"] = F.softplus(-ud.discriminator(x_hat, feats)).mean()
        total = total + weights["adv_weight"] * parts["adv"]
    if weights["lpips_weight"] > 0:
        from .metrics import lpips
        parts["lpips"] = lpips(x_hat, x0, net=weights["lpips_net"]).mean()
        total = total + weights["lpips_weight"] * parts["lpips"]
    return total, parts, x_hat


def train(den: Denoiser, prob: InverseProblem, xs_train: torch.Tensor, generator=None,
          steps: int | None = None, batch: int | None = None, lr: float | None = None,
          K: int = 3, N: int = 3, eta: float = 0.8, rank: int = 4,
          adv_weight: float | None = None, gp_weight: float | None = None,
          lpips_weight: float = 0.0, lpips_net: str = "vgg", operators=None,
          sigma_factor: float | None = None, train_times: str = "uniform", lora_layers=None,
          hidden: int = 64, x0_weighting: str = "snr", init: "UD2MSampler | None" = None,
          progress: bool | None = None, checkpoint=None, checkpoint_every: int = 100,
          **unknown) -> UD2MSampler:
    """Fine-tune ``den`` into a K x N unfolded posterior sampler for ``prob`` (UD2M).

    xs_train : clean signals (n, ...) of the prior's shape; measurements are made on the fly.
    generator : draws everything (adapter initialisation, batches, times, noise): the same seed
               gives the same sampler.  Returns a ``UD2MSampler``.
    steps, batch, lr : vectors (toy) 500, 256, 1e-3; images 2000, 32, 1e-4 (paper: lr 1e-4,
               steps = 0 gives the untrained sampler (adapters at zero, lambda = 1);
               batch 32, 400 epochs of 16k images on MNIST).
    K, N, eta : iterations per block, outer DDIM steps, DDIM eta; paper 3, 3, 0.8.  NFE = K N.
               eta has its DDIM meaning; the paper's 0.8 is under the code's rule (1.3% fresh
               noise at 999 -> 444, not 64%): ``with_preset("code")``.
    rank     : LoRA rank (paper 5); ``lora_layers`` names the adapted layers (default: attention
               projections + output layer, or every Linear layer of a network without attention).
    adv_weight, gp_weight : weight of the adversarial term and of the discriminator's R1 penalty;
               vectors 1.0 and 0.1, images 1.0 and 0.01 (paper: 1 and 0.01 on MNIST);
               adv_weight=0 trains without discriminator.
    lpips_weight, lpips_net : LPIPS term (paper 0.1, VGG), images only; 0 = off (default).
    operators : None, a callable returning an InverseProblem, or a list of them: a fresh problem
               per batch ("general operator" training; with the discriminator on, every problem
               must give measurements of one shape); ``prob`` stays the default at inference.
    sigma_factor : sigma' = sigma_factor sigma (default 2, or init's; the code-equivalent is 1,
               13 for inpainting: ``UD2MSampler.with_preset("code")``).
    train_times : "uniform" (paper, t ~ U{1..T-1}) or "grid" (only the N times the sampler visits).
    hidden   : width of the residual MLP used for a denoiser without parameters.
    x0_weighting : "snr" (paper: ab_t / (1 - ab_t) |x^(K) - x0|^2 = the eps error) or "uniform"
               (|x^(K) - x0|^2 at every t: the early blocks, which decide the digit, are not
               weighted down by SNR ~ 1e-4).
    init     : a trained ``UD2MSampler`` on the same prior to continue from: its adapters and
               lambda are copied (``init`` itself is not changed) and its training curve is
               continued; rank and adapted layers must match (default: init's layers), K and N
               may differ.  The learning rate starts a fresh cosine decay (a warm restart).
    progress : tqdm bar (None: on, except under pytest; ``posterior_tutor.progress``).
    checkpoint, checkpoint_every : a folder (or a ``RunCheckpoint``) for a resumable run: every
               ``checkpoint_every`` steps ``folder/last.pt`` holds the whole training state; called
               again with the same folder and settings, training resumes there and ends with the
               weights of an uninterrupted run (``posterior_tutor.run_checkpoint``; needs
               ``generator``).  Other settings than the run started with are refused.
    """
    if unknown:
        raise TypeError(f"ud2m.train has no option(s) {sorted(unknown)}; its options are steps, "
                        "batch, lr, K, N, eta, rank, adv_weight, gp_weight, lpips_weight, "
                        "lpips_net, operators, sigma_factor, train_times, lora_layers, hidden, "
                        "x0_weighting, init, progress, checkpoint, checkpoint_every.")
    check_options("ud2m.train", TRAIN_OPTIONS, {k: v for k, v in locals().items()
                                                if k in TRAIN_OPTIONS})
    _check_objects(operators, lora_layers)
    check_generator(generator)
    if isinstance(xs_train, torch.Tensor):   # the adapters' dtype: the network's, else the default
        xs_train = conform(xs_train, dtype_of(den) or torch.get_default_dtype(), "xs_train")
    run = as_run_checkpoint(checkpoint, checkpoint_every)
    if x0_weighting not in ("snr", "uniform"):
        raise ValueError(f"x0_weighting must be 'snr' or 'uniform', got {x0_weighting!r}.")
    if isinstance(init, UD2MSampler):   # anything else is refused by continue_from
        lora_layers = init.config["layers"] if lora_layers is None else lora_layers
        sigma_factor = init.config["sigma_factor"] if sigma_factor is None else sigma_factor
    sigma_factor = 2.0 if sigma_factor is None else sigma_factor
    shape = _check_training_inputs(den, prob, xs_train, K, N, eta, rank, train_times)
    opts = dict(_IMAGE_DEFAULTS if len(shape) == 3 else _VECTOR_DEFAULTS)
    given = dict(steps=steps, batch=batch, lr=lr, adv_weight=adv_weight, gp_weight=gp_weight)
    opts.update({k: v for k, v in given.items() if v is not None})
    _check_numbers(opts, lpips_weight, sigma_factor)
    mode = "lora" if parameters_of(den) else "residual"
    config = dict(K=int(K), N=int(N), eta=float(eta), rank=int(rank), mode=mode, shape=list(shape),
                  layers=None if lora_layers is None else list(lora_layers), hidden=int(hidden),
                  sigma_factor=float(sigma_factor), T=den.schedule.T, train_times=train_times,
                  **{k: opts[k] for k in ("steps", "batch", "lr", "adv_weight", "gp_weight")},
                  lpips_weight=float(lpips_weight), x0_weighting=x0_weighting)
    with seeded_init(generator):
        ud = UD2MSampler(den, config, prob)
        ud.config["layers"] = ud.denoiser.layers
        if init is not None:
            continue_from(ud, init)
        if opts["adv_weight"] > 0:
            y_dim = _y_width(prob, xs_train[:1], shape)
            ud.discriminator = Discriminator(shape, y_dim).to(ud.denoiser.device)
    weights = dict(adv_weight=opts["adv_weight"], lpips_weight=float(lpips_weight),
                   lpips_net=lpips_net, x0_weighting=x0_weighting)
    if lpips_weight > 0:
        _check_lpips(shape, lpips_net, xs_train)
    _fit(ud, prob, xs_train.to(ud.denoiser.device), opts, weights, operators, train_times,
         generator, progress, run)
    return ud


def continue_from(ud: UD2MSampler, init) -> None:
    """Start ``ud`` (freshly built, untrained) at ``init``'s adapters, lambda and curve."""
    if not isinstance(init, UD2MSampler):
        raise TypeError(f"init must be a trained UD2MSampler, got {type(init).__name__}.")
    if init.prior is not ud.prior:
        raise ValueError("init was trained on another prior object; load it on this prior "
                         "(UD2MSampler.load(path, den)) and pass that.")
    theirs = {k: init.config[k] for k in ("mode", "rank", "layers", "hidden")}
    mine = {k: ud.config[k] for k in theirs}
    if theirs != mine:
        diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
        raise ValueError(f"init's adapter does not match the one asked for: (asked, init's) "
                         f"{diff}; pass rank= and lora_layers= as init was trained.")
    ud.denoiser.load_adapter_state({k: v.detach().clone()
                                    for k, v in init.denoiser.adapter_state().items()})
    with torch.no_grad():
        ud.log_lam.copy_(init.log_lam.detach())
    ud.losses = list(init.losses)
    ud.loss_parts = {k: list(v) for k, v in init.loss_parts.items()}
    ud.config["init_steps"] = len(init.losses)


def _fit(ud, prob, data, opts, weights, operators, train_times, generator, progress, run=None):
    """The alternating loop: one discriminator update, one sampler update per step; ``run``
    (a RunCheckpoint) saves it every few steps and resumes it."""
    opt = torch.optim.AdamW([{"params": ud.denoiser.trainable_parameters(), "weight_decay": 0.01},
                             {"params": [ud.log_lam], "weight_decay": 0.0}], lr=opts["lr"])
    opt_d = (torch.optim.AdamW(ud.discriminator.parameters(), lr=opts["lr"], betas=(0.5, 0.999))
             if ud.discriminator is not None else None)
    decays = [torch.optim.lr_scheduler.CosineAnnealingLR(o, opts["steps"],
                                                         eta_min=0.05 * opts["lr"])
              for o in (opt, opt_d) if o is not None]
    start = 0
    if run is not None:
        run.bind(ud2m_settings(ud, prob, data, weights, operators), ud2m_parts(ud, opt, opt_d,
                 decays), generator, what="ud2m.train")
        start = run.resume()
    rng = bar(range(start, opts["steps"]), "training UD2M", total=opts["steps"],
              progress=progress, initial=start)
    dev = data.device
    for step in rng:
        idx = torch.randint(data.shape[0], (opts["batch"],), generator=generator,
                            device=_gen_device(generator)).to(dev)
        x0 = data[idx]
        pb = problem_for_batch(prob, operators, generator)
        y = measure_batch(pb, x0, generator)
        t = draw_time(ud, train_times, generator)
        x_t = ud.prior.schedule.add_noise(x0, t, generator=generator)
        x_hat = None
        for b in ud.block(x_t, y, t, pb, generator, batched_y=True):
            x_hat = b.x
        parts_d = {}
        if opt_d is not None:
            feats = discriminator_features(pb, y, ud.shape)
            loss_d = discriminator_loss(ud.discriminator, x0, x_hat, feats, opts["gp_weight"])
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            parts_d["disc"] = loss_d
        total, parts, _ = sampler_loss(ud, pb, x0, y, t, weights, generator, x_hat=x_hat)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(ud.trainable_parameters(), 1.0)
        opt.step()
        for d in decays:
            d.step()
        ud.losses.append(float(total.detach()))
        finite_or_raise(ud.losses[-1], "the UD2M training loss", f"at step {len(ud.losses)}",
                        f"lower lr (now {opts['lr']:g}) or the loss weights, or check the data.")
        for k, v in {**parts, **parts_d}.items():
            ud.loss_parts.setdefault(k, []).append(float(v.detach()))
        if run is not None:
            run.step_done(step + 1, opts["steps"])
    for p in ud.trainable_parameters():
        finite_or_raise(p.detach(), "a UD2M weight", "after training",
                        f"lower lr (now {opts['lr']:g}).")


def _check_objects(operators, lora_layers):
    """operators: None, a callable or a non-empty list of problems; lora_layers: None or names."""
    if not (operators is None or callable(operators) or (
            isinstance(operators, (list, tuple)) and operators
            and all(isinstance(p, InverseProblem) for p in operators))):
        raise TypeError("operators must be None, a callable returning an InverseProblem or a "
                        f"non-empty list of InverseProblems, got {operators!r}.")
    if not (lora_layers is None or (isinstance(lora_layers, (list, tuple))
                                    and all(isinstance(v, str) for v in lora_layers))):
        raise TypeError(f"lora_layers must be None or a list of layer names, got {lora_layers!r}.")


def _y_width(prob, x_one, shape) -> int:
    """Channels of y as an image (images) or entries of y (vectors), for the discriminator."""
    y = prob.operator(x_one)
    if len(shape) == 3:
        return y_as_image(prob, y, shape).shape[1]
    return y[0].numel()


def _check_lpips(shape, net, xs):
    if len(shape) != 3:
        raise ValueError("lpips_weight > 0 needs images (n, C, H, W); LPIPS is not defined for "
                         "vectors.")
    from .metrics import lpips
    lpips(xs[:1], xs[:1], net=net)   # raises LPIPSWeightsUnavailable now, not mid-training


def _check_training_inputs(den, prob, xs, K, N, eta, rank, train_times) -> tuple:
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if not isinstance(prob, InverseProblem):
        raise TypeError(f"prob must be an InverseProblem, got {type(prob).__name__}.")
    if not isinstance(xs, torch.Tensor) or xs.ndim < 2 or xs.shape[0] < 1:
        raise ValueError("xs_train must be a tensor of clean signals (n, ...), n >= 1; got "
                         f"{getattr(xs, 'shape', type(xs).__name__)}.")
    if not torch.isfinite(xs).all():
        raise ValueError(f"xs_train contains {(~torch.isfinite(xs)).sum().item()} NaN or Inf "
                         "value(s); clean the training data first.")
    shape = tuple(xs.shape[1:])
    if den.shape is not None and shape != tuple(den.shape):
        raise ValueError(f"xs_train holds signals of shape {shape} but the prior models signals "
                         f"of shape {tuple(den.shape)}.")
    prob.operator.output_shape_for(shape)
    if prob.operator.in_shape is not None and shape != tuple(prob.operator.in_shape):
        raise ValueError(f"xs_train holds signals of shape {shape} but {prob.operator!r} acts on "
                         f"{tuple(prob.operator.in_shape)}.")
    _check_calls(den.schedule, K, N)
    _check_positive_int("rank", rank)
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must be in [0, 1], got {eta}.")
    if train_times not in ("uniform", "grid"):
        raise ValueError(f"train_times must be 'uniform' or 'grid', got {train_times!r}.")
    return shape


def _check_positive_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}.")


def _check_calls(schedule, K, N):
    """K iterations per block and N outer steps: positive integers, N placeable on the schedule."""
    _check_positive_int("K", K)
    _check_positive_int("N", N)
    schedule.timesteps(N, "quadratic")   # N too large for the schedule raises here


def _check_numbers(opts, lpips_weight, sigma_factor):
    for name, least in (("steps", 0), ("batch", 1)):   # steps = 0: the untrained sampler
        v = opts[name]
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {v!r}.")
    if not opts["lr"] > 0:
        raise ValueError(f"lr must be > 0, got {opts['lr']}.")
    for name, v in (("adv_weight", opts["adv_weight"]), ("gp_weight", opts["gp_weight"]),
                    ("lpips_weight", lpips_weight)):
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number >= 0, got {v}.")
    if not (sigma_factor > 0 and math.isfinite(sigma_factor)):
        raise ValueError(f"sigma_factor must be a finite number > 0, got {sigma_factor}.")
