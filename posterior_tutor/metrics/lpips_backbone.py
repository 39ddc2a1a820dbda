"""LPIPS's backbone: the ImageNet weights it needs, their download, and the cached models.

``metrics.lpips`` computes the distance; this module only gets it a network.  lpips (the package,
version 0.1) builds AlexNet, VGG16 or SqueezeNet from torchvision with ``pretrained=True``, i.e.
torchvision's ImageNet weights, downloaded once into ``torch.hub.get_dir()/checkpoints``.  Offline
that download fails: ``_lpips_model`` turns the failure into :class:`LPIPSWeightsUnavailable`
saying where to put the file, remembers it (no second try per process), and
``pretrained_backbone=False`` builds a randomly initialised backbone (fixed seed) for tests.
Models are cached per (net, pretrained_backbone, device).
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import warnings

import torch

class LPIPSWeightsUnavailable(RuntimeError):
    """The ImageNet backbone weights that LPIPS needs could not be downloaded or loaded."""


# lpips' backbone -> the torchvision weights enum it loads (pretrained=True means IMAGENET1K_V1)
_BACKBONES = {"alex": ("AlexNet", "AlexNet_Weights"), "vgg": ("VGG16", "VGG16_Weights"),
              "squeeze": ("SqueezeNet 1.1", "SqueezeNet1_1_Weights")}
_FALLBACK_URLS = {"alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                  "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
                  "squeeze": "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"}
_LPIPS_MODELS: dict = {}
_LPIPS_FAILURES: dict = {}
_LPIPS_MIN_SIDE = {"alex": 32, "vgg": 16, "squeeze": 17}   # smaller inputs crash the backbone


def _check_net(net: str) -> str:
    """The lpips name of a backbone ("vgg16" is read as "vgg"); ValueError listing the choices."""
    net = {"vgg16": "vgg"}.get(net, net)
    if net not in _BACKBONES:
        raise ValueError(f"lpips net must be one of {sorted(_BACKBONES)}, got {net!r}.")
    return net


def _backbone_url(net: str) -> str:
    """torchvision's download address of the backbone's ImageNet weights."""
    try:
        from torchvision import models
        return getattr(models, _BACKBONES[net][1]).IMAGENET1K_V1.url
    except Exception:                                       # older/newer torchvision layouts
        return _FALLBACK_URLS[net]


def _backbone_checkpoint(net: str) -> str:
    """Where torchvision looks for (and caches) the backbone checkpoint."""
    url = _backbone_url(net)
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def _weights_message(net: str, err: BaseException) -> str:
    """What LPIPSWeightsUnavailable says: what failed, where the file goes, how to work offline."""
    url = _backbone_url(net)
    path = _backbone_checkpoint(net)
    return (
        f"LPIPS({net!r}) needs the ImageNet {_BACKBONES[net][0]} weights from torchvision, and they "
        f"could not be downloaded or loaded ({type(err).__name__}: {err}). This needs internet "
        f"once; torchvision then caches the file. To provide it offline, copy the checkpoint "
        f"{os.path.basename(url)} (from {url}) to {path} , i.e. torch.hub.get_dir()/checkpoints "
        f"(set $TORCH_HOME to move that folder). For tests without the weights use "
        f"pretrained_backbone=False (random backbone: not a perceptual metric)."
    )


def _build_lpips(net: str, pretrained_backbone: bool):
    """A fresh lpips.LPIPS (eval, no grad), silencing the package's prints and warnings."""
    import lpips as lpips_pkg

    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")          # torchvision's 'pretrained is deprecated' notes
        if pretrained_backbone:
            model = lpips_pkg.LPIPS(net=net, pnet_rand=False, pretrained=True, verbose=False)
        else:
            # random backbone from a fixed seed, without touching the global RNG
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = lpips_pkg.LPIPS(net=net, pnet_rand=True, pretrained=True, verbose=False)
    return model.eval().requires_grad_(False)


def _lpips_model(net: str, pretrained_backbone: bool, device) -> torch.nn.Module:
    """Cached LPIPS module per (net, pretrained_backbone, device)."""
    net = _check_net(net)
    import lpips as _  # noqa: F401  (a missing package is an ImportError, not a weights problem)
    device = torch.device(device)
    key = (net, bool(pretrained_backbone), str(device))
    if key in _LPIPS_MODELS:
        return _LPIPS_MODELS[key]
    cpu_key = (net, bool(pretrained_backbone), "cpu")
    if cpu_key in _LPIPS_MODELS:
        model = _LPIPS_MODELS[cpu_key]
    elif not pretrained_backbone:
        model = _build_lpips(net, False)
    else:
        ckpt = _backbone_checkpoint(net)
        if net in _LPIPS_FAILURES and not os.path.exists(ckpt):   # don't retry a dead download
            raise LPIPSWeightsUnavailable(_weights_message(net, _LPIPS_FAILURES[net]))
        try:
            model = _build_lpips(net, True)
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:
            _LPIPS_FAILURES[net] = err
            raise LPIPSWeightsUnavailable(_weights_message(net, err)) from err
        _LPIPS_FAILURES.pop(net, None)
    _LPIPS_MODELS[cpu_key] = model
    _LPIPS_MODELS[key] = model if device.type == "cpu" else _copy_to(model, device)
    return _LPIPS_MODELS[key]


def _copy_to(model, device):
    """A copy of the cached CPU model on ``device`` (the CPU one stays cached as it is)."""
    import copy
    return copy.deepcopy(model).to(device)


def lpips_available(net: str = "alex") -> bool:
    """Whether :func:`lpips` with the pretrained backbone works here (weights cached or
    downloadable). Never raises; may try the download once per process."""
    try:
        _lpips_model(net, True, "cpu")
        return True
    except Exception:
        return False
