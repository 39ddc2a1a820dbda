"""The shipped trained samplers, seen from the trained family: their problems and who serves what.

The table itself (kind, name, folder, file, task, sigma, prior) is ``files/shipped.py``, with
the one lookup ``pt.pretrained(name, kind=...)``; this module adds what needs the higher
packages: the problem a shipped sampler was trained for (``shipped_problem``, from ``pt.tasks``)
and which shipped sampler the benchmark runs on which task (``serving``).
"""
from __future__ import annotations

import torch

from ..files.shipped import SHIPPED, entry, names

__all__ = ["KINDS", "OPERATOR_SHIFT", "names", "entry", "shipped_problem", "serving"]

#: the kinds of shipped file that are trained samplers
KINDS = ("ud2m", "aps")

#: kinds whose sampler accepts another operator at inference (UD2M: the operator enters only through
#: the prox); the benchmark runs them on tasks without a sampler of their own, labelled
OPERATOR_SHIFT = ("ud2m",)


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
