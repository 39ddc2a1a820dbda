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
# # Chapter 00: inverse problems, posteriors, and the classical diffusion samplers
#
# This chapter sets the stage for the whole course. We
#
# 1. state what an inverse problem is and why we want the whole **posterior**, not one answer;
# 2. build a 2D problem whose posterior we know *exactly*, and derive it by hand;
# 3. recall diffusion models in one paragraph and derive the exact denoiser of a Gaussian mixture;
# 4. run every classical diffusion posterior sampler (DPS, DiffPIR, DAPS, PnP-ULA) and measure
#    how far each is from the exact posterior, how many network calls it needs and how long it takes;
# 5. do it again with a small network trained here, as in real life;
# 6. step through two samplers, frame by frame;
# 7. check the picture in 16 dimensions.
#
# Every claim the text makes is also checked by an `assert`, so the notebook fails loudly if the
# library stops behaving as described. Set `POSTERIOR_TUTOR_FAST=1` for a quick run (fewer steps
# and particles; every method and every check still runs).
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt

FAST = pt.fast_mode()
N = 500 if FAST else 1000                 # particles per sampler
torch.set_num_threads(1)    # tiny networks: one thread is fastest, more only add waiting
print(f"fast mode: {FAST}, particles per sampler: {N}")


def seeded(seed):
    """A fresh CPU generator: every random draw in this notebook is reproducible."""
    return torch.Generator().manual_seed(seed)


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
# diffusion model.

# %% [markdown]
# ## 2. The 2D teaching problem
#
# `pt.toy.bimodal_problem_2d()` gives a prior made of six Gaussians on a ring (radius 2, standard
# deviation 0.3, equal weights) and **one** noisy linear measurement
# $y = 0.3\,x_1 + x_2 + 0.25\,n$. One number for two unknowns: the data only says that $x$ lies
# near the line $\{a^\top x = y\}$ with $a = (0.3, 1)$. The prior says that $x$ lies near the ring.
# Together they leave a few candidate regions: where the line crosses the modes.

# %%
tp = pt.toy.bimodal_problem_2d()
prior, problem, y, posterior = tp.prior, tp.problem, tp.y, tp.posterior
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
    ax.plot(x1, (y[0] - a[0] * x1) / a[1], "--", color="C3", lw=1.2, label=r"$a^\top x = y$")


exact_samples = posterior.sample(N, generator=seeded(1))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
contour(axes[0], prior)
measurement_line(axes[0])
axes[0].plot(*tp.x_true, "k*", ms=12, label="x that made y")
axes[0].set_title("prior p(x) and the measurement line")
contour(axes[1], posterior, colors="C0")
axes[1].scatter(*exact_samples.T, s=3, c="k", alpha=0.4, label="exact posterior samples")
measurement_line(axes[1])
axes[1].set_title("exact posterior p(x | y)")
for ax in axes:
    ax.set_xlim(-LIM, LIM); ax.set_ylim(-LIM, LIM); ax.set_aspect("equal"); ax.legend(fontsize=8)
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
y64 = y.double()
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
# ## 3. Diffusion in one paragraph
#
# A diffusion model learns to undo a fixed noising process. In the variance-preserving (VP)
# schedule, with integer time $t = 0, \dots, 999$ and $\bar\alpha_t$ decreasing from 1 to almost 0,
#
# $$ x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon,
#    \qquad \varepsilon \sim \mathcal N(0, I). $$
#
# Everything a sampler needs comes from one function, the **Tweedie denoiser**
# $D(x_t, t) = \mathbb E[x_0 \mid x_t]$: the noise estimate is
# $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t} D)/\sqrt{1 - \bar\alpha_t}$ and the score is
# $\nabla \log p_t(x_t) = -\hat\varepsilon / \sqrt{1 - \bar\alpha_t}$. A network is trained to
# approximate $D$; for a Gaussian mixture we can write it down exactly. Given $x_t$, component $k$ is
# responsible with probability $r_k(x_t) \propto w_k\,\mathcal N(x_t; \sqrt{\bar\alpha_t}\mu_k, S_k)$,
# $S_k = \bar\alpha_t C_k + (1 - \bar\alpha_t) I$, and within component $k$ the posterior mean of $x_0$
# is a Kalman update again:
#
# $$ D(x_t, t) = \sum_k r_k(x_t)\, \big[\mu_k + \sqrt{\bar\alpha_t}\, C_k S_k^{-1}
#    (x_t - \sqrt{\bar\alpha_t}\mu_k)\big]. $$

# %%
sched = pt.VPSchedule()
exact_den = prior.denoiser(sched)
t_check = 400
x_t = torch.tensor([0.7, -0.4], dtype=torch.float64)
ab = sched.alpha_bar[t_check]
eye = torch.eye(2, dtype=torch.float64)

log_r, comp_means = [], []
for w, mu, C in zip(prior.weights, prior.means, prior.covs):
    S = ab * C + (1 - ab) * eye
    noised = torch.distributions.MultivariateNormal(ab.sqrt() * mu, S)
    log_r.append(w.log() + noised.log_prob(x_t))
    comp_means.append(mu + ab.sqrt() * C @ torch.linalg.solve(S, x_t - ab.sqrt() * mu))
responsibilities = torch.softmax(torch.stack(log_r), 0)
hand_x0 = (responsibilities[:, None] * torch.stack(comp_means)).sum(0)

library_x0 = exact_den(x_t[None], t_check)[0]
print("responsibilities:", responsibilities.numpy().round(3))
print("by hand:", hand_x0.numpy(), " library:", library_x0.numpy())
assert torch.allclose(hand_x0, library_x0, atol=1e-10)

# %% [markdown]
# ## 4. The classical samplers against the exact posterior
#
# Each sampler below combines the denoiser (the prior) with the likelihood in its own way; the
# equations are at the top of each file in `posterior_tutor/samplers/`.
#
# | method | how the data enters | denoiser calls (defaults) |
# |---|---|---|
# | **DPS** (Chung et al. 2023) | gradient of $\lVert y - A D(x_t,t)\rVert$ w.r.t. $x_t$, *through* the network | 1000, each with a backward pass |
# | **DiffPIR** (Zhu et al. 2023) | closed-form proximal step around $D(x_t,t)$, then re-noise | 100 |
# | **DAPS** (Zhang et al. 2024) | Langevin on $x_0$ around an ODE estimate, then re-noise to the next level | 200 levels x 5 = 1000 |
# | **PnP-ULA** (Laumont et al. 2022) | a Langevin chain: denoiser score at a small fixed noise + likelihood gradient | 3000 |
#
# `ddpm` ignores $y$ and samples the prior: it is the "ignore the data" reference. We judge a
# sample set by its **sliced Wasserstein distance** (SW) to `N` exact posterior samples:
#
# $$SW_2(\mu, \nu) = \Big(\mathbb{E}_{\theta}\, W_2^2\big(\theta^\top_{\#}\mu,\ \theta^\top_{\#}\nu\big)\Big)^{1/2},$$
#
# i.e. project both sample sets on a random unit direction $\theta$, compare the two 1-D
# distributions (in 1-D the Wasserstein distance just pairs sorted samples), and average over
# directions (`pt.metrics.sliced_wasserstein`, 256 directions). It is 0 for identical distributions
# and grows with any difference in location, spread or mode weights. We read it against two
# yardsticks:
#
# * the **noise floor**: the SW between two independent exact sample sets of the same size, i.e. the
#   score of a perfect sampler (`pt.metrics.noise_floor`);
# * the **prior distance**: the SW between exact *prior* samples and the exact posterior samples,
#   i.e. the score of a sampler that ignores $y$.
#
# We also record the **mode-weight error** (total variation between the fraction of samples in each
# mode and the exact weights), the **data residual** (median of $\lVert A x - y\rVert$ over the
# samples: does the sampler fit the data at all?), the number of network calls (NFE, counted by the
# denoiser) and backward passes through it, the wall time and the share of it spent inside the
# denoiser. In fast mode the slow methods run with
# fewer steps (see `FAST_OPTIONS`), so their numbers there are not the paper-default numbers.

# %%
BASELINES = ["dps", "diffpir", "daps", "pnp_ula"]
assert set(BASELINES + ["ddpm"]) <= set(pt.methods())
FAST_OPTIONS = {"ddpm": dict(steps=200), "dps": dict(steps=200),
                "daps": dict(levels=30, langevin_steps=30), "pnp_ula": dict(steps=1000)}
OPTIONS = {name: (FAST_OPTIONS.get(name, {}) if FAST else {}) for name in ["ddpm"] + BASELINES}


def expected_nfe(name):
    """Denoiser calls that the options imply (defaults from pt.options_of)."""
    o = {**pt.options_of(name), **OPTIONS[name]}
    return o["levels"] * o["ode_steps"] if name == "daps" else o["steps"]


def sliced(xs, exact):
    """SW distance with the same 256 projection directions for every method."""
    return float(pt.metrics.sliced_wasserstein(xs, exact, generator=seeded(7)))


def residual(xs, tp):
    """Median data misfit |A x - y| over a sample set."""
    return tp.problem.residual(xs, tp.y).flatten(1).norm(dim=1).median().item()


# %%
def run_method(name, den, tp, seed=5):
    """Sample N particles with the denoiser's counters reset; return samples and the costs."""
    xs, cost = pt.bench.timed_sample(name, den, tp.problem, tp.y, N, seeded(seed), **OPTIONS[name])
    return dict(method=name, samples=xs, nfe=cost.nfe, nfe_grad=cost.backward, wall=cost.wall_s,
                net_share=cost.net_s / cost.wall_s)


def benchmark(den, tp, exact):
    """Every baseline plus the ddpm prior on one problem, judged against exact samples."""
    floor = pt.metrics.noise_floor(lambda n, generator: tp.posterior.sample(n, generator=generator),
                                   N, generator=seeded(2))
    prior_samples = tp.prior.sample(N, generator=seeded(3))
    ref = dict(floor=floor, prior_sw=sliced(prior_samples, exact),
               exact_resid=residual(exact, tp), prior_resid=residual(prior_samples, tp))
    rows = [run_method(name, den, tp) for name in ["ddpm"] + BASELINES]
    for r in rows:
        r["sw"] = sliced(r["samples"], exact)
        r["x_floor"], r["x_prior"] = r["sw"] / floor.mean, r["sw"] / ref["prior_sw"]
        r["mode_tv"] = float(pt.metrics.mode_weight_error(r["samples"], tp.posterior))
        r["resid"] = residual(r["samples"], tp)
    return rows, ref


# %%
def show_table(rows, ref, title):
    floor = ref["floor"]
    lines = [f"**{title}** (N = {N}; noise floor SW {floor.mean:.3f} ± {floor.std:.3f}; prior "
             f"samples SW {ref['prior_sw']:.3f}; residual of exact samples {ref['exact_resid']:.2f}, "
             f"of prior samples {ref['prior_resid']:.2f})", "",
             "| method | SW | × floor | × prior | mode TV | residual | NFE | backward | wall [s] "
             "| net share |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['sw']:.3f} | {r['x_floor']:.1f} | {r['x_prior']:.2f} "
                     f"| {r['mode_tv']:.2f} | {r['resid']:.2f} | {r['nfe']} | {r['nfe_grad']} "
                     f"| {r['wall']:.2f} | {r['net_share']:.0%} |")
    display(Markdown("\n".join(lines)))


rows_exact, ref_2d = benchmark(exact_den, tp, exact_samples)
show_table(rows_exact, ref_2d, "2D problem, exact denoiser")

# %% [markdown]
# How to read the table (and what the next cell checks):
#
# * every posterior sampler **fits the data** (its residual is close to that of exact samples, far
#   below that of prior samples) and **beats ignoring the data** (SW well below the prior distance);
# * every method makes exactly the network calls its options imply, and only DPS back-propagates
#   through the network (the "backward" column);
# * but **fitting the data is not sampling the posterior**. Even with the exact denoiser the
#   samplers sit several noise floors away from the exact posterior (at the full, paper-default step
#   counts none of them reaches the floor), and the mode-weight error says why: they put the wrong
#   amount of mass in each mode. In our runs DiffPIR, DAPS and PnP-ULA give the small mode on the
#   right far too much mass and the main mode too little, while DPS at its default 1000 steps
#   over-concentrates on the main mode. DPS's step $\zeta$ acts at every step, so its total
#   guidance grows with the number of steps: with the 200 steps of fast mode it lands much closer to
#   the exact weights. These errors come from how each method approximates the likelihood inside the
#   diffusion, not from the network: the denoiser here is exact.
#
# The checks below are the claims that held with margin over several seeds, in fast and full mode.

# %%
def check_rows(rows, ref, beat_prior_by=1.0):
    for r in rows:
        assert math.isfinite(r["sw"]), r["method"]
        assert r["nfe"] == expected_nfe(r["method"]), (r["method"], r["nfe"])
        assert r["nfe_grad"] == (r["nfe"] if r["method"] == "dps" else 0), r["method"]
    for r in rows[1:]:                                     # the posterior samplers
        assert r["resid"] < 0.5 * ref["prior_resid"], f"{r['method']} does not fit the data"
        assert r["sw"] < beat_prior_by * ref["prior_sw"], f"{r['method']}: no better than the prior"


check_rows(rows_exact, ref_2d, beat_prior_by=0.6)
best_2d = min(rows_exact[1:], key=lambda r: r["sw"])
assert best_2d["x_floor"] < 7, "the best sampler should be within a few noise floors"
print(f"checks passed; best: {best_2d['method']} at {best_2d['x_floor']:.1f} noise floors")

# %%
def scatter_panels(rows, tp, exact, suptitle):
    fig, axes = plt.subplots(1, len(rows) + 1, figsize=(2.7 * (len(rows) + 1), 3), sharey=True)
    panels = [("exact posterior", exact)] + [(r["method"], r["samples"]) for r in rows]
    for ax, (name, xs) in zip(axes, panels):
        contour(ax, tp.posterior, colors="0.5")
        ax.scatter(*xs.T, s=2, alpha=0.4, c="k" if name.startswith("exact") else "C0")
        ax.set_title(name, fontsize=9)
        ax.set_xlim(-LIM, LIM); ax.set_ylim(-LIM, LIM); ax.set_aspect("equal")
    fig.suptitle(suptitle)
    plt.show()


scatter_panels(rows_exact, tp, exact_samples, "samples over the exact posterior contours")

# %% [markdown]
# ### Exercise 00.2: one DPS guidance step
#
# DPS approximates $p(y \mid x_t) \approx \mathcal N(y; A D(x_t, t), \sigma^2 I)$ and, after each
# DDPM step, moves $x$ along the gradient of the data misfit **of the denoised estimate**, taken
# with respect to $x_t$ (so through the denoiser: a vector-Jacobian product):
#
# $$ \text{correction} = -\zeta\, \nabla_{x_t} \big\lVert y - A\, D(x_t, t) \big\rVert \quad
#    \text{(the norm, per sample, as in the paper's Algorithm 1).} $$
#
# Write `dps_correction(den, prob, y, x_t, t, zeta)` returning it, shape `(n, d)`
# (`prob.residual(x, y)` is $Ax - y$; use `torch.enable_grad()`, `x_t.detach().requires_grad_(True)`
# and `torch.autograd.grad`). The checker compares it with the corrections a library DPS run records
# (`step.extras["correction"]`).

# %% tags=["exercise"]
# Exercise 00.2: your answer (the solution: pt.exercises.solution("00.2"))
def dps_correction(den, prob, y, x_t, t, zeta):
    """-zeta * grad_{x_t} |y - A D(x_t, t)| for each sample, shape (n, d)."""
    raise NotImplementedError("differentiate the residual norm through the denoiser")


# %%
pt.exercises.check("00.2", dps_correction)

# %% [markdown]
# ### Exercise 00.3: one DiffPIR step
#
# DiffPIR splits each step into a prior half and a data half: denoise, solve the data term in closed
# form around the denoised estimate, then re-noise to the next time with a share $\zeta$ of fresh noise:
#
# $$ \hat x_0 = \mathrm{prox}\big(D(x_t, t), y, r_t\big),\ r_t = \frac{s(t)}{\sqrt\lambda},\quad
#    \hat\varepsilon = \frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1 - \bar\alpha_t}},\quad
#    x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t'}}\,\big(\sqrt{1-\zeta}\,\hat\varepsilon + \sqrt\zeta\, z\big). $$
#
# Write `diffpir_step(den, prob, y, x_t, t, t_prev, lam, zeta, z)` returning $x_{t'}$ (`prob.prox(x,
# y, r)` is the prox, `den.schedule.sigma(t)` is $s(t)$, `den.schedule.abar(t)` is $\bar\alpha_t$).

# %% tags=["exercise"]
# Exercise 00.3: your answer (the solution: pt.exercises.solution("00.3"))
def diffpir_step(den, prob, y, x_t, t, t_prev, lam, zeta, z):
    """One DiffPIR step from x_t at time t to time t_prev, with fresh noise z."""
    raise NotImplementedError("denoise, prox with r_t = s(t) / sqrt(lam), re-noise")


# %%
pt.exercises.check("00.3", diffpir_step)

# %% [markdown]
# ## 5. A learned denoiser
#
# In practice the prior is known only through samples, and $D$ is a neural network. We train a small
# MLP (3 hidden layers of 128 units, predicting $\varepsilon$, the standard DDPM loss
# $\mathbb E\,\lVert \varepsilon_\theta(x_t, t) - \varepsilon\rVert^2$) on 20,000 prior samples.

# %%
TRAIN_STEPS = 600 if FAST else 1500
train_data = prior.sample(20_000, generator=seeded(10))
torch.manual_seed(11)                              # network initialisation
mlp = pt.nets.MLP(2, hidden=128)
learned_den, losses = pt.train.train_denoiser(mlp, train_data, sched, steps=TRAIN_STEPS,
                                              lr=3e-3, generator=seeded(12))
print(f"trained {TRAIN_STEPS} steps in {learned_den.train_seconds:.1f} s; "
      f"final loss (mean of last 100) {sum(losses[-100:]) / 100:.3f}")

fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(losses, lw=0.5, alpha=0.5, label="per batch")
window = 50
smooth = torch.tensor(losses).unfold(0, window, 1).mean(1)
ax.plot(range(window - 1, len(losses)), smooth, lw=1.5, label=f"running mean ({window})")
ax.set_xlabel("training step"); ax.set_ylabel("DSM loss"); ax.legend(); plt.show()

# %% [markdown]
# First a sanity check: does the network's **prior** look like the true prior? We sample it with
# DDPM and compare with exact prior samples, against the prior's own noise floor.

# %%
learned_prior = pt.sample("ddpm", learned_den, None, None, n=N, generator=seeded(13),
                          **OPTIONS["ddpm"])
exact_prior = prior.sample(N, generator=seeded(14))
prior_floor = pt.metrics.noise_floor(lambda n, generator: prior.sample(n, generator=generator),
                                     N, generator=seeded(15))
learned_prior_sw = sliced(learned_prior, exact_prior)
print(f"SW(learned DDPM prior, exact prior) = {learned_prior_sw:.3f}; prior noise floor "
      f"{prior_floor.mean:.3f}; for scale, prior vs posterior distance {ref_2d['prior_sw']:.3f}")
assert learned_prior_sw < 3 * prior_floor.mean, "the learned prior should be close to the true prior"
assert learned_prior_sw < 0.3 * ref_2d["prior_sw"]

# %%
rows_learned, ref_learned = benchmark(learned_den, tp, exact_samples)
show_table(rows_learned, ref_learned, "2D problem, learned MLP denoiser")
check_rows(rows_learned, ref_learned)

# %%
scatter_panels(rows_learned, tp, exact_samples, "learned denoiser: samples over the exact posterior")

# %% [markdown]
# **The gap.** Compare the two tables row by row. The network's prior is close to the ring but not
# equal to it (its DDPM samples sit above the prior noise floor), and its errors are largest where it
# saw little data: between the modes and far from the ring. How much that matters depends on how a
# sampler uses the denoiser:
#
# * DiffPIR and DAPS only *evaluate* the denoiser at moderate to high noise, where the network is
#   accurate: their rows barely move.
# * DPS *differentiates* the network: it follows $\nabla_{x_t}$ of the network output, and the
#   gradient of a network that fits its outputs well can still be poor. In our runs DPS loses the
#   most from the swap.
# * PnP-ULA queries the denoiser at one small noise level, thousands of times, in the regions between
#   the modes that the chains must cross. There the learned score differs from the exact one, which
#   changes how the chains move between modes: its row moves a lot, in either direction, from seed to
#   seed.
#
# *Cost*: the NFE are the same by construction, but each call is now a network pass, so the
# share of time spent in the denoiser grows, and DPS pays an extra backward pass per step.
#
# The ordering between methods is not stable under a change of denoiser and seed on a problem this
# small, which is why we assert only the claims above (fits the data, beats the prior).

# %% [markdown]
# ## 6. Stepping through a sampler
#
# `pt.widgets.step_through` runs a method through `pt.iterate` and keeps every frame: the particles
# $x_t$ (blue), their $x_0$ estimates (orange), the data-consistency correction of that step
# (red arrows) and the exact posterior contours. Drag the slider or press Play. Here is DiffPIR:
# watch the orange estimates jump onto the measurement line (the proximal step) while the blue
# state is re-noised around them.
#
# DiffPIR's main knob is $\zeta$, the share of fresh noise when the state is re-noised around the
# proximal estimate ($\zeta = 0$: deterministic, $\zeta = 1$: all fresh). Pick another value in the
# `zeta` drop-down: the chain runs again with the same seed and the frames are replaced.

# %%
stepper = pt.widgets.step_through("diffpir", exact_den, problem, y, n=300, density=posterior,
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
dps_stepper = pt.widgets.step_through("dps", exact_den, problem, y, n=300, density=posterior,
                                      generator=seeded(21), every=dps_steps // 20,
                                      **OPTIONS["dps"])
assert dps_stepper.slider.max == len(dps_stepper.frames) - 1 <= 21
dps_stepper

# %%
dps_stepper.filmstrip(idx=(0, len(dps_stepper) // 2, -1))
plt.show()

# %% [markdown]
# ## 7. Sixteen dimensions
#
# `pt.toy.gmm_problem()` is a 5-component mixture in $\mathbb R^{16}$ with anisotropic covariances,
# seen through a random rank-4 matrix ($m = 4$ measurements for $d = 16$ unknowns) with
# $\sigma = 0.3$. Same samplers, same options, exact denoiser. (SW shrinks with the dimension, so
# compare the ratios, not the raw numbers, with the 2D tables.) Four modes keep a visible weight;
# twelve directions are not measured at all, so there the posterior is the prior's (component-wise).

# %%
tp16 = pt.toy.gmm_problem()
print(tp16, " posterior weights:", [round(w, 3) for w in tp16.posterior.weights.tolist()])
exact16 = tp16.posterior.sample(N, generator=seeded(30))
rows16, ref16 = benchmark(tp16.prior.denoiser(sched), tp16, exact16)
show_table(rows16, ref16, "d = 16, rank-4 operator, exact denoiser")
check_rows(rows16, ref16, beat_prior_by=math.inf)  # SW vs prior: see below, not a safe claim here

# %% [markdown]
# In 16 dimensions the lesson of the 2D table is sharper. Every sampler still **fits the data** (the
# residual column is far below the prior's), yet by SW most of them are hardly closer to the posterior
# than prior samples are, and in our runs PnP-ULA is even *further*: the mode-weight error is large
# for all of them. A sample that explains $y$ can sit in the wrong mode.
#
# PnP-ULA shows the classic weakness of Langevin chains: in 16 dimensions the modes are separated by
# wide low-density regions, and a chain practically never crosses them. Each chain keeps the mode of
# the basin where it started, so the mode weights reflect the starting distribution, not the
# posterior. (This is why the paper runs one chain for $10^5$ to $10^6$ iterations and still reports
# slow mixing.) DPS, with the full 1000 steps, gets closest here; with the 200 steps of fast mode it
# does not.

# %% [markdown]
# ## 8. Conclusions
#
# * An inverse problem with a prior has a **posterior**, and on this toy it is multimodal: its mean
#   sits in a gap, so we want samples, with the right mass in each mode.
# * For Gaussian mixtures the posterior and the Tweedie denoiser are closed-form (Kalman updates);
#   we derived both by hand and they match the library to machine precision. This exact world is the
#   yardstick of the whole course.
# * Every classical diffusion sampler fits the data, and in 2D beats ignoring it by a wide margin,
#   but **with the paper's step counts none is exact, even with the exact denoiser**: they sit several
#   noise floors away from the posterior, mostly through wrong mode weights. In 16 dimensions most are
#   barely better than the prior by that measure, and a Langevin chain (PnP-ULA) cannot move mass
#   between modes at all.
# * Their costs differ by more than an order of magnitude: DiffPIR 100 denoiser calls and no backward
#   pass; DPS 1000 calls each with a backward pass; DAPS 1000 calls plus 20,000 cheap Langevin steps;
#   PnP-ULA 3000 calls (and far more in the paper).
# * A learned denoiser adds its own error on top, largest where training data is scarce; methods
#   that differentiate the network (DPS) are the most exposed to it.
#
# The next chapters look at methods that aim to do better per network call: LATINO (Langevin with
# one-step denoising and a proximal data step), Spin (sparse scheduled guidance), and the trained
# few-step samplers UD2M and APS.

# %% [markdown]
# ## References
#
# * Ho, Jain, Abbeel 2020, *Denoising diffusion probabilistic models*, arXiv 2006.11239
# * Chung, Kim, Mccann, Klasky, Ye 2023, *Diffusion posterior sampling for general noisy inverse
#   problems* (DPS), arXiv 2209.14687
# * Zhu et al. 2023, *Denoising diffusion models for plug-and-play image restoration* (DiffPIR),
#   arXiv 2305.08995
# * Zhang et al. 2024, *Improving diffusion inverse problem solving with decoupled noise annealing*
#   (DAPS), arXiv 2407.01521
# * Laumont et al. 2022, *Bayesian imaging using Plug & Play priors* (PnP-ULA), arXiv 2103.04715
