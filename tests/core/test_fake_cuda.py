"""CUDA readiness without a GPU (issue 21): the UNet, the UD2M adapters, the APS flow, the forward
pass of one training step of each trainer and each sampler's steps run on *fake* CUDA tensors.

``torch._subclasses.fake_tensor.FakeTensorMode`` makes ``device="cuda"`` tensors on a CPU-only
machine (they carry shape, dtype and device but no values) and raises
``FakeTensorDeviceMismatchError`` on any op that mixes a CUDA tensor with a CPU tensor of more than
one element, as CUDA itself would.  So a pass here means: nothing on these paths forgets to follow
its input's device.  Modules are built on the CPU and moved once inside the mode (``.to("cuda")``).

What cannot run under the fake mode, and why (``CANNOT``); the first two are checked to still fail,
in a separate process (``test_the_named_limits_are_real``), so that the day torch lifts them this
file says so.
"""
import gc
import itertools
import subprocess
import sys

import pytest
import torch
from torch._subclasses.fake_tensor import (FakeTensor, FakeTensorDeviceMismatchError,
                                           FakeTensorMode, unset_fake_temporarily)

import posterior_tutor as pt
from posterior_tutor import operators as O
from posterior_tutor import tasks
from posterior_tutor.trained import aps as amortized
from posterior_tutor.trained.aps import elbo as aps_elbo
from posterior_tutor.samplers import daps, spin
from posterior_tutor.samplers.base import get_method
from posterior_tutor.schedules import VPSchedule
from conftest import seeded

CANNOT = {
    "backward passes and optimizer steps (the trainers' backward/step, DPS's guidance at every "
    "step, a nonlinear operator's vjp/jvp, so Spin's correction under a nonlinear A)":
        "the autograd engine opens a CUDA device thread even for fake tensors "
        "(RuntimeError 'hasPrimaryContext expects a valid device index') on a machine without a "
        "GPU, and the process is broken afterwards (later tests abort); the training steps' "
        "forward losses run here, the backward runs in scripts/gpu_check.sh",
    "torch.Generator(device='cuda')":
        "creating a CUDA generator needs the driver (and breaks the process); the fake runs pass "
        "generator=None (generator handling is tested on the CPU, tests/core/test_rng.py)",
    "values: .item(), float(), bool() of tensors made in the mode (VPSchedule look-ups, "
    "t_from_s, time grids, the time check, Operator.norm_squared's power iteration, "
    "UD2MSampler.lam, APS's ELBO time draw (float(w.sum())), the input checks' "
    "isfinite().all(), CG / Gauss-Newton stopping tests)":
        "fake tensors have no values (DataDependentOutputException); here the schedule's scalars "
        "and |A|^2, time grids and APS's ELBO times are made outside the mode (CPU constants, "
        "as on a GPU), the time check is skipped, lam is 1, samplers are entered below their "
        "input checks, and no operator here needs CG",
    "torch.cuda.synchronize (the denoiser's timing)": "needs the driver; replaced by a no-op",
    "UD2M's folded LoRA weights for sampling (AdaptedDenoiser._merged_inner: merge_lora's "
    "deepcopy, a cache keyed on data_ptr())":
        "a fake tensor's data pointer is undefined (torch warns of undefined behaviour) and the "
        "deep copy of fake parameters crashed the process; sampling runs the adapters unfolded "
        "(the same function of x), merge_lora is tested on the CPU (tests/trained/test_ud2m.py)",
    "Module.to() on a module already on fake CUDA":
        "swap_tensors refuses fake parameters (weak references); every module moves once",
}

# computed from CPU constants (time grids, |A|^2 by power iteration): run outside the fake mode,
# as they run on the CPU before any GPU work on a real machine
_CPU_CONSTANTS = [(VPSchedule, "timesteps"), (daps, "annealing_grid"), (spin, "guided_times"),
                  (aps_elbo, "elbo_weights")] + [
    (cls, name) for cls in vars(O).values() if isinstance(cls, type) and issubclass(cls, O.Operator)
    for name in ("norm_squared", "lipschitz_squared") if name in vars(cls)]

SHAPE = (1, 16, 16)
SHORT = {"ddpm": dict(steps=3), "diffpir": dict(steps=3), "daps": dict(levels=3, ode_steps=2,
         langevin_steps=2), "pnp_ula": dict(steps=3), "latino": dict(steps=3),
         "spin": dict()}


@pytest.fixture
def fake_cuda(monkeypatch):
    """A factory of the fake mode, with the stand-ins listed in CANNOT installed.  Build modules
    and problems first (real CPU tensors), then enter ``with fake_cuda():`` and move them once."""
    lookup, t_from_s = VPSchedule._lookup, VPSchedule.t_from_s
    check_t = VPSchedule.check_t

    def real(fn):
        def wrapped(*a, **k):
            with unset_fake_temporarily():
                return fn(*a, **k)
        return wrapped

    def scalar_lookup(self, table, t, like):
        if like is None and not isinstance(t, torch.Tensor):
            with unset_fake_temporarily():
                v = lookup(self, table, t, None).tolist()
            return torch.tensor(v, dtype=table.dtype)          # a constant: .item() works
        return lookup(self, table, t, like)

    monkeypatch.setattr(VPSchedule, "_lookup", scalar_lookup)
    monkeypatch.setattr(VPSchedule, "t_from_s",
                        lambda self, s: real(t_from_s)(self, float(s)))
    for owner, name in _CPU_CONSTANTS:
        monkeypatch.setattr(owner, name, real(getattr(owner, name)))
    monkeypatch.setattr(VPSchedule, "check_t",
                        lambda self, t: None if isinstance(t, FakeTensor) else check_t(self, t))
    draw_times = aps_elbo.draw_times     # APS's ELBO times: drawn on the CPU, then moved

    def cpu_times(w, n, how, groups, generator, device):
        t, weight = real(draw_times)(w, n, how, groups, generator, "cpu")
        return t.to(device), weight.to(device)

    monkeypatch.setattr(aps_elbo, "draw_times", cpu_times)
    monkeypatch.setattr(pt.ud2m.UD2MSampler, "lam", property(lambda self: 1.0))

    monkeypatch.setattr(pt.ud2m.AdaptedDenoiser, "_merged_inner", lambda self: self.inner)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    yield lambda: mode
    with mode:          # free the test's fake CUDA tensors while their mode is current
        gc.collect()


def _unet_prior():
    net = pt.nets.UNet(1, (8, 16))
    return pt.EpsNetDenoiser(net.eval().requires_grad_(False), VPSchedule(), shape=SHAPE)


def _problems():
    g = seeded(0)
    return {"inpainting": tasks.image_problem("random_inpainting", shape=SHAPE, generator=g),
            "sr": tasks.image_problem("sr4", shape=SHAPE),
            "blur": tasks.image_problem("gaussian_deblur", shape=SHAPE)}


def _on_cuda(t):
    assert isinstance(t, FakeTensor) and t.device.type == "cuda", (type(t), t.device)


def test_the_harness_catches_a_device_mix(fake_cuda):
    with fake_cuda():
        x = torch.randn(2, *SHAPE, device="cuda")
        _on_cuda(x + torch.tensor(1.0))                   # a CPU scalar is fine, as on CUDA
        with pytest.raises(FakeTensorDeviceMismatchError):
            x + torch.ones(SHAPE)                         # a CPU image is not


_LIMITS_SCRIPT = """
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
lin = torch.nn.Linear(3, 2)
try:
    with FakeTensorMode(allow_non_fake_inputs=True):
        lin.to("cuda")
        x = torch.randn(4, 3, device="cuda", requires_grad=True)
        torch.autograd.grad(lin(x).sum(), x)
    print("BACKWARD RAN")
except RuntimeError as e:
    print("BACKWARD FAILED:", e)
try:
    torch.Generator(device="cuda")
    print("GENERATOR MADE")
except Exception as e:
    print("GENERATOR FAILED:", type(e).__name__)
"""


def test_the_named_limits_are_real():
    """In a separate process: after either attempt torch's state is broken (later tests abort or
    segfault), so the attempts never run in the test process itself."""
    if torch.cuda.is_available():
        pytest.skip("a real GPU is here: run the GPU tests instead (scripts/gpu_check.sh)")
    out = subprocess.run([sys.executable, "-c", _LIMITS_SCRIPT], capture_output=True, text=True,
                         timeout=300).stdout
    assert "BACKWARD FAILED" in out and "hasPrimaryContext" in out, out
    assert "GENERATOR FAILED" in out, out


def test_unet_forward(fake_cuda):
    den = _unet_prior()
    with fake_cuda():
        den.net.to("cuda")
        x = torch.randn(3, *SHAPE, device="cuda")
        _on_cuda(den(x, 500))
        _on_cuda(den.eps(x, torch.tensor([10, 500, 900], device="cuda")))


@pytest.mark.parametrize("name", sorted(set(SHORT) - {"dps"}))   # DPS: a backward pass per step
@pytest.mark.parametrize("task", ["inpainting", "sr", "blur"])
def test_sampler_steps(fake_cuda, name, task):
    den, prob = _unet_prior(), _problems()[task]
    method = get_method(name)
    with fake_cuda():
        den.net.to("cuda")
        y = torch.randn(prob.operator.output_shape_for(SHAPE), device="cuda")
        run = method.run(den, prob if method.needs_problem else None,
                         y if method.needs_problem else None, n=2, generator=None, shape=SHAPE,
                         **SHORT[name])
        steps = list(itertools.islice(run, 2))
        assert len(steps) == 2
        for s in steps:
            _on_cuda(s.x)


def _untrained_ud2m(den, prob):
    xs = torch.rand(8, *SHAPE) * 2 - 1
    return pt.ud2m.train(den, prob, xs, steps=0, K=2, N=2, adv_weight=1.0,
                         lora_layers=pt.ud2m.adaptable_layers(den.net))


def _move_ud2m(ud):
    ud.den.net.to("cuda")
    ud.denoiser.inner.net.to("cuda")
    ud.discriminator.to("cuda")
    ud.log_lam = torch.nn.Parameter(ud.log_lam.detach().to("cuda"))


@pytest.mark.parametrize("task", ["inpainting", "sr"])
def test_ud2m_adapters_sampling_and_training_forward(fake_cuda, task):
    prob = _problems()[task]
    ud = _untrained_ud2m(_unet_prior(), prob)
    with fake_cuda():
        _move_ud2m(ud)
        y = torch.randn(prob.operator.output_shape_for(SHAPE), device="cuda")
        for preset in ("ours", "code"):
            steps = list(ud.with_preset(preset)._steps(prob, y, 2, None))
            assert len(steps) == ud.K * ud.N
            _on_cuda(steps[-1].x)
        # the forward half of one training step (measurement, block, both losses)
        x0 = torch.rand(4, *SHAPE, device="cuda") * 2 - 1
        ys = pt.ud2m.measure_batch(prob, x0)
        with torch.enable_grad():
            total, parts, x_hat = pt.ud2m.sampler_loss(
                ud, prob, x0, ys, ud.grid[0], dict(adv_weight=1.0, lpips_weight=0.0,
                                                   x0_weighting="uniform"))
            feats = pt.ud2m.discriminator_features(prob, ys, SHAPE)
            d_loss = pt.ud2m.discriminator_loss(ud.discriminator, x0, x_hat, feats, 0.0)
        _on_cuda(total)
        _on_cuda(d_loss)


def test_aps_flow_sampling_and_training_forward(fake_cuda):
    prob = _problems()["sr"]
    den = _unet_prior()
    ys = torch.randn(8, *prob.operator.output_shape_for(SHAPE))
    fl = amortized.train(den, prob, ys, steps=1, batch=2)
    with fake_cuda():
        den.net.to("cuda")
        fl.flow.to("cuda")
        y = torch.randn(prob.operator.output_shape_for(SHAPE), device="cuda")
        steps = list(fl._steps(prob, y, 2, None))
        _on_cuda(steps[-1].x)
        with torch.enable_grad():
            loss, parts = amortized.aps_loss(fl, prob, y.expand(2, *y.shape), 1.0, "elbo")
        _on_cuda(loss)


def test_prior_training_forward(fake_cuda):
    from posterior_tutor.priors.train import dsm_loss
    net = pt.nets.UNet(1, (8, 16))
    with fake_cuda():
        net.to("cuda")
        x0 = torch.rand(4, *SHAPE, device="cuda")
        with torch.enable_grad():
            _on_cuda(dsm_loss(net, x0, VPSchedule()))


def test_folded_lora_equals_the_adapters_on_the_cpu():
    """What the fake runs leave out (see CANNOT): sampling folds W + B A into one weight; it must
    compute what the adapters do."""
    ud = _untrained_ud2m(_unet_prior(), _problems()["inpainting"])
    g = seeded(0)
    with torch.no_grad():
        for p in ud.denoiser.trainable_parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=g))
    x = torch.randn(3, *SHAPE, generator=g)
    with torch.no_grad():
        folded = ud.denoiser(x, 400)
    with torch.enable_grad():
        adapters = ud.denoiser(x, 400).detach()
    assert not torch.allclose(adapters, ud.den(x, 400).detach(), atol=1e-4)   # the adapters act
    assert torch.allclose(folded, adapters, atol=1e-5)
