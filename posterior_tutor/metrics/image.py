r"""Per-image quality: PSNR, SSIM and LPIPS between a batch of images and a reference.

``a`` is a batch ``(n, C, H, W)`` (or one image ``(C, H, W)``) scaled to [-1, 1]; ``b`` a batch of
the same size or one reference broadcast against it.  Each metric returns shape ``(n,)``, or a
0-d tensor when both inputs are single images.  Mismatched shapes, NaN / inf values and a
``data_range`` the images clearly exceed raise ``ValueError`` (``_coerce.py``).

* PSNR   ``psnr = 10 log10(R^2 / MSE)``, ``MSE = mean over (C, H, W) of (a - b)^2``, R = data_range
  (2 for [-1, 1]).  Identical images give ``inf``; higher is better.
* SSIM   (Wang et al. 2004, "Image quality assessment: from error visibility to structural
  similarity") ``SSIM(x, y) = mean over pixels of
  (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``,
  local statistics under a Gaussian window (11 taps, sigma 1.5), ``C1 = (0.01 R)^2``,
  ``C2 = (0.03 R)^2``; computed by ``torchmetrics`` and averaged over the *valid* pixels (those
  whose window lies inside the image, as in Wang's reference code and ``skimage``) and channels.
  Departure: small images get a smaller window (``_ssim_window``), which Wang's code does not do.
* LPIPS  (Zhang et al. 2018, "The unreasonable effectiveness of deep features as a perceptual
  metric") ``d(x, y) = sum_l mean_{h,w} |w_l * (phi_l(x) - phi_l(y))|^2`` with unit-normalised
  AlexNet/VGG features phi_l and learned channel weights w_l (``lpips`` package, version 0.1).
  The backbone's ImageNet weights, their download and the cached models: ``lpips_backbone.py``.
  Departure: images under 64 pixels a side are upsampled bilinearly first (28 x 28 MNIST is far
  below the 224 x 224 ImageNet images the features were learned on, and AlexNet needs >= 32).
"""
from __future__ import annotations

import torch

from ._coerce import _check_data_range, _image_pair, _shape
from .lpips_backbone import _LPIPS_MIN_SIDE, LPIPSWeightsUnavailable, _check_net, _lpips_model

__all__ = ["psnr", "ssim", "lpips", "LPIPSWeightsUnavailable"]


def psnr(a, b, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` per image.

    ``a``, ``b``: (n, C, H, W) or (C, H, W); either may be a single image broadcast against the
    other batch. Returns (n,) (0-d for two single images); ``inf`` where the images are equal.
    ``data_range`` is the width of the value range: 2.0 for images in [-1, 1].
    """
    a4, b4, single = _image_pair(a, b, "psnr")
    _check_data_range(a4, b4, data_range, "psnr")
    mse = (a4 - b4).pow(2).flatten(1).mean(1)
    out = 10 * torch.log10(data_range ** 2 / mse)
    return out[0] if single else out


def _ssim_window(h: int, w: int) -> int:
    """Gaussian window width for an h x w image: 11, or smaller so that the valid region keeps
    at least half the side (window = largest odd <= min(11, min(h, w)//2 + 1), at least 3)."""
    side = min(h, w)
    if side < 3:
        raise ValueError(f"ssim needs images of at least 3 x 3 pixels, got {h} x {w}.")
    win = min(11, side // 2 + 1)
    win -= 1 - win % 2
    return max(3, win)


def ssim(a, b, data_range: float = 2.0, window: int | None = None) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, via ``torchmetrics``.

    Gaussian window of 11 taps with sigma 1.5, K1 = 0.01, K2 = 0.03, ``data_range`` = 2 for
    [-1, 1] images. The SSIM map comes from
    ``torchmetrics.functional.structural_similarity_index_measure`` and is averaged over the
    valid pixels only (window inside the image; torchmetrics itself would also average the
    reflect-padded border) and over channels. This matches
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=2)``.

    Small images: the window shrinks automatically to the largest odd width
    ``<= min(11, min(H, W)//2 + 1)`` (at least 3) with ``sigma = 1.5 * window / 11``; e.g. 8 x 8
    digits use a 5-tap window (sigma 0.68), 28 x 28 MNIST the full 11. Pass ``window`` (odd,
    3..min(H, W)) to choose it yourself. Images need at least 3 x 3 pixels.

    Shapes and broadcasting as in :func:`psnr`; returns (n,) (0-d for two single images).
    """
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    a4, b4, single = _image_pair(a, b, "ssim")
    _check_data_range(a4, b4, data_range, "ssim")
    H, W = a4.shape[-2:]
    if window is None:
        window = _ssim_window(H, W)
    elif isinstance(window, bool) or not isinstance(window, int) or window % 2 == 0 or not \
            3 <= window <= min(H, W):
        raise ValueError(f"ssim window must be odd and within 3..{min(H, W)} for {H} x {W} "
                         f"images, got {window!r}.")
    sigma = 1.5 * window / 11                # torchmetrics' window = 2 int(3.5 sigma + 0.5) + 1
    _, smap = tm_ssim(a4.contiguous(), b4.contiguous(), gaussian_kernel=True, sigma=sigma,
                      data_range=float(data_range), reduction="none", return_full_image=True)
    p = (window - 1) // 2
    out = smap[..., p:H - p, p:W - p].flatten(1).mean(1)
    return out[0] if single else out


def lpips(a, b, net: str = "alex", pretrained_backbone: bool = True,
          min_size: int = 64) -> torch.Tensor:
    """Learned perceptual distance (Zhang et al. 2018, ``lpips`` package, version 0.1) per image.

    ``a``, ``b``: images in [-1, 1], (n, C, H, W) or (C, H, W) with C = 1 (repeated to 3
    channels) or 3; broadcasting as in :func:`psnr`. Returns (n,) (0-d for two single images),
    >= 0 and 0 for identical images. Differentiable in the inputs (the network is frozen).

    Images whose shorter side is below ``min_size`` are upsampled bilinearly so that it equals
    ``min_size`` (AlexNet cannot process images under 32 pixels; 28 x 28 MNIST becomes 64 x 64).
    ``net``: "alex" (default, the usual metric), "vgg" or "squeeze".

    The backbone's ImageNet weights come from torchvision (downloaded once into
    ``torch.hub.get_dir()/checkpoints``); where they cannot be had this raises
    :class:`LPIPSWeightsUnavailable` saying how to supply them. ``pretrained_backbone=False``
    uses a randomly initialised backbone (fixed seed) with the shipped LPIPS linear weights:
    works offline, for tests only, not a perceptual metric. The model is cached per
    (net, pretrained_backbone, device).
    """
    a4, b4, single = _image_pair(a, b, "lpips")
    if a4.shape[1] not in (1, 3):
        raise ValueError(f"lpips needs 1- or 3-channel images, got a {_shape(a)}, b {_shape(b)}.")
    model = _lpips_model(net, pretrained_backbone, a4.device)
    out_dtype = a4.dtype
    x, y = a4.float(), b4.float()
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    H, W = x.shape[-2:]
    if min(H, W) < min_size:
        s = min_size / min(H, W)
        size = (max(min_size, round(H * s)), max(min_size, round(W * s)))
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        y = torch.nn.functional.interpolate(y, size=size, mode="bilinear", align_corners=False)
    if min(x.shape[-2:]) < _LPIPS_MIN_SIDE[_check_net(net)]:
        raise ValueError(f"lpips({net!r}) needs images of at least {_LPIPS_MIN_SIDE[_check_net(net)]}"
                         f" pixels per side; raise min_size (got {H} x {W}, min_size={min_size}).")
    d = model(x.contiguous(), y.contiguous()).reshape(-1).to(out_dtype)
    return d[0] if single else d
