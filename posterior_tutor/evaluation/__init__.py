"""Measuring samplers: the held-out image evaluation, the benchmark and what it reports.

    pt.evaluation.evaluate_images(xs, x_true)           # one held-out evaluation (held_out.py)
    python -m posterior_tutor.evaluation.bench --fast   # the benchmark (bench.py: its command line)

- ``held_out``: PSNR/SSIM of samples and of their mean, LPIPS, coverages, s / sample;
- ``options``: what each method runs with in the benchmark (full and fast mode);
- ``toy_suite``: sliced Wasserstein to the exact posterior on the toy problems, with costs;
- ``toy_family``: random Gaussian-mixture problems, the yardstick for trained samplers;
- ``runners``, ``image_suite``: one sample function per row, and the suite on the MNIST tasks;
- ``memory``: the tensors autograd saves, and the peak memory of a sampling call;
- ``report``: Markdown, CSV and the trade-off plot; ``bench``: the command line;
- ``peer`` (with ``peer_physics``): deepinv's samplers on our prior and problems (the outside peer);
- ``method_grid``: every method on the same digits; ``model_card``: a prior's evaluation card;
- ``properties``: every method's properties in one table, from the library and the stored tables.

The submodules load on first use (``pt.evaluation.toy_suite``), so importing this package stays
light.
"""
from .held_out import evaluate_images, image_scores, mean_scores  # noqa: F401

__all__ = ["evaluate_images", "image_scores", "mean_scores"]

from ..runtime.lazy import lazy_submodules

__getattr__ = lazy_submodules(__name__, ("bench", "classifier", "held_out", "image_suite", "memory",
                                         "method_grid", "model_card", "options", "peer",
                                         "peer_physics", "properties", "report", "runners", "toy_family",
                                         "toy_suite"))
