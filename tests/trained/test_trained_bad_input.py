"""The trained samplers (UD2M, APS) refuse data in the wrong convention and damaged shipped files
with a clear error, and accept the data they were made for.

Bad: training images scaled 0..255 (floats, uint8-like floats, uint8); a y measured from 0..255
images, at sampling (every shipped problem, and every linear task of ``pt.tasks`` through UD2M's
operator shift) and as APS training data; a shipped sampler.pt / flow.pt with one flipped byte; a
shipped file whose model card is missing; an APS prior returning NaN or Inf;
``step_through(generator="abc")``.
Good (so that no rule fires on good data): the same calls with digits in [-1, 1] and with y
measured from them, including the largest-norm y of 200 test digits for every task, and the
shipped files loaded from where they are shipped.
"""
import math
import shutil

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.files.checkpoints import CheckpointError, checkpoint_dir
from posterior_tutor.checks.values import NonFiniteError
from posterior_tutor.files.shipped import SHIPPED
from posterior_tutor.trained.base import check_y_range
from posterior_tutor.trained.shipped import shipped_problem
from posterior_tutor.trained.ud2m.sampler import UD2MSampler
from posterior_tutor.trained.aps.sampler import APSSampler
from posterior_tutor.viz import step_through
from conftest import seeded

torch.set_num_threads(1)

TRAINED = [(s.kind, s.name) for s in SHIPPED if s.kind in ("ud2m", "aps")]
CLASS = {"ud2m": UD2MSampler, "aps": APSSampler}
LOADER = {"ud2m": lambda *a, **k: pt.ud2m.pretrained(*a, **k),
          "aps": lambda *a, **k: pt.aps.pretrained(*a, **k)}
LINEAR_TASKS = [t for t in pt.tasks.TASKS if t != "nonlinear"]
RANGE_MSG = r"xs_train holds values in \[0, 2\d\d(\.\d+)?\], but images are scaled to \[-1, 1\].*x / 127\.5 - 1"
NORM_MSG = r"has norm .* more than any measurement of an image in \[-1, 1\].*x / 127\.5 - 1"


@pytest.fixture(scope="module")
def den():
    return pt.pretrained("mnist")


def _handwritten(limit: int, size: int = 32):
    """``limit`` MNIST test digits in [-1, 1], or, where MNIST is not installed offline, as many
    scikit-learn digits (always there): both follow the data convention, which is what these
    tests are about, so they run on every machine instead of skipping."""
    try:
        return pt.data.load("mnist", limit=limit, size=size)
    except pt.data.DataUnavailable:
        return pt.data.load("digits", limit=limit, size=size)


@pytest.fixture(scope="module")
def digits():
    """200 handwritten test digits, 32x32, in [-1, 1] (the data convention)."""
    x = _handwritten(200)
    assert x.shape == (200, 1, 32, 32) and x.min() == -1 and x.max() == 1
    return x


@pytest.fixture(scope="module")
def samplers(den):
    return {(k, n): LOADER[k](n, den=den) for k, n in TRAINED}


def _measure(prob, xs, seed=1):
    """y = A x + sigma e for a batch xs (n, ...), seeded."""
    clean = prob.operator(xs)
    return clean + prob.sigma * torch.randn(clean.shape, generator=seeded(seed))


def _bytes255(x):
    return (x + 1) * 127.5


def _tiny_prior():
    net = pt.nets.UNet(1, (8, 16))
    torch.nn.init.normal_(net.out[-1].weight, std=0.02)
    return pt.EpsNetDenoiser(net.requires_grad_(False), pt.VPSchedule(), shape=(1, 16, 16))


def _small(digits, n=8):
    """n digits at 16x16 for the tiny prior, still in [-1, 1]."""
    return pt.data.resize(digits[:n], 16).clamp(-1, 1)


# -- UD2M training images ----------------------------------------------------------------------
@pytest.mark.parametrize("scale", ["float", "uint8-like", "uint8"])
def test_ud2m_refuses_training_digits_scaled_0_255(digits, scale):
    den = _tiny_prior()
    prob = pt.tasks.image_problem("sr4", shape=(1, 16, 16))
    xs = _bytes255(_small(digits))
    if scale != "float":
        xs = xs.round()
        xs = xs.to(torch.uint8) if scale == "uint8" else xs
    assert xs.max() > 200
    if scale == "uint8":      # refused for its dtype first, naming it and the scaling
        with pytest.raises(TypeError, match=r"xs_train has dtype torch\.uint8; pass "
                                            r"floating-point values.*scaled to the data range"):
            pt.ud2m.train(den, prob, xs, generator=seeded(0), steps=1, batch=2)
        xs = xs.float()
    with pytest.raises(ValueError, match=RANGE_MSG):
        pt.ud2m.train(den, prob, xs, generator=seeded(0), steps=1, batch=2)


@pytest.mark.parametrize("kind, name", [k for k in TRAINED if k[0] == "ud2m"])
def test_ud2m_refuses_0_255_digits_on_each_shipped_problem(den, digits, kind, name):
    prob = shipped_problem(kind, name)
    with pytest.raises(ValueError, match=RANGE_MSG):
        pt.ud2m.train(den, prob, _bytes255(digits[:4]), generator=seeded(0), steps=1, batch=2)


def test_ud2m_trains_on_digits_in_range(digits):
    den = _tiny_prior()
    prob = pt.tasks.image_problem("sr4", shape=(1, 16, 16))
    ud = pt.ud2m.train(den, prob, _small(digits), generator=seeded(0), steps=2, batch=2,
                       K=1, N=2)
    assert len(ud.losses) == 2 and all(math.isfinite(v) for v in ud.losses)


def test_training_range_tolerance_is_the_documented_one(digits):
    """1.05 x the range (bilinear overshoot) passes; 1.2 x is refused."""
    den = _tiny_prior()
    prob = pt.tasks.image_problem("sr4", shape=(1, 16, 16))
    xs = _small(digits)
    pt.ud2m.train(den, prob, xs * 1.05, generator=seeded(0), steps=1, batch=2, K=1, N=1)
    with pytest.raises(ValueError, match=r"xs_train holds values in \[-1\.2, 1\.1\d*\]"):
        pt.ud2m.train(den, prob, xs * 1.2, generator=seeded(0), steps=1, batch=2, K=1, N=1)


# -- y at sampling -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind, name", TRAINED)
def test_sampling_refuses_y_measured_from_0_255_digits(samplers, digits, kind, name):
    sampler = samplers[kind, name]
    prob = shipped_problem(kind, name)
    y = _measure(prob, _bytes255(digits[:1]))[0]
    with pytest.raises(ValueError, match=r"^y " + NORM_MSG):
        sampler.sample(y, 1, generator=seeded(2), problem=prob)
    with pytest.raises(ValueError, match=r"^y " + NORM_MSG):
        next(iter(sampler.iterate(y, 1, generator=seeded(2), problem=prob)))


@pytest.mark.parametrize("kind, name", TRAINED)
def test_sampling_accepts_the_largest_y_of_200_digits(samplers, digits, kind, name):
    sampler = samplers[kind, name]
    prob = shipped_problem(kind, name)
    ys = _measure(prob, digits)
    check_y_range(prob, ys, (1, 32, 32), "ys")                 # all 200
    y = ys[ys.flatten(1).norm(dim=1).argmax()]
    xs = sampler.sample(y, 1, generator=seeded(2), problem=prob)
    assert xs.shape == (1, 1, 32, 32) and torch.isfinite(xs).all()


@pytest.mark.parametrize("task", LINEAR_TASKS)
def test_ud2m_on_every_linear_task_refuses_0_255_and_accepts_in_range(samplers, digits, task):
    """UD2M accepts another operator at sampling: the rule holds for every linear task."""
    sampler = samplers["ud2m", "mnist-sr4"]
    prob = pt.tasks.image_problem(task, generator=seeded(0))
    with pytest.raises(ValueError, match=r"^y " + NORM_MSG):
        sampler.sample(_measure(prob, _bytes255(digits[:1]))[0], 1, generator=seeded(2),
                       problem=prob)
    ys = _measure(prob, digits)
    check_y_range(prob, ys, (1, 32, 32), "ys")
    check_y_range(prob, _measure(prob, (digits + 1) / 2), (1, 32, 32), "ys")   # [0, 1]: possible
    y = ys[ys.flatten(1).norm(dim=1).argmax()]
    assert sampler.sample(y, 1, generator=seeded(2), problem=prob).shape == (1, 1, 32, 32)


# -- APS training measurements ------------------------------------------------------------------
@pytest.mark.parametrize("kind, name", [k for k in TRAINED if k[0] == "aps"])
def test_aps_refuses_training_y_measured_from_0_255_digits(den, digits, kind, name):
    prob = shipped_problem(kind, name)
    ys = _measure(prob, torch.cat([digits[:3], _bytes255(digits[3:4])]))
    with pytest.raises(ValueError, match=r"^ys_train\[3\] " + NORM_MSG):
        pt.aps.train(den, prob, ys, generator=seeded(0), steps=1, batch=2)


def test_aps_trains_on_y_of_digits_in_range():
    den = _tiny_prior()
    prob = pt.tasks.image_problem("sr4", shape=(1, 16, 16))
    digits16 = pt.data.resize(_handwritten(16), 16).clamp(-1, 1)
    ys = _measure(prob, digits16)
    fl = pt.aps.train(den, prob, ys, generator=seeded(0), steps=2, batch=2, hidden=8, feat=4)
    assert len(fl.losses) == 2 and all(math.isfinite(v) for v in fl.losses)


# -- an APS prior that returns NaN ---------------------------------------------------------------
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_aps_names_a_prior_returning_nan_as_the_cause(toy, bad):
    tp, den = toy

    def nan_prior(x):
        return torch.full((x.shape[0],), bad)
    with pytest.raises(NonFiniteError, match=r"the prior_term callable nan_prior returned NaN or Inf"
                                             r".*not the learning rate"):
        pt.aps.train(den, tp.problem, tp.y[None], generator=seeded(0), steps=1, batch=8,
                     prior_term=nan_prior)


def test_aps_names_a_denoiser_returning_nan_as_the_cause():
    den = _tiny_prior()
    with torch.no_grad():
        den.net.out[-1].bias.fill_(math.nan)
    prob = pt.tasks.image_problem("sr4", shape=(1, 16, 16))
    ys = _measure(prob, pt.data.resize(_handwritten(2), 16).clamp(-1, 1))
    with pytest.raises(NonFiniteError, match=r"the prior term 'elbo' \(the diffusion ELBO: the "
                                             r"denoiser's output\) returned NaN.*not the lear"):
        pt.aps.train(den, prob, ys, generator=seeded(0), steps=1, batch=2, hidden=8, feat=4)


def test_aps_a_finite_prior_callable_trains(toy):
    tp, den = toy
    fl = pt.aps.train(den, tp.problem, tp.y[None], generator=seeded(0), steps=2, batch=8,
                      prior_term=lambda x: 0.5 * x.pow(2).sum(1))
    assert all(math.isfinite(v) for v in fl.losses)


# -- shipped files: a flipped byte, a missing card -----------------------------------------------
@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """The shipped trained samplers copied to tmp_path, POSTERIOR_TUTOR_CHECKPOINTS pointing there."""
    for s in SHIPPED:
        if s.kind in CLASS:
            shutil.copytree(checkpoint_dir() / s.folder, tmp_path / s.folder)
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path))
    assert checkpoint_dir() == tmp_path
    return tmp_path


def _row(kind, name):
    return next(s for s in SHIPPED if s.kind == kind and s.name == name)


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind, name", TRAINED)
def test_a_flipped_byte_in_a_shipped_file_is_refused(den, data_copy, kind, name):
    row = _row(kind, name)
    path = data_copy / row.folder / row.filename
    LOADER[kind](name, den=den)                              # the copy loads as it is
    CLASS[kind].load(path, den)
    _flip_byte(path)
    with pytest.raises(CheckpointError, match=r"checksum mismatch for .*" + row.filename):
        LOADER[kind](name, den=den)
    with pytest.raises(CheckpointError, match=r"checksum mismatch for .*" + row.filename):
        CLASS[kind].load(path, den)
    with pytest.raises(CheckpointError, match=r"checksum mismatch"):
        pt.pretrained(name, kind, den=den)


@pytest.mark.parametrize("kind, name", TRAINED)
def test_a_missing_card_is_named_with_the_way_out(den, data_copy, kind, name):
    row = _row(kind, name)
    path = data_copy / row.folder / row.filename
    (path.parent / "model_card.json").unlink()
    with pytest.raises(CheckpointError, match=r"model_card\.json is missing.*check=False"):
        LOADER[kind](name, den=den)
    with pytest.raises(CheckpointError, match=r"model_card\.json is missing.*cannot be verified"
                                              r".*git checkout data/" + row.folder):
        CLASS[kind].load(path, den)
    with pytest.warns(UserWarning, match="carries no checksum"):   # unverified: said so
        sampler = LOADER[kind](name, den=den, check=False)   # the way out the message names
    prob = shipped_problem(kind, name)
    y = _measure(prob, -torch.ones(1, 1, 32, 32))[0]
    assert torch.isfinite(sampler.sample(y, 1, generator=seeded(2), problem=prob)).all()


@pytest.mark.parametrize("kind, name", TRAINED)
def test_shipped_files_load_from_where_they_ship(den, kind, name):
    row = _row(kind, name)
    CLASS[kind].load(checkpoint_dir() / row.folder / row.filename, den)


# -- step_through --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, name", [("ud2m", "mnist-sr4"), ("aps", "mnist-sr4")])
def test_step_through_refuses_a_string_generator_first(samplers, kind, name):
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator or None, got "
                                        r"'abc' \(str\)"):
        step_through(samplers[kind, name], y=torch.zeros(1, 8, 8), generator="abc")


def test_step_through_refuses_a_string_generator_for_a_method_name(toy):
    tp, den = toy
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator.*'abc'"):
        step_through("dps", den, tp.problem, tp.y, generator="abc")
