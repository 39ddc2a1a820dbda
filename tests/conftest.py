"""Shared test helpers and fixtures.

``seeded(seed)`` is the one way tests make a CPU generator (``from conftest import seeded``);
the ``toy`` fixture is the 2D bimodal problem with its exact denoiser, built once per session (a
module may define its own ``toy`` with more in it; pytest then uses the module's)."""
import pytest
import torch

import posterior_tutor as pt


def seeded(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="session")
def toy():
    """(the 2D bimodal toy problem, its exact Tweedie denoiser)."""
    tp = pt.toy.bimodal_problem_2d()
    return tp, tp.prior.denoiser(pt.VPSchedule())
