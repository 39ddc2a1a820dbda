"""Zero-shot posterior samplers, one file each, all on the step protocol of ``base.py``."""
from .base import Step, get_method, iterate, methods, options_of, register, sample
from . import ddpm, dps, diffpir, daps, pnp_ula, latino, spin, mcgdiff  # noqa: F401  (registers the methods)

__all__ = ["Step", "get_method", "iterate", "methods", "options_of", "register", "sample"]
