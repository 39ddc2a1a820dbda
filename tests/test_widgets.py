"""Tests of the step-through viewers (matplotlib Agg, ipywidgets in the kernel only)."""
import types

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

from posterior_tutor import widgets as W  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def make_step(i, n=30, d=2, correction=True, x0=True, shape=None, requires_grad=False, seed=0):
    g = torch.Generator().manual_seed(seed + i)
    shape = shape or (d,)
    x = torch.randn(n, *shape, generator=g) * (1.0 + 0.5 * i)
    if requires_grad:
        x = x.requires_grad_(True) * 1.0           # has autograd history
    extras = {}
    if correction:
        extras["correction"] = 0.2 * torch.randn(n, *shape, generator=g)
    return types.SimpleNamespace(i=i, t=900 - 200 * i, x=x,
                                 x0=(0.5 * x) if x0 else None, phase="guidance", extras=extras)


class Ring:
    """A minimal density with log_prob((n, 2)) -> (n,) and call counting."""
    calls = 0

    def log_prob(self, x):
        Ring.calls += 1
        r = x.norm(dim=1)
        return -((r - 1.5) ** 2) / 0.1


def scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def quivers(ax):
    return [c for c in ax.collections if isinstance(c, Quiver)]


def contours(ax):
    found = [c for c in ax.collections if isinstance(c, ContourSet)]
    if not found:   # matplotlib < 3.8 adds the contour lines as LineCollections
        found = [c for c in ax.collections if isinstance(c, LineCollection)][:1]
    return found


# -- render_2d ----------------------------------------------------------------------------------
def test_render_2d_points_only():
    fig = W.render_2d(make_step(0, correction=False, x0=False))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(scatters(ax)) == 1 and not quivers(ax) and not contours(ax)
    assert "step 0" in ax.get_title() and "t=900" in ax.get_title()


def test_render_2d_with_x0_correction_density():
    Ring.calls = 0
    dens = Ring()
    step = make_step(1)
    fig = W.render_2d(step, density=dens, xlim=(-4, 4), ylim=(-3, 3), title="dps", total=4)
    ax = fig.axes[0]
    assert len(scatters(ax)) == 2                 # particles and x0 estimates
    assert len(quivers(ax)) == 1
    assert len(contours(ax)) == 1
    assert ax.get_xlim() == (-4, 4) and ax.get_ylim() == (-3, 3)
    title = ax.get_title()
    assert "dps" in title and "step 1/4" in title and "t=700" in title and "guidance" in title
    # the grid evaluation is cached for the same density and limits
    W.render_2d(make_step(2), density=dens, xlim=(-4, 4), ylim=(-3, 3))
    assert Ring.calls == 1
    # switches turn the extras off
    ax = W.render_2d(step, show_x0=False, show_correction=False).axes[0]
    assert len(scatters(ax)) == 1 and not quivers(ax)


def test_correction_arrows_start_at_recorded_point():
    x0_prior = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    corr = torch.tensor([[0.5, 0.0], [0.0, -0.5]])
    step = types.SimpleNamespace(i=0, t=10, x=torch.tensor([[3.0, 3.0], [4.0, 4.0]]),
                                 x0=x0_prior + corr, phase="prox",
                                 extras={"correction": corr, "x0_prior": x0_prior})
    start, vec = W._correction_origin(step, step.x.numpy())
    assert np.allclose(start, x0_prior.numpy()) and np.allclose(vec, corr.numpy())
    before = torch.tensor([[9.0, 9.0], [8.0, 8.0]])
    step.extras = {"correction": corr, "before_correction": before}
    assert np.allclose(W._correction_origin(step, step.x.numpy())[0], before.numpy())
    step.extras = {"correction": corr}
    assert np.allclose(W._correction_origin(step, step.x.numpy())[0], (step.x - corr).numpy())


def test_render_2d_with_gaussian_mixture():
    toy = pytest.importorskip("posterior_tutor.toy")
    gmm = toy.ring_of_gaussians()
    fig = W.render_2d(make_step(0), density=gmm, xlim=(-3, 3), ylim=(-3, 3))
    assert len(contours(fig.axes[0])) == 1


def test_render_2d_rejects_images():
    with pytest.raises(ValueError, match="2D view"):
        W.render_2d(make_step(0, shape=(1, 8, 8)))


# -- render_image -------------------------------------------------------------------------------
def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_render_image_panels_grey():
    step = make_step(0, n=6, shape=(1, 8, 8))
    fig = W.render_image(step, n_show=4)
    assert len(_image_axes(fig)) == 8             # x_t and x0 rows, 4 samples each
    assert _image_axes(fig)[0].images[0].get_array().shape == (8, 8)
    fig = W.render_image(step, n_show=3, residual_fn=lambda x: x - 0.1)
    assert len(_image_axes(fig)) == 9             # plus a residual row
    fig = W.render_image(step, y=torch.zeros(1, 8, 8), n_show=2, residual_fn=lambda x: x)
    assert len(_image_axes(fig)) == 7             # plus y in an extra first column
    fig = W.render_image(make_step(0, n=2, shape=(1, 8, 8), x0=False), n_show=4)
    assert len(_image_axes(fig)) == 2             # n_show capped at n; no x0 row


def test_render_image_rgb_clipped():
    step = make_step(0, n=2, shape=(3, 5, 7))
    step.x = 3.0 * step.x
    fig = W.render_image(step, n_show=2)
    arr = np.asarray(_image_axes(fig)[0].images[0].get_array())
    assert arr.shape == (5, 7, 3) and arr.min() >= 0.0 and arr.max() <= 1.0


def test_figure_to_png():
    png = W.figure_to_png(W.render_2d(make_step(0)))
    assert isinstance(png, bytes) and png.startswith(PNG)
    png = W.figure_to_png(W.render_image(make_step(0, n=2, shape=(1, 8, 8))))
    assert png.startswith(PNG)


# -- Stepper ------------------------------------------------------------------------------------
@pytest.fixture
def stepper():
    steps = [make_step(i, requires_grad=True) for i in range(5)]
    return W.Stepper(iter(steps), density=Ring(), title="toy")


def test_stepper_frames_detached_on_cpu(stepper):
    assert len(stepper.frames) == 5 and stepper.view == "2d"
    for s in stepper.frames:
        assert s.x.device.type == "cpu" and not s.x.requires_grad and s.x.grad_fn is None
        assert s.x0.grad_fn is None
    assert stepper.slider.max == 4 and stepper.play.max == 4 and stepper.slider.min == 0


def test_stepper_slider_updates_image(stepper):
    first = bytes(stepper.image.value)
    assert first.startswith(PNG) and first == stepper.frame_png(0)
    assert stepper.image.format == "png"
    assert set(stepper._cache) == {0}              # frames are rendered lazily
    stepper.slider.value = 3
    assert bytes(stepper.image.value) == stepper.frame_png(3) != first
    assert "3/4" in stepper.label.value
    assert stepper.play.value == 3                 # the link runs both ways
    stepper.play.value = 2
    assert stepper.slider.value == 2 and bytes(stepper.image.value) == stepper.frame_png(2)
    assert set(stepper._cache) == {0, 2, 3}


def test_stepper_buttons_and_show_frame(stepper):
    stepper.next_button.click()
    stepper.next_button.click()
    assert stepper.slider.value == 2
    stepper.prev_button.click()
    assert stepper.slider.value == 1
    stepper.prev_button.click()
    stepper.prev_button.click()                    # clipped at 0
    assert stepper.slider.value == 0
    stepper.show_frame(-1)
    assert stepper.slider.value == 4 and bytes(stepper.image.value) == stepper.frame_png(4)
    stepper.next_button.click()
    assert stepper.slider.value == 4


def test_stepper_fixed_limits_and_display(stepper):
    import ipywidgets

    assert isinstance(stepper.widget, ipywidgets.VBox)
    xlim = stepper.xlim
    for s in stepper.frames:                       # limits cover (almost) all particles
        inside = ((s.x[:, 0] >= xlim[0]) & (s.x[:, 0] <= xlim[1])).float().mean()
        assert inside > 0.9
    bundle = stepper._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = stepper.static_html()
    assert html.count("data:image/png;base64,") == 2


def test_stepper_image_view():
    steps = [make_step(i, n=3, shape=(1, 8, 8)) for i in range(4)]
    st = W.Stepper(steps, y=torch.zeros(1, 8, 8), residual_fn=lambda x: x)
    assert st.view == "image" and st.slider.max == 3
    st.slider.value = 2
    assert bytes(st.image.value).startswith(PNG) and bytes(st.image.value) != st.frame_png(0)


def test_stepper_errors():
    with pytest.raises(ValueError, match="at least one"):
        W.Stepper([])
    with pytest.raises(ValueError, match="view"):
        W.Stepper([make_step(0)], view="3d")


def test_filmstrip():
    import matplotlib.pyplot as plt

    steps = [make_step(i) for i in range(4)]
    fig = W.filmstrip(steps, density=Ring())
    assert len(fig.axes) == 2 and "step 3" in fig.axes[1].get_title()
    plt.close(fig)
    fig = W.filmstrip([make_step(i, n=3, shape=(1, 8, 8)) for i in range(3)], n_show=2)
    assert len(fig.axes) == 8                      # 2 frames x (x_t, x0) rows x 2 samples
    plt.close(fig)


# -- with the real samplers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_problem():
    pt = pytest.importorskip("posterior_tutor")
    gmm = pt.toy.ring_of_gaussians()
    den = gmm.denoiser(pt.VPSchedule())
    prob = pt.InverseProblem(pt.operators.Matrix([[1.0, 0.5]]), 0.3)
    y = prob.measure(gmm.sample(1, generator=torch.Generator().manual_seed(0))[0],
                     generator=torch.Generator().manual_seed(1))
    return pt, den, prob, y


def test_step_through_diffpir(toy_problem):
    pt, den, prob, y = toy_problem
    assert "steps" in pt.options_of("diffpir")
    st = W.step_through("diffpir", den, prob, y, n=50, generator=torch.Generator().manual_seed(0),
                        density="exact", every=3, steps=20)
    assert len(st.frames) == 8                     # steps 0, 3, ..., 18 and the last (19)
    assert [s.i for s in st.frames][-2:] == [18, 19]
    assert st.frames[-1].extras["nfe"] == 20 and st.title == "diffpir"
    st.slider.value = len(st.frames) - 1
    assert bytes(st.image.value).startswith(PNG)
    assert "NFE 20" in st.label.value


def test_step_through_ddpm_prior(toy_problem):
    pt, den, prob, y = toy_problem
    st = W.step_through("ddpm", den, None, None, n=20, generator=torch.Generator().manual_seed(0),
                        steps=10)
    assert len(st.frames) == 10 and st.view == "2d"
