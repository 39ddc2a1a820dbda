"""The command line of ``python -m posterior_tutor.priors.train``: one flag per ``TrainConfig`` field.

Every flag is checked when it is parsed (``posterior_tutor.runtime.cli``), before any data is
loaded: counts must be >= 1 (``--steps 0`` would write an untrained prior, ``--batch 0`` trains to
NaN, ``--ckpt-every 0`` divides by zero), ``--attention`` must be a yes/no word, ``--subset`` a
non-empty ``START:STOP`` slice, ``--device`` a device present here, ``--out`` a writable folder.
A refused flag is one line, ``prog: error: argument --flag: ...``, and exit code 2.

    python -m posterior_tutor.priors.train --data digits --steps 4000 --out runs/digits_prior
    python -m posterior_tutor.priors.train --recipe mnist_prior.json --steps 10
"""
from __future__ import annotations

import argparse
import dataclasses
import os

import torch

from ..files.checkpoints import CheckpointError
from ..files.recipes import parse_with_recipe
from ..runtime import cli
from .train import SubsetError, TrainConfig, train_prior
from ..runtime import distributed

PROG = "python -m posterior_tutor.priors.train"


def subset(text: str) -> str:
    """``START:STOP`` (whole numbers, 0 <= START < STOP; either may be left out: ``:8000``,
    ``1500:``), the slice of the split to train on.  Returned as given (the card keeps it)."""
    rule = "START:STOP with whole numbers 0 <= START < STOP (either may be left out, e.g. 0:8000)"
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
    try:
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
    if (start is not None and start < 0) or (stop is not None and stop < 1) or (
            start is not None and stop is not None and start >= stop):
        raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
    return text


def widths(text: str) -> tuple:
    """Comma-separated UNet widths, each a whole number >= 1 (``32,64,64``)."""
    try:
        out = tuple(cli.positive_int(w.strip()) for w in str(text).split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("expected comma-separated whole numbers >= 1 (e.g. "
                                         f"32,64,64), got {text!r}") from None
    return out


TYPES = {  # TrainConfig field -> its argparse type (every field has one: a new field needs one)
    "data": cli.choice("digits", "mnist", "olivetti", "kmnist"), "split": cli.choice("train", "test"),
    "subset": subset, "size": cli.positive_int, "channels": widths, "attention": cli.boolean,
    "dropout": cli.probability, "steps": cli.positive_int, "batch": cli.positive_int,
    "lr": cli.positive_float, "warmup": cli.nonnegative_int, "weight_decay": cli.nonnegative_float,
    "ema": cli.probability, "clip": cli.positive_float, "ckpt_every": cli.positive_int,
    "seed": cli.nonnegative_int, "out": cli.writable_dir, "data_root": cli.existing_dir}
HELP = {"channels": "UNet widths, comma-separated", "subset": subset.__doc__.split("\n")[0],
        "attention": "yes/no"}


def build_parser() -> cli.Parser:
    p = cli.Parser(prog=PROG, description="Train a diffusion prior (eps-prediction UNet, DSM, "
                   "EMA) on an image data set; resumes from OUT/last.pt if present. Runs under "
                   "torchrun --nproc_per_node=N as well (DDP).")
    d = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        default = getattr(d, f.name)
        p.add_argument("--" + f.name.replace("_", "-"), type=TYPES[f.name], help=HELP.get(f.name),
                       default=",".join(map(str, default)) if f.name == "channels" else default)
    p.add_argument("--device", type=cli.device, default=None,
                   help="cpu, cuda or cuda:N (default: CUDA when present, else the CPU)")
    p.add_argument("--threads", type=cli.positive_int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> None:
    parser = build_parser()
    args, recipe = parse_with_recipe(parser, argv)
    a = vars(args)
    a.pop("recipe")
    device, threads, quiet = a.pop("device"), a.pop("threads"), a.pop("no_progress")
    try:
        world = distributed.launched_world()
    except ValueError as err:
        parser.error(str(err))
    if a["batch"] % world:
        parser.error(f"argument --batch: {a['batch']} does not split evenly over the {world} "
                     "processes; give a multiple of the process count")
    if threads is not None:
        torch.set_num_threads(threads)
    if a["data"] == "kmnist" and a["split"] != "test":
        parser.error(f"argument --split: {a['split']!r}: KMNIST has only the 'test' split here")
    a["out"] = str(a["out"])
    a["data_root"] = None if a["data_root"] is None else str(a["data_root"])
    device = str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(device)
    try:
        path = train_prior(TrainConfig(**a), progress=False if quiet else None, device=device,
                           recipe=recipe)
    except SubsetError as err:       # START:STOP beyond the data set: known once it is loaded
        parser.error(f"argument --subset: {err}")
    except CheckpointError as err:   # a damaged checkpoint or a resume with other settings
        raise SystemExit(f"error: {err}") from None
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
