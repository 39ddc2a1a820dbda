"""The toy half of the benchmark: every sampler on problems whose posterior is known exactly.

    rows = run_toy_suite(fast=True)      # also: python -m posterior_tutor.evaluation.bench --suite toy

For the 2D bimodal problem and the d = 16, rank-4 Gaussian-mixture problem (``pt.toy``) the exact
posterior can be sampled, so a method's error is a distance between distributions: the sliced
Wasserstein distance SW(method samples, exact samples).  A number alone means little, so each row
also reads it against two references measured with the same n and the same projections:

    x noise floor = SW / SW(exact, another exact draw)      (1 is as good as n samples allow)
    x prior       = SW / SW(prior samples, exact)           (1 is no better than ignoring y)

and the costs: network calls (NFE), backward passes through the network, wall time, time inside
network calls, and overhead = wall time / network time (the sampler's own cost on top of its
network calls).  UD2M is trained on each problem in the run (``options.TOY_UD2M``) and its training
time goes into its label.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .. import toy
from ..checks.values import check_positive_int
from ..metrics import sliced_wasserstein
from ..runtime.config import fast_mode
from ..samplers import methods, sample
from ..schedules import VPSchedule
from .options import TOY_OPTIONS, TOY_UD2M, toy_options


@dataclass
class Row:
    problem: str
    method: str
    n: int
    sw: float
    sw_over_floor: float
    sw_over_prior: float
    nfe: int
    backward: int
    wall_s: float
    net_s: float
    overhead: float


@dataclass
class Cost:
    """What one sampler run cost: network calls, backward passes, wall and network seconds."""
    nfe: int
    backward: int
    wall_s: float
    net_s: float

    @property
    def overhead(self) -> float:
        """Wall time / time inside network calls: the sampler's own cost on top of the network."""
        return self.wall_s / max(self.net_s, 1e-9)


def timed_sample(name, den, problem, y, n, generator=None, **options):
    """``pt.sample`` with the denoiser's counters reset first; returns (samples, Cost)."""
    den.reset_counters()
    start = time.perf_counter()
    xs = sample(name, den, problem, y, n=n, generator=generator, **options)
    wall = time.perf_counter() - start
    return xs, Cost(den.nfe, den.nfe_grad, wall, den.net_seconds)


def trained_ud2m_sample(tp, den, n, fast, seed, options=None):
    """UD2M trained on the toy problem in this run (its training time goes into the label), then
    timed like the zero-shot samplers: (samples, Cost, label, train seconds).  ``options``: the
    keywords of ``ud2m.train`` (None: ``TOY_UD2M``, a quarter of its steps in fast mode; {}: the
    train defaults)."""
    from ..trained.ud2m import train
    if options is None:
        options = dict(TOY_UD2M, steps=TOY_UD2M["steps"] // 4 if fast else TOY_UD2M["steps"])
    xs_train = tp.prior.sample(20000, generator=torch.Generator().manual_seed(seed + 2))
    start = time.perf_counter()
    ud = train(den, tp.problem, xs_train, generator=torch.Generator().manual_seed(seed + 3),
               progress=False, **options)
    train_s = time.perf_counter() - start
    ud.denoiser.reset_counters()
    start = time.perf_counter()
    xs = ud.sample(tp.y, n, generator=torch.Generator().manual_seed(seed + 1))
    cost = Cost(ud.denoiser.nfe, ud.denoiser.nfe_grad, time.perf_counter() - start,
                ud.denoiser.net_seconds)
    label = f"ud2m (K={ud.K}, N={ud.N}; trained {ud.config['steps']} steps, {train_s:.0f} s)"
    return xs, cost, label, train_s


def trained_aps_sample(tp, den, n, seed, options=None):
    """APS (``aps.train`` with ``options``, default {}: its defaults) amortised over the
    measurements of 20000 prior draws of the toy problem, then timed like the zero-shot
    samplers: (samples, Cost, label, train seconds).  NFE counts the flow's passes (one per
    sample) as 1: the flow is not a denoiser."""
    from ..trained.aps import train
    from ..trained.ud2m.losses import measure_batch
    xs_train = tp.prior.sample(20000, generator=torch.Generator().manual_seed(seed + 2))
    ys = measure_batch(tp.problem, xs_train, torch.Generator().manual_seed(seed + 4))
    start = time.perf_counter()
    fl = train(den, tp.problem, ys, generator=torch.Generator().manual_seed(seed + 3),
               progress=False, **(options or {}))
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        xs = fl.sample(tp.y, n, generator=torch.Generator().manual_seed(seed + 1))
    wall = time.perf_counter() - start
    return xs, Cost(1, 0, wall, wall), f"aps (trained {len(fl.losses)} steps, {train_s:.0f} s)", \
        train_s


def toy_methods() -> list[str]:
    """The names the toy suite runs by default (and accepts): samplers with toy options, UD2M."""
    return [m for m in methods() if m in TOY_OPTIONS] + ["ud2m"]


def _label(name, cost, n, options) -> str:
    """The row's method: the name, and for an SMC sampler its particles and what a sample costs
    (its NFE counts batched calls, each over all the particles of every system)."""
    if "particles" not in options:
        return name
    p, d = options["particles"], options.get("draws") or options["particles"]
    evals = cost.nfe * -(-n // d) * p / n
    return f"{name} ({p} particles, {d} draws per system: {evals:.0f} evaluations per sample)"


def _distance(a, b, seed):
    return sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(seed)).item()


def _problem_rows(tp, names, n, fast, seed, progress) -> list[Row]:
    """The two reference rows and one row per method on the toy problem ``tp``."""
    den = tp.prior.denoiser(VPSchedule())
    g = torch.Generator().manual_seed(seed)
    exact = tp.posterior.sample(n, generator=g)
    floor = _distance(tp.posterior.sample(n, generator=g), exact, seed)
    prior = _distance(tp.prior.sample(n, generator=g), exact, seed)
    rows = [Row(tp.name, "exact (noise floor)", n, floor, 1.0, floor / prior, 0, 0, 0, 0, 0),
            Row(tp.name, "prior samples", n, prior, prior / floor, 1.0, 0, 0, 0, 0, 0)]
    for name in names:
        if name == "ud2m":
            xs, cost, name, _ = trained_ud2m_sample(tp, den, n, fast, seed)
        else:
            options = toy_options(name, fast)
            xs, cost = timed_sample(name, den, tp.problem, tp.y, n,
                                    torch.Generator().manual_seed(seed + 1), **options)
            name = _label(name, cost, n, options)
        sw = _distance(xs, exact, seed)
        rows.append(Row(tp.name, name, n, sw, sw / floor, sw / prior, cost.nfe, cost.backward,
                        cost.wall_s, cost.net_s, cost.overhead))
        if progress:
            print(f"  {tp.name:16s} {name:10s} SW {sw:.3f}  NFE {cost.nfe:5d}  "
                  f"{cost.wall_s:.2f} s", flush=True)
    return rows


def run_toy_suite(fast: bool | None = None, n: int | None = None, seed: int = 0,
                  method_names=None, progress: bool = True) -> list[Row]:
    """Measure every posterior sampler on the exact toy problems; returns one Row per run.
    n: samples per method (default 500 in fast mode, else 2000)."""
    fast = fast_mode() if fast is None else fast
    if n is None:
        n = 500 if fast else 2000
    check_positive_int(n, "n (samples per method)")
    if method_names is not None and len(method_names) == 0:
        raise ValueError("method_names is empty: give at least one, or None for all.")
    names = toy_methods() if method_names is None else list(method_names)
    rows = []
    for tp in (toy.bimodal_problem_2d(), toy.gmm_problem()):
        rows += _problem_rows(tp, names, n, fast, seed, progress)
    return rows
