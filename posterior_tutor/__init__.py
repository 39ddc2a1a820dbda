"""posterior_tutor: diffusion-based posterior sampling for imaging inverse problems, for teaching.

    import posterior_tutor as pt
    gmm = pt.toy.ring_of_gaussians(); den = gmm.denoiser(pt.VPSchedule())
    problem = pt.InverseProblem(pt.operators.Matrix([[1.0, 0.5]]), sigma=0.3)
    xs = pt.sample("diffpir", den, problem, y, n=500)
"""
from .runtime.config import default_device, fast_mode
from . import denoisers, operators, samplers, schedules, toy
from .denoisers import Denoiser, EpsNetDenoiser, X0NetDenoiser
from .operators import InverseProblem
from .samplers import Step, iterate, methods, options_of, sample
from .schedules import VPSchedule
from .toy import GaussianMixture

__version__ = "0.1.0"

__all__ = ["VPSchedule", "GaussianMixture", "InverseProblem", "Denoiser", "EpsNetDenoiser",
           "X0NetDenoiser", "Step", "methods", "options_of", "sample", "iterate", "operators",
           "toy", "schedules", "denoisers", "samplers", "fast_mode", "default_device"]


def __getattr__(name):  # heavy optional modules load on first use
    import importlib
    if name in {"metrics", "viz", "nets", "data", "tasks", "exercises", "evaluation", "trained",
                "priors", "files", "checks", "runtime"}:
        return importlib.import_module(f".{name}", __name__)
    if name == "ud2m":
        return importlib.import_module(".trained.ud2m", __name__)
    if name == "aps":
        return importlib.import_module(".trained.aps", __name__)
    if name == "pretrained":
        return importlib.import_module(".files.shipped", __name__).pretrained
    raise AttributeError(f"module 'posterior_tutor' has no attribute {name!r}")
