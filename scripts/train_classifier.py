"""Train the digit classifier whose features define the Frechet distance, and ship it.

    python scripts/train_classifier.py --data mnist --out data/classifiers/mnist
    python scripts/train_classifier.py --data digits --out data/classifiers/digits
    python scripts/train_classifier.py --data mnist --out data/classifiers/mnist --floors-only

Trains ``posterior_tutor.nets.DigitClassifier`` on the training part of the data
set (the images its diffusion prior was trained on, ``classifier.SPLITS``), then writes
``<out>/classifier.pt`` and ``<out>/model_card.json``: held-out and train accuracy, the settings,
the machine, this command and the *floors*, the FD (``metrics.frechet.real_floor``) between real
image sets of the split at fixed sizes, plus Gaussian noise against the held-out images as a
sanity reference.  ``--floors-only`` keeps the classifier in OUT and recomputes the floors of its
card.  Bad flags exit with code 2 and one line saying what is accepted (``runtime/cli.py``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from posterior_tutor.evaluation.classifier import (SPLITS, accuracy, noise_images, save_classifier,
                                                   split_images, train_classifier)
from posterior_tutor.files.safe import read_card, write_card
from posterior_tutor.metrics.frechet import digit_frechet, load_classifier, real_floor
from posterior_tutor.runtime.cli import (Parser, choice, nonnegative_int, positive_float,
                                         positive_int, writable_dir)

PROG = "python scripts/train_classifier.py"

NOTES = {
    "digits": "FD values are comparable only with FDs from this classifier (same sha256) and at "
              "the same set sizes as the floor they are compared with. At 297 images the 64-d "
              "covariance is poorly estimated: the floors of the five training windows show the "
              "spread that comes from the choice of images alone.",
    "mnist": "FD values are comparable only with FDs from this classifier (same sha256) and at the "
             "same set sizes as the floor they are compared with. MNIST test images 0:5000 are "
             "cleaner than 5000:10000, so the held-out 8000:10000 is all from the harder half: "
             "train[6000:8000] (same half) shows the same-distribution floor at 2000 vs 2000, "
             "train[0:8000:4] (the prior's training mix) what a perfect model of the training "
             "images would score against the held-out images.",
}


def floors(name: str, clf, root=None) -> dict:
    """The real-vs-real floors of SPLITS[name] and the noise-vs-held-out reference."""
    from posterior_tutor import data
    spec = SPLITS[name]
    x = data.load(name, split=spec["split"], root=root)
    out = {}
    for label, (a, b) in spec["floors"].items():
        out[label] = {"n_a": len(x[a]), "n_b": len(x[b]), "fd": round(real_floor(x[a], x[b], clf), 4)}
    c, d = spec["heldout"]
    noise_fd = digit_frechet(noise_images(d - c, x.shape[-1]), x[c:d], clf)
    out[f"noise vs heldout[{c}:{d}]"] = {"n_a": d - c, "n_b": d - c, "fd": round(noise_fd, 4)}
    return out


def update_floors(out, name: str, root=None) -> dict:
    """Recompute the floors of the classifier in ``out`` and rewrite its model card."""
    card_path = Path(out) / "model_card.json"
    clf = load_classifier(Path(out) / "classifier.pt")
    card = {**read_card(card_path), "floors": floors(name, clf, root)}
    write_card(card_path, card)
    return card["floors"]


def parser() -> Parser:
    """The command's flags, each checked at parse time."""
    p = Parser(prog=PROG, description="Train the digit classifier whose features define the "
               "Frechet distance; writes classifier.pt and model_card.json (held-out accuracy, "
               "real-vs-real floors).")
    p.add_argument("--data", type=choice(*sorted(SPLITS)), default="mnist",
                   help=f"data set: {', '.join(sorted(SPLITS))}")
    p.add_argument("--out", type=writable_dir, required=True, help="folder for the two files")
    p.add_argument("--steps", type=positive_int, default=1500)
    p.add_argument("--batch", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    p.add_argument("--data-root", default=None, help="local data folder (else POSTERIOR_TUTOR_DATA)")
    p.add_argument("--floors-only", action="store_true",
                   help="keep the classifier in OUT, recompute the floors of its model card")
    return p


def parse_args(argv=None):
    """Parsed flags; a --floors-only run without OUT/classifier.pt is refused here (exit 2)."""
    p = parser()
    a = p.parse_args(argv)
    if a.floors_only and not (a.out / "classifier.pt").is_file():
        p.error(f"argument --floors-only: no classifier.pt in --out {str(a.out)!r}; train one "
                "first (drop --floors-only)")
    return a


def train_card(a, argv) -> tuple:
    """Train on the split of ``a.data``; returns (classifier, its model card without sha256)."""
    from posterior_tutor.nets import count_parameters
    from posterior_tutor.priors.train import hardware
    spec = SPLITS[a.data]
    xtr, ytr, xho, yho = split_images(a.data, a.data_root)
    clf, info = train_classifier(xtr, ytr, a.steps, a.batch, a.lr, a.seed, spec["shift"],
                                 progress=True)
    args = sys.argv[1:] if argv is None else argv
    card = {"data": a.data, "split": spec["split"], "train_subset": "%d:%d" % spec["train"],
            "heldout_subset": "%d:%d" % spec["heldout"], "n_train": len(xtr), "n_heldout": len(xho),
            "heldout_accuracy": round(accuracy(clf, xho, yho), 4),
            "train_accuracy": round(accuracy(clf, xtr, ytr), 4),
            "config": clf.config(), "parameters": count_parameters(clf), "steps": a.steps,
            "batch": a.batch, "lr": a.lr, "seed": a.seed, "max_shift": spec["shift"],
            "wall_seconds": info["wall_seconds"], "final_loss": info["final_loss"],
            "hardware": hardware(), "torch": torch.__version__,
            "command": f"{PROG} " + " ".join(str(x) for x in args),
            "floors": floors(a.data, clf, a.data_root),
            "note": NOTES[a.data]}
    return clf, card


def main(argv=None) -> None:
    """Train and write the classifier and its card, or (--floors-only) refresh the floors."""
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.floors_only:
        print(json.dumps(update_floors(a.out, a.data, a.data_root), indent=2))
        return
    clf, card = train_card(a, argv)
    path = save_classifier(clf, a.out, card)
    print(f"wrote {path}: held-out accuracy {card['heldout_accuracy']:.4f}")
    print(json.dumps(card["floors"], indent=2))


if __name__ == "__main__":
    main()
