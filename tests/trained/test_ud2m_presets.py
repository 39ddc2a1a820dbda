"""UD2M's two noise bookkeepings (posterior_tutor/trained/ud2m/presets.py): "ours" is the sampler as it
was, "code" is the public code's sigma' (sigma, x13 for inpainting), x^(0) and DDIM eta rule."""
import math

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.trained.ud2m import presets as P
from posterior_tutor.operators import Inpainting, InverseProblem, Matrix
from conftest import seeded as _gen


@pytest.fixture(scope="module")
def toy():
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser(pt.VPSchedule())
    xs = tp.prior.sample(256, generator=_gen(0))
    ud = pt.ud2m.train(den, tp.problem, xs, generator=_gen(1), steps=2, batch=16)
    return tp, ud


def test_sigma_primes_follow_the_code():
    inp = InverseProblem(Inpainting(torch.ones(1, 4, 4)), 0.05)
    mat = InverseProblem(Matrix([[1.0, 0.5]]), 0.05)
    assert P.sigma_primes("ours", inp, 13.0) == pytest.approx((0.65, 0.65))
    assert P.sigma_primes("code", inp, 2.0) == pytest.approx((0.65, 0.05))    # x13, true sigma
    assert P.sigma_primes("code", mat, 20.0) == pytest.approx((0.05, 0.05))   # sigma' = sigma
    assert P.sigma_primes("ours+code_x0", mat, 20.0) == pytest.approx((1.0, 0.05))
    assert P.sigma_primes("ours+code_sigma", mat, 20.0) == pytest.approx((0.05, 1.0))


def test_code_eta_rule_uses_the_single_step_beta():
    s = pt.VPSchedule()
    ab, ab2, ab_prev_step = s.abar(999).item(), s.abar(444).item(), s.abar(998).item()
    beta = 1 - ab / ab_prev_step
    c = P.noise_scale(s, 999, 444, 0.8, "code")
    assert c == pytest.approx(0.8 * math.sqrt((1 - ab2) / (1 - ab) * beta))
    assert c ** 2 / (1 - ab2) == pytest.approx(0.0128, abs=5e-4)              # ~1.3% fresh noise
    ours = P.noise_scale(s, 999, 444, 0.8, "ours")
    assert ours ** 2 / (1 - ab2) == pytest.approx(0.64, abs=0.01)            # ~64%
    assert P.noise_scale(s, 999, 444, 0.0, "code") == 0.0


def test_ours_is_the_sampler_as_it_was_and_code_differs(toy):
    tp, ud = toy
    assert ud.preset == "ours"
    a = ud.sample(tp.y, n=16, generator=_gen(3))
    b = ud.with_preset("ours").sample(tp.y, n=16, generator=_gen(3))
    assert torch.equal(a, b)
    code = ud.with_preset("code")
    assert code.preset == "code" and ud.preset == "ours"        # a copy; the original unchanged
    assert code.denoiser is ud.denoiser and code.log_lam is ud.log_lam
    c = code.sample(tp.y, n=16, generator=_gen(3))
    assert torch.isfinite(c).all() and not torch.allclose(a, c)


def test_preset_survives_save_and_load(toy, tmp_path):
    tp, ud = toy
    code = ud.with_preset("code")
    path = code.save(tmp_path / "ud.pt")
    back = pt.ud2m.UD2MSampler.load(path, ud.den, tp.problem)
    assert back.preset == "code"
    assert torch.equal(back.sample(tp.y, n=4, generator=_gen(4)),
                       code.sample(tp.y, n=4, generator=_gen(4)))


def test_unknown_preset_is_refused(toy):
    with pytest.raises(ValueError, match="unknown UD2M preset"):
        toy[1].with_preset("paper")
