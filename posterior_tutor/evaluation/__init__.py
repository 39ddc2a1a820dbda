"""Measuring samplers: the held-out image evaluation, the benchmark and what it reports.

    pt.evaluation.evaluate_images(xs, x_true)     # one held-out evaluation (held_out.py)
    python -m posterior_tutor bench --fast         # the benchmark (bench.py: toy suite and CLI)

- ``held_out``: PSNR/SSIM of samples and of their mean, LPIPS, coverages, s / sample;
- ``bench``: the toy suite (sliced Wasserstein to the exact posterior) and the command line;
- ``images``: the image suite on the MNIST tasks; ``memory``: peak-memory measurement;
- ``peer``: deepinv's samplers on our prior and problems (the outside peer);
- ``method_grid``: every method on the same digits; ``model_card``: a prior's evaluation card.
"""
from .held_out import evaluate_images, image_scores, mean_scores  # noqa: F401

__all__ = ["evaluate_images", "image_scores", "mean_scores"]

_SUBMODULES = ('held_out', 'bench', 'images', 'memory', 'peer', 'method_grid', 'model_card')


def __getattr__(name):  # submodules load on first use: pt.evaluation.model_card
    import importlib
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
