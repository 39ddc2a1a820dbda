"""Diffusion priors: training one by denoising score matching (``train``; ``python -m
posterior_tutor train``) and plugging in a pretrained diffusers DDPM (``diffusers_adapter``).
The shipped priors load with ``pt.pretrained("mnist" | "digits")``."""

from ..runtime.lazy import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('train', 'diffusers_adapter'))
