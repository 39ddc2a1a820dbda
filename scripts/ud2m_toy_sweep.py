"""UD2M settings against LATINO on the toy family: the sweep that chose ud2m.train's vector defaults.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/ud2m_toy_sweep.py                  # the sweep
    python scripts/ud2m_toy_sweep.py --configs '{"4x2": {"K": 4, "N": 2}}' --seeds 3 4

For each setting (keyword options of ``pt.ud2m.train``) and each training seed: train on every
problem of ``toy_family(12)`` and on the issue-32 problem (d = 3, k = 4, rank 1, sigma 0.3, built
like ``toy.gmm_problem``), sample n = 1000, and print SW(UD2M) / SW(LATINO at its defaults, 8 NFE)
per problem (SW averaged over three projection seeds) and the count of family problems where
the ratio is at most 1.  Results: docs/notes/ud2m.md, 'Defaults on the toy family'.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch

import posterior_tutor as pt
from posterior_tutor import toy
from posterior_tutor.evaluation.toy_family import sw_mean, toy_family
from posterior_tutor.operators import InverseProblem, Matrix
from posterior_tutor.schedules import VPSchedule

SWEEP = {"3x3 (old defaults)": {"K": 3, "N": 3, "steps": 500}, "2x4": {"K": 2, "N": 4, "steps": 500},
         "2x4 sigma' = 1 sigma": {"K": 2, "N": 4, "steps": 500, "sigma_factor": 1.0},
         "2x4 sigma' = 4 sigma": {"K": 2, "N": 4, "steps": 500, "sigma_factor": 4.0},
         "4x2": {"K": 4, "N": 2, "steps": 500}, "1x8": {"K": 1, "N": 8, "steps": 500},
         "2x4 2000 steps": {"K": 2, "N": 4, "steps": 2000}, "2x4 untrained": {"K": 2, "N": 4, "steps": 0}}


def issue_problem(seed: int = 0) -> toy.ToyProblem:
    """The problem of issue 32: toy.gmm_problem's construction at d = 3, k = 4, rank 1, sigma 0.3."""
    prior = toy.random_mixture(d=3, k=4, spread=1.0, scale=0.5, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    A = torch.randn(1, 3, generator=g) / math.sqrt(3) * 2
    problem = InverseProblem(Matrix(A), 0.3)
    x_true = prior.sample(1, generator=g)[0]
    return toy.ToyProblem("issue32-d3-k4-r1", prior, problem, x_true,
                          problem.measure(x_true, generator=g))


def references(problems, n):
    """Per problem: (denoiser, exact samples, prior's SW, LATINO's SW, training signals)."""
    out = {}
    for tp in problems:
        den = tp.prior.denoiser(VPSchedule())
        g = torch.Generator().manual_seed(0)
        exact = tp.posterior.sample(n, generator=g)
        prior = sw_mean(tp.prior.sample(n, generator=g), exact)
        lat = sw_mean(pt.sample("latino", den, tp.problem, tp.y, n=n,
                                generator=torch.Generator().manual_seed(1)), exact)
        xs_train = tp.prior.sample(20000, generator=torch.Generator().manual_seed(2))
        out[tp.name] = (den, exact, prior, lat, xs_train)
    return out


def run_setting(problems, refs, options, seed, n):
    """(ratios to LATINO per problem, ratios to the prior, mean training seconds, NFE)."""
    ratios, to_prior, secs = [], [], []
    for tp in problems:
        den, exact, prior, lat, xs_train = refs[tp.name]
        start = time.perf_counter()
        ud = pt.ud2m.train(den, tp.problem, xs_train, generator=torch.Generator().manual_seed(seed),
                           progress=False, **options)
        secs.append(time.perf_counter() - start)
        sw = sw_mean(ud.sample(tp.y, n, generator=torch.Generator().manual_seed(1)), exact)
        ratios.append(sw / lat)
        to_prior.append(sw / prior)
    return ratios, to_prior, sum(secs) / len(secs), ud.K * ud.N


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=json.loads, default=None, help="JSON {label: options}")
    ap.add_argument("--seeds", type=int, nargs="+", default=[3])
    ap.add_argument("--n", type=int, default=1000)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    family = toy_family(12)
    problems = family + [issue_problem(0)]
    refs = references(problems, a.n)
    print("LATINO / prior: " + " ".join(f"{refs[tp.name][3] / refs[tp.name][2]:.2f}"
                                        for tp in problems), flush=True)
    for label, options in (a.configs or SWEEP).items():
        for seed in a.seeds:
            ratios, to_prior, secs, nfe = run_setting(problems, refs, options, seed, a.n)
            wins = sum(r <= 1.0 for r in ratios[:len(family)])
            print(f"{label:28s} seed {seed} NFE {nfe} wins {wins}/{len(family)} | UD2M / LATINO "
                  + " ".join(f"{r:.2f}" for r in ratios) + f" | issue32 x prior {to_prior[-1]:.2f}"
                  f" | train {secs:.1f} s / problem", flush=True)


if __name__ == "__main__":
    main()
