"""A sampler or trainer given ``generator=`` owns all of its randomness: torch's global random state
is exactly the same after the call as before it (issue 21).  Every registered method on the 2D toy
problem, UD2M and APS sampling, one training step of each trainer, the toy data sets and random
masks; and a deterministic DDIM step (eta = 0) draws nothing at all."""
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.samplers.diffusion import ddim_update
from conftest import seeded as _gen

# options that keep each run short: only randomness is checked here, not quality
SHORT = {
    "ddpm": dict(steps=20),
    "dps": dict(steps=20),
    "mcgdiff": dict(steps=10, particles=5),
    "diffpir": dict(steps=10),
    "daps": dict(levels=4, ode_steps=2, langevin_steps=3),
    "pnp_ula": dict(steps=20),
    "latino": dict(steps=4),
    "spin": dict(),
}


def _untouched(fn):
    """Run fn() and assert the global CPU RNG state did not move; returns fn's result."""
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    out = fn()
    after = torch.get_rng_state()
    assert torch.equal(before, after), "the global torch RNG was advanced"
    return out


def test_every_registered_method_is_covered():
    assert set(pt.methods()) <= set(SHORT), f"add options for {set(pt.methods()) - set(SHORT)}"


@pytest.mark.parametrize("name", sorted(SHORT))
def test_sampler_leaves_the_global_rng_alone(toy, name):
    tp, den = toy
    xs = _untouched(lambda: pt.sample(name, den, tp.problem, tp.y, n=8, generator=_gen(0),
                                      **SHORT[name]))
    assert xs.shape == (8, 2) and torch.isfinite(xs).all()
    # the generator alone decides the samples: same seed, same samples, whatever the global state
    torch.manual_seed(99)
    again = pt.sample(name, den, tp.problem, tp.y, n=8, generator=_gen(0), **SHORT[name])
    assert torch.equal(xs, again)


def test_norm_squared_is_deterministic_without_generator():
    op = pt.operators.Matrix(torch.tensor([[0.3, 1.0], [2.0, -1.0]]))
    a = _untouched(lambda: op.norm_squared())
    b = _untouched(lambda: op.norm_squared())
    assert a == b
    assert abs(a - torch.linalg.matrix_norm(op.A.double(), ord=2).item() ** 2) < 1e-8


def test_ddim_update_with_eta_zero_draws_nothing():
    sched = pt.VPSchedule()
    x0, eps = torch.randn(4, 2), torch.randn(4, 2)

    g = _gen(5)
    state = g.get_state()
    out = _untouched(lambda: ddim_update(sched, x0, eps, 500, 300, 0.0, g))
    assert torch.equal(g.get_state(), state), "eta = 0 drew from the generator"
    ab = sched.abar(300).item()
    assert torch.allclose(out, ab ** 0.5 * x0 + (1 - ab) ** 0.5 * eps)
    # and eta > 0 does draw (the check above can fail)
    ddim_update(sched, x0, eps, 500, 300, 0.5, g)
    assert not torch.equal(g.get_state(), state)


def test_toy_data_and_masks_leave_the_global_rng_alone():
    _untouched(lambda: pt.toy.two_moons(50, generator=_gen(0)))
    _untouched(lambda: pt.toy.rings(50, generator=_gen(0)))
    m = _untouched(lambda: pt.operators.Inpainting.random((1, 8, 8), generator=_gen(0)))
    assert m.mask.device.type == "cpu"
    assert torch.equal(pt.toy.two_moons(20, generator=_gen(3)),
                       pt.toy.two_moons(20, generator=_gen(3), device="cpu"))


def test_ud2m_training_and_sampling_leave_the_global_rng_alone(toy):
    tp, den = toy
    xs = tp.prior.sample(64, generator=_gen(1))
    ud = _untouched(lambda: pt.ud2m.train(den, tp.problem, xs, generator=_gen(2), steps=1,
                                          batch=8))
    assert len(ud.losses) == 1
    out = _untouched(lambda: ud.sample(tp.y, n=8, generator=_gen(3)))
    assert torch.isfinite(out).all()


def test_aps_training_and_sampling_leave_the_global_rng_alone(toy):
    tp, den = toy
    xs = tp.prior.sample(64, generator=_gen(1))
    ys = pt.ud2m.measure_batch(tp.problem, xs, generator=_gen(2))
    fl = _untouched(lambda: pt.aps.train(den, tp.problem, ys, generator=_gen(3), steps=1,
                                         batch=8))
    assert len(fl.losses) == 1
    out = _untouched(lambda: fl.sample(tp.y, n=8, generator=_gen(4)))
    assert torch.isfinite(out).all()
