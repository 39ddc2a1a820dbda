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
# # Chapter 00: inverse problems and posteriors
#
# This chapter sets the stage for the whole course. We
#
# 1. state what an inverse problem is and why we want the whole **posterior**, not one answer;
# 2. build a 2D problem whose posterior we know *exactly*, and derive it by hand (exercise 00.1
#    and exercise 00.2);
# 3. see why the prior matters: the same measurement with three priors gives three posteriors;
# 4. check the picture in 16 dimensions, where the data inform only a few directions.
#
# No sampler appears here: chapter 01 first teaches diffusion models, then chapter 02 derives the
# classical diffusion posterior samplers (DPS, DiffPIR, DAPS) by hand and measures them against the exact
# posteriors built in this chapter. Every claim the text makes is also checked by an `assert`, so
# the notebook fails loudly if the library stops behaving as described. This chapter is all
# closed-form algebra: it runs in seconds in either mode (`POSTERIOR_TUTOR_FAST=1` changes only
# the number of plotted samples).
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt

DEVICE = pt.default_device()              # CUDA when present (or POSTERIOR_TUTOR_DEVICE), else CPU
FAST = pt.fast_mode()
N = 500 if FAST else 1000                 # samples drawn for the pictures
torch.set_num_threads(1)    # tiny problems: one thread is fastest, more only add waiting
print(f"device: {DEVICE}, fast mode: {FAST}, samples per picture: {N}")


def seeded(seed):
    """A fresh generator on DEVICE: every random draw in this notebook is reproducible."""
    return torch.Generator(device=DEVICE).manual_seed(seed)


# %% [markdown]
# ## 1. Inverse problems and Bayes' rule
#
# We observe a measurement $y \in \mathbb{R}^m$ of an unknown signal $x \in \mathbb{R}^d$ through a
# known linear operator $A$ and Gaussian noise:
#
# $$ y = A x + \sigma n, \qquad n \sim \mathcal{N}(0, I). $$
#
# When $A$ has fewer rows than columns (or is badly conditioned), many $x$ explain $y$ equally well:
# the data alone cannot decide. A **prior** $p(x)$ says which signals are plausible, and Bayes' rule
# combines the two:
#
# $$ p(x \mid y) \;\propto\; \underbrace{p(y \mid x)}_{\mathcal{N}(y;\, A x,\, \sigma^2 I)}\; p(x). $$
#
# Why the whole posterior and not one "best" $x$? Because the posterior may have **several modes**.
# Its mean (the MMSE estimate) then averages incompatible explanations and can land where the
# posterior has almost no mass; its mode (MAP) hides the alternatives. Samples from $p(x \mid y)$
# show all the explanations, with their probabilities, and give uncertainty for free.
# The rest of the course is about drawing such samples when $p(x)$ is known only through a
# diffusion model (chapter 01 onwards).

# %% [markdown]
# ## 2. The 2D teaching problem
#
# `pt.toy.bimodal_problem_2d()` gives a prior made of six Gaussians on a ring (radius 2, standard
# deviation $0.3$, equal weights) and **one** noisy linear measurement
# $y = 0.3\,x_1 + x_2 + 0.25\,n$. One number for two unknowns: the data only says that $x$ lies
# near the line $\{a^\top x = y\}$ with $a = (0.3, 1)$. The prior says that $x$ lies near the ring.
# Together they leave a few candidate regions: where the line crosses the modes.

# %%
tp = pt.toy.bimodal_problem_2d()
prior, problem, posterior = tp.prior, tp.problem, tp.posterior
y = tp.y.to(DEVICE)                       # the measurement lives where the samples will
a = problem.operator.matrix()[0]          # the measurement row (0.3, 1)
print(tp)
print("y =", y.tolist(), " sigma =", problem.sigma, " x_true =", tp.x_true.tolist())
print("posterior weights:", [round(w, 4) for w in posterior.weights.tolist()])

# %%
LIM = 3.3
grid_1d = torch.linspace(-LIM, LIM, 200, dtype=torch.float64)
GX, GY = torch.meshgrid(grid_1d, grid_1d, indexing="xy")
grid_pts = torch.stack([GX.flatten(), GY.flatten()], 1)


def contour(ax, gmm, colors="0.3", **kw):
    """Contours of a 2D Gaussian-mixture density, at 0.1%, 1%, 10% and 50% of its peak (geometric
    levels, so that small modes show up too)."""
    dens = gmm.log_prob(grid_pts).exp().reshape(GX.shape)
    levels = (dens.max() * torch.tensor([1e-3, 1e-2, 1e-1, 0.5], dtype=dens.dtype)).tolist()
    ax.contour(GX, GY, dens, levels=levels, colors=colors, linewidths=0.8, **kw)


def measurement_line(ax):
    x1 = torch.tensor([-LIM, LIM])
    ax.plot(x1, (y[0].cpu() - a[0] * x1) / a[1], "--", color="C3", lw=1.2, label=r"$a^\top x = y$")


def axes_2d(ax):
    ax.set_xlim(-LIM, LIM); ax.set_ylim(-LIM, LIM); ax.set_aspect("equal")
    ax.set_xlabel("$x_1$"); ax.set_ylabel("$x_2$")


exact_samples = posterior.sample(N, generator=seeded(1))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
contour(axes[0], prior)
measurement_line(axes[0])
axes[0].plot(*tp.x_true, "k*", ms=12, label="x that made y")
axes[0].set_title("prior p(x) and the measurement line")
contour(axes[1], posterior, colors="C0")
axes[1].scatter(*exact_samples.cpu().T, s=3, c="k", alpha=0.4, label="exact posterior samples")
measurement_line(axes[1])
axes[1].set_title("exact posterior p(x | y)")
for ax in axes:
    axes_2d(ax); ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### The posterior by hand
#
# A Gaussian mixture prior $p(x) = \sum_k w_k \mathcal{N}(x; \mu_k, C_k)$ with a linear Gaussian
# likelihood gives a Gaussian mixture posterior. Each component is updated by the
# **Kalman** formulas (they never invert $C_k$, so they also work for a flat component):
#
# $$ G_k = A C_k A^\top + \sigma^2 I,\quad K_k = C_k A^\top G_k^{-1},\quad
#    m_k = \mu_k + K_k (y - A\mu_k),\quad P_k = C_k - K_k A C_k, $$
#
# and the component weights are re-weighted by how well each component predicts $y$ (the
# *evidence*): $w'_k \propto w_k\, \mathcal{N}(y; A\mu_k, G_k)$. We code this for one component and
# compare with the library's `tp.posterior`.

# %%
A = problem.operator.matrix().double()    # (1, 2)
y64 = tp.y.double()
s2 = problem.sigma ** 2


def component_posterior(w, mu, C):
    """Kalman update of one prior component: posterior mean, covariance and unnormalised weight."""
    G = A @ C @ A.T + s2 * torch.eye(A.shape[0], dtype=torch.float64)
    K = C @ A.T @ torch.linalg.inv(G)
    m = mu + K @ (y64 - A @ mu)
    P = C - K @ A @ C
    evidence = torch.distributions.MultivariateNormal(A @ mu, G).log_prob(y64).exp()
    return m, P, w * evidence


by_hand = [component_posterior(prior.weights[k], prior.means[k], prior.covs[k])
           for k in range(prior.K)]
hand_means = torch.stack([m for m, _, _ in by_hand])
hand_covs = torch.stack([P for _, P, _ in by_hand])
hand_weights = torch.stack([w for _, _, w in by_hand])
hand_weights = hand_weights / hand_weights.sum()
assert torch.allclose(hand_means, posterior.means, atol=1e-8)
assert torch.allclose(hand_covs, posterior.covs, atol=1e-8)
assert torch.allclose(hand_weights, posterior.weights, atol=1e-8)
print("hand-derived posterior == tp.posterior (means, covariances, weights to 1e-8)")

# %% [markdown]
# ### Exercise 00.1: the posterior of one Gaussian component
#
# Write `gaussian_posterior(mu, C, A, y, sigma)` for a Gaussian prior $\mathcal N(\mu, C)$ and the
# likelihood $y = Ax + \sigma n$: it returns the posterior mean $m$ and covariance $P$ (float64
# tensors of shapes `(d,)` and `(d, d)`), with the Kalman formulas above. The checker compares it
# with `pt.GaussianMixture([1.0], mu[None], C[None]).posterior(...)` on random problems in 2 to 4
# dimensions.

# %% tags=["exercise"]
# Exercise 00.1: your answer (the solution: pt.exercises.solution("00.1"))
def gaussian_posterior(mu, C, A, y, sigma):
    """Posterior mean (d,) and covariance (d, d) of N(mu, C) given y = A x + sigma n."""
    raise NotImplementedError("compute G, K, then the mean and the covariance")


# %%
pt.exercises.check("00.1", gaussian_posterior)

# %% [markdown]
# ### Exercise 00.2: the posterior weights are the evidence
#
# The Kalman formulas update each component; the *mixture* is updated by re-weighting. Component
# $k$ predicts the measurement $y = A x + \sigma n$ with $x \sim \mathcal N(\mu_k, C_k)$, i.e.
# $y \sim \mathcal N(A\mu_k, G_k)$ with $G_k = A C_k A^\top + \sigma^2 I$ (the prior's spread seen
# through $A$, plus the noise). Bayes' rule over the component label gives
# $w'_k \propto w_k\,\mathcal N(y; A\mu_k, G_k)$. Write `posterior_weights(weights, means, covs, A,
# y, sigma)` returning the normalised weights `(K,)` (float64; compute in logs and use `softmax` so
# that tiny evidences do not underflow). The checker compares it with `GaussianMixture.posterior` on
# random mixtures in 2 to 4 dimensions.

# %% tags=["exercise"]
# Exercise 00.2: your answer (the solution: pt.exercises.solution("00.2"))
def posterior_weights(weights, means, covs, A, y, sigma):
    """Posterior weights (K,) of the mixture sum_k w_k N(mu_k, C_k) given y = A x + sigma n."""
    raise NotImplementedError("w_k times the evidence N(y; A mu_k, A C_k A^T + sigma^2 I), normalised")


# %%
pt.exercises.check("00.2", posterior_weights)

# %% [markdown]
# Two components carry almost all the mass and a third one a few percent: the posterior is
# **multimodal**. Its mean falls between the two main modes, where the posterior density is low:
# a single point estimate would be a poor summary here.

# %%
post_mean = posterior.mean()
big_modes = (posterior.weights > 0.05).sum().item()
density_at_mean = posterior.log_prob(post_mean[None]).exp().item()
density_at_best_mode = posterior.log_prob(posterior.means).exp().max().item()
print(f"components with weight > 0.05: {big_modes}")
print(f"posterior mean {post_mean.numpy().round(3)}: density {density_at_mean:.3f}, "
      f"vs {density_at_best_mode:.3f} at the best mode")
assert big_modes >= 2, "the teaching posterior should be multimodal"
assert density_at_mean < 0.25 * density_at_best_mode, "the mean should sit in a low-density gap"

# %% [markdown]
# ## 3. Why the prior matters
#
# One measurement of two unknowns: the likelihood alone is a *stripe* along the line
# $\{a^\top x = y\}$ and cannot say where on the line $x$ is. The prior decides. We compute the
# exact posterior for the same $y$ under three priors, all with the Kalman update above:
#
# * a **broad Gaussian** $\mathcal N(0, 3^2 I)$, close to "no prior": the posterior is the stripe;
# * a **moment-matched Gaussian**: the Gaussian with the ring's mean and covariance. It knows the
#   scale of $x$ but not its shape: one blob, centred between the true explanations;
# * the **ring** itself: a few small modes where the line crosses the ring.
#
# We read each posterior by its mass near the signal that made $y$ (within distance $0.5$ of
# `x_true`, by sampling) and by the distance from its mean (the MMSE estimate) to `x_true`.

# %%
broad = pt.GaussianMixture([1.0], torch.zeros(1, 2), (9.0 * torch.eye(2))[None])
matched = pt.GaussianMixture([1.0], prior.mean()[None], prior.covariance()[None])
PRIORS = {"broad Gaussian": broad, "moment-matched Gaussian": matched, "ring (the true prior)": prior}
posts = {name: p.posterior(problem, tp.y) for name, p in PRIORS.items()}
x_true = tp.x_true.double()


def near_truth(post, radius=0.5):
    xs = post.sample(20_000, generator=seeded(4), dtype=torch.float64).cpu()
    return ((xs - x_true).norm(dim=1) < radius).double().mean().item()


reading = {name: (near_truth(p), (p.mean() - x_true).norm().item()) for name, p in posts.items()}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), sharey=True)
for ax, (name, p) in zip(axes, posts.items()):
    contour(ax, PRIORS[name], colors="0.75")
    contour(ax, p, colors="C0")
    measurement_line(ax)
    ax.plot(*tp.x_true, "k*", ms=12, label="x that made y")
    ax.plot(*p.mean(), "rX", ms=9, label="posterior mean")
    axes_2d(ax); ax.set_title(f"prior: {name}", fontsize=9)
axes[0].legend(fontsize=7, loc="lower left")
fig.suptitle("grey: prior contours, blue: posterior contours (same y)")
plt.show()
lines = ["| prior | posterior mass within 0.5 of x_true | distance of the posterior mean to x_true |",
         "|---|---|---|"]
lines += [f"| {k} | {m:.1%} | {d:.2f} |" for k, (m, d) in reading.items()]
display(Markdown("\n".join(lines)))

# %% [markdown]
# The better the prior, the more posterior mass lands near the truth: the measurement is the same
# in all three panels. The moment-matched Gaussian has the ring's first two moments, yet its
# posterior misses the truth's region; only the ring's *shape* tells which points on the line are
# plausible. This is why the course uses learned priors (diffusion models) rather than Gaussians,
# and why it measures samplers against the exact ring posterior.

# %%
assert reading["ring (the true prior)"][0] > 2 * reading["moment-matched Gaussian"][0], \
    "the true prior puts far more mass near the truth"
assert reading["moment-matched Gaussian"][0] > reading["broad Gaussian"][0], \
    "knowing the scale of x already helps"
print("checks passed")

# %% [markdown]
# ## 4. Sixteen dimensions
#
# `pt.toy.gmm_problem()` is a 5-component mixture in $\mathbb R^{16}$ with anisotropic covariances,
# seen through a random rank-4 matrix ($m = 4$ measurements for $d = 16$ unknowns) with
# $\sigma = 0.3$. Its posterior is exact too (the same Kalman update). Two things to see: several
# modes keep a visible weight, and the data inform only 4 of the 16 directions. Split
# $\mathbb R^{16}$ into the row space of $A$ (measured) and its null space (not measured), and
# compare the posterior's variance with the prior's in each.

# %%
tp16 = pt.toy.gmm_problem()
A16 = tp16.problem.operator.matrix().double()
_, _, Vh = torch.linalg.svd(A16)
rank = torch.linalg.matrix_rank(A16).item()
P_row = Vh[:rank].T @ Vh[:rank]                         # projector on the measured directions
P_null = torch.eye(16, dtype=torch.float64) - P_row


def variance_in(gmm, P):
    return torch.trace(P @ gmm.covariance() @ P).item()


var16 = {name: (variance_in(g, P_row), variance_in(g, P_null))
         for name, g in [("prior", tp16.prior), ("posterior", tp16.posterior)]}
weights16 = tp16.posterior.weights
print(tp16)
print("prior weights:    ", [round(w, 3) for w in tp16.prior.weights.tolist()])
print("posterior weights:", [round(w, 3) for w in weights16.tolist()])
lines = ["| | variance in the measured directions | variance in the null space |", "|---|---|---|"]
lines += [f"| {k} | {r:.2f} | {n:.2f} |" for k, (r, n) in var16.items()]
display(Markdown("\n".join(lines)))
shrink_row = var16["posterior"][0] / var16["prior"][0]
shrink_null = var16["posterior"][1] / var16["prior"][1]
display(Markdown(f"The data keep {shrink_row:.1%} of the prior's variance in the {rank} measured "
                 f"directions and {shrink_null:.1%} in the {16 - rank} others."))
assert rank == 4 and (weights16 > 0.04).sum() >= 3, "several modes keep a visible weight"
assert shrink_row < 0.1 and shrink_null > 0.3, "the data inform the row space, far less the rest"

# %% [markdown]
# In the null space the posterior changes only because the mode weights change (each component
# keeps its prior shape there, shifted by its correlation with the measured directions): what the
# prior says about the unmeasured directions is all there is. A sampler that gets the mode weights
# wrong is then wrong in 12 directions at once. Chapter 02 runs the classical samplers on this
# problem and sees exactly that.

# %% [markdown]
# ## 5. Summary
#
# * An inverse problem with a prior has a **posterior** $p(x \mid y) \propto p(y \mid x)\,p(x)$;
#   on our 2D toy it is multimodal and its mean sits in a gap, so we want samples, with the right
#   mass in each mode.
# * For a Gaussian-mixture prior and a linear Gaussian likelihood the posterior is closed-form: each
#   component is updated by the Kalman formulas and re-weighted by its evidence (exercise 00.1,
#   exercise 00.2). We derived it by hand and it matches the library to machine precision. This exact world
#   is the yardstick of the whole course.
# * The same measurement gives very different posteriors under different priors; only a prior of
#   the right *shape* puts the mass near the truth.
# * In 16 dimensions with 4 measurements, the data inform 4 directions; the other 12 are the
#   prior's, mode by mode.
#
# Next, chapter 01: diffusion models as priors; then chapter 02: the classical posterior samplers
# (DPS, DiffPIR, DAPS) derived by hand and measured against these exact posteriors.

# %% [markdown]
# ## References
#
# * Stuart 2010, *Inverse problems: a Bayesian perspective*, Acta Numerica 19 (no arXiv version)
# * Kalman 1960, *A new approach to linear filtering and prediction problems*, J. Basic Eng. 82
#   (no arXiv version)
# * Bishop 2006, *Pattern recognition and machine learning*, section 2.3.3 (Bayes' theorem for
#   Gaussian variables) (a book, no arXiv version)
# * Kaipio, Somersalo 2005, *Statistical and computational inverse problems*, Springer (a book, no
#   arXiv version)
