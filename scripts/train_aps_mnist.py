"""Train and ship an APS flow on the shipped MNIST prior (the command in data/aps_mnist_*/README.md).

    python scripts/train_aps_mnist.py --task denoising --out data/aps_mnist_denoising
    python scripts/train_aps_mnist.py --task sr4 --out data/aps_mnist_sr4 --resume data/aps_mnist_sr4/flow.pt

Trains on measurements (one fixed noise draw each, seed 1) of MNIST test[0:8000], the prior's own
training images; no clean image enters the loss.  Checkpoints every ``--save-every`` steps to
``<out>/flow.pt`` and stops cleanly at ``--minutes`` (the card records the steps done), so a run can
be resumed with ``--resume`` (also after a kill: the steps done are the length of the loss curve in
flow.pt).  A resume is a warm restart (a fresh optimiser, cosine schedule and generator) and may
change --steps, --batch, --lr, --anneal-steps and --seed: each session's settings and the step it
began at are saved with the flow and listed in the card ("sessions"), so the card describes the
whole run; --hidden and --feat (the network's shape) must stay.  Evaluates on measurements of held-out MNIST test[8000:] and of KMNIST
(out of distribution): PSNR / SSIM of the sample mean and of single samples, the baseline A^T y
upsampled (bilinear for SR, y itself for denoising), chi^2 per measurement dimension, 90% coverage,
and the flow's seconds per sample.  Writes ``flow.pt``, ``model_card.json`` and ``README.md``.
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
from posterior_tutor.runtime import cli
from posterior_tutor.files.recipes import parse_with_recipe, recipe_line
from posterior_tutor.files.checkpoints import file_sha256
from posterior_tutor.files.safe import write_card

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
    keys = {"psnr_mean": "psnr_mean", "psnr_single": "psnr_single", "ssim_mean": "ssim_mean",
            "ssim_single": "ssim_single", "psnr_baseline": "psnr_baseline",
            "chi2_per_dim": "chi2_per_dim", "coverage90": "coverage",
            "rank_coverage90": "rank_coverage", "pixel_std": "pixel_std"}
    out = {k: round(r[v], 4) for k, v in keys.items()}
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
                          anneal_steps=a.anneal_steps, hidden=a.hidden, feat=a.feat)
        fl.config["sessions"] = [session(a, 0)]        # saved with the flow
        done = 1
    state = dict(steps=done, stopped="planned steps")
    deadline = time.perf_counter() + 60 * a.minutes
    out = a.out / "flow.pt"

    def checkpoint(step, fl):
        state["steps"] = step + 1
        if (step + 1) % a.save_every == 0:
            fl.save(out)
        if time.perf_counter() > deadline:
            state["stopped"] = "budget"
            raise StopIteration

    try:
        pt.aps.fit(fl, problem, ys, steps=a.steps - done, generator=g, progress=True, lr=a.lr,
                   start_step=done, callback=checkpoint)
    except StopIteration:
        pass
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
    DEVICE = pt.runtime.config.resolve_device(a.device, exit_on_error=True)
    a.out.mkdir(parents=True, exist_ok=True)
    den = pt.pretrained("mnist", device=DEVICE)
    problem = pt.aps.shipped_problem(NAMES[a.task])
    xs = pt.data.load("mnist", split="test").to(DEVICE)
    ys = training_set(problem, xs[:8000])
    start = time.perf_counter()
    fl, state, path = train(a, den, problem, ys)
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
                hardware=f"CPU {platform.machine()}, torch threads: {torch.get_num_threads()}",
                torch=torch.__version__,
                final_loss_per_dim=sum(fl.losses[-50:]) / len(fl.losses[-50:]),
                command="python " + " ".join(sys.argv), recipe=recipe, metrics=metrics)
    samples_figure(fl, problem, xs[8000:8006], a.out / "samples.png")
    write_card(a.out / "model_card.json", card, indent=1)
    (a.out / "README.md").write_text(readme(card, a.task))
    print(json.dumps(card["metrics"], indent=1))


def readme(card, task):
    m, k = card["metrics"]["held_out_mnist"], card["metrics"]["kmnist_out_of_distribution"]
    base = "y itself" if task == "denoising" else "y upsampled bilinearly"
    row = (" | {psnr_mean:.2f} | {psnr_single:.2f} | {ssim_mean:.3f} | {psnr_baseline:.2f} | "
           "{chi2_per_dim:.2f} | {coverage90:.3f} |")
    return f"""# APS flow: {card['task']}

A conditional normalising flow q(x | y) trained by `posterior_tutor.trained.aps` (APS, Mammadov,
Chung, Ye 2024) against the shipped diffusion prior `data/mnist_prior`: reverse KL with the
diffusion ELBO (importance-sampled t, gradients through the frozen prior) in place of log p.

    den = pt.pretrained("mnist")
    fl = pt.aps.pretrained("{NAMES[task]}", den)   # sha256-checked against model_card.json
    y = fl.problem.measure(x_true)                 # x_true: (1, 32, 32) in [-1, 1]
    xs = fl.sample(y, n=128)                       # one flow pass for all 128 samples

Training: {card['data']}; {card['steps']} of {card['steps_planned']} planned steps
(stopped: {card['stopped']}), options {card['options']}, {card['hardware']},
{card['wall_seconds'] / 60:.1f} min{', resumed from ' + card['resumed_from'] if card['resumed_from'] else ''}.
Command: `{card['command']}`{recipe_line(card)}{sessions_line(card.get('sessions', []))}

Evaluation, {m['images']} measurements each, {m['samples_per_image']} samples per measurement
(baseline: {base}; chi^2 = |y - A x|^2 / (m sigma^2), 1 when calibrated):

| data | PSNR mean | PSNR single | SSIM mean | baseline PSNR | chi^2 / dim | 90% coverage |
|---|---|---|---|---|---|---|
| MNIST held out{row.format(**m)}
| KMNIST (out of distribution){row.format(**k)}

`samples.png`: truth, y, the 128-sample mean and three samples for six held-out digits.

Seconds per sample (batch of {m['samples_per_image']}, CPU): {m['seconds_per_sample']:.2e}.
{dps_lines(card['metrics'].get('dps_comparison'))}
sha256 of `flow.pt`: `{card['sha256']}` (checked on loading).
"""


def sessions_line(sessions):
    """One line per training session when the run was resumed (its settings and first step)."""
    if len(sessions) < 2:
        return ""
    return "\nSessions: " + "; ".join(f"from step {s['from_step']}: " + ", ".join(
        f"{k} {v}" for k, v in s.items() if k != "from_step") for s in sessions) + "."


def dps_lines(c):
    if not c:
        return ""
    a, d = c["aps"], c["dps"]
    return (f"\nAgainst DPS in the same run ({c['measurements']}; APS {a['samples']} samples, DPS "
            f"{d['samples']}): PSNR of the mean {a['psnr_mean']:.2f} vs {d['psnr_mean']:.2f} dB, "
            f"single {a['psnr_single']:.2f} vs {d['psnr_single']:.2f}, SSIM of the mean "
            f"{a['ssim_mean']:.3f} vs {d['ssim_mean']:.3f}; seconds per sample "
            f"{a['seconds_per_sample']:.2e} vs {d['seconds_per_sample']:.2f}: APS is "
            f"**{c['speedup']:,.0f}x** faster.\n")


if __name__ == "__main__":
    main()
