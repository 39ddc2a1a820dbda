"""Train and ship a UD2M sampler on the shipped MNIST prior (the command in data/ud2m_mnist_*/README.md).

    python scripts/train_ud2m_mnist.py --task random_inpainting --out data/ud2m_mnist_random_inpainting
    python scripts/train_ud2m_mnist.py --task sr4 --out data/ud2m_mnist_sr4

Trains on clean MNIST test[0:8000] (the prior's own training images; measurements are made on the
fly, sigma = 0.05), evaluates on measurements of held-out images test[8000:], and writes
``sampler.pt``, ``model_card.json`` (sha256, settings, hardware, wall time, metrics) and
``README.md``.  Random inpainting trains in the general-operator mode: a fresh 50% mask per batch,
so the sampler works for any mask at inference.

Resumable: every ``--checkpoint-every`` steps the whole training state goes to
``<out>/checkpoints/last.pt`` (the one before kept as ``prev.pt``); the same command run again
resumes there (from ``prev.pt`` if ``last.pt`` is damaged) and ends with the weights of an
uninterrupted run.  Other settings than the run started with are refused.

Several processes: ``torchrun --nproc_per_node=W scripts/train_ud2m_mnist.py ...`` (each GPU its
shards of the --batch global batch; rank 0 writes the checkpoints, the sampler and its card;
docs/scaling.md).
"""
from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

import posterior_tutor as pt
from posterior_tutor.runtime import cli, distributed
from posterior_tutor.files.recipes import parse_with_recipe, recipe_line
from posterior_tutor.files.checkpoints import file_sha256
from posterior_tutor.files.run_checkpoint import RunCheckpoint
from posterior_tutor.files.safe import read_card, write_card
from posterior_tutor.tasks import image_problem


DEVICE = torch.device("cpu")   # set by main() from --device


def build_parser():
    """Every flag checked at parse time (``posterior_tutor.runtime.cli``): exit code 2, one line."""
    p = cli.Parser(prog="python scripts/train_ud2m_mnist.py", description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["random_inpainting", "sr4", "box_inpainting",
                                      "gaussian_deblur", "denoising"], required=True)
    p.add_argument("--out", type=cli.writable_dir, required=True)
    p.add_argument("--steps", type=cli.positive_int, default=1500)
    p.add_argument("--batch", type=cli.positive_int, default=32)
    p.add_argument("--lr", type=cli.positive_float, default=1e-3)
    p.add_argument("--adv-weight", type=cli.nonnegative_float, default=1.0)
    p.add_argument("--train-times", choices=["uniform", "grid"], default="uniform")
    p.add_argument("--K", type=cli.positive_int, default=3)
    p.add_argument("--N", type=cli.positive_int, default=3)
    p.add_argument("--sigma", type=cli.positive_float, default=0.05)
    p.add_argument("--sigma-factor", type=cli.positive_float, default=None,
                   help="sigma' / sigma (default: SIGMA_FACTOR[task], measured on untrained samplers)")
    p.add_argument("--rank", type=cli.positive_int, default=4)
    p.add_argument("--lora-layers", choices=["attention", "all"], default="attention",
                   help="attention: the attention projections + output conv (the paper's choice); "
                        "all: every Linear / Conv2d of the UNet")
    p.add_argument("--x0-weighting", choices=["snr", "uniform"], default="snr")
    p.add_argument("--seed", type=cli.nonnegative_int, default=0)
    p.add_argument("--init", type=Path, default=None,
                   help="a folder with sampler.pt (+ model_card.json) to continue training from "
                        "(its adapters, lambda, sigma'; give the same --rank and --lora-layers)")
    p.add_argument("--threads", type=cli.positive_int, default=1)
    p.add_argument("--checkpoint-every", type=cli.positive_int, default=100,
                   help="steps between checkpoints in OUT/checkpoints (a rerun resumes there)")
    p.add_argument("--eval-images", type=cli.positive_int, default=16,
                   help=f"held-out images test[8000:8000+n], n <= {HELD_OUT}")
    p.add_argument("--eval-samples", type=cli.positive_int, default=32)
    p.add_argument("--device", type=cli.device, default=None,
                   help="cpu, cuda or cuda:N (default: CUDA when present, else the CPU)")
    distributed.add_arguments(p)
    return p


HELD_OUT = 2000     # MNIST test[8000:10000]


def parse_args(argv=None):
    p = build_parser()
    a, recipe = parse_with_recipe(p, argv)
    if a.eval_images > HELD_OUT:
        p.error(f"argument --eval-images: {a.eval_images} is more than the {HELD_OUT} held-out "
                f"images; give 1 to {HELD_OUT}")
    if a.init is not None and not (a.init / "sampler.pt" if a.init.is_dir() else a.init).is_file():
        p.error(f"argument --init: no sampler.pt at {str(a.init)!r}; give a folder holding "
                "sampler.pt (a finished run's --out) or the file itself")
    distributed.check_arguments(p, a, a.batch)
    return a, recipe


# sigma' / sigma per task.  The re-noise level tau of each block has s(tau) <= sigma', so sigma'
# bounds the noise the prior ever sees: at the code's 2 sigma = 0.1 it cannot fill in missing
# pixels.  Untrained samplers (adapters at zero), 6 held-out digits x 8 samples, PSNR of the mean:
# random inpainting sigma' = 2/6/13/20/30/50 sigma: 13.3/20.1/25.2/25.5/25.0/23.8 dB (the code's
# inpainting constant is 13); 4x SR: 12.9/16.0/19.8/21.2/21.3/20.4 dB.
SIGMA_FACTOR = dict(random_inpainting=13.0, box_inpainting=13.0, sr4=20.0, gaussian_deblur=2.0,
                    denoising=2.0)


def evaluate(ud, task, sigma, xs, n_samples, seed):
    """PSNR / SSIM of single samples and of the sample mean, 90% coverage, seconds per sample
    (``pt.evaluation.evaluate_images``; one generator for every measurement and sample)."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    r = pt.evaluation.evaluate_images(
        lambda problem, y, n, gen: ud.sample(y, n, generator=gen, problem=problem), xs,
        lambda i: image_problem(task, sigma, generator=torch.Generator().manual_seed(10_000 + i)),
        lambda i: (g, g), n_samples)
    return dict(psnr_single=r["psnr_single"], psnr_mean=r["psnr_mean"],
                ssim_single=r["ssim_single"], ssim_mean=r["ssim_mean"], coverage_90=r["coverage"],
                rank_coverage_90=r["rank_coverage"], seconds_per_sample=r["seconds_per_sample"],
                images=len(xs), samples_per_image=n_samples, held_out="mnist test[8000:]")


def main(argv=None):
    a, recipe = parse_args(argv)
    torch.set_num_threads(a.threads)
    global DEVICE
    DEVICE = distributed.local_device(pt.runtime.config.resolve_device(a.device,
                                                                       exit_on_error=True))
    distributed.init(DEVICE, exit_on_error=True)
    den = pt.pretrained("mnist", device=DEVICE)
    xs = pt.data.load("mnist", split="test").to(DEVICE)
    train_x, held_out = xs[:8000], xs[8000:8000 + a.eval_images]
    init, init_card = load_init(a.init, den)
    done = len(init.losses) if init is not None else 0   # a continuation draws fresh batches
    g = torch.Generator(device=DEVICE).manual_seed(a.seed + done)
    mask_gen = torch.Generator().manual_seed(a.seed + done + 1)
    problem = image_problem(a.task, a.sigma, generator=torch.Generator().manual_seed(0))
    operators = ((lambda: image_problem(a.task, a.sigma, generator=mask_gen))
                 if a.task == "random_inpainting" else None)
    layers = None if a.lora_layers == "attention" else pt.ud2m.adaptable_layers(den.net)
    sigma_factor = a.sigma_factor
    if sigma_factor is None:     # the continued sampler's, else the measured one for the task
        sigma_factor = init.config["sigma_factor"] if init is not None else SIGMA_FACTOR[a.task]
    run = RunCheckpoint(a.out / "checkpoints", a.checkpoint_every, generators={"masks": mask_gen})
    try:
        ud = pt.ud2m.train(den, problem, train_x, generator=g, steps=a.steps, batch=a.batch,
                           lr=a.lr, adv_weight=a.adv_weight, operators=operators,
                           sigma_factor=sigma_factor, train_times=a.train_times, K=a.K, N=a.N,
                           rank=a.rank, lora_layers=layers, x0_weighting=a.x0_weighting,
                           init=init, progress=True, checkpoint=run, shards=a.shards,
                           precision=a.precision)
    except pt.files.checkpoints.CheckpointError as err:   # damaged checkpoints, other settings
        raise SystemExit(f"error: {err}") from None
    main_process, processes = distributed.is_main(), distributed.world()
    distributed.finish()                # training is done: rank 0 goes on alone
    if not main_process:                # rank 0 evaluates and writes the sampler and its card
        return
    wall = run.wall_seconds     # every session of the run, resumed ones included
    a.out.mkdir(parents=True, exist_ok=True)
    path = ud.save(a.out / "sampler.pt")
    den.clip = 1.0
    metrics = evaluate(ud, a.task, a.sigma, held_out, a.eval_samples, a.seed + 2)
    untrained = pt.ud2m.train(den, problem, train_x[:1], steps=0, sigma_factor=sigma_factor, K=a.K,
                              N=a.N, generator=torch.Generator(device=DEVICE).manual_seed(a.seed))
    untrained_metrics = evaluate(untrained, a.task, a.sigma, held_out, a.eval_samples, a.seed + 2)
    card = dict(sha256=file_sha256(path), task=a.task, sigma=a.sigma, prior="mnist",
                prior_sha256=den.card["sha256"], data="mnist test[0:8000] (clean; y on the fly)",
                general_operator=operators is not None, steps=a.steps, batch=a.batch, lr=a.lr,
                adv_weight=a.adv_weight, sigma_factor=sigma_factor, train_times=a.train_times,
                seed=a.seed, rank=a.rank, lora_layers=layers_kind(ud, den), x0_weighting=a.x0_weighting,
                adapted_layers=len(ud.denoiser.layers), K=ud.K, N=ud.N,
                nfe_per_sample=ud.nfe_per_sample, lam=ud.lam,
                hardware=hardware(processes), processes=processes, shards=a.shards,
                precision=a.precision, wall_seconds=round(wall, 1), size_bytes=path.stat().st_size,
                final_loss=sum(ud.losses[-50:]) / len(ud.losses[-50:]), torch=torch.__version__,
                command="python " + " ".join(sys.argv), recipe=recipe, metrics=metrics,
                total_steps=len(ud.losses), init=init_card,
                resumed_at_step=run.resumed_from[1] if run.resumed_from else None,
                untrained_metrics=untrained_metrics)
    write_card(a.out / "model_card.json", card)
    (a.out / "README.md").write_text(readme(card))
    print(json.dumps(card, indent=2))


def hardware(processes):
    if DEVICE.type == "cuda":
        return f"{torch.cuda.get_device_name(DEVICE)} x {processes}"
    return f"CPU {platform.machine()}, torch threads: {torch.get_num_threads()}"


def layers_kind(ud, den):
    return "all" if ud.denoiser.layers == pt.ud2m.adaptable_layers(den.net) else "attention"


def load_init(folder, den):
    """(sampler, its card's settings) to continue from, or (None, None)."""
    if folder is None:
        return None, None
    path = folder / "sampler.pt" if folder.is_dir() else folder
    if not path.exists():
        raise SystemExit(f"--init {folder}: no sampler.pt there.")
    init = pt.ud2m.UD2MSampler.load(path, den)
    card_path = path.parent / "model_card.json"
    card = read_card(card_path, require_sha256=False) if card_path.exists() else {}
    keep = ("command", "steps", "total_steps", "lr", "wall_seconds", "sha256")
    return init, {"path": str(path), **{k: card[k] for k in keep if k in card}}


def continued_line(card):
    init = card.get("init")
    if not init:
        return ""
    return (f"Continued from an earlier sampler ({init.get('total_steps', init.get('steps'))} "
            f"steps, lr {init.get('lr')}, {init.get('wall_seconds', 0) / 60:.1f} min; its command: "
            f"`{init.get('command')}`): {card['total_steps']} steps in all.\n")


def readme(card):
    m = card["metrics"]
    return f"""# UD2M sampler: MNIST {card['task']}, sigma = {card['sigma']}

A {card['K']} x {card['N']} unfolded sampler ({card['nfe_per_sample']} network calls per sample)
fine-tuned from the shipped MNIST prior (`data/mnist_prior`) by `pt.ud2m.train` ({lora_phrase(card)}, learned lambda = {card['lam']:.3g}), sigma' = {card['sigma_factor']:g} sigma.
{"Trained with a fresh random 50% mask per batch: it accepts any mask at inference." if card['general_operator'] else ""}

    ud = pt.ud2m.pretrained("mnist-{card['task'].replace('_', '-')}")
    xs = ud.sample(y, n=32, generator=g)          # or problem=<another InverseProblem>

Training: {card['data']}, {card['steps']} steps x batch {card['batch']}, lr {card['lr']},
adversarial weight {card['adv_weight']}, outer times {card.get('train_times', 'uniform')},
x0 error weighted {X0_WEIGHTING[card.get('x0_weighting', 'snr')]},
seed {card['seed']}, {card['hardware']}, {card['wall_seconds'] / 60:.1f} min.
Command: `{card['command']}`{recipe_line(card)}
{continued_line(card)}
Held-out evaluation ({m['images']} images of {m['held_out']}, {m['samples_per_image']} samples each):

| PSNR single | PSNR mean | SSIM single | SSIM mean | 90% coverage | s / sample |
|---|---|---|---|---|---|
| {m['psnr_single']:.2f} | {m['psnr_mean']:.2f} | {m['ssim_single']:.3f} | {m['ssim_mean']:.3f} | {m['coverage_90']:.3f} | {m['seconds_per_sample']:.4f} |

{untrained_line(card)}
sha256 of `sampler.pt`: `{card['sha256']}` (checked on loading).
"""


X0_WEIGHTING = {"snr": "by the SNR ab_t / (1 - ab_t) (the paper's)",
                "uniform": "alike at every outer time (x0_weighting='uniform')"}


def lora_phrase(card):
    rank = card.get("rank", 4)
    if card.get("lora_layers", "attention") == "all":
        return f"LoRA rank {rank} on all {card['adapted_layers']} Linear / Conv2d layers"
    return f"LoRA rank {rank} on the attention and output layers"


def untrained_line(card):
    """What the training bought: the same evaluation of the untrained sampler, when measured."""
    u = card.get("untrained_metrics")
    if not u:
        return ""
    return (f"The same evaluation of the untrained sampler (adapters at zero, same sigma'): PSNR "
            f"single {u['psnr_single']:.2f}, mean {u['psnr_mean']:.2f}, 90% coverage "
            f"{u['coverage_90']:.3f}. The sweeps behind these settings are in "
            "`docs/notes/ud2m.md`.\n")


if __name__ == "__main__":
    main()
