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
# # Chapter 03: unfolding and distillation (UD2M)
#
# Chapter 02 ended with LATINO: eight network calls, but a *Tweedie* denoiser returns means, so the
# chain under-disperses. UD2M (Mbakam, Spence, Pereyra 2025) keeps the chain's structure and
# **trains** it:
#
# 1. the unfolded block $L(x_t, y, t)$: $K$ iterations of "prox, re-noise, denoise" that estimate
#    $x_0$ from $p(x_0 \mid x_t, y)$, built by hand and checked against the library;
# 2. the outer loop: $N$ DDIM steps, so $K N$ network calls per sample (9 by default);
# 3. distillation: low-rank adapters on the denoiser, a learned data weight $\lambda$, an
#    SNR-weighted $x_0$ loss and a conditional discriminator; trained here on the 2D toy problem
#    (exact posterior) and on digits;
# 4. an ablation over $K$ and $N$;
# 5. the shipped MNIST samplers (random inpainting and 4x super-resolution, $\sigma = 0.05$):
#    quality, speed, and what holds when the operator at inference is not the training one;
# 6. a stepper over the $K \times N$ steps.
#
# Every claim is checked by an `assert`. `POSTERIOR_TUTOR_FAST=1` shrinks the runs.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt
from posterior_tutor import unfolding as U

FAST = pt.fast_mode()
N = 1000 if FAST else 2000                       # particles on the toy problem
TOY_STEPS = 400 if FAST else 6000                # UD2M training steps on the toy problem
torch.set_num_threads(1)
print(f"fast mode: {FAST}")


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def sw(a, b):
    """Sliced Wasserstein distance with fixed projections (comparable across the chapter)."""
    return float(pt.metrics.sliced_wasserstein(a, b, generator=seeded(123)))


# %% [markdown]
# ## 1. The unfolded block, by hand
#
# At an outer time $t$ we hold $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$
# and the measurement $y$. Both are evidence about $x_0$: $y$ through the likelihood, $x_t$ through
# the Gaussian $x_t/\sqrt{\bar\alpha_t} \sim \mathcal N(x_0, s(t)^2 I)$ with the VE level
# $s(t) = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$. One iteration of the block is a LATINO step that
# uses both:
#
# $$ z_k = \arg\min_z \frac{|y - Az|^2}{2\lambda\sigma^2} + \frac{|z - x^{(k-1)}|^2}{2\rho^2}
#        + \frac{|z - x_t/\sqrt{\bar\alpha_t}|^2}{2 s^2}, \qquad
#    \tilde z_k = \sqrt{\bar\alpha_\tau}\, z_k + \sqrt{1-\bar\alpha_\tau}\,\varepsilon_k, \qquad
#    x^{(k)} = D(\tilde z_k, \tau), $$
#
# with $\rho = \sigma' s / \sqrt{\sigma'^2 + s^2}$, $\sigma' = c\,\sigma$ (`sigma_factor`, default
# $c = 2$; the public code's value comes below), and $\tau$ the time whose
# level is $s(\tau) = \rho$. The last two quadratics add up to one,
# $|z - m|^2 / (2 r^2)$ with $1/r^2 = 1/\rho^2 + 1/s^2$ and $m = r^2 (x^{(k-1)}/\rho^2 + x_t/(\sqrt{\bar\alpha_t}s^2))$,
# so $z_k$ is the problem's own prox, with radius $r/\sqrt\lambda$. We compute one iteration on the
# 2D problem with a dense linear solve and compare it with the library.

# %%
tp = pt.toy.bimodal_problem_2d()
prior, problem, y, posterior = tp.prior, tp.problem, tp.y, tp.posterior
den = prior.denoiser(pt.VPSchedule())
sched = den.schedule
exact = posterior.sample(N, generator=seeded(1))
floor = sw(posterior.sample(N, generator=seeded(2)), exact)
prior_dist = sw(prior.sample(N, generator=seeded(3)), exact)
print(f"noise floor {floor:.3f}, prior samples vs exact {prior_dist:.3f}")

t = 444                                             # the second outer time of N = 3
x_t = sched.add_noise(exact[:5], t, generator=seeded(4))
ab, s = sched.abar(t).item(), sched.sigma(t).item()
sp = 2 * problem.sigma
rho = sp * s / math.sqrt(sp ** 2 + s ** 2)
tau = sched.t_from_sigma(rho)
print(f"t = {t}: s(t) = {s:.2f}, rho = {rho:.3f}, tau = {tau} (s(tau) = {sched.sigma(tau).item():.3f})")

A = problem.operator.matrix().double()
aty = (y.double() @ A).expand(5, 2)
x_prev = (aty * math.sqrt(1 - ab) + math.sqrt(ab) * sp * x_t.double()) / math.sqrt(sp ** 2 + 1 - ab)
lam = 1.0                                           # lambda before training
H = A.T @ A / (lam * problem.sigma ** 2) + torch.eye(2, dtype=A.dtype) * (1 / rho ** 2 + 1 / s ** 2)
rhs = aty / (lam * problem.sigma ** 2) + x_prev / rho ** 2 + x_t.double() / (math.sqrt(ab) * s ** 2)
z_hand = torch.linalg.solve(H, rhs.T).T
eps = torch.randn(z_hand.shape, generator=seeded(5), dtype=torch.float32)
noised = math.sqrt(sched.abar(tau).item()) * z_hand.float() + math.sqrt(1 - sched.abar(tau).item()) * eps
x1_hand = den(noised, tau)

first = next(U.unfolded_block(den, torch.zeros(()), problem, x_t, y, t, K=3, generator=seeded(5)))
print("z_1 by hand:", z_hand[:2].tolist(), "\nlibrary    :", first.z[:2].tolist())
assert first.tau == tau
assert torch.allclose(first.z.double(), z_hand, atol=1e-4), "the block's prox is the equation above"
assert torch.allclose(first.x, x1_hand, atol=1e-4), "then re-noise to tau and one denoiser call"

# %% [markdown]
# ### Exercise 03.1: the block's noise level rho and time tau
#
# Write `rho_tau(sched, t, sigma, sigma_factor=2.0)` returning $(\rho, \tau)$ of the block at outer
# time `t`: $\rho = \sigma' s / \sqrt{\sigma'^2 + s^2}$ with $s = s(t)$ and $\sigma' =$
# `sigma_factor * sigma`, and $\tau$ the integer time whose level $s(\tau)$ is closest to $\rho$
# (`sched.t_from_sigma`). The checker compares with the library's `pt.ud2m.block_levels`.

# %% tags=["exercise"]
# Exercise 03.1: your answer (the solution: pt.exercises.solution("03.1"))
def rho_tau(sched, t, sigma, sigma_factor=2.0):
    """(rho, tau) of UD2M's block at outer time t."""
    raise NotImplementedError("combine sigma' and s(t), then find tau")


# %%
pt.exercises.check("03.1", rho_tau)

# %% [markdown]
# ### Exercise 03.2: two quadratics as one
#
# Write `combine(x_prev, x_t, ab, rho, s)` returning the centre `m` and the radius `r` (a number)
# with $\lvert z - x^{(k-1)}\rvert^2/(2\rho^2) + \lvert z - x_t/\sqrt{\bar\alpha_t}\rvert^2/(2s^2) =
# \lvert z - m\rvert^2/(2r^2) + \text{const}$. With it the block's $z_k$ is
# `problem.prox(m, y, r / sqrt(lam))`. The checker compares with `pt.ud2m.combined_quadratic`.

# %% tags=["exercise"]
# Exercise 03.2: your answer (the solution: pt.exercises.solution("03.2"))
def combine(x_prev, x_t, ab, rho, s):
    """(m, r) of the quadratic that sums the two proximity terms."""
    raise NotImplementedError("add the precisions, weight the centres by them")


# %%
pt.exercises.check("03.2", combine)

# %% [markdown]
# The block never moves far from the data: each iteration is pulled towards $A^\top y$ by the
# likelihood and towards $x_t/\sqrt{\bar\alpha_t}$ by the outer state, and its only source of spread
# is the re-noising at $\tau$. The **outer loop** is DDIM on the quadratic grid
# $t_n = \lfloor (n\sqrt{1000}/N)^2 \rfloor$ (999, 444, 111 for $N = 3$): the block's $x^{(K)}$ plays
# the role of the denoiser's $x_0$ estimate, $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}x^{(K)})/\sqrt{1-\bar\alpha_t}$,
# and DDIM with $\eta = 0.8$ moves to the next time. Before any training (adapters at zero, $\lambda = 1$)
# it is a sampler already:

# %%
untrained = U.UD2MSampler(den, dict(K=3, N=3, eta=0.8, rank=4, mode="residual", shape=[2],
                                    layers=None, hidden=64, sigma_factor=2.0, T=1000), problem)
with untrained.denoiser.counting():
    xs_untrained = untrained.sample(y, N, generator=seeded(6))
nfe_untrained = untrained.denoiser.nfe
sw_untrained = sw(xs_untrained, exact)
print(f"untrained UD2M: SW {sw_untrained:.3f} ({sw_untrained / floor:.1f} x floor), "
      f"{nfe_untrained} network calls per sample, grid {untrained.grid}")
assert nfe_untrained == 9 and untrained.grid == [999, 444, 111]
assert sw_untrained < prior_dist, "even untrained, the block's data steps move towards the posterior"

# %% [markdown]
# ## 2. Distillation on the toy problem
#
# What is trained is small: the exact denoiser has no parameters, so it gets a residual MLP added to
# its output (zero at start: training starts *at* the prior), and $\lambda = e^{l}$. The losses on
# pairs $(x_0, y = Ax_0 + \sigma n)$ made on the fly from prior samples, one random outer time $t$ per
# batch, one block with gradients:
#
# $$ \mathcal L_G = \frac{\bar\alpha_t}{1-\bar\alpha_t}|x^{(K)} - x_0|^2 + \mathrm{BCE}(\mathrm{Disc}(x^{(K)}, y), 1),\qquad
#    \mathcal L_D = \tfrac12\mathrm{BCE}(\mathrm{Disc}(x_0, y), 1) + \tfrac12\mathrm{BCE}(\mathrm{Disc}(x^{(K)}, y), 0) + \tfrac{\gamma}{2} E|\nabla_x \mathrm{Disc}(x_0, y)|^2. $$
#
# The first term alone would teach the block the conditional *mean* (the under-dispersion of chapter
# 02 again); the discriminator, which sees $(x, y)$ pairs, pushes the block's outputs to be
# distributed like real $x_0$ given $y$.

# %%
xs_train = prior.sample(20000, generator=seeded(7))
start = time.perf_counter()
TOY = dict(K=2, N=4, sigma_factor=4.0, hidden=128, adv_weight=3.0)  # pt.bench.TOY_UD2M's setting
ud = pt.ud2m.train(den, problem, xs_train, generator=seeded(8), steps=TOY_STEPS, progress=True, **TOY)
train_s = time.perf_counter() - start
xs_ud = ud.sample(y, N, generator=seeded(6))
sw_ud = sw(xs_ud, exact)
print(f"trained UD2M ({TOY_STEPS} steps, {train_s:.0f} s): SW {sw_ud:.3f} ({sw_ud / floor:.1f} x floor), "
      f"lambda = {ud.lam:.2f}")

baselines = {}
for name, opts in [("dps", dict(steps=200 if FAST else 1000)), ("diffpir", {}), ("latino", {})]:
    with den.counting():
        xb = pt.sample(name, den, problem, y, n=N, generator=seeded(9), **opts)
    baselines[name] = (sw(xb, exact), den.nfe, xb)   # calls on the whole batch = per sample
rows = [("UD2M, untrained (K = N = 3)", sw_untrained, 9), ("UD2M, trained (K = 2, N = 4)", sw_ud, 8)] + \
       [(k, v[0], v[1]) for k, v in baselines.items()]
display(Markdown("| sampler | SW | x floor | network calls / sample |\n|---|---|---|---|\n" + "\n".join(
    f"| {r[0]} | {r[1]:.3f} | {r[1] / floor:.1f} | {r[2]} |" for r in rows)))

# %%
no_backward = min(baselines["diffpir"][0], baselines["latino"][0])
print(f"UD2M / DPS: {sw_ud / baselines['dps'][0]:.1f}x; UD2M / best baseline without backward "
      f"passes: {sw_ud / no_backward:.2f}x")
assert sw_ud < prior_dist / 2, "the trained sampler is far closer to the posterior than the prior"
assert sw_ud < sw_untrained, "training moves the sampler towards the posterior"
assert sw_ud < 1.05 * no_backward, "8 calls: as close as LATINO (8) and DiffPIR (100), or closer"

# %% [markdown]
# Where the remaining distance sits: the **mode weights**. Each block starts near $A^\top y$ and its
# re-noising at $\tau$ (with $s(\tau) \approx \sigma'$) rarely jumps between modes two units apart,
# so the mode nearest to $A^\top y$ is over-weighted.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True, sharey=True)
for ax, (label, pts) in zip(axes, [("exact posterior", exact), ("UD2M, untrained", xs_untrained),
                                   ("UD2M, trained", xs_ud)]):
    ax.scatter(*pts[:800].T, s=3, alpha=0.4)
    ax.set_title(label)
plt.show()
w_exact = pt.metrics.mode_weights(exact, posterior)
w_ud = pt.metrics.mode_weights(xs_ud, posterior)
print("mode weights, exact:", [round(v, 2) for v in w_exact.tolist() if v > 0.01])
print("mode weights, UD2M :", [round(v, 2) for v in w_ud.tolist() if v > 0.01])

# %% [markdown]
# ## 3. Ablation over K and N
#
# $K$ (iterations per block) and $N$ (outer DDIM steps) trade off at a fixed budget of network calls.
# Each configuration is trained with the same number of steps (half of the run above) and seed.

# %%
configs = [(1, 3), (3, 3)] if FAST else [(1, 3), (3, 1), (3, 3), (2, 4), (1, 9)]
ablation = {}
for K, Nout in configs:
    m = pt.ud2m.train(den, problem, xs_train, generator=seeded(8), steps=TOY_STEPS // 2, K=K, N=Nout,
                      sigma_factor=4.0, hidden=128)
    ablation[(K, Nout)] = sw(m.sample(y, N, generator=seeded(6)), exact)
display(Markdown("| K | N | network calls | SW | x floor |\n|---|---|---|---|---|\n" + "\n".join(
    f"| {K} | {Nout} | {K * Nout} | {v:.3f} | {v / floor:.1f} |" for (K, Nout), v in ablation.items())))
assert all(v < prior_dist / 2 for v in ablation.values()), "every configuration learns the posterior's location"

# %% [markdown]
# ## 4. Digits: a UNet prior with low-rank adapters
#
# On images the denoiser is the shipped digits UNet (16x16). UD2M adds rank-4 adapters
# $W x + BAx$ with $B = 0$ at start to its attention projections and output layer, shared by every
# $k$ and $t$; the prior itself is never modified. Training uses a fresh random 50% mask per batch
# (the "general operator" mode), so one sampler serves every mask. We measure the block's held-out
# error at fixed times before and after a short training run.

# %%
digits_prior = pt.pretrained("digits")
digits = pt.data.load("digits")
digit_train, digit_test = digits[:1500], digits[1500:1532]
mask_gen = seeded(20)


def random_mask_problem():
    return pt.tasks.image_problem("random_inpainting", shape=(1, 16, 16), generator=mask_gen)


def held_out_block_error(sampler, times=(999, 444, 111)):
    """Mean SNR-weighted x0 error of one block on held-out digits (fixed noise and masks)."""
    g = seeded(21)
    total = 0.0
    for t in times:
        prob = pt.tasks.image_problem("random_inpainting", shape=(1, 16, 16), generator=seeded(t))
        yb = U.measure_batch(prob, digit_test, g)
        x_t = sched.add_noise(digit_test, t, generator=g)
        with torch.no_grad():
            *_, last = sampler.block(x_t, yb, t, prob, g, batched_y=True)
        ab = sched.abar(t).item()
        total += ab / (1 - ab) * (last.x - digit_test).pow(2).flatten(1).sum(1).mean().item()
    return total / len(times)


digit_ud = pt.ud2m.train(digits_prior, random_mask_problem(), digit_train, generator=seeded(22),
                         steps=0)
error_before = held_out_block_error(digit_ud)
start = time.perf_counter()
digit_ud = pt.ud2m.train(digits_prior, random_mask_problem(), digit_train, generator=seeded(22),
                         steps=40 if FAST else 600, lr=1e-3, operators=random_mask_problem,
                         progress=True)
print(f"trained in {time.perf_counter() - start:.0f} s")
error_after = held_out_block_error(digit_ud)
print(f"held-out block error: {error_before:.2f} before, {error_after:.2f} after training")
assert error_after < error_before, "training lowers the block's error on held-out digits"

# %%
x_digit = digit_test[3]
dprob = pt.tasks.image_problem("random_inpainting", shape=(1, 16, 16), generator=seeded(23))
dy = dprob.measure(x_digit, generator=seeded(24))
digits_prior.clip = 1.0
dx = digit_ud.sample(dy, 8, generator=seeded(25), problem=dprob)
pt.widgets.sample_strip(dx, title="UD2M on digits: 8 samples for one half-masked digit", y=dy)
plt.show()
print(f"PSNR of the samples {pt.metrics.psnr(dx, x_digit.expand_as(dx)).mean():.1f} dB, "
      f"of the zero-filled measurement {pt.metrics.psnr(dprob.operator.adjoint(dy[None]), x_digit[None]).item():.1f} dB")

# %% [markdown]
# ## 5. The shipped MNIST samplers
#
# Two samplers were trained once (the command is in their `README.md`): random inpainting (any 50%
# mask) and 4x super-resolution, both at $\sigma = 0.05$ on the shipped MNIST prior. We compare them
# with LATINO (8 calls) and DPS (1000 calls with a backward pass each; 100 in fast mode, where its
# numbers are not representative) on held-out digits. Look at the coverage column: the fraction of
# pixels whose true value lies in the samples' 90% interval. LATINO's samples are means (chapter 02),
# their intervals are far too narrow; UD2M's are at or above the nominal 90%.
#
# First, one choice that matters more than the training: $\sigma'$.

# %%
mnist_prior = pt.pretrained("mnist")
mnist_prior.clip = 1.0
try:
    test_digits = pt.data.load("mnist", split="test")[8000:8000 + (2 if FAST else 8)]
    HELD_OUT = True                   # real held-out digits (the claims below are about them)
except pt.data.DataUnavailable as err:
    HELD_OUT = False
    print("MNIST not available here, using prior samples:", str(err)[:80], "...")
    test_digits = pt.sample("ddpm", mnist_prior, None, None, n=2 if FAST else 8, steps=50,
                            eta=0.0, generator=seeded(30))
n_samples = 8 if FAST else 32
dps_steps, dps_samples = (100, 4) if FAST else (1000, 8)


def evaluate(sample_fn, make_problem, n=n_samples):
    """Over the test digits: PSNR of single samples and of their mean, 90% coverage, s / sample
    (`pt.evaluation.evaluate_images`, the evaluation the benchmark uses, with this chapter's seeds).
    ``make_problem(i)`` gives the problem of digit i; ``sample_fn(prob, y, generator, n)``."""
    r = pt.evaluation.evaluate_images(lambda prob, yy, n_, g: sample_fn(prob, yy, g, n_),
                                      test_digits, make_problem,
                                      lambda i: (seeded(200 + i), seeded(300 + i)), n)
    return dict(single=r["psnr_single"], mean=r["psnr_mean"], coverage=r["coverage"],
                s_per_sample=r["seconds_per_sample"])


def task_problems(task, **options):
    return lambda i: pt.tasks.image_problem(task, generator=seeded(100 + i), **options)


def table(rows, first="task"):
    return Markdown(f"| {first} | sampler | PSNR single | PSNR of the mean | 90% coverage | s / sample |\n"
                    "|---|---|---|---|---|---|\n" + "\n".join(
                        f"| {t} | {m} | {r['single']:.2f} | {r['mean']:.2f} | {r['coverage']:.2f} "
                        f"| {r['s_per_sample']:.4f} |" for (t, m), r in rows.items()))


# %% [markdown]
# ### How much noise a block may add: $\sigma'$
#
# Each block re-noises its estimate to $\tau$ with $s(\tau) = \rho \le \sigma'$, so $\sigma'$ caps the
# noise level at which the prior ever works. At $\sigma' = 2\sigma = 0.1$ (the package's default)
# the denoiser sees a digit with half its pixels missing plus a little noise: at that noise level it
# has no licence to invent strokes, and the missing pixels stay grey. The public code's own
# $\sigma'$ is lower still for super-resolution: its `sigma_model = 2 * sigma_model` converts the
# noise level from $[0, 1]$ to $[-1, 1]$ image units (not a tuning factor), so in our units its
# $\sigma'$ is $\sigma$ itself, times 13 for inpainting (it also keeps the true $\sigma$ in
# $x^{(0)}$ and uses another DDIM noise rule: `ud.with_preset("code")` runs all three,
# `posterior_tutor/trained/ud2m/presets.py`).
# Before any training (adapters at zero), the PSNR of the mean as a function of $\sigma'/\sigma$,
# and with the code's bookkeeping:

# %%
sweep = {}
for task in ("random_inpainting", "sr4"):
    for factor in (2, 13, 20):
        untrained = pt.ud2m.train(mnist_prior, task_problems(task)(0), test_digits[:1], steps=0,
                                  sigma_factor=factor, generator=seeded(40))
        sweep[(task, f"untrained, sigma' = {factor} sigma")] = evaluate(
            lambda p, yy, g, n, u=untrained: u.sample(yy, n, generator=g, problem=p),
            task_problems(task), n=8)
    code = untrained.with_preset("code")     # the code's sigma' (sigma, x13 inpainting), x^(0), eta
    sweep[(task, "untrained, the code's bookkeeping")] = evaluate(
        lambda p, yy, g, n, u=code: u.sample(yy, n, generator=g, problem=p),
        task_problems(task), n=8)
display(table(sweep))
for task, better in (("random_inpainting", 13), ("sr4", 20)):
    gain = (sweep[(task, f"untrained, sigma' = {better} sigma")]["mean"]
            - sweep[(task, "untrained, sigma' = 2 sigma")]["mean"])
    assert gain > 3, f"{task}: a larger sigma' lets the prior fill in what A removed ({gain:.1f} dB)"
code_gap = (sweep[("sr4", "untrained, sigma' = 20 sigma")]["mean"]
            - sweep[("sr4", "untrained, the code's bookkeeping")]["mean"])
assert code_gap > 3, f"the code's sigma' = sigma cannot super-resolve 4x ({code_gap:.1f} dB)"

# %% [markdown]
# So the shipped samplers use $\sigma' = 13\sigma$ (inpainting: the code's own factor) and
# $20\sigma$ (super-resolution, where the code's $\sigma$ fails), chosen on exactly this untrained sweep over
# held-out digits (the table is in `scripts/train_ud2m_mnist.py`); training then starts from a
# sampler that already works. For inpainting the code's whole bookkeeping is as good (the shipped
# sampler on the stored benchmark's digits: 29.82 dB against 29.75; super-resolution 12.91 against
# 24.28; `docs/notes/ud2m.md`).

# %%
samplers = {task: U.pretrained(f"mnist-{task.replace('_', '-')}", mnist_prior)
            for task in ("random_inpainting", "sr4")}
run_ud2m = {task: (lambda p, yy, g, n, ud_=ud_: ud_.sample(yy, n, generator=g, problem=p))
            for task, ud_ in samplers.items()}


def run_latino(p, yy, g, n):
    return pt.sample("latino", mnist_prior, p, yy, n=n, generator=g)


def run_dps(p, yy, g, n):
    return pt.sample("dps", mnist_prior, p, yy, n=n, generator=g, steps=dps_steps)


results = {}
for task in samplers:
    results[(task, "UD2M")] = evaluate(run_ud2m[task], task_problems(task))
    results[(task, "LATINO")] = evaluate(run_latino, task_problems(task))
    results[(task, "DPS")] = evaluate(run_dps, task_problems(task), n=dps_samples)


display(table(results))
print(f"(means over {len(test_digits)} held-out digits; {n_samples} samples each, DPS {dps_samples} "
      f"samples of {dps_steps} steps)")

# %%
for task in samplers:
    ud_r, lat_r, dps_r = (results[(task, m)] for m in ("UD2M", "LATINO", "DPS"))
    print(f"{task}: PSNR of the mean UD2M {ud_r['mean']:.1f} dB, LATINO {lat_r['mean']:.1f}, "
          f"DPS {dps_r['mean']:.1f}; coverage {ud_r['coverage']:.2f} / {lat_r['coverage']:.2f} / "
          f"{dps_r['coverage']:.2f}; UD2M {dps_r['s_per_sample'] / ud_r['s_per_sample']:.0f}x faster than DPS")
    assert ud_r["mean"] > lat_r["mean"] - 1.0, f"{task}: UD2M is on par with LATINO or better"
    # fast mode's DPS has 100 steps (a 14x ratio measured on a quiet machine), full mode's 1000
    least_speedup = 5 if FAST else 50
    assert ud_r["s_per_sample"] * least_speedup < dps_r["s_per_sample"], \
        f"{task}: UD2M is far faster than DPS"
inp = results[("random_inpainting", "UD2M")]
assert inp["coverage"] > results[("random_inpainting", "LATINO")]["coverage"] + 0.2, \
    "inpainting: UD2M's 90% intervals cover far better than LATINO's"

# %% [markdown]
# In PSNR of the mean DPS stays ahead in full mode (at 32 samples on 4 held-out digits by 1.6 dB
# for inpainting and 0.6 dB for super-resolution: chapter 06), at more than a hundred times the
# cost per sample. (Fast mode's DPS, 100 steps, is not that DPS.) UD2M's intervals are
# slightly too wide (coverage above 0.9); LATINO's far too narrow.

# %% [markdown]
# ### More calls, or more training?
#
# The adapters are shared across $k$ and $t$, so a trained sampler runs as any $K \times N$
# sampler (`ud.with_calls(K, N)`). The paper uses $3 \times 3 = 9$ calls; the shipped samplers
# use the $K \times N$ of their model cards, chosen on an untrained sweep over held-out digits
# (table in `docs/notes/ud2m.md`): super-resolution wants more iterations per block,
# inpainting more outer steps. Here the same shipped adapters at the paper's $3 \times 3$, on the
# same digits and measurements:

# %%
by_calls = {}
for task, ud_ in samplers.items():
    by_calls[(task, f"UD2M {ud_.K} x {ud_.N} (shipped)")] = results[(task, "UD2M")]
    at_9 = ud_.with_calls(3, 3)
    by_calls[(task, "UD2M 3 x 3 (paper)")] = evaluate(
        lambda p, yy, g, n, u=at_9: u.sample(yy, n, generator=g, problem=p), task_problems(task))
display(table(by_calls))
for task, ud_ in samplers.items():
    gain = (by_calls[(task, f"UD2M {ud_.K} x {ud_.N} (shipped)")]["mean"]
            - by_calls[(task, "UD2M 3 x 3 (paper)")]["mean"])
    print(f"{task}: {ud_.nfe_per_sample} calls instead of 9: {gain:+.2f} dB (PSNR of the mean)")
    assert ud_.nfe_per_sample <= 16, "still a few-step sampler"
    # SR's gain is small: +0.4 dB on 8 held-out digits x 16 samples, +0.06 on fast mode's 2
    least = 0.0 if task == "random_inpainting" else -0.3
    if HELD_OUT:   # a claim about held-out digits (not asserted on prior samples)
        assert gain > least, f"{task}: the shipped K x N vs the paper's 3 x 3: {gain:+.2f} dB"

# %% [markdown]
# ### Where do the few steps lose? Start the chain from the true $x_t$
#
# `ud.sample_from(x_t, t, y)` runs the rest of the chain from a state at one of the outer times.
# Fed the *true* $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\varepsilon$ of the
# held-out digit, it shows what the later blocks would give if every earlier block had been
# perfect. At $t = 999$ that is the ordinary chain (the true $x_{999}$ is noise).

# %%
inp_ud = samplers["random_inpainting"]


def chain_from_truth(ud_, task, t):
    """PSNR of the sample mean when the chain starts at outer time t from the true x_t."""
    psnrs = []
    for i, x in enumerate(test_digits):
        prob = task_problems(task)(i)
        yy = prob.measure(x, generator=seeded(200 + i))
        x_t = mnist_prior.schedule.add_noise(x.expand(n_samples, *x.shape), t,
                                             generator=seeded(400 + i))
        xs_ = ud_.sample_from(x_t, t, yy, generator=seeded(300 + i), problem=prob)
        psnrs.append(pt.metrics.psnr(xs_.mean(0, keepdim=True), x[None]).item())
    return sum(psnrs) / len(psnrs)


from_truth = {t: chain_from_truth(inp_ud, "random_inpainting", t) for t in inp_ud.grid}
sched_m = mnist_prior.schedule
display(Markdown(
    "| start at outer time t (true x_t) | " + " | ".join(map(str, from_truth)) + " |\n|---|"
    + "---|" * len(from_truth) + "\n| noise of x_t / sqrt(ab_t): s(t) | "
    + " | ".join(f"{sched_m.sigma(t).item():.2f}" for t in from_truth)
    + " |\n| SNR weight ab_t / (1 - ab_t) | "
    + " | ".join(f"{sched_m.abar(t).item() / (1 - sched_m.abar(t).item()):.2g}" for t in from_truth)
    + " |\n| PSNR of the mean (dB) | " + " | ".join(f"{v:.2f}" for v in from_truth.values()) + " |"))
first, second, last = (from_truth[inp_ud.grid[i]] for i in (0, 1, -1))
assert last > first + 3, "given the true x_t, the last block alone is far better than the chain"
assert abs(second - first) < 1.5, "the true x_t at the second time barely helps: its noise hides it"

# %% [markdown]
# The first two blocks see $x_0$ through noise of $s(t) = 157$ and $4.9$: their $x_t$ says almost
# nothing about $x_0$, so even the true one does not help, and what the chain reaches is decided
# there, from $y$ and the prior alone. The paper's loss weights each block's $x_0$ error by the
# signal-to-noise ratio $\bar\alpha_t / (1 - \bar\alpha_t)$ (the table's third row): it spends
# the training on the last block, the one that already works. The shipped samplers are
# trained with `x0_weighting="uniform"` (every outer time counts alike) and LoRA on every layer;
# their model cards give the gain over the untrained sampler.

# %% [markdown]
# ### Fine-tuning a shipped sampler further
#
# Training picks up where a sampler left off: `pt.ud2m.train(..., init=ud)` copies its adapters
# and $\lambda$ (the shipped sampler itself is not changed) and extends its training curve. Each
# step draws clean digits, makes their $y$ on the fly (here with a fresh random mask each time)
# and trains one block at one outer time; on a 2-core CPU a step costs about 2 s at batch 32.
# The shipped samplers were made this way: 900 steps at lr 1e-3, then continued by 1800 more
# (`scripts/train_ud2m_mnist.py --init`; their model cards give both commands and the gain of
# each part). A few steps at a small learning rate:

# %%
card_inp = inp_ud.card
mask_seeds = torch.Generator().manual_seed(41)
finetune_steps = 3 if FAST else 30
tuned = pt.ud2m.train(
    mnist_prior, inp_ud.problem,
    pt.data.load("mnist", split="test")[:8000] if HELD_OUT else test_digits,
    generator=seeded(40), init=inp_ud, steps=finetune_steps, batch=8 if FAST else 32, lr=1e-4,
    K=inp_ud.K, N=inp_ud.N, rank=card_inp["rank"], adv_weight=0.0, train_times="grid",
    x0_weighting=card_inp["x0_weighting"],
    operators=lambda: pt.tasks.image_problem("random_inpainting", generator=mask_seeds))
before_after = {
    ("random_inpainting", f"shipped ({len(inp_ud.losses)} steps)"): results[("random_inpainting", "UD2M")],
    ("random_inpainting", f"+ {finetune_steps} steps"): evaluate(
        lambda p, yy, g, n: tuned.sample(yy, n, generator=g, problem=p),
        task_problems("random_inpainting"))}
display(table(before_after))
curve = torch.tensor(tuned.losses)
smooth = torch.nn.functional.avg_pool1d(curve[None, None], 25, 1).squeeze()
plt.figure(figsize=(6, 2.5))
plt.semilogy(smooth, label="shipped run (running mean of 25)")
plt.axvline(len(inp_ud.losses), color="k", ls=":", label="continued here")
plt.xlabel("training step"); plt.ylabel("x0 loss"); plt.legend(); plt.show()
assert tuned.losses[:len(inp_ud.losses)] == inp_ud.losses, "the curve is continued, not restarted"
assert len(tuned.losses) == len(inp_ud.losses) + finetune_steps
assert tuned.lam != inp_ud.lam, "the copy trained; the shipped sampler did not move"
assert abs(inp_ud.lam - card_inp["lam"]) < 1e-6
change = (before_after[("random_inpainting", f"+ {finetune_steps} steps")]["mean"]
          - results[("random_inpainting", "UD2M")]["mean"])
print(f"PSNR of the mean after {finetune_steps} more steps: {change:+.2f} dB")
assert abs(change) < 0.5, "a brief fine-tune at a small learning rate moves little"

# %% [markdown]
# ## 6. Changing the operator at inference
#
# The operator enters the block only through its prox, so a trained sampler accepts another operator.
# What holds? We give the inpainting sampler masks that keep 30% and 70% of the pixels (it was
# trained at 50%) and a box mask, and the super-resolution sampler a Gaussian-blur-then-decimate
# operator (it was trained on box averaging). LATINO, which has nothing trained, is the reference.

# %%
gaussian_sr = lambda i: pt.InverseProblem(pt.operators.SuperResolution(
    4, (1, 32, 32), kernel=pt.operators.gaussian_kernel(7, 1.5)), 0.05)
shifted = {"random, 30% observed": ("random_inpainting", task_problems("random_inpainting", observed=0.3)),
           "random, 70% observed": ("random_inpainting", task_problems("random_inpainting", observed=0.7)),
           "box inpainting": ("random_inpainting", task_problems("box_inpainting")),
           "SR x4, Gaussian kernel": ("sr4", gaussian_sr)}
shift_results = {}
for label, (task, make) in shifted.items():
    shift_results[(label, f"UD2M ({task})")] = evaluate(run_ud2m[task], make)
    shift_results[(label, "LATINO")] = evaluate(run_latino, make)
display(table(shift_results, first="inference operator"))

# %%
gaps = {label: shift_results[(label, f"UD2M ({task})")]["mean"] - shift_results[(label, "LATINO")]["mean"]
        for label, (task, _) in shifted.items()}
print("UD2M minus LATINO, PSNR of the mean (dB):", {k: round(v, 2) for k, v in gaps.items()})
assert gaps["random, 70% observed"] > -2, "an easier mask than the training one still works"
assert gaps["box inpainting"] > -2, "a box mask, never seen in training, is handled like LATINO does"
assert gaps["SR x4, Gaussian kernel"] > -2, "another SR kernel: no worse than LATINO"
assert all(math.isfinite(r["mean"]) for r in shift_results.values())

# %% [markdown]
# ## 7. Stepping through the K x N steps
#
# The stepper shows the $K N$ network calls of one MNIST sample: within a block, the prox output,
# its re-noised version and the adapted denoiser's $x^{(k)}$; after each block's last iteration the
# DDIM move to the next outer time.
#
# Its knob is $K \times N$. A trained sampler's adapters are shared across $k$ and $t$, so the
# drop-down does not pick another training run: it runs the *same* shipped adapters at another
# $K \times N$ (`ud.with_calls(K, N)`; section 5 compares the shipped one with the paper's
# $3 \times 3$, `docs/notes/ud2m.md` the others). "new seed" draws another chain from a fresh
# generator seed.

# %%
ud_inp = samplers["random_inpainting"]
x_show = test_digits[0]
show_prob = pt.tasks.image_problem("random_inpainting", generator=seeded(500))
show_y = show_prob.measure(x_show, generator=seeded(501))
calls = ud_inp.nfe_per_sample                      # K x N of the shipped sampler
k_by_n = {f"{ud_inp.K} x {ud_inp.N} (shipped)": ud_inp}
k_by_n.update({f"{K} x {Nout}": ud_inp.with_calls(K, Nout) for K, Nout in [(3, 3), (5, 3), (3, 5)]
               if (K, Nout) != (ud_inp.K, ud_inp.N)})
stepper = pt.widgets.step_through(ud_inp, prob=show_prob, y=show_y, n=4, generator=seeded(502),
                                  title="UD2M on MNIST random inpainting", knobs={"K x N": k_by_n})
assert len(stepper.frames) == calls
assert [s.extras["nfe"] for s in stepper.frames] == list(range(1, calls + 1))
first_png = stepper.image.value
stepper.slider.value = 5
assert stepper.image.value != first_png, "moving the slider shows another frame"
other = next(k for k in k_by_n if "shipped" not in k)
stepper.rerun(502, **{"K x N": k_by_n[other]})     # what the drop-down does
assert len(stepper.frames) == k_by_n[other].nfe_per_sample
stepper.rerun(502, **{"K x N": ud_inp})            # back to the shipped K x N
assert len(stepper.frames) == calls
stepper

# %%
stepper.filmstrip()
plt.show()

# %% [markdown]
# ## Summary
#
# * The unfolded block is LATINO conditioned on $x_t$: a closed-form prox with two quadratics,
#   a re-noise to $\tau$ and one denoiser call; the outer DDIM loop gives $K N$ calls per sample
#   (the paper's $3 \times 3 = 9$; the shipped MNIST samplers $4 \times 4$ and $5 \times 3$).
# * Trained with an $x_0$ loss and a conditional discriminator (only adapters and $\lambda$ move),
#   it reaches the posterior's location in 8-9 calls on the toy problem, as close as LATINO and
#   DiffPIR; DPS, with hundreds of calls and backward passes, stays closer. The residual error is in
#   the mode weights.
# * On MNIST the re-noise cap $\sigma'$ decides what the prior may fill in: at $2\sigma$ the
#   samplers cannot inpaint, at the public code's $\sigma$ (its factor 2 only converts $[0,1]$ units to
#   $[-1,1]$) they cannot super-resolve, at $13\sigma$ / $20\sigma$ they work before any training;
#   a few more calls per sample (15-16 instead of 9) add about a dB. The paper's SNR-weighted $x_0$
#   loss trains only the last block, which already works: the chain is decided in its first two
#   blocks, whose $x_t$ is nearly pure noise. Weighting every time alike (and LoRA on every layer)
#   makes the training count: +0.7 dB (inpainting) and +1.2 dB (super-resolution) over the
#   untrained samplers on held-out digits.
#   Both shipped samplers are on par with or better than LATINO at twice its calls, with intervals
#   that cover (LATINO's: far less), orders of magnitude faster than DPS, which stays ahead in PSNR.
# * The samplers accept other operators at inference: masks of other rates, a box mask and another
#   super-resolution kernel all hold up against LATINO.

# %% [markdown]
# ## References
#
# * Mbakam, Spence, Pereyra 2025 (UD2M: unfolding and distillation of LATINO), arXiv 2507.02686
# * Spagnoletti et al. 2025, *LATINO-PRO*, arXiv 2503.12615
# * Hu et al. 2021, *LoRA: low-rank adaptation of large language models*, arXiv 2106.09685
# * Chung et al. 2023 (DPS, the reference it is compared with), arXiv 2209.14687
