"""The shipped trained samplers give the same samples for the same seed, before and after any
refactoring: samples drawn now are compared with samples stored in tests/golden/.

Regenerate (only when a sampler is meant to change, e.g. retrained):
    POSTERIOR_TUTOR_REGOLD=1 python -m pytest tests/trained/test_shipped_samples.py
"""
import os
from pathlib import Path

import pytest
import torch

import posterior_tutor as pt
from conftest import seeded

GOLDEN = Path(__file__).parents[1] / "golden" / "shipped_samples.pt"
SAMPLERS = [("ud2m", "mnist-random-inpainting"), ("ud2m", "mnist-sr4"),
            ("aps", "mnist-denoising"), ("aps", "mnist-sr4")]


def _digit() -> torch.Tensor:
    """A fixed 32x32 test image (a ring on the background), no data set needed."""
    r = torch.linspace(-1, 1, 32)
    d = (r[None, :] ** 2 + r[:, None] ** 2).sqrt()
    return torch.where((d - 0.45).abs() < 0.12, 1.0, -1.0)[None]


def _draw(kind: str, name: str) -> torch.Tensor:
    den = pt.pretrained("mnist")
    if kind == "ud2m":
        sampler = pt.ud2m.pretrained(name, den)
        problem = sampler.problem
    else:
        sampler = pt.aps.pretrained(name, den)
        problem = pt.aps.shipped_problem(name)
    y = problem.measure(_digit(), generator=seeded(1))
    with torch.no_grad():
        return sampler.sample(y, 3, generator=seeded(2), problem=problem).detach()


@pytest.fixture(scope="module")
def golden():
    if os.environ.get("POSTERIOR_TUTOR_REGOLD") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        torch.save({f"{k}/{n}": _draw(k, n) for k, n in SAMPLERS}, GOLDEN)
    return torch.load(GOLDEN, weights_only=True)


@pytest.mark.parametrize("kind, name", SAMPLERS)
def test_same_samples_for_the_same_seed(golden, kind, name):
    got = _draw(kind, name)
    want = golden[f"{kind}/{name}"]
    assert got.shape == want.shape == (3, 1, 32, 32)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), (got - want).abs().max()
    assert got.std(0).mean() > 1e-3            # three different samples, not one repeated
