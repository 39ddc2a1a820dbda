"""APS (posterior_tutor.trained.aps): the flows' invertibility and log-determinants against autograd,
the ELBO's x-gradient against the exact score, training on the exact 2D toy posterior, files and
errors."""
import math

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.trained import aps as A
from posterior_tutor.files.checkpoints import CheckpointError
from posterior_tutor.metrics import sliced_wasserstein
from conftest import seeded as _gen

torch.set_num_threads(1)
N_EVAL = 2000


def _sw(a, b):
    return float(sliced_wasserstein(a, b, generator=_gen(3)))


def _randomise(module, std=0.2, seed=0):
    """Non-zero weights everywhere (the flows start as the identity: nothing to test there)."""
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g))
    return module


def _tiny_image_problem():
    net = pt.nets.UNet(1, (8, 16))
    torch.nn.init.normal_(net.out[-1].weight, std=0.02)
    den = pt.EpsNetDenoiser(net.requires_grad_(False), pt.VPSchedule(), shape=(1, 8, 8))
    problem = pt.InverseProblem(pt.operators.SuperResolution(2, shape=(1, 8, 8)), 0.1)
    xs = torch.rand(16, 1, 8, 8, generator=_gen(0)) * 2 - 1
    clean = problem.operator(xs)
    return den, problem, clean + 0.1 * torch.randn(clean.shape, generator=_gen(1))


@pytest.fixture(scope="module")
def toy():
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser(pt.VPSchedule())
    exact = tp.posterior.sample(N_EVAL, generator=_gen(10))
    floor = _sw(tp.posterior.sample(N_EVAL, generator=_gen(11)), exact)
    prior_dist = _sw(tp.prior.sample(N_EVAL, generator=_gen(12)), exact)
    return tp, den, exact, floor, prior_dist


@pytest.fixture(scope="module")
def single_fit(toy):
    """A flow fitted to the toy problem's one measurement with the ELBO of the exact denoiser."""
    tp, den = toy[:2]
    return A.train(den, tp.problem, tp.y[None], generator=_gen(0), steps=250, batch=128, t_groups=8)


# -- the flows ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 4, 4), (2, 2, 4)])
def test_image_flow_inverts_and_its_logdet_matches_autograd(shape):
    flow = _randomise(A.ImageFlow(shape, y_channels=1, hidden=8, feat=4, checker=3, channel=2))
    c = torch.randn(1, 1, *shape[1:], generator=_gen(1))
    z = torch.randn(1, *shape, generator=_gen(2))
    x, ld = flow.generate(z, c)
    z2, ld2 = flow.encode(x, c)
    assert (z2 - z).abs().max() < 1e-4
    assert abs(ld.item() - ld2.item()) < 1e-4
    J = torch.autograd.functional.jacobian(
        lambda v: flow.generate(v.reshape(1, *shape), c)[0].reshape(-1), z.reshape(-1))
    assert abs(torch.linalg.slogdet(J.double())[1].item() - ld.item()) < 1e-3
    assert (x - z).abs().max() > 0.1, "randomised: the flow is not the identity"


@pytest.mark.parametrize("kind", A.VECTOR_FLOWS)
def test_vector_flow_inverts_and_its_logdet_matches_autograd(kind):
    flow = A.VectorFlow(3, 2, kind, transforms=2, hidden=16)
    c = torch.randn(1, 2, generator=_gen(1))
    z = torch.randn(1, 3, generator=_gen(2))
    x, ld = flow.generate(z, c)
    z2, ld2 = flow.encode(x, c)
    assert (z2 - z).abs().max() < 1e-4 and abs(ld.item() - ld2.item()) < 1e-4
    J = torch.autograd.functional.jacobian(lambda v: flow.generate(v[None], c)[0][0], z[0])
    assert abs(torch.linalg.slogdet(J.double())[1].item() - ld.item()) < 1e-4
    layers = list(flow.layers(z, c))
    assert len(layers) == 2 and torch.allclose(layers[-1][1], x, atol=1e-5)
    assert abs(layers[-1][2].item() - ld.item()) < 1e-5


def test_every_flow_parameter_gets_a_gradient_and_the_prior_none():
    den, problem, ys = _tiny_image_problem()
    fl = A.train(den, problem, ys, generator=_gen(0), steps=2, batch=4, hidden=8, feat=4)
    fl.flow.zero_grad()
    total, _ = A.aps_loss(fl, problem, ys[:4], 1.0, "elbo", _gen(1))
    total.backward()
    missing = [n for n, p in fl.flow.named_parameters()
               if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient for {missing}"
    assert all(p.grad is None for p in den.net.parameters())


# -- the ELBO -------------------------------------------------------------------------------------
def test_elbo_weights_are_the_ddpm_bound_and_importance_sampling_is_unbiased():
    sched = pt.VPSchedule()
    w = A.elbo_weights(sched)
    b, ab = sched.betas, sched.alpha_bar
    assert w[0] == 0 and torch.allclose(w[5], b[5] / (2 * (1 - b[5]) * (1 - ab[5])))
    gmm = pt.GaussianMixture([1.0], [[0.5, -0.3]], [[[0.4, 0.1], [0.1, 0.2]]])
    den = gmm.denoiser(sched)
    x = torch.tensor([[1.0, 0.0]]).expand(20000, 2)
    imp = A.neg_elbo(den, x, _gen(0)).mean()
    uni = A.neg_elbo(den, x, _gen(1), t_sampling="uniform").mean()
    assert abs(imp - uni) < 0.05 * imp


def test_elbo_gradient_matches_the_exact_score_on_a_gaussian():
    """For a Gaussian prior and its exact denoiser, E grad_x (-ELBO) = -grad log p within 1% on
    this schedule (a closed-form sum); here within Monte Carlo error. The stop-gradient variant
    points the same way."""
    cov = torch.tensor([[0.5, 0.2], [0.2, 1.5]])
    gmm = pt.GaussianMixture([1.0], [[0.3, -0.2]], cov[None])
    den = gmm.denoiser(pt.VPSchedule())
    x0 = torch.tensor([[1.2, 0.7]])
    want = -gmm.score(x0)[0]
    for sg, tol in ((False, 0.1), (True, 0.35)):
        x = x0.expand(40000, 2).clone().requires_grad_(True)
        A.neg_elbo(den, x, _gen(2), stop_gradient=sg).sum().backward()
        got = x.grad.mean(0)
        cos = torch.dot(got, want) / (got.norm() * want.norm())
        assert cos > 0.97, (sg, got, want)
        if not sg:
            assert (got - want).norm() < tol * want.norm(), (got, want)


def test_stop_gradient_variant_has_the_same_value():
    gmm = pt.toy.ring_of_gaussians()
    den = gmm.denoiser(pt.VPSchedule())
    x = gmm.sample(64, generator=_gen(0))
    a = A.neg_elbo(den, x, _gen(1))
    b = A.neg_elbo(den, x, _gen(1), stop_gradient=True)
    assert torch.allclose(a, b)


# -- training on the toy problem ----------------------------------------------------------------
def test_a_single_measurement_fit_reaches_the_exact_posterior(toy, single_fit):
    tp, den, exact, floor, prior_dist = toy
    xs = single_fit.sample(tp.y, N_EVAL, generator=_gen(4))
    d = _sw(xs, exact)
    assert d < prior_dist / 4 and d < 6 * floor, (d, floor, prior_dist)
    w = pt.metrics.mode_weights(xs, tp.posterior)
    assert (w - tp.posterior.weights.float()).abs().max() < 0.15


def test_amortized_training_moves_towards_the_posterior(toy):
    tp, den, exact, floor, prior_dist = toy
    xs = tp.prior.sample(4000, generator=_gen(5))
    clean = tp.problem.operator(xs)
    ys = clean + tp.problem.sigma * torch.randn(clean.shape, generator=_gen(6))
    fl = A.train(den, tp.problem, ys, generator=_gen(7), steps=200, prior_term=tp.prior.log_prob,
                 flow="realnvp", transforms=6)
    d = _sw(fl.sample(tp.y, N_EVAL, generator=_gen(8)), exact)
    assert d < prior_dist / 2.5, (d, prior_dist)
    # and another measurement, which the flow never saw
    y2 = torch.tensor([-1.5])
    post2 = tp.prior.posterior(tp.problem, y2)
    exact2 = post2.sample(N_EVAL, generator=_gen(9))
    d2 = _sw(fl.sample(y2, N_EVAL, generator=_gen(9)), exact2)
    assert d2 < _sw(tp.prior.sample(N_EVAL, generator=_gen(9)), exact2) / 2


def test_same_seed_same_flow(toy):
    tp, den = toy[:2]
    a = A.train(den, tp.problem, tp.y[None], generator=_gen(1), steps=3, flow="realnvp")
    b = A.train(den, tp.problem, tp.y[None], generator=_gen(1), steps=3, flow="realnvp")
    assert torch.equal(a.sample(tp.y, 5, generator=_gen(2)), b.sample(tp.y, 5, generator=_gen(2)))


def test_iterate_ends_at_the_sample_and_log_prob_inverts(toy, single_fit):
    tp = toy[0]
    steps = list(single_fit.iterate(tp.y, 50, generator=_gen(3)))
    assert steps[0].phase.startswith("base noise") and len(steps) == 1 + 3
    assert torch.allclose(steps[-1].x, single_fit.sample(tp.y, 50, generator=_gen(3)))
    lq = single_fit.log_prob(steps[-1].x, tp.y)
    z = steps[0].x
    want = -0.5 * z.pow(2).sum(1) - math.log(2 * math.pi) - steps[-1].extras["logdet"]
    assert torch.allclose(lq, want, atol=1e-3)


def test_image_sampler_steps_and_shapes():
    den, problem, ys = _tiny_image_problem()
    fl = A.train(den, problem, ys, generator=_gen(0), steps=2, batch=4, hidden=8, feat=4)
    steps = list(fl.iterate(ys[0], 3, generator=_gen(1)))
    assert all(s.x.shape == (3, 1, 8, 8) for s in steps)
    assert len(steps) == 1 + len(fl.flow.steps)
    assert torch.equal(steps[-1].x, fl.sample(ys[0], 3, generator=_gen(1)))


# -- files ----------------------------------------------------------------------------------------
def test_save_load_round_trip_and_wrong_prior(toy, single_fit, tmp_path):
    tp, den = toy[:2]
    path = single_fit.save(tmp_path / "flow.pt")
    back = A.load(path, den, tp.problem)
    assert torch.equal(back.sample(tp.y, 20, generator=_gen(5)),
                       single_fit.sample(tp.y, 20, generator=_gen(5)))
    assert back.losses == pytest.approx(single_fit.losses)
    assert back.config["prior_term"] == "elbo" and "prior" not in back.config
    other = pt.toy.ring_of_gaussians(radius=1.0).denoiser(pt.VPSchedule())
    with pytest.raises(CheckpointError, match="different prior"):
        A.load(path, other, tp.problem)
    with pytest.raises(ValueError, match="trained for"):
        A.load(path, den, pt.InverseProblem(tp.problem.operator, 0.5))
    with pytest.raises(ValueError, match="no default problem"):
        A.load(path, den).sample(tp.y, 2)


def test_corrupt_or_foreign_checkpoints_are_refused(toy, single_fit, tmp_path, monkeypatch):
    tp, den = toy[:2]
    path = single_fit.save(tmp_path / "flow.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated"):
        A.load(bad, den, tp.problem)
    torch.save({"config": {}, "format": "something else"}, tmp_path / "other.pt")  # no checksum
    with pytest.raises(CheckpointError, match="not an APS flow"), \
            pytest.warns(UserWarning, match="carries no checksum"):
        A.load(tmp_path / "other.pt", den, tp.problem)
    mnist_prior = pt.pretrained("mnist")
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="missing"):
        A.pretrained("mnist-sr4", mnist_prior)

# -- errors ---------------------------------------------------------------------------------------
def test_clear_errors(toy, single_fit):
    tp, den = toy[:2]
    with pytest.raises(ValueError, match="shape"):
        single_fit.sample(torch.zeros(2), 3)
    with pytest.raises(ValueError, match="no sample dimension"):
        single_fit.sample(tp.y[None], 3)
    with pytest.raises(ValueError, match="NaN"):
        single_fit.sample(torch.tensor([float("nan")]), 3)
    with pytest.raises(ValueError, match="NaN"):
        A.train(den, tp.problem, torch.tensor([[float("nan")]]), steps=1)
    with pytest.raises(TypeError, match="no option"):
        A.train(den, tp.problem, tp.y[None], steps=1, zeta=0.3)
    with pytest.raises(ValueError, match="prior_term must be 'elbo'.*got 'exact'"):
        A.train(den, tp.problem, tp.y[None], steps=1, prior_term="exact")
    with pytest.raises(TypeError, match="no option prior=: the prior is den.*prior_term="):
        A.train(den, tp.problem, tp.y[None], steps=1, prior="elbo")
    with pytest.raises(ValueError, match="flow must be"):
        A.train(den, tp.problem, tp.y[None], steps=1, flow="coupling")
    with pytest.raises(ValueError, match="log p"):
        A.train(den, tp.problem, tp.y[None], steps=1, prior_term=lambda x: x)
    with pytest.raises(ValueError, match=r"\(n, \*y.shape\)"):
        A.train(den, tp.problem, tp.y, steps=1)
    with pytest.raises(ValueError, match="unknown pretrained APS flow .celeba."):
        A.pretrained("celeba", den)


@pytest.mark.parametrize("name", ["mnist-sr4", "mnist-denoising"])
def test_the_shipped_mnist_flow_loads_verified(tmp_path, monkeypatch, name):
    den = pt.pretrained("mnist")
    fl = A.pretrained(name, den)
    assert fl.config["prior_term"] == "elbo" and "prior" not in fl.config   # an older key, read
    y = fl.problem.measure(torch.zeros(1, 32, 32), generator=_gen(0))
    assert fl.sample(y, 3, generator=_gen(1)).shape == (3, 1, 32, 32)
    folder = tmp_path / A.PRETRAINED[name]
    folder.mkdir()
    src = pt.files.checkpoints.checkpoint_dir() / A.PRETRAINED[name]
    data = bytearray((src / "flow.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "flow.pt").write_bytes(bytes(data))
    (folder / "model_card.json").write_text((src / "model_card.json").read_text())
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="checksum"):
        A.pretrained(name, den)


def test_the_shipped_denoising_flow_denoises_and_is_calibrated():
    """On digits drawn from the prior (no data needed): the 32-sample mean beats y by several dB
    and the samples fit y as the noise says (chi^2 per pixel near 1; measured 0.9 on held-out
    MNIST, 38.9 vs 32.1 dB)."""
    den = pt.pretrained("mnist")
    den.clip = 1.0
    fl = A.pretrained("mnist-denoising", den)
    xs = pt.sample("ddpm", den, None, None, n=2, steps=20, eta=0.0, generator=_gen(0))
    for i, x in enumerate(xs):
        y = fl.problem.measure(x, generator=_gen(10 + i))
        s = fl.sample(y, 32, generator=_gen(20 + i))
        gain = pt.metrics.psnr(s.mean(0), x) - pt.metrics.psnr(y, x)
        chi2 = (s - y).pow(2).mean() / 0.05 ** 2
        assert gain > 3 and 0.5 < chi2 < 1.5, (float(gain), float(chi2))
