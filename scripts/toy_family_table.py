"""The toy-family table: every trained and zero-shot sampler on 12+ random Gaussian-mixture problems.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/toy_family_table.py            # ~15 min, 1 thread
    python scripts/toy_family_table.py --count 2 --n 300 --out /tmp/tf           # a quick check
    python scripts/toy_family_table.py --methods aps --count 4 --append          # APS, added later

For each problem of ``toy_family(count, seed)`` (posterior_tutor/evaluation/toy_family.py): the
exact posterior's samples, the noise floor (SW between two exact draws), the prior's distance,
then LATINO (defaults, 8 NFE), UD2M untrained (the default K x N, steps = 0), UD2M with
``ud2m.train``'s defaults, APS with ``aps.train``'s defaults (amortised over the measurements of
20000 prior draws) and DPS (defaults, 1000 NFE + 1000 backward passes).  SW is averaged over
three projection seeds (256 directions each).  Writes toy_family.md and toy_family.csv in --out
(default docs/benchmark/) and prints the count of problems where UD2M's defaults are at least as
close to the exact posterior as LATINO.  ``--methods`` runs a subset, ``--append`` adds the rows
to the CSV already in --out (a method missing on a problem shows as "-"): APS's training
(minutes a problem on one thread) can be run for fewer problems than the rest.
"""
from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

import torch

from posterior_tutor.evaluation.toy_family import family_references, sw_mean, toy_family
from posterior_tutor.evaluation.toy_suite import timed_sample, trained_aps_sample, \
    trained_ud2m_sample
from posterior_tutor.schedules import VPSchedule

METHODS = ("latino", "ud2m untrained", "ud2m", "aps", "dps")


def run_method(name, tp, den, n, seed):
    """(samples, nfe, train seconds, sample seconds) of one method on one problem."""
    if name == "ud2m":
        xs, cost, _, train_s = trained_ud2m_sample(tp, den, n, False, seed, options={})
    elif name == "ud2m untrained":
        xs, cost, _, _ = trained_ud2m_sample(tp, den, n, False, seed, options={"steps": 0})
        train_s = 0.0                                  # nothing is trained
    elif name == "aps":
        xs, cost, _, train_s = trained_aps_sample(tp, den, n, seed)
    else:
        xs, cost = timed_sample(name, den, tp.problem, tp.y, n, torch.Generator().manual_seed(
            seed + 1))
        train_s = 0.0
    return xs, cost.nfe, train_s, cost.wall_s   # a call on the whole batch counts once: per sample


def problem_rows(tp, n, seed, methods=None):
    den = tp.prior.denoiser(VPSchedule())
    ref = family_references(tp, n, seed)
    rows = []
    for name in methods or METHODS:
        xs, nfe, train_s, wall = run_method(name, tp, den, n, seed)
        sw = sw_mean(xs, ref["exact"])
        rows.append(dict(problem=tp.name, **tp.sizes, method=name, sw=sw,
                         over_floor=sw / ref["floor"], over_prior=sw / ref["prior"], nfe=nfe,
                         train_s=train_s, sample_s=wall, floor=ref["floor"],
                         floor_lo=ref["floor_spread"][0], floor_hi=ref["floor_spread"][1],
                         prior=ref["prior"]))
        print(f"{tp.name:26s} {name:15s} x floor {sw / ref['floor']:6.2f}  x prior "
              f"{sw / ref['prior']:.2f}  NFE {nfe:5d}  train {train_s:5.1f} s", flush=True)
    return rows


def _cell(p, m):
    return f"{p[m]['over_floor']:.1f} / {p[m]['over_prior']:.2f}" if m in p else "-"


def write(rows, out: Path, count: int, n: int, seed: int, seconds: float):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "toy_family.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    by = {}
    for r in rows:
        by.setdefault(r["problem"], {})[r["method"]] = r
    both = [p for p in by.values() if "ud2m" in p and "latino" in p]
    wins = sum(p["ud2m"]["sw"] <= p["latino"]["sw"] for p in both) if both else None
    head = ("| problem | d | k | rank | sigma | floor (spread) | prior x floor | "
            + " | ".join(f"{m} x floor / x prior" for m in METHODS) + " |")
    lines = [f"Machine: {platform.machine()}, torch {torch.__version__}, 1 thread; "
             f"problems of `toy_family({len(by)}, seed={seed})`, n = {n} samples each; the last run "
             f"took {seconds / 60:.0f} min.", "",
             "Regenerate: `OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/toy_family_table.py` "
             "(every method); the APS column was added with `--methods aps --append`.", "",
             head, "|" + "---|" * (7 + len(METHODS))]
    for name, p in by.items():
        r0 = next(iter(p.values()))
        cells = " | ".join(_cell(p, m) for m in METHODS)
        lines.append(f"| {name} | {int(r0['d'])} | {int(r0['k'])} | {int(r0['rank'])} | "
                     f"{float(r0['sigma']):g} | "
                     f"{r0['floor']:.3f} ({r0['floor_lo']:.3f}-{r0['floor_hi']:.3f}) | "
                     f"{r0['prior'] / r0['floor']:.1f} | {cells} |")
    lines += ["", "| method | problems | NFE per sample | mean training s per problem | "
              "median x floor | median x prior |", "|---|---|---|---|---|---|"]
    for m in METHODS:
        got = [p[m] for p in by.values() if m in p]
        if not got:
            continue
        fl = sorted(r["over_floor"] for r in got)
        pr = sorted(r["over_prior"] for r in got)
        lines.append(f"| {m} | {len(got)} | {sum(r['nfe'] for r in got) / len(got):.0f} | "
                     f"{sum(r['train_s'] for r in got) / len(got):.1f} | {fl[len(fl) // 2]:.1f} | "
                     f"{pr[len(pr) // 2]:.2f} |")
    if wins is not None:
        lines += ["", f"UD2M (train defaults) at least as close as LATINO: **{wins} of "
                  f"{len(both)}** problems."]
    (out / "toy_family.md").write_text("\n".join(lines) + "\n")
    return wins


def _read(path: Path) -> list:
    """Rows of an earlier run's CSV, numbers as numbers."""
    if not path.exists():
        return []
    out = []
    with open(path) as f:
        for r in csv.DictReader(f):
            out.append({k: (v if k in ("problem", "method") else float(v)) for k, v in r.items()})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmark"))
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    ap.add_argument("--append", action="store_true", help="add to the CSV already in --out")
    a = ap.parse_args(argv)
    methods = [m.strip() for m in a.methods.split(",")]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"error: unknown methods {sorted(unknown)}; choose from {METHODS}.")
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = _read(a.out / "toy_family.csv") if a.append else []
    rows = [r for r in rows if r["method"] not in methods]
    for tp in toy_family(a.count, a.seed):
        rows += problem_rows(tp, a.n, a.seed, methods)
        write(rows, a.out, a.count, a.n, a.seed, time.perf_counter() - start)   # after each problem
    wins = write(rows, a.out, a.count, a.n, a.seed, time.perf_counter() - start)
    if wins is not None:
        print(f"UD2M defaults at least as close as LATINO on {wins} of {a.count} problems")


if __name__ == "__main__":
    main()
