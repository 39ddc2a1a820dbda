"""Denoising score matching (Ho et al. 2020; Vincent 2011) for eps-prediction networks.

    L(theta) = E_{x0, t ~ U{0..T-1}, eps} | eps_theta(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t) - eps |^2

minimised with AdamW; an exponential moving average (EMA) of the weights is what gets used for
sampling (it gives visibly better samples at no cost).  ``train_denoiser`` is the in-memory loop
used by the notebooks for the toy priors.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ..files.checkpoints import CheckpointError, file_sha256, load_state, save_atomic
from ..denoisers import EpsNetDenoiser
from ..runtime import distributed
from ..runtime.progress import bar, wanted
from ..files.safe import changed_settings, read_card, read_latest, write, write_card
from ..schedules import VPSchedule


def dsm_loss(net, x0: torch.Tensor, sched: VPSchedule, generator=None) -> torch.Tensor:
    """One Monte Carlo estimate of the DSM loss on a batch x0."""
    t = torch.randint(0, sched.T, (x0.shape[0],), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0)
    x_t = sched.add_noise(x0, t, noise=eps)
    return (net(x_t, t) - eps).pow(2).flatten(1).sum(1).mean()


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p, 1 - decay)


def train_denoiser(net: torch.nn.Module, data: torch.Tensor, sched: VPSchedule | None = None,
                   steps: int = 2000, batch: int = 256, lr: float = 2e-3, ema_decay: float = 0.995,
                   generator: torch.Generator | None = None, progress: bool | None = None):
    """Fit ``net`` (an eps predictor) to ``data`` (N, ...) by DSM; returns (denoiser, losses).

    The returned denoiser wraps the EMA copy of the network.  ``progress``: a tqdm bar (None: on,
    except under pytest; see ``posterior_tutor.runtime.progress``)."""
    if not torch.isfinite(data).all():
        raise ValueError("training data contains NaN or Inf values.")
    if data.ndim == 4:  # images: the schedule assumes data scaled to [-1, 1]
        check_image_range(data)
    sched = sched or VPSchedule()
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    lr_decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    losses = []
    rng = bar(range(steps), "training denoiser", total=steps, progress=progress)
    start = time.perf_counter()
    for _ in rng:
        idx = torch.randint(0, data.shape[0], (batch,), generator=generator)
        loss = dsm_loss(net, data[idx], sched, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        lr_decay.step()
        ema_update(ema, net, ema_decay)
        losses.append(loss.item())
    den = EpsNetDenoiser(ema.eval(), sched, shape=tuple(data.shape[1:]))
    den.train_seconds = time.perf_counter() - start
    return den, losses


# =================================================================================================
# Image priors: the training command (python -m posterior_tutor.priors.train, its flags in
# train_cli.py), checkpoints, resume, DDP
# =================================================================================================
# One step draws the *global* batch (indices, t, eps) from a generator seeded by (seed, step), so
#   * resuming from a checkpoint continues exactly the same run (no RNG state to save), and
#   * under torchrun each of W processes takes its 1/W slice of the same global batch; DDP averages
#     the gradients, which equals the gradient of the mean loss over the global batch.  Two
#     processes therefore train the same model as one process (tests/priors/test_prior_training.py checks it).

CHECKPOINT_FORMAT = 1


@dataclasses.dataclass
class TrainConfig:
    data: str = "digits"            # digits | mnist | olivetti (posterior_tutor.data)
    split: str = "train"            # MNIST split
    subset: str | None = None       # "start:stop" slice of the split (e.g. hold out the rest)
    size: int | None = None         # image size (None: the data set's default)
    channels: tuple = (32, 64, 64)  # UNet widths per resolution
    attention: bool = True
    dropout: float = 0.0
    steps: int = 2000
    batch: int = 128                # global batch (split across processes under torchrun)
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.0
    ema: float = 0.999
    clip: float = 1.0               # gradient-norm clipping
    ckpt_every: int = 250           # an interruption loses at most this many steps
    seed: int = 0
    out: str = "runs/prior"
    data_root: str | None = None    # local data folder (else POSTERIOR_TUTOR_DATA, cache, download)


class SubsetError(ValueError):
    """A ``subset`` START:STOP that selects no image of the data set."""


def load_training_images(cfg: TrainConfig) -> torch.Tensor:
    from .. import data
    x = data.load(cfg.data, split=cfg.split, root=cfg.data_root, size=cfg.size)
    if cfg.subset:
        start, stop = (int(v) if v.strip() else None for v in cfg.subset.split(":"))
        n, x = len(x), x[start:stop]
        if len(x) == 0:
            raise SubsetError(f"{cfg.subset!r} selects no image: {cfg.data} {cfg.split} has {n} "
                              f"images; give START:STOP with START < {n}")
    check_image_range(x)
    return x


def check_image_range(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"images must be (n, C, H, W), got shape {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise ValueError("training images contain NaN or Inf values.")
    lo, hi = x.min().item(), x.max().item()
    if lo < -1.001 or hi > 1.001:
        raise ValueError(f"images must be scaled to [-1, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                         "for uint8 images use x / 127.5 - 1.")


def batch_for_step(cfg: TrainConfig, step: int, n_data: int, shape, T: int, rank: int = 0,
                   world: int = 1):
    """(indices, t, eps) of this process's slice of the global batch of ``step``."""
    part = distributed.shard_slice(cfg.batch, rank, world)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    idx = torch.randint(0, n_data, (cfg.batch,), generator=g)
    t = torch.randint(0, T, (cfg.batch,), generator=g)
    eps = torch.randn((cfg.batch, *shape), generator=g)
    return idx[part], t[part], eps[part]


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 10% of lr at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def build_unet(cfg: TrainConfig, in_ch: int = 1):
    from ..nets import UNet
    return UNet(in_ch, channels=tuple(cfg.channels), attention=cfg.attention, dropout=cfg.dropout)


def train_prior(cfg: TrainConfig, progress: bool | None = None, device: str = "cpu",
                recipe: dict | None = None) -> Path:
    """Train (or resume) an image prior; returns the path of the final checkpoint ``prior.pt``.

    Writes ``out/last.pt`` every ``ckpt_every`` steps (checksummed, atomically; the one before is
    kept as ``prev.pt`` and used when ``last.pt`` is damaged) and, at the end, ``prior.pt`` (EMA
    weights + config) with ``model_card.json`` (its sha256 and the run's metadata).  A resume must
    have the settings the run started with (``_resume``), so the card describes the whole run.
    ``recipe``: the recipe record (``recipes.parse_with_recipe``) the card keeps, if any."""
    rank, world = distributed.init(device)
    out = Path(cfg.out)
    x = load_training_images(cfg).to(device)
    sched = VPSchedule()
    torch.manual_seed(cfg.seed)  # the same initial weights in every process and every run
    net = build_unet(cfg, x.shape[1]).to(device)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, wall, losses, resumed = 0, 0.0, [], []
    ckpt, used = read_latest(out / "last.pt", move_aside=rank == 0)
    if ckpt is not None:
        start, wall, losses, resumed = _resume(ckpt, used, cfg, net, ema, opt)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    steps_bar = bar(range(start, cfg.steps), "training prior", total=cfg.steps,
                    progress=wanted(progress) and rank == 0, initial=start)
    t0 = time.perf_counter()
    for step in steps_bar:
        idx, t, eps = batch_for_step(cfg, step, x.shape[0], x.shape[1:], sched.T, rank, world)
        t, eps = t.to(device), eps.to(device)
        loss = (model(sched.add_noise(x[idx], t, noise=eps), t) - eps).pow(2).flatten(1).sum(1).mean()
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
        opt.step()
        ema_update(ema, net, min(cfg.ema, (1 + step) / (10 + step)))
        losses.append(loss.item())
        if hasattr(steps_bar, "set_postfix") and step % 10 == 0:
            steps_bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.2f}")
        done = step + 1
        if rank == 0 and (done % cfg.ckpt_every == 0 or done == cfg.steps):
            write({"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(cfg), "step": done,
                   "wall": wall + time.perf_counter() - t0, "net": net.state_dict(),
                   "ema": ema.state_dict(), "opt": opt.state_dict(), "resumed_at": resumed,
                   "losses": torch.tensor(losses, dtype=torch.float64)},
                  out / "last.pt", keep_previous=True)
    wall += time.perf_counter() - t0
    if rank == 0:
        _write_final(out, cfg, ema, x, wall, world, device, losses, resumed, recipe)
    distributed.barrier()
    return out / "prior.pt"


# settings that do not change the model: a resume may differ in these (and in --device, --threads)
RESUME_MAY_CHANGE = ("ckpt_every", "out", "data_root")


def _resume(ckpt: dict, path: Path, cfg: TrainConfig, net, ema, opt):
    """Load a checkpoint into (net, ema, opt); refuses one written with other settings.
    Returns (step, wall seconds, loss per step so far, steps at which the run was resumed)."""
    diff = changed_settings(ckpt["config"], dataclasses.asdict(cfg), RESUME_MAY_CHANGE,
                            "this command")
    if diff:
        raise CheckpointError(
            f"{path} belongs to a run started with other settings: {'; '.join(diff)}. A resumed "
            "run must keep the settings it started with, or its card would describe a run that "
            "never happened: resume with the same flags, or start a new run with another --out.")
    load_state(net, ckpt["net"], path)
    load_state(ema, ckpt["ema"], path)
    opt.load_state_dict(ckpt["opt"])
    step = int(ckpt["step"])
    losses = ckpt["losses"].tolist() if "losses" in ckpt else []
    resumed = list(ckpt.get("resumed_at", [])) + ([step] if step < cfg.steps else [])
    return step, float(ckpt.get("wall", 0.0)), losses, resumed


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads")


def _write_final(out: Path, cfg: TrainConfig, ema, x, wall, world, device, losses,
                 resumed=(), recipe=None) -> None:
    path = out / "prior.pt"
    save_atomic({"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(cfg),
                  "shape": list(x.shape[1:]), "ema": ema.state_dict()}, path)
    from ..nets import count_parameters
    card = {"sha256": file_sha256(path), "data": cfg.data, "split": cfg.split, "subset": cfg.subset,
            "n_train": int(x.shape[0]), "shape": list(x.shape[1:]), "steps": cfg.steps,
            "batch": cfg.batch, "seed": cfg.seed, "processes": world, "device": device,
            "resumed_at": list(resumed),
            "hardware": hardware(), "wall_seconds": round(wall, 1),
            "parameters": count_parameters(ema), "size_bytes": path.stat().st_size,
            "final_loss": round(sum(losses[-100:]) / max(1, len(losses[-100:])), 4) if losses else None,
            "torch": torch.__version__,
            "command": "python -m posterior_tutor.priors.train " + " ".join(sys.argv[1:]),
            "recipe": recipe, "config": dataclasses.asdict(cfg)}
    old = out / "model_card.json"
    if old.exists():  # keep metrics that an evaluation added earlier only if the weights match
        try:
            prev = read_card(old, require_sha256=False)
        except CheckpointError:  # an unreadable card is replaced
            prev = {}
        if prev.get("sha256") == card["sha256"]:
            card = {**prev, **card}
    write_card(old, card)


if __name__ == "__main__":   # the command line lives in train_cli.py
    from .train_cli import main
    main()
