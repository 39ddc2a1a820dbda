"""Tests for posterior_tutor.metrics: closed forms, reference implementations, offline LPIPS."""
import math
import os

import numpy as np
import pytest
import scipy.stats
import torch

from posterior_tutor import metrics as M
from posterior_tutor.metrics import calibration, distances, image, lpips_backbone as lb
from conftest import seeded as gen


# --------------------------------------------------------------------------- the package
def test_package_re_exports_every_public_name_of_its_files():
    """pt.metrics.X is the very object its file defines, for every public name of every file."""
    for module in (image, distances, calibration, lb):
        public = getattr(module, "__all__", None) or [
            n for n in vars(module) if not n.startswith("_")
            and getattr(vars(module)[n], "__module__", None) == module.__name__]
        for name in public:
            assert getattr(M, name) is getattr(module, name), f"{module.__name__}.{name}"
            assert name in M.__all__, name
    assert len(M.__all__) == len(set(M.__all__))
    assert all(callable(getattr(M, name)) for name in M.__all__)


# --------------------------------------------------------------------------- PSNR
def test_psnr_constant_offset_closed_form():
    a = torch.zeros(3, 1, 8, 8)
    b = a + torch.tensor([0.1, 0.2, 1.0])[:, None, None, None]
    expected = 10 * torch.log10(4.0 / torch.tensor([0.01, 0.04, 1.0]))
    torch.testing.assert_close(M.psnr(a, b), expected)
    assert M.psnr(a, b).shape == (3,)
    # one reference broadcast against a batch, single pair gives 0-d
    torch.testing.assert_close(M.psnr(b, a[0]), expected)
    assert M.psnr(a[0], b[0]).shape == ()
    assert math.isinf(M.psnr(a[0], a[0]).item())
    assert M.psnr(a[0], b[2], data_range=1.0).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- SSIM
def test_ssim_identity_and_noise_monotone():
    x = torch.rand(1, 1, 32, 32, generator=gen()) * 2 - 1
    assert M.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    noise = torch.randn(x.shape, generator=gen(1))
    vals = [M.ssim(x + s * noise, x).item() for s in (0.05, 0.2, 0.8)]
    assert 1 > vals[0] > vals[1] > vals[2]


@pytest.mark.parametrize("shape", [(1, 48, 40), (3, 32, 32), (1, 8, 8)])
def test_ssim_matches_skimage(shape):
    skm = pytest.importorskip("skimage.metrics")
    g = gen(2)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    y = (x + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    window = image._ssim_window(*shape[1:])
    ref = skm.structural_similarity(x.numpy(), y.numpy(), data_range=2.0, channel_axis=0,
                                    gaussian_weights=True, sigma=1.5 * window / 11,
                                    use_sample_covariance=False)
    assert M.ssim(x, y).item() == pytest.approx(ref, abs=1e-3)
    assert window == (11 if min(shape[1:]) >= 20 else 5)


def test_ssim_batch_broadcast():
    x = torch.rand(4, 1, 16, 16, generator=gen(3)) * 2 - 1
    s = M.ssim(x, x[1])
    assert s.shape == (4,) and s[1].item() == pytest.approx(1.0, abs=1e-6) and (s[[0, 2, 3]] < 0.9).all()


# --------------------------------------------------------------------------- LPIPS
def test_lpips_random_backbone_offline():
    x = torch.rand(3, 1, 28, 28, generator=gen(4)) * 2 - 1
    y = torch.rand(3, 1, 28, 28, generator=gen(5)) * 2 - 1
    d_same = M.lpips(x, x, pretrained_backbone=False)
    assert d_same.shape == (3,) and d_same.abs().max().item() < 1e-6
    dxy = M.lpips(x, y, pretrained_backbone=False)
    dyx = M.lpips(y, x, pretrained_backbone=False)
    assert (dxy > 1e-4).all()
    torch.testing.assert_close(dxy, dyx, rtol=1e-4, atol=1e-6)
    # cached model, and the lpips linear weights shipped in the package were loaded
    model = lb._lpips_model("alex", False, "cpu")
    assert model is lb._lpips_model("alex", False, "cpu")
    import lpips as lpips_pkg
    path = os.path.join(os.path.dirname(lpips_pkg.__file__), "weights", "v0.1", "alex.pth")
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    for k, v in shipped.items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_lpips_is_quiet_and_differentiable(capsys):
    lb._LPIPS_MODELS.clear()
    x = (torch.rand(2, 3, 32, 32, generator=gen(6)) * 2 - 1).requires_grad_()
    d = M.lpips(x, torch.zeros(3, 32, 32), pretrained_backbone=False)
    d.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert capsys.readouterr().out == ""


def test_lpips_pretrained_offline_message():
    ckpt = lb._backbone_checkpoint("alex")
    assert os.path.basename(ckpt) == "alexnet-owt-7be5be79.pth"
    if os.path.exists(ckpt):
        pytest.skip("AlexNet weights are present in the torch hub cache")
    import urllib.error
    from unittest import mock

    import torch.hub
    lb._LPIPS_FAILURES.clear()
    # guarantee offline behaviour even where the network happens to work
    with mock.patch.object(torch.hub, "download_url_to_file",
                           side_effect=urllib.error.URLError("no network")):
        with pytest.raises(M.LPIPSWeightsUnavailable) as info:
            M.lpips(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))
        assert M.lpips_available("alex") is False
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)
    for part in ("alexnet-owt-7be5be79.pth", "internet", "checkpoints", "TORCH_HOME"):
        assert part in msg
    assert M.lpips_available("no-such-net") is False


# --------------------------------------------------------------------------- sliced Wasserstein
def test_sw_1d_matches_scipy_and_closed_form():
    g = gen(7)
    a = torch.randn(200, generator=g, dtype=torch.float64)
    b = 0.5 * torch.randn(137, generator=g, dtype=torch.float64) + 1.0
    # in 1-D every direction is +-1, so SW_p = W_p exactly
    sw1 = M.sliced_wasserstein(a, b, p=1, n_projections=4, generator=g)
    assert sw1.item() == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-10)
    c = torch.randn(200, generator=g, dtype=torch.float64)
    sw2 = M.sliced_wasserstein(a, c, p=2, n_projections=4, generator=g)
    w2 = (a.sort().values - c.sort().values).pow(2).mean().sqrt()
    assert sw2.item() == pytest.approx(w2.item(), rel=1e-10)


def test_sw_identity_scaling_and_shift():
    g = gen(8)
    x = torch.randn(500, 10, generator=g, dtype=torch.float64)
    y = torch.randn(500, 10, generator=g, dtype=torch.float64)
    assert M.sliced_wasserstein(x, x, generator=gen(1)).item() < 1e-12
    s1 = M.sliced_wasserstein(x, y, generator=gen(1))
    s3 = M.sliced_wasserstein(3 * x, 3 * y, generator=gen(1))
    assert s3.item() == pytest.approx(3 * s1.item(), rel=1e-10)
    # pure shift: W_2 on direction theta is |theta . c|, and E (theta . c)^2 = |c|^2 / d
    c = torch.zeros(10, dtype=torch.float64)
    c[0], c[3] = 1.5, -2.0
    sw = M.sliced_wasserstein(x, x + c, n_projections=4000, generator=gen(2))
    assert sw.item() == pytest.approx(c.norm().item() / math.sqrt(10), rel=0.05)
    assert sw > 5 * s1      # the shift stands far above the two-sample noise


def test_sw_images_flatten_and_reproducible():
    a = torch.rand(20, 1, 8, 8, generator=gen(9))
    b = torch.rand(30, 1, 8, 8, generator=gen(10))
    s = M.sliced_wasserstein(a, b, generator=gen(3))
    assert s.shape == () and s.dtype == torch.float32
    assert s.item() == M.sliced_wasserstein(a, b, generator=gen(3)).item()
    assert s.item() == pytest.approx(M.sliced_wasserstein(a.flatten(1), b.flatten(1),
                                                          generator=gen(3)).item())


# --------------------------------------------------------------------------- energy / MMD
def test_energy_distance_and_mmd():
    g = gen(11)
    a = torch.randn(300, 2, generator=g, dtype=torch.float64)
    b = torch.randn(300, 2, generator=g, dtype=torch.float64)
    c = torch.randn(300, 2, generator=g, dtype=torch.float64) + torch.tensor([1.5, 0.0],
                                                                              dtype=torch.float64)
    e_same, e_diff = M.energy_distance(a, b), M.energy_distance(a, c)
    assert 0 <= e_same < 0.05 and e_diff > 10 * e_same
    m_same, m_diff = M.mmd(a, b), M.mmd(a, c)
    assert 0 <= m_same < 0.02 and m_diff > 10 * m_same
    assert abs(M.mmd(a, b, unbiased=True)) < 0.01
    assert abs(M.energy_distance(a, b, unbiased=True)) < 0.03
    assert M.energy_distance(a, a).item() == pytest.approx(0, abs=1e-12)
    # 1-D: scipy returns the square root of the V-statistic
    x, y = a[:, 0], c[:100, 0]
    ref = scipy.stats.energy_distance(x.numpy(), y.numpy()) ** 2
    assert M.energy_distance(x, y).item() == pytest.approx(ref, rel=1e-8)


def test_mmd_bandwidth_closed_form():
    a = torch.tensor([[0.0]], dtype=torch.float64)
    b = torch.tensor([[1.0]], dtype=torch.float64)
    # V-statistic with one point each: 1 + 1 - 2 exp(-1 / (2 h^2))
    assert M.mmd(a, b, bandwidth=2.0).item() == pytest.approx(2 - 2 * math.exp(-1 / 8))


# --------------------------------------------------------------------------- mixtures
def two_mode_mixture():
    try:
        from posterior_tutor.toy import GaussianMixture
        return GaussianMixture(torch.tensor([0.3, 0.7]), torch.tensor([[-4.0, 0.0], [4.0, 0.0]]),
                               torch.eye(2).expand(2, 2, 2) * 0.25)
    except ImportError:                                       # package not importable yet
        class Fake:
            weights = torch.tensor([0.3, 0.7], dtype=torch.float64)

            def responsibilities(self, x):
                p1 = torch.sigmoid(8 * x[:, 0].double())
                return torch.stack([1 - p1, p1], 1)

            def sample(self, n, generator=None):
                k = torch.multinomial(self.weights, n, True, generator=generator)
                return torch.randn(n, 2, generator=generator) * 0.5 + 8 * (k[:, None] - 0.5) \
                    * torch.tensor([1.0, 0.0])
        return Fake()


def test_mode_weights_and_error():
    gmm = two_mode_mixture()
    x = gmm.sample(4000, generator=gen(12))
    w = M.mode_weights(x, gmm)
    assert w.shape == (2,) and w.sum().item() == pytest.approx(1.0)
    assert w[0].item() == pytest.approx(0.3, abs=0.03)
    assert M.mode_weight_error(x, gmm).item() < 0.03
    only_right = x[x[:, 0] > 0]
    assert M.mode_weight_error(only_right, gmm).item() == pytest.approx(0.3, abs=1e-6)


# --------------------------------------------------------------------------- noise floor, coverage
def test_noise_floor_decreases_with_n():
    def sampler(n, generator):
        return torch.randn(n, 3, generator=generator)

    small = M.noise_floor(sampler, 50, repeats=5, generator=gen(13))
    large = M.noise_floor(sampler, 2000, repeats=5, generator=gen(13))
    assert isinstance(small, M.NoiseFloor) and len(small.values) == 5 and small.std > 0
    assert large.mean < small.mean / 3
    ed = M.noise_floor(sampler, 200, metric=M.energy_distance, repeats=2, generator=gen(14))
    assert ed.mean > 0


def test_coverage_calibrated_gaussian():
    g = gen(15)
    samples = torch.randn(2000, 1, 20, 20, generator=g)
    x_true = torch.randn(1, 20, 20, generator=g)
    assert M.coverage(samples, x_true, level=0.9).item() == pytest.approx(0.9, abs=0.05)
    assert M.coverage(samples, x_true, level=0.5).item() == pytest.approx(0.5, abs=0.07)
    assert M.coverage(samples, x_true + 10, level=0.9).item() == 0.0
    # quantiles agree with numpy's default (linear) interpolation
    s = torch.randn(11, 5, generator=g, dtype=torch.float64)
    lo = np.quantile(s.numpy(), 0.05, axis=0)
    assert M.coverage(s, torch.as_tensor(lo) + 1e-12).item() == 1.0
    assert M.coverage(s, torch.as_tensor(lo) - 1e-9).item() == 0.0


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("call", [
    lambda: M.psnr(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9)),
    lambda: M.psnr(torch.zeros(2, 1, 8, 8), torch.zeros(3, 1, 8, 8)),
    lambda: M.ssim(torch.zeros(2, 1, 8, 8), torch.zeros(8, 8)),
    lambda: M.sliced_wasserstein(torch.zeros(5, 3), torch.zeros(5, 4)),
    lambda: M.mmd(torch.zeros(5, 3), torch.zeros(5, 2)),
    lambda: M.coverage(torch.zeros(5, 3), torch.zeros(4)),
])
def test_mismatched_shapes_raise_with_both_shapes(call):
    with pytest.raises(ValueError) as info:
        call()
    assert "(" in str(info.value) and str(info.value).count(",") >= 2


def test_shape_message_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\).*\(2, 1, 8, 9\)"):
        M.psnr(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(5, 4\)"):
        M.energy_distance(torch.zeros(5, 3), torch.zeros(5, 4))


@pytest.mark.parametrize("fn", [M.psnr, M.ssim, M.sliced_wasserstein, M.energy_distance, M.mmd])
def test_nan_raises(fn):
    a = torch.rand(2, 1, 8, 8)
    b = a.clone()
    b[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fn(a, b)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="level"):
        M.coverage(torch.zeros(5, 3), torch.zeros(3), level=1.5)
    with pytest.raises(ValueError, match="3 x 3"):
        M.ssim(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="net"):
        M.lpips(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), net="resnet")
    with pytest.raises(ValueError, match="NaN"):
        M.coverage(torch.full((4, 2), float("nan")), torch.zeros(2))
