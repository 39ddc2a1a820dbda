"""The diffusers adapter, offline: a tiny randomly initialised UNet2DModel built from a config."""
import warnings

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.priors.diffusers_adapter import DiffusersDenoiser, GivenBetasSchedule, PretrainedUnavailable, sample_only
from conftest import seeded

diffusers = pytest.importorskip("diffusers")
torch.set_num_threads(1)


def tiny_unet(out_channels=1, seed=0):
    torch.manual_seed(seed)
    return diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=out_channels, block_out_channels=(8, 16),
        layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4).eval()


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


def noisy_batch(seed=1):
    g = seeded(seed)
    return torch.randn(3, 1, 8, 8, generator=g), torch.tensor([0, 400, 999])


def test_linear_scheduler_becomes_our_vp_schedule(unet):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
    den = DiffusersDenoiser(unet, sched)
    assert type(den.schedule) is pt.VPSchedule and den.schedule.T == 1000
    assert torch.allclose(den.schedule.alpha_bar, sched.alphas_cumprod.double(), atol=1e-6, rtol=0)
    assert den.shape == (1, 8, 8) and den.net is unet and den.device == torch.device("cpu")


def test_epsilon_x0_matches_the_hand_formula(unet):
    den = DiffusersDenoiser(unet, diffusers.DDPMScheduler(num_train_timesteps=1000))
    x_t, t = noisy_batch()
    with torch.no_grad():
        eps = unet(x_t, t).sample
        x0 = den(x_t, t)
    ab = den.schedule.alpha_bar[t].float().reshape(-1, 1, 1, 1)
    assert torch.allclose(x0, (x_t - (1 - ab).sqrt() * eps) / ab.sqrt(), atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and the eps view gives the network's eps back
        assert torch.allclose(den.eps(x_t, t), eps, atol=1e-4, rtol=1e-4)
    assert den.nfe == 2


@pytest.mark.parametrize("kind", ["sample", "v_prediction"])
def test_other_prediction_types_match_hand_formulas(unet, kind):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type=kind)
    den = DiffusersDenoiser(unet, sched)
    x_t, t = noisy_batch()
    with torch.no_grad():
        out, x0 = unet(x_t, t).sample, den(x_t, t)
    ab = sched.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    want = out if kind == "sample" else ab.sqrt() * x_t - (1 - ab).sqrt() * out
    assert torch.allclose(x0, want, atol=1e-5, rtol=1e-5)


def test_v_prediction_inverts_the_definition_of_v(unet):
    """v = sqrt(ab) eps - sqrt(1 - ab) x0: a net that outputs the true v gives the true x0."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type="v_prediction")
    den = DiffusersDenoiser(unet, sched)
    g = seeded(2)
    x0, eps, t = torch.rand(2, 1, 8, 8, generator=g), torch.randn(2, 1, 8, 8, generator=g), 300
    ab = den.schedule.abar(t)
    x_t, v = ab.sqrt() * x0 + (1 - ab).sqrt() * eps, ab.sqrt() * eps - (1 - ab).sqrt() * x0
    den.raw_output = lambda x, tt: v.float()
    assert torch.allclose(den(x_t.float(), t), x0, atol=1e-5)


def test_cosine_schedule_uses_the_schedulers_betas(unet):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    den = DiffusersDenoiser(unet, sched)
    assert isinstance(den.schedule, GivenBetasSchedule) and isinstance(den.schedule, pt.VPSchedule)
    assert "squaredcos_cap_v2" in repr(den.schedule)
    assert torch.allclose(den.schedule.alpha_bar, sched.alphas_cumprod.double(), atol=1e-6, rtol=0)
    assert torch.isfinite(den.schedule.s(999))


def test_prior_and_posterior_sampling_run_and_count_calls(unet):
    den = DiffusersDenoiser(unet, diffusers.DDPMScheduler(num_train_timesteps=1000), clip=1.0)
    g = seeded(0)
    with den.counting():
        xs = pt.sample("ddpm", den, None, None, n=2, steps=5, generator=g)
    assert xs.shape == (2, 1, 8, 8) and torch.isfinite(xs).all() and den.nfe == 5
    prob = pt.InverseProblem(pt.operators.Denoising(), 0.1)
    y = prob.measure(torch.zeros(1, 8, 8), generator=g)
    with den.counting():
        xs = pt.sample("dps", den, prob, y, n=2, steps=5, generator=g)
    assert xs.shape == (2, 1, 8, 8) and torch.isfinite(xs).all()
    assert den.nfe == 5 and den.nfe_grad == 5


def test_learned_variance_channels_are_dropped():
    unet = tiny_unet(out_channels=2)
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, variance_type="learned_range")
    den = DiffusersDenoiser(unet, sched)
    x_t, t = noisy_batch()
    with torch.no_grad():
        eps, x0 = unet(x_t, t).sample[:, :1], den(x_t, t)
    ab = den.schedule.abar(t, like=x_t)
    assert x0.shape == x_t.shape
    assert torch.allclose(x0, (x_t - (1 - ab).sqrt() * eps) / ab.sqrt(), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="maps 1 to 2 channels"):
        DiffusersDenoiser(unet, diffusers.DDPMScheduler(num_train_timesteps=1000))


def test_zero_terminal_snr_schedule_is_refused(unet):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, rescale_betas_zero_snr=True)
    with pytest.raises(ValueError, match="unsupported schedule.*zero terminal SNR"):
        DiffusersDenoiser(unet, sched)


def test_wrong_types_are_refused(unet):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
    with pytest.raises(TypeError, match="unet must be a diffusers.UNet2DModel, got UNet"):
        DiffusersDenoiser(pt.nets.UNet(1, (8, 16)), sched)
    with pytest.raises(TypeError, match="scheduler must be a diffusers scheduler.*VPSchedule"):
        DiffusersDenoiser(unet, pt.VPSchedule())
    with pytest.raises(TypeError, match="name_or_path must be"):
        DiffusersDenoiser.from_pretrained(unet)


def test_wrong_signal_shape_is_refused(unet):
    den = DiffusersDenoiser(unet, diffusers.DDPMScheduler(num_train_timesteps=1000))
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\)"):
        den(torch.zeros(2, 1, 16, 16), 10)


def test_from_pretrained_of_a_missing_folder_says_what_to_do(tmp_path):
    missing = tmp_path / "no-such-model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = "(?s)could not be downloaded.*pass its folder"
        with pytest.raises(PretrainedUnavailable, match=expected) as info:
            DiffusersDenoiser.from_pretrained(missing)
    assert isinstance(info.value, OSError) and str(missing) in str(info.value)


def test_from_pretrained_loads_a_saved_local_folder(unet, tmp_path):
    unet.save_pretrained(tmp_path)
    diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type="sample").save_pretrained(
        tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        den = DiffusersDenoiser.from_pretrained(tmp_path)
    x_t, t = noisy_batch()
    with torch.no_grad():
        assert torch.allclose(den(x_t, t), unet(x_t, t).sample, atol=1e-6)
    assert den.prediction_type == "sample" and not den.net.training


def test_sample_only_wraps_a_unet_for_training(unet):
    net = sample_only(unet)
    x_t, t = noisy_batch()
    with torch.no_grad():
        assert torch.equal(net(x_t, t), unet(x_t, t).sample)
    loss = pt.priors.train.dsm_loss(net, x_t, pt.VPSchedule(), seeded(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
