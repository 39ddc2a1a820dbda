"""method_grid (one image grid of every method on the same y) and autograd_memory."""
import math

import matplotlib
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.evaluation import method_grid
from posterior_tutor.evaluation.memory import SavedForBackward
from conftest import seeded

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def den():
    d = pt.pretrained("mnist")
    d.clip = 1.0
    return d


def test_grid_holds_one_sample_per_method_and_digit_on_the_same_y(den):
    res = method_grid.compute(den, "sr4", n_digits=2, methods=("spin", "latino"), fast=True)
    assert res["methods"] == ["spin", "latino"]
    assert res["truth"].shape == res["y"].shape == res["spin"].shape == (2, 1, 32, 32)
    assert res["truth"].dtype == torch.float16          # small enough for a stored run
    assert all(math.isfinite(res["psnr"][m]) and res["seconds"][m] > 0 for m in res["methods"])
    assert not torch.equal(res["spin"], res["latino"])
    fig = method_grid.plot(res)
    assert len(fig.axes) == 2 * 4                       # truth, y and two methods, two rows


def test_grid_refuses_no_digits(den):
    with pytest.raises(ValueError, match="n_digits"):
        method_grid.compute(den, "sr4", n_digits=0)


def test_saved_for_backward_counts_dps_but_not_spin(den):
    prob = pt.tasks.image_problem("gaussian_deblur")
    x = torch.zeros(1, 32, 32)
    y = prob.measure(x, generator=seeded(0))
    dps = SavedForBackward().run(pt.iterate("dps", den, prob, y, n=1, steps=2))
    spin = SavedForBackward().run(pt.iterate("spin", den, prob, y, n=1))
    assert dps > 1.0 and spin < dps / 10
