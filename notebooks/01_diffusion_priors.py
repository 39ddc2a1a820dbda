# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 01: diffusion models as priors
#
# Chapter 00 built inverse problems whose posterior we know exactly. This chapter teaches the
# priors the rest of the course uses, diffusion models; chapter 02 combines such a prior with a
# measurement.
#
# **Learning outcomes.** After this chapter you can
#
# * derive the one-jump form of the **forward noising** process and read its schedule: when the
#   signal power falls below the noise power;
# * derive **Tweedie's formula** and explain why a denoiser is a *posterior mean* (blurred at high
#   noise);
# * derive the **DDIM** update from the forward marginals, state the **DDPM** one, and build a
#   sampler of the 2D toy prior, scored against exact samples;
# * say where a network trained by denoising score matching is accurate, and judge an image prior
#   with the sliced Wasserstein and Fréchet distances against the right yardstick.
#
# **Prerequisites.** Chapter 00 (Bayes' rule, Gaussian mixtures, the Kalman update, SW and its
# noise floor in §4); the Gaussian density and its gradient; a PyTorch training loop.
#
# **Study time.** About 3 hours: 1.5 hours of reading, 1.5 hours for exercises 01.1-01.5.
#
# As in chapter 00, every claim the text makes is checked by an `assert`. Set
# `POSTERIOR_TUTOR_FAST=1` for a quick run (fewer training and sampling steps; every code path and
# every check still runs). The two trainings (a 2D network and a small image prior) are read from
# stored runs; `RECOMPUTE = True` below reruns them.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import math
from functools import partial

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt
from posterior_tutor.metrics import frechet

DEVICE = pt.default_device()       # CUDA when present (or POSTERIOR_TUTOR_DEVICE), else CPU
RECOMPUTE = False                  # True: rerun the stored heavy parts (full mode, minutes)
FAST = pt.fast_mode()
torch.set_num_threads(1)    # small networks: one thread is fastest, more only add waiting
print(f"device: {DEVICE}, fast mode: {FAST}, recompute stored runs: {RECOMPUTE}")


def seeded(seed):
    """A fresh generator on DEVICE: every random draw in this notebook is reproducible."""
    return torch.Generator(device=DEVICE).manual_seed(seed)


# %% [markdown]
# ## 1. Forward noising
#
# A diffusion model is defined by a fixed way of *destroying* data. Starting from a clean
# $x_0 \sim p$, each of $T = 1000$ steps shrinks the signal a little and adds a little Gaussian noise:
#
# $$ x_t = \sqrt{1 - \beta_t}\, x_{t-1} + \sqrt{\beta_t}\, \varepsilon_t, \qquad
#    \varepsilon_t \sim \mathcal N(0, I) \text{ independent}, $$
#
# with $\beta_t$ growing linearly from $10^{-4}$ to $0.02$ (`pt.VPSchedule()`). Write
# $\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)$ for the product of the per-step factors
# (`sched.abar(t)`). To train and to sample we need $x_t$ directly from $x_0$, without running
# $t$ steps.
#
# ### Exercise 01.1 (derive, then verify): forward noising in one jump
#
# Show by induction on $t$ that, given $x_0$, $x_t = a_t\, x_0 + b_t\, \varepsilon$ with a single
# $\varepsilon \sim \mathcal N(0, I)$, and find $a_t$ and $b_t$ in terms of $\bar\alpha_t$. Then
# write `add_noise(x0, t, eps, sched)` returning $x_t$ for an integer time `t`. The checker compares
# it with the library's `sched.add_noise` on random inputs at three times.

# %% tags=["exercise"]
# Exercise 01.1: your answer
def add_noise(x0, t, eps, sched):
    """x_t from x0 and the noise eps, in one jump."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("01.1", add_noise)

# %% [markdown]
# **The reveal.** Suppose $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\varepsilon$.
# One more step multiplies the signal by $\sqrt{1-\beta_t}$, giving $\sqrt{(1-\beta_t)\bar\alpha_{t-1}}
# = \sqrt{\bar\alpha_t}$, and adds independent noise: the variances of independent Gaussians add,
# $(1-\beta_t)(1-\bar\alpha_{t-1}) + \beta_t = 1 - \bar\alpha_t$. Hence
#
# $$ x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon . $$
#
# The coefficients are square roots because $\bar\alpha_t$ and $1 - \bar\alpha_t$ are the signal
# and noise *variances*. The process is **variance preserving**: if $x_0$ has unit variance, so has
# every $x_t$. Dividing by $\sqrt{\bar\alpha_t}$ gives the equivalent "variance exploding" view
# $x_t/\sqrt{\bar\alpha_t} = x_0 + s(t)\,\varepsilon$ with noise level
# $s(t) = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$: the clean signal plus noise of standard deviation
# $s(t)$. `sched.add_noise(x0, t, noise)` is exactly this formula:

# %%
sched = pt.VPSchedule()
x0_demo = torch.tensor([[2.0, 0.0], [-1.0, 1.7]])
eps_demo = torch.randn(x0_demo.shape, generator=seeded(0), device=DEVICE).cpu()
ab = sched.abar(250)
by_hand = ab.sqrt() * x0_demo + (1 - ab).sqrt() * eps_demo
assert torch.allclose(sched.add_noise(x0_demo, 250, noise=eps_demo), by_hand.float())

# %% [markdown]
# ### Exercise 01.2 (predict, then run): when does the noise win?
#
# The signal-to-noise ratio of $x_t$ is $\bar\alpha_t / (1 - \bar\alpha_t)$: it crosses 1 when
# $\bar\alpha_t = 1/2$. With $\beta_t$ growing linearly from $10^{-4}$ to $0.02$ over the 1000
# steps, predict the first time `t_half` (an integer between 0 and 999) at which
# $\bar\alpha_t < 1/2$. The next cell computes $\bar\alpha_t$ from the betas for the whole schedule;
# the check passes within $20\%$ of the measured time.

# %% tags=["exercise"]
# Exercise 01.2: your prediction
t_half = None   # a number

# %%
betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
abar_by_hand = torch.cumprod(1 - betas, 0)
s_by_hand = ((1 - abar_by_hand) / abar_by_hand).sqrt()
assert torch.allclose(abar_by_hand, sched.alpha_bar)
assert torch.allclose(s_by_hand, sched.s(torch.arange(1000)))
measured_t_half = int((abar_by_hand >= 0.5).sum())    # abar decreases: the first t below 1/2

T_SHOW = [0, 100, 250, 500, 999]
for t in T_SHOW:
    print(f"t = {t:3d}: abar = {sched.abar(t).item():.5f}, s(t) = {sched.s(t).item():8.3f}")
print(f"first t with abar_t < 1/2: {measured_t_half}")
assert (sched.alpha_bar.diff() < 0).all(), "abar decreases: the signal fades monotonically"
assert sched.abar(0) > 0.9998 and sched.abar(999) < 1e-4, "from (almost) clean to (almost) noise"
assert sched.s(999) > 100, "at t = T-1 the noise is 100 times the signal"
assert measured_t_half < 350, "the signal power halves in the first third of the schedule"

fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
axes[0].plot(sched.alpha_bar, label=r"$\bar\alpha_t$ (signal power)")
axes[0].plot(1 - sched.alpha_bar, label=r"$1-\bar\alpha_t$ (noise power)")
axes[0].axvline(measured_t_half, color="0.6", ls=":")
axes[0].set_xlabel("t"); axes[0].legend()
axes[1].semilogy(sched.s(torch.arange(1000)))
axes[1].set_xlabel("t"); axes[1].set_title(r"VE noise level $s(t)$")
plt.show()

# %%
pt.exercises.check("01.2", t_half, measured=measured_t_half)

# %% [markdown]
# **The reveal.** $\log\bar\alpha_t = \sum_{s\le t}\log(1-\beta_s) \approx -\sum_{s \le t}\beta_s$ for
# small $\beta$, and with $\beta$ linear the sum is $\beta_{\min} t + (\beta_{\max}-\beta_{\min})
# t^2/(2(T-1))$, a parabola in $t$. Setting it to $\ln 2$ and solving:

# %%
q = (0.02 - 1e-4) / (2 * 999)
t_half_formula = (-1e-4 + math.sqrt(1e-8 + 4 * q * math.log(2))) / (2 * q)
display(Markdown(f"$t_{{1/2}} \\approx {t_half_formula:.0f}$ from the sum of the betas, "
                 f"{measured_t_half} measured; at the middle of the schedule, $t = 500$, only "
                 f"$\\bar\\alpha = {sched.abar(500).item():.3f}$ of the signal power is left."))
assert abs(t_half_formula - measured_t_half) < 3

# %% [markdown]
# The signal power halves in about the first quarter of the schedule, and from the middle on $x_t$
# is almost pure noise: most steps of a sampler that walks the whole schedule are spent where the
# sample is still a blur. Section 2 shows what a denoiser can do at each of these levels.

# %% [markdown]
# ### Noising a Gaussian mixture, in closed form
#
# Our 2D toy prior is the ring of six Gaussians of chapter 00,
# $p(x_0) = \sum_k w_k \mathcal N(x_0; \mu_k, C_k)$. Given component $k$, $x_t$ is a linear function
# of two independent Gaussians, so it is Gaussian with mean $\sqrt{\bar\alpha_t}\mu_k$ and covariance
# $\bar\alpha_t C_k + (1-\bar\alpha_t) I$. The noised marginal is again a mixture, with the same
# weights:
#
# $$ p_t(x_t) = \sum_k w_k\, \mathcal N\big(x_t;\ \sqrt{\bar\alpha_t}\mu_k,\ S_k\big), \qquad
#    S_k = \bar\alpha_t C_k + (1-\bar\alpha_t) I. $$
#
# `gmm.noised(sched, t)` returns it. Below: samples of $x_t$ over the contours of $p_t$, and the
# same noise applied to a handwritten digit (16x16, values in $[-1, 1]$). By $t = 500$ the six
# modes have merged; at $t = 999$ both are pure noise.

# %%
gmm = pt.toy.ring_of_gaussians()           # 6 modes on a circle of radius 2, std 0.3
print(gmm, "weights", gmm.weights.tolist())
LIM = 3.5
g1 = torch.linspace(-LIM, LIM, 150, dtype=torch.float64)
GX, GY = torch.meshgrid(g1, g1, indexing="xy")
grid_pts = torch.stack([GX.flatten(), GY.flatten()], 1)


def contour(ax, mixture, colors="0.4"):
    """Contours of a 2D mixture density at 1%, 10% and 50% of its peak."""
    dens = mixture.log_prob(grid_pts).exp().reshape(GX.shape)
    levels = (dens.max() * torch.tensor([0.01, 0.1, 0.5], dtype=dens.dtype)).tolist()
    ax.contour(GX, GY, dens, levels=levels, colors=colors, linewidths=0.8)


def square(ax, lim=LIM):
    ax.set_xlim(-lim, lim); ax.set_ylim(-lim, lim); ax.set_aspect("equal")


# %%
digits = pt.data.load("digits")                # (1797, 1, 16, 16) in [-1, 1]
x0_points = gmm.sample(1000, generator=seeded(1)).cpu()
noise_pts = torch.randn(x0_points.shape, generator=seeded(2), device=DEVICE).cpu()
noise_img = torch.randn(digits[0].shape, generator=seeded(3), device=DEVICE).cpu()
fig, axes = plt.subplots(2, len(T_SHOW), figsize=(2.3 * len(T_SHOW), 4.8))
for j, t in enumerate(T_SHOW):
    contour(axes[0, j], gmm.noised(sched, t))
    axes[0, j].scatter(*sched.add_noise(x0_points, t, noise=noise_pts).T, s=1, alpha=0.3)
    square(axes[0, j]); axes[0, j].set_title(f"t = {t}, s = {sched.s(t).item():.2f}", fontsize=9)
    axes[0, j].set_xlabel("$x_1$")
    img = sched.add_noise(digits[:1], t, noise=noise_img[None])[0, 0]
    axes[1, j].imshow(img, cmap="gray", vmin=-1, vmax=1); axes[1, j].axis("off")
axes[0, 0].set_ylabel("$x_2$")
plt.show()

# %% [markdown]
# **Check.** Noise many prior samples at $t = 250$ and compare their empirical mean and covariance
# with those of the closed-form mixture (`.mean()`, `.covariance()`). The tolerance is the sampling
# error: 5 standard errors, each estimated from the samples themselves. At $t = 999$ the
# marginal is indistinguishable from $\mathcal N(0, I)$.

# %%
def moments_match(t, n=200_000, n_se=5.0):
    """Empirical mean/covariance of noised prior samples vs the closed form of gmm.noised."""
    x0 = gmm.sample(n, generator=seeded(4), dtype=torch.float64)
    xt = sched.add_noise(x0, t, generator=seeded(5)).cpu()
    closed = gmm.noised(sched, t)
    m = xt.mean(0)
    xc = xt - m
    prods = xc[:, :, None] * xc[:, None, :]
    cov = prods.mean(0)
    se_m, se_c = xt.std(0) / math.sqrt(n), prods.std(0) / math.sqrt(n)
    print(f"t = {t}: mean {m.numpy().round(4)} vs {closed.mean().numpy().round(4)}; "
          f"cov {cov.flatten().numpy().round(4)} vs {closed.covariance().flatten().numpy().round(4)}")
    assert ((m - closed.mean()).abs() < n_se * se_m).all()
    assert ((cov - closed.covariance()).abs() < n_se * se_c).all()
    return closed


moments_match(250)
at_T = moments_match(999)
assert torch.allclose(at_T.covariance(), torch.eye(2, dtype=torch.float64), atol=1e-3)

# %% [markdown]
# ## 2. Tweedie's formula: the denoiser is a posterior mean
#
# A diffusion model is trained to *denoise*: given $x_t$, estimate the clean $x_0$. The best
# estimate in mean squared error is the posterior mean, the **MMSE denoiser**
# $D(x_t, t) = \mathbb E[x_0 \mid x_t]$. Sampling (section 3) will instead need the **score**
# $\nabla \log p_t(x_t)$ of the noised density
#
# $$ p_t(x_t) = \int p(x_0)\, \mathcal N\big(x_t; \sqrt{\bar\alpha_t}x_0, (1-\bar\alpha_t)I\big)\, dx_0 , $$
#
# the prior smoothed by the noise. The two are the same information.
#
# ### Exercise 01.3 (derive, then verify): Tweedie's formula
#
# Differentiate $p_t(x_t)$ under the integral sign (the gradient of a Gaussian in $x_t$ is the
# Gaussian times (its mean $-\,x_t$) / its variance), divide by $p_t(x_t)$, and recognise Bayes'
# rule for $x_0$ given $x_t$ inside the integral. Solve the result for $\mathbb E[x_0 \mid x_t]$.
# Write `tweedie(x_t, score, t, sched)`: given $x_t$ and the score $\nabla \log p_t(x_t)$ (a tensor
# of the same shape), return $\mathbb E[x_0 \mid x_t]$. The checker feeds it the exact score of the
# ring prior and compares with the library's exact denoiser `gmm.denoiser(sched)`.

# %% tags=["exercise"]
# Exercise 01.3: your answer
def tweedie(x_t, score, t, sched):
    """E[x0 | x_t] from the score of p_t at x_t."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("01.3", tweedie)

# %% [markdown]
# **The reveal.** Under the integral, the Gaussian's gradient is itself times
# $(\sqrt{\bar\alpha_t}x_0 - x_t)/(1-\bar\alpha_t)$:
#
# $$ \nabla p_t(x_t) = \int p(x_0)\, \mathcal N(\dots)\, \frac{\sqrt{\bar\alpha_t}x_0 - x_t}{1-\bar\alpha_t}\,
#    dx_0 . $$
#
# Divide by $p_t(x_t)$. Since $p(x_0)\mathcal N(\dots)/p_t(x_t) = p(x_0 \mid x_t)$ (Bayes), the
# integral becomes an expectation over the posterior of the clean signal given the noisy one:
#
# $$ \nabla \log p_t(x_t) = \frac{\sqrt{\bar\alpha_t}\,\mathbb E[x_0 \mid x_t] - x_t}{1-\bar\alpha_t}
#    \quad\Longleftrightarrow\quad
#    \mathbb E[x_0 \mid x_t] = \frac{x_t + (1-\bar\alpha_t)\,\nabla\log p_t(x_t)}{\sqrt{\bar\alpha_t}}. $$
#
# This is **Tweedie's formula**: knowing the *score* $\nabla \log p_t$ of the noised data is the same
# as knowing the MMSE *denoiser* $D(x_t,t) = \mathbb E[x_0 \mid x_t]$, and it is also the same as
# knowing the noise: $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}D)/\sqrt{1-\bar\alpha_t}
# = -\sqrt{1-\bar\alpha_t}\,\nabla\log p_t$. These are the three views of `pt.Denoiser`.
#
# For our mixture the score is explicit (section 1: $p_t$ is again a mixture). With
# responsibilities $r_k(x_t) \propto w_k \mathcal N(x_t; \sqrt{\bar\alpha_t}\mu_k, S_k)$,
#
# $$ \nabla\log p_t(x_t) = \sum_k r_k(x_t)\, S_k^{-1}\big(\sqrt{\bar\alpha_t}\mu_k - x_t\big). $$
#
# We code the score and Tweedie's formula by hand and compare with the noised mixture's score and
# the library's exact denoiser `gmm.denoiser(sched)` (which updates each component by chapter 00's
# Kalman formulas: the same function, written differently).

# %%
exact_den = gmm.denoiser(sched)


def score_by_hand(x, t):
    """grad log p_t(x) of the noised ring, from the formula above (float64)."""
    ab = sched.abar(t)
    eye = torch.eye(2, dtype=torch.float64)
    log_r, pulls = [], []
    for w, mu, C in zip(gmm.weights, gmm.means, gmm.covs):
        S = ab * C + (1 - ab) * eye
        log_r.append(w.log() + torch.distributions.MultivariateNormal(ab.sqrt() * mu, S).log_prob(x))
        pulls.append(torch.linalg.solve(S, (ab.sqrt() * mu - x).T).T)
    r = torch.softmax(torch.stack(log_r, 1), 1)                    # (n, K)
    return (r[:, :, None] * torch.stack(pulls, 1)).sum(1)


def tweedie_by_hand(x, t):
    ab = sched.abar(t)
    return (x + (1 - ab) * score_by_hand(x, t)) / ab.sqrt()


xs_check = torch.randn(50, 2, generator=seeded(6), dtype=torch.float64, device=DEVICE).cpu() * 2
for t in (20, 250, 700):
    assert torch.allclose(score_by_hand(xs_check, t), gmm.noised(sched, t).score(xs_check), atol=1e-8)
    assert torch.allclose(score_by_hand(xs_check, t), exact_den.score(xs_check, t), atol=1e-8)
    assert torch.allclose(tweedie_by_hand(xs_check, t), exact_den(xs_check, t), atol=1e-8)
print("score and Tweedie by hand == gmm.noised(...).score == exact_den.score / exact_den (to 1e-8)")

# %% [markdown]
# ### A posterior mean, checked by Monte Carlo
#
# In the VE view the likelihood of $x_0$ given $x_t$ is a Gaussian bump around
# $z = x_t/\sqrt{\bar\alpha_t}$ of width $s(t)$:
# $\mathcal N(x_t; \sqrt{\bar\alpha_t}x_0, (1-\bar\alpha_t) I) \propto \mathcal N(x_0; z, s(t)^2 I)$.
# So $p(x_0 \mid x_t) \propto p(x_0)\,\mathcal N(x_0; z, s^2 I)$: the prior, localised around $z$.
# We can sample it without any formula: draw many prior samples $x_0^{(i)}$, weight each by the
# Gaussian bump, and take the weighted mean (self-normalised importance sampling, the sampler of
# chapter 00's exercise 00.4). It must agree
# with $D(x_t, t)$ within its Monte Carlo error.
#
# The picture shows the weighted samples (resampled) for a fixed $z$ between two modes and three
# noise levels. At low noise the posterior sits on the nearest mode and $D$ (red star) with it; at
# high noise it spreads over several modes, and its **mean lies between them**, in a region the
# prior almost never visits. A denoiser at high noise outputs a *blurred average*, not a sample.

# %%
Z = torch.tensor([0.3, 1.5], dtype=torch.float64)     # the VE-view point x_t / sqrt(abar)
pool = gmm.sample(400_000, generator=seeded(7), dtype=torch.float64).cpu()


def posterior_given_xt(t):
    """Importance weights of the prior pool under p(x0 | x_t), x_t = sqrt(abar_t) Z."""
    s = sched.s(t)
    logw = -((pool - Z) ** 2).sum(1) / (2 * s ** 2)
    return torch.softmax(logw, 0)


levels = [sched.t_from_s(s) for s in (0.3, 1.0, 3.0)]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, t in zip(axes, levels):
    w = posterior_given_xt(t)
    mc = (w[:, None] * pool).sum(0)
    se = ((w[:, None] ** 2) * (pool - mc) ** 2).sum(0).sqrt()
    D = exact_den(sched.abar(t).sqrt() * Z[None], t)[0]
    print(f"t = {t} (s = {sched.s(t).item():.2f}): Monte Carlo {mc.numpy().round(3)} "
          f"± {se.numpy().round(3)}, D(x_t, t) = {D.numpy().round(3)}, ESS {1 / (w ** 2).sum():.0f}")
    assert ((mc - D).abs() < 5 * se + 1e-3).all(), "Tweedie = posterior mean"
    idx = torch.multinomial(w, 400, replacement=True, generator=torch.Generator().manual_seed(8))
    contour(ax, gmm)
    ax.scatter(*pool[idx].T, s=3, alpha=0.3, label=r"$x_0 \sim p(x_0 \mid x_t)$")
    ax.plot(*Z, "kx", ms=9, label=r"$z = x_t/\sqrt{\bar\alpha_t}$")
    ax.plot(*D, "r*", ms=13, label=r"$D(x_t,t)$")
    square(ax); ax.set_title(f"t = {t}, s(t) = {sched.s(t).item():.1f}", fontsize=9)
axes[0].legend(fontsize=7, loc="lower left")
for ax in axes:
    ax.set_xlabel("$x_1$"); ax.set_ylabel("$x_2$")
plt.show()

# %% [markdown]
# Two measurable consequences, over many noisy points $x_t \sim p_t$:
#
# * at **low noise** the denoiser stays within about the noise level $s(t)$ of the rescaled point
#   $x_t/\sqrt{\bar\alpha_t}$, and on the ring;
# * at **high noise** its outputs collapse towards the prior mean $(0, 0)$: they lie well *inside*
#   the ring of radius 2, where the prior has almost no mass.

# %%
def denoised_radius(t, n=2000):
    xt = gmm.noised(sched, t).sample(n, generator=seeded(9), dtype=torch.float64).cpu()
    D = exact_den(xt, t)
    move = (D - xt / sched.abar(t).sqrt()).norm(dim=1).median().item()
    return D.norm(dim=1).median().item(), move


for t in (20, 250, 600, 900):
    radius, move = denoised_radius(t)
    print(f"t = {t:3d} (s = {sched.s(t).item():5.2f}): median |D(x_t)| = {radius:.2f}, "
          f"median move |D - x_t/sqrt(abar)| = {move:.2f}")
r_low, move_low = denoised_radius(20)
r_high, _ = denoised_radius(900)
assert move_low < 1.5 * sched.s(20).item(), "low noise: D moves points by about the noise level"
assert 1.7 < r_low < 2.3, "low noise: denoised points stay on the ring"
assert r_high < 0.5, "high noise: denoised points collapse towards the prior mean"

# %% [markdown]
# ### The same on images
#
# An image prior is a network trained to approximate $D$ (section 4). We load the shipped digits
# prior (`pt.pretrained("digits")`, trained on the first 1500 digits) and denoise held-out digits at
# four noise levels. Because $D$ is the MMSE estimate, it must beat the naive estimate
# $x_t/\sqrt{\bar\alpha_t}$ (which is unbiased but keeps all the noise) in mean squared error, by a
# wide margin at high noise. At $t = 600$ its output is visibly a blurred "average digit", the
# image version of the red star between the modes above.
#
# One practical detail: a network predicts $\hat\varepsilon$, and
# $D = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon)/\sqrt{\bar\alpha_t}$ multiplies its error by
# $\sqrt{(1-\bar\alpha_t)/\bar\alpha_t} = s(t)$, up to 157 at $t = 999$. Since pixels live in
# $[-1, 1]$, we clip $D$ to that range (`den.clip = 1.0`), as the DDPM reference sampler does.
# That amplified error is why the estimate at $t = 900$ ($s = 61$) is grainy rather than smooth.

# %%
digits_den = pt.pretrained("digits", device=DEVICE)
digits_den.clip = 1.0
print({k: digits_den.card.get(k) for k in ("subset", "steps", "batch", "parameters", "wall_seconds")},
      "channels", digits_den.net.config["channels"])
if digits_den.card["subset"] != "0:1500":
    raise ValueError("this chapter holds out digits[1500:]: the shipped digits prior must have seen "
                     f"only the first 1500 digits, its card says {digits_den.card['subset']!r}")
held_digits = digits[1500:].to(DEVICE)          # not seen by the shipped prior (nor by section 4)
x0_img = held_digits[:64]
T_IMG = [100, 300, 600, 900]
fig, axes = plt.subplots(3, len(T_IMG) + 1, figsize=(1.6 * (len(T_IMG) + 1), 5))
axes[0, 0].imshow(x0_img[0, 0].cpu(), cmap="gray", vmin=-1, vmax=1); axes[0, 0].set_title("x0", fontsize=9)
for j, t in enumerate(T_IMG, start=1):
    xt = sched.add_noise(x0_img, t, generator=seeded(10 + t))
    with torch.no_grad():
        D = digits_den(xt, t)
    naive = xt / sched.abar(t).sqrt()
    mse_D, mse_naive = ((D - x0_img) ** 2).mean().item(), ((naive - x0_img) ** 2).mean().item()
    print(f"t = {t}: MSE of D {mse_D:.3f}, of x_t/sqrt(abar) {mse_naive:.3f}")
    assert mse_D < 0.5 * mse_naive, "the denoiser beats rescaling the noisy image"
    for row, (img, name) in enumerate([(xt, "x_t"), (naive.clamp(-1, 1), "x_t/√ᾱ"), (D, "D(x_t)")]):
        axes[row, j].imshow(img[0, 0].cpu(), cmap="gray", vmin=-1, vmax=1)
        axes[row, j].set_title(f"{name}, t={t}", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. Sampling: DDPM and DDIM, on the 2D toy
#
# To *sample* the prior we run the noising backwards. Start from $x_{T-1} \sim \mathcal N(0, I)$
# (section 1: at $t = 999$ that is the marginal). At time $t$ the denoiser gives the estimate
# $\hat x_0 = D(x_t, t)$; from it we move to an earlier time $t' < t$, and repeat down to $t = 0$.
# Each step costs one denoiser call, so the **NFE** (number of function evaluations) of a sampler
# is its number of steps.
#
# ### Exercise 01.4 (derive, then verify): the DDIM update from the marginals
#
# DDIM looks for a **deterministic** update that is linear in what it knows,
# $x_{t'} = a\,\hat x_0 + b\,x_t$, with this property: when $\hat x_0$ is the true $x_0$ and
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ (exercise 01.1), then
# $x_{t'}$ has exactly the forward form of time $t'$: signal $\sqrt{\bar\alpha_{t'}}\,x_0$ and noise of
# variance $1 - \bar\alpha_{t'}$, made of the same $\varepsilon$. Derive $a$ and $b$ in terms of
# $\bar\alpha_t$ and $\bar\alpha_{t'}$. Write `ddim_step(x_t, x0_hat, t, t_prev, sched)` for one such
# update from `t` to `t_prev >= 0`. The checker compares it with the library's `ddim_update` at
# three pairs of times.

# %% tags=["exercise"]
# Exercise 01.4: your answer
def ddim_step(x_t, x0_hat, t, t_prev, sched):
    """x_{t_prev} from x_t and x0_hat, with eta = 0."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("01.4", ddim_step)

# %% [markdown]
# **The reveal.** Substitute $x_t$: $x_{t'} = (a + b\sqrt{\bar\alpha_t})\,x_0 + b\sqrt{1-\bar\alpha_t}\,
# \varepsilon$. The noise must be $\sqrt{1-\bar\alpha_{t'}}\,\varepsilon$ and the signal
# $\sqrt{\bar\alpha_{t'}}\,x_0$:
#
# $$ b = \sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}, \qquad a = \sqrt{\bar\alpha_{t'}} - b\sqrt{\bar\alpha_t}. $$
#
# Equivalently: read off the noise that $x_t$ and $\hat x_0$ imply,
# $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}\hat x_0)/\sqrt{1-\bar\alpha_t}$, and *re-noise the
# estimate* to $t'$ with it, $x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}}\,
# \hat\varepsilon$. The general family reuses only part of $\hat\varepsilon$ and draws the rest fresh:
#
# $$ x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'} - c^2}\;\hat\varepsilon
#    + c\, z, \qquad c = \eta\,\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}
#    \sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}, \quad z \sim \mathcal N(0, I). $$
#
# * $\eta = 1$ is **DDPM** (Ho et al. 2020): $c^2$ is the variance of the true reverse step
#   $q(x_{t'} \mid x_t, x_0)$, so with all 1000 steps this is ancestral sampling of the model.
# * $\eta = 0$ is **DDIM** (Song et al. 2021): no fresh noise, a deterministic map from $x_{T-1}$ to
#   $x_0$ (a discretisation of the probability-flow ODE), accurate with far fewer steps.
#
# ### Judging a sampler of the prior
#
# For the 2D ring we can draw exact prior samples, so a prior sampler is judged as chapter 00 §4
# judges posterior samplers: the sliced Wasserstein distance (SW) of its `N` samples to `N` exact
# ones, as a multiple of the noise floor at `N`. We also count the share of samples that fall in
# the gaps between the modes.

# %%
N = 1000 if FAST else 2000
prior_ref = gmm.sample(N, generator=seeded(16)).cpu()
floor = pt.metrics.noise_floor(lambda n, generator: gmm.sample(n, generator=generator), N,
                               generator=seeded(17))
print(f"noise floor at N = {N}: SW {floor.mean:.3f} ± {floor.std:.3f}")


def sliced(xs, ref=prior_ref):
    """SW with the same 256 projection directions for every sample set."""
    return float(pt.metrics.sliced_wasserstein(xs, ref, generator=seeded(18)))


def in_gaps(xs):
    """Fraction of points farther than 3 std (0.9) from every mode centre: ~1% for exact samples."""
    dist = (xs[:, None, :].double() - gmm.means[None]).norm(dim=2).min(1).values
    return (dist > 0.9).double().mean().item()


def run_prior_sampler(den, steps, eta, seed=19):
    with den.counting():
        xs = pt.sample("ddpm", den, None, None, n=N, steps=steps, eta=eta, generator=seeded(seed)).cpu()
    return dict(samples=xs, nfe=den.nfe, sw=sliced(xs), x_floor=sliced(xs) / floor.mean,
                gaps=in_gaps(xs))


# %% [markdown]
# ### Exercise 01.5 (build): a sampler of the ring prior in at most 20 network calls
#
# Write `prior_sampler(den, n, generator)` returning `(n, 2)` samples of the ring prior, calling the
# denoiser `den(x_t, t)` (it returns $D(x_t, t)$) at most 20 times, each time on the whole batch.
# `den.schedule` is the schedule (`.abar(t)`, `.timesteps(k)` gives `k` decreasing times from 999 to
# 0); draw all randomness from `generator`. The check runs it with the exact denoiser and
# $n = 2000$, and scores the SW to 2000 exact prior samples as a multiple of the noise floor: at
# most $2.3$ passes. Returning one denoiser call on pure noise scores above 20.

# %% tags=["exercise"]
# Exercise 01.5: your answer
def prior_sampler(den, n, generator):
    """(n, 2) samples of the ring prior in at most 20 denoiser calls."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("01.5", prior_sampler)

# %% [markdown]
# **The reveal.** DDIM on a uniform grid of times: start from $\mathcal N(0, I)$, at each time
# denoise once and apply exercise 01.4's update to the next time, and at the last time return the
# denoised estimate $D(x_0, 0)$ rather than the state. The library's `pt.sample("ddpm", ...,
# eta=0.0)` gives the same samples from the same initial noise; below, both, and the score the check
# gives to 20 steps and to 1 step:

# %%
def ddim_by_hand(den, n, generator, steps=50):
    """Deterministic DDIM from x_{T-1} ~ N(0, I) on the library's uniform time grid."""
    grid = den.schedule.timesteps(steps)                   # 999, ..., 0
    x = torch.randn(n, *den.shape, generator=generator, device=generator.device)
    for t, t_next in zip(grid, grid[1:] + [None]):
        x0 = den(x, t)
        if t_next is None:
            return x0                                       # the last step returns D(x_0, 0)
        ab, ab_next = sched.abar(t).item(), sched.abar(t_next).item()
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        x = math.sqrt(ab_next) * x0 + math.sqrt(1 - ab_next) * eps


mine = ddim_by_hand(exact_den, 500, seeded(11), steps=50)
library = pt.sample("ddpm", exact_den, None, None, n=500, steps=50, eta=0.0, generator=seeded(11))
assert torch.allclose(mine, library, atol=1e-5)
print("DDIM by hand == pt.sample('ddpm', eta=0), max difference",
      f"{(mine - library).abs().max().item():.1e}")
build_scores = {k: pt.exercises.ch01.prior_score(partial(ddim_by_hand, steps=k))[0] for k in (20, 1)}
display(Markdown(f"Exercise 01.5's score of DDIM by hand: {build_scores[20]:.2f} noise floors with "
                 f"20 steps, {build_scores[1]:.1f} with 1 step (the threshold is "
                 f"{pt.exercises.ch01.PRIOR_THRESHOLD})."))
assert build_scores[20] <= pt.exercises.ch01.PRIOR_THRESHOLD < build_scores[1]

# %% [markdown]
# ### A learned score
#
# With real data there is no exact denoiser: we fit a network $\varepsilon_\theta(x_t, t)$ to the
# noise by **denoising score matching**, the DDPM loss
# $\mathbb E_{x_0, t, \varepsilon}\lVert \varepsilon_\theta(\sqrt{\bar\alpha_t}x_0 +
# \sqrt{1-\bar\alpha_t}\varepsilon, t) - \varepsilon \rVert^2$: we only need samples of $x_0$.
# Its minimiser is $\mathbb E[\varepsilon \mid x_t]$, i.e. (by Tweedie) the exact denoiser. We train
# a small MLP (3 hidden layers of 128 units) on 20,000 prior samples for `MLP["steps"]` steps; the
# weights are read from a stored run (`RECOMPUTE = True` at the top trains it here).

# %%
MLP = dict(steps=4000, hidden=128, lr=3e-3, n_data=20_000)


def train_mlp():
    torch.manual_seed(12)                              # network initialisation
    net = pt.nets.MLP(2, hidden=MLP["hidden"]).to(DEVICE)
    den, losses = pt.priors.train.train_denoiser(net, gmm.sample(MLP["n_data"], generator=seeded(13)),
                                          sched, steps=MLP["steps"], lr=MLP["lr"],
                                          generator=seeded(14))
    state = {k: v.detach().cpu() for k, v in den.net.state_dict().items()}
    return dict(state=state, losses=list(losses), train_seconds=den.train_seconds)


mlp_run = pt.files.stored.run("ch01_mlp_ring", train_mlp, recompute=RECOMPUTE, settings=MLP,
                        command="set RECOMPUTE = True at the top of chapter 01 and run it")
mlp_net = pt.nets.MLP(2, hidden=MLP["hidden"]).to(DEVICE)
mlp_net.load_state_dict(mlp_run["state"])
mlp_den, mlp_losses = pt.EpsNetDenoiser(mlp_net.eval(), sched, shape=(2,)), mlp_run["losses"]
print(f"trained {MLP['steps']} steps in {mlp_run['train_seconds']:.1f} s (when stored); loss: "
      f"first 100 steps {sum(mlp_losses[:100]) / 100:.3f}, last 100 steps "
      f"{sum(mlp_losses[-100:]) / 100:.3f}")

# %% [markdown]
# Where is the learned score good? We compare it with the exact score at samples of $p_t$, as a
# relative error $\sqrt{\mathbb E\lVert s_\theta - s\rVert^2 / \mathbb E\lVert s\rVert^2}$, and draw
# both fields at a moderate noise level. The network is accurate at high noise, where $p_t$ is
# smooth, and **worst at low noise**, where the exact score changes fast near every mode. The loss
# does not see this: it measures errors in $\hat\varepsilon$, and an error $\delta$ in
# $\hat\varepsilon$ is an error $\delta/\sqrt{1-\bar\alpha_t}$ in the score, large when
# $1-\bar\alpha_t$ is small.

# %%
def score_error(den, t, n=2000):
    xt = gmm.noised(sched, t).sample(n, generator=seeded(15))
    with torch.no_grad():
        exact, learned = exact_den.score(xt.double(), t), den.score(xt, t).double()
    exact, learned = exact.cpu(), learned.cpu()
    return (((learned - exact) ** 2).sum(1).mean() / (exact ** 2).sum(1).mean()).sqrt().item()


score_err = {t: score_error(mlp_den, t) for t in (10, 50, 200, 500, 900)}
print("relative score error of the MLP by t:", {t: round(e, 3) for t, e in score_err.items()})
assert score_err[500] < 0.15 and score_err[900] < 0.15, "accurate at high noise"
assert score_err[10] > 3 * score_err[500], "worst at low noise"

# %%
t_field = 150
q1 = torch.linspace(-3, 3, 15)
QX, QY = torch.meshgrid(q1, q1, indexing="xy")
q_pts = torch.stack([QX.flatten(), QY.flatten()], 1).to(DEVICE)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (name, den) in zip(axes, [("exact", exact_den), ("learned (MLP)", mlp_den)]):
    with torch.no_grad():
        field = den.score(q_pts, t_field).cpu()
    contour(ax, gmm.noised(sched, t_field))
    ax.quiver(QX, QY, field[:, 0].reshape(QX.shape), field[:, 1].reshape(QX.shape), color="C0")
    square(ax, 3.2); ax.set_title(f"{name} score, t = {t_field}", fontsize=9)
    ax.set_xlabel("$x_1$"); ax.set_ylabel("$x_2$")
plt.show()

# %% [markdown]
# ### DDPM and DDIM, exact and learned, side by side
#
# We draw `N` samples with each sampler and each denoiser and judge them as in exercise 01.5: SW
# to `N` exact prior samples, in noise floors (chapter 00 §4). The denoiser counts its own calls
# (`den.nfe`): the NFE of a run.

# %%
SAMPLERS = {"DDPM, 1000 steps": (1000, 1.0), "DDIM, 50 steps": (50, 0.0)}
DENOISERS = {"exact": exact_den, "learned": mlp_den}
runs = {(d, s): run_prior_sampler(DENOISERS[d], *SAMPLERS[s]) for d in DENOISERS for s in SAMPLERS}
lines = [f"exact prior samples in the gaps: {in_gaps(prior_ref):.1%}", "",
         "| denoiser | sampler | NFE | SW | × floor | in the gaps |", "|---|---|---|---|---|---|"]
lines += [f"| {d} | {s} | {r['nfe']} | {r['sw']:.3f} | {r['x_floor']:.2f} | {r['gaps']:.1%} |"
          for (d, s), r in runs.items()]
display(Markdown("\n".join(lines)))

fig, axes = plt.subplots(1, 5, figsize=(15, 3.2), sharey=True)
panels = [("exact samples", prior_ref)] + [(f"{d}: {s}", r["samples"]) for (d, s), r in runs.items()]
for ax, (name, xs) in zip(axes, panels):
    contour(ax, gmm)
    ax.scatter(*xs.T, s=1, alpha=0.3, c="k" if name.startswith("exact s") else "C0")
    square(ax); ax.set_title(name, fontsize=9); ax.set_xlabel("$x_1$")
axes[0].set_ylabel("$x_2$")
plt.show()

# %% [markdown]
# What the table shows (and the next cell checks; the thresholds held with margin over several
# seeds):
#
# * with the **exact** denoiser, DDPM with 1000 steps is within 2 noise floors (it is exact up to
#   the time discretisation), and so is DDIM with only 50 steps, at 1/20 of the network calls;
# * the **learned** denoiser adds its own error: more samples leak into the gaps between the modes
#   (farther than 3 standard deviations from every mode centre; the table gives the share of exact samples there too), but it
#   stays within 3 noise floors with either sampler, despite its large relative score error at low
#   noise: there the steps only move points by about the (small) noise level, as in section 2;
# * every sampler makes exactly one denoiser call per step.

# %%
for (d, s), r in runs.items():
    assert r["nfe"] == SAMPLERS[s][0], (d, s, r["nfe"])
for s in SAMPLERS:
    assert runs["exact", s]["x_floor"] < 2.0, f"exact denoiser, {s}: should be near the floor"
    assert runs["learned", s]["x_floor"] < 3.0, f"learned denoiser, {s}: within 3 noise floors"
    assert runs["learned", s]["gaps"] > 1.5 * runs["exact", s]["gaps"], "learned: leaks into gaps"
print("checks passed")

# %% [markdown]
# ### How few steps does DDIM need?
#
# DDIM follows an ODE from the same initial noise, so with more and more steps its samples converge
# to fixed points: the discretisation error vanishes. Below, SW against NFE for the exact denoiser.
# By 50 steps the curve is flat (100 steps change SW by a small fraction of the noise floor); with
# 5 steps the samples are clearly off (several noise floors).

# %%
DDIM_STEPS = [5, 10, 20, 50, 100]
ddim_sw = {k: run_prior_sampler(exact_den, k, 0.0)["sw"] for k in DDIM_STEPS}
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.plot(DDIM_STEPS, list(ddim_sw.values()), "o-", label="DDIM (exact denoiser)")
ax.axhline(runs["exact", "DDPM, 1000 steps"]["sw"], color="C1", label="DDPM, 1000 steps")
ax.axhspan(floor.mean - floor.std, floor.mean + floor.std, color="0.85", label="noise floor ± std")
ax.set_xscale("log"); ax.set_xlabel("NFE (steps)"); ax.set_ylabel("SW to exact samples")
ax.legend(fontsize=8); plt.show()
print({k: round(v / floor.mean, 2) for k, v in ddim_sw.items()}, "(in noise floors)")
assert ddim_sw[5] > 3 * floor.mean, "5 DDIM steps are not enough"
assert abs(ddim_sw[100] - ddim_sw[50]) < 0.25 * floor.mean, "DDIM has converged by 50 steps"

# %% [markdown]
# ## 4. Training an image prior
#
# The same loss trains an image prior: only the network changes, to a small UNet
# (`pt.nets.UNet`: residual blocks at 16x16, 8x8 (and 4x4), self-attention at the coarsest level,
# the time $t$ entering every block). We train it on the first 1500 digits for a short run of
# `LIVE["steps"]` steps, keeping the last 297 digits aside to judge the samples. `train_denoiser`
# keeps an exponential moving average (EMA) of the weights for sampling; for a run this short we
# let the average forget quickly. Its weights and losses are read from a stored run
# (`RECOMPUTE = True` at the top trains it here, with a progress bar).

# %%
train_digits = digits[:1500].to(DEVICE)
LIVE = dict(channels=(16, 32), steps=600, batch=64, lr=2e-3, ema_decay=0.99)
torch.manual_seed(20)
live_net = pt.nets.UNet(1, LIVE["channels"]).to(DEVICE)
untrained_net = pt.nets.UNet(1, LIVE["channels"]).to(DEVICE).requires_grad_(False)
untrained_net.load_state_dict(live_net.state_dict())       # a copy of the initial weights
print(f"UNet{LIVE['channels']}: {pt.nets.count_parameters(live_net):,} parameters")


def train_live():
    den, losses = pt.priors.train.train_denoiser(
        live_net, train_digits, sched, steps=LIVE["steps"], batch=LIVE["batch"], lr=LIVE["lr"],
        ema_decay=LIVE["ema_decay"], generator=seeded(21), progress=True)
    state = {k: v.detach().cpu() for k, v in den.net.state_dict().items()}
    return dict(state=state, losses=list(losses), train_seconds=den.train_seconds)


live = pt.files.stored.run("ch01_live_unet", train_live, recompute=RECOMPUTE, settings=LIVE,
                     command="set RECOMPUTE = True at the top of chapter 01 and run it")
live_net.load_state_dict(live["state"])
live_den = pt.EpsNetDenoiser(live_net.eval(), sched, shape=(1, 16, 16), clip=1.0)
live_losses = live["losses"]
display(Markdown(f"{LIVE['steps']} training steps took {live['train_seconds']:.0f} s when they "
                 "were run."))

# %%
window = 20
smooth = torch.tensor(live_losses).unfold(0, window, 1).mean(1)
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(live_losses, lw=0.5, alpha=0.5, label="per batch")
ax.plot(range(window - 1, len(live_losses)), smooth, lw=1.5, label=f"running mean ({window})")
ax.set_yscale("log"); ax.set_xlabel("training step"); ax.set_ylabel("DSM loss"); ax.legend()
plt.show()
first, last = smooth[0].item(), smooth[-1].item()
print(f"loss (running mean): {first:.1f} at the start, {last:.1f} at the end")
assert last < 0.3 * first, "the loss should drop by far more than a factor 3"

# %% [markdown]
# Now samples (DDIM, 50 steps) from the live network and, for comparison, from
#
# * **pure noise** $\mathcal N(0, I)$, clipped to the pixel range;
# * the **untrained** network (its last layer starts at zero, so it predicts $\hat\varepsilon = 0$:
#   with clipping this gives random black-and-white pixels);
# * **independent pixels**: each pixel drawn from a Gaussian with the per-pixel mean and standard
#   deviation of the training digits (clipped). Right average image and contrast, but no strokes;
# * the shipped digits prior (trained on the same 1500 digits; its card, printed in section 2, gives
#   the network and the length of the run).
#
# We judge each set of `N_IMG` images against `N_IMG` held-out digits with two distances:
#
# * **SW** on the flattened images (256 numbers each). Random projections of images mostly see
#   the average image and the pixel variances, so SW is a weak judge of *shape*;
# * the **Fréchet distance** (FD) in the 64-d feature space of a small digit classifier that the
#   project ships (`posterior_tutor/metrics/frechet.py`): fit a Gaussian to each set's features and take
#   $\lVert\mu_a-\mu_b\rVert^2 + \mathrm{Tr}(S_a + S_b - 2(S_aS_b)^{1/2})$, the formula of the FID
#   with a digit classifier instead of Inception. It sees strokes.
#
# The yardstick for both is what `N_IMG` real *training* digits score against the same held-out
# set: the score of a perfect model of the training data, averaged over 5 random sets
# (`training_floor`). It is larger than the noise floor between two sets of training digits
# (`pt.metrics.noise_floor`): the last digits of the data set differ a little from the first ones
# (a small distribution shift, for example other writers), which no prior trained on the first
# part can remove.

# %%
N_IMG = 128 if FAST else 297
held_ref = held_digits[:N_IMG]
untrained_den = pt.EpsNetDenoiser(untrained_net.eval(), sched, shape=(1, 16, 16), clip=1.0)
assert untrained_net(held_ref[:4], torch.tensor([0, 300, 600, 999], device=DEVICE)).abs().max() == 0
digits_clf = pt.pretrained("digits", "classifier")  # the shipped digit classifier, sha256-checked


def ddim_images(den, n=N_IMG, steps=50, seed=22):
    return pt.sample("ddpm", den, None, None, n=n, steps=steps, eta=0.0, generator=seeded(seed))


def sw_img(xs, ref=held_ref):
    return float(pt.metrics.sliced_wasserstein(xs, ref, generator=seeded(23)))


def fd_img(xs, ref=held_ref, clf=digits_clf):
    return frechet.digit_frechet(xs.cpu(), ref.cpu(), clf)


def random_subset(images, n, seed):
    return images[torch.randperm(len(images), generator=seeded(seed), device=DEVICE)[:n]]


def training_floor(train, metric, n, seed, repeats=5):
    """Mean of metric(n random training images) over repeats: a perfect model's score."""
    return sum(metric(random_subset(train, n, seed + k)) for k in range(repeats)) / repeats


# %%
pix_mean, pix_std = train_digits.mean(0), train_digits.std(0)
image_sets = {
    "pure noise": torch.randn(N_IMG, 1, 16, 16, generator=seeded(24), device=DEVICE).clamp(-1, 1),
    "untrained network": ddim_images(untrained_den),
    "independent pixels": (pix_mean + pix_std * torch.randn(N_IMG, 1, 16, 16, generator=seeded(25),
                                                            device=DEVICE)
                           ).clamp(-1, 1),
    "live network": ddim_images(live_den),
    "shipped digits prior": ddim_images(digits_den),
}
img_sw = {name: sw_img(xs) for name, xs in image_sets.items()}
img_fd = {name: fd_img(xs) for name, xs in image_sets.items()}
sw_floor = training_floor(train_digits, sw_img, N_IMG, seed=26)
fd_floor = training_floor(train_digits, fd_img, N_IMG, seed=26)
train_train = pt.metrics.noise_floor(
    lambda n, generator: train_digits[torch.randperm(len(train_digits), generator=generator,
                                                     device=generator.device)[:n]],
    N_IMG, generator=seeded(27))
assert sw_floor > train_train.mean, "the held-out digits are slightly shifted"

# %%
def montage(imgs, ncol=8):
    """(n, 1, h, w) images in [-1, 1] as one array with a 1-pixel grey border."""
    imgs = imgs.cpu()
    n, _, h, w = imgs.shape
    rows = math.ceil(n / ncol)
    canvas = torch.zeros(rows * (h + 1) + 1, ncol * (w + 1) + 1)
    for k in range(n):
        r, c = divmod(k, ncol)
        canvas[1 + r * (h + 1):(r + 1) * (h + 1), 1 + c * (w + 1):(c + 1) * (w + 1)] = imgs[k, 0]
    return canvas


fig, axes = plt.subplots(1, 6, figsize=(17, 3))
for ax, (name, xs) in zip(axes, [("held-out digits", held_ref)] + list(image_sets.items())):
    ax.imshow(montage(xs[:24]), cmap="gray", vmin=-1, vmax=1)
    ax.set_title(name, fontsize=9); ax.axis("off")
plt.show()
lines = [f"SW floor {sw_floor:.3f} (between two sets of training digits: {train_train.mean:.3f}), "
         f"FD floor {fd_floor:.0f}", "", "| samples | SW | × floor | FD | × floor |",
         "|---|---|---|---|---|"]
lines += [f"| {k} | {img_sw[k]:.3f} | {img_sw[k] / sw_floor:.2f} | {img_fd[k]:.0f} | "
          f"{img_fd[k] / fd_floor:.2f} |" for k in image_sets]
display(Markdown("\n".join(lines)))

# %% [markdown]
# Reading the numbers (checked below):
#
# * after a short run the live network's samples are already much closer to real digits than pure
#   noise or the untrained network's output, by both distances: blobs with a stroke-like structure;
# * the shipped prior (a wider network that saw more than 10 times as many training examples) is
#   far better still: by both distances it is at the floor, i.e. as close to the held-out digits as
#   real training digits are;
# * the two distances disagree about independent pixels: SW ranks them near the real digits,
#   the classifier's FD as bad as noise. Trust a distance only as far as its features go.

# %%
for d in (img_sw, img_fd):
    assert d["live network"] < 0.5 * d["pure noise"], "the live network learned something"
    assert d["live network"] < 0.5 * d["untrained network"]
    assert d["shipped digits prior"] < d["live network"], "the long run wins"
# "by far": the FD's small-sample bias (larger at 128 images) narrows the ratio, hence 0.7
assert img_fd["shipped digits prior"] < 0.7 * img_fd["live network"], "by far, says the FD"
assert img_sw["shipped digits prior"] < 1.25 * sw_floor, "shipped prior: at the SW floor"
assert img_fd["shipped digits prior"] < 1.5 * fd_floor, "shipped prior: at the FD floor"
assert img_sw["independent pixels"] < 0.25 * img_sw["pure noise"], "SW: close to real digits"
assert img_fd["independent pixels"] > 0.5 * img_fd["pure noise"], "FD: as bad as noise"
seen_live = LIVE["steps"] * LIVE["batch"]
seen_shipped = digits_den.card["steps"] * digits_den.card["batch"]
print(f"checks passed (for the record: the shipped prior saw {seen_shipped} training examples, "
      f"the short run {seen_live})")

# %% [markdown]
# ## 5. The shipped MNIST prior
#
# `pt.pretrained("mnist")` loads a UNet trained on 32x32 MNIST digits (28x28 padded with background)
# and checks its file against the sha256 in its model card. The card records how it was trained
# (and, where an evaluation added them, the Fréchet distances of its samples and of real images, as
# in section 4):

# %%
mnist_den = pt.pretrained("mnist", device=DEVICE)
mnist_den.clip = 1.0
card = mnist_den.card


def card_rows(d, prefix=""):
    """Flatten a (nested) model card into (field, value) rows; an FD entry becomes one row."""
    rows = []
    for k, v in d.items():
        if k in ("sha256", "config", "torch", "seed", "size_bytes", "classifier_sha256"):
            continue
        if isinstance(v, dict) and "fd" in v:
            rows.append((prefix + k, f"FD {v['fd']:.1f} ({v.get('n_a')} vs {v.get('n_b')} images)"))
        elif isinstance(v, dict):
            rows += card_rows(v, f"{prefix}{k} / ")
        else:
            rows.append((prefix + k, str(v).replace("|", "\\|")))
    return rows


display(Markdown("\n".join(["| field | value |", "|---|---|"] +
                           [f"| {k} | {v} |" for k, v in card_rows(card)])))
print(f"prior shape {tuple(mnist_den.shape)}; sha256 checked against the card when loading")

# %% [markdown]
# DDIM samples (50 steps; 25 in fast mode):

# %%
N_MNIST, MNIST_STEPS = (128, 25) if FAST else (256, 50)
with mnist_den.counting():
    mnist_samples = ddim_images(mnist_den, n=N_MNIST, steps=MNIST_STEPS, seed=30)
print(f"{N_MNIST} samples, {mnist_den.nfe} network calls, {mnist_den.net_seconds:.1f} s in the net")
assert mnist_den.nfe == MNIST_STEPS and mnist_samples.shape == (N_MNIST, 1, 32, 32)
assert mnist_samples.min() >= -1 and mnist_samples.max() <= 1
fig, ax = plt.subplots(figsize=(8, 4.2))
ax.imshow(montage(mnist_samples[:32]), cmap="gray", vmin=-1, vmax=1); ax.axis("off")
plt.show()

# %% [markdown]
# **Statistics against real MNIST.** The card says which images the prior was trained on (the
# first `n_train` of the test split); the rest are held out. As for the digits, we compare the
# samples with held-out images and use as yardstick what `N_MNIST` real *training* images score
# (a perfect model of the training data), averaged over 5 random sets:
#
# * **SW** on flattened images, against `N_MNIST` held-out images: within $1.5$ times the yardstick;
# * **FD** in the features of the shipped MNIST classifier, against the same images: within $1.75$
#   times the yardstick (the FD of a few hundred images is noisy);
# * the **mean image**: RMS difference between the average sample and the average held-out image,
#   within $1.5$ times the yardstick;
# * the **background fraction** (pixels below $-0.9$; MNIST is mostly black), within $0.03$ of that
#   of the training images (grey specks on the background would show here).
#
# Without the MNIST files (offline), these comparisons are skipped with a message.

# %%
def load_mnist_parts(card):
    """(training part, held-out part) of MNIST as recorded in the card; None offline."""
    try:
        test = pt.data.load("mnist", split="test")
        if card.get("split") == "test" and card.get("subset"):
            stop = int(card["subset"].split(":")[1])
            return test[:stop].to(DEVICE), test[stop:].to(DEVICE)
        return pt.data.load("mnist", split="train", limit=10_000).to(DEVICE), test.to(DEVICE)
    except pt.data.DataUnavailable as err:
        print("MNIST not available, skipping the comparison with real images:", err)
        return None


def background(xs):
    return (xs < -0.9).float().mean().item()


def mean_image_rms(a, b):
    return (a.mean(0) - b.mean(0)).pow(2).mean().sqrt().item()


mnist_parts = load_mnist_parts(card)

# %%
if mnist_parts is not None:
    train_mnist, held_mnist = mnist_parts
    ref = random_subset(held_mnist, N_MNIST, 31)
    sw_mnist, rms_mnist = partial(sw_img, ref=ref), partial(mean_image_rms, b=held_mnist)
    fd_mnist = partial(fd_img, ref=ref, clf=pt.pretrained("mnist", "classifier"))
    stats = {"SW": (sw_mnist(mnist_samples), training_floor(train_mnist, sw_mnist, N_MNIST, 50)),
             "FD": (fd_mnist(mnist_samples), training_floor(train_mnist, fd_mnist, N_MNIST, 70)),
             "mean-image RMS": (rms_mnist(mnist_samples),
                                training_floor(train_mnist, rms_mnist, N_MNIST, 60)),
             "background fraction": (background(mnist_samples), background(train_mnist))}
    lines = ["| statistic | samples | real training images |", "|---|---|---|"]
    lines += [f"| {k} | {a:.3f} | {b:.3f} |" for k, (a, b) in stats.items()]
    display(Markdown("\n".join(lines)))
    assert stats["SW"][0] < 1.5 * stats["SW"][1]
    assert stats["FD"][0] < 1.75 * stats["FD"][1]
    assert stats["mean-image RMS"][0] < 1.5 * stats["mean-image RMS"][1]
    assert abs(stats["background fraction"][0] - stats["background fraction"][1]) < 0.03

# %% [markdown]
# ### Stepping through the reverse process
#
# `pt.viz.step_through` runs any method through `pt.iterate` and keeps every `every`-th step. For
# prior sampling the method is `"ddpm"` with no problem and no measurement. Each frame shows the
# state $x_t$ (top) and the denoiser's estimate $\hat x_0 = D(x_t, t)$ (bottom). The estimate
# starts as clipped noise (at $t \approx 1000$ any error in $\hat\varepsilon$ is multiplied by
# $s(t) \approx 150$), becomes a blurred "average digit" (section 2) about halfway, and sharpens into
# a digit long before the state itself looks clean. Drag the slider or press Play.

# %%
REV_STEPS = 100 if FAST else 1000
stepper = pt.viz.step_through("ddpm", mnist_den, None, None, n=4, steps=REV_STEPS,
                                  every=REV_STEPS // 20, generator=seeded(40),
                                  title="DDPM on the MNIST prior")
frames = stepper.frames
assert len(frames) == 21 and stepper.slider.max == len(frames) - 1
assert frames[-1].extras["nfe"] == REV_STEPS, "one network call per step"
assert 0.8 < frames[0].x.std() < 1.2, "the first state is (almost) pure noise"
assert torch.equal(frames[-1].x, frames[-1].x0), "the last step returns the x0 estimate"
mid, final = frames[len(frames) // 2], frames[-1].x
assert ((mid.x0 - final) ** 2).mean() < 0.5 * ((mid.x - final) ** 2).mean(), \
    "halfway, the estimate is already much closer to the final digit than the state is"
first_png = stepper.image.value
stepper.slider.value = stepper.slider.max
assert stepper.image.value != first_png, "moving the slider should change the picture"
stepper.slider.value = 0
stepper

# %% [markdown]
# The same run as a static figure (first, middle and last frame), for exported HTML where widgets
# do not run:

# %%
stepper.filmstrip(idx=(0, len(stepper) // 2, -1))
plt.show()

# %% [markdown]
# ## 6. Summary
#
# * The forward process $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ turns any
#   data into noise; for a Gaussian mixture every noised marginal is again a mixture, in closed form.
# * **Tweedie's formula** ties the three things a diffusion model can predict: the noise, the score
#   and the denoiser $D(x_t, t) = \mathbb E[x_0 \mid x_t]$. $D$ is a *posterior mean*: at high noise
#   it averages over many plausible clean signals, so its output is blurred and off the data.
# * **DDPM** re-noises the estimate with fresh noise at every step and needs many steps; **DDIM**
#   is deterministic and, on the toy, as good with 50 network calls as DDPM with 1000. A network
#   trained by denoising score matching approximates $D$ well at high noise and worst at low noise.
# * Training an image prior is the same loop with a UNet; a short run learns blobs, a longer one
#   (the shipped priors) digits that neither SW nor a classifier's Fréchet distance can tell from
#   real training digits. Choose the distance with care: SW on raw pixels cannot tell independent
#   noisy pixels from digits; the classifier's features can.
#
# Chapter 02 turns such a prior into a posterior sampler: DPS, DiffPIR and DAPS, derived by hand
# and measured against the exact posterior of chapter 00's problems.

# %% [markdown]
# ## References
#
# * Ho, Jain, Abbeel 2020, *Denoising diffusion probabilistic models*, arXiv 2006.11239
# * Song, Meng, Ermon 2021, *Denoising diffusion implicit models* (DDIM), arXiv 2010.02502
# * Song et al. 2021, *Score-based generative modeling through stochastic differential equations*,
#   arXiv 2011.13456
# * Efron 2011, *Tweedie's formula and selection bias*, J. Amer. Statist. Assoc. 106 (no arXiv
#   version)
