r"""The digit classifier whose features define the project's Frechet distance, and its training.

``metrics/frechet.py`` measures a Frechet distance in the 64-d penultimate embedding of a small
CNN instead of FID's Inception-v3 (Heusel et al. 2017): Inception's weights are not available
offline, and it was trained on 299 x 299 RGB photographs, so its features say little about 16 x 16
or 32 x 32 grey digits.  This module holds how that network (``nets.DigitClassifier``) is trained:

* ``DigitClassifier``: three 3x3 conv blocks with ReLU (2x2 max-pool while the map is larger than
  4x4), a linear embedding ``features(x)`` of ``feature_dim`` = 64 and a linear head to 10 logits.
* ``train_classifier``: cross-entropy, Adam, cosine-decayed learning rate, on random integer
  shifts of the training images (``random_shift``; background -1 fills the border), seeded.
* ``SPLITS``: the part of each data set that trains the classifier is the part its diffusion prior
  was trained on; the rest is held out, for the accuracy and as the reference set of the FD.
  ``floors`` lists the real-vs-real pairs whose FD the model card records.
* ``save_classifier``: ``classifier.pt`` (config + state dict, written atomically) and a
  ``model_card.json`` holding its sha256; loading it back is ``metrics.frechet.load_classifier``.

The command that trains and ships one (``data/classifiers/<name>/``):

    python scripts/train_classifier.py --data mnist --out data/classifiers/mnist
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checks.values import check_generator
from ..metrics._coerce import check_images
from ..nets import DigitClassifier
from ..files.checkpoints import file_sha256, save_atomic
from ..files.safe import write_card

__all__ = ["DigitClassifier", "train_classifier", "accuracy", "random_shift", "check_images",
           "save_classifier", "split_images", "noise_images", "SPLITS", "CLASSIFIER_FORMAT"]

CLASSIFIER_FORMAT = 1

# MNIST caveat: the first 5000 test images (NIST SD-3, cleaner) differ from the last 5000 (SD-1,
# harder), so the held-out 8000:10000 is all "hard" while the training part 0:8000 is 5/8 "easy";
# the floors show the size of that shift.
DIGITS_WINDOWS = {f"train[{i}:{i + 297}] vs heldout[1500:1797]": (slice(i, i + 297), slice(1500, 1797))
                  for i in range(0, 1500 - 296, 297)}
SPLITS = {
    "mnist": {"split": "test", "train": (0, 8000), "heldout": (8000, 10000), "shift": 2,
              "floors": {
                  "heldout[8000:9000] vs heldout[9000:10000]": (slice(8000, 9000), slice(9000, 10000)),
                  "train[0:2000] vs heldout[8000:10000]": (slice(0, 2000), slice(8000, 10000)),
                  "train[6000:8000] vs heldout[8000:10000]": (slice(6000, 8000), slice(8000, 10000)),
                  "train[0:8000:4] vs heldout[8000:10000]": (slice(0, 8000, 4), slice(8000, 10000))}},
    "digits": {"split": "all", "train": (0, 1500), "heldout": (1500, 1797), "shift": 1,
               "floors": DIGITS_WINDOWS},
}


def random_shift(x: torch.Tensor, max_shift: int, generator=None) -> torch.Tensor:
    """Each image moved by its own random integer (dy, dx) in [-max_shift, max_shift]; the
    uncovered border is background (-1)."""
    check_generator(generator)
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]           # (n, h, 1)
    cols = (dx + torch.arange(w))[:, None, :]           # (n, 1, w)
    out = padded[torch.arange(n)[:, None, None], :, rows, cols]  # (n, h, w, C)
    return out.permute(0, 3, 1, 2).contiguous()


def train_classifier(images: torch.Tensor, labels: torch.Tensor, steps: int = 1500,
                     batch: int = 128, lr: float = 2e-3, seed: int = 0, max_shift: int = 2,
                     progress: bool = False) -> tuple[DigitClassifier, dict]:
    """Train a ``DigitClassifier`` with Adam (cosine-decayed lr) on random shifts of ``images``.

    Returns the classifier (eval mode, no grad) and a dict with the wall time and final loss.
    Batches and shifts come from a generator seeded by ``seed``; so does the initialisation
    (without touching the global RNG), so a run is reproducible on one machine."""
    check_images(images, "images")
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DigitClassifier(images.shape[-1])
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 50)
    losses, start = [], time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, images.shape[0], (batch,), generator=g)
        loss = F.cross_entropy(net(random_shift(images[idx], max_shift, g)), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress and (step + 1) % 250 == 0:
            print(f"step {step + 1}/{steps}  loss {np.mean(losses[-250:]):.4f}", flush=True)
    info = {"wall_seconds": round(time.perf_counter() - start, 1),
            "final_loss": round(float(np.mean(losses[-100:])), 4)}
    return net.eval().requires_grad_(False), info


@torch.no_grad()
def accuracy(clf: DigitClassifier, images: torch.Tensor, labels: torch.Tensor,
             batch: int = 500) -> float:
    """Fraction of images whose argmax logit is the label."""
    check_images(images, "images", clf.in_size)
    clf.eval()
    pred = torch.cat([clf(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
    return (pred == torch.as_tensor(labels)).double().mean().item()


def save_classifier(clf: DigitClassifier, out, card: dict) -> Path:
    """Write ``out/classifier.pt`` (atomically) and ``out/model_card.json`` = card + sha256."""
    out = Path(out)
    path = out / "classifier.pt"
    save_atomic({"format": CLASSIFIER_FORMAT, "config": clf.config(),
                  "state": clf.state_dict()}, path)
    card = {"sha256": file_sha256(path), "size_bytes": path.stat().st_size, **card}
    write_card(out / "model_card.json", card)
    return path


def split_images(name: str, root=None):
    """(train images, train labels, held-out images, held-out labels) of a shipped data set."""
    from .. import data
    if name not in SPLITS:
        raise ValueError(f"split_images: unknown data set {name!r}; known: {', '.join(sorted(SPLITS))}.")
    spec = SPLITS[name]
    x, y = data.load(name, split=spec["split"], root=root, labels=True)
    (a, b), (c, d) = spec["train"], spec["heldout"]
    return x[a:b], y[a:b], x[c:d], y[c:d]


def noise_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Standard Gaussian noise images clipped to [-1, 1]: a sanity reference (FD should be huge)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, 1, size, size), generator=g).clamp(-1, 1)
