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
# # Chapter 03: Langevin sampling and LATINO
#
# Chapter 02 ran the diffusion samplers that walk *down* the noise levels once. This chapter takes
# the other road: a **Markov chain** whose stationary law is (close to) the posterior.
#
# 1. the unadjusted Langevin algorithm (ULA) with the exact posterior score, coded by hand, and its
#    step-size bias;
# 2. PnP-ULA and MYULA: the prior score from a denoiser at a small noise level;
# 3. LATINO (Spagnoletti et al. 2025): a chain whose prior half is "noise to t, denoise in one call"
#    and whose data half is a proximal step; one step derived by hand, then the library;
# 4. what a *Tweedie* denoiser does to LATINO: it **under-disperses**, and we measure by how much
#    against the exact posterior;
# 5. steppers over the chains, in 2D and on MNIST with the shipped prior.
#
# Claims about this run are checked by an `assert`. `POSTERIOR_TUTOR_FAST=1` shrinks the runs;
# nothing here is read from a stored run (every number is computed in this run). How long it
# takes: [`docs/chapter_times.md`](../docs/chapter_times.md); measurements behind LATINO's
# defaults: [`docs/notes/latino.md`](../docs/notes/latino.md).
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt

DEVICE = pt.default_device()              # the MNIST section runs here (the 2D problems on the CPU)
FAST = pt.fast_mode()
N = 1000 if FAST else 3000                # particles
torch.set_num_threads(1)
print(f"fast mode: {FAST}, particles: {N}, device: {DEVICE}")


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def sw(a, b):
    """Sliced Wasserstein distance with fixed projections (comparable across the chapter)."""
    return float(pt.metrics.sliced_wasserstein(a, b, generator=seeded(123)))


# %% [markdown]
# ## 1. Langevin dynamics, by hand
#
# The Langevin diffusion $dX = \nabla \log \pi(X)\,dt + \sqrt{2}\,dW$ has $\pi$ as its stationary
# law. Its Euler discretisation is the **unadjusted Langevin algorithm**
#
# $$ x_{k+1} = x_k + \delta\, \nabla \log \pi(x_k) + \sqrt{2\delta}\, z_k, \qquad z_k \sim \mathcal N(0, I). $$
#
# With $\pi = p(x \mid y)$, $\nabla \log \pi = \nabla \log p(x) - \nabla g(x)$, $g(x) = |Ax - y|^2 / (2\sigma^2)$.
# "Unadjusted" means no Metropolis correction: the chain targets a law that is $O(\delta)$ away from
# $\pi$. On the 2D problem of chapter 00 the exact posterior is a Gaussian mixture, so we can use its
# exact score and see that bias on its own.
#
# **How we score a cloud of samples: the sliced Wasserstein distance (SW).** Project the samples
# and the exact posterior's samples on many random directions, sort each projection, and average
# the distance between the sorted values (the 1D Wasserstein distance) over the directions. It is
# zero only when the two distributions coincide; two independent sets of exact samples sit at a
# **noise floor** (printed below), so we report SW as a multiple of that floor.

# %%
tp = pt.toy.bimodal_problem_2d()
prior, problem, y, posterior = tp.prior, tp.problem, tp.y, tp.posterior
exact = posterior.sample(N, generator=seeded(1))
floor = sw(posterior.sample(N, generator=seeded(2)), exact)   # two exact sample sets
prior_dist = sw(prior.sample(N, generator=seeded(3)), exact)
print(f"noise floor (exact vs exact) {floor:.3f}, prior samples vs exact {prior_dist:.3f}")


def ula(score, x, delta, steps, generator):
    """The unadjusted Langevin algorithm: n parallel chains, returns the last state."""
    for _ in range(steps):
        z = torch.randn(x.shape, generator=generator)
        x = x + delta * score(x) + (2 * delta) ** 0.5 * z
    return x


# %% [markdown]
# ### Exercise 03.1: one ULA step
#
# Write `ula_step(x, score, delta, z)`: one step of the unadjusted Langevin algorithm from the
# particles `x` (shape `(n, d)`), with `score` a function returning $\nabla\log\pi$ at its argument
# and `z` the standard normal noise of this step.

# %% tags=["exercise"]
# Exercise 03.1: your answer (the solution: pt.exercises.solution("03.1"))
def ula_step(x, score, delta, z):
    """One ULA step with step size delta and noise z."""
    raise NotImplementedError("drift along the score, plus noise")


# %%
pt.exercises.check("03.1", ula_step)

# %% [markdown]
# Two separate questions. **Bias**: start the chains *at* the posterior (exact samples) and see
# whether they stay there. **Mixing**: start them at the prior and see how long they take to find
# the right mode weights.

# %%
x_post = posterior.sample(N, generator=seeded(4))    # chains started at the exact posterior
bias = {}
for delta in [0.002, 0.01, 0.04, 0.06]:   # stable below 2 / L, L ~ |a|^2/sigma^2 + 1/0.3^2 ~ 28
    xs = ula(posterior.score, x_post, delta, 300, seeded(5))
    bias[delta] = (sw(xs, exact) / floor, (xs.var(0).sum() / exact.var(0).sum()).item())
    print(f"delta {delta:5}: SW / floor {bias[delta][0]:4.1f}, variance / exact {bias[delta][1]:.2f}")

# %% [markdown]
# A small step leaves the posterior where it is (SW at the noise floor); a large step over-shoots and
# inflates the variance: that is the price of "unadjusted".

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
deltas = list(bias)
ax1.plot(deltas, [bias[d][0] for d in deltas], "o-")
ax1.axhline(1, color="0.5", ls=":", label="noise floor")
ax1.set(xscale="log", xlabel=r"step size $\delta$", ylabel="SW / noise floor", title="ULA from the posterior, 300 steps")
ax1.legend()
ax2.plot(deltas, [bias[d][1] for d in deltas], "o-")
ax2.axhline(1, color="0.5", ls=":", label="exact")
ax2.set(xscale="log", xlabel=r"step size $\delta$", ylabel="total variance / exact", title="the spread it settles at")
ax2.legend()
for ax in (ax1, ax2):
    ax.set_xticks(deltas, [f"{d:g}" for d in deltas]); ax.minorticks_off()
plt.tight_layout(); plt.show()

# %% [markdown]
# Now the mixing, with a safe step:

# %%
x_prior = prior.sample(N, generator=seeded(6))
mixing = {}
for run_time in [1.0, 3.0 if FAST else 10.0]:
    xs = ula(posterior.score, x_prior, 0.01, int(run_time / 0.01), seeded(7))
    mixing[run_time] = sw(xs, exact) / floor
    print(f"run time {run_time:4} ({int(run_time / 0.01)} steps): SW / floor {mixing[run_time]:.1f}")

# %%
assert bias[0.01][0] < 2, "with a small step ULA stays at the exact posterior"
assert bias[0.06][1] > 1.2 and bias[0.06][0] > 3, "a large step inflates the spread"
short, long_ = mixing.values()
assert long_ < short, "running longer moves probability between the modes"

# %% [markdown]
# Even with the exact score, moving mass between modes separated by low-density regions takes
# thousands of steps: Langevin chains mix slowly across modes.

# %% [markdown]
# ### Exercise 03.2: the step-size bias, in closed form
#
# On a 1D Gaussian target $\pi = \mathcal N(0, v)$ the score is $-x/v$ and one ULA step is
# $x' = (1 - \delta/v)\,x + \sqrt{2\delta}\,z$. Find the chain's **stationary variance** (the
# variance that a step leaves unchanged) and write it as `ula_stationary_variance(v, delta)` (valid
# for $0 < \delta < 2v$). Then try it: run `ula(lambda x: -x / v, ...)` on many chains for a few
# step sizes and compare the empirical variance with your formula. Which step keeps the variance
# within $10\%$ of $v$?

# %% tags=["exercise"]
# Exercise 03.2: your answer (the solution: pt.exercises.solution("03.2"))
def ula_stationary_variance(v, delta):
    """The variance ULA's chain settles at on N(0, v) with step size delta."""
    raise NotImplementedError("solve Var = a^2 Var + 2 delta for Var")


# %%
pt.exercises.check("03.2", ula_stationary_variance)

# %% [markdown]
# ## 2. PnP-ULA and MYULA: the prior score from a denoiser
#
# We do not have $\nabla \log p$ for images, but a denoiser gives the score of the *noised* prior by
# Tweedie's formula, $\nabla \log p_\epsilon(x) = (D_\epsilon(x) - x)/\epsilon^2$ at a small noise
# level $\epsilon$. PnP-ULA (Laumont et al. 2022) plugs it into ULA; MYULA replaces $\nabla g$ by the
# gradient of its Moreau-Yosida envelope, $(x - \mathrm{prox}_{\lambda g}(x))/\lambda$, which needs
# only the proximal step. Both need thousands of network calls: the step must stay below
# $1/(3L)$ with $L \approx 1/\epsilon^2$. We count **network calls** (NFE, number of function
# evaluations): denoiser evaluations per sample, the cost that dominates on images.

# %%
den = prior.denoiser(pt.VPSchedule())          # the exact denoiser of the prior mixture
rows = []
ula_steps = 1500 if FAST else 5000
for name, opts in [("pnp_ula", dict(steps=ula_steps)),
                   ("pnp_ula", dict(steps=ula_steps, likelihood="moreau")),
                   ("latino", dict())]:
    with den.counting():
        xs = pt.sample(name, den, problem, y, n=N, generator=seeded(6), **opts)
    label = "myula" if opts.get("likelihood") == "moreau" else name
    rows.append((label, sw(xs, exact) / floor, den.nfe, xs))
display(Markdown("| method | SW / noise floor | network calls |\n|---|---|---|\n" + "\n".join(
    f"| {r[0]} | {r[1]:.1f} | {r[2]} |" for r in rows)))
results = {r[0]: r for r in rows}

# %%
assert results["pnp_ula"][1] < prior_dist / floor, "PnP-ULA moves from the prior towards the posterior"
print(f"network calls per sample (counted): LATINO {results['latino'][2]}, PnP-ULA {results['pnp_ula'][2]} "
      f"({results['pnp_ula'][2] / results['latino'][2]:.0f}x LATINO's)")

# %% [markdown]
# ## 3. LATINO, one step by hand
#
# LATINO (Spagnoletti, Prost, Almansa, Papadakis, Pereyra 2025) runs $K = 8$ steps on the grid
# $t_k = 999, 874, \dots, 124$. From $x$:
#
# $$ z = \sqrt{\bar\alpha_t}\, x + \sqrt{1 - \bar\alpha_t}\, \varepsilon, \qquad
#    u = D(z, t), \qquad
#    x \leftarrow \mathrm{prox}_{\rho}(u, y) = \arg\min_x \frac{|Ax - y|^2}{2\sigma^2} + \frac{|x - u|^2}{2\rho^2},$$
#
# with $\rho^2 = \delta (1 - \bar\alpha_t)$ and the step size $\delta = c\,|Au - y|$ (the public
# code's adaptive rule). The noise-then-denoise pair is the prior half: with a *consistency model*
# (the paper's setting) $u$ is a fresh sample of $p(x_0 \mid x_t)$. The prox is an implicit step on
# the likelihood, so no step size can make it unstable. For our linear $A$ the prox is a
# linear solve: $(A^\top A/\sigma^2 + I/\rho^2)\,x = A^\top y/\sigma^2 + u/\rho^2$.

# %%
steps = list(pt.iterate("latino", den, problem, y, n=5, generator=seeded(7)))
s = steps[2]                                         # the third step, t = 749
sched = den.schedule
u_hand = den(s.extras["noised"], s.t)                # the denoiser on the noised state
delta = 1.0 * problem.residual(u_hand, y).flatten(1).norm(dim=1)     # c = 1, the default
rho2 = delta * (1 - sched.abar(s.t).item())
A, y64 = problem.operator.matrix().double(), y.double()
lhs = A.T @ A / problem.sigma ** 2
x_hand = torch.stack([torch.linalg.solve(lhs + torch.eye(2, dtype=A.dtype) / r2,
                                         A.T @ y64 / problem.sigma ** 2 + u / r2)
                      for u, r2 in zip(u_hand.double(), rho2.double())])
print("by hand:", x_hand[:2].tolist())
print("library:", s.x[:2].tolist())
assert torch.allclose(x_hand, s.x.double(), atol=1e-5), "the library's LATINO step is the equation above"
assert [st.t for st in steps] == [999, 874, 749, 624, 499, 374, 249, 124]

# %% [markdown]
# ### Exercise 03.3: LATINO's proximal step for inpainting
#
# For inpainting $A$ is a 0/1 mask $M$ and $y = M x + \sigma n$ (0 on the missing pixels), so the
# prox separates pixel by pixel. Write `inpainting_prox(u, y, mask, sigma, rho)` for images `u` of
# shape `(n, C, H, W)`, `y` and `mask` of shape `(C, H, W)`, and one radius per sample (`rho` of
# shape `(n,)`): it minimises $\lvert Mx - y\rvert^2/(2\sigma^2) + \lvert x - u\rvert^2/(2\rho^2)$.
# The checker compares it with `pt.operators.Inpainting(mask).prox`.

# %% tags=["exercise"]
# Exercise 03.3: your answer (the solution: pt.exercises.solution("03.3"))
def inpainting_prox(u, y, mask, sigma, rho):
    """argmin_x |M x - y|^2 / (2 sigma^2) + |x - u|^2 / (2 rho^2), rho one value per sample."""
    raise NotImplementedError("observed pixels: a weighted average of y and u; missing ones: u")


# %%
pt.exercises.check("03.3", inpainting_prox)

# %% [markdown]
# ## 4. With a Tweedie denoiser, LATINO under-disperses
#
# Our denoisers return the **mean** $E[x_0 \mid x_t]$, not a sample. Each prior half therefore pulls
# every chain towards a conditional mean and throws away the spread that a sample would have. To see
# the size of the effect cleanly, take a *Gaussian* prior $\mathcal N(0, I)$ in 2D with the same kind
# of measurement: the exact posterior is Gaussian, and we compare covariances.

# %%
gauss = pt.GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None])
gprob = pt.InverseProblem(pt.operators.Matrix([[1.0, 0.5]]), sigma=0.5)
gy = gprob.measure(gauss.sample(1, generator=seeded(8))[0], generator=seeded(9))
gpost = gauss.posterior(gprob, gy)
gden = gauss.denoiser(pt.VPSchedule())
g_exact = gpost.sample(4 * N, generator=seeded(10))
ratios, g_lat = {}, {}
for K in [2, 4, 8, 16, 32, 64]:
    xs = pt.sample("latino", gden, gprob, gy, n=4 * N, generator=seeded(11), steps=K)
    g_lat[K] = xs
    ratios[K] = (torch.cov(xs.T).trace() / torch.cov(g_exact.T).trace()).item()
    print(f"K = {K:2}: total variance of LATINO / exact = {ratios[K]:.2f}, "
          f"mean error {(xs.mean(0) - g_exact.mean(0)).norm():.3f}")
display(Markdown(f"LATINO with the exact Tweedie denoiser keeps only **{ratios[8]:.0%}** of the "
                 f"posterior variance at K = 8, and {ratios[64]:.0%} at K = 64; its mean is right."))

# %%
assert ratios[8] < 0.6, "a Tweedie-denoiser LATINO under-disperses"
assert ratios[32] < 0.75, "and more steps do not cure it (it is the mean, not a sample)"

# %% [markdown]
# The picture: the exact posterior's covariance ellipse (one and two standard deviations) against
# LATINO's at two values of $K$, over LATINO's samples, and the variance ratio as $K$ grows.


# %%
def ellipse(ax, pts, color, label, ls="-"):
    """The 1- and 2-standard-deviation ellipses of the samples' covariance."""
    mean, cov = pts.mean(0), torch.cov(pts.T)
    vals, vecs = torch.linalg.eigh(cov)
    angle = torch.linspace(0, 2 * torch.pi, 200)
    circle = torch.stack([angle.cos(), angle.sin()], 1)
    for k, scale in enumerate((1.0, 2.0)):
        curve = mean + scale * (circle * vals.sqrt()) @ vecs.T
        ax.plot(*curve.T, color=color, ls=ls, lw=1.5, label=label if k == 0 else None)


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.scatter(*g_lat[8][:1500].T, s=2, alpha=0.25, color="C1")
ellipse(ax1, g_exact, "k", "exact posterior")
ellipse(ax1, g_lat[8], "C1", "LATINO, K = 8")
ellipse(ax1, g_lat[64], "C2", "LATINO, K = 64", ls="--")
ax1.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal", title="Gaussian prior: covariance ellipses")
ax1.legend(fontsize=8)
ax2.plot(list(ratios), list(ratios.values()), "o-", label="LATINO (Tweedie denoiser)")
ax2.axhline(1, color="k", ls=":", label="exact posterior")
ax2.set_xscale("log", base=2)
ax2.set_xticks(list(ratios), [str(k) for k in ratios]); ax2.minorticks_off()
ax2.set(xlabel="K (network calls per sample)", ylabel="total variance / exact",
        ylim=(0, 1.1), title="under-dispersion does not go away with K")
ax2.legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# ### LATINO's step size
#
# The prox radius is $\rho^2 = \delta(1 - \bar\alpha_t)$ with $\delta = c\,|Au - y|$. A small $c$
# keeps $x$ near the denoiser's $u$, a large one moves it onto the measurement's line
# $Ax = y$. Does any step size buy the spread back? We sweep $c$ on the Gaussian problem (variance and
# mean error) and on the bimodal one (SW to the exact posterior).

# %%
c_values = [0.01, 0.1, 1.0, 10.0, 100.0]
c_sweep = {}
for c in c_values:
    xg = pt.sample("latino", gden, gprob, gy, n=4 * N, generator=seeded(11), c=c)
    xb = pt.sample("latino", den, problem, y, n=N, generator=seeded(6), c=c)
    c_sweep[c] = ((torch.cov(xg.T).trace() / torch.cov(g_exact.T).trace()).item(),
                  (xg.mean(0) - g_exact.mean(0)).norm().item(), sw(xb, exact) / floor)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
ax1.plot(c_values, [v[0] for v in c_sweep.values()], "o-", label="total variance / exact")
ax1.plot(c_values, [v[1] for v in c_sweep.values()], "s--", label="mean error")
ax1.axhline(1, color="0.5", ls=":")
ax1.set(xscale="log", xlabel="step-size factor c", title="Gaussian problem, K = 8"); ax1.legend(fontsize=8)
ax2.plot(c_values, [v[2] for v in c_sweep.values()], "o-")
ax2.axhline(1, color="0.5", ls=":", label="noise floor")
ax2.set(xscale="log", xlabel="step-size factor c", ylabel="SW / noise floor", title="bimodal problem, K = 8")
ax2.legend(fontsize=8)
plt.tight_layout(); plt.show()
best_c = min(c_sweep, key=lambda c: c_sweep[c][2])
widest = max(c_sweep, key=lambda c: c_sweep[c][0])
display(Markdown(f"The widest LATINO of the sweep (c = {widest:g}) keeps {c_sweep[widest][0]:.0%} of the "
                 f"variance, bought with a mean error of {c_sweep[widest][1]:.2f} (c = 1: "
                 f"{c_sweep[1.0][1]:.2f}); the closest to the bimodal posterior is c = {best_c:g} "
                 f"({c_sweep[best_c][2]:.1f} x the noise floor; the default c = 1: {c_sweep[1.0][2]:.1f})."))
assert max(v[0] for v in c_sweep.values()) < 0.9, "no step size gives LATINO the posterior's spread"

# %% [markdown]
# On the bimodal problem the same effect shows up as wrong **mode weights**: the conditional means
# blur the choice between modes. Each sample is assigned to the posterior component most likely to
# have produced it; the share per component is a mode weight, and the error is the total-variation
# distance $\tfrac12\sum_j |w_j - w_j^\star|$ to the exact weights $w^\star$. The exact weights and LATINO's:

# %%
xs_lat = results["latino"][3]
w_exact = pt.metrics.mode_weights(exact, posterior)
w_lat = pt.metrics.mode_weights(xs_lat, posterior)
print("exact :", [round(v, 3) for v in w_exact.tolist() if v > 1e-3])
print("LATINO:", [round(v, 3) for v in w_lat.tolist() if v > 1e-3])
tv = float(pt.metrics.mode_weight_error(xs_lat, posterior))
print(f"total-variation error of LATINO's mode weights: {tv:.2f}")
assert tv > 0.1, "LATINO's mode weights are visibly off"

# %% [markdown]
# That is the gap chapter 04 closes: unfold the chain and *train* the denoiser inside it (UD2M), so
# that its few steps produce samples rather than means.
#
# ## 5. Stepping through the chains
#
# The 2D stepper shows each LATINO step: the particles $x$ after the prox (blue), the denoised
# $u$ (orange) and the data-consistency correction $x - u$ as arrows, over the exact posterior's
# contours.
#
# LATINO's main knob is $K$, the number of steps (the option `steps`): pick another value in its
# drop-down and the chain runs again with the same seed, now with $K$ frames.

# %%
stepper_2d = pt.viz.step_through("latino", den, problem, y, n=300, generator=seeded(12),
                                     density="exact", title="LATINO on the 2D problem",
                                     knobs={"steps": [2, 4, 8, 16]})
assert len(stepper_2d.frames) == 8
first_png = stepper_2d.image.value
stepper_2d.slider.value = 7
assert stepper_2d.image.value != first_png, "moving the slider shows another frame"
stepper_2d.rerun(12, steps=4)                        # what the drop-down does: K = 4 steps
assert len(stepper_2d.frames) == 4
stepper_2d.rerun(12, steps=8)                        # back to K = 8
assert len(stepper_2d.frames) == 8
stepper_2d

# %%
stepper_2d.filmstrip()
plt.show()

# %% [markdown]
# ### On MNIST, with the shipped prior
#
# The same eight steps on a 32x32 digit with half of its pixels missing (random inpainting,
# $\sigma = 0.05$). If the MNIST data is not installed, the digit that made $y$ is a sample of the
# prior itself, which is just as good a test image. We score with the **PSNR**,
# $10\log_{10}(2^2/\mathrm{MSE})$ in dB for images in $[-1, 1]$ (higher is better), of each sample
# and of the samples' mean.

# %%
mnist_prior = pt.pretrained("mnist", device=DEVICE)
mnist_prior.clip = 1.0                      # x0 estimates stay in the data range [-1, 1]
try:
    x_true = pt.data.load("mnist", split="test")[9000].to(DEVICE)   # held out from the prior's training
except pt.data.DataUnavailable as err:
    print("MNIST not available here, using a prior sample:", str(err)[:80], "...")
    x_true = pt.sample("ddpm", mnist_prior, None, None, n=1, steps=50, eta=0.0, generator=seeded(13))[0]
mask_op = pt.operators.Inpainting.random((1, 32, 32), 0.5, generator=seeded(14), device=DEVICE)
mprob = pt.InverseProblem(mask_op, 0.05)
my = mprob.measure(x_true, generator=seeded(15))
with mnist_prior.counting():
    mx = pt.sample("latino", mnist_prior, mprob, my, n=8, generator=seeded(16))
print("network calls per sample:", mnist_prior.nfe)
psnr_latino = pt.metrics.psnr(mx, x_true.expand_as(mx)).mean().item()
psnr_mean = pt.metrics.psnr(mx.mean(0, keepdim=True), x_true[None]).item()
psnr_zero_fill = pt.metrics.psnr(mask_op.adjoint(my[None]), x_true[None]).item()
print(f"PSNR: LATINO samples {psnr_latino:.1f} dB, their mean {psnr_mean:.1f} dB, "
      f"zero-filled measurement {psnr_zero_fill:.1f} dB")
assert psnr_latino > psnr_zero_fill + 3, "the prior fills in the missing pixels"
assert psnr_mean >= psnr_latino, "the sample mean is the better point estimate"

# %%
stepper_mnist = pt.viz.step_through("latino", mnist_prior, mprob, my, n=4, generator=seeded(16),
                                        title="LATINO, MNIST random inpainting",
                                        knobs={"steps": [2, 4, 8, 16]})
first_png = stepper_mnist.image.value
stepper_mnist.slider.value = 4
assert stepper_mnist.image.value != first_png, "moving the slider shows another frame"
stepper_mnist

# %%
stepper_mnist.filmstrip()
plt.show()

# %% [markdown]
# ## Summary
#
# * ULA is exact only as the step goes to zero; with a denoiser prior (PnP-ULA, MYULA) it needs
#   thousands of network calls.
# * LATINO needs eight: noise, denoise in one call, prox. With the paper's consistency model each
#   call is a sample; with a Tweedie denoiser it is a mean, and the chain keeps only a fraction of
#   the posterior variance (measured above) and mis-weights the modes.
# * Chapter 04 unfolds this chain and trains it.

# %% [markdown]
# ## References
#
# * Durmus, Moulines, Pereyra 2018, *Efficient Bayesian computation by proximal Markov chain Monte
#   Carlo* (MYULA), arXiv 1612.07471
# * Laumont et al. 2022, *Bayesian imaging using Plug & Play priors* (PnP-ULA), arXiv 2103.04715
# * Spagnoletti et al. 2025, *LATINO-PRO* (LATINO), arXiv 2503.12615
