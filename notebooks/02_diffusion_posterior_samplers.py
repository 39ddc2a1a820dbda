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
# # Chapter 02: the classical posterior samplers (DPS, DiffPIR, DAPS)
#
# Chapter 01 taught diffusion models as priors: the forward noising, Tweedie's formula (the
# denoiser is a posterior mean) and the DDPM/DDIM samplers. This chapter turns such a prior into a
# *posterior* sampler for chapter 00's 2D inverse problem, where the exact posterior is known.
#
# **Learning outcomes.** After this chapter you can
#
# * say which term of the noised posterior's score is intractable, and how DPS, DiffPIR and DAPS
#   each approximate it;
# * derive one DPS step (a gradient through the denoiser) and one DiffPIR step (a proximal data
#   step and a re-noising), and build a whole DPS loop;
# * predict what breaks when one ingredient changes (the squared norm in DPS, a learned denoiser);
# * read the course's yardsticks, defined here once: PSNR, SSIM, rank coverage, NFE and backward
#   passes (SW and its noise floor come from chapter 00).
#
# **Prerequisites.** Chapter 00 (the 2D problem, its exact posterior, SW and the noise floor) and
# chapter 01 (the VP schedule, Tweedie's formula, DDPM/DDIM steps).
#
# **Study time.** About 4 hours: 2 hours of reading, 2 hours for exercises 02.1-02.5; the
# mini-project, exercise 02.6, is open-ended.
#
# The sections:
#
# 1. split the score of the noised posterior by Bayes' rule, see which term is intractable, and
#    define the yardsticks;
# 2. derive **DPS**, a point mass at the denoiser output paid for by a backward pass
#    (exercise 02.1), measure its approximation, and break it (exercise 02.2);
# 3. derive **DiffPIR**, a Gaussian around the denoiser output and a closed-form proximal step
#    (exercise 02.3), and step through it;
# 4. derive **DAPS** (decoupled annealing: an ODE estimate, Langevin on $x_0$, re-noise);
# 5. measure the three against the exact posterior, with the exact and a learned denoiser
#    (exercise 02.4), in 2 and in 16 dimensions;
# 6. build a DPS loop on a budget (exercise 02.5), and the mini-project (exercise 02.6).
#
# As in chapters 00 and 01, every claim the text makes is checked by an `assert`. Set
# `POSTERIOR_TUTOR_FAST=1` for a quick run (fewer sampling steps; every code path and every check
# still runs). The samplers' benchmark is read from a stored run in `data/runs/`; `RECOMPUTE = True`
# below reruns it.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt

DEVICE = pt.default_device()       # CUDA when present (or POSTERIOR_TUTOR_DEVICE), else CPU
RECOMPUTE = False                  # True: rerun the stored benchmark (full mode, minutes)
FAST = pt.fast_mode()
torch.set_num_threads(1)    # small networks: one thread is fastest, more only add waiting
print(f"device: {DEVICE}, fast mode: {FAST}, recompute stored runs: {RECOMPUTE}")


def seeded(seed):
    """A fresh generator on DEVICE: every random draw in this notebook is reproducible."""
    return torch.Generator(device=DEVICE).manual_seed(seed)


# %% [markdown]
# From chapter 01: the VP schedule, the 2D ring prior with its exact denoiser, and the MLP denoiser
# trained there by denoising score matching (its weights read from chapter 01's stored run).

# %%
sched = pt.VPSchedule()
gmm = pt.toy.ring_of_gaussians()           # 6 modes on a circle of radius 2, std 0.3
exact_den = gmm.denoiser(sched)
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


MLP = dict(steps=4000, hidden=128, lr=3e-3, n_data=20_000)     # chapter 01's settings


def train_mlp():
    """Chapter 01's training run (only called if its stored run is missing)."""
    torch.manual_seed(12)                              # network initialisation
    net = pt.nets.MLP(2, hidden=MLP["hidden"]).to(DEVICE)
    den, losses = pt.priors.train.train_denoiser(net, gmm.sample(MLP["n_data"], generator=seeded(13)),
                                          sched, steps=MLP["steps"], lr=MLP["lr"],
                                          generator=seeded(14))
    state = {k: v.detach().cpu() for k, v in den.net.state_dict().items()}
    return dict(state=state, losses=list(losses), train_seconds=den.train_seconds)


mlp_run = pt.files.stored.run("ch01_mlp_ring", train_mlp, recompute=False, settings=MLP,
                        command="set RECOMPUTE = True at the top of chapter 01 and run it")
mlp_net = pt.nets.MLP(2, hidden=MLP["hidden"]).to(DEVICE)
mlp_net.load_state_dict(mlp_run["state"])
mlp_den = pt.EpsNetDenoiser(mlp_net.eval(), sched, shape=(2,))

# %% [markdown]
# ## 1. From prior to posterior
#
# Back to the inverse problem of chapter 00: the same ring prior, one measurement
# $y = 0.3\,x_1 + x_2 + 0.25\,n$, and an exact posterior $p(x \mid y)$ in closed form. To *sample*
# the posterior with the reverse process of chapter 01 (section 3), a sampler needs the score of the noised
# posterior at every $t$, and Bayes' rule splits it in two:
#
# $$ \nabla \log p_t(x_t \mid y) = \underbrace{\nabla \log p_t(x_t)}_{\text{the prior: the denoiser}}
#    + \underbrace{\nabla \log p(y \mid x_t)}_{\text{the measurement, seen from } x_t},
#    \qquad p(y \mid x_t) = \int p(y \mid x_0)\, p(x_0 \mid x_t)\, dx_0 . $$
#
# The second term is the catch: $y$ was measured from the *clean* $x_0$, so its likelihood given a
# noisy $x_t$ averages over the denoising posterior $p(x_0 \mid x_t)$ of chapter 01 (section 2), which a network
# prior does not give us. Each classical sampler replaces it by an approximation, and that
# approximation is what separates it from the exact posterior. On the toy we have the exact term:
# the noised posterior is `posterior.noised(sched, t)` (a mixture again), so
# $\nabla \log p(y \mid x_t)$ is the difference of two mixture scores. We use it as the yardstick.

# %%
tp = pt.toy.bimodal_problem_2d()
problem, posterior = tp.problem, tp.posterior
y = tp.y.to(DEVICE)
assert torch.allclose(tp.prior.means, gmm.means) and torch.allclose(tp.prior.covs, gmm.covs), \
    "chapter 00's prior is the ring of chapter 01"
FAST_OPTIONS = {"ddpm": dict(steps=200), "dps": dict(steps=200),
                "daps": dict(levels=30, langevin_steps=30), "pnp_ula": dict(steps=1000)}
OPTIONS = {name: (FAST_OPTIONS.get(name, {}) if FAST else {})
           for name in ["ddpm", "dps", "diffpir", "daps", "pnp_ula"]}   # for the live runs below


def exact_likelihood_score(x, t):
    """grad_{x_t} log p(y | x_t), exactly: noised posterior score minus noised prior score."""
    return posterior.noised(sched, t).score(x) - gmm.noised(sched, t).score(x)


def grab_step(method, i, n=200, seed=60, **options):
    """Steps i-1 and i of a library run, and a generator in the state the run had just before
    step i (so that a step written by hand can draw the same noise)."""
    g = seeded(seed)
    it = pt.iterate(method, exact_den, problem, y, n=n, generator=g, **options)
    for _ in range(i):
        before = next(it)
    g_hand = torch.Generator(device=DEVICE)
    g_hand.set_state(g.get_state())
    return before, next(it), g_hand


# %% [markdown]
# ### The yardsticks
#
# Every chapter from here on judges samplers with the same few numbers; they are defined here once.
#
# * **SW and its noise floor** (chapter 00, section 4): the sliced Wasserstein distance between a
#   sampler's samples and exact posterior samples, reported as a multiple of the noise floor (the
#   SW between two exact sets of the same size; 1 is as good as exact).
# * **Mode-weight error**: the total variation $\tfrac12\sum_j |w_j - w_j^\star|$ between the
#   share of samples nearest each posterior component and the exact weights
#   (`pt.metrics.mode_weight_error`; 0 is perfect). **Data residual**: the median of
#   $\lVert A x - y\rVert$ over the samples.
# * **NFE** (number of function evaluations): denoiser calls per sample, counted by the denoiser
#   itself (a call on a batch counts once). **Backward passes**: how many of those calls are
#   differentiated (a vector-Jacobian product through the network, about as costly as the call).
# * On images, where no exact posterior exists: **PSNR**, $10\log_{10}(2^2/\mathrm{MSE})$ in dB for
#   images in $[-1, 1]$ (`pt.metrics.psnr`), of one sample or of the mean of several; **SSIM**, the
#   structural similarity (local means, variances and correlation of the two images compared in a
#   sliding window; 1 for identical images, `pt.metrics.ssim`).
# * **Rank coverage** (`pt.metrics.calibration.rank_coverage`): for each coordinate (pixel), the
#   rank of the true value among the samples. If the sampler is exact, the truth is just one more
#   posterior draw, so its rank is uniform, and it falls in the central $90\%$ band with probability
#   $0.9$, at any number of samples. Below $0.9$ the samples are too narrow (the truth often falls
#   outside them); above, too wide. It needs the truth, so it is computed over many test problems.
#
# The rank coverage on the 2D problem, over 200 problems $(x, y)$ drawn from the model: exact
# posterior samples, and the same samples squeezed halfway towards their mean.

# %%
def coverage_demo(shrink, problems=200, n=99):
    """Mean rank coverage over `problems` draws of (x, y), for posterior samples squeezed by `shrink`."""
    covs, g = [], seeded(70)
    for _ in range(problems):
        x_true = gmm.sample(1, generator=g)[0]
        post = gmm.posterior(problem, problem.measure(x_true, generator=g))
        xs = post.sample(n, generator=g)
        xs = xs.mean(0) + shrink * (xs - xs.mean(0))
        covs.append(float(pt.metrics.calibration.rank_coverage(xs, x_true)))
    return sum(covs) / len(covs)


cov_exact, cov_narrow = coverage_demo(1.0), coverage_demo(0.5)
display(Markdown(f"Rank coverage at level 0.9: exact samples **{cov_exact:.2f}**, squeezed "
                 f"samples **{cov_narrow:.2f}**."))
assert abs(cov_exact - 0.9) < 0.05 and cov_narrow < cov_exact - 0.15, \
    "exact samples read the level; too-narrow samples read less"


# %% [markdown]
# ## 2. DPS: the likelihood of the denoised estimate
#
# **The approximation** (Chung et al. 2023). Replace the denoising posterior $p(x_0 \mid x_t)$ by a
# point mass at its mean, the denoiser output $D(x_t, t)$ (chapter 01, section 2):
#
# $$ p(y \mid x_t) \approx \mathcal N\big(y;\ A\,D(x_t, t),\ \sigma^2 I\big), \qquad
#    \nabla_{x_t} \log p(y \mid x_t) \approx -\frac{1}{\sigma^2}\,
#    J_D(x_t)^\top A^\top \big(A\,D(x_t, t) - y\big), $$
#
# with $J_D$ the Jacobian of the denoiser. Nobody forms $J_D$: the product of a vector with it is a
# **vector-Jacobian product**, one backward pass through the network (`torch.autograd.grad`), as
# expensive as the forward call. **The step**: a DDPM step of chapter 01 from $(x_t, D(x_t, t))$,
# then a move of $x_t$ that lowers the data misfit **of the denoised estimate**. DPS measures that
# misfit by the residual *norm* $\lVert y - A\,D(x_t,t)\rVert$, not its square (the public code's
# form, which divides the Gaussian gradient by the residual norm), and scales the move by
# $\zeta = 0.3$.

# %% [markdown]
# ### Exercise 02.1 (derive): one DPS guidance step
#
# Derive the guidance that DPS adds after its DDPM step: $-\zeta$ times the gradient of the
# residual norm $\lVert y - A\,D(x_t, t)\rVert$ of each sample. Work out on paper with respect to
# which variable the gradient is taken and what the chain rule makes of it, then write
# `dps_correction(den, problem, y, x_t, t, zeta)` returning the correction, shape `(n, d)`.
# Tools: `problem.residual(x, y)` is $Ax - y$, `den(x, t)` is $D(x, t)$, and
# `torch.autograd.grad` differentiates (under `torch.enable_grad()` if gradients are off). The
# checker compares your correction with the one a library DPS run records
# (`step.extras["correction"]`) at three of its steps.

# %% tags=["exercise"]
# Exercise 02.1: your answer
def dps_correction(den, problem, y, x_t, t, zeta):
    """The DPS guidance for each sample at time t, shape (n, d)."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("02.1", dps_correction)

# %% [markdown]
# **The reveal.** The misfit is a function of $x_t$ through the denoiser, so the gradient is taken
# with respect to $x_t$ and the chain rule gives
# $\nabla_{x_t}\lVert r\rVert = J_D(x_t)^\top A^\top r / \lVert r\rVert$ with $r = A\,D(x_t,t) - y$:
# autograd computes it as one vector-Jacobian product. The whole step,
# $x_{t'} = x'_{t'} - \zeta\, \nabla_{x_t}\lVert y - A\,D(x_t,t)\rVert$ with $x'_{t'}$ the DDPM
# step, written by hand and compared with step 10 of a library run (`pt.iterate("dps", ...)`),
# drawing the same DDPM noise:

# %%
def dps_step_by_hand(den, x_t, t, t_prev, zeta, g, eta=1.0, misfit=lambda r: r.norm(dim=1)):
    """One DPS step from x_t at time t to t_prev (DDPM prior step + guidance through D);
    `misfit` maps the residuals (n, m) to one number per sample (DPS: their norms)."""
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        x0 = den(x_in, t)                                              # D(x_t, t)
        err = misfit(problem.residual(x0, y).flatten(1))               # |A D(x_t) - y|
        (grad,) = torch.autograd.grad(err.sum(), x_in)                 # the vector-Jacobian product
    x0 = x0.detach()
    ab = sched.abar(t).item()
    ab_prev = sched.abar(t_prev).item() if t_prev >= 0 else 1.0       # t_prev = -1: the end, x0
    eps = (x_t - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    c = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))    # chapter 01's DDPM noise
    z = torch.randn(x_t.shape, generator=g, device=x_t.device, dtype=x_t.dtype)
    x_prior = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev - c ** 2) * eps + c * z
    return x_prior - zeta * grad


grid_dps = sched.timesteps(50)
before, library_step, g_hand = grab_step("dps", 10, steps=50)
mine = dps_step_by_hand(exact_den, before.x, grid_dps[10], grid_dps[11], 0.3, g_hand)
print("DPS step by hand vs library, max difference",
      f"{(mine - library_step.x).abs().max().item():.1e}")
assert torch.allclose(mine, library_step.x, atol=1e-5)

# %% [markdown]
# **How good is the approximation?** At points $x_t$ drawn from the noised posterior, compare the
# Gaussian approximation's gradient with the exact $\nabla \log p(y \mid x_t)$: their cosine
# (direction) and the median ratio of their norms (size). At low noise $D(x_t, t)$ is sharp and the
# approximation is good; at high noise $D$ is the blurred average of chapter 01 (section 2) and the true
# $p(y \mid x_t)$ is much flatter than $\mathcal N(y; A D, \sigma^2 I)$ (the spread of
# $p(x_0 \mid x_t)$ adds to $\sigma^2$), so the approximate gradient is far too large: DPS's
# $\zeta$ and its division by the residual norm are there to tame it.

# %%
def dps_gradient(x, t):
    """The Gaussian approximation's gradient -J_D^T A^T (A D - y) / sigma^2, via autograd."""
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        log_lik = -0.5 * problem.residual(exact_den(x_in, t), y).pow(2).sum() / problem.sigma ** 2
        (grad,) = torch.autograd.grad(log_lik, x_in)
    return grad


dps_quality = {}
for t in (20, 100, 300, 600, 900):
    xt = posterior.noised(sched, t).sample(1000, generator=seeded(61), dtype=torch.float64)
    exact, approx = exact_likelihood_score(xt, t), dps_gradient(xt, t)
    cos = torch.nn.functional.cosine_similarity(exact, approx, dim=1).mean().item()
    ratio = (approx.norm(dim=1) / exact.norm(dim=1)).median().item()
    dps_quality[t] = (cos, ratio)
lines = ["| t | s(t) | mean cosine | median norm ratio (approx / exact) |", "|---|---|---|---|"]
lines += [f"| {t} | {sched.s(t).item():.2f} | {c:.3f} | {r:.1f} |"
          for t, (c, r) in dps_quality.items()]
display(Markdown("\n".join(lines)))
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
ts = list(dps_quality)
axes[0].plot(ts, [c for c, _ in dps_quality.values()], "o-")
axes[0].set_ylabel("mean cosine"); axes[0].set_ylim(0, 1.05)
axes[1].semilogy(ts, [r for _, r in dps_quality.values()], "o-")
axes[1].axhline(1, color="0.5", lw=0.8); axes[1].set_ylabel("norm ratio, approx / exact")
for ax in axes:
    ax.set_xlabel("t")
fig.suptitle(r"DPS's $\nabla \log \mathcal{N}(y; A D(x_t,t), \sigma^2 I)$ against the exact "
             r"$\nabla \log p(y \mid x_t)$")
plt.show()
assert dps_quality[20][0] > 0.9 and abs(math.log(dps_quality[20][1])) < math.log(1.5), \
    "low noise: the approximation is close"
assert dps_quality[600][1] > 3, "high noise: the approximate gradient is far too large"

# %% [markdown]
# ### Exercise 02.2 (break it): DPS with the squared norm
#
# Change one thing in DPS: differentiate the *squared* residual norm $\lVert y - A\,D(x_t,t)\rVert^2$
# instead of the norm, with the same $\zeta = 0.3$ and the same number of steps (the Gaussian
# likelihood of the approximation is a squared norm, so this looks like the more natural choice).
# What happens to the samples? Set `squared_outcome` to one of the three strings of
# `pt.exercises.ch02.SQUARED_OPTIONS`, copied exactly, before running the cell that measures it.
# The check reads the median data residual of the broken run against that of exact posterior
# samples: above three times it, `"the samples diverge"`; below $0.3$ times it,
# `"the samples collapse onto the measurement line"`; in between, `"about the same samples"`.

# %% tags=["exercise"]
# Exercise 02.2: your prediction
squared_outcome = None   # one of pt.exercises.ch02.SQUARED_OPTIONS, as a string

# %%
def run_dps_by_hand(misfit, n=1000, seed=62):
    """A whole DPS run from noise with `dps_step_by_hand` and the given misfit."""
    steps = OPTIONS["dps"].get("steps", pt.options_of("dps")["steps"])
    grid, g = sched.timesteps(steps), seeded(seed)
    x = torch.randn(n, 2, generator=g, device=DEVICE)
    for i, t in enumerate(grid):
        x = dps_step_by_hand(exact_den, x, t, grid[i + 1] if i + 1 < len(grid) else -1, 0.3, g,
                             misfit=misfit)
    return x


xs_squared = run_dps_by_hand(lambda r: r.pow(2).sum(1))
exact_ref = posterior.sample(1000, generator=seeded(63))
resid = {name: problem.residual(xs, y).flatten(1).norm(dim=1).median().item()
         for name, xs in [("squared", xs_squared), ("exact", exact_ref)]}
squared_ratio = resid["squared"] / resid["exact"]
measured_outcome = pt.exercises.ch02.squared_norm_outcome(squared_ratio)
display(Markdown(f"Median data residual: DPS with the squared norm {resid['squared']:.3f}, exact "
                 f"samples {resid['exact']:.3f} (ratio {squared_ratio:.2f}): "
                 f"**{measured_outcome}**."))
fig, ax = plt.subplots(figsize=(3.5, 3.2))
contour(ax, posterior, colors="0.5")
ax.scatter(*xs_squared.T.cpu(), s=2, alpha=0.4)
ax.set_title("DPS with the squared norm", fontsize=9); square(ax, 3.3)
plt.show()

# %%
pt.exercises.check("02.2", squared_outcome, measured=measured_outcome)

# %% [markdown]
# **The reveal.** By the chain rule $\nabla\lVert r\rVert^2 = 2\lVert r\rVert\,\nabla\lVert r\rVert$:
# the squared norm's step shrinks with the residual, so each step removes a fixed share of
# $A\,D - y$, like a step of gradient descent on the data. Repeated at every one of the steps, it
# drives $Ax$ onto $y$ and never feels $\sigma$: the samples sit on the measurement line, with far
# less spread across it than the posterior has. The norm's step has a fixed length
# $\approx\zeta\lVert A\rVert$, so it stops contracting once the residual is of that size. (The
# paper's Algorithm 1 writes the squared norm, but with a step $\zeta_i = \zeta'/\lVert y -
# A\,D\rVert$ that turns it back into the norm form; `samplers/dps.py` explains the factor 2.)

# %% [markdown]
# ## 3. DiffPIR: a proximal step on the denoised estimate
#
# **The approximation** (Zhu et al. 2023). Keep the spread of $p(x_0 \mid x_t)$ but make it a
# Gaussian around the denoiser output, $p(x_0 \mid x_t) \approx \mathcal N(x_0; D(x_t, t), r_t^2 I)$
# with $r_t = s(t)/\sqrt\lambda$ (the VE noise level of chapter 01, section 1, scaled by a weight $\lambda$,
# default 1). Then $p(x_0 \mid x_t, y) \propto p(y \mid x_0)\, \mathcal N(x_0; D, r_t^2 I)$ is a
# Gaussian prior times a linear Gaussian likelihood: chapter 00's Kalman update with $C = r_t^2 I$.
# Its mean is the **proximal step**
#
# $$ \hat x_0 = \arg\min_x \tfrac{1}{2\sigma^2}\lVert y - A x\rVert^2 + \tfrac{1}{2 r_t^2}\lVert x - D\rVert^2
#    = D + r_t^2 A^\top\big(r_t^2 A A^\top + \sigma^2 I\big)^{-1}\big(y - A D\big), $$
#
# closed-form, with no backward pass through the network. **The step** then re-noises $\hat x_0$
# to the next time $t'$ with a mix of the noise that $\hat x_0$ implies for $x_t$ and a share
# $\zeta$ of fresh noise ($\zeta = 0.1$ by default).

# %% [markdown]
# ### Exercise 02.3 (derive): one DiffPIR step
#
# Derive one DiffPIR step from $x_t$ at time $t$ to $x_{t'}$ (`t` and `t_prev` are integer times,
# `t_prev` the later, smaller one; `z` has the shape of `x_t`), in three moves: (i) the proximal
# estimate $\hat x_0$ around the denoiser output, with the radius $r_t$ above; (ii) the noise
# $\hat\varepsilon$ that $\hat x_0$ implies for $x_t$ (solve the forward noising of chapter 01 for
# the noise); (iii) the state at $t'$, built from $\hat x_0$ and a mix of $\hat\varepsilon$ with
# the fresh noise `z`, weighted so that a share $\zeta$ of the noise *variance* is fresh and the
# total still has unit variance. Write `diffpir_step(den, problem, y, x_t, t, t_prev, lam, zeta, z)`
# returning $x_{t'}$. Tools: `problem.prox(x, y, r)` is the prox, `den.schedule.s(t)` is $s(t)$,
# `den.schedule.abar(t)` is $\bar\alpha_t$ (tensors: `.item()` gives the number).

# %% tags=["exercise"]
# Exercise 02.3: your answer
def diffpir_step(den, problem, y, x_t, t, t_prev, lam, zeta, z):
    """One DiffPIR step from x_t at time t to time t_prev, with fresh noise z."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("02.3", diffpir_step)

# %% [markdown]
# **The reveal.**
#
# $$ \hat x_0 = \mathrm{prox}\big(D(x_t, t), y, r_t\big),\ r_t = \frac{s(t)}{\sqrt\lambda},\quad
#    \hat\varepsilon = \frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1 - \bar\alpha_t}},\quad
#    x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t'}}\,\big(\sqrt{1-\zeta}\,\hat\varepsilon + \sqrt\zeta\, z\big). $$
#
# The implied noise uses the *corrected* $\hat x_0$, so the state at $t'$ is consistent with the
# data step; the square roots make the two noises add up to unit variance. By hand, with the prox
# written as chapter 00's Kalman update, against step 10 of a library run:

# %%
def diffpir_step_by_hand(den, x_t, t, t_prev, g, lam=1.0, zeta=0.1):
    """One DiffPIR step: denoise, Kalman/prox step with C = r_t^2 I, re-noise to t_prev."""
    A, s2 = problem.operator.matrix().to(x_t), problem.sigma ** 2
    D = den(x_t, t)
    r2 = sched.s(t).item() ** 2 / lam
    gain = r2 * A.T @ torch.linalg.inv(r2 * A @ A.T + s2 * torch.eye(A.shape[0]).to(x_t))
    x0_hat = D + (y - D @ A.T) @ gain.T                                # the prox, in closed form
    ab, ab_prev = sched.abar(t).item(), sched.abar(t_prev).item()
    eps_hat = (x_t - math.sqrt(ab) * x0_hat) / math.sqrt(1 - ab)
    z = torch.randn(x_t.shape, generator=g, device=x_t.device, dtype=x_t.dtype)
    noise = math.sqrt(1 - zeta) * eps_hat + math.sqrt(zeta) * z
    return math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - ab_prev) * noise, x0_hat


grid_pir = sched.timesteps(pt.options_of("diffpir")["steps"], "sqrt")   # the official code's grid
before, library_step, g_hand = grab_step("diffpir", 10)
mine, mine_x0 = diffpir_step_by_hand(exact_den, before.x, grid_pir[10], grid_pir[11], g_hand)
print("DiffPIR step by hand vs library, max difference",
      f"{(mine - library_step.x).abs().max().item():.1e}")
assert torch.allclose(mine_x0, library_step.x0, atol=1e-5), "the prox is chapter 00's Kalman update"
assert torch.allclose(mine, library_step.x, atol=1e-5)

# %% [markdown]
# ### Stepping through a sampler
#
# `pt.viz.step_through` runs a method through `pt.iterate` and keeps every frame: the particles
# $x_t$ (blue), their $x_0$ estimates (orange), the data-consistency correction of that step
# (red arrows) and the exact posterior contours. Drag the slider or press Play. Here is DiffPIR:
# watch the orange estimates jump onto the measurement line (the proximal step) while the blue
# state is re-noised around them.
#
# DiffPIR's main knob is $\zeta$, the share of fresh noise when the state is re-noised around the
# proximal estimate ($\zeta = 0$: deterministic, $\zeta = 1$: all fresh). Pick another value in the
# `zeta` drop-down: the chain runs again with the same seed and the frames are replaced.

# %%
stepper = pt.viz.step_through("diffpir", exact_den, problem, y, n=300, density=posterior,
                                  generator=seeded(20), knobs={"zeta": [0.0, 0.1, 0.3, 1.0]})
assert stepper.slider.max == len(stepper.frames) - 1
first_png = stepper.image.value
stepper.slider.value = stepper.slider.max
assert stepper.image.value != first_png, "moving the slider should change the picture"
x_default = stepper.frames[-1].x
stepper.rerun(20, zeta=1.0)                           # what the drop-down does
assert not torch.allclose(stepper.frames[-1].x, x_default), "another zeta, other samples"
stepper.rerun(20, zeta=0.1)                           # back to the default
assert torch.allclose(stepper.frames[-1].x, x_default)
stepper

# %% [markdown]
# The same run as a static figure (first, middle and last frame), for exported HTML where widgets
# do not run:

# %%
stepper.filmstrip(idx=(0, len(stepper) // 2, -1))
plt.show()

# %% [markdown]
# DPS takes many more, smaller steps: we keep every `every`-th one. The red arrows are the guidance
# $-\zeta \nabla_{x_t} \lVert y - A D(x_t, t)\rVert$, computed through the denoiser.

# %%
dps_steps = OPTIONS["dps"].get("steps", pt.options_of("dps")["steps"])
dps_stepper = pt.viz.step_through("dps", exact_den, problem, y, n=300, density=posterior,
                                      generator=seeded(21), every=dps_steps // 20,
                                      **OPTIONS["dps"])
assert dps_stepper.slider.max == len(dps_stepper.frames) - 1 <= 21
dps_stepper

# %%
dps_stepper.filmstrip(idx=(0, len(dps_stepper) // 2, -1))
plt.show()

# %% [markdown]
# ## 4. DAPS: decouple, sample the measurement, re-noise
#
# **The approximation** (Zhang et al. 2024). Like DiffPIR, a Gaussian for the denoising posterior,
# $p(x_0 \mid x_t) \approx \mathcal N(x_0; \hat x_0(x_t), r_t^2 I)$ with $r_t = s(t)$, but with two
# changes: its centre $\hat x_0$ is the end of the probability-flow ODE from $x_t$ to 0 (a few DDIM
# steps of chapter 01, `ode_steps`, default 5), not a one-call denoiser estimate; and DAPS **samples**
# $p(x_0 \mid x_t, y) \propto \mathcal N(x_0; \hat x_0, r_t^2 I)\, p(y \mid x_0)$ instead of taking its
# mean, with `langevin_steps` Langevin steps (default 100; chapter 03 derives Langevin sampling and
# its step-size bias, here it is enough that each step moves down $\nabla U$ and adds noise) on
# $U(x_0) = \lVert x_0 - \hat x_0\rVert^2 / 2r_t^2 + \lVert y - A x_0\rVert^2 / 2\sigma^2$:
#
# $$ x_0 \leftarrow x_0 - \eta\,\nabla U(x_0) + \sqrt{2\eta}\, z, \qquad
#    \eta = \frac{\mathrm{lr}}{1/r_t^2 + \lVert A\rVert^2/\sigma^2}, $$
#
# (the step a fraction `lr=0.2` of the inverse Lipschitz constant of $\nabla U$). **The step**:
# at each of `levels` noise levels (default 200, spaced as in EDM from $s = 100$ to $0.1$), ODE,
# Langevin, then re-noise the sample $x_0$ to the next level, $x = \sqrt{\bar\alpha}\,x_0 +
# \sqrt{1-\bar\alpha}\,\varepsilon$ with fresh $\varepsilon$: the new $x_t$ does not remember the old
# one except through $x_0$ (the "decoupling"). One level by hand, against level 10 of a small
# library run:

# %%
from posterior_tutor.samplers.daps import annealing_grid   # the levels, decreasing

DAPS_SMALL = dict(levels=20, ode_steps=5, langevin_steps=20)


def daps_level_by_hand(den, x_t, t, t_next, g, ode_steps=5, langevin_steps=20, lr=0.2):
    """One DAPS level: ODE estimate of x0, Langevin on x0 with the likelihood, re-noise."""
    times = sched.timesteps(min(ode_steps, t + 1), t_max=t)           # DDIM from t down to 0
    x = x_t
    for j, tj in enumerate(times):
        x0 = den(x, tj)
        if j + 1 == len(times):
            break
        ab, ab_next = sched.abar(tj).item(), sched.abar(times[j + 1]).item()
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        x = math.sqrt(ab_next) * x0 + math.sqrt(1 - ab_next) * eps
    x0_hat = x0
    A = problem.operator.matrix().to(x_t)
    r2, s2 = sched.s(t).item() ** 2, problem.sigma ** 2
    eta = lr / (1 / r2 + torch.linalg.matrix_norm(A, 2).item() ** 2 / s2)
    x0 = x0_hat.clone()
    for _ in range(langevin_steps):
        grad_U = (x0 - x0_hat) / r2 + (x0 @ A.T - y) @ A / s2
        z = torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)
        x0 = x0 - eta * grad_U + math.sqrt(2 * eta) * z
    eps = torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)
    ab = sched.abar(t_next).item()
    return math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps, x0_hat


levels_daps = annealing_grid(sched, DAPS_SMALL["levels"])
before, library_step, g_hand = grab_step("daps", 10, **DAPS_SMALL)
mine, mine_ode = daps_level_by_hand(exact_den, before.x, levels_daps[10], levels_daps[11], g_hand)
print("DAPS level by hand vs library, max difference",
      f"{(mine - library_step.x).abs().max().item():.1e}")
assert torch.allclose(mine_ode, library_step.extras["x0_ode"], atol=1e-5), "the ODE estimate"
assert torch.allclose(mine, library_step.x, atol=1e-4)

# %% [markdown]
# ## 5. The three samplers against the exact posterior
#
# We run each sampler with its paper-default settings (`pt.options_of(name)`), plus `ddpm`, which
# ignores $y$ and samples the prior (the "ignore the data" reference), and judge each set of
# `N_POST` samples against `N_POST` exact posterior samples with the yardsticks of section 1: SW in
# noise floors, the mode-weight error, the data residual, NFE, backward passes, and the wall time.
#
# The same with the MLP denoiser of chapter 01, section 3 (a learned prior, as in real life), and on
# chapter 00's 16-dimensional problem (exact denoiser). These runs take minutes, so they are read
# from a stored run (`RECOMPUTE = True` at the top reruns them, and their checks). The stored run
# also holds a Langevin sampler, PnP-ULA, which chapter 03 derives; it is not shown here.

# %%
BASELINES = ["dps", "diffpir", "daps", "pnp_ula"]   # what the stored run holds
SHOWN = ["ddpm", "dps", "diffpir", "daps"]           # what this chapter has taught
N_POST = 1000
BENCH_SETTINGS = dict(n=N_POST, methods=["ddpm"] + BASELINES, options="library defaults",
                      mlp_steps=MLP["steps"], seeds=(1, 2, 3, 5, 7, 30))


def sliced_post(xs, exact):
    """SW to exact samples, the same 256 directions for every method."""
    return float(pt.metrics.sliced_wasserstein(xs, exact, generator=seeded(7)))


def data_residual(xs, toy):
    return toy.problem.residual(xs, toy.y.to(xs)).flatten(1).norm(dim=1).median().item()


def benchmark(den, toy, keep_samples):
    """Every baseline and the ddpm prior on one toy problem, against its exact posterior."""
    exact = toy.posterior.sample(N_POST, generator=seeded(1)).float()
    floor = pt.metrics.noise_floor(lambda n, generator: toy.posterior.sample(n, generator=generator),
                                   N_POST, generator=seeded(2))
    prior_xs = toy.prior.sample(N_POST, generator=seeded(3)).float()
    ref = dict(floor=floor.mean, prior_sw=sliced_post(prior_xs, exact),
               exact_resid=data_residual(exact, toy), prior_resid=data_residual(prior_xs, toy))
    rows = {}
    for name in ["ddpm"] + BASELINES:
        xs, cost = pt.evaluation.toy_suite.timed_sample(name, den, toy.problem, toy.y.to(DEVICE), N_POST, seeded(5))
        rows[name] = dict(sw=sliced_post(xs, exact), nfe=cost.nfe, backward=cost.backward,
                          wall=cost.wall_s, resid=data_residual(xs, toy),
                          mode_tv=float(pt.metrics.mode_weight_error(xs, toy.posterior)))
        if keep_samples:
            rows[name]["samples"] = xs.cpu().half()
    out = dict(rows=rows, ref=ref)
    if keep_samples:
        out["exact"] = exact.cpu().half()
    return out


bench_computed = []


def run_benchmarks():
    bench_computed.append(True)
    tp16 = pt.toy.gmm_problem()
    return {"exact": benchmark(exact_den, tp, True), "learned": benchmark(mlp_den, tp, True),
            "d16": benchmark(tp16.prior.denoiser(sched), tp16, False)}


bench = pt.files.stored.run("ch02_samplers_toy", run_benchmarks, recompute=RECOMPUTE,
                      settings=BENCH_SETTINGS,
                      command="set RECOMPUTE = True at the top of chapter 02 and run it")


def check(claim, ok):
    """Assert a claim on numbers computed in this run; only report it on stored numbers."""
    if bench_computed:
        assert ok, claim
    print(("checked: " if bench_computed else "held when the stored run was made: ") + claim)


def show_table(res, title):
    ref = res["ref"]
    lines = [f"**{title}** (N = {N_POST}; noise floor SW {ref['floor']:.3f}; prior samples SW "
             f"{ref['prior_sw']:.3f}; residual of exact samples {ref['exact_resid']:.2f}, of prior "
             f"samples {ref['prior_resid']:.2f})", "",
             "| method | SW | × floor | mode TV | residual | NFE | backward | wall [s] |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in res["rows"].items():
        if name not in SHOWN:
            continue
        lines.append(f"| {name} | {r['sw']:.3f} | {r['sw'] / ref['floor']:.1f} | {r['mode_tv']:.2f} "
                     f"| {r['resid']:.2f} | {r['nfe']} | {r['backward']} | {r['wall']:.1f} |")
    display(Markdown("\n".join(lines)))


show_table(bench["exact"], "2D problem, exact denoiser")

# %%
def scatter_panels(res, suptitle):
    names = [k for k in res["rows"] if k in SHOWN]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(2.8 * (len(names) + 1), 3.2), sharey=True)
    panels = [("exact posterior", res["exact"])] + [
        ("ddpm (prior: ignores y)" if k == "ddpm" else k, res["rows"][k]["samples"]) for k in names]
    for ax, (name, xs) in zip(axes, panels):
        contour(ax, posterior, colors="0.5")
        ax.scatter(*xs.float().T, s=2, alpha=0.4, c="k" if name.startswith("exact") else "C0")
        ax.set_title(name, fontsize=9); square(ax, 3.3); ax.set_xlabel("$x_1$")
    axes[0].set_ylabel("$x_2$")
    fig.suptitle(suptitle)
    plt.show()


scatter_panels(bench["exact"], "exact denoiser: samples over the exact posterior contours")

# %% [markdown]
# How to read the table:
#
# * every posterior sampler **fits the data** (its residual is close to that of exact samples, far
#   below that of prior samples) and **beats ignoring the data** (SW well below the prior's);
# * every method makes the network calls its options imply, and only DPS back-propagates through
#   the network: one backward pass per call, the price of its vector-Jacobian product;
# * but **fitting the data is not sampling the posterior**. Even with the exact denoiser the
#   samplers sit several noise floors away from the exact posterior, and the mode-weight error says
#   why: they put the wrong mass in each mode. These errors are the approximations above, not the
#   network (the denoiser here is exact): DPS's Gaussian around $D(x_t, t)$ ignores the spread of
#   $p(x_0 \mid x_t)$ and its $\zeta$ acts at every step (its total guidance grows with the step
#   count); DiffPIR's and DAPS's Gaussian of width $s(t)$ is not the multimodal $p(x_0 \mid x_t)$
#   of chapter 01, section 2.

# %%
rows, ref = bench["exact"]["rows"], bench["exact"]["ref"]
THREE = SHOWN[1:]                                    # the three posterior samplers
expected = {"ddpm": 1000, "dps": 1000, "diffpir": 100, "daps": 1000}
check("each method makes the denoiser calls its defaults imply",
      all(rows[k]["nfe"] == v for k, v in expected.items()))
check("only DPS back-propagates through the denoiser, once per call",
      all(rows[k]["backward"] == (rows[k]["nfe"] if k == "dps" else 0) for k in SHOWN))
check("every posterior sampler fits the data and beats the prior by SW",
      all(rows[k]["resid"] < 0.5 * ref["prior_resid"] and rows[k]["sw"] < 0.6 * ref["prior_sw"]
          for k in THREE))
check("none of them is within 1.5 noise floors of the exact posterior",
      all(rows[k]["sw"] > 1.5 * ref["floor"] for k in THREE))
closest = min(THREE, key=lambda k: rows[k]["sw"])
display(Markdown(f"Closest to the exact posterior with the exact denoiser: **{closest}** "
                 f"({rows[closest]['sw'] / ref['floor']:.1f} noise floors)."))

# %% [markdown]
# ### Exercise 02.4 (predict, then read the table): a learned denoiser
#
# The next table repeats the runs with the MLP of chapter 01 in place of the exact denoiser. The
# network is close to the exact denoiser where it saw data, and worst at low noise and between the
# modes (chapter 01, section 3). Which of the three samplers, `"dps"`, `"diffpir"` or `"daps"`,
# loses the most by the swap (the largest increase of SW)? Think about *how* each one uses the
# network, then set `hurt_most` before running the next cell.

# %% tags=["exercise"]
# Exercise 02.4: your prediction
hurt_most = None   # "dps", "diffpir" or "daps"

# %%
show_table(bench["learned"], "2D problem, learned MLP denoiser")
scatter_panels(bench["learned"], "learned denoiser: samples over the exact posterior contours")
lr_rows = bench["learned"]["rows"]
check("with the learned denoiser every posterior sampler still fits the data",
      all(lr_rows[k]["resid"] < 0.5 * bench["learned"]["ref"]["prior_resid"] for k in THREE))
loss = {k: lr_rows[k]["sw"] - rows[k]["sw"] for k in THREE}
most = max(loss, key=loss.get)
display(Markdown(f"The swap costs **{most}** the most: SW {rows[most]['sw']:.3f} with the exact "
                 f"denoiser, {lr_rows[most]['sw']:.3f} with the learned one "
                 f"(prior samples: {bench['learned']['ref']['prior_sw']:.3f})."))

# %%
pt.exercises.check("02.4", hurt_most, measured=most)

# %% [markdown]
# **The reveal.** DiffPIR and DAPS only *evaluate* the network; DPS *differentiates* it. Denoising
# score matching trains the network's outputs, never its Jacobian, so the vector-Jacobian product
# of a network that fits its outputs well can still point the wrong way. Compare the rows of the
# two tables method by method.
#
# **Sixteen dimensions.** Chapter 00's $d = 16$ problem (4 measurements), exact denoiser:

# %%
show_table(bench["d16"], "d = 16, rank-4 operator, exact denoiser")
d16 = bench["d16"]
check("in 16 dimensions every posterior sampler still fits the data",
      all(d16["rows"][k]["resid"] < 0.5 * d16["ref"]["prior_resid"] for k in THREE))
worst16 = max(THREE, key=lambda k: d16["rows"][k]["mode_tv"])
display(Markdown(f"Largest mode-weight error in 16 dimensions: {worst16}, "
                 f"{d16['rows'][worst16]['mode_tv']:.2f}."))
near_prior = [k for k in THREE if d16["rows"][k]["sw"] > 0.85 * d16["ref"]["prior_sw"]]
check("in 16 dimensions some sampler is hardly closer to the posterior than the prior is",
      len(near_prior) > 0)
print("SW within 15% of the prior samples' SW:", ", ".join(near_prior))

# %% [markdown]
# In 16 dimensions the lesson is sharper: every sampler still fits the data, yet by SW some of them
# are hardly closer to the posterior than prior samples are, and the mode-weight errors are large.
# A sample that explains $y$ can sit in the wrong mode, and (chapter 00) the mode also decides the
# 12 unmeasured coordinates.

# %% [markdown]
# ## 6. Build: DPS on a budget
#
# ### Exercise 02.5 (build): a whole DPS loop in at most 200 network calls
#
# Write `dps_sampler(den, problem, y, n, generator)` returning `n` samples of shape `(n, 2)` for the
# 2D problem: a whole DPS run from pure noise, with at most 200 denoiser calls (each call on the
# whole batch) and the guidance of exercise 02.1 with $\zeta = 0.3$, each step a DDPM step as in
# `dps_step_by_hand` above. `den.schedule.timesteps(k)` is a grid of `k` integer times from the top
# down to 0; after the last one the chain ends on its $x_0$ estimate ($\bar\alpha = 1$ there:
# `abar` of a negative time is *not* 1). The checker runs it once with the exact denoiser and a
# seeded generator, and scores the samples by SW to exact posterior samples in noise floors
# (`pt.exercises.scoring.sampler_score`); it passes at twice the noise floor or less. Draw every
# random number from `generator` (on `generator.device`). Returning `n` copies of $A^\top y$
# scores far above the threshold.

# %% tags=["exercise"]
# Exercise 02.5: your answer
def dps_sampler(den, problem, y, n, generator):
    """A DPS run on the 2D problem in at most 200 network calls; returns (n, 2) samples."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("02.5", dps_sampler)

# %% [markdown]
# **The reveal.** One denoiser call per step, on a leaf tensor: its output feeds the DDPM step of
# chapter 01 and, through one backward pass, the guidance. The library's `pt.sample("dps", ...,
# steps=200)` is that loop; scored the same way, next to the paper's 1000 steps:

# %%
from posterior_tutor.exercises.scoring import sampler_score


def library_dps(steps):
    return lambda den, problem, y, n, g: pt.sample("dps", den, problem, y, n=n, generator=g,
                                                   steps=steps)


dps_budget_scores = {steps: sampler_score(library_dps(steps), "2d-bimodal", n=1000)[0]
                     for steps in (200, 1000)}
display(Markdown(f"Library DPS: **{dps_budget_scores[200]:.1f}** noise floors with 200 steps, "
                 f"**{dps_budget_scores[1000]:.1f}** with 1000 (threshold of exercise 02.5: "
                 f"{pt.exercises.REGISTRY['02.5'].threshold:g})."))
assert dps_budget_scores[200] <= pt.exercises.REGISTRY["02.5"].threshold
assert dps_budget_scores[200] < dps_budget_scores[1000], \
    "on the 2D problem, fewer steps at the same zeta are closer: the guidance adds up over steps"

# %% [markdown]
# With the same $\zeta$, 200 steps are *closer* to the posterior than 1000: the guidance acts at
# every step, so its total grows with the step count, and at 1000 steps it over-fits the data.
# $\zeta$ and the step count are one knob, not two.
#
# ### Exercise 02.6 (mini-project, optional): without a backward pass
#
# DiffPIR needs no backward pass and only 100 network calls, but its default settings leave it far
# from the posterior (section 5). Write `no_backward_sampler(den, problem, y, n, generator)` that
# does better: at most 100 denoiser calls, no gradient through the denoiser, and a score of at most
# $7$ noise floors (the checker scores it as in exercise 02.5, and refuses it if any denoiser call
# is differentiated). Any idea is allowed: DiffPIR's knobs (`pt.options_of("diffpir")` lists them
# with their defaults; `pt.sample("diffpir", ..., name=value)` sets one), another schedule, a step
# of your own;
# [`docs/adding_a_method.md`](../docs/adding_a_method.md) shows how to turn a good one into a
# library method. The score is reported; it does not block the chapter.

# %% tags=["exercise"]
# Exercise 02.6: your answer
def no_backward_sampler(den, problem, y, n, generator):
    """At most 100 network calls, no backward pass; returns (n, 2) samples."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("02.6", no_backward_sampler)

# %%
diffpir_default = sampler_score(
    lambda den, problem, y, n, g: pt.sample("diffpir", den, problem, y, n=n, generator=g),
    "2d-bimodal", n=1000, nfe_budget=100, backward=False)[0]
display(Markdown(f"DiffPIR with its defaults scores **{diffpir_default:.1f}** noise floors on the "
                 "same test; `pt.exercises.hint(\"02.6\")` climbs to one sampler that passes."))
assert diffpir_default > pt.exercises.REGISTRY["02.6"].threshold, "the defaults do not pass"

# %% [markdown]
# ## 7. Summary
#
# * A posterior sampler needs $\nabla \log p(y \mid x_t)$, which is intractable: $y$ was measured
#   from $x_0$, so its likelihood given $x_t$ averages over the denoising posterior
#   $p(x_0 \mid x_t)$. Each classical sampler approximates that posterior:
# * **DPS** by a point mass at $D(x_t, t)$, and pays a backward pass per step for the
#   vector-Jacobian product; its gradient is close at low noise and far too large at high noise;
# * **DiffPIR** by a Gaussian of width $s(t)/\sqrt\lambda$ around $D$: a closed-form proximal
#   step (chapter 00's Kalman update), no backward pass;
# * **DAPS** by a Gaussian around an ODE estimate, sampled by Langevin and re-noised at every level.
# * We wrote each step by hand and matched the library's. All of them fit the data, none of them
#   samples the exact posterior, even with the exact denoiser: they put the wrong mass in each mode,
#   and in 16 dimensions some are hardly closer to the posterior than the prior is.
# * Small changes matter: the squared norm makes DPS collapse onto the data, a learned denoiser
#   hurts the sampler that differentiates it, and DPS's step count and $\zeta$ act together.
#
# The next chapters look at methods that aim to do better per network call: LATINO (Langevin with
# one-step denoising and a proximal data step, chapter 03), UD2M (chapter 04), Spin (sparse
# scheduled guidance, chapter 05) and APS (chapter 06).

# %% [markdown]
# ## References
#
# * Chung, Kim, Mccann, Klasky, Ye 2023, *Diffusion posterior sampling for general noisy inverse
#   problems* (DPS), arXiv 2209.14687
# * Zhu et al. 2023, *Denoising diffusion models for plug-and-play image restoration* (DiffPIR),
#   arXiv 2305.08995
# * Zhang et al. 2024, *Improving diffusion inverse problem solving with decoupled noise annealing*
#   (DAPS), arXiv 2407.01521
# * Laumont et al. 2022, *Bayesian imaging using Plug & Play priors* (PnP-ULA), arXiv 2103.04715
# * Karras, Aittala, Aila, Laine 2022, *Elucidating the design space of diffusion-based generative
#   models* (EDM, DAPS's noise levels), arXiv 2206.00364
