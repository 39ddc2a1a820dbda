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
# 1. variational inference and the reverse KL, by hand: a Gaussian fitted to a bimodal posterior;
# 2. why the diffusion **ELBO** replaces $\log p$, its gradient derived by hand and checked;
# 3. what the surrogate costs: three fits of the same flow on the 2D problem (exact $\log p$,
#    ELBO with the exact denoiser, ELBO with a learned one) against the exact posterior;
# 4. amortization on real digits: train on measurements of some images, test on held-out and on
#    out-of-distribution ones; diversity, calibration, time per sample against DPS;
# 5. a stepper over the flow's layers turning noise into a sample;
# 6. the shipped MNIST flows, when they are installed.
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

RECOMPUTE = False                          # True: rerun the stored runs data/runs/ch06_*.pt (~30 min, 2-core CPU)
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
# $L$): Gaussian VI. On the bimodal problem of chapter 00 it shows the character of the reverse
# KL: it is **mode-seeking**, it pays infinitely for mass where the posterior has none, so it
# picks one mode rather than straddling both.

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
with torch.no_grad():
    L = torch.tril(raw_L, -1) + torch.diag(raw_L.diagonal().exp())
    gauss_vi = m + torch.randn(N, 2, generator=seeded(5)) @ L.T
w_vi = pt.metrics.mode_weights(gauss_vi, posterior)
print("Gaussian VI mode weights:", [round(v, 2) for v in w_vi.tolist() if v > 1e-3],
      f" SW {sw(gauss_vi, exact):.3f}")

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

# %% [markdown]
# ### Exercise 06.2: the log-density of an affine coupling
#
# An affine coupling layer maps $z \mapsto x$ with $x_a = z_a$ and
# $x_b = z_b \odot e^{s(z_a)} + t(z_a)$, where $a$ is the first half of the coordinates ($d/2$) and
# $b$ the rest. Its Jacobian is triangular, so $\log\lvert\det \partial x/\partial z\rvert = \sum_i s_i(z_a)$.
# Write `coupling_log_prob(x, s_net, t_net)` returning $\log q(x)$ per sample (shape `(n,)`) for
# $z \sim \mathcal N(0, I)$: invert the layer, then use the change of variables. The checker
# compares with the same density computed from an autograd Jacobian.

# %% tags=["exercise"]
# Exercise 06.2: your answer (the solution: pt.exercises.solution("06.2"))
def coupling_log_prob(x, s_net, t_net):
    """log q(x) of x = G(z), z ~ N(0, I), G one affine coupling layer; shape (n,)."""
    raise NotImplementedError("invert the coupling, then log N(z) minus the log-determinant")


# %%
pt.exercises.check("06.2", coupling_log_prob)

# %% [markdown]
# ## 2. Why the ELBO replaces $\log p$
#
# A diffusion prior gives the *score* of noised versions of $p$, not $\log p(x)$ itself (that needs
# an ODE solve with a trace estimator for every $x$). What it gives cheaply is the DDPM
# **evidence lower bound**: $-\log p(x) \le R(x) + C$ with
#
# $$ R(x) = \sum_{t} w_t\, \mathbb E_\varepsilon \big|\varepsilon_\theta(\sqrt{\bar\alpha_t}\,x + \sqrt{1 - \bar\alpha_t}\,\varepsilon, t) - \varepsilon\big|^2, \qquad w_t = \frac{\beta_t}{2\alpha_t (1 - \bar\alpha_t)}. $$
#
# APS puts $R$ in place of $-\log p$. One draw of $t$ per $x$ is an unbiased estimate if $t$ is
# drawn from $p(t) = w_t / Z$ and the term is weighted by $Z = \sum_t w_t$ (importance sampling:
# every draw has the same weight, so the estimate's variance does not explode at the small $t$
# where $w_t$ is large). Gradients go **through the frozen denoiser** into $x$.
#
# By hand, for a Gaussian prior whose exact denoiser we know: the expected $x$-gradient of $R$
# against the exact $-\nabla \log p(x) = C^{-1}(x - \mu)$.

# %%
sched = pt.VPSchedule()
w = sched.betas / (2 * (1 - sched.betas) * (1 - sched.alpha_bar))
w[0] = 0                                              # t_min = 1
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
# ### Exercise 06.1: the ELBO weight
#
# Write `elbo_weights(sched, t_min=1)` returning the vector of weights $w_t =
# \beta_t / (2\alpha_t(1-\bar\alpha_t))$, $\alpha_t = 1 - \beta_t$, for $t \ge t_{\min}$ and 0 below
# (shape `(T,)`, from `sched.betas` and `sched.alpha_bar`). The checker compares with
# `pt.aps.elbo_weights`.

# %% tags=["exercise"]
# Exercise 06.1: your answer (the solution: pt.exercises.solution("06.1"))
def elbo_weights(sched, t_min=1):
    """The weights w_t of the DDPM bound used as APS's prior term; shape (T,)."""
    raise NotImplementedError("beta_t / (2 alpha_t (1 - abar_t)), zero below t_min")


# %%
pt.exercises.check("06.1", elbo_weights)

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
    "is the reverse KL (mode-seeking), not the prior. Chapter 02's samplers do not share that bias; "
    "APS does. Earlier measurements (other step counts, a stop-gradient variant): "
    "[`docs/notes/aps.md`](../docs/notes/aps.md)."))

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
# How the samples are scored, per measurement (then averaged):
#
# * PSNR/SSIM of the **mean** of the samples and of **single** samples against the true image;
#   `psnr_base` is the bilinear upsampling of $y$;
# * `chi2` $= |y - Ax|^2 / (m\sigma^2)$ per measurement dimension, which a calibrated sampler keeps
#   near $1$ (a sample that fits the noise too well has less, one that ignores $y$ much more);
# * `rank_cov`, the **calibrated coverage** (`pt.metrics.rank_coverage`): for each pixel, the rank
#   of the true value among the samples gives a randomised probability integral transform $u$, which
#   is uniform on $[0, 1]$ for an exact sampler at *any* number of samples; `rank_cov` is the share
#   of pixels with $u$ in the central band $[0.05, 0.95]$: $0.9$ for an exact sampler, less when the
#   samples are too concentrated (the truth often outside them), more when too spread. (The plain
#   reading, truth inside the samples' central interval (`pt.metrics.coverage`), is biased low with
#   few samples: an exact sampler reads about $0.9\,(n-1)/(n+1)$.)
# * `spread`, the mean per-pixel standard deviation across samples (diversity).

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
# measurements in the same run. Here they are evaluated on held-out images 8000+ and on KMNIST, if
# the data is installed (`N_M` measurements x 128 samples each, read from the stored run
# `ch06_mnist_flows`). The baseline column is what $y$ alone gives: $y$ itself for denoising, $y$
# upsampled for SR.

# %%
mnist_prior = pt.pretrained("mnist", device=DEVICE)
mflows = {}
for name in ("mnist-denoising", "mnist-sr4"):
    try:
        mflows[name] = pt.aps.pretrained(name, mnist_prior)
    except pt.files.checkpoints.CheckpointError as err:
        print(f"skipping the flow {name}:", str(err)[:160])
N_M = 30


def mnist_flows():
    FRESH.add("ch06_mnist_flows")
    out = {}
    try:
        mnist_held = pt.data.load("mnist", split="test")[8000:].to(DEVICE)
    except pt.data.DataUnavailable as err:
        mnist_held = None
        print("MNIST is not installed here, so the shipped flows are not evaluated:", str(err)[:100])
    try:
        kmnist32 = pt.data.load("kmnist").to(DEVICE)
    except pt.data.DataUnavailable as err:
        kmnist32 = None
        print("no KMNIST here:", str(err)[:100])
    for name, fl in mflows.items():
        if mnist_held is not None:
            out[f"{name} | held-out MNIST"] = evaluate(fl, fl.problem, mnist_held, N_M, 128, 80)
        if kmnist32 is not None:
            out[f"{name} | KMNIST"] = evaluate(fl, fl.problem, kmnist32, N_M, 128, 90)
    return out


mres = pt.files.stored.run("ch06_mnist_flows", mnist_flows, recompute=RECOMPUTE,
                     settings=dict(n_meas=N_M, n_samples=128, flows=sorted(mflows)),
                     command="set RECOMPUTE = True in chapter 06 and run it")
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
    if held_row:
        claim(held_row["psnr_mean"] > held_row["psnr_base"], f"{name}: the flow's mean beats y alone",
              "ch06_mnist_flows")
    if held_row and k_row:
        claim(k_row["chi2"] > held_row["chi2"], f"{name}: out of distribution the flow fits y worse",
              "ch06_mnist_flows")

# %%
lines = []
for name, fl in mflows.items():
    r = mres.get(f"{name} | held-out MNIST")
    d = fl.card["metrics"]["dps_comparison"]
    if r:
        lines.append(
            f"* **{name}**: mean {r['psnr_mean']:.1f} dB against {r['psnr_base']:.1f} for $y$ alone, "
            f"$\\chi^2$ {r['chi2']:.2f}, rank coverage {r['rank_cov']:.2f}; DPS on its card's "
            f"measurements {d['dps']['psnr_mean'] - d['aps']['psnr_mean']:.1f} dB better than the flow, "
            f"at {d['speedup']:,.0f} times its time per sample.")
if lines:
    display(Markdown("\n".join(lines) + "\n\nThat is the trade APS offers: every sample after training "
                     "is almost free, but the quality is whatever the training reached (the training "
                     "runs behind these flows: [`docs/notes/aps.md`](../docs/notes/aps.md))."))

# %% [markdown]
# ## Summary
#
# * APS trains a conditional flow by the reverse KL; the loss needs $\log p$, and the diffusion
#   ELBO stands in for it (exact in gradient for Gaussians, a surrogate otherwise).
# * Reverse-KL fits are mode-seeking: the flow keeps the main modes but starves small ones.
# * Amortized, a sample costs one network pass: orders of magnitude faster than DPS, once the
#   training is paid for; but the flow is only as good as its training measurements, and out of
#   distribution it fits $y$ worse than a zero-shot sampler would.

# %% [markdown]
# ## References
#
# * Mammadov, Chung, Ye 2024, *Amortized posterior sampling with diffusion prior distillation*
#   (APS), arXiv 2407.17907
# * Sun, Bouman 2021, *Deep probabilistic imaging* (DPI), arXiv 2010.14462
# * Ho, Jain, Abbeel 2020 (the DDPM bound behind the ELBO), arXiv 2006.11239
