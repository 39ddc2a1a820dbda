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
# **Learning outcomes.** After this chapter you can
#
# * say what an inverse problem is and why we want samples of the whole **posterior**, not one
#   answer;
# * derive the exact posterior of a Gaussian prior under a linear Gaussian measurement by
#   completing the square, and the posterior weights of a Gaussian mixture from the evidence;
# * measure how close a set of samples is to a distribution with the **sliced Wasserstein
#   distance** (SW), read against its **noise floor**, the yardstick of the whole course;
# * build a first posterior sampler from prior samples and the likelihood alone;
# * explain why the shape of the prior decides where the posterior puts its mass, and what the data
#   inform in 16 dimensions.
#
# **Prerequisites.** Linear algebra (matrix inverse, projections), the multivariate Gaussian
# density, Bayes' rule, and enough PyTorch to write a function on tensors.
#
# **Study time.** About 2 hours: 1 hour of reading, 1 hour for exercises 00.1-00.4.
#
# No diffusion model appears here: chapter 01 teaches them, and chapter 02 derives the classical
# diffusion posterior samplers (DPS, DiffPIR, DAPS) and measures them against the exact posteriors
# built in this chapter. Every claim the text makes is also checked by an `assert`, so the notebook
# fails loudly if the library stops behaving as described. `POSTERIOR_TUTOR_FAST=1` changes only
# the number of plotted samples.
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


fig, ax = plt.subplots(figsize=(5, 4.8))
contour(ax, prior)
measurement_line(ax)
ax.plot(*tp.x_true, "k*", ms=12, label="x that made y")
ax.set_title("prior p(x) and the measurement line")
axes_2d(ax); ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. The posterior by hand
#
# A Gaussian mixture prior $p(x) = \sum_k w_k \mathcal{N}(x; \mu_k, C_k)$ times a linear Gaussian
# likelihood is, component by component, a Gaussian times a Gaussian. We first work out one
# component, then the weights of the mixture.
#
# ### Exercise 00.1 (derive, then verify): the posterior of one Gaussian component
#
# Take the prior $\mathcal N(\mu, C)$ and the likelihood $y = Ax + \sigma n$. Write
# $\log p(x \mid y)$ up to a constant, expand it, and **complete the square** in $x$: the result
# is a Gaussian $\mathcal N(m, P)$. Read off $P$ from the term quadratic in $x$ and $m$ from the
# term linear in $x$. Write `gaussian_posterior(mu, C, A, y, sigma)` returning the posterior mean
# $m$ and covariance $P$ (float64 tensors of shapes `(d,)` and `(d, d)`). The checker compares it
# with the library's `pt.GaussianMixture([1.0], mu[None], C[None]).posterior(...)` on random
# problems in 2 to 4 dimensions.

# %% tags=["exercise"]
# Exercise 00.1: your answer
def gaussian_posterior(mu, C, A, y, sigma):
    """Posterior mean (d,) and covariance (d, d) of N(mu, C) given y = A x + sigma n."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("00.1", gaussian_posterior)

# %% [markdown]
# **The reveal.** Up to terms without $x$,
#
# $$ \log p(x \mid y) = -\tfrac{1}{2} (x-\mu)^\top C^{-1} (x-\mu) - \tfrac{1}{2\sigma^2}\lVert y - Ax\rVert^2
#    = -\tfrac{1}{2} x^\top \Big(C^{-1} + \tfrac{A^\top A}{\sigma^2}\Big) x
#      + x^\top \Big(C^{-1}\mu + \tfrac{A^\top y}{\sigma^2}\Big) + \text{const}, $$
#
# and a Gaussian $\mathcal N(m, P)$ has $\log$-density $-\tfrac{1}{2} x^\top P^{-1} x + x^\top P^{-1} m
# + \text{const}$. Matching the two terms:
#
# $$ P = \Big(C^{-1} + \tfrac{A^\top A}{\sigma^2}\Big)^{-1}, \qquad
#    m = P\Big(C^{-1}\mu + \tfrac{A^\top y}{\sigma^2}\Big). $$
#
# The precisions add: the posterior is never wider than the prior. The Woodbury identity turns this
# *information form* into the **Kalman form**, which inverts only an $m \times m$ matrix and never
# $C$ (so it also works for a flat component, $C$ singular):
#
# $$ G = A C A^\top + \sigma^2 I,\quad K = C A^\top G^{-1},\quad
#    m = \mu + K (y - A\mu),\quad P = C - K A C. $$
#
# The mean moves from $\mu$ along the gain $K$ by the part of $y$ that the prior did not predict.
# Both forms, coded for each of the six prior components, agree with each other and with the
# library's `tp.posterior`:

# %%
A = problem.operator.matrix().double()    # (1, 2)
y64 = tp.y.double()
s2 = problem.sigma ** 2


def kalman_update(mu, C):
    """Posterior mean and covariance of one prior component N(mu, C), in Kalman form."""
    G = A @ C @ A.T + s2 * torch.eye(A.shape[0], dtype=torch.float64)
    K = C @ A.T @ torch.linalg.inv(G)
    return mu + K @ (y64 - A @ mu), C - K @ A @ C


def information_update(mu, C):
    """The same posterior from the completed square: the precisions add."""
    P = torch.linalg.inv(torch.linalg.inv(C) + A.T @ A / s2)
    return P @ (torch.linalg.solve(C, mu) + A.T @ y64 / s2), P


for k in range(prior.K):
    m_k, P_k = kalman_update(prior.means[k], prior.covs[k])
    m_i, P_i = information_update(prior.means[k], prior.covs[k])
    assert torch.allclose(m_k, m_i, atol=1e-10) and torch.allclose(P_k, P_i, atol=1e-10)
    assert torch.allclose(m_k, posterior.means[k], atol=1e-8)
    assert torch.allclose(P_k, posterior.covs[k], atol=1e-8)
print("Kalman form == information form == tp.posterior, component by component (to 1e-8)")

# %% [markdown]
# ### Exercise 00.2 (derive, then verify): the posterior weights are the evidence
#
# Each component is updated as above; the *mixture* also changes its weights. Introduce the
# component label $k$ as a hidden variable with prior $P(k) = w_k$, so that
# $x \mid k \sim \mathcal N(\mu_k, C_k)$. Apply Bayes' rule to $k$: you need $p(y \mid k)$, the
# density of the measurement when $x$ comes from component $k$ (a linear map of a Gaussian, plus
# independent Gaussian noise). Write `posterior_weights(weights, means, covs, A, y, sigma)`
# returning the normalised posterior weights `(K,)` (float64; compute in logs so that tiny values
# do not underflow). The checker compares it with `GaussianMixture.posterior` on random mixtures
# in 2 to 4 dimensions.

# %% tags=["exercise"]
# Exercise 00.2: your answer
def posterior_weights(weights, means, covs, A, y, sigma):
    """Posterior weights (K,) of the mixture sum_k w_k N(mu_k, C_k) given y = A x + sigma n."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("00.2", posterior_weights)

# %% [markdown]
# **The reveal.** Given $k$, $y = Ax + \sigma n$ with $x \sim \mathcal N(\mu_k, C_k)$ and $n$
# independent, so $y \mid k \sim \mathcal N(A\mu_k, G_k)$ with $G_k = A C_k A^\top + \sigma^2 I$:
# the prior's spread seen through $A$, plus the noise. Bayes' rule over $k$ gives
#
# $$ w'_k = \frac{w_k\, \mathcal N(y; A\mu_k, G_k)}{\sum_j w_j\, \mathcal N(y; A\mu_j, G_j)}. $$
#
# $\mathcal N(y; A\mu_k, G_k)$ is the **evidence** of component $k$: how well it predicted the
# measurement before seeing it. A component whose mean is far from the line, or whose spread
# along $a$ is small, loses its weight. Computed for the ring:

# %%
log_evidence = torch.stack([
    torch.distributions.MultivariateNormal(
        A @ prior.means[k], A @ prior.covs[k] @ A.T + s2 * torch.eye(1, dtype=torch.float64)
    ).log_prob(y64) for k in range(prior.K)])
hand_weights = (prior.weights.log() + log_evidence).exp()
hand_weights = hand_weights / hand_weights.sum()
assert torch.allclose(hand_weights, posterior.weights, atol=1e-8)
print("posterior weights:", [round(w, 4) for w in hand_weights.tolist()], "(== tp.posterior)")

# %%
exact_samples = posterior.sample(N, generator=seeded(1))
fig, ax = plt.subplots(figsize=(5, 4.8))
contour(ax, posterior, colors="C0")
ax.scatter(*exact_samples.cpu().T, s=3, c="k", alpha=0.4, label="exact posterior samples")
measurement_line(ax)
ax.set_title("exact posterior p(x | y)")
axes_2d(ax); ax.legend(fontsize=8)
plt.show()

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
# ## 4. Measuring a sampler: the sliced Wasserstein distance and its noise floor
#
# Every later chapter produces *samples* and asks how close they are to the exact posterior. The
# course answers with one number, the **sliced Wasserstein distance** between two sample sets:
#
# $$SW_2(\mu, \nu) = \Big(\mathbb{E}_{\theta}\, W_2^2\big(\theta^\top_{\#}\mu,\ \theta^\top_{\#}\nu\big)\Big)^{1/2},$$
#
# i.e. project both sets on a random unit direction $\theta$, compare the two 1-D distributions
# (in 1-D the Wasserstein distance pairs the sorted samples: the smallest with the smallest, and so
# on), and average over directions (`pt.metrics.sliced_wasserstein`, 256 directions). It is 0 for
# identical distributions and grows with any difference in location, spread or mode weights.
#
# Two *exact* sample sets of the same size are not at distance 0: they differ because they are
# finite. The **noise floor** is the mean SW between two independent exact sets of size $n$
# (`pt.metrics.noise_floor`, over a few repeats): the score of a perfect sampler at this $n$. The
# course always reports SW **as a multiple of the noise floor**: 1 is as good as exact, and a
# sampler is distinguishable from exact only when it is clearly above 1.

# %%
def sliced(xs, ref):
    """SW with the same 256 projection directions for every pair of sets."""
    return float(pt.metrics.sliced_wasserstein(xs.double(), ref.double(), generator=seeded(2)))


def exact_sets(n, generator):
    return posterior.sample(n, generator=generator)


floor_N = pt.metrics.noise_floor(exact_sets, N, generator=seeded(3))
prior_samples = prior.sample(N, generator=seeded(5))
sw_prior = sliced(prior_samples, exact_samples)
display(Markdown(f"At $n = {N}$: noise floor {floor_N.mean:.3f} ± {floor_N.std:.3f}; prior samples "
                 f"(which ignore $y$) are at SW {sw_prior:.3f}, i.e. "
                 f"{sw_prior / floor_N.mean:.1f} noise floors from the exact posterior."))
assert sw_prior > 5 * floor_N.mean, "ignoring the measurement is far from the posterior"

# %% [markdown]
# ### Exercise 00.3 (predict, then run): the floor when the sample size is multiplied by 4
#
# The next cell measures the noise floor of the 2D posterior at $n = 500$ and at $n = 2000$ (20
# repeats each). Before running it, predict the ratio `floor(2000) / floor(500)` as a number.
# The check passes within $20\%$ of the measurement.

# %% tags=["exercise"]
# Exercise 00.3: your prediction
floor_ratio = None   # a number

# %%
floor_500 = pt.metrics.noise_floor(exact_sets, 500, repeats=20, generator=seeded(6))
floor_2000 = pt.metrics.noise_floor(exact_sets, 2000, repeats=20, generator=seeded(7))
measured_floor_ratio = floor_2000.mean / floor_500.mean
print(f"noise floor: {floor_500.mean:.4f} at n = 500, {floor_2000.mean:.4f} at n = 2000; "
      f"ratio {measured_floor_ratio:.3f}")
assert 0.4 < measured_floor_ratio < 0.6, "the floor shrinks like n^(-1/2)"

# %%
pt.exercises.check("00.3", floor_ratio, measured=measured_floor_ratio)

# %% [markdown]
# **The reveal.** In 1-D, $W_2$ pairs sorted samples, and each sorted sample estimates a quantile
# with an error of the size of a standard error, $\propto n^{-1/2}$; the floor inherits this rate,
# so four times the samples halve it. Two consequences for reading the course's tables: a fixed
# error of a sampler (a wrong mode weight, a spread too small) stands out *more* in noise floors as
# $n$ grows, so SW is only compared at the same $n$; and the floor is always measured, never
# assumed.
#
# ### Exercise 00.4 (build): a posterior sampler from prior samples
#
# Bayes' rule says the posterior is the prior **reweighted** by the likelihood. Use that to build a
# sampler that needs no formula for the posterior: write `snis_sampler(prior, problem, y, n,
# generator)` returning `(n, 2)` samples of $p(x \mid y)$, drawing only from `prior.sample(...,
# generator=generator)` and evaluating the likelihood (`problem.log_likelihood(x, y)` is
# $\log p(y \mid x)$ up to a constant, or write it from `problem.operator` and `problem.sigma`).
# The check runs it with $n = 2000$ and scores the SW to 2000 exact posterior samples as a
# multiple of the noise floor; at most $2.2$ passes (exact samples score between $0.7$ and $1.9$
# over five seeds). Prior samples that ignore $y$ score far above.

# %% tags=["exercise"]
# Exercise 00.4: your answer
def snis_sampler(prior, problem, y, n, generator):
    """(n, 2) samples of p(x | y), from prior samples and the likelihood."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("00.4", snis_sampler)

# %% [markdown]
# **The reveal.** Draw $M \gg n$ prior samples $x_i$, give each the weight
# $w_i \propto p(y \mid x_i)$, normalise the weights to sum to 1 (hence *self-normalised*: the
# evidence $p(y)$ is never needed) and resample $n$ indices with probabilities $w_i$. This is
# **self-normalised importance sampling** (SNIS) with the prior as proposal. Its price is the
# **effective sample size** $\mathrm{ESS} = 1/\sum_i w_i^2$: only the prior samples near the
# measurement line count. Below with $M = 100\,n$, scored as the check scores it:

# %%
def snis_by_hand(n, M, generator):
    pool = prior.sample(M, generator=generator, dtype=torch.float64)
    loglik = -((pool @ A.T - y64) ** 2).sum(1) / (2 * s2)
    w = torch.softmax(loglik, 0)
    pick = torch.multinomial(w, n, replacement=True, generator=generator)
    return pool[pick], 1 / (w ** 2).sum().item()


snis_samples, ess = snis_by_hand(2000, 200_000, torch.Generator().manual_seed(0))
score_snis, detail = pt.exercises.ch00.posterior_score(lambda *args: snis_by_hand(2000, 200_000, args[-1])[0])
score_prior, _ = pt.exercises.ch00.posterior_score(lambda prior, problem, y, n, g: prior.sample(n, generator=g))
display(Markdown(f"SNIS with $M = 200000$ prior draws: ESS {ess:.0f} ({ess / 200_000:.1%} of the "
                 f"draws); score {score_snis:.2f} noise floors. Prior samples: {score_prior:.1f} "
                 "noise floors."))
assert score_snis <= pt.exercises.ch00.SNIS_THRESHOLD < score_prior / 5

# %% [markdown]
# Here a single measurement of two unknowns leaves a large share of the prior draws useful (the
# ESS above). The share is roughly the prior mass compatible with $y$, and it shrinks fast as
# measurements are added: section 6 measures it with four measurements in 16 dimensions. In images
# it is zero for all practical purposes. That is why the course needs diffusion models
# (chapter 01) and samplers that steer towards $y$ (chapter 02 on); chapter 07 returns to
# importance weights with sequential Monte Carlo.

# %% [markdown]
# ## 5. Why the prior matters
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
# ## 6. Sixteen dimensions
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
# Four measurements instead of one also change the cost of section 4's SNIS sampler: the share of
# prior draws that stay useful (ESS over the number of draws) is far smaller than in 2D.

# %%
pool16 = tp16.prior.sample(200_000, generator=seeded(8), dtype=torch.float64)
w16 = torch.softmax(tp16.problem.log_likelihood(pool16, tp16.y.double()), 0)
ess16 = 1 / (w16 ** 2).sum().item()
display(Markdown(f"SNIS from the prior, $M = 200000$ draws: ESS {ess16:.0f} "
                 f"({ess16 / 200_000:.2%} of the draws) with {rank} measurements in 16 dimensions, "
                 f"against {ess / 200_000:.1%} with one measurement in 2D."))
assert ess16 < 0.1 * ess, "each informative measurement divides the useful share of prior draws"

# %% [markdown]
# In the null space the posterior changes only because the mode weights change (each component
# keeps its prior shape there, shifted by its correlation with the measured directions): what the
# prior says about the unmeasured directions is all there is. A sampler that gets the mode weights
# wrong is then wrong in 12 directions at once. Chapter 02 runs the classical samplers on this
# problem and sees exactly that.

# %% [markdown]
# ## 7. Summary
#
# * An inverse problem with a prior has a **posterior** $p(x \mid y) \propto p(y \mid x)\,p(x)$;
#   on our 2D toy it is multimodal and its mean sits in a gap, so we want samples, with the right
#   mass in each mode.
# * For a Gaussian-mixture prior and a linear Gaussian likelihood the posterior is closed-form:
#   completing the square updates each component (the precisions add; the Kalman form is the same
#   update without inverting $C$), and each component is re-weighted by its evidence
#   (exercises 00.1-00.2). This exact world is the yardstick of the whole course.
# * Samples are judged by the **sliced Wasserstein distance** to exact samples, as a multiple of
#   the **noise floor** (the distance between two exact sets of the same size), which shrinks like
#   $n^{-1/2}$ (exercise 00.3). Later chapters report every toy result this way.
# * Reweighting prior samples by the likelihood (SNIS) samples the posterior with no formula
#   (exercise 00.4), at the price of an effective sample size that collapses as the data grow.
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
# * Rabin, Peyré, Delon, Bernot 2011, *Wasserstein barycenter and its application to texture
#   mixing*, SSVM (no arXiv version)
# * Kaipio, Somersalo 2005, *Statistical and computational inverse problems*, Springer (a book, no
#   arXiv version)
