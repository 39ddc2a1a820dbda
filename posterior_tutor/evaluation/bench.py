"""The benchmark: every registered sampler side by side, measured in one run on one machine.

    python -m posterior_tutor.evaluation.bench            # full mode
    python -m posterior_tutor.evaluation.bench --fast     # small slice (also when POSTERIOR_TUTOR_FAST=1 or CI)

Toy suite (exact posteriors): for the 2D bimodal problem and the d = 16, rank-4 problem, each
method's sliced Wasserstein distance to exact posterior samples, as a multiple of the exact-sampling
noise floor and of the prior-samples distance; network calls (NFE), backward passes through the
network, wall time, time inside network calls, and overhead = wall time / network time (the
sampler's own cost on top of its network calls).  Writes a Markdown table and a CSV.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import toy
from ..runtime.config import fast_mode
from ..metrics import sliced_wasserstein
from ..samplers import methods, sample
from ..schedules import VPSchedule

#: options per method: (full mode, fast mode)
TOY_OPTIONS = {
    "dps": ({}, {"steps": 200}),
    "diffpir": ({}, {}),
    "daps": ({"levels": 100, "langevin_steps": 50}, {"levels": 30, "langevin_steps": 30}),
    "pnp_ula": ({"steps": 5000}, {"steps": 1000}),
    "latino": ({}, {}),
    "spin": ({}, {}),
}


#: UD2M on the toy problems (trained in the run; fast mode trains a quarter of the steps):
#: measured best of a sweep on the 2D problem (sigma_factor 2/4, (K, N) in (3,3), (2,4), (1,9),
#: 500/2000 steps, hidden 64/128; docs/notes/ud2m.md, "The toy problems")
TOY_UD2M = dict(K=2, N=4, sigma_factor=4.0, steps=6000, hidden=128, adv_weight=3.0)   # docs/notes/ud2m.md


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


def trained_ud2m_sample(tp, den, n, fast, seed):
    """UD2M trained on the toy problem in this run (its training time goes into the label), then
    timed like the zero-shot samplers: (samples, Cost, label)."""
    from ..trained.ud2m import train
    opts = dict(TOY_UD2M, steps=TOY_UD2M["steps"] // 4 if fast else TOY_UD2M["steps"])
    xs_train = tp.prior.sample(20000, generator=torch.Generator().manual_seed(seed + 2))
    start = time.perf_counter()
    ud = train(den, tp.problem, xs_train, generator=torch.Generator().manual_seed(seed + 3), **opts)
    train_s = time.perf_counter() - start
    ud.denoiser.reset_counters()
    start = time.perf_counter()
    xs = ud.sample(tp.y, n, generator=torch.Generator().manual_seed(seed + 1))
    cost = Cost(ud.denoiser.nfe, ud.denoiser.nfe_grad, time.perf_counter() - start,
                ud.denoiser.net_seconds)
    return xs, cost, f"ud2m (K={ud.K}, N={ud.N}; trained {opts['steps']} steps, {train_s:.0f} s)"


def _distance(a, b, seed):
    return sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(seed)).item()


def run_toy_suite(fast: bool | None = None, n: int | None = None, seed: int = 0,
                  method_names=None, progress: bool = True) -> list[Row]:
    """Measure every posterior sampler on the exact toy problems; returns one Row per run."""
    fast = fast_mode() if fast is None else fast
    n = n or (500 if fast else 2000)
    names = method_names or [m for m in methods() if m in TOY_OPTIONS] + ["ud2m"]
    rows = []
    for tp in (toy.bimodal_problem_2d(), toy.gmm_problem()):
        den = tp.prior.denoiser(VPSchedule())
        g = torch.Generator().manual_seed(seed)
        exact = tp.posterior.sample(n, generator=g)
        floor = _distance(tp.posterior.sample(n, generator=g), exact, seed)
        prior = _distance(tp.prior.sample(n, generator=g), exact, seed)
        rows.append(Row(tp.name, "exact (noise floor)", n, floor, 1.0, floor / prior, 0, 0, 0, 0, 0))
        rows.append(Row(tp.name, "prior samples", n, prior, prior / floor, 1.0, 0, 0, 0, 0, 0))
        for name in names:
            if name == "ud2m":
                xs, cost, name = trained_ud2m_sample(tp, den, n, fast, seed)
            else:
                opts = TOY_OPTIONS.get(name, ({}, {}))[1 if fast else 0]
                xs, cost = timed_sample(name, den, tp.problem, tp.y, n,
                                        torch.Generator().manual_seed(seed + 1), **opts)
            sw = _distance(xs, exact, seed)
            rows.append(Row(tp.name, name, n, sw, sw / floor, sw / prior, cost.nfe, cost.backward,
                            cost.wall_s, cost.net_s, cost.overhead))
            if progress:
                print(f"  {tp.name:16s} {name:10s} SW {sw:.3f}  NFE {cost.nfe:5d}  "
                      f"{cost.wall_s:.2f} s", flush=True)
    return rows


def machine_description() -> str:
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads "
            f"(torch uses {torch.get_num_threads()}), {dev}, "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def to_markdown(rows: list[Row]) -> str:
    head = ("| problem | method | SW to exact | x noise floor | x prior | NFE | backward | "
            "wall s | net s | wall/net |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        costs = (f"{r.nfe} | {r.backward} | {r.wall_s:.2f} | {r.net_s:.2f} | {r.overhead:.2f}"
                 if r.nfe else "- | - | - | - | -")
        lines.append(f"| {r.problem} | {r.method} | {r.sw:.3f} | {r.sw_over_floor:.1f} "
                     f"| {r.sw_over_prior:.2f} | {costs} |\n")
    return head + "".join(lines)


def write(rows: list[Row], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "toy.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    (out / "toy.md").write_text(f"Machine: {machine_description()}\n\n{to_markdown(rows)}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m posterior_tutor.evaluation.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="small slice (default in CI)")
    ap.add_argument("--n", type=int, default=None, help="samples per method")
    ap.add_argument("--methods", nargs="*", default=None, help=f"subset of {methods()}")
    ap.add_argument("--out", type=Path, default=Path("bench_results"))
    ap.add_argument("--suite", choices=["toy", "images", "all"], default="all",
                    help="toy problems (exact posteriors), MNIST tasks, or both")
    ap.add_argument("--tasks", nargs="*", default=None, help="MNIST tasks (pt.tasks.TASKS)")
    ap.add_argument("--images", type=int, default=None, help="held-out images per task")
    ap.add_argument("--samples", type=int, default=None, help="samples per image")
    ap.add_argument("--no-peer", action="store_true", help="leave out deepinv's samplers")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--memory", choices=["fresh", "inline"], default=None,
                    help="peak memory per row in a fresh process (default on CPU in full mode) "
                         "or during the measured runs")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; give 1 per run when runs share "
                         "the cores: oversubscribed threads slow every row several times)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    from .. import tasks
    from . import images as bench_images
    known = set(methods()) | set(bench_images.TRAINED_KINDS)
    unknown = set(args.methods or []) - known
    if unknown:
        ap.error(f"unknown method(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
    bad_tasks = set(args.tasks or []) - set(tasks.TASKS)
    if bad_tasks:
        ap.error(f"unknown task(s) {sorted(bad_tasks)}; known: {', '.join(tasks.TASKS)}")
    fast = args.fast or fast_mode()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"posterior_tutor benchmark ({'fast' if fast else 'full'} mode) on {machine_description()}")
    if args.suite in ("toy", "all"):
        rows = run_toy_suite(fast=fast, n=args.n, method_names=args.methods)
        write(rows, args.out)
        print(to_markdown(rows))
        print(f"written: {args.out / 'toy.md'}, {args.out / 'toy.csv'}")
    if args.suite in ("images", "all"):
        image_rows = bench_images.run_image_suite(
            fast=fast, task_names=args.tasks, method_names=args.methods, n_images=args.images,
            n_samples=args.samples, peer=not args.no_peer, device=device, memory=args.memory)
        memory = args.memory or ("fresh" if device == "cpu" and not fast else "inline")
        command = "python -m posterior_tutor.evaluation.bench " + " ".join(
            sys.argv[1:] if argv is None else argv)
        bench_images.write(image_rows, args.out, machine_description(), memory, command)
        print(bench_images.to_markdown(image_rows))
        print(f"written: {args.out / 'images.md'}, {args.out / 'images.csv'}, "
              f"{args.out / 'images_tradeoffs.png'}")


if __name__ == "__main__":
    main()
