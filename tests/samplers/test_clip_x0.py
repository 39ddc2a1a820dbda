"""The ``clip_x0`` option of DPS, DiffPIR and LATINO: off by default (the samples are the ones the
samplers gave before the option existed), on with True (the image range [-1, 1], as the public
codes) or a range, and bad values refused with a message naming the option."""
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.checks.options import IMAGE_RANGE, clip_range
from conftest import seeded

CLIPPED = ("dps", "diffpir", "latino")
SMALL = {"dps": dict(steps=30), "diffpir": dict(steps=20), "latino": dict(steps=6)}


@pytest.fixture(scope="module")
def toy():
    tp = pt.toy.bimodal_problem_2d()
    return tp, tp.prior.denoiser(pt.VPSchedule())


def run(name, toy, n=64, seed=0, **options):
    tp, den = toy
    return pt.sample(name, den, tp.problem, tp.y, n=n, generator=seeded(seed),
                     **SMALL[name], **options)


def estimates(name, toy, **options):
    """The clipped quantity of each step: DPS's x0_hat, DiffPIR's prior x0, LATINO's u."""
    tp, den = toy
    steps = pt.iterate(name, den, tp.problem, tp.y, n=64, generator=seeded(0), **SMALL[name],
                       **options)
    key = "x0_prior" if name == "diffpir" else None
    return torch.stack([st.extras[key] if key else st.x0 for st in steps])


@pytest.mark.parametrize("name", CLIPPED)
def test_clip_x0_is_an_option_off_by_default(name):
    assert pt.options_of(name)["clip_x0"] is None


@pytest.mark.parametrize("name", CLIPPED)
def test_off_reproduces_the_unclipped_samples_exactly(name, toy):
    default = run(name, toy)
    for off in (None, False, (-1e9, 1e9)):   # a range nothing reaches: the clamp changes nothing
        assert torch.equal(run(name, toy, clip_x0=off), default), off


@pytest.mark.parametrize("name", CLIPPED)
def test_the_default_never_clips_the_toy_problem(name, toy):
    """The toy data are not in [-1, 1]: by default the estimates leave that range."""
    assert estimates(name, toy).abs().max() > 1.5


@pytest.mark.parametrize("name", CLIPPED)
def test_on_clips_the_estimate_and_changes_the_samples(name, toy):
    est = estimates(name, toy, clip_x0=True)
    assert est.min() >= -1 and est.max() <= 1
    assert not torch.equal(run(name, toy, clip_x0=True), run(name, toy))
    assert torch.equal(run(name, toy, clip_x0=True), run(name, toy, clip_x0=(-1, 1)))
    est = estimates(name, toy, clip_x0=[-0.5, 2.0])   # a list works as a range too
    assert est.min() >= -0.5 and est.max() <= 2.0


def test_clip_range_turns_values_into_bounds():
    assert clip_range(None) is None and clip_range(False) is None
    assert clip_range(True) == IMAGE_RANGE == (-1.0, 1.0)
    assert clip_range((0, 1)) == (0.0, 1.0)


BAD = [("yes", TypeError), (3, TypeError), (1.0, TypeError), ((1,), ValueError),
       ((0, 1, 2), ValueError), ((1, 0), ValueError), ((0.5, 0.5), ValueError),
       ((0, float("nan")), ValueError), ([-float("inf"), 1], ValueError),
       (("a", 1), TypeError), ((True, 1), TypeError), (torch.tensor([-1.0, 1.0]), TypeError)]


@pytest.mark.parametrize("name", CLIPPED)
@pytest.mark.parametrize("value,kind", BAD, ids=[repr(v) for v, _ in BAD])
def test_bad_values_are_refused_with_a_clear_message(name, value, kind, toy):
    with pytest.raises(kind, match=rf"{name}: clip_x0 must be None or False \(off\), True"):
        run(name, toy, n=2, clip_x0=value)
