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
# # Chapter 05: sparse scheduled guidance with a warm start (Spin)
#
# DPS (chapter 02) enforces the data at **every** one of its 1000 steps, and each time it
# differentiates through the denoiser. Spin (Shtanchaev et al. 2026, "Guess & Guide") asks how
# little guidance is enough.
#
# **Learning outcomes.** After this chapter you can
#
# * derive Spin's correction: a few gradient steps on the data fit, through the operator only;
# * say what its warm start and its sparse schedule of corrections each contribute, and predict
#   what is lost without them;
# * write a whole Spin run and score it against the exact posterior;
# * weigh Spin's cost (network calls, no backward pass, no kept activations) against its accuracy
#   next to DPS, DiffPIR and DAPS.
#
# **Prerequisites.** Chapter 01 (DDIM, Tweedie), chapter 02 (DPS, DiffPIR, DAPS). The yardsticks
# are those of chapter 00 §4 (SW and its noise floor) and chapter 02 §1 (PSNR, SSIM, NFE, backward
# passes).
#
# **Study time.** About 2.5 hours: 1.5 hours of reading and running, 1 hour for
# exercises 05.1-05.4; the mini-project, exercise 05.5, is open-ended.
#
# The sections:
#
# 1. what guidance at every step costs: network calls (NFE) and backward passes;
# 2. the Spin correction: a few optimiser steps on $|y - A(x)|^2$ *in pixel space*, gradients
#    through $A$ only, derived by you and checked against the library;
# 3. the **warm start** at an intermediate time $t^*$, and the **sparse schedule** of corrections
#    during DDIM from $t^*$ to 0, and what happens without the corrections;
# 4. the trade-off in $t^*$ and in the number of guided steps;
# 5. Spin against DPS, DiffPIR and DAPS on the exact toy posterior (where you build Spin by hand)
#    and on MNIST with the shipped prior (box inpainting, super-resolution by $4\times$, Gaussian
#    deblurring, a nonlinear sensor), and one image grid of every method of the course on the same
#    digits and measurement;
# 6. a stepper that shows the phases and where the corrections happen.
#
# Claims about numbers computed in this run are checked by an `assert`. The heavy MNIST references
# (DPS with 1000 steps) are read from stored runs `data/runs/ch05_*.pt` unless `RECOMPUTE = True`
# (below) or from the course's stored benchmark; the chapter prints which file it read and how to
# regenerate it, and a claim about stored numbers is printed as a note. `POSTERIOR_TUTOR_FAST=1` shrinks what is
# computed live (fewer DPS steps on the toy, fewer digits in the sweeps) but runs every code path.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import copy
import csv
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt
from posterior_tutor.evaluation import method_grid
from posterior_tutor.evaluation.memory import SavedForBackward
from posterior_tutor.exercises.scoring import sampler_score

RECOMPUTE = False                          # True: rerun the stored run data/runs/ch05_method_grid.pt
DEVICE = pt.default_device()               # the MNIST prior, measurements and samplers; 2D stays on the CPU
FAST = pt.fast_mode()
torch.set_num_threads(1)
N = 500 if FAST else 2000                  # particles on the toy problem
DPS_STEPS = 200 if FAST else 1000          # DPS on the toy (paper: 1000)
print(f"fast mode: {FAST}, device: {DEVICE}, particles: {N}, DPS steps on the toy: {DPS_STEPS}")


def seeded(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def sw(a, b):
    """Sliced Wasserstein distance with fixed projections (comparable across the chapter)."""
    return float(pt.metrics.sliced_wasserstein(a, b, generator=seeded(123)))


def timed(name, den, problem, y, n, seed=0, **options):
    """Samples and their cost: NFE, backward passes through the network, seconds per sample."""
    dev = getattr(den, "device", torch.device("cpu"))
    xs, cost = pt.evaluation.toy_suite.timed_sample(name, den, problem, y, n=n, generator=seeded(seed, dev), **options)
    return xs, dict(nfe=cost.nfe, backward=cost.backward, seconds=cost.wall_s / n)


# %% [markdown]
# ## 1. Guidance at every step is expensive
#
# DPS takes, at each step, the gradient $\nabla_{x_t} |y - A(D(x_t, t))|$: the chain rule goes
# through the network $D$, so every step costs one forward **and one backward pass**, and the
# activations of the forward pass must be kept for the backward one. On the 2D toy problem of
# chapter 00 (exact denoiser) we count; on the shipped MNIST prior we time one call of each kind.

# %%
tp = pt.toy.bimodal_problem_2d()
toy_den = tp.prior.denoiser(pt.VPSchedule())
exact = tp.posterior.sample(N, generator=seeded(1))
floor = sw(tp.posterior.sample(N, generator=seeded(2)), exact)
prior_dist = sw(tp.prior.sample(N, generator=seeded(3)), exact)
xs_dps, cost_dps = timed("dps", toy_den, tp.problem, tp.y, N, steps=DPS_STEPS)
print(f"DPS on the toy: {cost_dps}")
assert cost_dps["nfe"] == DPS_STEPS and cost_dps["backward"] == DPS_STEPS

mnist_prior = pt.pretrained("mnist", device=DEVICE)
mnist_prior.clip = 1.0                     # the prior lives in [-1, 1]
x_probe = torch.randn(1, 1, 32, 32, generator=seeded(4)).to(DEVICE)


def seconds_per_call(with_backward, repeats=10):
    start = time.perf_counter()
    for _ in range(repeats):
        if with_backward:
            x_in = x_probe.clone().requires_grad_(True)
            torch.autograd.grad(mnist_prior(x_in, 500).sum(), x_in)
        else:
            with torch.no_grad():
                mnist_prior(x_probe, 500)
    return (time.perf_counter() - start) / repeats


seconds_per_call(False, 2)                 # warm up
fwd, fwd_bwd = seconds_per_call(False), seconds_per_call(True)
print(f"MNIST prior, one image: forward {1e3 * fwd:.1f} ms, forward + backward {1e3 * fwd_bwd:.1f} ms "
      f"({fwd_bwd / fwd:.1f}x); 1000 DPS steps ~ {1000 * fwd_bwd:.0f} s of network time")
assert fwd_bwd > 1.3 * fwd, "a backward pass costs more than the forward pass alone"

# %% [markdown]
# ## 2. The Spin correction
#
# Given a denoised estimate $x_0 = D(x_t, t)$, Spin runs a few optimiser steps on
#
# $$ f(x) = |y - A(x)|^2 + \mu |x - x_0|^2, \qquad \text{started at } x = x_0, $$
#
# differentiating only the operator, never the network. The library's default optimiser is
# gradient descent with the step $\mathrm{lr}/L$, $L$ the Lipschitz constant of $\nabla f$ (the
# largest curvature of $f$, which makes $\mathrm{lr} < 2$ stable for every operator), lr = 1, 30
# steps, $\mu = 0$.
#
# ### Exercise 05.1 (derive, then verify): the Spin correction
#
# For a **linear** operator, derive $\nabla f(x)$ and $L$, then write
# `spin_correction(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0)`: `opt_steps` gradient steps
# with step $\mathrm{lr}/L$, started at $x = x_0$. Here $|\cdot|$ is the Euclidean norm over one
# sample's entries (pixels); `x0` is a batch of shape `(n, ...)`, each sample corrected on its own,
# and the result has the shape of `x0`. With `op = problem.operator`, `op(x)` is $Ax$,
# `op.adjoint(r)` is $A^\top r$ and `op.norm_squared(x0.shape[1:])` is $\lvert A\rvert^2$ (the
# largest eigenvalue of $A^\top A$). The check compares it with the library's
# `pt.samplers.spin.correct` on a blur and on a matrix, with and without $\mu$.

# %% tags=["exercise"]
# Exercise 05.1: your answer
def spin_correction(problem, y, x0, opt_steps=30, lr=1.0, mu=0.0):
    """Gradient descent on |y - A x|^2 + mu |x - x0|^2 from x0 (gradients through A only)."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("05.1", spin_correction)

# %% [markdown]
# **The reveal.** $\nabla f(x) = 2 J_A(x)^\top (A(x) - y) + 2\mu (x - x_0)$; for a linear $A$,
# $J_A^\top = A^\top$, the adjoint. The Hessian is $2(A^\top A + \mu I)$, whose largest eigenvalue
# is $L = 2(|A|^2 + \mu)$. Each step is $x \leftarrow x - (\mathrm{lr}/L)\,\nabla f(x)$ from the
# current $x$; $x_0$ stays fixed only inside the $\mu$ term.
#
# **On the toy problem** $A = a^\top$ is one row, $|A|^2 = |a|^2$, and one step with lr = 1 is
#
# $$ x = x_0 - \frac{1}{2|a|^2}\, 2a\,(a^\top x_0 - y) = x_0 - a\,\frac{a^\top x_0 - y}{|a|^2}, $$
#
# the orthogonal projection onto the line $a^\top x = y$; further steps do not move it
# ($\nabla f = 0$ there). The first step of a Spin run is a warm-start round: it records the
# denoised $x_0$ (`extras["x0_prior"]`) and the corrected one (`x0`).

# %%
first = next(pt.iterate("spin", toy_den, tp.problem, tp.y, n=5, generator=seeded(5)))
a = tp.problem.operator.matrix()[0].float()
x0_prior = first.extras["x0_prior"]
x_hand = x0_prior - a * ((x0_prior @ a - tp.y) / (a @ a))[:, None]
print("by hand:", x_hand[:2].tolist())
print("library:", first.x0[:2].tolist())
assert first.phase == "warm start"
assert torch.allclose(x_hand, first.x0, atol=1e-5), "the library's correction is the projection"

# %% [markdown]
# **On an image**, with Gaussian deblurring, the same gradient descent is a *Landweber* iteration
# $x \leftarrow x - \frac{1}{|A|^2} A^\top (A x - y)$, written with the adjoint alone (no
# autograd anywhere). 30 steps fit the frequencies the blur keeps and leave those it erases at
# the prior's value: stopping early is the regulariser. We check it against a guided step of a
# library run on an MNIST digit.

# %%
try:
    digits = pt.data.load("mnist", split="test")[[8000, 8500, 9000, 9500]].to(DEVICE)   # held out
except pt.data.DataUnavailable as err:
    print("MNIST not available here, using prior samples:", str(err)[:80], "...")
    digits = pt.sample("ddpm", mnist_prior, None, None, n=4, steps=50, eta=0.0, generator=seeded(6, DEVICE))
TASKS = {   # the benchmark's tasks (pt.tasks; used with sigma = 0.05)
    label: pt.tasks.image_operator(task) for label, task in [
        ("box inpainting", "box_inpainting"), ("super-resolution x4", "sr4"),
        ("gaussian deblur", "gaussian_deblur"), ("nonlinear (saturated blur)", "nonlinear")]}
print({label: repr(op) for label, op in TASKS.items()})
blur_prob = pt.InverseProblem(TASKS["gaussian deblur"], 0.05)
x_true = digits[2]
y_blur = blur_prob.measure(x_true, generator=seeded(7, DEVICE))
run = list(pt.iterate("spin", mnist_prior, blur_prob, y_blur, n=2, generator=seeded(8, DEVICE)))
guided_step = next(s for s in run if s.phase == "guided")
op, x = blur_prob.operator, guided_step.extras["x0_prior"]
for _ in range(30):
    x = x - (op.adjoint(op(x) - y_blur)) / op.norm_squared()
err = (x - guided_step.x0).abs().max().item()
print(f"hand Landweber vs library correction: max difference {err:.2e}; data residual "
      f"{guided_step.extras['residual_before'][0]:.2f} -> {guided_step.extras['residual_after'][0]:.2f}")
assert err < 1e-4, "the library's guided step is 30 Landweber steps from the denoised estimate"

# %% [markdown]
# ## 3. The warm start and the sparse schedule
#
# **Warm start** at a fixed $t^*$ (default 400, VE noise level $s(t^*) \approx 2$): start from the
# data's own guess $x_0 = C(0)$ (the correction started at zero; no network call), then $M$ times
# (default 3): denoise at $t^*$, correct, re-noise to $t^*$ with fresh noise,
# $x_{t^*} = \sqrt{\bar\alpha_{t^*}}\,x_0 + \sqrt{1-\bar\alpha_{t^*}}\,z$.
#
# **Guide**: DDIM (chapter 01) from $t^*$ to 0 in 30 steps; only at 8 of them, spread over the
# intermediate times $[30, t^*)$, the same correction replaces the denoised $x_0$ before the DDIM
# update (the network's $\varepsilon$ is kept). Cost: $M + 30 = 33$ network calls, no backward
# pass.
#
# ### Exercise 05.2 (break it): Spin without its guided steps
#
# Remove the guided steps (`guided=0`): the warm start stays, then plain DDIM from $t^*$ to 0.
# Before the next cell runs both on the 2D problem, predict what happens to the data residual
# $|a^\top x - y|$ of the samples, measured as its mean without the guided steps over its mean with
# them: "the samples leave the measurement line: the residual grows several-fold" (above $3$),
# "little changes: the warm start has already put the chain on the line" ($0.7$ to $3$), or "the
# samples fit y even more closely" (below $0.7$).

# %% tags=["exercise"]
# Exercise 05.2: your prediction
no_guidance = None   # one of the three options, as a string

# %%
xs_guided = pt.sample("spin", toy_den, tp.problem, tp.y, n=N, generator=seeded(14))
xs_unguided = pt.sample("spin", toy_den, tp.problem, tp.y, n=N, generator=seeded(14), guided=0)
resid_guided = tp.problem.residual(xs_guided, tp.y).abs().mean().item()
resid_unguided = tp.problem.residual(xs_unguided, tp.y).abs().mean().item()
resid_ratio = resid_unguided / resid_guided
band_unguided = pt.exercises.ch05.unguided_band(resid_ratio)
print(f"mean |a^T x - y|: {resid_guided:.3f} with 8 guided steps, {resid_unguided:.3f} without "
      f"(ratio {resid_ratio:.1f}: {band_unguided}); SW {sw(xs_guided, exact) / floor:.1f} and "
      f"{sw(xs_unguided, exact) / floor:.1f} x the noise floor")

# %%
pt.exercises.check("05.2", no_guidance, measured=band_unguided)

# %% [markdown]
# **The reveal.** The warm start's corrected $x_0$ lies on the line, but it is then re-noised to
# $t^*$, where the noise ($s(t^*) \approx 2$) is far wider than the posterior across the line.
# Plain DDIM from there denoises with the prior alone: nothing after $t^*$ knows $y$, and the
# samples land where the prior puts its mass near that region. The scheduled corrections are what
# keep fitting $y$. The same on an MNIST deblurring run: between corrections the residual
# $|A x_0 - y|$ of the denoised estimate creeps back up, and each guided step pulls it down again.

# %%
assert resid_ratio > 3 and sw(xs_unguided, exact) > sw(xs_guided, exact), "without guided steps Spin leaves the data"
ddim = [s for s in run if s.phase != "warm start"]
fig, ax = plt.subplots(figsize=(7, 2.6))
resid = [blur_prob.residual(s.extras["x0_prior"][:1], y_blur).norm().item() for s in ddim]
ax.plot(range(len(ddim)), resid, "-o", ms=3, label="|A D(x_t) - y| (denoised)")
guided_idx = [j for j, s in enumerate(ddim) if s.phase == "guided"]
ax.plot(guided_idx, [ddim[j].extras["residual_after"][0].item() for j in guided_idx], "v", c="C3",
        label="after the correction")
ax.axhline(0.05 * 32, ls=":", c="0.4", label="noise level sigma sqrt(m)")
ax.set_xlabel("DDIM step"), ax.set_ylabel("data residual"), ax.legend(fontsize=7)
ax.set_title("Spin on MNIST deblurring: corrections only at the guided steps", fontsize=9)
plt.show()
warm = [s for s in run if s.phase == "warm start"]
print("warm-start residuals (denoised -> corrected):",
      [(round(s.extras["residual_before"][0].item(), 2), round(s.extras["residual_after"][0].item(), 2))
       for s in warm])
assert [s.phase for s in run[:3]] == ["warm start"] * 3 and len(guided_idx) == 8
assert all((s.extras["residual_after"] < s.extras["residual_before"]).all() for s in run
           if "residual_after" in s.extras), "every correction lowers the data residual"

# %% [markdown]
# ## 4. The trade-offs: where to start and how often to guide
#
# The authors name the trade-off in $t^*$: start **too early** (large $t^*$) and the run is long
# (to keep the same step size, more DDIM steps are needed); start **too late** (small $t^*$) and
# there is not enough noise left for the prior to repair what the data fit leaves behind (the
# correction's noise and aliasing survive as artefacts). We sweep $t^*$ at a fixed step size
# (one DDIM step per 13 time units, as the default 30 steps from 400) and, at the default $t^*$,
# the number of guided steps. Mean PSNR on super-resolution by $4\times$ over three digits (fast
# mode: one), two samples each: there, the data fit alone gives blocky $4 \times 4$ pixels, which
# only enough noise lets the prior turn back into strokes.
#
# ### Exercise 05.3 (predict, then run): more guided steps
#
# At the default $t^* = 400$, Spin corrects 8 of its 30 DDIM steps. With 20 corrected steps
# ($2.5$ times the operator work, the same network calls), predict how the mean PSNR on
# super-resolution by $4\times$ changes: `"rises by more than 1 dB"`, `"changes by less than 1 dB"`
# or `"falls by more than 1 dB"`. The cells below run the sweep; the check compares your answer
# with the change it measures.

# %% tags=["exercise"]
# Exercise 05.3: your prediction
more_guidance = None   # one of the three options, as a string

# %%
def counting_vjp(op):
    """A shallow copy of ``op`` whose vjp counts its calls in ``.vjp_calls``: one per optimiser
    step of a correction, the operator work that guidance costs (counted, not timed)."""
    op = copy.copy(op)
    op.vjp_calls, plain_vjp = 0, op.vjp

    def vjp(x, v):
        op.vjp_calls += 1
        return plain_vjp(x, v)
    op.vjp = vjp
    return op


sweep_digits = digits[:1] if FAST else digits[:3]
sweep_tasks = {"super-resolution x4": TASKS["super-resolution x4"]}
sweep_problems = []
for task, op in sweep_tasks.items():
    problem = pt.InverseProblem(counting_vjp(op), 0.05)
    for k, x in enumerate(sweep_digits):
        sweep_problems.append((problem, x, problem.measure(x, generator=seeded(20 + k, DEVICE))))


def mean_psnr(**options):
    """(mean PSNR, NFE, seconds per sample, operator vjp calls per run) of Spin over the sweep."""
    scores, costs, vjps = [], [], []
    for problem, x, y in sweep_problems:
        problem.operator.vjp_calls = 0
        xs, cost = timed("spin", mnist_prior, problem, y, 2, seed=9, **options)
        scores.append(pt.metrics.psnr(xs, x.expand_as(xs)).mean().item())
        costs.append(cost)
        vjps.append(problem.operator.vjp_calls)
    return (sum(scores) / len(scores), costs[0]["nfe"], sum(c["seconds"] for c in costs) / len(costs),
            vjps[0])


t_star_sweep = {}
for t_star in [40, 150, 400, 800]:
    steps = max(4, t_star // 13)
    guide_until = 30 if t_star > 60 else 0
    window = [t for t in pt.VPSchedule().timesteps(steps, t_max=t_star)[1:] if t >= guide_until]
    guided = min(8, len(window))
    t_star_sweep[t_star] = mean_psnr(t_star=t_star, steps=steps, guided=guided, guide_until=guide_until)
guided_sweep = {k: mean_psnr(guided=k) for k in [0, 2, 8, 20]}
display(Markdown(
    "| t* | DDIM steps | PSNR (dB) | NFE | s/sample |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {t} | {max(4, t // 13)} | {p:.2f} | {nfe} | {s:.2f} |" for t, (p, nfe, s, _) in t_star_sweep.items())
    + "\n\n| guided steps (t* = 400) | PSNR (dB) | s/sample | operator vjp calls |\n|---|---|---|---|\n"
    + "\n".join(f"| {k} | {p:.2f} | {s:.2f} | {v} |" for k, (p, _, s, v) in guided_sweep.items())))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
ts = list(t_star_sweep)
ax1.plot(ts, [t_star_sweep[t][0] for t in ts], "-o")
for t in ts:
    ax1.annotate(f"{t_star_sweep[t][1]} NFE", (t, t_star_sweep[t][0]), fontsize=7,
                 textcoords="offset points", xytext=(3, -10))
ax1.set_xlabel("$t^*$ (start of the guided DDIM run)"), ax1.set_ylabel("mean PSNR (dB)")
ax1.set_title("where to start", fontsize=9)
ks = list(guided_sweep)
ax2.plot(ks, [guided_sweep[k][0] for k in ks], "-o", c="C1")
ax2.set_xlabel("guided steps ($t^* = 400$)"), ax2.set_ylabel("mean PSNR (dB)")
ax2.set_title("how often to guide", fontsize=9)
fig.suptitle(f"Spin, super-resolution by 4, {len(sweep_digits)} digit(s) x 2 samples", fontsize=9)
fig.tight_layout()
plt.show()

# %%
assert t_star_sweep[800][1] > 1.9 * t_star_sweep[400][1], "too early: twice the network calls"
assert t_star_sweep[400][0] > t_star_sweep[40][0], "too late: the prior cannot repair the fit"
assert guided_sweep[8][0] > guided_sweep[0][0] + 2, "the scheduled corrections are what fits y"
warm_vjps = guided_sweep[0][3]   # the warm start's corrections, before any guided step
assert all(guided_sweep[k][3] - warm_vjps == 30 * k for k in (2, 8, 20)), \
    "each guided step costs one correction: opt_steps = 30 operator vjps, no network call"
assert all(guided_sweep[k][1] == guided_sweep[0][1] for k in (2, 8, 20)), "and no extra NFE"
gain_8_to_20 = guided_sweep[20][0] - guided_sweep[8][0]
print(f"PSNR with 20 guided steps minus 8: {gain_8_to_20:+.2f} dB")

# %%
pt.exercises.check("05.3", more_guidance, measured=pt.exercises.ch05.more_band(gain_8_to_20))

# %% [markdown]
# **The reveal.** A correction fits what $A$ measures (here the $4 \times 4$ block means) and leaves
# the rest to the prior. With 8 corrections spread over $[30, t^*)$ the denoising steps between
# them keep the hidden pixels consistent with those means; further corrections fit the same
# directions again. The first few corrections are what matter (the rows 0 and 2 of the sweep's
# second table); past 8, more operator work buys little.

# %% [markdown]
# ## 5. Spin against DPS, DiffPIR and DAPS
#
# ### On the toy problem (exact posterior)
#
# SW to the exact posterior samples and its noise floor, as in chapter 00 §4; the costs (NFE,
# backward passes) as in chapter 02 §1.

# %%
toy_rows = {"dps": (xs_dps, cost_dps)}
toy_options = {"diffpir": {}, "daps": dict(levels=50, langevin_steps=50) if FAST else {}, "spin": {}}
for name, opts in toy_options.items():
    toy_rows[name] = timed(name, toy_den, tp.problem, tp.y, N, seed=10, **opts)
toy_sw = {name: sw(xs, exact) for name, (xs, _) in toy_rows.items()}
display(Markdown(
    f"Noise floor {floor:.3f}, prior samples {prior_dist:.3f}.\n\n"
    "| method | SW | SW / floor | NFE | backward passes | s (all particles) |\n|---|---|---|---|---|---|\n"
    + "\n".join(f"| {name} | {toy_sw[name]:.3f} | {toy_sw[name] / floor:.1f} | {c['nfe']} | "
                f"{c['backward']} | {c['seconds'] * N:.2f} |" for name, (_, c) in toy_rows.items())))

# %%
spin_cost = toy_rows["spin"][1]
assert spin_cost["backward"] == 0 and spin_cost["nfe"] == 33
speedup = cost_dps["seconds"] / spin_cost["seconds"]
print(f"Spin is {speedup:.0f}x faster than DPS; SW {toy_sw['spin']:.3f} vs DPS {toy_sw['dps']:.3f}")
assert speedup > 4, "Spin is several times faster than DPS"
assert toy_sw["spin"] < 10 * toy_sw["dps"], "Spin's SW is within a factor 10 of DPS's"
assert toy_sw["spin"] < 1.2 * min(toy_sw["diffpir"], toy_sw["daps"]), "as close as DiffPIR and DAPS"
assert toy_sw["spin"] < 0.5 * prior_dist, "Spin moves the samples most of the way to the posterior"
display(Markdown(
    f"Spin is not an exact sampler: like DiffPIR ({toy_sw['diffpir']:.2f}) and DAPS "
    f"({toy_sw['daps']:.2f}) it lands at {toy_sw['spin']:.2f} here ({toy_sw['spin'] / floor:.0f} times "
    f"the noise floor), while DPS, with guidance at every step, reaches {toy_sw['dps']:.2f}. What Spin "
    f"buys is cost: {spin_cost['nfe']} network calls against DiffPIR's {toy_rows['diffpir'][1]['nfe']}, "
    "no backward pass."))

fig, axes = plt.subplots(1, 5, figsize=(14, 3), sharex=True, sharey=True)
grid = torch.linspace(-3, 3, 200)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
dens = tp.posterior.log_prob(torch.stack([gx, gy], -1).reshape(-1, 2)).exp().reshape(200, 200)
levels = (dens.max() * torch.tensor([0.02, 0.1, 0.3, 0.6])).tolist()   # fractions of the peak
for ax, (name, xs) in zip(axes, [("exact posterior", exact)] + [(k, v[0]) for k, v in toy_rows.items()]):
    ax.contour(gx, gy, dens, levels=levels, colors="k", linewidths=0.6, alpha=0.7)
    ax.scatter(*xs[:500].cpu().T, s=2, alpha=0.4)
    ax.set_title(name if name not in toy_sw else f"{name}: SW {toy_sw[name]:.2f}", fontsize=9)
    ax.set_xlabel("$x_1$")
axes[0].set_ylabel("$x_2$")
axes[0].set_xlim(-3, 3), axes[0].set_ylim(-3, 3)
fig.suptitle("samples (dots) and the exact posterior density (contours)", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 05.4 (build): Spin, by hand
#
# Write `spin_sampler(den, problem, y, n, generator)` returning `(n, 2)` samples of the 2D
# problem's posterior with Spin's default recipe: the data's own guess $C(0)$ (with `x0` zeros of
# shape `(n, 2)`), re-noised to $t^* = 400$; three warm-start rounds there, as in section 3; then
# 30 DDIM steps ($\eta = 0$) from $t^*$ with the correction at 8 of them, spread evenly (by
# position in the grid, the first and the last included) over the grid times $t$ with
# $30 \le t < t^*$. Use your `spin_correction` of exercise 05.1 as $C$,
# `den.schedule.timesteps(30, t_max=400)` for the grid (30 integer times, from $t^*$ down to 0)
# and `den.schedule.abar(t)`; after the last grid time the run ends on its $x_0$ estimate
# ($\bar\alpha = 1$ there: `abar` of a negative time is *not* 1). Draw every noise with
# `generator` (on `generator.device`). At most 33 network calls (on the whole batch) and no
# gradient through the network. The check scores the SW to the exact posterior as a multiple of
# the noise floor ($n = 1000$, exact denoiser); at most $9.5$ passes.

# %% tags=["exercise"]
# Exercise 05.4: your answer
def spin_sampler(den, problem, y, n, generator):
    """(n, 2) samples from a Spin run written by hand."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("05.4", spin_sampler)

# %% [markdown]
# **The reveal.** The warm start and the guided DDIM phase, with the library's correction as $C$;
# on the same seed it gives the library's samples exactly:

# %%
def spin_by_hand(den, problem, y, n, generator, guided=8, eta=0.0):
    """Spin's default recipe written out: C(0), 3 rounds at t* = 400, 30 DDIM steps."""
    sched, t_star = den.schedule, 400
    C = lambda u: pt.samplers.spin.correct(problem, y, u)

    def to_t_star(u):
        a_star = sched.abar(t_star).item()
        return a_star ** 0.5 * u + (1 - a_star) ** 0.5 * torch.randn(u.shape, generator=generator)

    x = to_t_star(C(torch.zeros(n, 2)))
    for _ in range(3):                                               # the warm start
        x = to_t_star(C(den(x, t_star)))
    times = sched.timesteps(30, t_max=t_star)
    corrected = set(pt.samplers.spin.guided_times(times, guided, 30))
    for i, t_i in enumerate(times):                                  # DDIM, a few steps corrected
        x0_i = den(x, t_i)
        eps_i = pt.samplers.diffusion.eps_from_x0(sched, x, x0_i, t_i)
        x0_i = C(x0_i) if t_i in corrected else x0_i
        t_next = times[i + 1] if i + 1 < len(times) else -1
        x = pt.samplers.diffusion.ddim_update(sched, x0_i, eps_i, t_i, t_next, eta, generator)
    return x


assert torch.equal(spin_by_hand(toy_den, tp.problem, tp.y, 50, seeded(3)),
                   pt.sample("spin", toy_den, tp.problem, tp.y, n=50, generator=seeded(3)))
score_spin = sampler_score(spin_by_hand, "2d-bimodal", n=1000, nfe_budget=33, backward=False)
score_unguided = sampler_score(lambda *args: spin_by_hand(*args, guided=0), "2d-bimodal", n=1000)
print("Spin, scored as exercise 05.4 scores yours:", score_spin[1])
print("without its guided steps (exercise 05.2):", score_unguided[1])
assert score_spin[0] <= 9.5 < score_unguided[0], "the threshold passes Spin and refuses it unguided"

# %% [markdown]
# ### Exercise 05.5 (mini-project, optional): closer than the default Spin
#
# With the same budget (at most 33 network calls, no backward pass), write
# `project_sampler(den, problem, y, n, generator)` whose score is at most $6.9$ (the default
# Spin's is printed above). Exercise 05.2 and the scatter plot show where Spin's samples sit
# relative to the posterior: start from there, change one setting at a time (the DDIM noise
# $\eta$, the guided steps, $t^*$, the split of the calls between the warm start and the DDIM
# steps) and measure each with the score: `pt.options_of("spin")` names the settings, and
# `sampler_score(sampler, "2d-bimodal", n=1000, nfe_budget=33, backward=False)` scores a sampler
# as the check does.

# %% tags=["exercise"]
# Exercise 05.5: your answer
def project_sampler(den, problem, y, n, generator):
    """(n, 2) posterior samples in at most 33 denoiser calls, no backward pass."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("05.5", project_sampler)

# %% [markdown]
# ### On MNIST with the shipped prior
#
# Four tasks at $\sigma = 0.05$ on held-out digits, DPS with the paper's 1000 steps and scales,
# DiffPIR, DAPS and Spin: read from the course's stored benchmark (`docs/benchmark/images.csv`,
# command and options in the header of `images.md`; chapter 08 reads the rest of it), which ran
# them all on the same held-out digits and measurements (DPS alone makes a thousand network calls
# and backward passes per sample). PSNR, SSIM, NFE and backward passes as in chapter 02 §1 (PSNR
# and SSIM per sample, not of the sample mean); "peak MB" is the peak memory of the sampling run.

# %%
BENCH = pt.files.resources.root("benchmark")     # the stored benchmark tables
print("read", BENCH / "images.csv", "(regenerate: the command in the header of docs/benchmark/images.md)")
print((BENCH / "images.md").read_text().splitlines()[0][:200])
TASK_KEY = {"box inpainting": "box_inpainting", "super-resolution x4": "sr4",
            "gaussian deblur": "gaussian_deblur", "nonlinear (saturated blur)": "nonlinear"}
methods = ("spin", "dps", "diffpir", "daps")
with open(BENCH / "images.csv") as f:
    bench_rows = {(r["task"], r["method"]): r for r in csv.DictReader(f)}
table = {(task, m): {k: float(bench_rows[(TASK_KEY[task], m)][k]) for k in
                     ("images", "samples", "psnr_single", "ssim_single", "s_per_sample", "nfe", "backward",
                      "peak_mb")}
         for task in TASKS for m in methods if (TASK_KEY[task], m) in bench_rows}
n_img, n_smp = table[("gaussian deblur", "dps")]["images"], table[("gaussian deblur", "dps")]["samples"]
display(Markdown(
    f"{n_img:.0f} held-out digits x {n_smp:.0f} samples per task\n\n"
    "| task | method | PSNR | SSIM | s/sample | NFE | backward | peak MB |\n|---|---|---|---|---|---|---|---|\n"
    + "\n".join(f"| {t} | {m} | {v['psnr_single']:.2f} | {v['ssim_single']:.3f} | {v['s_per_sample']:.2f} | "
                f"{v['nfe']:.0f} | {v['backward']:.0f} | {v['peak_mb']:.0f} |" for (t, m), v in table.items())))
for task in TASKS:
    spin, dps = table[(task, "spin")], table[(task, "dps")]
    print(f"note (stored table): {task}: Spin is "
          + ("more" if spin["s_per_sample"] < dps["s_per_sample"] / 4 else "NOT more")
          + " than 4x faster than 1000-step DPS")

# %% [markdown]
# The costs are also checked in this run, on one digit: Spin's calls and the memory its backward
# passes hold, against DPS's. "autograd MB" is the peak memory the autograd graph holds for backward
# passes (the bytes of the tensors it saves, counted by `SavedForBackward` in
# `posterior_tutor/evaluation/memory.py`): it is the part of the peak memory that differs between the
# methods (the network's weights and the state are the same for all). A short DPS run suffices: its
# graph is freed after every step.

# %%
fresh_prob = pt.InverseProblem(TASKS["gaussian deblur"], 0.05)
y_fresh = fresh_prob.measure(digits[3], generator=seeded(40, DEVICE))
_, spin_fresh = timed("spin", mnist_prior, fresh_prob, y_fresh, 1, seed=12)
spin_mem = SavedForBackward().run(pt.iterate("spin", mnist_prior, fresh_prob, y_fresh, n=1))
dps_mem = SavedForBackward().run(pt.iterate("dps", mnist_prior, fresh_prob, y_fresh, n=1, steps=3))
print(f"this run: Spin {spin_fresh['nfe']} NFE, {spin_fresh['backward']} backward passes, "
      f"autograd {spin_mem:.2f} MB; DPS autograd {dps_mem:.2f} MB per step")
assert spin_fresh["backward"] == 0 and spin_fresh["nfe"] == 33
assert spin_mem < dps_mem / 10, "Spin keeps no network activations for a backward pass"

# %%
def lead(task, a, b):
    return table[(task, a)]["psnr_single"] - table[(task, b)]["psnr_single"]


speedups = [table[(t, "dps")]["s_per_sample"] / table[(t, "spin")]["s_per_sample"] for t in TASKS]
display(Markdown(
    f"**What the table shows** ({n_img:.0f} held-out digits, {n_smp:.0f} samples each): Spin is "
    f"{min(speedups):.0f} to {max(speedups):.0f} times faster than 1000-step DPS and, as checked above, "
    "keeps no network activations for a backward pass. Spin minus DPS, in PSNR: "
    + ", ".join(f"{t} {lead(t, 'spin', 'dps'):+.1f} dB" for t in TASKS)
    + ". Where DPS is ahead, its every-step guidance reaches the hidden pixels through the network's "
    "Jacobian. Spin minus DiffPIR (which makes three times its network calls): "
    + ", ".join(f"{t} {lead(t, 'spin', 'diffpir'):+.1f} dB" for t in TASKS)
    + "; Spin minus DAPS: " + ", ".join(f"{t} {lead(t, 'spin', 'daps'):+.1f} dB" for t in TASKS)
    + f". With {n_img:.0f} digits per task, differences below about 1 dB are noise. The sweeps "
    "behind Spin's defaults: [`docs/notes/spin.md`](../docs/notes/spin.md)."))

# %% [markdown]
# ### Every method on the same digits
#
# Super-resolution by $4\times$ (the task for which a UD2M sampler and an APS flow ship), two
# held-out digits, one measurement each, one sample of every method of the course on that same $y$:
# DPS (1000 steps), DiffPIR, DAPS, Spin, LATINO (chapter 03), UD2M (chapter 04) and APS (chapter 06),
# with the benchmark's options. Read from the stored run `ch05_method_grid` (chapter 08 shows the same
# grid); the PSNR of each method over the two digits is in its column's title.

# %%
GRID_DIGITS = 2                            # the stored grid: held-out digits 8000, 8001
grid_res = pt.files.stored.run("ch05_method_grid", lambda:
                         method_grid.compute(mnist_prior, "sr4", n_digits=GRID_DIGITS),
                         recompute=RECOMPUTE, settings=dict(task="sr4", n_digits=GRID_DIGITS, fast=False),
                         command="set RECOMPUTE = True in chapter 05 and run it")
method_grid.plot(grid_res, title=f"super-resolution x4, {grid_res['digits']}")
plt.show()

# %% [markdown]
# ## 6. Stepping through a Spin run
#
# The phases are in the title of every frame: three "warm start" rounds at $t^* = 400$, then "ddim"
# steps, with a "guided" step where a correction happens. In 2D the arrows are the corrections
# (from the denoised $x_0$ to the corrected one); plain DDIM steps have none.
#
# Spin's main knob is $t^*$ (the option `t_star`), where the warm start puts the chain: pick another
# value in its drop-down and the run starts again from there, with the same seed.

# %%
stepper_2d = pt.viz.step_through("spin", toy_den, tp.problem, tp.y, n=300, generator=seeded(12),
                                     density="exact", title="Spin on the 2D problem",
                                     knobs={"t_star": [200, 400, 600, 800]})
phases = [f.phase for f in stepper_2d.frames]
assert phases[:3] == ["warm start"] * 3 and phases.count("guided") == 8 and "ddim" in phases
first_png = stepper_2d.image.value
stepper_2d.slider.value = phases.index("guided")
assert stepper_2d.image.value != first_png, "moving the slider shows another frame"
x_400 = stepper_2d.frames[-1].x
stepper_2d.rerun(12, t_star=800)                     # what the drop-down does
assert stepper_2d.frames[0].t == 800 and not torch.allclose(stepper_2d.frames[-1].x, x_400)
stepper_2d.rerun(12, t_star=400)                     # back to the default
assert torch.allclose(stepper_2d.frames[-1].x, x_400)
stepper_2d

# %%
stepper_mnist = pt.viz.step_through("spin", mnist_prior, blur_prob, y_blur, n=4, generator=seeded(13),
                                        title="Spin, MNIST Gaussian deblurring",
                                        knobs={"t_star": [200, 400, 600, 800]})
first_png = stepper_mnist.image.value
stepper_mnist.slider.value = 5
assert stepper_mnist.image.value != first_png
stepper_mnist

# %%
stepper_mnist.filmstrip(idx=(0, 3, -1))
plt.show()

# %% [markdown]
# ## Summary
#
# * Guidance at every step (DPS) costs a forward and a backward pass through the network per step,
#   and the activations for that backward pass.
# * Spin fits the data in pixel space, with gradients through the operator only: a few
#   gradient-descent (Landweber) steps from the denoised estimate. It does so in a warm start at
#   an intermediate $t^*$ and then only at a few scheduled DDIM steps: 33 network calls, no backward
#   pass, and it works unchanged for a nonlinear operator.
# * Too late a start leaves artefacts, too early a start costs time; without the scheduled
#   corrections DDIM drifts away from the data.
# * It is not an exact posterior sampler (the toy problem shows the gap, the same as DiffPIR's and
#   DAPS's); its strength is cost.

# %% [markdown]
# ## References
#
# * Shtanchaev et al. 2026 (Spin; v1 *Guess & Guide*), arXiv 2603.07860
# * Chung et al. 2023 (DPS), arXiv 2209.14687
# * Zhu et al. 2023 (DiffPIR), arXiv 2305.08995
# * Zhang et al. 2024 (DAPS), arXiv 2407.01521
