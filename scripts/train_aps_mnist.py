"""Train and ship an APS flow on the shipped MNIST prior (the command in data/aps_mnist_*/README.md).

    python scripts/train_aps_mnist.py --task denoising --out data/aps_mnist_denoising
    python scripts/train_aps_mnist.py --task sr4 --out data/aps_mnist_sr4 --resume data/aps_mnist_sr4/flow.pt
    torchrun --nproc_per_node=4 scripts/train_aps_mnist.py --task sr4 --out runs/sr4 --batch 64

Trains on measurements (one fixed noise draw each, seed 1) of MNIST test[0:8000], the prior's own
training images; no clean image enters the loss.  Checkpoints every ``--save-every`` steps to
``<out>/flow.pt`` and stops cleanly at ``--minutes`` (the card records the steps done); ``--resume``
goes on (also after a kill: the steps done are the length of the loss curve in flow.pt) as a warm
restart (a fresh optimiser, cosine schedule and generator) that may change --steps, --batch, --lr,
--anneal-steps and --seed: each session's settings and first step are saved with the flow and
listed in the card ("sessions"); --hidden and --feat (the network's shape) must stay.  Under
torchrun each process draws its shards of the global batch and rank 0 writes every file
(docs/scaling.md).  Evaluates on held-out MNIST test[8000:] and KMNIST (out of distribution):
PSNR / SSIM of the sample mean and of single samples, the baseline (y upsampled bilinearly for SR,
y itself for denoising), chi^2 per measurement dimension, 90% coverage, seconds per sample.
Writes ``flow.pt``, ``model_card.json`` and ``README.md``.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import posterior_tutor as pt
from posterior_tutor.runtime import cli, distributed
from posterior_tutor.files.recipes import parse_with_recipe
from posterior_tutor.files.checkpoints import file_sha256
from posterior_tutor.files.safe import write_card

sys.path.insert(0, str(Path(__file__).resolve().parent))   # scripts/: the README's template
from aps_mnist_readme import dps_lines, readme, sessions_line  # noqa: E402,F401

NAMES = {"denoising": "mnist-denoising", "sr4": "mnist-sr4"}
DEVICE = torch.device("cpu")   # set by main() from --device


def build_parser():
    """Every flag checked at parse time (``posterior_tutor.runtime.cli``): exit code 2, one line."""
    p = cli.Parser(prog="python scripts/train_aps_mnist.py", description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(NAMES), required=True)
    p.add_argument("--out", type=cli.writable_dir, required=True)
    p.add_argument("--steps", type=cli.positive_int, default=2000)
    p.add_argument("--batch", type=cli.positive_int, default=16)
    p.add_argument("--lr", type=cli.positive_float, default=5e-4)
    p.add_argument("--anneal-steps", type=cli.nonnegative_int, default=200)
    p.add_argument("--hidden", type=cli.positive_int, default=64)
    p.add_argument("--feat", type=cli.positive_int, default=16)
    p.add_argument("--seed", type=cli.nonnegative_int, default=0)
    p.add_argument("--threads", type=cli.positive_int, default=1)
    p.add_argument("--minutes", type=cli.positive_float, default=60.0,
                   help="wall-time budget for training")
    p.add_argument("--save-every", type=cli.positive_int, default=100)
    p.add_argument("--resume", type=Path, default=None, help="a flow.pt to go on training")
    p.add_argument("--eval-images", type=cli.positive_int, default=100,
                   help=f"held-out images test[8000:8000+n], n <= {HELD_OUT}")
    p.add_argument("--eval-samples", type=cli.positive_int, default=128)
    p.add_argument("--dps-images", type=cli.nonnegative_int, default=4,
                   help="held-out y also sampled by DPS (0: no DPS comparison)")
    p.add_argument("--dps-samples", type=cli.positive_int, default=4)
    p.add_argument("--device", type=cli.device, default=None,
                   help="cpu, cuda or cuda:N (default: CUDA when present, else the CPU)")
    distributed.add_arguments(p)
    return p


HELD_OUT = 2000     # MNIST test[8000:10000]


def parse_args(argv=None):
    p = build_parser()
    a, recipe = parse_with_recipe(p, argv)
    for flag in ("eval_images", "dps_images"):
        if getattr(a, flag) > HELD_OUT:
            p.error(f"argument --{flag.replace('_', '-')}: {getattr(a, flag)} is more than the "
                    f"{HELD_OUT} held-out images; give at most {HELD_OUT}")
    if a.resume is not None and not a.resume.is_file():
        p.error(f"argument --resume: no such file: {str(a.resume)!r}; give the flow.pt of an "
                "earlier run")
    distributed.check_arguments(p, a, a.batch)
    return a, recipe


def baseline(y, x):
    """What the measurement alone gives: y for denoising, y upsampled bilinearly for SR."""
    if y.shape == x.shape:
        return y
    return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def evaluate(fl, problem, xs, n_samples, seed):
    """Mean over images of the sample-mean / single-sample PSNR and SSIM, chi^2 per measurement
    dimension (near 1 when calibrated), 90% coverage, pixel spread; seconds per sample
    (``pt.evaluation.evaluate_images``; one generator for every measurement and sample)."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)

    def extra(prob_, y, s, x):
        return dict(psnr_baseline=pt.metrics.psnr(baseline(y[None], x[None]), x[None]).item(),
                    chi2_per_dim=float(_chi2(prob_, y, s)), pixel_std=float(s.std(0).mean()))

    def run(prob_, y, n, gen):
        with torch.no_grad():
            return fl.sample(y, n, generator=gen)
    r = pt.evaluation.evaluate_images(run, xs, lambda i: problem, lambda i: (g, g), n_samples,
                                      extra=extra)
    keys = ["psnr_mean", "psnr_single", "ssim_mean", "ssim_single", "psnr_baseline",
            "chi2_per_dim", "coverage90", "rank_coverage90", "pixel_std"]
    out = {k: round(r[k.replace("90", "") if "coverage" in k else k], 4) for k in keys}
    out.update(images=len(xs), samples_per_image=n_samples,
               seconds_per_sample=r["seconds_per_sample"])
    return out


def _chi2(problem, y, s):
    """Mean squared residual per measurement dimension over sigma^2 (1 when the samples fit y
    as well as the truth does)."""
    return (problem.operator(s) - y).pow(2).flatten(1).mean(1).mean() / problem.sigma ** 2


def dps_comparison(fl, problem, xs, n_aps, n_dps, seed=1000):
    """APS (n_aps samples) and DPS (1000 steps, n_dps samples) on the same held-out measurements
    in one run: quality of each and seconds per sample (each method sampling in one batch)."""
    den, g = fl.den, torch.Generator(device=DEVICE).manual_seed(seed)
    ys = [problem.measure(x, generator=g) for x in xs]
    out = {}
    for name, n, run in (("aps", n_aps, lambda y, n: fl.sample(y, n, generator=g)),
                         ("dps", n_dps, lambda y, n: pt.sample("dps", den, problem, y, n=n,
                                                                generator=g))):
        rows, seconds = [], 0.0
        for x, y in zip(xs, ys):
            start = time.perf_counter()
            s = run(y, n).detach()
            seconds += time.perf_counter() - start
            q = pt.evaluation.image_scores(s, x)
            rows.append([q["psnr_mean"], q["psnr_single"], q["ssim_mean"], q["ssim_single"],
                         float(_chi2(problem, y, s))])
        m = torch.tensor(rows).mean(0).tolist()
        out[name] = dict(zip(["psnr_mean", "psnr_single", "ssim_mean", "ssim_single", "chi2_per_dim"],
                             [round(v, 4) for v in m]), samples=n,
                         seconds_per_sample=seconds / (len(xs) * n))
    out["speedup"] = out["dps"]["seconds_per_sample"] / out["aps"]["seconds_per_sample"]
    out["measurements"] = f"MNIST test 8000-{8000 + len(xs) - 1}, DPS 1000 steps (paper zeta)"
    return out


def samples_figure(fl, problem, xs, path, seed=3000):
    """Rows: truth, y, the 128-sample mean, three samples; one column per held-out digit."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    fig, axes = plt.subplots(6, len(xs), figsize=(1.2 * len(xs), 7.4), squeeze=False)
    for j, x in enumerate(xs):
        y = problem.measure(x, generator=g)
        s = fl.sample(y, 128, generator=g)
        for i, (img, label) in enumerate([(x, "truth"), (baseline(y[None], x[None])[0], "y"),
                                          (s.mean(0), "mean of 128"), (s[0], "sample"),
                                          (s[1], "sample"), (s[2], "sample")]):
            axes[i, j].imshow(img[0].clamp(-1, 1), cmap="gray", vmin=-1, vmax=1)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def training_set(problem, xs, seed=1):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    clean = problem.operator(xs)
    return clean + problem.sigma * torch.randn(clean.shape, generator=g)


def train(a, den, problem, ys):
    g = torch.Generator(device=DEVICE).manual_seed(a.seed)
    if a.resume:
        fl = pt.aps.APSSampler.load(a.resume, den, problem)
        done = len(fl.losses)      # one loss per step done, saved with the flow
        continue_sessions(a, fl.config, done)
    else:
        fl = pt.aps.train(den, problem, ys, generator=g, steps=1, batch=a.batch, lr=a.lr,
                          anneal_steps=a.anneal_steps, hidden=a.hidden, feat=a.feat,
                          shards=a.shards, precision=a.precision)
        fl.config["sessions"] = [session(a, 0)]        # saved with the flow
        done = 1
    state = dict(steps=done, stopped="planned steps")
    deadline = time.perf_counter() + 60 * a.minutes
    out = a.out / "flow.pt"

    def checkpoint(step, fl):
        state["steps"] = step + 1
        if (step + 1) % a.save_every == 0 and distributed.is_main():
            fl.save(out)
        if distributed.any_across(time.perf_counter() > deadline):   # every process stops
            state["stopped"] = "budget"
            raise StopIteration

    try:
        pt.aps.fit(fl, problem, ys, steps=a.steps - done, generator=g, progress=True, lr=a.lr,
                   start_step=done, callback=checkpoint, shards=a.shards, precision=a.precision)
    except StopIteration:
        pass
    if distributed.is_main():
        fl.save(out)
    return fl, state, out


SESSION = ("steps", "batch", "lr", "anneal_steps", "seed")


def session(a, start: int) -> dict:
    return dict(from_step=start, **{k: getattr(a, k) for k in SESSION})


def continue_sessions(a, config: dict, done: int) -> None:
    """A resume at step ``done``: refuse another network shape; use this command's batch, lr and
    warm-up from here on (``fit`` reads them from the config) and record them as a new session."""
    shape = [f"--{k} {config[k]!r} (this command: {getattr(a, k)!r})" for k in ("hidden", "feat")
             if config[k] != getattr(a, k)]
    if shape:
        raise SystemExit(f"--resume {a.resume}: the flow was built with {'; '.join(shape)}; a "
                         "resumed flow keeps its network: give the same flags, or start anew.")
    first = {"from_step": 0, "recorded": "before sessions were recorded",
             **{k: config[k] for k in ("batch", "lr", "anneal_steps")}}
    config["sessions"] = list(config.get("sessions") or [first]) + [session(a, done)]
    config.update(batch=a.batch, lr=a.lr, anneal_steps=a.anneal_steps)


def main(argv=None):
    a, recipe = parse_args(argv)
    torch.set_num_threads(a.threads)
    global DEVICE
    DEVICE = distributed.local_device(pt.runtime.config.resolve_device(a.device,
                                                                       exit_on_error=True))
    distributed.init(DEVICE, exit_on_error=True)
    a.out.mkdir(parents=True, exist_ok=True)
    den = pt.pretrained("mnist", device=DEVICE)
    problem = pt.aps.shipped_problem(NAMES[a.task])
    xs = pt.data.load("mnist", split="test").to(DEVICE)
    ys = training_set(problem, xs[:8000])
    start = time.perf_counter()
    fl, state, path = train(a, den, problem, ys)
    main_process, processes = distributed.is_main(), distributed.world()
    distributed.finish()                # training is done: rank 0 goes on alone
    if not main_process:                # rank 0 evaluates and writes the card
        return
    wall = time.perf_counter() - start
    den.clip = 1.0
    metrics = dict(held_out_mnist=evaluate(fl, problem, xs[8000:8000 + a.eval_images],
                                           a.eval_samples, 1000),
                   kmnist_out_of_distribution=evaluate(
                       fl, problem, pt.data.load("kmnist", split="test")[:a.eval_images].to(DEVICE),
                       a.eval_samples, 2000))
    if a.dps_images:
        metrics["dps_comparison"] = dps_comparison(fl, problem, xs[8000:8000 + a.dps_images],
                                                   a.eval_samples, a.dps_samples)
    card = dict(sha256=file_sha256(path), method="APS (Mammadov, Chung, Ye 2024), "
                "posterior_tutor.trained.aps", task=f"{NAMES[a.task]}: {problem.operator!r}, sigma "
                f"{problem.sigma}", prior="data/mnist_prior (pt.pretrained('mnist'))",
                prior_sha256=den.card["sha256"],
                data="MNIST test images 0-7999 (measurements only, one fixed noise draw, seed 1)",
                evaluation_data="MNIST test 8000+ (held out), KMNIST test (out of distribution)",
                steps=state["steps"], steps_planned=a.steps, stopped=state["stopped"],
                resumed_from=str(a.resume) if a.resume else None,
                sessions=fl.config["sessions"],
                options=dict(batch=a.batch, lr=a.lr, anneal_steps=a.anneal_steps,
                             hidden=a.hidden, feat=a.feat, seed=a.seed),
                parameters=sum(p.numel() for p in fl.flow.parameters()),
                size_bytes=path.stat().st_size, wall_seconds=round(wall, 1),
                hardware=f"CPU {platform.machine()}, torch threads: {torch.get_num_threads()}"
                if DEVICE.type == "cpu" else torch.cuda.get_device_name(DEVICE),
                processes=processes, precision=a.precision, torch=torch.__version__,
                final_loss_per_dim=sum(fl.losses[-50:]) / len(fl.losses[-50:]),
                command="python " + " ".join(sys.argv), recipe=recipe, metrics=metrics)
    samples_figure(fl, problem, xs[8000:8006], a.out / "samples.png")
    write_card(a.out / "model_card.json", card, indent=1)
    (a.out / "README.md").write_text(readme(card, a.task, NAMES[a.task]))
    print(json.dumps(card["metrics"], indent=1))


if __name__ == "__main__":
    main()
