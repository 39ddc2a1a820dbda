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

    clf = pt.pretrained("mnist", "classifier")  # shipped, sha256-checked (also "digits")
    fd = digit_frechet(samples, heldout, clf)   # samples, heldout: (n, 1, 32, 32) in [-1, 1]

This file holds the distance and what computing it needs: the features of a classifier
(``embed``) and reading a classifier file (``load_classifier``).  Which classifiers are shipped,
and loading them by name, is the one table of shipped files (``files/shipped.py``:
``names("classifier")``, ``pretrained(name, "classifier")``).  The network is
``nets.DigitClassifier``; its training and the data splits are in ``evaluation/classifier.py``; to train a classifier (and write
``classifier.pt`` + ``model_card.json`` with accuracy and floors):

    python scripts/train_classifier.py --data mnist --out data/classifiers/mnist
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from ..nets import DigitClassifier
from ._coerce import check_images
# checkpoint_dir and file_sha256 stay reachable here for callers (frechet.file_sha256, ...)
from ..files.checkpoints import (CheckpointError, checkpoint_dir, file_sha256,  # noqa: F401
                                 load_state, read_verified)
from ..files.shipped import entry

__all__ = ["frechet_distance", "frechet_distance_gaussian", "digit_frechet", "real_floor", "embed",
           "load_classifier", "classifier_path"]


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


@torch.no_grad()
def embed(images: torch.Tensor, clf: DigitClassifier, batch: int = 500) -> torch.Tensor:
    """Features (n, feature_dim) of images, computed in batches."""
    clf.eval()
    return torch.cat([clf.features(images[i:i + batch]) for i in range(0, len(images), batch)])


def digit_frechet(samples: torch.Tensor, reference: torch.Tensor, clf: DigitClassifier) -> float:
    """FD between ``samples`` and ``reference`` images in the feature space of ``clf``.

    Both are (n, 1, S, S) with S the classifier's size, in [-1, 1]; values slightly outside (an
    unclipped sampler output) are clipped to [-1, 1], values far outside raise ValueError.
    Compare the result with ``real_floor`` at the same set sizes."""
    for name, x in (("samples", samples), ("reference", reference)):
        check_images(x, name, clf.in_size)
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
# Loading the shipped classifiers
# =================================================================================================
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
    """Where the shipped classifier ``name`` lives (its row of ``files.shipped.SHIPPED``, under
    ``files.checkpoints.checkpoint_dir``); load it with ``pt.pretrained(name, "classifier")``."""
    row = entry("classifier", name)
    return checkpoint_dir() / row.folder / row.filename
