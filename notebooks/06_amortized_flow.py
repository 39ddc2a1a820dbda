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
# # Chapter 06: Amortized posterior sampling with a conditional flow (APS)
#
# Every sampler so far starts from scratch for each measurement $y$: hundreds of network calls
# per sample. APS (Mammadov, Chung, Ye 2024) pays once, up front: it trains a **conditional
# normalising flow** $x = G_\phi(z, y)$, $z \sim \mathcal N(0, I)$, whose law $q_\phi(x \mid y)$
# approximates the posterior for *every* $y$. Afterwards a sample costs one pass through the flow.
#
# **Learning outcomes.** After this chapter you can
#
# * fit a law to a posterior by minimising the reverse KL, and say why the fit is mode-seeking;
# * compute the density of a flow by the change of variables (an affine coupling by hand);
# * derive the weights of the diffusion ELBO that APS uses in place of $\log p$, and say what the
#   surrogate costs against the exact $\log p$;
# * build a variational sampler of your own and score it against the exact posterior;
# * read an amortized sampler's results: quality, calibration, out-of-distribution behaviour and
#   time per sample against DPS.
#
# **Prerequisites.** Chapters 00-02 (the 2D problem, SW and its noise floor: chapter 00 §4; DDPM,
# Tweedie and the $\varepsilon$-parametrisation: chapter 01; DPS, PSNR, SSIM, rank coverage, NFE:
# chapter 02 §1); the chapters 03-05 are not needed.
#
# **Study time.** About 3 hours: 1.5 hours of reading, 1.5 hours for exercises 06.1-06.5; the
# mini-project, exercise 06.6, is open-ended.
#
# The sections:
#
# 1. variational inference and the reverse KL, by hand: a Gaussian fitted to a bimodal posterior;
#    the change of variables through a flow layer;
# 2. why the diffusion **ELBO** replaces $\log p$: its weights derived, its gradient checked;
# 3. what the surrogate costs: three fits of the same flow on the 2D problem (exact $\log p$,
#    ELBO with the exact denoiser, ELBO with a learned one) against the exact posterior, and a
#    variational sampler you build;
# 4. amortization on real digits: train on measurements of some images, test on held-out and on
#    out-of-distribution ones; calibration, time per sample against DPS;
# 5. a stepper over the flow's layers turning noise into a sample;
# 6. the shipped MNIST flows, and what the super-resolution flow gains over upsampling $y$;
# 7. a mini-project: one training run for every $y$ of the 2D problem.
#
# Claims about numbers computed in this run are checked by an `assert`. The long parts (the flow
# fits, the digits flow's training and evaluation, the DPS timing, the shipped flows' evaluation)
# are read from stored runs in `data/runs/ch06_*.pt` unless `RECOMPUTE = True` (below); each prints
# the file it read and how to regenerate it, and a claim about stored numbers is printed as a note
# (checked by an `assert` when they are recomputed). `POSTERIOR_TUTOR_FAST=1` shrinks what is
# computed live.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import posterior_tutor as pt

RECOMPUTE = False                          # True: rerun the stored runs data/runs/ch06_*.pt (slow: tens of minutes)
DEVICE = pt.default_device()               # images, flows and samplers; the 2D problems stay on the CPU
FAST = pt.fast_mode()
N = 2000                                   # samples per 2D comparison (cheap in both modes)
torch.set_num_threads(1)
print(f"fast mode: {FAST}, device: {DEVICE}, samples: {N}")
FRESH = set()                              # the stored runs computed (not read) in this run


def seeded(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def claim(ok, text, run):
    """An assert when the stored run ``run`` was computed in this run, else a printed note."""
    if run in FRESH:
        assert ok, text
    else:
        print(f"note (read from the stored run {run}, asserted when it is recomputed): {text}: "
              + ("holds" if ok else "DOES NOT HOLD"))


def flow_state(fl):
    """A trained flow as a dict (its checkpoint, the format of ``fl.save``) for a stored run."""
    with tempfile.TemporaryDirectory() as d:
        return torch.load(fl.save(Path(d) / "flow.pt"), weights_only=True)


def flow_from_state(state, den, problem):
    """The flow back from ``flow_state`` (``pt.aps.load`` checks it matches the prior)."""
    with tempfile.TemporaryDirectory() as d:
        torch.save(state, Path(d) / "flow.pt")
        return pt.aps.load(Path(d) / "flow.pt", den, problem)


def sw(a, b):
    """Sliced Wasserstein distance with fixed projections (comparable across the chapter)."""
    return float(pt.metrics.sliced_wasserstein(a, b, generator=seeded(123)))


# %% [markdown]
# ## 1. Variational inference: fit a law by minimising a KL
#
# Pick a family $q_\phi$ and minimise the **reverse** KL to the posterior
# $p(x \mid y) \propto p(x)\, e^{-g(x)}$, $g(x) = |y - Ax|^2 / (2\sigma^2)$:
#
# $$ \mathrm{KL}(q_\phi \,\|\, p(\cdot \mid y)) = \mathbb E_{x \sim q_\phi}\big[ g(x) - \log p(x) + \log q_\phi(x) \big] + \log p(y). $$
#
# $\log p(y)$ does not depend on $\phi$, so we never need it. If $x = G_\phi(z)$ with
# $z \sim \mathcal N(0, I)$ and $G_\phi$ invertible, the change of variables gives
# $\log q_\phi(x) = \log \mathcal N(z) - \log|\det \partial G_\phi / \partial z|$ and the loss is an
# expectation over $z$ that we can differentiate (the reparameterisation trick):
#
# $$ L(\phi) = \mathbb E_z\big[ g(G_\phi(z)) - \log p(G_\phi(z)) - \log|\det \partial_z G_\phi(z)| \big] + \text{const}. $$
#
# The simplest $G$ is affine, $x = m + Lz$ ($\log|\det| = \sum_i \log |L_{ii}|$ for a triangular
# $L$): Gaussian VI. The next cell fits it to the bimodal posterior of chapter 00 and measures
# where its samples land; the distances are SW as a multiple of the noise floor (chapter 00 §4).
#
# ### Exercise 06.1 (predict, then run): where does the fitted Gaussian land?
#
# The posterior has two main modes on the line $a^\top x \approx y$. A single Gaussian fitted by
# the reverse KL (400 Adam steps from $m = 0$, $L = I$) ends up "on one mode", "spread over both
# modes" or "in the gap between the modes"? Write one of the three strings. The cell after it
# measures it: one mode holds over $90\%$ of the samples, or more than half of them lie where the
# posterior density is below $2\%$ of its peak (the gap), or else they are spread.

# %% tags=["exercise"]
# Exercise 06.1: your prediction
gauss_fit = None   # one of the options, as a string

# %%
tp = pt.toy.bimodal_problem_2d()
prior, problem, y, posterior = tp.prior, tp.problem, tp.y, tp.posterior
exact = posterior.sample(N, generator=seeded(1))
floor = sw(posterior.sample(N, generator=seeded(2)), exact)
prior_dist = sw(prior.sample(N, generator=seeded(3)), exact)
w_exact = posterior.weights.float()
print(f"noise floor {floor:.3f}, prior samples vs exact {prior_dist:.3f}")
print("exact mode weights:", [round(v, 2) for v in w_exact.tolist() if v > 1e-3])

m = torch.zeros(2, requires_grad=True)
raw_L = torch.zeros(2, 2, requires_grad=True)          # L = tril(raw) with exp on the diagonal
opt = torch.optim.Adam([m, raw_L], lr=0.05)
gen = seeded(4)
for it in range(400):
    L = torch.tril(raw_L, -1) + torch.diag(raw_L.diagonal().exp())
    z = torch.randn(256, 2, generator=gen)
    x = m + z @ L.T
    loss = (problem.data_fit(x, y) - prior.log_prob(x)).mean() - raw_L.diagonal().sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
L = (torch.tril(raw_L, -1) + torch.diag(raw_L.diagonal().exp())).detach()
gauss_vi = m.detach() + torch.randn(N, 2, generator=seeded(5)) @ L.T
w_vi = pt.metrics.mode_weights(gauss_vi, posterior)
gauss_landed = pt.exercises.ch06.gauss_band(gauss_vi, posterior)
print("Gaussian VI mode weights:", [round(v, 2) for v in w_vi.tolist() if v > 1e-3],
      f" SW {sw(gauss_vi, exact) / floor:.1f} x the floor: {gauss_landed}")

# %%
pt.exercises.check("06.1", gauss_fit, measured=gauss_landed)

# %% [markdown]
# **The reveal.** The reverse KL is an average under $q$ of $\log q - \log p$: wherever $q$ puts
# mass and the posterior has almost none, the integrand is huge. A Gaussian cannot reach both modes
# without filling the gap between them, so it settles on one and gives up the other's mass: the
# reverse KL is **mode-seeking**. (The forward KL, $\mathrm{KL}(p \,\|\, q)$, averaged under $p$,
# would match the posterior's mean and covariance and spread over both modes; it needs samples of
# $p$, which we do not have.)

# %%
assert w_vi.max() > 0.9, "the reverse KL puts a Gaussian on one mode, not between them"
assert sw(gauss_vi, exact) < prior_dist, "still far better than the prior"

# %% [markdown]
# A normalising flow is the same recipe with a richer $G$: a stack of invertible layers whose
# Jacobian determinants are cheap. APS makes $G$ also take $y$ as an input (a *conditional* flow)
# and averages the loss over measurements $y$ too, so one training run serves every $y$:
#
# $$ L(\phi) = \mathbb E_{y}\,\mathbb E_z\big[ g_y(G_\phi(z, y)) - \log p(G_\phi(z, y)) - \log|\det \partial_z G_\phi(z, y)| \big]. $$
#
# Only measurements are needed, never clean images: the prior enters through $\log p$.
#
# ### Exercise 06.2 (derive, then verify): the log-density of an affine coupling
#
# The workhorse layer of such flows (RealNVP, and the image flow of section 4) is the **affine
# coupling**: it maps $z \mapsto x$ with $x_a = z_a$ and $x_b = z_b \odot e^{s(z_a)} + t(z_a)$,
# where $a$ is the first half of the coordinates ($d/2$, rounded down), $b$ the rest, and $s$, $t$
# any networks. Derive $\log q(x)$ for $z \sim \mathcal N(0, I)$: invert the layer, then find
# $\log\lvert\det \partial x / \partial z\rvert$ (what does the Jacobian look like?). Write
# `coupling_log_prob(x, s_net, t_net)` returning it per sample (shape `(n,)`). The check compares
# it with the same density computed from an autograd Jacobian, on seeded $x$ and networks.

# %% tags=["exercise"]
# Exercise 06.2: your answer
def coupling_log_prob(x, s_net, t_net):
    """log q(x) of x = G(z), z ~ N(0, I), G one affine coupling layer; shape (n,)."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("06.2", coupling_log_prob)

# %% [markdown]
# **The reveal.** The inverse is explicit, because $x_a = z_a$ is known: $z_a = x_a$,
# $z_b = (x_b - t(x_a))\, e^{-s(x_a)}$. The Jacobian $\partial x / \partial z$ is block
# triangular, with the identity for $a$ and $\mathrm{diag}(e^{s(z_a)})$ for $b$ on its diagonal,
# so $\log\lvert\det\rvert = \sum_i s_i(x_a)$ and
# $\log q(x) = -\tfrac12 |z|^2 - \tfrac d2 \log 2\pi - \sum_i s_i(x_a)$: no determinant of a
# $d \times d$ matrix is ever computed, whatever $s$ and $t$ are. A density must integrate to 1;
# for a 2D coupling with small random networks, on a grid:

# %%
torch.manual_seed(0)
s_net, t_net = (torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
                .requires_grad_(False) for _ in range(2))
side = torch.linspace(-8, 8, 401)
pts = torch.stack(torch.meshgrid(side, side, indexing="xy"), -1).reshape(-1, 2)
s_a = s_net(pts[:, :1])
z_grid = torch.cat([pts[:, :1], (pts[:, 1:] - t_net(pts[:, :1])) * torch.exp(-s_a)], 1)
density = (torch.distributions.Normal(0.0, 1.0).log_prob(z_grid).sum(1) - s_a[:, 0]).exp()
mass = float(density.sum() * (side[1] - side[0]) ** 2)
print(f"integral of q over the grid: {mass:.4f}")
assert abs(mass - 1) < 0.01, "the change of variables gives a normalised density"

# %% [markdown]
# ## 2. Why the ELBO replaces $\log p$
#
# A diffusion prior gives the *score* of noised versions of $p$, not $\log p(x)$ itself (that needs
# an ODE solve with a trace estimator for every $x$). What it gives cheaply is the DDPM **evidence
# lower bound** (Ho et al. 2020): with the forward process of chapter 01,
#
# $$ -\log p(x) \le \sum_{t \ge 1} \mathbb E_{x_t \sim q(x_t \mid x)}\, \mathrm{KL}\big(q(x_{t-1} \mid x_t, x)\,\big\|\,p_\theta(x_{t-1} \mid x_t)\big) + C, $$
#
# where both laws are Gaussians with the same variance $\sigma_t^2 = \beta_t$ (the choice of
# APS and of this package), and means
#
# $$ \mu_q = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,\varepsilon\Big), \qquad \mu_\theta = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\Big), $$
#
# with $\alpha_t = 1 - \beta_t$ and $x_t = \sqrt{\bar\alpha_t}\,x + \sqrt{1 - \bar\alpha_t}\,\varepsilon$
# (the true mean uses the noise $\varepsilon$ that made $x_t$; the model's, the denoiser's guess
# of it). Each KL is then $w_t\, |\varepsilon_\theta(x_t, t) - \varepsilon|^2$ for a weight $w_t$
# that depends on the schedule only, and the bound reads $R(x) + C$ with
# $R(x) = \sum_t w_t\, \mathbb E_\varepsilon |\varepsilon_\theta(x_t, t) - \varepsilon|^2$. APS
# puts $R$ in place of $-\log p$.
#
# ### Exercise 06.3 (derive, then verify): the ELBO weight $w_t$
#
# Derive $w_t$ from the two means and the KL between two Gaussians of equal variance. Write
# `elbo_weights(sched, t_min=1)` returning the vector of $w_t$ for $t \ge t_{\min}$ and 0 below
# (shape `(T,)`, from `sched.betas` and `sched.alpha_bar`). The check compares it with the
# library's weights on three schedules.

# %% tags=["exercise"]
# Exercise 06.3: your answer
def elbo_weights(sched, t_min=1):
    """The weights w_t of the DDPM bound used as APS's prior term; shape (T,)."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("06.3", elbo_weights)

# %% [markdown]
# **The reveal.** $x_t$ cancels in the difference of the means:
# $\mu_q - \mu_\theta = \frac{\beta_t}{\sqrt{\alpha_t}\sqrt{1 - \bar\alpha_t}}(\varepsilon_\theta - \varepsilon)$,
# and $\mathrm{KL} = |\mu_q - \mu_\theta|^2 / (2\sigma_t^2)$, so
#
# $$ w_t = \frac{\beta_t^2}{2\beta_t\,\alpha_t (1 - \bar\alpha_t)} = \frac{\beta_t}{2\alpha_t (1 - \bar\alpha_t)}. $$
#
# ($w_t$ is the discrete form of the continuous-time likelihood weighting $g^2 / (2\sigma_t^2)$.)
# $w_t$ is largest at small $t$, so one draw of $t$ per $x$ from $p(t) = w_t / Z$, weighted by
# $Z = \sum_t w_t$, is an unbiased estimate of $R$ whose draws all carry the same weight
# (importance sampling: the variance does not explode at the small $t$). Gradients go **through
# the frozen denoiser** into $x$.
#
# By hand, for a Gaussian prior whose exact denoiser we know: the expected $x$-gradient of $R$
# against the exact $-\nabla \log p(x) = C^{-1}(x - \mu)$, and against the library's
# `pt.aps.neg_elbo`.

# %%
sched = pt.VPSchedule()
w = sched.betas / (2 * (1 - sched.betas) * (1 - sched.alpha_bar))
w[0] = 0                                              # t_min = 1
assert torch.allclose(w, pt.aps.elbo_weights(sched)), "the library's weights"
p_t = w / w.sum()
cov = torch.tensor([[0.5, 0.2], [0.2, 1.5]])
gauss = pt.GaussianMixture([1.0], [[0.3, -0.2]], cov[None])
gden = gauss.denoiser(sched)
x0 = torch.tensor([[1.2, 0.7]])
M = 20000 if FAST else 80000
x = x0.expand(M, 2).clone().requires_grad_(True)
gen = seeded(6)
t = torch.multinomial(p_t.float(), M, replacement=True, generator=gen)
eps = torch.randn(M, 2, generator=gen)
ab = sched.abar(t, like=x)
R = w.sum().item() * (gden.eps(ab.sqrt() * x + (1 - ab).sqrt() * eps, t) - eps).pow(2).sum(1)
R.sum().backward()
grad_hand = x.grad.mean(0)
want = -gauss.score(x0)[0]
xl = x0.expand(M, 2).clone().requires_grad_(True)
pt.aps.neg_elbo(gden, xl, seeded(7)).sum().backward()
print("E grad R by hand:", grad_hand.tolist())
print("library        :", xl.grad.mean(0).tolist())
print("-grad log p    :", want.tolist())
rel = ((grad_hand - want).norm() / want.norm()).item()
print(f"relative difference {rel:.3f}")

# %%
assert rel < 0.1, "for a Gaussian the ELBO's expected x-gradient is the exact score"
assert (xl.grad.mean(0) - want).norm() < 0.1 * want.norm(), "the library computes the same"

# %% [markdown]
# For a Gaussian the agreement is no accident: summing the closed form over $t$ gives
# $\mathbb E\,\nabla_x R = \kappa\, C^{-1}(x - \mu)$ with $\kappa$ close to 1 on this schedule
# (the relative difference printed above is Monte Carlo noise plus $|\kappa - 1|$).
# For a mixture it is not exact, and with a *learned* denoiser $R$ inherits the network's errors.
# Its minimiser is the posterior under the surrogate prior $e^{-R}$, not under $p$. What does that
# cost? We fit the same flow three ways.

# %% [markdown]
# ## 3. Three fits against the exact posterior
#
# To isolate the prior term, each flow here is fitted to the one measurement $y$ (the
# non-amortized special case: `ys_train = y[None]`, what DPI does). The flow is a zuko neural
# spline flow; the three prior terms are
#
# * the exact $\log p$ of the mixture (`prior_term=gmm.log_prob`),
# * the ELBO with the exact denoiser (`prior_term="elbo"`),
# * the ELBO with an MLP denoiser trained on prior samples the way chapter 01 does it.

# %%
FIT = dict(steps=1000, batch=256)          # the stored fits' settings (both modes read them)
MLP_STEPS = 4000
exact_den = prior.denoiser(sched)


def toy_fits():
    FRESH.add("ch06_toy_fits")
    t0 = time.perf_counter()
    torch.manual_seed(0)                   # the MLP's initial weights come from the global RNG
    mlp_den, _ = pt.priors.train.train_denoiser(pt.nets.MLP(2, hidden=128), prior.sample(20000, generator=seeded(8)),
                                         steps=MLP_STEPS, lr=3e-3, generator=seeded(9))
    out = {"mlp_seconds": time.perf_counter() - t0}
    for name, den, pr in [("exact log p", exact_den, prior.log_prob),
                          ("ELBO, exact denoiser", exact_den, "elbo"),
                          ("ELBO, learned denoiser", mlp_den, "elbo")]:
        fl = pt.aps.train(den, problem, y[None], generator=seeded(10), prior_term=pr, **FIT)
        xs = fl.sample(y, N, generator=seeded(11))
        out[name] = dict(xs=xs.half(), secs=fl.train_seconds)
        if den is exact_den:                   # kept for the stepper's `fit` drop-down
            out[name]["flow"] = flow_state(fl)
    return out


stored_fits = pt.files.stored.run("ch06_toy_fits", toy_fits, recompute=RECOMPUTE,
                            settings=dict(FIT, mlp_steps=MLP_STEPS, n=N),
                            command="set RECOMPUTE = True in chapter 06 and run it")
print(f"MLP denoiser trained in {stored_fits['mlp_seconds']:.0f} s (in the stored run)")
fits = {}
for name in ("exact log p", "ELBO, exact denoiser", "ELBO, learned denoiser"):
    xs = stored_fits[name]["xs"].float()
    fits[name] = dict(xs=xs, sw=sw(xs, exact), secs=stored_fits[name]["secs"],
                      w=pt.metrics.mode_weights(xs, posterior))
for name in ("exact log p", "ELBO, exact denoiser"):
    fits[name]["flow"] = flow_from_state(stored_fits[name]["flow"], exact_den, problem)
display(Markdown(
    f"noise floor {floor:.3f}, prior {prior_dist:.3f}\n\n| prior term | SW | SW / floor | "
    "weight of the two main modes | train s |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {k} | {v['sw']:.3f} | {v['sw'] / floor:.1f} | "
        f"{', '.join(f'{a:.2f}' for a in v['w'][w_exact > 0.1].tolist())} | {v['secs']:.0f} |"
        for k, v in fits.items())
    + f"\n| exact posterior | | | {', '.join(f'{a:.2f}' for a in w_exact[w_exact > 0.1].tolist())} | |"))

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), sharex=True, sharey=True)
grid = torch.linspace(-3, 3, 200)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
dens = posterior.log_prob(torch.stack([gx, gy], -1).reshape(-1, 2)).exp().reshape(200, 200)
levels = (dens.max() * torch.tensor([0.02, 0.1, 0.3, 0.6])).tolist()   # fractions of the peak
for ax, (name, xs) in zip(axes, [("exact posterior", exact)] +
                          [(k, v["xs"]) for k, v in fits.items()]):
    ax.contour(gx, gy, dens, levels=levels, colors="k", linewidths=0.6, alpha=0.7)
    ax.scatter(*xs[:600].T, s=2, alpha=0.4)
    ax.set_title(name, fontsize=9)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_xlabel("$x_1$")
axes[0].set_ylabel("$x_2$")
fig.suptitle("samples (dots) and the exact posterior density (contours)", fontsize=9)
fig.tight_layout()
plt.show()

# %%
print({k: round(v["sw"], 3) for k, v in fits.items()})
small = w_exact.argsort()[-3]          # the third mode, the smallest of the exact posterior's
for k, v in fits.items():
    claim(v["sw"] < prior_dist / 2, f"{k}: the flow moves from the prior to the posterior", "ch06_toy_fits")
    claim(v["w"].max() < 0.9, f"{k}: a flow, unlike one Gaussian, keeps both main modes", "ch06_toy_fits")
claim(fits["exact log p"]["w"][small] < w_exact[small], "the reverse KL starves the small mode",
      "ch06_toy_fits")

# %%
sw_of = {k: v["sw"] for k, v in fits.items()}
display(Markdown(
    "**What to read from the table.** All three fits find the two main modes, where a single "
    "Gaussian found one. With the *exact* denoiser the ELBO's fit lands at "
    f"{sw_of['ELBO, exact denoiser'] / sw_of['exact log p']:.2f} times the exact-log-p fit's distance: "
    "for Gaussian components its gradient is the exact score in expectation (section 2), so what it "
    "adds is the Monte Carlo noise of that gradient. With a *learned* denoiser "
    f"({MLP_STEPS} training steps) the flow fits the posterior of the network's prior, at "
    f"{sw_of['ELBO, learned denoiser'] / sw_of['exact log p']:.2f} times the exact-log-p fit's "
    "distance: the network's errors (largest at low noise, chapter 01) enter the fit too, by how much "
    "depends on how well it was trained, and one run does not separate them from the Monte Carlo "
    "noise. With the exact $\\log p$ the fit gives the smallest mode "
    f"{fits['exact log p']['w'][small]:.3f} of the mass against the exact {w_exact[small]:.3f}: that "
    "is the reverse KL (mode-seeking), not the prior: a sampler that is exact in the limit "
    "(PnP-ULA, chapter 03; SMC, chapter 07) does not keep it, a reverse-KL fit keeps it however "
    "long it trains. More measurements (other step counts, a stop-gradient variant): "
    "[`docs/notes/aps.md`](../docs/notes/aps.md)."))

# %% [markdown]
# ### Exercise 06.4 (build): a variational sampler that covers the posterior
#
# A flow is one way to make the reverse KL keep both modes; it is not the only one. Write
# `mixture_vi(log_prior, problem, y, n, generator)` that fits a law $q$ of your choice to the 2D
# posterior by minimising the reverse KL of section 1, then returns `(n, 2)` samples of $q$.
# `log_prior(x)` is the prior's exact $\log p$ for a batch `(k, 2)` (differentiable),
# `problem.data_fit(x, y)` is $g(x)$ per row; use `generator` for every random draw.
# Exercise 06.1 showed what one Gaussian does; choose a family that can do better and whose $\log q$ you can
# still compute. The check scores the samples by SW to the exact posterior as a multiple of the
# noise floor ($n = 1000$); at most $2.5$ passes (one Gaussian scores far above it).

# %% tags=["exercise"]
# Exercise 06.4: your answer
def mixture_vi(log_prior, problem, y, n, generator):
    """(n, 2) samples of a law fitted to p(x | y) by the reverse KL."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("06.4", mixture_vi)

# %% [markdown]
# **The reveal.** A mixture of $K$ Gaussians $q = \sum_k \pi_k \mathcal N(m_k, L_k L_k^\top)$ has
# an exact $\log q$ (a log-sum-exp over the components), and the reverse KL splits over them:
#
# $$ \mathrm{KL}(q \,\|\, p) = \sum_k \pi_k\, \mathbb E_{z}\big[g(x_k) - \log p(x_k) + \log q(x_k)\big] + \log p(y), \qquad x_k = m_k + L_k z, $$
#
# so every draw is reparameterised and the weights $\pi = \mathrm{softmax}(\text{logits})$ get
# exact gradients (no sampled component index to differentiate). With $K = 6$ components started
# at random means, the fit (`pt.exercises.solution("06.4")`, 500 Adam steps) puts components on
# the modes and learns their weights; the reverse KL still pays for mass in the gaps, but a
# component on each mode costs nothing there. Scored as the check does, beside one Gaussian
# (section 1's fit, with the same scorer):

# %%
def one_gaussian(log_prior, problem, y, n, generator):
    """Section 1's Gaussian VI as a sampler (the naive answer to exercise 06.4)."""
    mean = torch.zeros(2, requires_grad=True)
    raw = torch.zeros(2, 2, requires_grad=True)
    opt = torch.optim.Adam([mean, raw], lr=0.05)
    for _ in range(400):
        chol = torch.tril(raw, -1) + torch.diag(raw.diagonal().exp())
        xg = mean + torch.randn(256, 2, generator=generator) @ chol.T
        opt.zero_grad()
        ((problem.data_fit(xg, y) - log_prior(xg)).mean() - raw.diagonal().sum()).backward()
        opt.step()
    chol = (torch.tril(raw, -1) + torch.diag(raw.diagonal().exp())).detach()
    return mean.detach() + torch.randn(n, 2, generator=generator) @ chol.T


vi_scores = {name: pt.exercises.ch06_builds.vi_score(f)[0] for name, f in
             [("mixture of 6 Gaussians", pt.exercises.solution("06.4")),
              ("one Gaussian", one_gaussian)]}
display(Markdown("SW to the exact posterior / noise floor ($n = 1000$): " + ", ".join(
    f"{k} {v:.1f}" for k, v in vi_scores.items()) + "; the flows of the table above: " + ", ".join(
    f"{k} {v['sw'] / floor:.1f}" for k, v in fits.items()) + " (their own seeds and sample size)."))
assert vi_scores["mixture of 6 Gaussians"] <= 2.5 < vi_scores["one Gaussian"]

# %% [markdown]
# On this problem the mixture is a fair family: the exact posterior of a Gaussian-mixture prior and
# a linear-Gaussian likelihood *is* a mixture of Gaussians. On images no such family is at hand,
# and a flow is what APS uses.

# %% [markdown]
# ## 4. Amortization on real digits
#
# Now the real use: one flow for every measurement. The problem is super-resolution by $2\times$ of
# $16 \times 16$ digits ($y$ is $8 \times 8$, $\sigma = 0.05$) with the shipped digits prior (trained
# on digits 0-1499). The flow trains on measurements of those 1500 digits only, never on the digits
# themselves, and is tested on the held-out digits 1500-1796 and on Kuzushiji characters (KMNIST,
# resized to $16 \times 16$: out of distribution for a digit prior).
#
# The image flow is convolutional: checkerboard and channel affine couplings around a squeeze
# ($2 \times 2$ pixels into channels), ActNorm, and a last conditional affine layer that starts at
# the bilinearly upsampled $y$ plus $0.1 z$; every coupling sees features of the upsampled $y$. (The
# paper's flow, a conditional RealNVP on flattened images, is not public in detail.) Its training
# (`steps=1500`, `batch=16`) and its evaluation are read from the stored run `ch06_digits_flow`.
#
# How the samples are scored, per measurement (then averaged): PSNR/SSIM of the **mean** of the
# samples and of **single** samples against the true image, and `rank_cov`, the rank coverage
# (the yardsticks of chapter 02 §1; $0.9$ for an exact sampler); `psnr_base` is the bilinear
# upsampling of $y$; `chi2` $= |y - Ax|^2 / (m\sigma^2)$ per measurement dimension, whose average
# over measurements is $1$ for an exact sampler (a sample and the truth are exchangeable given
# $y$), less for samples that fit the noise, more for samples that ignore $y$; `spread`, the mean
# per-pixel standard deviation across samples (diversity).

# %%
digits_prior = pt.pretrained("digits", device=DEVICE)
digits = pt.data.load("digits").to(DEVICE)
train_x, held = digits[:1500], digits[1500:]
dprob = pt.InverseProblem(pt.operators.SuperResolution(2, shape=(1, 16, 16)), 0.05)
DIG = dict(steps=1500, batch=16)           # the stored flow's training (both modes read it)
N_MEAS, N_SAMP = 50, 128                   # its evaluation: measurements x samples per test set


def evaluate(fl, problem, images, n_meas, n_samples, seed):
    """Per measurement: PSNR / SSIM of the sample mean and of single samples, the bilinear
    baseline, chi^2 per measurement dimension, calibrated (rank) coverage, sample spread."""
    rows = []
    for i in range(n_meas):
        x_true = images[i]
        y_i = problem.measure(x_true, generator=seeded(seed + i, DEVICE))
        xs = fl.sample(y_i, n_samples, generator=seeded(seed + 1000 + i, DEVICE))
        base = F.interpolate(y_i[None], size=x_true.shape[-2:], mode="bilinear")[0]
        rows.append(dict(
            psnr_mean=float(pt.metrics.psnr(xs.mean(0), x_true)),
            psnr_single=float(pt.metrics.psnr(xs, x_true).mean()),
            ssim_mean=float(pt.metrics.ssim(xs.mean(0), x_true)),
            ssim_single=float(pt.metrics.ssim(xs, x_true).mean()),
            psnr_base=float(pt.metrics.psnr(base, x_true)),
            chi2=float((problem.operator(xs) - y_i).pow(2).flatten(1).mean(1).mean() / problem.sigma ** 2),
            rank_cov=float(pt.metrics.rank_coverage(xs.cpu(), x_true.cpu())),
            spread=float(xs.std(0).mean())))
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def digits_flow():
    FRESH.add("ch06_digits_flow")
    clean = dprob.operator(train_x)
    ys_train = clean + dprob.sigma * torch.randn(clean.shape, generator=seeded(20, DEVICE), device=DEVICE)
    fl = pt.aps.train(digits_prior, dprob, ys_train, generator=seeded(21, DEVICE),
                      anneal_steps=DIG["steps"] // 4, **DIG)
    res = {"held-out digits": evaluate(fl, dprob, held, N_MEAS, N_SAMP, 30)}
    try:
        kmnist = pt.data.load("kmnist", size=16).to(DEVICE)
        res["KMNIST (out of distribution)"] = evaluate(fl, dprob, kmnist, N_MEAS, N_SAMP, 40)
    except pt.data.DataUnavailable as err:
        print("KMNIST is not installed here, so no out-of-distribution test:", str(err)[:100])
    return {"flow": flow_state(fl), "res": res}


stored_digits = pt.files.stored.run("ch06_digits_flow", digits_flow, recompute=RECOMPUTE,
                              settings=dict(DIG, n_meas=N_MEAS, n_samples=N_SAMP),
                              command="set RECOMPUTE = True in chapter 06 and run it")
dflow = flow_from_state(stored_digits["flow"], digits_prior, dprob)
res = stored_digits["res"]
print(dflow, f"trained in {dflow.train_seconds:.0f} s (in the stored run)")
cols = ["psnr_mean", "psnr_single", "psnr_base", "ssim_mean", "ssim_single", "chi2", "rank_cov", "spread"]
display(Markdown(f"{N_MEAS} measurements x {N_SAMP} samples per test set\n\n"
                 "| test set | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n" + "\n".join(
                     f"| {k} | " + " | ".join(f"{v[c]:.2f}" for c in cols) + " |" for k, v in res.items())))

# %% [markdown]
# A fresh check in this run: a few held-out measurements through the stored flow (sampling is one
# pass, cheap in both modes).

# %%
fresh = evaluate(dflow, dprob, held[100:], 8, 64, 130)
print("this run, 8 other held-out measurements x 64 samples:", {k: round(v, 2) for k, v in fresh.items()})
assert fresh["psnr_mean"] > fresh["psnr_base"], "the flow's mean beats bilinear upsampling"
assert fresh["psnr_mean"] >= fresh["psnr_single"], "averaging samples gives a better point estimate"
assert fresh["spread"] > 0.01, "the samples differ: a distribution, not a point"

# %%
r_in = res["held-out digits"]
if "KMNIST (out of distribution)" in res:
    r_out = res["KMNIST (out of distribution)"]
    claim(r_out["chi2"] > r_in["chi2"], "out of distribution the flow fits y worse", "ch06_digits_flow")
    display(Markdown(
        f"Held out, the flow's mean beats bilinear upsampling ({r_in['psnr_mean']:.1f} against "
        f"{r_in['psnr_base']:.1f} dB) with samples that differ (spread {r_in['spread']:.2f}). Its "
        f"calibration: $\\chi^2$ per dimension {r_in['chi2']:.2f} (1 when the samples fit $y$ as the "
        f"noise says) and rank coverage {r_in['rank_cov']:.2f} (0.9 when calibrated"
        + ("; below: samples too concentrated" if r_in["rank_cov"] < 0.85 else "")
        + ("; above: samples too spread" if r_in["rank_cov"] > 0.95 else "") + "). "
        f"Out of distribution (KMNIST) $\\chi^2$ is {r_out['chi2']:.2f} and rank coverage "
        f"{r_out['rank_cov']:.2f}: the flow has learnt a map from digit measurements to digits, and "
        "it keeps producing digit-like strokes, so $y$ is fitted worse. A zero-shot sampler has only "
        "the prior to blame; an amortized one also carries what its training measurements were."))

# %%
idx = [0, 1, 2]
fig, axes = plt.subplots(len(idx), 6, figsize=(8, 4.2))
for r, i in enumerate(idx):
    y_i = dprob.measure(held[i], generator=seeded(30 + i, DEVICE))
    xs = dflow.sample(y_i, 64, generator=seeded(50 + i, DEVICE))
    row = [held[i], F.interpolate(y_i[None], size=(16, 16), mode="nearest")[0], xs.mean(0),
           xs[0], xs[1], xs.std(0)]
    for c, (img, title) in enumerate(zip(row, ["truth", "y", "mean", "sample", "sample", "std"])):
        axes[r, c].imshow(img[0].cpu(), cmap="gray" if title != "std" else "magma")
        axes[r, c].set_axis_off()
        if r == 0:
            axes[r, c].set_title(title, fontsize=9)
plt.show()

# %% [markdown]
# ### Time per sample against DPS
#
# DPS needs 1000 denoiser calls *and* 1000 backward passes per sample. Both times are read from the
# stored run `ch06_dps_time` (DPS with its 1000 steps on one measurement; the flow: one batched pass
# for 128 samples, measured in the same run on the same machine).

# %%
y0 = dprob.measure(held[0], generator=seeded(60, DEVICE))


def dps_time():
    FRESH.add("ch06_dps_time")
    t0 = time.perf_counter()
    pt.sample("dps", digits_prior, dprob, y0, n=1, steps=1000, generator=seeded(61, DEVICE))
    dps_s = time.perf_counter() - t0
    dflow.sample(y0, 8)                    # warm-up
    t0 = time.perf_counter()
    dflow.sample(y0, 128, generator=seeded(62, DEVICE))
    return {"dps_per_sample": dps_s, "aps_per_sample": (time.perf_counter() - t0) / 128,
            "device": str(DEVICE)}


times = pt.files.stored.run("ch06_dps_time", dps_time, recompute=RECOMPUTE, settings=dict(dps_steps=1000, n_aps=128),
                      command="set RECOMPUTE = True in chapter 06 and run it")
dps_per_sample, aps_per_sample = times["dps_per_sample"], times["aps_per_sample"]
print(f"on {times['device']}: DPS (1000 steps): {dps_per_sample:.2f} s per sample; APS: "
      f"{1000 * aps_per_sample:.2f} ms per sample; {dps_per_sample / aps_per_sample:,.0f}x faster, "
      f"after {dflow.train_seconds:.0f} s of training")
breakeven = dflow.train_seconds / dps_per_sample
print(f"training pays for itself after about {breakeven:.0f} DPS samples")
claim(dps_per_sample / aps_per_sample > 1000, "one flow pass against 1000 steps with backward passes",
      "ch06_dps_time")

# %% [markdown]
# ## 5. Stepping through the flow's layers
#
# A flow is a sampler too: its "steps" are its layers. In 2D (the fit with the exact $\log p$)
# each frame is the cloud after one spline transform; on digits each frame is the image after
# one layer (couplings change half of the pixels or channels at a time, the squeeze shuffles the
# view, the last layer adds the upsampled $y$).
#
# `pt.viz.step_through` takes a trained flow as it takes a method name. "new seed" draws a
# fresh base noise $z$ and pushes it through the same layers; in 2D the `fit` drop-down swaps in
# the two flows of section 3 trained against the exact denoiser (exact $\log p$ and the ELBO),
# run from the same seed.

# %%
stepper_2d = pt.viz.step_through(fits["exact log p"]["flow"], y=y, n=500, generator=seeded(70),
                                     density=posterior, title="APS flow layers (2D)",
                                     knobs={"fit": {k: v["flow"] for k, v in fits.items() if "flow" in v}})
assert len(stepper_2d.frames) == 1 + fits["exact log p"]["flow"].config["transforms"]
first_png = stepper_2d.frame_png(0)
assert stepper_2d.frame_png(len(stepper_2d.frames) - 1) != first_png
x_70 = stepper_2d.frames[-1].x
stepper_2d.rerun(71)                                 # what "new seed" does
assert not torch.allclose(stepper_2d.frames[-1].x, x_70), "a new seed, other samples"
stepper_2d.rerun(70, fit=fits["ELBO, exact denoiser"]["flow"])     # what the drop-down does
assert not torch.allclose(stepper_2d.frames[-1].x, x_70), "another flow, other samples"
stepper_2d.rerun(70, fit=fits["exact log p"]["flow"])
assert torch.allclose(stepper_2d.frames[-1].x, x_70)
stepper_2d

# %%
stepper_img = pt.viz.step_through(dflow, y=y0, n=4, generator=seeded(71),
                                      title="APS flow layers (digits)")
assert len(stepper_img.frames) == 1 + len(dflow.flow.steps)
stepper_img

# %%
stepper_img.filmstrip(idx=(0, len(stepper_img.frames) // 2, -1))
plt.show()

# %% [markdown]
# ## 6. The shipped MNIST flows
#
# `data/aps_mnist_denoising/` and `data/aps_mnist_sr4/` hold flows for denoising and super-resolution
# by $4\times$ of $32 \times 32$ MNIST ($\sigma = 0.05$, shipped prior `pt.pretrained("mnist")`),
# trained by `scripts/train_aps_mnist.py` on measurements of MNIST test images 0-7999. Their model
# cards list the run and what it measured, including DPS (1000 steps) on the same held-out
# measurements in the same run. Their evaluation on held-out images 8000+ and on KMNIST (`N_M`
# measurements x 128 samples each) is read from the stored run `ch06_mnist_flows`. The baseline is
# what $y$ alone gives: $y$ itself for denoising, $y$ upsampled bilinearly for SR.

# %%
mnist_prior = pt.pretrained("mnist", device=DEVICE)
mflows = {}
for name in ("mnist-denoising", "mnist-sr4"):
    try:
        mflows[name] = pt.aps.pretrained(name, mnist_prior)
    except pt.files.checkpoints.CheckpointError as err:
        print(f"skipping the flow {name}:", str(err)[:160])
N_M = 30


def load_or_none(name, **kw):
    try:
        return pt.data.load(name, **kw).to(DEVICE)
    except pt.data.DataUnavailable as err:
        print(f"{name} is not installed here:", str(err)[:100])
        return None


def mnist_flows():
    FRESH.add("ch06_mnist_flows")
    out = {}
    mnist_held, kmnist32 = load_or_none("mnist", split="test"), load_or_none("kmnist")
    mnist_held = None if mnist_held is None else mnist_held[8000:]
    for name, fl in mflows.items():
        if mnist_held is not None:
            out[f"{name} | held-out MNIST"] = evaluate(fl, fl.problem, mnist_held, N_M, 128, 80)
        if kmnist32 is not None:
            out[f"{name} | KMNIST"] = evaluate(fl, fl.problem, kmnist32, N_M, 128, 90)
    return out


mres = pt.files.stored.run("ch06_mnist_flows", mnist_flows, recompute=RECOMPUTE,
                     settings=dict(n_meas=N_M, n_samples=128, flows=sorted(mflows)),
                     command="set RECOMPUTE = True in chapter 06 and run it")

# %% [markdown]
# ### Exercise 06.5 (predict, then run): the $4\times$ flow against upsampling $y$
#
# In section 4 the flow's mean beat the bilinear upsampling of $y$ by several dB at $2\times$ on
# $16 \times 16$ digits. The shipped SR flow does $4\times$ on $32 \times 32$ digits with the same
# architecture and the MNIST prior. Predict the PSNR of its mean (over its samples) minus the PSNR
# of the bilinear upsampling of $y$, averaged over held-out measurements:
# `"more than 2 dB better than bilinear"`, `"within 2 dB of bilinear"` or
# `"more than 2 dB worse than bilinear"`. The cell
# after it measures it on 8 held-out digits with 32 samples each.

# %% tags=["exercise"]
# Exercise 06.5: your prediction
sr_flow_vs_bilinear = None   # one of the options, as a string

# %%
mnist_held = load_or_none("mnist", split="test")
if "mnist-sr4" in mflows and mnist_held is not None:
    sr_live = evaluate(mflows["mnist-sr4"], mflows["mnist-sr4"].problem, mnist_held[8000:], 8, 32, 80)
    sr_source = "this run, 8 held-out measurements x 32 samples"
else:                                      # no MNIST here: the stored evaluation
    sr_live, sr_source = mres["mnist-sr4 | held-out MNIST"], f"stored run ch06_mnist_flows, {N_M} x 128"
sr_gain = sr_live["psnr_mean"] - sr_live["psnr_base"]
sr_measured = pt.exercises.ch06.sr_band(sr_gain)
print(f"{sr_source}: mean {sr_live['psnr_mean']:.2f} dB, single samples {sr_live['psnr_single']:.2f}, "
      f"bilinear {sr_live['psnr_base']:.2f}: gain {sr_gain:+.2f} dB ({sr_measured})")

# %%
pt.exercises.check("06.5", sr_flow_vs_bilinear, measured=sr_measured)

# %% [markdown]
# **The reveal.** The whole stored evaluation, and each flow's model card (DPS on the same
# measurements, same prior):

# %%
if mres:
    display(Markdown(f"{N_M} measurements x 128 samples per test set\n\n| flow | test set | "
                     + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols) + "\n" + "\n".join(f"| {k} | " + " | ".join(f"{v[c]:.2f}" for c in cols)
                                         + " |" for k, v in mres.items())))
for name, fl in mflows.items():
    c = fl.card["metrics"]["dps_comparison"]
    a, d = c["aps"], c["dps"]
    print(f"note, from the model card of {name} ({c['measurements']}): PSNR / SSIM of the mean APS "
          f"{a['psnr_mean']:.1f} / {a['ssim_mean']:.2f}, DPS {d['psnr_mean']:.1f} / {d['ssim_mean']:.2f}; "
          f"{c['speedup']:,.0f}x faster per sample")
    held_row, k_row = mres.get(f"{name} | held-out MNIST"), mres.get(f"{name} | KMNIST")
    if held_row and name == "mnist-denoising":
        claim(held_row["psnr_mean"] > held_row["psnr_base"] + 2, f"{name}: the flow's mean beats y alone",
              "ch06_mnist_flows")
    if held_row and name == "mnist-sr4":
        claim(abs(held_row["psnr_mean"] - held_row["psnr_base"]) < 2,
              f"{name}: the flow's mean is within 2 dB of bilinear upsampling", "ch06_mnist_flows")
    if held_row and k_row:
        claim(k_row["chi2"] > held_row["chi2"], f"{name}: out of distribution the flow fits y worse",
              "ch06_mnist_flows")
assert abs(sr_gain) < 2, "the SR flow's mean is within 2 dB of bilinear upsampling (this run)"

# %%
lines = []
for name, fl in mflows.items():
    r = mres.get(f"{name} | held-out MNIST")
    d = fl.card["metrics"]["dps_comparison"]
    if r:
        lines.append(
            f"* **{name}**: mean {r['psnr_mean']:.1f} dB and single samples {r['psnr_single']:.1f} "
            f"against {r['psnr_base']:.1f} for $y$ alone, $\\chi^2$ {r['chi2']:.2f}, rank coverage "
            f"{r['rank_cov']:.2f}; DPS on its card's measurements "
            f"{d['dps']['psnr_mean'] - d['aps']['psnr_mean']:.1f} dB better than the flow, at "
            f"{d['speedup']:,.0f} times its time per sample.")
if lines:
    display(Markdown(
        "\n".join(lines) + f"\n\nThe denoising flow improves on $y$; the $4\\times$ SR flow does not "
        f"improve on upsampling $y$ (its mean {sr_gain:+.1f} dB in this cell's measurement), while "
        "DPS with the same prior beats the flow by the margin on its card. The prior is not what "
        "limits the flow (DPS uses the same one): the flow's family and training are. The $4\\times$ map from 64 numbers to a digit is far harder to "
        "learn than the $2\\times$ one of section 4, and the flow starts from the upsampled $y$ "
        "(its last layer), and its mean ends about as close to the truth as that start. That is "
        "the trade APS offers: every sample "
        "after training is almost free, but the quality is whatever the training reached (the "
        "training runs behind these flows: [`docs/notes/aps.md`](../docs/notes/aps.md))."))

# %% [markdown]
# ## 7. Mini-project: APS in miniature
#
# ### Exercise 06.6 (mini-project, optional): one training run for every $y$
#
# Amortize exercise 06.4: write `train_amortized(log_prior, problem, prior_sample, generator)`
# that trains **once**, without seeing the test measurements, and returns a function
# `sample(y, n, generator) -> (n, 2)` for any measurement `y` (shape `(1,)`) of the 2D problem.
# `prior_sample(k, generator)` draws `k` prior samples, from which you can simulate measurements;
# `log_prior` and `problem` are as in exercise 06.4. The check trains it, then scores `sample` on
# four measurements (the chapter's $y$ and three others) against their exact posteriors: the
# mean of SW / noise floor, at most $2.0$ passes; each `sample` call must take under half a
# second (one pass, no fitting per $y$). For the full APS recipe, replace `log_prior` by the
# ELBO of a denoiser (`pt.aps.neg_elbo`) and measure what that costs.

# %% tags=["exercise"]
# Exercise 06.6: your answer
def train_amortized(log_prior, problem, prior_sample, generator):
    """Train once; return sample(y, n, generator) -> (n, 2) posterior samples for any y."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("06.6", train_amortized)

# %% [markdown]
# ## Summary
#
# * APS trains a conditional flow by the reverse KL; the loss needs $\log p$, and the diffusion
#   ELBO, with weights $w_t = \beta_t / (2\alpha_t(1 - \bar\alpha_t))$, stands in for it (exact in
#   expected gradient for a Gaussian, a surrogate otherwise).
# * Reverse-KL fits are mode-seeking: one Gaussian takes one mode; a flow or a mixture keeps the
#   main modes but starves small ones.
# * A flow's density is a change of variables; couplings make its log-determinant a sum.
# * Amortized, a sample costs one network pass: orders of magnitude faster than DPS, once the
#   training is paid for; but the flow is only as good as its training (the $4\times$ SR flow is no
#   better than upsampling $y$), and out of distribution it fits $y$ worse.

# %% [markdown]
# ## References
#
# * Mammadov, Chung, Ye 2024, *Amortized posterior sampling with diffusion prior distillation*
#   (APS), arXiv 2407.17907
# * Sun, Bouman 2021, *Deep probabilistic imaging* (DPI), arXiv 2010.14462
# * Ho, Jain, Abbeel 2020 (the DDPM bound behind the ELBO), arXiv 2006.11239
