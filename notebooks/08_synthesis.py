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
# # Chapter 08: the results, side by side
#
# Every method of chapters 00-06 measured in **one run, on one machine, with the same prior**:
#
# * toy problems with an exact posterior (2D bimodal, $d = 16$): the **sliced Wasserstein distance**
#   (SW) to exact posterior samples: the average, over random directions, of the 1D Wasserstein
#   distance between the two sample sets projected on the direction; reported as a multiple of the
#   exact-sampling noise floor (the SW between two independent sets of exact samples);
# * MNIST tasks ($\sigma = 0.05$, held-out digits): PSNR and SSIM of single samples and of the
#   sample mean, calibrated coverage (defined in section 2), **NFE** (network evaluations per
#   sample), **backward** (backward passes through the network per sample), time and memory;
# * DeepInverse's DPS and DiffPIR on the same prior and problems, as an outside check that our
#   baselines are not weaker than a well-known library's.
#
# The stored tables in `docs/benchmark/` come from the commands in their headers (on a CPU the full
# image suite takes hours, on a GPU minutes). This chapter reads them, plots the trade-offs, shows
# every method's reconstruction of the same digits, and reruns a small slice in this run, where its
# claims are asserted; what it reads from the stored tables is printed as notes.
#
# Notation: one table for the whole course, [`docs/notation.md`](../docs/notation.md).

# %%
import csv
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import posterior_tutor as pt
from posterior_tutor.evaluation import image_suite, report
from posterior_tutor.evaluation import method_grid

DEVICE = pt.default_device()               # the fresh slice and any recomputed grid run here
FAST = pt.fast_mode()
torch.set_num_threads(1)
STORED = Path(pt.__file__).resolve().parent.parent / "docs" / "benchmark"
print(f"fast mode: {FAST}, device: {DEVICE}")


def read_rows(name):
    with open(STORED / name) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v)
            except ValueError:
                pass
    return rows


def note(ok, text):
    """A claim about a committed table: printed (the table cannot change in this run)."""
    print(f"note (stored table): {text}: " + ("holds" if ok else "DOES NOT HOLD"))


toy_rows, image_rows = read_rows("toy.csv"), read_rows("images.csv")
print((STORED / "images.md").read_text().splitlines()[0])
print(f"{len(toy_rows)} toy rows, {len(image_rows)} image rows")

# %% [markdown]
# ## 1. Toy problems: who finds the posterior?

# %%
display(Markdown((STORED / "toy.md").read_text().split("\n", 2)[2]))
toy = {(r["problem"], r["method"].split(" (")[0]): r for r in toy_rows}
for problem in ("2d-bimodal", "gmm-d16-rank4"):
    posterior_methods = {m: r for (p, m), r in toy.items() if p == problem and r["nfe"] > 0}
    best = min(posterior_methods, key=lambda m: posterior_methods[m]["sw"])
    print(f"{problem}: closest to the exact posterior: {best} "
          f"({posterior_methods[best]['sw_over_floor']:.1f} x the noise floor)")
    note(toy[(problem, "dps")]["backward"] == toy[(problem, "dps")]["nfe"] > 0,
         f"{problem}: DPS makes one backward pass per network call")
    note(all(toy[(problem, m)]["backward"] == 0 for m in ("diffpir", "latino", "spin", "ud2m")),
         f"{problem}: DiffPIR, LATINO, Spin, UD2M need no backward pass")

# %%
few = ("latino", "ud2m", "spin")
d2 = {m: toy[("2d-bimodal", m)] for m in ("dps",) + few}
d16 = {m: toy[("gmm-d16-rank4", m)] for m in ("dps", "prior samples") + few}
display(Markdown(
    f"DPS, with a backward pass through the network at each of its {d2['dps']['nfe']:.0f} steps, is "
    f"at {d2['dps']['sw_over_floor']:.1f} times the noise floor in 2D and "
    f"{d16['dps']['sw_over_floor']:.1f} on $d = 16$. The few-step methods ("
    + ", ".join(f"{m} {d2[m]['nfe']:.0f} calls" for m in few)
    + ") are at " + ", ".join(f"{d2[m]['sw'] / d2['dps']['sw']:.1f}" for m in few)
    + " times DPS's distance in 2D and " + ", ".join(f"{d16[m]['sw'] / d16['dps']['sw']:.1f}" for m in few)
    + f" on $d = 16$ (prior samples: {d16['prior samples']['sw'] / d16['dps']['sw']:.1f}). On $d = 16$ "
    "most directions are not measured: a few corrections through $A$ fix the measured directions and "
    "leave the rest to the prior, and only the backward pass through the network (DPS) reaches them."))

# %% [markdown]
# ## 2. MNIST: quality against cost
#
# **Coverage, calibrated.** For each pixel, the rank of the true value among the $n$ samples gives
# a randomised probability integral transform $u$, uniform on $[0, 1]$ for an exact sampler at any
# $n$. The **rank coverage** (`pt.metrics.rank_coverage`) is the share of pixels with $u$ in the
# central band $[0.05, 0.95]$: $0.9$ for an exact sampler, less when the samples are too
# concentrated, more when too spread. The older column `coverage` (truth inside the samples'
# interpolated 5-95 quantiles, `pt.metrics.coverage`) is biased low with few samples (about
# $0.9\,(n-1)/(n+1)$ for an exact sampler: $0.54$ at $n = 4$), so it is not read against $0.9$.

# %%
display(Markdown((STORED / "images.md").read_text().split("\n", 4)[4]))
HAS_RANK = "rank_coverage" in image_rows[0]
print("the stored image table has the calibrated column rank_coverage" if HAS_RANK else
      "the stored image table has no rank_coverage column (it predates the calibrated reading): its "
      "`coverage` column is the uncalibrated one and is not read here; regenerate it with the command "
      "in its header")


def as_image_rows(rows):
    fields = set(image_suite.ImageRow.__dataclass_fields__)
    return [image_suite.ImageRow(**{k: (v if k in ("task", "method", "truth") else
                                        (int(v) if k in ("images", "samples") else float(v)))
                                    for k, v in r.items() if k in fields}) for r in rows]


fig = report.plot_tradeoffs(as_image_rows(image_rows))
plt.show()

# %%
img = {(r["task"], r["method"]): r for r in image_rows}
tasks = sorted({r["task"] for r in image_rows})
for task in tasks:
    dps = img.get((task, "dps"))
    for m in ("spin", "ud2m", "aps"):
        r = img.get((task, m))
        if dps and r:
            print(f"{task:18s} {m:5s} {r['psnr_mean']:.2f} dB in {r['s_per_sample']:.3f} s, DPS "
                  f"{dps['psnr_mean']:.2f} dB in {dps['s_per_sample']:.3f} s "
                  f"({dps['s_per_sample'] / r['s_per_sample']:,.0f}x slower)")
    spin = img.get((task, "spin"))
    if dps and spin:
        note(spin["backward"] == 0 < dps["backward"], f"{task}: Spin needs no backward pass, DPS does")

# %% [markdown]
# ### Every method on the same digits
#
# One measurement per digit (super-resolution by $4\times$, two held-out digits), one sample of
# each method on that same $y$: the grid of chapter 05, read from its stored run
# `data/runs/ch05_method_grid.pt` (DPS with 1000 steps takes minutes per digit on a CPU).

# %%
mnist_prior = pt.pretrained("mnist", device=DEVICE)
mnist_prior.clip = 1.0
GRID_DIGITS = 2                            # the grid of chapter 05: two held-out digits
grid_res = pt.files.stored.run("ch05_method_grid", lambda: method_grid.compute(mnist_prior, "sr4", n_digits=GRID_DIGITS),
                         settings=dict(task="sr4", n_digits=GRID_DIGITS, fast=False),
                         command="set RECOMPUTE = True in chapter 05 and run it")
method_grid.plot(grid_res, title=f"super-resolution x4, {grid_res['digits']}")
plt.show()

# %% [markdown]
# ### UD2M against DPS at 32 samples
#
# A 4-sample mean is noisy and flatters a sampler whose samples agree with each other. Two more
# stored runs (`docs/benchmark/ud2m_vs_dps/<task>`, commands in their headers) put the shipped UD2M
# samplers beside DPS at 32 samples per image, on held-out digits, for the two tasks they were
# trained for.

# %%
versus = []
for task in ("random_inpainting", "sr4"):
    run = {r["method"]: r for r in read_rows(f"ud2m_vs_dps/{task}/images.csv")}
    versus.append((task, run["ud2m"], run["dps"]))
rank_in = "rank_coverage" in versus[0][1]
display(Markdown(
    "| task | images x samples | UD2M - DPS, PSNR of the mean (dB) | UD2M - DPS, single (dB) | "
    "rank coverage UD2M / DPS | DPS time / UD2M time |\n|---|---|---|---|---|---|\n" + "\n".join(
        f"| {t} | {u['images']:.0f} x {u['samples']:.0f} | {u['psnr_mean'] - d['psnr_mean']:+.2f} | "
        f"{u['psnr_single'] - d['psnr_single']:+.2f} | "
        + (f"{u['rank_coverage']:.2f} / {d['rank_coverage']:.2f}" if rank_in else "absent")
        + f" | {d['s_per_sample'] / u['s_per_sample']:.0f} |" for t, u, d in versus)))
if not rank_in:
    print("these two stored runs have no rank_coverage column (they predate the calibrated reading)")
display(Markdown(
    "Where UD2M's few steps lose (the early blocks, which see $x_0$ only through noise) is the "
    "subject of chapter 04; its training history: [`docs/notes/ud2m.md`](../docs/notes/ud2m.md)."))

# %% [markdown]
# ## 3. Are our baselines as good as DeepInverse's?
#
# Same prior, same problems, same measurements; deepinv's samplers at our settings (DPS with the
# paper's step size, DiffPIR with the same lambda and time grid; see `posterior_tutor/evaluation/peer.py` for
# the mappings).

# %%
peer_rows = []
for task in tasks:
    for name in ("dps", "diffpir"):
        ours, theirs = img.get((task, name)), img.get((task, f"deepinv {name}"))
        if ours and theirs:
            peer_rows.append((task, name, ours["psnr_mean"] - theirs["psnr_mean"],
                              ours["s_per_sample"] / theirs["s_per_sample"]))
display(Markdown("| task | sampler | PSNR ours - deepinv (dB) | time ours / deepinv |\n|---|---|---|---|\n"
                 + "\n".join(f"| {t} | {m} | {d:+.2f} | {r:.2f} |" for t, m, d, r in peer_rows)))

# %% [markdown]
# With a few images per task the PSNR of a 4-sample mean moves from run to run by more than the
# differences above. Two more stored runs (`docs/benchmark/peer/dps` and `.../diffpir`, each command
# in its header) compare only DPS, and only DiffPIR, with deepinv's, on more images and samples, in
# one run each, at the same settings. The difference of two PSNRs on the same images and
# measurements is much less noisy than either PSNR.

# %%
checked = []
for run in ("dps", "diffpir"):
    print((STORED / "peer" / run / "images.md").read_text().splitlines()[2][:160], "...")
    peer_img = {(r["task"], r["method"]): r for r in read_rows(f"peer/{run}/images.csv")}
    for (task, name), ours in sorted(peer_img.items()):
        theirs = peer_img.get((task, f"deepinv {name}"))
        if theirs is None:
            continue
        gap = ours["psnr_mean"] - theirs["psnr_mean"]
        ratio = ours["s_per_sample"] / theirs["s_per_sample"]
        checked.append((task, name, gap, ratio, int(ours["images"]), int(ours["samples"])))
display(Markdown("| task | sampler | PSNR ours - deepinv (dB) | time ours / deepinv | images x samples |\n"
                 "|---|---|---|---|---|\n" + "\n".join(
                     f"| {t} | {m} | {d:+.2f} | {r:.2f} | {k} x {n} |" for t, m, d, r, k, n in checked)))
worst = max(abs(g) for _, _, g, *_ in checked)
slowest = max(r for _, _, _, r, *_ in checked)
display(Markdown(f"Ours are within {worst:.2f} dB of deepinv's and at most {slowest:.2f} times its time "
                 "per sample on these runs."))

# %% [markdown]
# deepinv's DiffPIR intervals cover more than ours in these tables. That is an output convention,
# not better calibration: deepinv returns the last noisy state (noise level $0.01$) where we return
# the last denoised, data-consistent estimate; adding that noise to our samples brings their
# coverage to deepinv's (`peer.py` has the measurement).

# %% [markdown]
# ### Exercise 08.1: the PSNR of the posterior mean
#
# The tables report the **PSNR of the mean**: average the samples of one measurement, then compare
# that one image with the truth, $10\log_{10}(\text{range}^2/\text{MSE})$ with range 2 for images in
# $[-1, 1]$. Write `psnr_of_mean(samples, x_true, data_range=2.0)` (samples `(n, C, H, W)`, `x_true`
# `(C, H, W)`); the checker compares with `pt.metrics.psnr(samples.mean(0), x_true)`.

# %% tags=["exercise"]
# Exercise 08.1: your answer (the solution: pt.exercises.solution("08.1"))
def psnr_of_mean(samples, x_true, data_range=2.0):
    """PSNR (dB) of the samples' mean against the true image."""
    raise NotImplementedError("average, then 10 log10(range^2 / MSE)")


# %%
pt.exercises.check("08.1", psnr_of_mean)

# %% [markdown]
# ### Exercise 08.2: the coverage of a credible interval
#
# The plain **coverage** at level $0.9$ is the fraction of pixels whose true value lies inside the
# samples' central interval at that level, between the empirical $5\%$ and $95\%$ quantiles of that
# pixel over the samples (`torch.quantile`, linear interpolation). With many samples a calibrated
# sampler covers about $90\%$ of the pixels (with few, less: hence the rank coverage of section 2).
# Write `coverage(samples, x_true, level=0.9)`; the checker compares with `pt.metrics.coverage`.

# %% tags=["exercise"]
# Exercise 08.2: your answer (the solution: pt.exercises.solution("08.2"))
def coverage(samples, x_true, level=0.9):
    """Fraction of coordinates of x_true inside the samples' central `level` interval."""
    raise NotImplementedError("per-pixel quantiles, then the fraction inside")


# %%
pt.exercises.check("08.2", coverage)

# %% [markdown]
# ## 4. A fresh slice, run here
#
# The stored tables could be stale; a small slice is rerun now (one task, one image, a few
# samples, the benchmark's fast options: DPS with `steps=100`) and its orderings, which do not
# depend on the sample size, are asserted.

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
print({m: round(r.rank_coverage, 2) for m, r in by.items()}, "rank coverage (0.9: calibrated)")
assert by["ud2m"].rank_coverage > by["latino"].rank_coverage, "UD2M's samples are better spread than LATINO's"

# %% [markdown]
# ## What each method buys
#
# Computed from the stored tables above (image rows: mean over the tasks where both the method and
# DPS ran; toy rows: the 2D problem).

# %%
def buys(m):
    pairs = [(img[(t, m)], img[(t, "dps")]) for t in tasks if (t, m) in img and (t, "dps") in img]
    if not pairs:
        return None
    k = len(pairs)
    gap = sum(r["psnr_mean"] - d["psnr_mean"] for r, d in pairs) / k
    speed = sum(d["s_per_sample"] / r["s_per_sample"] for r, d in pairs) / k
    nfe = sum(r["nfe"] for r, _ in pairs) / k
    back = sum(r["backward"] for r, _ in pairs) / k
    rc = sum(r.get("rank_coverage", math.nan) for r, _ in pairs) / k if HAS_RANK else math.nan
    return k, gap, speed, nfe, back, rc


WHAT = {"dps": "guidance through the network at every step",
        "diffpir": "a data prox at every step, no backward pass",
        "daps": "decoupled annealing with Langevin steps, no backward pass",
        "latino": "a few denoise-prox steps (chapter 03)",
        "ud2m": "a few steps of a sampler trained per task (chapter 04)",
        "spin": "a warm start and a few pixel-space corrections (chapter 05)",
        "aps": "one pass of a flow trained per task (chapter 06)"}
lines = []
for m, what in WHAT.items():
    b = buys(m)
    if b is None:
        continue
    k, gap, speed, nfe, back, rc = b
    toy_part = (f"; 2D toy SW {toy[('2d-bimodal', m)]['sw_over_floor']:.1f} x the floor"
                if ("2d-bimodal", m) in toy else "")
    rc_part = f", rank coverage {rc:.2f}" if not math.isnan(rc) else ""
    calls = ("no call of the prior (one pass of its own flow)" if m == "aps" else
             f"{nfe:.0f} network calls and {back:.0f} backward passes")
    if m == "dps":
        mean_psnr = sum(img[(t, m)]["psnr_mean"] for t in tasks if (t, m) in img) / k
        quality = f"PSNR of the mean {mean_psnr:.1f} dB (the reference of the other lines)"
    else:
        quality = f"PSNR of the mean {gap:+.1f} dB against DPS at {speed:,.0f} times less time"
    lines.append(f"* **{m}** ({what}): {calls} per sample; {quality} (mean over {k} task(s))"
                 f"{rc_part}{toy_part}.")
display(Markdown("\n".join(lines) + ("" if HAS_RANK else
                                     "\n\n(rank coverage: absent from the stored image table)")))

# %% [markdown]
# ## Summary
#
# * Where an exact answer is known, guidance through the network at every step (DPS) is the most
#   accurate, and the most expensive: a backward pass per step, in time and memory.
# * The methods without a backward pass trade accuracy for calls in different ways: zero-shot
#   (DiffPIR, DAPS, LATINO, Spin) or trained per task (UD2M, APS), the latter paying up front.
# * Calibration is read with the rank coverage, which an exact sampler passes at any sample count.


# %% [markdown]
# ## References
#
# * Chung et al. 2023 (DPS), arXiv 2209.14687; Zhu et al. 2023 (DiffPIR), arXiv 2305.08995; Zhang et
#   al. 2024 (DAPS), arXiv 2407.01521; Laumont et al. 2022 (PnP-ULA), arXiv 2103.04715
# * Spagnoletti et al. 2025 (LATINO), arXiv 2503.12615; Mbakam, Spence, Pereyra 2025 (UD2M), arXiv
#   2507.02686; Shtanchaev et al. 2026 (Spin), arXiv 2603.07860; Mammadov, Chung, Ye 2024 (APS),
#   arXiv 2407.17907
# * Talts et al. 2018, *Validating Bayesian inference algorithms with simulation-based calibration*
#   (rank coverage), arXiv 1804.06788
# * DeepInverse (the outside peer), https://deepinv.github.io
