r"""Metrics for posterior samples: per-image quality and distances between sample sets.

Conventions: images are ``(n, C, H, W)`` (or one image ``(C, H, W)``) scaled to [-1, 1];
point clouds are ``(n, d)`` (images are flattened to ``(n, C*H*W)`` where a cloud is expected).
Numpy arrays are accepted. Mismatched shapes and non-finite inputs raise ``ValueError``, as do
parameters out of range (NaN, Inf, data_range <= 0) and images whose values spread over more than
ten times ``data_range`` (0..255 images with the default data_range = 2: pass data_range=255).

    import posterior_tutor as pt
    pt.metrics.psnr(samples, x_true)                          # (n,) dB, one per sample
    pt.metrics.sliced_wasserstein(xs, exact, generator=g)     # 0-d, between two sample sets
    pt.metrics.rank_coverage(samples, x_true)                 # level (0.9) for an exact sampler

Where each one lives (every public name is re-exported here, so ``pt.metrics.X`` is the way in):

- ``image.py``: per-image quality against a reference, PSNR, SSIM (Wang et al. 2004) and LPIPS
  (Zhang et al. 2018); ``lpips_backbone.py``: the ImageNet backbone LPIPS needs (weights,
  download, the offline error, cached models);
- ``distances.py``: distances between sample sets (sliced Wasserstein, energy distance, MMD),
  mixture mode weights, interval coverage and the noise floor a perfect sampler scores;
- ``calibration.py``: rank (PIT) coverage and histogram, unbiased at any sample count;
- ``frechet.py``: the Frechet distance in the features of the project's digit classifier (an
  offline stand-in for FID; the classifier and its training: ``evaluation/classifier.py``).
  Not imported here: ``from posterior_tutor.metrics import frechet``;
- ``_coerce.py``: input checks shared by the above (numpy or torch in, checked tensors out).

Each file's docstring holds its equations and references; measured values (what these metrics
read on the shipped priors and samplers) are in docs/notes/metrics.md with their commands.
"""
from __future__ import annotations

from .calibration import interval_coverage_of_exact, pit_histogram, rank_coverage
from .distances import (NoiseFloor, coverage, energy_distance, mmd, mode_weight_error,
                        mode_weights, noise_floor, sliced_wasserstein)
from .image import _ssim_window, lpips, psnr, ssim  # noqa: F401  (_ssim_window: tests)
# the LPIPS backbone's cache and download helpers stay reachable here as before
# (metrics._lpips_model, ._LPIPS_MODELS, ._LPIPS_FAILURES, ._backbone_checkpoint, ...)
from .lpips_backbone import (_LPIPS_FAILURES, _LPIPS_MIN_SIDE, _LPIPS_MODELS,  # noqa: F401
                             LPIPSWeightsUnavailable, _backbone_checkpoint, _check_net,
                             _lpips_model, lpips_available)

__all__ = [
    "psnr", "ssim", "lpips", "lpips_available", "LPIPSWeightsUnavailable",
    "sliced_wasserstein", "energy_distance", "mmd",
    "mode_weights", "mode_weight_error", "noise_floor", "NoiseFloor", "coverage",
    "rank_coverage", "pit_histogram", "interval_coverage_of_exact",
]
