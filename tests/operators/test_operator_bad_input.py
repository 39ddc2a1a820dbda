"""Bad noise levels for InverseProblem: refused with a message naming sigma and the value, both at
construction and on a later assignment ``prob.sigma = ...`` (issue 28)."""
import math

import numpy as np
import pytest
import torch

from conftest import seeded
from posterior_tutor.operators import InverseProblem, Matrix


def _prob(sigma=0.3):
    return InverseProblem(Matrix([[1.0, 0.5]]), sigma)


def test_a_per_measurement_sigma_is_refused_with_what_to_pass():
    with pytest.raises(ValueError, match=r"sigma must be one number.*Tensor of shape \(2,\).*"
                                         r"per-measurement noise level is not supported.*"
                                         r"pass a float"):
        InverseProblem(Matrix([[1.0, 0.5], [0.0, 1.0]]), sigma=torch.tensor([0.25, 0.3]))
    with pytest.raises(ValueError, match=r"sigma must be one number.*ndarray of shape \(3,\)"):
        _prob(np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match=r"sigma must be one number.*shape \(0,\)"):
        _prob(torch.tensor([]))


@pytest.mark.parametrize("bad, shown", [(0.0, "0.0"), (-0.1, "-0.1"), (math.nan, "nan"),
                                        (math.inf, "inf"), (torch.tensor(0.0), "0.0")])
def test_zero_negative_or_non_finite_sigma_is_refused_on_assignment(bad, shown):
    prob = _prob()
    with pytest.raises(ValueError, match=rf"noise level sigma must be a finite number > 0, "
                                         rf"got {shown} \(every sampler divides by sigma\^2\)"):
        prob.sigma = bad
    assert prob.sigma == 0.3  # the refused value did not stick
    with pytest.raises(ValueError, match=rf"sigma must be a finite number > 0, got {shown}"):
        _prob(bad)


@pytest.mark.parametrize("bad, shown", [("0.1", "str '0.1'"), (None, "NoneType None"),
                                        (True, "bool True"), ([0.1], r"list \[0.1\]")])
def test_a_sigma_that_is_not_a_number_is_refused_on_assignment(bad, shown):
    prob = _prob()
    with pytest.raises(TypeError, match=rf"sigma \(the noise level\) must be a number > 0.*"
                                        rf"got {shown}"):
        prob.sigma = bad
    assert prob.sigma == 0.3
    with pytest.raises(TypeError, match=r"sigma \(the noise level\)"):
        _prob(bad)


def test_a_complex_one_element_sigma_is_refused_as_not_real():
    with pytest.raises(TypeError, match=r"sigma \(the noise level\) must be a real number > 0"):
        _prob(torch.tensor([0.1 + 0.2j]))


def test_valid_sigmas_are_stored_as_one_float_and_used():
    for good in (0.25, 1, np.float32(0.25), torch.tensor(0.25), torch.tensor([0.25]),
                 np.array([0.25])):
        prob = _prob(good)
        assert type(prob.sigma) is float and prob.sigma == pytest.approx(0.25 if good != 1 else 1.0)
    prob = _prob(0.3)
    prob.sigma = 0.6
    x, y = torch.tensor([[1.0, 2.0]]), torch.tensor([0.0])
    assert prob.data_fit(x, y).item() == pytest.approx(0.5 * 2.0 ** 2 / 0.36)
    assert repr(prob) == "InverseProblem(Matrix(1x2), sigma=0.6)"


def test_a_refused_assignment_leaves_a_working_problem():
    """sigma = 0 never reaches a sampler (DAPS, PnP-ULA, DiffPIR and LATINO divide by sigma^2): the
    assignment fails and the problem keeps measuring with its old noise level."""
    prob = _prob(0.3)
    with pytest.raises(ValueError, match="got 0.0"):
        prob.sigma = 0
    ys = torch.stack([prob.measure(torch.tensor([1.0, 2.0]), generator=seeded(i))
                      for i in range(2000)])
    assert torch.isfinite(ys).all()
    assert ys.mean().item() == pytest.approx(2.0, abs=0.05)
    assert ys.std().item() == pytest.approx(0.3, rel=0.1)
