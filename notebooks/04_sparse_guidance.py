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
# # Chapter 04: sparse scheduled guidance with a warm start (Spin)
#
# DPS (chapter 00) enforces the data at **every** one of its 1000 steps, and each time it
# differentiates through the denoiser. Spin (Shtanchaev et al. 2026, "Guess & Guide") asks how
# little guidance is enough:
#
# 1. what guidance at every step costs: network calls (NFE) and backward passes;
# 2. the Spin correction: a few optimiser steps on $|y - A(x)|^2$ *in pixel space*, gradients
#    through $A$ only; one correction derived by hand and checked against the library;
# 3. the **warm start** at an intermediate time $t^*$, and the **sparse schedule** of corrections
#    during DDIM from $t^*$ to 0;
# 4. the trade-off in $t^*$ and in the number of guided steps;
# 5. Spin against DPS, DiffPIR and DAPS on the exact toy posterior and on MNIST with the shipped prior
#    (box inpainting, 4x super-resolution, Gaussian deblurring, a nonlinear sensor);
# 6. a stepper that shows the phases and where the corrections happen.
#
# Every claim is checked by an `assert`. `POSTERIOR_TUTOR_FAST=1` shrinks the runs (fewer DPS
# steps, fewer samples and images) but runs every code path.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import copy
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt

FAST = pt.fast_mode()
torch.set_num_threads(1)
N = 500 if FAST else 2000                  # particles on the toy problem
DPS_STEPS = 200 if FAST else 1000          # DPS on the toy and on MNIST (paper: 1000)
print(f"fast mode: {FAST}, particles: {N}, DPS steps: {DPS_STEPS}")


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def sw(a, b):
    """Sliced Wasserstein distance with fixed projections (comparable across the chapter)."""
    return float(pt.metrics.sliced_wasserstein(a, b, generator=seeded(123)))


def timed(name, den, prob, y, n, seed=0, **options):
    """Samples and their cost: NFE, backward passes through the network, seconds per sample."""
    xs, cost = pt.bench.timed_sample(name, den, prob, y, n=n, generator=seeded(seed), **options)
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

mnist_prior = pt.pretrained("mnist")
mnist_prior.clip = 1.0                     # the prior lives in [-1, 1]
x_probe = torch.randn(1, 1, 32, 32, generator=seeded(4))


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
# ## 2. The Spin correction, by hand
#
# Given a denoised estimate $x_0 = D(x_t, t)$, Spin runs a few optimiser steps on
#
# $$ f(x) = |y - A(x)|^2 + \mu |x - x_0|^2, \qquad \text{started at } x = x_0, $$
#
# with $\nabla f(x) = 2 J_A(x)^\top (A(x) - y) + 2\mu (x - x_0)$: only the operator is
# differentiated (for a linear $A$, $J_A^\top = A^\top$, the adjoint), never the network. The
# library's default optimiser is gradient descent with step $\mathrm{lr}/L$, $L = 2(|A|^2 + \mu)$
# the Lipschitz constant of $\nabla f$, lr = 1, 30 steps, $\mu = 0$.
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
# $x \leftarrow x - \frac{1}{|A|^2} A^\top (A x - y)$ that we write with the adjoint alone (no
# autograd anywhere). 30 steps fit the frequencies the blur keeps and leave those it erases at
# the prior's value: stopping early is the regulariser. We check it against a guided step of a
# library run on an MNIST digit.

# %%
try:
    digits = pt.data.load("mnist", split="test")[[8000, 8500, 9000, 9500]]   # held out from the prior
except pt.data.DataUnavailable as err:
    print("MNIST not available here, using prior samples:", str(err)[:80], "...")
    digits = pt.sample("ddpm", mnist_prior, None, None, n=4, steps=50, eta=0.0, generator=seeded(6))
TASKS = {   # the benchmark's tasks (pt.tasks; used with sigma = 0.05)
    label: pt.tasks.image_operator(task) for label, task in [
        ("box inpainting", "box_inpainting"), ("4x super-resolution", "sr4"),
        ("gaussian deblur", "gaussian_deblur"), ("nonlinear (saturated blur)", "nonlinear")]}
print({label: repr(op) for label, op in TASKS.items()})
blur_prob = pt.InverseProblem(TASKS["gaussian deblur"], 0.05)
x_true = digits[2]
y_blur = blur_prob.measure(x_true, generator=seeded(7))
run = list(pt.iterate("spin", mnist_prior, blur_prob, y_blur, n=2, generator=seeded(8)))
guided_step = next(s for s in run if s.phase == "guided")
op, x = blur_prob.operator, guided_step.extras["x0_prior"]
for _ in range(30):
    x = x - (op.adjoint(op(x) - y_blur)) / op.norm_squared()
err = (x - guided_step.x0).abs().max().item()
print(f"hand Landweber vs library correction: max difference {err:.2e}; data residual "
      f"{guided_step.extras['residual_before'][0]:.2f} -> {guided_step.extras['residual_after'][0]:.2f}")
assert err < 1e-4, "the library's guided step is 30 Landweber steps from the denoised estimate"

# %% [markdown]
# ### Exercise 04.1: the Spin correction
#
# Write `spin_correction(prob, y, x0, opt_steps=30, lr=1.0, mu=0.0)` for a **linear** operator
# `op = prob.operator`: `opt_steps` gradient steps $x \leftarrow x - (\mathrm{lr}/L)\,\nabla f(x)$ on
# $f(x) = \lvert y - Ax\rvert^2 + \mu\lvert x - x_0\rvert^2$, started at $x = x_0$, with
# $L = 2(\lvert A\rvert^2 + \mu)$. `op(x)` is $Ax$, `op.adjoint(r)` is $A^\top r$ and
# `op.norm_squared(x0.shape[1:])` is $\lvert A\rvert^2$. The checker compares with the library's
# `pt.samplers.spin.correct` on a blur and on a matrix, with and without $\mu$.

# %% tags=["exercise"]
# Exercise 04.1: your answer (the solution: pt.exercises.solution("04.1"))
def spin_correction(prob, y, x0, opt_steps=30, lr=1.0, mu=0.0):
    """Gradient descent on |y - A x|^2 + mu |x - x0|^2 from x0 (gradients through A only)."""
    raise NotImplementedError("loop opt_steps times: gradient of f, step lr / L")


# %%
pt.exercises.check("04.1", spin_correction)

# %% [markdown]
# ## 3. The warm start and the sparse schedule
#
# **Warm start** at a fixed $t^*$ (default 400, VE noise level $s(t^*) \approx 2$): start from the
# data's own guess $x_0 = C(0)$ (the correction started at zero; no network call), then $M$ times
# (default 3): denoise at $t^*$, correct, re-noise to $t^*$ with fresh noise.
#
# **Guide**: DDIM from $t^*$ to 0 in 30 steps; only at 8 of them, spread over the intermediate
# times $[30, t^*)$, the same correction replaces the denoised $x_0$ before the DDIM update (the
# network's $\varepsilon$ is kept). Cost: $M + 30 = 33$ network calls, no backward pass.
#
# Between corrections the residual $|A x_0 - y|$ of the denoised estimate creeps back up; each
# guided step pulls it down again.

# %%
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
# ### Exercise 04.2: one warm-start round
#
# Write `warm_start_round(den, correct, x_t, t_star, z)`: denoise `x_t` at `t_star`, apply the
# correction `correct` (a function of the denoised estimate, e.g. the one of exercise 04.1 with its
# other arguments fixed), and re-noise the result to `t_star` with the given noise `z`. Return
# `(x0, x_t_star)`: the corrected estimate and the new state.

# %% tags=["exercise"]
# Exercise 04.2: your answer (the solution: pt.exercises.solution("04.2"))
def warm_start_round(den, correct, x_t, t_star, z):
    """One round of Spin's warm start: returns (corrected x0, re-noised x_t*)."""
    raise NotImplementedError("denoise, correct, re-noise")


# %%
pt.exercises.check("04.2", warm_start_round)

# %% [markdown]
# ## 4. The trade-offs: where to start and how often to guide
#
# The authors name the trade-off in $t^*$: start **too early** (large $t^*$) and the run is long
# (to keep the same step size, more DDIM steps are needed); start **too late** (small $t^*$) and
# there is not enough noise left for the prior to repair what the data fit leaves behind (the
# correction's noise and aliasing survive as artefacts). We sweep $t^*$ at a fixed step size
# (one DDIM step per 13 time units, as the default 30 steps from 400) and, at the default $t^*$,
# the number of guided steps. Mean PSNR on 4x super-resolution over three digits (fast mode: one),
# two samples each: there, the data fit alone gives blocky 4x4 pixels, which only enough noise lets
# the prior turn back into strokes.

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
sweep_tasks = {"4x super-resolution": TASKS["4x super-resolution"]}
sweep_problems = []
for task, op in sweep_tasks.items():
    prob = pt.InverseProblem(counting_vjp(op), 0.05)
    for k, x in enumerate(sweep_digits):
        sweep_problems.append((prob, x, prob.measure(x, generator=seeded(20 + k))))


def mean_psnr(**options):
    """(mean PSNR, NFE, seconds per sample, operator vjp calls per run) of Spin over the sweep."""
    scores, costs, vjps = [], [], []
    for prob, x, y in sweep_problems:
        prob.operator.vjp_calls = 0
        xs, cost = timed("spin", mnist_prior, prob, y, 2, seed=9, **options)
        scores.append(pt.metrics.psnr(xs, x.expand_as(xs)).mean().item())
        costs.append(cost)
        vjps.append(prob.operator.vjp_calls)
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

# %%
assert t_star_sweep[800][1] > 1.9 * t_star_sweep[400][1], "too early: twice the network calls"
assert t_star_sweep[400][0] > t_star_sweep[40][0], "too late: the prior cannot repair the fit"
assert guided_sweep[8][0] > guided_sweep[0][0] + 2, "the scheduled corrections are what fits y"
warm_vjps = guided_sweep[0][3]   # the warm start's corrections, before any guided step
assert all(guided_sweep[k][3] - warm_vjps == 30 * k for k in (2, 8, 20)), \
    "each guided step costs one correction: opt_steps = 30 operator vjps, no network call"
assert all(guided_sweep[k][1] == guided_sweep[0][1] for k in (2, 8, 20)), "and no extra NFE"

# %% [markdown]
# ## 5. Spin against DPS, DiffPIR and DAPS
#
# ### On the toy problem (exact posterior)

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

# %% [markdown]
# Spin is not an exact sampler: like DiffPIR and DAPS it lands around 0.6 here (about 8 times the
# noise floor), while DPS, with guidance at every step, gets several times closer. What Spin buys is
# cost: a tenth of DiffPIR's network calls, no backward pass.
#
# ### On MNIST with the shipped prior
#
# Four tasks at $\sigma = 0.05$, held-out digits, DPS with the paper's 1000 steps and scales
# (0.5 inpainting, 0.3 otherwise), DiffPIR and DAPS with their defaults (fast mode: DPS 50 steps,
# DiffPIR 20, DAPS 10 levels; one digit, one sample). PSNR and SSIM are per sample (not of the sample mean).
# "autograd MB" is the peak memory the autograd graph holds for backward passes (the bytes of the
# tensors it saves, counted with `torch.autograd.graph.saved_tensors_hooks`, one sample): it is the
# part of the peak memory that differs between the methods (the network's weights and the state are
# the same for all four).

# %%
class SavedForBackward:
    """Peak bytes of the tensors autograd holds for a backward pass (saved_tensors_hooks): each
    saved tensor is wrapped in a holder whose deletion (when its graph is freed) gives the bytes
    back, so ``peak`` is the largest amount alive at once."""

    class Held:
        def __init__(self, owner, t):
            self.owner, self.t, self.nbytes = owner, t, t.numel() * t.element_size()
            owner.live += self.nbytes
            owner.peak = max(owner.peak, owner.live)

        def __del__(self):
            self.owner.live -= self.nbytes

    def __init__(self):
        self.live, self.peak = 0, 0

    def run(self, steps):
        """Run an iterator of steps under the hooks; returns the peak in MB."""
        with torch.autograd.graph.saved_tensors_hooks(lambda t: self.Held(self, t), lambda h: h.t):
            for _ in steps:
                pass
        return self.peak / 2 ** 20


mnist_digits = digits[:1] if FAST else digits[:2]
n_mnist = 1 if FAST else 2
methods = {"spin": lambda task: {},
           "dps": lambda task: dict(steps=50 if FAST else 1000, zeta=0.5 if "inpainting" in task else 0.3),
           "diffpir": lambda task: dict(steps=20) if FAST else {},
           "daps": lambda task: dict(levels=10, ode_steps=2, langevin_steps=10) if FAST else {}}
short_run = {"spin": {}, "dps": dict(steps=3), "diffpir": dict(steps=3), "daps": dict(levels=2)}
mnist_rows = []
for task, op in TASKS.items():
    prob = pt.InverseProblem(op, 0.05)
    for k, x in enumerate(mnist_digits):
        y = prob.measure(x, generator=seeded(30 + k))
        for name, options in methods.items():
            xs, cost = timed(name, mnist_prior, prob, y, n_mnist, seed=11, **options(task))
            mem = SavedForBackward().run(pt.iterate(name, mnist_prior, prob, y, n=1,  # per step:
                                                    **(options(task) | short_run[name])))  # a short run
            mnist_rows.append(dict(task=task, method=name, psnr=pt.metrics.psnr(xs, x.expand_as(xs)).mean().item(),
                                   ssim=pt.metrics.ssim(xs, x.expand_as(xs)).mean().item(), mem=mem, **cost))


def summary(task, name):
    rows = [r for r in mnist_rows if r["task"] == task and r["method"] == name]
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    return {key: mean(key) for key in ["psnr", "ssim", "seconds", "nfe", "backward", "mem"]}


table = {(task, name): summary(task, name) for task in TASKS for name in methods}
display(Markdown(
    "| task | method | PSNR | SSIM | s/sample | NFE | backward | autograd MB |\n|---|---|---|---|---|---|---|---|\n"
    + "\n".join(f"| {t} | {m} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['seconds']:.2f} | {v['nfe']:.0f} | "
                f"{v['backward']:.0f} | {v['mem']:.2f} |" for (t, m), v in table.items())))

# %%
for task in TASKS:
    spin, dps = table[(task, "spin")], table[(task, "dps")]
    dps_1000 = dps["seconds"] * 1000 / dps["nfe"]     # DPS's cost is linear in its steps (fast mode)
    assert spin["backward"] == 0 and spin["nfe"] == 33
    assert spin["seconds"] < dps_1000 / 4, f"{task}: Spin is more than 4x faster than 1000-step DPS"
    assert spin["mem"] < dps["mem"] / 10, f"{task}: Spin keeps no network activations for backward"
    assert spin["psnr"] > table[(task, "diffpir")]["psnr"] - 1.0, f"{task}: Spin matches DiffPIR"
assert table[("nonlinear (saturated blur)", "spin")]["psnr"] > \
    table[("nonlinear (saturated blur)", "dps")]["psnr"] - 0.5, "nonlinear: Spin matches DPS"
assert table[("gaussian deblur", "spin")]["psnr"] > table[("gaussian deblur", "dps")]["psnr"] - 1.5

# %% [markdown]
# What the table shows (full mode; measured on four held-out digits, 2 samples each, one CPU
# thread): Spin is 40-60 times faster than 1000-step DPS and keeps no network activations for a
# backward pass. On the nonlinear sensor its PSNR is above DPS's (24.1 vs 23.4 dB), on deblurring
# about 0.5 dB below (24.9 vs 25.5); on box inpainting and 4x super-resolution DPS's every-step
# guidance, which reaches the hidden pixels through the network's Jacobian, is about 2 dB better
# (14.9 vs 12.5, 20.1 vs 18.0). Spin is at or above DiffPIR (a third of its network calls) on all
# four tasks; DAPS (30 times the calls) is behind it on average but ahead on 4x super-resolution
# for some digits. With two digits per task, as here, differences below about 1 dB are noise.
#
# ## 6. Stepping through a Spin run
#
# The phases are in the title of every frame: three "warm start" rounds at $t^* = 400$, then "ddim"
# steps, with a "guided" step where a correction happens. In 2D the arrows are the corrections
# (from the denoised $x_0$ to the corrected one); plain DDIM steps have none.
#
# Spin's main knob is $t^*$ (the option `t_star`), where the warm start puts the chain: pick another
# value in its drop-down and the run starts again from there, with the same seed.

# %%
stepper_2d = pt.widgets.step_through("spin", toy_den, tp.problem, tp.y, n=300, generator=seeded(12),
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
stepper_mnist = pt.widgets.step_through("spin", mnist_prior, blur_prob, y_blur, n=4, generator=seeded(13),
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
