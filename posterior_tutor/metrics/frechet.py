r"""Frechet distance between image sets in the feature space of a small digit classifier.

For two sets of images, embed each image with a feature map phi, fit a Gaussian to each set of
features (mean mu, covariance S) and take the Frechet (2-Wasserstein) distance between the two
Gaussians:

    FD = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

This is the formula of the FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule
converge to a local Nash equilibrium"), where phi is the 2048-d pool layer of Inception-v3.  We do
not use Inception: its weights are not available offline, and it was trained on 299x299 RGB natural
images, so its features say little about 16x16 or 32x32 grey digits anyway.  Instead the project
trains its own small CNN (``DigitClassifier``) on the same training images as the diffusion prior
and uses its 64-d penultimate embedding as phi.

Reading the numbers:

* An FD is comparable only with FDs computed by the *same* classifier (same file, same sha256):
  another classifier has another feature space and another scale.  The numbers are not FIDs.
* FD is biased upward for finite sets (the covariances are estimates), so compare a sampler's FD
  with the real-vs-real floor at the *same* set sizes: ``real_floor`` gives it, and the model card
  of each shipped classifier records the floors for the standard splits.

    clf = classifier("mnist")                   # shipped, sha256-checked (also "digits")
    fd = digit_frechet(samples, heldout, clf)   # samples, heldout: (n, 1, 32, 32) in [-1, 1]

Train a classifier (and write ``classifier.pt`` + ``model_card.json`` with accuracy and floors):

    python -m posterior_tutor.metrics.frechet --data mnist --out data/classifiers/mnist
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks.values import check_generator
from ..files.checkpoints import CheckpointError, checkpoint_dir, file_sha256, load_state, read_verified, save_atomic, shipped_path
from ..files.safe import read_card, write_card

__all__ = ["DigitClassifier", "train_classifier", "accuracy", "frechet_distance",
           "frechet_distance_gaussian", "digit_frechet", "real_floor", "save_classifier",
           "load_classifier", "classifier", "SHIPPED"]

CLASSIFIER_FORMAT = 1
SHIPPED = ("digits", "mnist")
RANGE_TOLERANCE = 0.5  # images may stray this far outside [-1, 1] (unclipped samples); more is an error

# The training part of each data set is the one its diffusion prior was trained on; the rest is
# held out for the accuracy and as the reference set of the FD.  "floors" are the real-vs-real
# pairs (slices of the split) whose FD the model card records.  MNIST caveat: the first 5000 test
# images (NIST SD-3, cleaner) differ from the last 5000 (SD-1, harder), so the held-out 8000:10000
# is all "hard" while the training part 0:8000 is 5/8 "easy"; the floors show the size of that shift.
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


# =================================================================================================
# The classifier
# =================================================================================================
class DigitClassifier(nn.Module):
    """A small CNN for (n, 1, in_size, in_size) images in [-1, 1]: three 3x3 conv blocks (ReLU,
    2x2 max-pool while the map is larger than 4x4), a ``feature_dim`` embedding and 10 logits.

    ``features(x)`` is the embedding (before its ReLU) used by the Frechet distance."""

    def __init__(self, in_size: int, channels=(16, 32, 64), feature_dim: int = 64,
                 n_classes: int = 10):
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
        return {"in_size": self.in_size, "channels": list(self.channels),
                "feature_dim": self.feature_dim, "n_classes": self.n_classes}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.conv(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.features(x)))


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
    _check_images(images, "images")
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
def embed(images: torch.Tensor, clf: DigitClassifier, batch: int = 500) -> torch.Tensor:
    """Features (n, feature_dim) of images, computed in batches."""
    clf.eval()
    return torch.cat([clf.features(images[i:i + batch]) for i in range(0, len(images), batch)])


@torch.no_grad()
def accuracy(clf: DigitClassifier, images: torch.Tensor, labels: torch.Tensor,
             batch: int = 500) -> float:
    """Fraction of images whose argmax logit is the label."""
    _check_images(images, "images", clf.in_size)
    clf.eval()
    pred = torch.cat([clf(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
    return (pred == torch.as_tensor(labels)).double().mean().item()


# =================================================================================================
# Frechet distance
# =================================================================================================
def frechet_distance_gaussian(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) in float64, with scipy.linalg.sqrtm.

    The matrix square root of S1 S2 is real in exact arithmetic (S1, S2 PSD); a tiny imaginary
    part from round-off is dropped, and a tiny negative result (round-off) becomes 0."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 "
                         f"{mu2.shape}, sigma2 {s2.shape} (need (d,) and (d, d)).")
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # singular product: regularise (as pytorch-fid does)
        offset = np.eye(d) * 1e-6 * max(np.trace(s1), np.trace(s2), 1e-12) / d
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    scale = np.trace(s1) + np.trace(s2) + diff @ diff
    if fd < -1e-6 * max(scale, 1.0):
        warnings.warn(f"Frechet distance {fd:.3g} is clearly negative: the covariances are not "
                      "positive semi-definite or the square root is inaccurate.")
    return max(fd, 0.0)


def frechet_distance(feats_a, feats_b) -> float:
    """FD between the Gaussians fitted (mean, unbiased covariance) to two feature sets (n, d)."""
    a, b = (np.asarray(torch.as_tensor(f).detach().cpu(), np.float64) for f in (feats_a, feats_b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (n, d) with the same d, got {a.shape} and {b.shape}.")
    if min(len(a), len(b)) < 2:
        raise ValueError(f"need at least 2 points per set for a covariance, got {len(a)} and {len(b)}.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("features contain NaN or inf values.")
    return frechet_distance_gaussian(a.mean(0), np.cov(a, rowvar=False),
                                     b.mean(0), np.cov(b, rowvar=False))


def _check_images(x, name: str, size: int | None = None) -> None:
    """(n, 1, H, W) finite images with values in [-1, 1] (within RANGE_TOLERANCE), H = W = size."""
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


def digit_frechet(samples: torch.Tensor, reference: torch.Tensor, clf: DigitClassifier) -> float:
    """FD between ``samples`` and ``reference`` images in the feature space of ``clf``.

    Both are (n, 1, S, S) with S the classifier's size, in [-1, 1]; values slightly outside (an
    unclipped sampler output) are clipped to [-1, 1], values far outside raise ValueError.
    Compare the result with ``real_floor`` at the same set sizes."""
    for name, x in (("samples", samples), ("reference", reference)):
        _check_images(x, name, clf.in_size)
        if len(x) < clf.feature_dim:
            warnings.warn(f"{name}: only {len(x)} images for a {clf.feature_dim}-d feature "
                          "covariance; the FD is strongly biased at this size (compare with "
                          "real_floor at the same sizes).")
    fa = embed(samples.detach().cpu().float().clamp(-1, 1), clf)
    fb = embed(reference.detach().cpu().float().clamp(-1, 1), clf)
    return frechet_distance(fa, fb)


def real_floor(reference_a: torch.Tensor, reference_b: torch.Tensor, clf: DigitClassifier) -> float:
    """FD between two disjoint sets of real images: what a perfect sampler would score at these
    set sizes (finite-sample bias plus the difference between the two real sets)."""
    return digit_frechet(reference_a, reference_b, clf)


# =================================================================================================
# Saving, loading, the shipped classifiers
# =================================================================================================
def save_classifier(clf: DigitClassifier, out, card: dict) -> Path:
    """Write ``out/classifier.pt`` (atomically) and ``out/model_card.json`` = card + sha256."""
    out = Path(out)
    path = out / "classifier.pt"
    save_atomic({"format": CLASSIFIER_FORMAT, "config": clf.config(),
                  "state": clf.state_dict()}, path)
    card = {"sha256": file_sha256(path), "size_bytes": path.stat().st_size, **card}
    write_card(out / "model_card.json", card)
    return path


def load_classifier(path, check: bool = True) -> DigitClassifier:
    """A ``classifier.pt`` as a DigitClassifier (eval, no grad); with ``check=True`` its sha256
    must match the ``model_card.json`` beside it (CheckpointError otherwise)."""
    ckpt, card = read_verified(path, check, what="classifier")
    if "state" not in ckpt:
        raise CheckpointError(f"{path} is not a DigitClassifier checkpoint (no 'state' entry).")
    try:
        clf = DigitClassifier(**ckpt["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot build a DigitClassifier from its config "
                              f"{ckpt['config']} ({err}).") from None
    load_state(clf, ckpt["state"], path)
    clf.card = card
    return clf.eval().requires_grad_(False)


def classifier_path(name: str) -> Path:
    return checkpoint_dir() / "classifiers" / name / "classifier.pt"


def classifier(name: str = "mnist") -> DigitClassifier:
    """The shipped classifier for ``"mnist"`` (32x32) or ``"digits"`` (16x16), sha256-checked."""
    if name not in SHIPPED:
        raise ValueError(f"unknown classifier {name!r}; shipped: {', '.join(SHIPPED)}.")
    path = shipped_path(f"classifiers/{name}", "classifier.pt", f"{name} classifier",
                        retrain=f"python -m posterior_tutor.metrics.frechet --data {name} "
                                f"--out data/classifiers/{name}")
    return load_classifier(path)


# =================================================================================================
# The command: train, evaluate, record the floors
# =================================================================================================
def split_images(name: str, root=None):
    """(train images, train labels, held-out images, held-out labels) of a shipped data set."""
    from .. import data
    spec = SPLITS[name]
    x, y = data.load(name, split=spec["split"], root=root, labels=True)
    (a, b), (c, d) = spec["train"], spec["heldout"]
    return x[a:b], y[a:b], x[c:d], y[c:d]


def noise_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Standard Gaussian noise images clipped to [-1, 1]: a sanity reference (FD should be huge)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, 1, size, size), generator=g).clamp(-1, 1)


def floors(name: str, clf: DigitClassifier, root=None) -> dict:
    """The real-vs-real floors of SPLITS[name] and the noise-vs-held-out reference."""
    from .. import data
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


def main(argv=None) -> None:
    import argparse
    from ..nets import count_parameters
    from ..priors.train import hardware
    p = argparse.ArgumentParser(prog="python -m posterior_tutor.metrics.frechet",
                                description="Train the digit classifier whose features define the "
                                "Frechet distance; writes classifier.pt and model_card.json "
                                "(held-out accuracy, real-vs-real floors).")
    p.add_argument("--data", choices=sorted(SPLITS), default="mnist")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--data-root", default=None, help="local data folder (else POSTERIOR_TUTOR_DATA)")
    p.add_argument("--floors-only", action="store_true",
                   help="keep the classifier in OUT, recompute the floors of its model card")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.floors_only:
        print(json.dumps(update_floors(a.out, a.data, a.data_root), indent=2))
        return
    spec = SPLITS[a.data]
    xtr, ytr, xho, yho = split_images(a.data, a.data_root)
    clf, info = train_classifier(xtr, ytr, a.steps, a.batch, a.lr, a.seed, spec["shift"],
                                 progress=True)
    card = {"data": a.data, "split": spec["split"], "train_subset": "%d:%d" % spec["train"],
            "heldout_subset": "%d:%d" % spec["heldout"], "n_train": len(xtr), "n_heldout": len(xho),
            "heldout_accuracy": round(accuracy(clf, xho, yho), 4),
            "train_accuracy": round(accuracy(clf, xtr, ytr), 4),
            "config": clf.config(), "parameters": count_parameters(clf), "steps": a.steps,
            "batch": a.batch, "lr": a.lr, "seed": a.seed, "max_shift": spec["shift"],
            "wall_seconds": info["wall_seconds"], "final_loss": info["final_loss"],
            "hardware": hardware(), "torch": torch.__version__,
            "command": "python -m posterior_tutor.metrics.frechet " + " ".join(sys.argv[1:] if argv is None else argv),
            "floors": floors(a.data, clf, a.data_root),
            "note": NOTES[a.data]}
    path = save_classifier(clf, a.out, card)
    print(f"wrote {path}: held-out accuracy {card['heldout_accuracy']:.4f}")
    print(json.dumps(card["floors"], indent=2))


if __name__ == "__main__":
    main()
