"""MCGdiff (the SMC sampler) against the exact posterior: distance to exact samples relative to the
noise floor, closer than DPS (the stored toy benchmark rows, same n), mode weights, the Step extras
(ESS, resampling events, weights), the particle systems, reproducibility and refused input."""
import csv

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor import operators as O
from posterior_tutor.metrics import sliced_wasserstein
from posterior_tutor.samplers.mcgdiff import svd_frame, time_grid
from conftest import seeded

N = 2000          # the stored benchmark's n, so that its DPS rows compare at the same floor
PARTICLES = 100   # the documented setting: 100 particles, 10 draws from each of 200 systems,
DRAWS = 10        # 300 steps (3000 evaluations per sample); about 15 s per run on d = 16


def stored(problem, method):
    path = pt.files.resources.root("benchmark") / "toy.csv"
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["problem"] == problem and row["method"] == method:
                return float(row["sw_over_floor"])
    raise KeyError((problem, method))


def run_against_exact(tp, **options):
    den = tp.prior.denoiser(pt.VPSchedule())
    g = seeded(0)
    exact = tp.posterior.sample(N, generator=g)
    floor = sliced_wasserstein(tp.posterior.sample(N, generator=g), exact, generator=g).item()
    xs = pt.sample("mcgdiff", den, tp.problem, tp.y, n=N, generator=seeded(2),
                   particles=PARTICLES, draws=DRAWS, **options)
    ratio = sliced_wasserstein(xs, exact, generator=seeded(3)).item() / floor
    weights = tp.posterior.responsibilities(xs.double()).mean(0)
    return xs, ratio, (weights - tp.posterior.weights).abs().max().item()


@pytest.mark.parametrize("make, within, weight_tol", [
    (pt.toy.bimodal_problem_2d, 1.5, 0.03),
    (lambda: pt.toy.gmm_problem(d=16, rank=4), 3.0, 0.08),
], ids=["2d-bimodal", "gmm-d16-rank4"])
def test_near_the_noise_floor_and_closer_than_dps(make, within, weight_tol):
    """measured (n = 2000, 100 particles, 10 draws per system, the default 300 steps; sampler
    seeds 2-7; the floor of one exact pair): SW / floor 2d 0.47-0.71, d16 1.07-2.00, mode-weight
    error at most 0.009 and 0.045; stored DPS (1000 calls and backward passes) 6.4 and 9.7."""
    tp = make()
    xs, ratio, weight_err = run_against_exact(tp)
    assert xs.shape == (N, tp.prior.d) and torch.isfinite(xs).all()
    print(f"{tp.name}: SW / floor {ratio:.2f}, mode-weight error {weight_err:.3f}")
    assert ratio < within, f"{tp.name}: SW / floor {ratio:.2f}"
    assert ratio < stored(tp.name, "dps"), f"{tp.name}: {ratio:.2f} vs DPS {stored(tp.name, 'dps')}"
    assert weight_err < weight_tol, f"{tp.name}: mode-weight error {weight_err:.3f}"


def test_a_gaussian_posterior_has_its_mean_and_variance():
    """One Gaussian prior: the posterior is Gaussian; its mean and covariance come back."""
    C = 0.5 * torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    prior = pt.GaussianMixture([1.0], [[0.5, -0.3]], C[None])
    prob = pt.InverseProblem(O.Matrix([[1.0, 0.0], [0.0, 2.0]]), 0.1)
    y = torch.tensor([0.7, 0.7])
    post = prior.posterior(prob, y)
    xs = pt.sample("mcgdiff", prior.denoiser(pt.VPSchedule()), prob, y, n=8000,
                   generator=seeded(1), particles=100)
    assert torch.allclose(xs.mean(0).double(), post.means[0], atol=0.01)
    var, exact = torch.cov(xs.T.double()).diagonal(), post.covs[0].diagonal()
    assert ((var / exact - 1).abs() < 0.12).all(), (var, exact)   # measured within 5%


def test_steps_carry_ess_resampling_and_weights(toy):
    tp, den = toy
    den.reset_counters()
    steps = list(pt.iterate("mcgdiff", den, tp.problem, tp.y, n=25, generator=seeded(0),
                            particles=10, steps=20, resample_below=0.99))
    _, tau, _ = svd_frame(tp.problem, tp.y, den.schedule)
    assert den.nfe == len(steps) == len(time_grid(den.schedule, 20, tau))
    assert [s.i for s in steps] == list(range(len(steps)))
    for s in steps[:-1]:
        assert s.x.shape == (30, 2)                     # 3 systems of 10 particles
        assert s.extras["ess"].shape == (3,) and s.extras["resampled"].dtype == torch.bool
        assert ((s.extras["ess"] > 0) & (s.extras["ess"] <= 10 + 1e-4)).all()
        assert torch.allclose(s.extras["weights"].reshape(3, 10).sum(1), torch.ones(3))
    assert sum(int(s.extras["resampled"].sum()) for s in steps[:-1]) > 0
    assert sum(s.extras["pinned"] for s in steps[:-1]) == len(tau)
    assert steps[-1].x.shape == (25, 2) and steps[-1].t == 0 and steps[-1].phase == "draw"


def test_draws_set_how_many_samples_one_system_gives(toy):
    """draws = 2 of 10 particles: 7 samples from 4 systems (the state holds 40 particles); each
    sample comes from its own system's particles; draws=None is draws=particles."""
    tp, den = toy
    steps = list(pt.iterate("mcgdiff", den, tp.problem, tp.y, n=7, generator=seeded(0),
                            particles=10, draws=2, steps=10))
    assert steps[0].x.shape == (40, 2) and steps[0].extras["ess"].shape == (4,)
    assert steps[-1].x.shape == (7, 2)
    a, b = (pt.sample("mcgdiff", den, tp.problem, tp.y, n=12, generator=seeded(5), steps=10,
                      particles=6, **o) for o in ({}, {"draws": 6}))
    assert torch.equal(a, b)


def test_never_resampling_keeps_uneven_weights(toy):
    tp, den = toy
    steps = list(pt.iterate("mcgdiff", den, tp.problem, tp.y, n=50, generator=seeded(0),
                            particles=50, steps=20, resample_below=0.0))
    assert not any(s.extras["resampled"].any() for s in steps[:-1])
    assert steps[-2].extras["ess"].item() < 50


def test_same_seed_same_samples(toy):
    tp, den = toy
    a, b, c = (pt.sample("mcgdiff", den, tp.problem, tp.y, n=12, generator=seeded(s), steps=10,
                         particles=5) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_image_shaped_signals_with_a_fixed_size_operator():
    shape = (1, 4, 4)
    prior = pt.toy.random_mixture(d=16, seed=3)
    base = prior.denoiser(pt.VPSchedule())

    class Image(pt.Denoiser):
        def __init__(self):
            super().__init__(pt.VPSchedule())
            self.shape = shape

        def _x0(self, x_t, t):
            return base(x_t.reshape(len(x_t), 16), t).reshape(x_t.shape)

    prob = pt.InverseProblem(O.Inpainting.random(shape, 0.5, generator=seeded(1)), 0.1)
    y = prob.measure(torch.zeros(shape), generator=seeded(2))
    xs = pt.sample("mcgdiff", Image(), prob, y, n=6, generator=seeded(3), steps=10, particles=3)
    assert xs.shape == (6, *shape) and torch.isfinite(xs).all()


# -- refused input -----------------------------------------------------------------------------
def test_nonlinear_and_sizeless_operators_are_refused(toy):
    _, den = toy
    prob = pt.InverseProblem(O.Saturation(O.Matrix([[0.3, 1.0]]), gain=0.5), 0.2)
    with pytest.raises(ValueError, match="linear operators only.*Saturation is nonlinear"):
        pt.sample("mcgdiff", den, prob, torch.tensor([0.5]), n=2)
    img = pt.toy.random_mixture(d=16).denoiser(pt.VPSchedule())
    img.shape = (1, 4, 4)
    prob = pt.InverseProblem(O.Blur(O.gaussian_kernel(3, 1.0)), 0.1)
    with pytest.raises(ValueError, match="dense matrix: build Blur with a fixed input shape"):
        pt.sample("mcgdiff", img, prob, torch.zeros(1, 4, 4), n=2)


@pytest.mark.parametrize("options, message", [
    (dict(particles=0), r"particles must be an integer"),
    (dict(particles=2.5), r"particles must be an integer"),
    (dict(steps=1), r"steps must be an integer in 2\.\.1000"),
    (dict(resample_below=1.5), r"resample_below must be a finite number in \[0, 1\]"),
    (dict(particles=4, draws=5), r"draws must be an integer in 1\.\.4"),
    (dict(draws=0), r"draws must be an integer"),
])
def test_bad_options_are_named(toy, options, message):
    tp, den = toy
    with pytest.raises(ValueError, match=message):
        pt.sample("mcgdiff", den, tp.problem, tp.y, n=2, **options)


def test_bad_input_is_refused_like_every_sampler(toy):
    tp, den = toy
    with pytest.raises(ValueError, match="InverseProblem and y"):
        pt.sample("mcgdiff", den, None, None, n=2)
    with pytest.raises(ValueError, match="NaN"):
        pt.sample("mcgdiff", den, tp.problem, torch.tensor([float("nan")]), n=2)
    with pytest.raises(ValueError, match="positive integer"):
        pt.sample("mcgdiff", den, tp.problem, tp.y, n=0)
    with pytest.raises(TypeError, match="generator"):
        pt.sample("mcgdiff", den, tp.problem, tp.y, n=2, generator=0)
    assert "mcgdiff" in pt.methods()
