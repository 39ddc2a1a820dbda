"""LATINO: the chain's equations step by step, its grid, and its accuracy on the exact toy posterior."""
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.samplers.latino import latino_grid
from conftest import seeded


def _sw(a, b):
    return float(pt.metrics.sliced_wasserstein(a, b, generator=seeded(1)))


def test_default_grid_is_the_papers():
    assert latino_grid(8) == [999, 874, 749, 624, 499, 374, 249, 124]
    assert latino_grid(1) == [999]
    with pytest.raises(ValueError, match="at least one step"):
        latino_grid(0)


def test_each_step_is_noise_denoise_prox():
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser(pt.VPSchedule())
    steps = list(pt.iterate("latino", den, tp.problem, tp.y, n=5,
                            generator=seeded(0), delta=0.3))
    assert len(steps) == 8 and den.nfe == 8 and den.nfe_grad == 0
    for s in steps:
        u = den(s.extras["noised"], s.t)          # the prior half: one denoiser call
        assert torch.allclose(u, s.x0, atol=1e-6)
        rho = (0.3 * (1 - den.schedule.abar(s.t).item())) ** 0.5
        assert torch.allclose(s.x, tp.problem.prox(u, tp.y, rho), atol=1e-6)
        assert torch.allclose(s.extras["rho"], torch.full((5,), rho), atol=1e-6)


def test_adaptive_step_size_follows_the_residual():
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser(pt.VPSchedule())
    s = next(pt.iterate("latino", den, tp.problem, tp.y, n=4, generator=seeded(0), c=2.0))
    res = tp.problem.residual(s.x0, tp.y).flatten(1).norm(dim=1)
    expect = (2.0 * res * (1 - den.schedule.abar(999).item())).sqrt()
    assert torch.allclose(s.extras["rho"], expect, atol=1e-6)


@pytest.mark.parametrize("make", [pt.toy.bimodal_problem_2d, pt.toy.gmm_problem])
def test_latino_moves_from_prior_towards_posterior(make):
    tp = make()
    den = tp.prior.denoiser(pt.VPSchedule())
    g = seeded(0)
    ref = tp.posterior.sample(1500, generator=g)
    xs = pt.sample("latino", den, tp.problem, tp.y, n=1500, generator=g)
    prior = tp.prior.sample(1500, generator=g)
    # measured: 2D 0.55 vs prior 1.48; d16 0.79 vs prior 0.81 (the d = 16 problem is hard for it)
    assert _sw(xs, ref) < 0.5 * _sw(prior, ref) if tp.y.numel() <= 2 else _sw(xs, ref) < _sw(prior, ref)
    assert tp.problem.residual(xs, tp.y).pow(2).mean() < tp.problem.residual(prior, tp.y).pow(2).mean()


def test_latino_on_images_with_a_network_prior():
    net = pt.nets.UNet(1, (8, 16), attention=False)
    den = pt.EpsNetDenoiser(net, pt.VPSchedule(), shape=(1, 16, 16))
    x = pt.data.load("digits", limit=1)[0]
    for op in [pt.operators.Inpainting.random((1, 16, 16), 0.5, generator=seeded(0)),
               pt.operators.SuperResolution(4)]:
        prob = pt.InverseProblem(op, 0.05)
        y = prob.measure(x, generator=seeded(1))
        xs = pt.sample("latino", den, prob, y, n=3, generator=seeded(2), steps=3)
        assert xs.shape == (3, 1, 16, 16) and torch.isfinite(xs).all()
