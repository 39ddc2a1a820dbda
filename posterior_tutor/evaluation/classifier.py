r"""The digit classifier whose features define the project's Frechet distance, and its training.

``metrics/frechet.py`` measures a Frechet distance in the 64-d penultimate embedding of a small
CNN instead of FID's Inception-v3 (Heusel et al. 2017): Inception's weights are not available
offline, and it was trained on 299 x 299 RGB photographs, so its features say little about 16 x 16
or 32 x 32 grey digits.  This module holds that network and how it is trained:

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
import torch.nn as nn
import torch.nn.functional as F

from ..checks.values import check_generator
from ..files.checkpoints import file_sha256, save_atomic
from ..files.safe import write_card

__all__ = ["DigitClassifier", "train_classifier", "accuracy", "random_shift", "check_images",
           "save_classifier", "split_images", "noise_images", "SPLITS", "CLASSIFIER_FORMAT"]

CLASSIFIER_FORMAT = 1
RANGE_TOLERANCE = 0.5  # images may stray this far outside [-1, 1] (unclipped samples); more is an error

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


class DigitClassifier(nn.Module):
    """A small CNN for (n, 1, in_size, in_size) images in [-1, 1]: three 3x3 conv blocks (ReLU,
    2x2 max-pool while the map is larger than 4x4), a ``feature_dim`` embedding and 10 logits.

    ``features(x)`` is the embedding (before its ReLU) used by the Frechet distance."""

    def __init__(self, in_size: int, channels=(16, 32, 64), feature_dim: int = 64,
                 n_classes: int = 10):
        """Build the layers for ``in_size`` x ``in_size`` inputs (the pools follow the size)."""
        super().__init__()
        self.in_size, self.channels, self.feature_dim = int(in_size), tuple(channels), feature_dim
        self.n_classes = n_classes
        blocks, size, c_in = [], self.in_size, 1
        for c_out in self.channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
            if size > 4 and size % 2 == 0:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        self.embed = nn.Linear(c_in * size * size, feature_dim)
        self.head = nn.Linear(feature_dim, n_classes)

    def config(self) -> dict:
        """The constructor's arguments, saved with the weights so the file rebuilds the net."""
        return {"in_size": self.in_size, "channels": list(self.channels),
                "feature_dim": self.feature_dim, "n_classes": self.n_classes}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, feature_dim) embedding, before the ReLU: the feature map phi of the FD."""
        return self.embed(self.conv(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, n_classes) logits."""
        return self.head(F.relu(self.features(x)))


def check_images(x, name: str, size: int | None = None) -> None:
    """(n, 1, H, W) finite images with values in [-1, 1] (within RANGE_TOLERANCE), H = W = size;
    a ValueError naming ``name``, what it got and what is accepted otherwise."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor (n, 1, H, W) in [-1, 1], got "
                         f"{type(x).__name__} {getattr(x, 'dtype', '')}.")
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch of grey images (n, 1, H, W), got shape "
                         f"{tuple(x.shape)}.")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name} are {x.shape[-2]}x{x.shape[-1]} but the classifier takes "
                         f"{size}x{size} images; use the classifier trained at that size "
                         "(classifier('digits') is 16x16, classifier('mnist') is 32x32).")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or inf values.")
    lo, hi = x.min().item(), x.max().item()
    if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise ValueError(f"{name} must be scaled to [-1, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                         "for [0, 1] images use 2 x - 1, for uint8 images x / 127.5 - 1.")


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
