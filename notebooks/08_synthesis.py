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
# # Chapter 08: synthesis: one map of the methods, and how to choose one
#
# **Learning outcomes.** After this chapter you can
#
# * place every method of the course on two axes: zero-shot or trained per task, and how it pays
#   for agreeing with $y$ (a backward pass, a data step, training, importance weights);
# * read a benchmark table with its intervals and say which differences are real;
# * predict, before measuring, where a few-step sampler stands on a problem whose data inform only
#   a few directions;
# * choose a method for a new problem and say what you give up.
#
# **Prerequisites.** Chapters 00-07; the yardsticks are those of chapter 00 §4 (SW and its noise
# floor) and chapter 02 §1 (PSNR, SSIM, rank coverage, NFE, backward passes).
#
# **Study time.** About 2 hours: 1 hour of reading, 1 hour for exercises 08.1-08.3; the
# mini-project, exercise 08.4, is open-ended.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import csv
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt
from posterior_tutor.evaluation import image_suite, method_grid, properties, report
from posterior_tutor.exercises.scoring import sampler_score

DEVICE = pt.default_device()               # the fresh slice runs here; the toys stay on the CPU
FAST = pt.fast_mode()
torch.set_num_threads(1)
STORED = properties.stored_dir()           # the stored benchmark tables
print(f"fast mode: {FAST}, device: {DEVICE}")


def read_rows(name):
    """A stored table as dicts, numbers as floats."""
    with open(STORED / name) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v)
            except (TypeError, ValueError):
                pass
    return rows


def note(ok, text):
    """A claim about a stored table: printed (the table cannot change in this run)."""
    print(f"note (stored table): {text}: " + ("holds" if ok else "DOES NOT HOLD"))


toy_rows, image_rows = read_rows("toy.csv"), read_rows("images.csv")
print((STORED / "images.md").read_text().splitlines()[0])

# %% [markdown]
# ## 1. The map
#
# Every method of the course replaces the intractable likelihood of a noisy state,
# $p(y \mid x_t) = \int p(y \mid x_0)\, p(x_0 \mid x_t)\, dx_0$, by something it can afford, and pays
# for it in one of four currencies:
#
# * a **backward pass** through the network at every step (DPS: the gradient of
#   $\log p(y \mid \hat x_0(x_t))$);
# * a **data step on the denoised estimate**, proximal or Langevin, with no gradient through the
#   network (DiffPIR, DAPS, PnP-ULA, LATINO, Spin);
# * **training per task**, so that sampling is a few calls (UD2M) or one pass of a flow (APS);
# * **importance weights** on a cloud of particles, exact in the limit of many particles (MCGdiff,
#   `pt.sample("mcgdiff", ...)`; how close it gets at a given count: `docs/notes/smc.md`).
#
# The table below is generated from the library (family, backward passes) and from the stored
# benchmark tables `docs/benchmark/toy.csv` and `images.csv` (NFE, distances, calibration) and the
# shipped samplers' model cards (training time). "not measured" means no stored row has it.

# %%
props = properties.table()
display(Markdown(properties.markdown(props)))
fig = pt.viz.method_map.method_map(props)
plt.show()
by_method = {r["method"]: r for r in props}
assert [r["method"] for r in props if r["backward"]] == ["dps"], "only DPS differentiates the network"
assert all(r["train_s"] > 0 for r in props if r["family"] == "trained per task")

# %% [markdown]
# ## 2. Averaging samples, and what it says about their spread
#
# The image tables report the PSNR of one sample and the PSNR of the mean of $k$ samples. For an
# *exact* sampler the gap between the two is not an accident of the data: it follows from the
# fact that the truth $x$ and each sample are independent draws from the same posterior.
#
# ### Exercise 08.1 (derive, then verify): the gain of the $k$-sample mean
#
# Let $x, x_1, \dots, x_k$ be i.i.d. draws from $p(x \mid y)$ with covariance $\Sigma$. Derive
# $\mathbb E\,|x_1 - x|^2$ and $\mathbb E\,|\bar x_k - x|^2$ with $\bar x_k = \frac1k \sum_i x_i$,
# and from them the PSNR gain of $\bar x_k$ over one sample, in dB, as a function of $k$ only.
# Write `mean_gain_db(k)`. The check compares it with the two expected errors computed from a
# covariance; the cell after it measures the gain on the 2D problem's exact posterior.

# %% tags=["exercise"]
# Exercise 08.1: your answer
def mean_gain_db(k):
    """dB by which the k-sample mean beats one sample, for an exact sampler."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("08.1", mean_gain_db)

# %% [markdown]
# **The reveal.** Write $x_1 - x = (x_1 - m) - (x - m)$ with $m$ the posterior mean: the two parts
# are independent with mean zero, so $\mathbb E|x_1 - x|^2 = 2\,\mathrm{tr}\,\Sigma$. For the mean,
# $\bar x_k - m$ has covariance $\Sigma / k$, so $\mathbb E|\bar x_k - x|^2 =
# \mathrm{tr}\,\Sigma\,(1 + 1/k)$, and the gain is $10 \log_{10} \frac{2k}{k + 1}$ dB: $10\log_{10}(8/5)$
# at $k = 4$, $10 \log_{10} 2$ as $k \to \infty$ (the posterior mean itself). Measured on the 2D problem, over
# many measurements (the truth drawn from the prior each time, as the derivation assumes):

# %%
def gain_formula(k):
    return 10 * math.log10(2 * k / (k + 1))


tp = pt.toy.bimodal_problem_2d()
g = torch.Generator().manual_seed(0)
M, K = (300, 4) if FAST else (2000, 4)
truths = tp.prior.sample(M, generator=g)
err_single = err_mean = 0.0
for x in truths:
    y = tp.problem.measure(x, generator=g)
    draws = tp.prior.posterior(tp.problem, y).sample(K, generator=g)
    err_single += (draws[0] - x).pow(2).sum().item()
    err_mean += (draws.mean(0) - x).pow(2).sum().item()
measured_gain = 10 * math.log10(err_single / err_mean)
print(f"measured gain at k = {K}: {measured_gain:.2f} dB over {M} measurements; "
      f"formula {gain_formula(K):.2f} dB")
assert abs(measured_gain - gain_formula(K)) < (0.5 if FAST else 0.25)

# %% [markdown]
# A sampler whose samples are *too close to each other* (under-dispersed) gains less than this by
# averaging; one whose samples are too spread gains more. The stored image table has both PSNRs
# for every method at $k$ samples (read below): the gain is a quick, free reading of the spread,
# next to the rank coverage (chapter 02 §1), which reads it pixel by pixel.

# %%
# the samplers' own rows (not the trivial floors, peers or cross-task UD2M), at the table's usual k
own = [r for r in image_rows if not r["method"].startswith(("deepinv", "trivial"))
       and "trained on" not in r["method"]]
ks = [int(r["samples"]) for r in own]
k_img = max(set(ks), key=ks.count)
gains = {}
for r in own:
    if int(r["samples"]) != k_img:
        continue
    gains.setdefault(r["method"], []).append(r["psnr_mean"] - r["psnr_single"])
gain_line = ", ".join(f"{m} {sum(v) / len(v):.2f}" for m, v in sorted(gains.items()))
display(Markdown(f"Mean gain of the {k_img}-sample mean over one sample, in dB, over the stored "
                 f"tasks (exact sampler: {gain_formula(k_img):.2f}): {gain_line}."))
least = min(gains, key=lambda m: sum(gains[m]) / len(gains[m]))
note(least == "aps", f"the flow (APS) gains least: its samples barely differ ({least} gains least)")

# %% [markdown]
# ## 3. The toy problems: who finds the posterior?
#
# The stored toy benchmark (`docs/benchmark/toy.md`) measures every method against the exact
# posterior of the 2D problem and of the $d = 16$ problem (a mixture of five Gaussians seen through
# a rank-4 operator).

# %%
display(Markdown((STORED / "toy.md").read_text().split("\n", 2)[2]))
toy = {(r["problem"], r["method"].split(" (")[0]): r for r in toy_rows}

# %% [markdown]
# ### Exercise 08.2 (predict, then run): LATINO in 16 dimensions
#
# Before the next cell runs LATINO (8 network calls) on the $d = 16$ problem, predict where its
# samples land, measured as SW to the exact posterior divided by the SW of *prior* samples (which
# ignore $y$): "much closer than the prior" (below $0.7$), "about as far as the prior" ($0.7$ to
# $1.15$), or "farther than the prior" (above $1.15$). Think about how many of the 16 directions a
# rank-4 operator informs, and what chapter 03 measured about LATINO's spread.

# %% tags=["exercise"]
# Exercise 08.2: your prediction
latino_d16 = None   # one of the three options, as a string

# %%
d16 = pt.toy.gmm_problem()
n16 = 500 if FAST else 2000
g16 = torch.Generator().manual_seed(1)
exact16 = d16.posterior.sample(n16, generator=g16)
prior16 = d16.prior.sample(n16, generator=g16)
latino16 = pt.sample("latino", d16.prior.denoiser(), d16.problem, d16.y, n=n16, generator=g16)


def sw(a, b):
    return pt.metrics.sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(2)).item()


ratio16 = sw(latino16, exact16) / sw(prior16, exact16)
band16 = pt.exercises.ch08.d16_band(ratio16)          # which of the three options it falls in
print(f"LATINO on d = 16: SW / prior's SW = {ratio16:.2f}: {band16}")

# %%
pt.exercises.check("08.2", latino_d16, measured=band16)

# %% [markdown]
# **The $d = 16$ result, plainly.** The cell above measured it in this run; the stored table says
# the same of the other zero-shot few-step methods:

# %%
few = [m for m in ("diffpir", "latino", "spin", "daps", "pnp_ula", "ud2m", "dps")
       if ("gmm-d16-rank4", m) in toy]
line = ", ".join(f"{m} {toy[('gmm-d16-rank4', m)]['sw_over_prior']:.2f}" for m in few)
display(Markdown(
    f"SW to the exact $d = 16$ posterior as a multiple of the prior's distance (stored table): "
    f"{line}. A value near 1 is no better than ignoring $y$. Only the methods that pay more per "
    "sample get clearly closer: DPS with a backward pass at each of its "
    f"{toy[('gmm-d16-rank4', 'dps')]['nfe']:.0f} steps, and UD2M with its training."))
assert 0.7 <= ratio16 <= 1.15, "LATINO on d = 16 is about as far as the prior (measured here)"
note(toy[("gmm-d16-rank4", "dps")]["sw_over_prior"] < 0.7, "DPS is the closest zero-shot method on d = 16")

# %% [markdown]
# ## 4. MNIST: quality against cost
#
# The stored image benchmark (`docs/benchmark/images.md`; its header says how many held-out
# digits and samples, and the command that regenerates it), with the trade-off plot: PSNR of the
# mean against seconds per sample.

# %%
display(Markdown((STORED / "images.md").read_text().split("\n", 4)[4]))


def as_image_rows(rows):
    fields = set(image_suite.ImageRow.__dataclass_fields__)
    return [image_suite.ImageRow(**{k: (v if k in ("task", "method", "truth") else
                                        (int(v) if k in ("images", "samples") else float(v)))
                                    for k, v in r.items() if k in fields}) for r in rows]


fig = report.plot_tradeoffs(as_image_rows(image_rows))
plt.show()
img = {(r["task"], r["method"]): r for r in image_rows}
tasks = sorted({r["task"] for r in image_rows})

# %% [markdown]
# ### Every method on the same digits
#
# One measurement per digit (super-resolution by $4\times$), one sample of each method on that same
# $y$ (the grid of chapter 05, read from its stored run).

# %%
mnist_prior = pt.pretrained("mnist", device=DEVICE)
mnist_prior.clip = 1.0
GRID_DIGITS = 2
grid_res = pt.files.stored.run("ch05_method_grid",
                               lambda: method_grid.compute(mnist_prior, "sr4", n_digits=GRID_DIGITS),
                               settings=dict(task="sr4", n_digits=GRID_DIGITS, fast=False),
                               command="set RECOMPUTE = True in chapter 05 and run it")
method_grid.plot(grid_res, title=f"super-resolution x4, {grid_res['digits']}")
plt.show()

# %% [markdown]
# ### UD2M against DPS, on the same digits
#
# Two more stored tables (`docs/benchmark/ud2m_vs_dps/<task>`, commands in their headers) put the
# shipped UD2M samplers beside DPS on the two tasks UD2M was trained for (their sizes are in the
# table; `docs/notes/benchmark.md` gives the paired intervals).

# %%
versus = []
for task in ("random_inpainting", "sr4"):
    run = {r["method"]: r for r in read_rows(f"ud2m_vs_dps/{task}/images.csv")}
    versus.append((task, run["ud2m"], run["dps"]))


def rank_pair(u, d):
    if "rank_coverage" not in u:
        return "not in this table"
    return f"{u['rank_coverage']:.2f} / {d['rank_coverage']:.2f}"


lines = [f"| {t} | {u['images']:.0f} x {u['samples']:.0f} | {u['psnr_mean'] - d['psnr_mean']:+.2f} "
         f"| {rank_pair(u, d)} | {d['s_per_sample'] / u['s_per_sample']:.0f} |" for t, u, d in versus]
display(Markdown("| task | images x samples | UD2M - DPS, PSNR of the mean (dB) | rank coverage "
                 "UD2M / DPS | DPS time / UD2M time |\n|---|---|---|---|---|\n" + "\n".join(lines)))

# %% [markdown]
# ## 5. Are our baselines as good as DeepInverse's?
#
# Same prior, problems and measurements; deepinv's DPS and DiffPIR at our settings
# (`posterior_tutor/evaluation/peer.py` has the mappings). Two stored runs
# (`docs/benchmark/peer/dps`, `.../diffpir`) compare each on more images.

# %%
checked = []
for run in ("dps", "diffpir"):
    peer_img = {(r["task"], r["method"]): r for r in read_rows(f"peer/{run}/images.csv")}
    for (task, name), ours in sorted(peer_img.items()):
        theirs = peer_img.get((task, f"deepinv {name}"))
        if theirs is not None:
            checked.append((task, name, ours["psnr_mean"] - theirs["psnr_mean"],
                            ours["s_per_sample"] / theirs["s_per_sample"],
                            int(ours["images"]), int(ours["samples"])))
display(Markdown("| task | sampler | PSNR ours - deepinv (dB) | time ours / deepinv | images x samples |\n"
                 "|---|---|---|---|---|\n" + "\n".join(
                     f"| {t} | {m} | {d:+.2f} | {r:.2f} | {k} x {n} |" for t, m, d, r, k, n in checked)))
worst = max(abs(c[2]) for c in checked)
display(Markdown(f"Ours are within {worst:.2f} dB of deepinv's on these runs."))

# %% [markdown]
# ## 6. A fresh slice, run here
#
# The stored tables could be stale; a small slice is rerun now (one task, one digit, a few samples,
# the benchmark's fast options: DPS with `steps=100`) and its orderings, which do not depend on
# the sample size, are asserted.

# %%
fresh = image_suite.run_image_suite(fast=True, task_names=["random_inpainting"],
                                    method_names=["latino", "spin", "ud2m", "dps"],
                                    n_images=1, n_samples=4, peer=False, progress=False, device=DEVICE)
display(Markdown(report.images_markdown(fresh)))
by = {r.method: r for r in fresh}
assert by["dps"].backward == by["dps"].nfe > 0
assert all(by[m].backward == 0 for m in ("latino", "spin", "ud2m"))
assert by["ud2m"].nfe == pt.ud2m.pretrained("mnist-random-inpainting").nfe_per_sample
assert by["latino"].nfe == 8
assert by["dps"].s_per_sample > 5 * max(by[m].s_per_sample for m in ("latino", "ud2m"))

# %% [markdown]
# ## 7. Build one: a sampler on a budget
#
# ### Exercise 08.3 (build): the 2D posterior in at most 20 network calls
#
# Write `budget_sampler(den, problem, y, n, generator)` returning `(n, 2)` samples of the 2D
# problem's posterior, calling the denoiser `den(x_t, t)` at most 20 times (on the whole batch at
# once) and never differentiating through it. You have the whole course: the schedule
# (`den.schedule.abar(t)`), the operator (`problem.operator.adjoint`), the proximal data step
# (`problem.prox(u, y, rho)`). The check runs it with the exact denoiser and scores the SW to the
# exact posterior as a multiple of the noise floor; at most $8.5$ passes.

# %% tags=["exercise"]
# Exercise 08.3: your answer
def budget_sampler(den, problem, y, n, generator):
    """(n, 2) posterior samples in at most 20 denoiser calls."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("08.3", budget_sampler)

# %% [markdown]
# **The reveal.** The cheapest recipe of the course is LATINO's (chapter 03): from $A^\top y$, at a
# few decreasing times, noise to $t$, denoise in one call, then a proximal step towards $y$ with
# $\rho^2 = c\,|A u - y|\,(1 - \bar\alpha_t)$. The library's LATINO at its default 8 calls, and
# DPS at 1000 calls with a backward pass each, on the same score:

# %%
def library(name):
    return lambda den, problem, y, n, generator: pt.sample(name, den, problem, y, n=n,
                                                           generator=generator)


scores = {"latino": sampler_score(library("latino"), "2d-bimodal", n=1000)[0]}
if not FAST:
    scores["dps"] = sampler_score(library("dps"), "2d-bimodal", n=1000)[0]
print({m: round(v, 2) for m, v in scores.items()}, "x the noise floor (2D, n = 1000)")
assert scores["latino"] <= 8.5

# %% [markdown]
# ## 8. Choosing a method
#
# A short guide, read off the map and the tables above (each line's numbers are from this run or
# from the named stored files):

# %%
r = by_method
guide = [
    f"* **You need the posterior's shape, and can afford it:** an SMC sampler (MCGdiff) reweights "
    "particles towards the exact posterior on linear Gaussian problems, exact only in the limit "
    "(its measured distance against the particle count: `docs/notes/smc.md`); "
    f"among the others DPS is closest on both toys ({r['dps']['sw_floor_2d']:.1f}x the floor in "
    f"2D, {r['dps']['sw_prior_d16']:.2f}x the prior's distance on d = 16), at "
    f"{r['dps']['nfe_2d']:.0f} calls each with a backward pass.",
    f"* **A new operator, no training, a tight budget:** LATINO ({r['latino']['nfe_2d']:.0f} calls) "
    f"or Spin ({r['spin']['nfe_2d']:.0f}); both take nonlinear operators and no gradient through the "
    "network, and both under-disperse: read their intervals with care.",
    f"* **The same task many times:** train UD2M (a few steps per sample, "
    f"{r['ud2m']['train_s'] / 60:.0f} CPU minutes of training per shipped task) or APS (one pass of "
    "a flow), and check calibration on held-out data before trusting them.",
    "* **Only a denoiser and a proximal operator:** DiffPIR or DAPS; PnP-ULA if you can pay "
    f"{r['pnp_ula']['nfe_2d']:.0f} calls for an asymptotically exact chain (with its step-size bias, "
    "chapter 03).",
]
display(Markdown("\n".join(guide)))

# %% [markdown]
# ### Exercise 08.4 (mini-project, optional): closer than LATINO, no backward pass
#
# Improve on exercise 08.3 with a larger budget: at most 100 network calls, no backward pass,
# and a score at most $7.0$ (LATINO's default is printed above). Ideas: more steps at low noise, a
# different step-size rule, a final step that samples instead of taking a mean. Add your sampler
# to the library through [`docs/adding_a_method.md`](../docs/adding_a_method.md) and run the toy
# benchmark on it.

# %% tags=["exercise"]
# Exercise 08.4: your answer
def project_sampler(den, problem, y, n, generator):
    """(n, 2) posterior samples in at most 100 denoiser calls, no backward pass."""
    raise NotImplementedError("your answer here")


# %%
pt.exercises.check("08.4", project_sampler)

# %% [markdown]
# ## 9. What the course leaves out
#
# * **Latent diffusion** (Rombach et al. 2022, arXiv 2112.10752) and its posterior samplers
#   (PSLD, Rout et al. 2023, arXiv 2307.00619; ReSample, Song et al. 2024, arXiv 2307.08123): the
#   prior lives in an autoencoder's latent space; LATINO's paper works there, we stay in pixels.
# * **DDRM** (Kawar et al. 2022, arXiv 2201.11793) and **DDNM** (Wang et al. 2023, arXiv
#   2212.00490): samplers in the SVD basis of a linear $A$ (deepinv's DDRM is in the peer runs).
# * **$\Pi$GDM** (Song et al. 2023, ICLR): DPS with a Gaussian $p(x_0 \mid x_t)$ of the right
#   covariance, a pseudo-inverse guidance.
# * **Variational and other SMC samplers**: RED-diff (Mardani et al. 2024, arXiv 2305.04391),
#   the twisted diffusion sampler for nonlinear likelihoods (Wu et al. 2023, arXiv 2306.17775).
# * Video, 3D, audio and text-conditioned priors, and the large benchmarks (InverseBench, Zheng
#   et al. 2025, arXiv 2503.11043).
#
# ## Summary
#
# * Every method replaces $p(y \mid x_t)$ and pays for it: gradients (DPS), data steps on the
#   denoised estimate (DiffPIR, DAPS, PnP-ULA, LATINO, Spin), training (UD2M, APS), or particles
#   and weights (SMC: MCGdiff).
# * The distance to the exact posterior, the gain of averaging and the rank coverage read the same
#   property from three sides: whether the samples have the posterior's spread.
# * With few directions measured (the $d = 16$ problem), the few-step zero-shot methods are about as
#   far from the posterior as the prior itself; paying more per sample is what gets closer.
#
# ## References
#
# * Chung et al. 2023 (DPS), arXiv 2209.14687; Zhu et al. 2023 (DiffPIR), arXiv 2305.08995; Zhang et
#   al. 2024 (DAPS), arXiv 2407.01521; Laumont et al. 2022 (PnP-ULA), arXiv 2103.04715
# * Spagnoletti et al. 2025 (LATINO), arXiv 2503.12615; Mbakam, Spence, Pereyra 2025 (UD2M), arXiv
#   2507.02686; Shtanchaev et al. 2026 (Spin), arXiv 2603.07860; Mammadov, Chung, Ye 2024 (APS),
#   arXiv 2407.17907
# * Daras et al. 2024, *A survey on diffusion models for inverse problems*, arXiv 2410.00083
# * DeepInverse (the outside peer), https://deepinv.github.io
