"""Why the untrained unfolded chain is not LATINO, and what training changes: one toy problem.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/ud2m_toy_diagnosis.py [--problem issue32|2d|SEED]

Prints (1) the noise levels s = sqrt((1 - ab) / ab) at which LATINO (8 calls) and the UD2M chain
at the train defaults call the denoiser, (2) per outer block, the SW of the block's x^(K) to the
exact posterior (untrained, then trained with the defaults), with the trained residual's size
next to the denoiser's own move, and lambda, and (3) the final SW of LATINO, UD2M untrained and
trained, as multiples of the prior's.  Results: docs/notes/ud2m.md, 'Defaults on the toy family'.
"""
from __future__ import annotations

import argparse

import torch

import posterior_tutor as pt
from posterior_tutor.evaluation.toy_family import random_problem, sw_mean
from posterior_tutor.samplers.latino import latino_grid
from posterior_tutor.schedules import VPSchedule
from posterior_tutor.trained.ud2m.block import block_levels

from ud2m_toy_sweep import issue_problem


def block_outputs(ud, tp, n, seed=1):
    """Per outer time: (t, tau, x^(K) of every sample, mean |residual| / mean |D(z~) - z~|)."""
    out, g = [], torch.Generator().manual_seed(seed)
    for st in ud.iterate(tp.y, n, generator=g):
        if st.i % ud.K == ud.K - 1:          # the block's last iteration: st.x0 = x^(K)
            z = st.extras["noised"]
            with torch.no_grad():
                base = ud.den(z, st.extras["tau"])
                move = (base - z).norm(dim=1).mean().item()
                res = (st.x0 - base).norm(dim=1).mean().item()
            out.append((st.extras["t"], st.extras["tau"], st.x0, res / max(move, 1e-12)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="issue32",
                    help="issue32, 2d (chapter 04's bimodal problem) or a toy_family seed")
    ap.add_argument("--n", type=int, default=1000)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tp = {"issue32": lambda: issue_problem(0), "2d": lambda: pt.toy.bimodal_problem_2d()}.get(
        a.problem, lambda: random_problem(int(a.problem)))()
    den = tp.prior.denoiser(VPSchedule())
    g = torch.Generator().manual_seed(0)
    exact = tp.posterior.sample(a.n, generator=g)
    prior = sw_mean(tp.prior.sample(a.n, generator=g), exact)
    xs_train = tp.prior.sample(20000, generator=torch.Generator().manual_seed(2))
    untrained = pt.ud2m.train(den, tp.problem, xs_train, steps=0, progress=False)
    trained = pt.ud2m.train(den, tp.problem, xs_train, progress=False,
                            generator=torch.Generator().manual_seed(3))
    sched, sigma = den.schedule, tp.problem.sigma
    print(f"{tp.name}: sigma {sigma}, sigma' = {untrained.config['sigma_factor']} sigma")
    print("LATINO calls D at s = " + ", ".join(f"{sched.s(t).item():.2f}" for t in latino_grid(8)))
    levels = [block_levels(sched, t, sigma, untrained.config["sigma_factor"]) for t in untrained.grid]
    print(f"UD2M {untrained.K} x {untrained.N}: outer t {untrained.grid}, s(t) "
          + ", ".join(f"{lv[1]:.2f}" for lv in levels) + "; D called at s(tau) = rho = "
          + ", ".join(f"{lv[3]:.2f}" for lv in levels) + f" ({untrained.K} calls each)")
    for label, ud in (("untrained", untrained), ("trained", trained)):
        rows = block_outputs(ud, tp, a.n)
        print(f"{label:9s} lambda {ud.lam:.2f}; per block SW(x^(K), exact) / prior: "
              + ", ".join(f"t {t}: {sw_mean(x, exact) / prior:.2f} (|r| / |D move| {r:.2f})"
                          for t, _, x, r in rows))
    lat = pt.sample("latino", den, tp.problem, tp.y, n=a.n, generator=torch.Generator().manual_seed(1))
    final = {"LATINO": lat, "UD2M untrained": untrained.sample(tp.y, a.n, generator=torch.Generator(
        ).manual_seed(1)), "UD2M trained": trained.sample(tp.y, a.n, generator=torch.Generator(
        ).manual_seed(1))}
    print("SW / prior's: " + ", ".join(f"{k} {sw_mean(v, exact) / prior:.2f}" for k, v in final.items()))


if __name__ == "__main__":
    main()
