"""posterior_tutor.evaluation.peer: our prior inside deepinv's samplers (DPS, DiffPIR, DDRM)."""
import pytest
import torch

pytest.importorskip("deepinv", reason="deepinv is not importable: the peer tests need it "
                    "(pip install deepinv)")

import posterior_tutor as pt  # noqa: E402
from posterior_tutor.evaluation import peer  # noqa: E402
from posterior_tutor.denoisers import Denoiser  # noqa: E402
from conftest import seeded

torch.set_num_threads(1)
SHAPE = (1, 16, 16)


class GaussianPrior(Denoiser):
    """Exact Tweedie denoiser of x0 ~ N(0, c^2 I): smooth and never clipped, so two samplers that
    run the same update agree to round-off."""

    shape = SHAPE

    def __init__(self, c=0.5):
        super().__init__(pt.VPSchedule())
        self.c2 = c * c

    def _x0(self, x_t, t):
        ab = self.schedule.abar(t, like=x_t)
        return ab.sqrt() * self.c2 * x_t / (ab * self.c2 + 1 - ab)


@pytest.fixture(scope="module")
def unet_den():
    torch.manual_seed(0)
    return pt.EpsNetDenoiser(pt.nets.UNet(1, (8, 16)), pt.VPSchedule(), shape=SHAPE, clip=1.0)


@pytest.fixture(scope="module")
def problem():
    g = seeded(0)
    x = torch.rand(SHAPE, generator=g) * 2 - 1
    problem = pt.tasks.image_problem("gaussian_deblur", shape=SHAPE)
    return problem, problem.measure(x, generator=g)


def test_denoiser_matches_ours_at_matched_levels(unet_den):
    D = peer.DeepinvDenoiser(unet_den)
    sched = unet_den.schedule
    g = seeded(1)
    t = torch.tensor([0, 7, 250, 999])
    x0 = torch.rand(4, *SHAPE, generator=g) * 2 - 1
    x_t = sched.add_noise(x0, t, generator=g)
    ab = sched.abar(t, like=x_t)
    s = sched.s(t)
    xp = (x_t / ab.sqrt() + 1) / 2                     # deepinv's input: [0, 1], noise std s / 2
    unet_den.reset_counters()
    out = D(xp, s / 2)
    ref = (unet_den(x_t, t) + 1) / 2
    assert torch.equal(D.last_t, t)
    assert (out - ref).abs().max().item() < 1e-5
    assert unet_den.nfe == 2
    # one level for all; slightly off levels round to the nearest; extremes clamp
    out1 = D(xp[2:3], float(s[2]) / 2 * 1.001)
    assert D.last_t.tolist() == [250] and (out1 - ref[2:3]).abs().max().item() < 1e-5
    D(xp[:2], torch.tensor([0.0, 1e4]))
    assert D.last_t.tolist() == [0, sched.T - 1]
    with pytest.raises(ValueError):
        D(xp, torch.tensor([0.1, 0.2]))


def test_denoiser_gradient_counts(unet_den):
    D = peer.DeepinvDenoiser(unet_den)
    x = torch.rand(2, *SHAPE, dtype=torch.float64, requires_grad=True)
    unet_den.reset_counters()
    out = D(x.to(torch.float32), 0.3)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert unet_den.nfe == 1 and unet_den.nfe_grad == 1


@pytest.mark.parametrize("name,options,nfe,grad", [
    ("dps", dict(steps=6), 5, True),
    ("dps", dict(steps=6, zeta=0.3, grid="prior", dtype=torch.float32), 5, True),
    ("diffpir", dict(steps=6), 6, False),
    ("diffpir", dict(steps=6, lambda_=2.0, grid="uniform"), 6, False),
    ("ddrm", dict(steps=6), 6, False),
])
def test_runs_give_samples(unet_den, problem, name, options, nfe, grad):
    problem, y = problem
    unet_den.reset_counters()
    state = torch.random.get_rng_state()
    xs = peer.run_deepinv(name, unet_den, problem, y, n=3, generator=seeded(2),
                          **options)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's global RNG is untouched
    assert xs.shape == (3, *SHAPE) and xs.dtype == y.dtype
    assert torch.isfinite(xs).all()
    # our [-1, 1] scale, not [0, 1] (a random network's estimates, after an unclipped prox, may
    # overshoot the range a little)
    assert xs.abs().max().item() < 3 and xs.min().item() < -0.5
    assert unet_den.nfe == nfe
    assert unet_den.nfe_grad == (nfe if grad else 0)
    again = peer.run_deepinv(name, unet_den, problem, y, n=3,
                             generator=seeded(2), **options)
    assert torch.equal(xs, again)


def test_dps_with_zeta_is_our_dps():
    """With the paper's step (zeta), the prior's time grid and a shared start, deepinv's DPS runs
    exactly our DPS update (DDIM eta = 0 so that no noise is drawn; DDPM for the last step)."""
    den = GaussianPrior()
    for task in ("gaussian_deblur", "sr4"):
        problem = pt.tasks.image_problem(task, shape=SHAPE)
        g = seeded(3)
        y = problem.measure(torch.rand(SHAPE, generator=g) * 2 - 1, generator=g)
        for steps, eta in [(1, 1.0), (8, 0.0)]:
            ours = pt.sample("dps", den, problem, y, n=2, generator=seeded(5),
                             steps=steps, eta=eta, zeta=0.3)
            x_T = torch.randn((2, *SHAPE), generator=seeded(5))
            theirs = peer.run_deepinv("dps", den, problem, y, n=2, steps=steps + 1, grid="prior",
                                      eta=eta, zeta=0.3, x_init=x_T)
            assert (ours - theirs).abs().max().item() < 1e-4, (task, steps)
        unguided = pt.sample("dps", den, problem, y, n=2, generator=seeded(5),
                             steps=steps, eta=eta, zeta=0.0)
        assert (ours - unguided).abs().max().item() > 1e-2  # the guidance did act


def test_errors(unet_den, problem):
    problem, y = problem
    with pytest.raises(ValueError, match="dps, diffpir, ddrm"):
        peer.run_deepinv("daps", unet_den, problem, y, n=1)
    with pytest.raises(TypeError, match="no option"):
        peer.run_deepinv("dps", unet_den, problem, y, n=1, zeta_t=0.3)
    sr = pt.tasks.image_problem("sr4", shape=SHAPE)
    y_sr = sr.measure(torch.zeros(SHAPE))
    with pytest.raises(ValueError, match="SVD"):
        peer.run_deepinv("ddrm", unet_den, sr, y_sr, n=1)
    sat = pt.tasks.image_problem("nonlinear", shape=SHAPE)
    y_sat = sat.measure(torch.zeros(SHAPE))
    with pytest.raises(ValueError, match="nonlinear"):
        peer.run_deepinv("diffpir", unet_den, sat, y_sat, n=1)
    with pytest.raises(ValueError, match="shape"):
        peer.run_deepinv("dps", unet_den, problem, y[None], n=1)
    with pytest.raises(ValueError, match="grid"):
        peer.run_deepinv("diffpir", unet_den, problem, y, n=1, grid="quadratic")
    with pytest.raises(TypeError):
        peer.DeepinvDenoiser(torch.nn.Identity())


def test_nonlinear_dps_runs(unet_den):
    sat = pt.tasks.image_problem("nonlinear", shape=SHAPE)
    y = sat.measure(torch.zeros(SHAPE), generator=seeded(0))
    xs = peer.run_deepinv("dps", unet_den, sat, y, n=2, steps=4,
                          generator=seeded(0))
    assert xs.shape == (2, *SHAPE) and torch.isfinite(xs).all()
