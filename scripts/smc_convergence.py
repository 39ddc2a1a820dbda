"""MCGdiff (the SMC sampler) against the exact posterior as the particle count grows.

    PYTHONPATH=. python scripts/smc_convergence.py [--seeds 4] [--n 2000] [--out docs/notes]

For each toy problem (2D bimodal, d = 16 rank 4) and each particle count P, ``--seeds`` runs of n
samples with the exact denoiser, in two designs: *independent* (each system of P particles gives
at most 10 of the samples, so they come from n / 10 systems and share few ancestors; 10 P network
evaluations per sample at 100 steps) and *one system per P samples* (draws = P, the default:
cheap, correlated).
SW to a fresh exact set of n, divided by the noise floor (the mean SW between two exact sets of n
over the same seeds), and the largest mode-weight error.  Then the step count at 100 particles.
Writes docs/notes/smc.md (the tables, this command, where the curve reaches the floor; the
hand-written part below "## Design measurements" is kept) and smc.png (with every other method
of the stored toy benchmark, docs/benchmark/toy.csv, at its network calls per sample).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import torch

import posterior_tutor as pt
from posterior_tutor.metrics import sliced_wasserstein

COUNTS = (10, 30, 100, 300, 1000, 3000)     # the one-system design
INDEPENDENT = (10, 30, 100, 300, 1000)      # n / 10 systems of P: 200 P particles at n = 2000
STEPS = 100
STEP_COUNTS = (100, 200, 300)
STEP_SEEDS = 8                              # the steps line: 100 particles, independent design
KEEP = "## Design measurements"
TOL = 1.3


def draws_of(p: int, design: str) -> int:
    return min(p, 10) if design == "independent" else p


class Problem:
    """A toy problem with its exact denoiser, exact sets and noise floor for the seeds."""

    def __init__(self, tp, n, seeds):
        self.tp, self.n, self.seeds = tp, n, seeds
        self.den = tp.prior.denoiser(pt.VPSchedule())
        g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
        self.exact = [tp.posterior.sample(n, generator=g(100 + s)) for s in range(seeds)]
        self.floor = statistics.mean(self.sw(tp.posterior.sample(n, generator=g(200 + s)), s)
                                     for s in range(seeds))

    def sw(self, xs, s):
        return sliced_wasserstein(xs, self.exact[s],
                                  generator=torch.Generator().manual_seed(300 + s)).item()

    def run(self, p, design, steps=STEPS, seeds=None):
        """(mean SW / floor, spread, mean max mode-weight error, evaluations per sample, s)."""
        ratios, errs, t0 = [], [], time.perf_counter()
        for s in range(seeds or self.seeds):
            self.den.reset_counters()
            xs = pt.sample("mcgdiff", self.den, self.tp.problem, self.tp.y, n=self.n,
                           generator=torch.Generator().manual_seed(s), particles=p,
                           draws=draws_of(p, design), steps=steps, progress=False)
            ratios.append(self.sw(xs, s) / self.floor)
            w = self.tp.posterior.responsibilities(xs.double()).mean(0)
            errs.append((w - self.tp.posterior.weights).abs().max().item())
        per_sample = self.den.nfe * -(-self.n // draws_of(p, design)) * p / self.n
        k = len(ratios)
        return (statistics.mean(ratios), statistics.stdev(ratios) if k > 1 else 0.0,
                statistics.mean(errs), per_sample, (time.perf_counter() - t0) / k)


def reaches(rows, tol=TOL):
    """The smallest particle count from which every larger count measured has mean SW / floor
    within ``tol`` of the floor (None: the last one is not)."""
    at = None
    for p in sorted(rows, reverse=True):
        if rows[p][0] > tol:
            break
        at = p
    return at


def stored_methods(name):
    """(method, NFE, SW / floor) of every sampler row of the stored toy benchmark for ``name``."""
    path = pt.files.resources.root("benchmark") / "toy.csv"
    with open(path) as f:
        return [(r["method"].split(" (")[0], float(r["nfe"]), float(r["sw_over_floor"]))
                for r in csv.DictReader(f) if r["problem"] == name and float(r["nfe"]) > 0]


def section(name, prob, ind, one, steps_rows):
    lines = [f"## {name} (floor {prob.floor:.4f})", "",
             "| particles | SW / floor | spread | mode-weight error | evaluations / sample | "
             "s per run | one system per P samples: SW / floor | its evaluations / sample |",
             "|---|---|---|---|---|---|---|---|"]
    cell = lambda r, k, f: format(r[k], f) if r else "-"  # noqa: E731
    lines += [f"| {p} | {cell(ind.get(p), 0, '.2f')} | {cell(ind.get(p), 1, '.2f')} | "
              f"{cell(ind.get(p), 2, '.3f')} | {cell(ind.get(p), 3, '.0f')} | "
              f"{cell(ind.get(p), 4, '.1f')} | {one[p][0]:.2f} | {one[p][3]:.0f} |" for p in one]
    at = reaches(ind)
    best = min(ind, key=lambda p: ind[p][0])
    lines += ["", (f"Independent design: within {TOL}x of the floor from {at} particles on."
                   if at else f"Independent design: above {TOL}x the floor at every count "
                   f"measured; closest {ind[best][0]:.2f} at {best} particles."), ""]
    dps = [v for m, _, v in stored_methods(name) if m == "dps"]
    if dps:
        lines += [f"Stored DPS (docs/benchmark/toy.csv, n = 2000; 1000 network calls and backward "
                  "passes per sample): "
                  f"{dps[0]:.2f} times the floor.", ""]
    lines += [f"Steps at 100 particles (independent design, {STEP_SEEDS} seeds, mean +- standard "
              "error): " + "; ".join(
                  f"{k} steps {r[0]:.2f} +- {r[1] / STEP_SEEDS ** 0.5:.2f} (mode-weight error "
                  f"{r[2]:.3f})" for k, r in steps_rows.items()) + ".", ""]
    return lines


def write(results, n, seeds, out: Path):
    lines = ["# MCGdiff: distance to the exact posterior against the particle count", "",
             "Regenerate: `PYTHONPATH=. python scripts/smc_convergence.py "
             f"--seeds {seeds} --n {n}` (exact denoiser; the particle sweep at {STEPS} steps, "
             "where the kernels' bias shows as a plateau, the steps line at 100 particles; "
             "about 30 minutes on one CPU thread).", "",
             f"Each entry: mean over {seeds} seeds of SW(n = {n} samples, exact) / noise floor (the "
             f"mean SW between two exact sets of {n}), its spread (std over seeds), the mean "
             "largest mode-weight error, the network evaluations per sample (calls x points "
             "per call / n) and the seconds per run (on a shared 2-core machine). Independent "
             "design: each system of P particles gives min(P, 10) samples (`draws`), so the "
             "samples come from n / 10 systems. One system per P samples: `draws` = P (the default), so one system gives "
             "up to P correlated samples.", ""]
    for name, parts in results.items():
        lines += section(name, *parts)
    lines += ["Reading: the independent design's distance is the sampler's bias for P particles; "
              "the default design adds the correlation of draws that share ancestors, which "
              "grows with P at a fixed n until P reaches n.", ""]
    path = out / "smc.md"
    kept = ""    # the hand-written design measurements below the marker survive a rerun
    if path.exists() and KEEP in path.read_text():
        kept = KEEP + path.read_text().split(KEEP, 1)[1]
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))


def plot(results, out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8))
    for ax, (name, (_, ind, one, _)) in zip(axes, results.items()):
        ax.errorbar([ind[p][3] for p in ind], [ind[p][0] for p in ind],
                    yerr=[ind[p][1] for p in ind], fmt="o-", capsize=3,
                    label="MCGdiff, independent draws (P particles; bars: std over seeds)")
        for p in ind:
            ax.annotate(f"P={p}", (ind[p][3], ind[p][0]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        ax.plot([one[p][3] for p in one], [one[p][0] for p in one], "s", mfc="none",
                label="MCGdiff, one system per P samples (P = 10 ... 3000)")
        for m, nfe, v in stored_methods(name):
            if m != "mcgdiff":
                ax.scatter(nfe, v, c="k", marker="x")
                ax.annotate(m, (nfe, v), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(1.0, color="k", lw=0.8, ls="--", label="noise floor")
        ax.set(xscale="log", yscale="log", xlabel="network evaluations per sample",
               ylabel="SW / noise floor", title=name)
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "smc.png", dpi=120)


def store(results, out: Path):
    """smc.json: the numbers of the tables, so that --replot redraws smc.png without a run."""
    data = {name: {"floor": prob.floor, "independent": ind, "one": one, "steps": {
        k: list(r[:5]) for k, r in steps.items()}} for name, (prob, ind, one, steps) in results.items()}
    (out / "smc.json").write_text(json.dumps(data, indent=1))


def replot(out: Path):
    """Redraw smc.png from smc.json."""
    data = json.loads((out / "smc.json").read_text())
    keys = lambda d: {int(p): v for p, v in d.items()}  # noqa: E731
    plot({name: (None, keys(d["independent"]), keys(d["one"]), None)
          for name, d in data.items()}, out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("docs/notes"))
    ap.add_argument("--replot", action="store_true", help="redraw smc.png from smc.json only")
    a = ap.parse_args(argv)
    if a.replot:
        if not (a.out / "smc.json").is_file():
            ap.error(f"--replot needs {a.out / 'smc.json'} (written by a full run).")
        return replot(a.out)
    if a.seeds < 2 or a.n < 100:
        ap.error("--seeds must be at least 2 (for the spread) and --n at least 100.")
    torch.set_num_threads(1)
    results = {}
    for tp in (pt.toy.bimodal_problem_2d(), pt.toy.gmm_problem(d=16, rank=4)):
        prob = Problem(tp, a.n, a.seeds)
        one = {p: prob.run(p, "one system") for p in COUNTS}
        ind = {p: prob.run(p, "independent") for p in INDEPENDENT}
        more = Problem(tp, a.n, STEP_SEEDS)      # its own exact sets and floor, 8 seeds
        steps = {k: more.run(100, "independent", steps=k) for k in STEP_COUNTS}
        results[tp.name] = (prob, ind, one, steps)
        print(tp.name, {p: round(r[0], 2) for p, r in ind.items()}, flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    write(results, a.n, a.seeds, a.out)
    store(results, a.out)
    plot(results, a.out)
    print((a.out / "smc.md").read_text())


if __name__ == "__main__":
    main()
