"""The shipped trained samplers: one table that says which file holds which sampler, for which task.

    SHIPPED: (kind, name, folder under data/, file, task of pt.tasks, sigma)

``pt.trained.pretrained(kind, name)``, ``pt.ud2m.pretrained`` and ``pt.aps.pretrained`` read it
(``entry``), and so does the benchmark (``serving``: which shipped sampler runs on which task).  A
new shipped sampler is one row here, its folder in data/ with a model card, and its kind's
``from_checkpoint``.  Each file is sha256-checked against the model card beside it
(``base.read_shipped``).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["Shipped", "SHIPPED", "KINDS", "names", "entry", "shipped_problem", "serving"]


class Shipped(NamedTuple):
    kind: str        # "ud2m" or "aps"
    name: str        # the public name, e.g. "mnist-sr4"
    folder: str      # data/<folder>/
    filename: str    # the checkpoint in that folder
    task: str        # the pt.tasks task it was trained on
    sigma: float     # the measurement noise it was trained on


SHIPPED = (
    Shipped("ud2m", "mnist-random-inpainting", "ud2m_mnist_random_inpainting", "sampler.pt",
            "random_inpainting", 0.05),
    Shipped("ud2m", "mnist-sr4", "ud2m_mnist_sr4", "sampler.pt", "sr4", 0.05),
    Shipped("aps", "mnist-denoising", "aps_mnist_denoising", "flow.pt", "denoising", 0.05),
    Shipped("aps", "mnist-sr4", "aps_mnist_sr4", "flow.pt", "sr4", 0.05),
)

KINDS = ("ud2m", "aps")

#: kinds whose sampler accepts another operator at inference (UD2M: the operator enters only through
#: the prox); the benchmark runs them on tasks without a sampler of their own, labelled
OPERATOR_SHIFT = ("ud2m",)


def names(kind: str) -> tuple:
    """The shipped samplers of ``kind``, by name."""
    return tuple(s.name for s in SHIPPED if s.kind == kind)


def entry(kind: str, name: str) -> Shipped:
    """The row of the shipped sampler ``name`` of ``kind``, or a ValueError listing the others."""
    if kind not in KINDS:
        raise ValueError(f"unknown trained-sampler kind {kind!r}; use one of {', '.join(KINDS)}.")
    for s in SHIPPED:
        if s.kind == kind and s.name == name:
            return s
    raise ValueError(f"unknown shipped {kind} sampler {name!r}; shipped: "
                     f"{', '.join(names(kind))}.")


def shipped_problem(kind: str, name: str):
    """The problem the shipped sampler was trained for (its task at its sigma; random inpainting:
    the mask of seed 0)."""
    from ..tasks import image_problem
    s = entry(kind, name)
    return image_problem(s.task, s.sigma, generator=torch.Generator().manual_seed(0))


def serving(kind: str, task: str) -> dict:
    """{label suffix: name} of the shipped samplers of ``kind`` to run on ``task``: its own one
    (suffix ""), else, for a kind that accepts another operator, every one of that kind, labelled
    with its training task; else none."""
    own = [s for s in SHIPPED if s.kind == kind and s.task == task]
    if own:
        return {"": own[0].name}
    if kind in OPERATOR_SHIFT:
        return {f" (trained on {s.task})": s.name for s in SHIPPED if s.kind == kind}
    return {}
