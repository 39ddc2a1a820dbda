"""Diffusion priors: training one by denoising score matching (``train``; ``python -m
posterior_tutor train``) and plugging in a pretrained diffusers DDPM (``diffusers_adapter``).
The shipped priors load with ``pt.pretrained("mnist" | "digits")``."""

_SUBMODULES = ('train', 'diffusers_adapter')


def __getattr__(name):  # submodules load on first use: pt.priors.diffusers_adapter
    import importlib
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
