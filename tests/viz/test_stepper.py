"""Tests of the step-through viewers (matplotlib Agg, ipywidgets in the kernel only)."""
import re
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

from posterior_tutor import viz as W  # noqa: E402
from posterior_tutor.viz.steps import _correction_origin  # noqa: E402
from conftest import seeded

PNG = b"\x89PNG\r\n\x1a\n"


def make_step(i, n=30, d=2, correction=True, x0=True, shape=None, requires_grad=False, seed=0):
    g = seeded(seed + i)
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
    start, vec = _correction_origin(step, step.x.numpy())
    assert np.allclose(start, x0_prior.numpy()) and np.allclose(vec, corr.numpy())
    before = torch.tensor([[9.0, 9.0], [8.0, 8.0]])
    step.extras = {"correction": corr, "before_correction": before}
    assert np.allclose(_correction_origin(step, step.x.numpy())[0], before.numpy())
    step.extras = {"correction": corr}
    assert np.allclose(_correction_origin(step, step.x.numpy())[0], (step.x - corr).numpy())


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
    y = prob.measure(gmm.sample(1, generator=seeded(0))[0],
                     generator=seeded(1))
    return pt, den, prob, y


def test_step_through_diffpir(toy_problem):
    pt, den, prob, y = toy_problem
    assert "steps" in pt.options_of("diffpir")
    st = W.step_through("diffpir", den, prob, y, n=50, generator=seeded(0),
                        density="exact", every=3, steps=20)
    assert len(st.frames) == 8                     # steps 0, 3, ..., 18 and the last (19)
    assert [s.i for s in st.frames][-2:] == [18, 19]
    assert st.frames[-1].extras["nfe"] == 20 and st.title == "diffpir"
    st.slider.value = len(st.frames) - 1
    assert bytes(st.image.value).startswith(PNG)
    assert "NFE 20" in st.label.value


def test_step_through_ddpm_prior(toy_problem):
    pt, den, prob, y = toy_problem
    st = W.step_through("ddpm", den, None, None, n=20, generator=seeded(0),
                        steps=10)
    assert len(st.frames) == 10 and st.view == "2d"


# -- re-running, layers, strips, static fallback ------------------------------------------------
def _fake_run(seed, n_frames=4, scale=1.0):
    return [make_step(i, n=20, seed=100 * seed) for i in range(n_frames)]


def test_stepper_rerun_from_buttons_and_code():
    calls = []

    def rerun(seed, frames=4):
        calls.append((seed, frames))
        return _fake_run(seed, n_frames=frames)

    st = W.Stepper(_fake_run(5), rerun=rerun, seed=5, rerun_params={"frames": [4, 6, 2]},
                   title="toy")
    assert st.seed_box.value == 5 and st.param_widgets["frames"].value == 4
    st.slider.value = 3
    old_png = bytes(st.image.value)
    st.new_seed_button.click()                        # seed + 1, same parameters
    assert calls == [(6, 4)] and st.seed == 6 and st.seed_box.value == 6
    assert st.slider.value == 0 and st.play.value == 0 and "seed 6" in st.label.value
    assert bytes(st.image.value) == st.frame_png(0) != old_png
    assert st.status.value == ""
    st.param_widgets["frames"].value = 6
    st.seed_box.value = 11
    st.rerun_button.click()                           # the seed and parameters shown
    assert calls[-1] == (11, 6) and len(st.frames) == 6 and st.slider.max == 5
    st.show_frame(-1)
    assert st.slider.value == 5
    st.rerun(seed=3, frames=2)                        # from code: the widgets follow
    assert calls[-1] == (3, 2) and st.slider.max == 2 - 1 and st.play.max == 1
    assert st.slider.value == 0 and st.param_widgets["frames"].value == 2
    st.rerun()                                        # default: the next seed
    assert calls[-1] == (4, 2)
    with pytest.raises(TypeError, match="unknown rerun parameter"):
        st.rerun(1, sigma=0.1)
    with pytest.raises(ValueError, match="not one of the choices"):
        st.rerun(1, frames=5)


def test_stepper_rerun_dict_replaces_density_and_y():
    dens2 = Ring()

    def rerun(seed):
        steps = [make_step(i, n=3, shape=(1, 8, 8), seed=seed) for i in range(3)]
        return {"steps": steps, "y": torch.ones(1, 8, 8), "residual_fn": lambda x: 2 * x}

    st = W.Stepper([make_step(i, n=3, shape=(1, 8, 8)) for i in range(2)], rerun=rerun,
                   y=torch.zeros(1, 8, 8))
    st.rerun(7)
    assert len(st.frames) == 3 and torch.equal(st.y, torch.ones(1, 8, 8))
    assert st.residual_fn(torch.ones(1)) == 2
    st2 = W.Stepper(_fake_run(0), rerun=lambda s: {"steps": _fake_run(s), "density": dens2})
    st2.rerun(1)
    assert st2.density is dens2
    with pytest.raises(ValueError, match="without 'steps'"):
        W.Stepper(_fake_run(0), rerun=lambda s: {"density": dens2}).rerun(1)


def test_stepper_rerun_errors():
    st = W.Stepper(_fake_run(0))
    assert st.rerun_button is None and st.seed_box is None
    with pytest.raises(RuntimeError, match="without rerun"):
        st.rerun(1)
    with pytest.raises(ValueError, match="rerun_params needs rerun"):
        W.Stepper(_fake_run(0), rerun_params={"sigma": [0.1]})
    with pytest.raises(TypeError, match="callable"):
        W.Stepper(_fake_run(0), rerun=3)
    with pytest.raises(ValueError, match="static"):
        W.Stepper(_fake_run(0), static="yes")
    # a failing rerun leaves the frames alone and says why next to the buttons

    def boom(seed):
        raise RuntimeError("no luck")

    st = W.Stepper(_fake_run(0), rerun=boom, seed=0)
    frames = st.frames
    with pytest.raises(RuntimeError, match="no luck"):
        st._rerun_clicked(1)
    assert st.frames is frames and "no luck" in st.status.value


def test_stepper_2d_layer_checkboxes(stepper):
    assert set(stepper.layer_boxes) == {"show_x0", "show_correction", "show_density"}
    stepper.slider.value = 2
    full = stepper.frame_png(2)
    stepper.layer_boxes["show_correction"].value = False
    assert stepper.show_correction is False and stepper._cache.keys() == {2}
    assert bytes(stepper.image.value) == stepper.frame_png(2) != full
    ax = stepper.render(2).axes[0]
    assert not quivers(ax) and len(scatters(ax)) == 2 and len(contours(ax)) == 1
    stepper.layer_boxes["show_x0"].value = False
    stepper.layer_boxes["show_density"].value = False
    ax = stepper.render(2).axes[0]
    assert len(scatters(ax)) == 1 and not contours(ax)
    img = W.Stepper([make_step(i, n=2, shape=(1, 8, 8)) for i in range(2)])
    assert img.layer_boxes == {}


def test_sample_strip():
    x = torch.rand(10, 1, 8, 8) * 2 - 1
    fig = W.sample_strip(x, n_show=6, title="final samples")
    assert len(_image_axes(fig)) == 6 and fig._suptitle.get_text() == "final samples"
    fig = W.sample_strip(make_step(0, n=3, shape=(3, 8, 8)), n_show=8, y=torch.zeros(3, 8, 8))
    assert len(_image_axes(fig)) == 4                 # y and the 3 samples (x0 estimates)
    arr = np.asarray(_image_axes(fig)[1].images[0].get_array())
    assert arr.shape == (8, 8, 3)
    assert W.figure_to_png(fig).startswith(PNG)
    st = W.Stepper([make_step(i, n=5, shape=(1, 8, 8)) for i in range(3)], y=torch.zeros(1, 8, 8))
    assert len(_image_axes(st.strip(n_show=8))) == 6  # y and the 5 samples of the last frame
    with pytest.raises(ValueError, match="image runs"):
        W.Stepper(_fake_run(0)).strip()


def test_stepper_displays_static_copy(stepper):
    from unittest import mock

    shown = []
    with mock.patch("IPython.display.display", side_effect=lambda o: shown.append(o)):
        stepper._ipython_display_()
    assert shown[0] is stepper.widget
    html = shown[1].data
    assert html.startswith('<details class="pt-stepper-static">')
    assert html.count("data:image/png;base64,") == 2 and "toy" in html
    import base64
    for i in (0, -1):
        assert base64.b64encode(stepper.frame_png(i)).decode() in html
    bundle = stepper._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/html" in bundle
    opened = W.Stepper(_fake_run(0), static="open")
    assert "<details class=\"pt-stepper-static\" open>" in opened._static_block()
    none = W.Stepper(_fake_run(0), static=None)
    shown.clear()
    with mock.patch("IPython.display.display", side_effect=lambda o: shown.append(o)):
        none._ipython_display_()
    assert shown == [none.widget] and "text/html" not in none._repr_mimebundle_()


def test_static_fallback_in_exported_html(tmp_path):
    """An executed notebook with a Stepper, exported with ``jupyter nbconvert --to html``, shows
    the first and last frame as <img> (with and without the widget state in the notebook)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("nbconvert")
    pytest.importorskip("ipykernel")
    code = (
        "import base64, types, torch\n"
        "from posterior_tutor import viz as W\n"
        "def step(i):\n"
        "    g = torch.Generator().manual_seed(i)\n"
        "    x = torch.randn(30, 2, generator=g) * (1 + i)\n"
        "    return types.SimpleNamespace(i=i, t=900 - 100 * i, x=x, x0=0.5 * x, phase='',\n"
        "                                 extras={'correction': 0.1 * x})\n"
        "st = W.Stepper([step(i) for i in range(5)], title='exported')\n"
        "st.slider.value = 2\n"
        "st")
    check = ("print('FIRST', base64.b64encode(st.frame_png(0)).decode())\n"
             "print('LAST', base64.b64encode(st.frame_png(-1)).decode())")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(check)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    first = text.split("FIRST ")[1].split()[0]
    last = text.split("LAST ")[1].split()[0]
    assert first != last
    outs = nb.cells[0].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outs)
    for with_state in (True, False):
        if not with_state:
            nb.metadata.pop("widgets", None)
        path = tmp_path / f"stepper_{with_state}.ipynb"
        nbformat.write(nb, path)
        subprocess_html = _nbconvert_html(path)
        imgs = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', subprocess_html)
        assert first in imgs and last in imgs, f"with_state={with_state}"
        assert "pt-stepper-static" in subprocess_html


def _nbconvert_html(path) -> str:
    """``jupyter nbconvert --to html`` (the command a reader would run)."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)],
                   check=True, capture_output=True, timeout=120)
    return path.with_suffix(".html").read_text()


# -- every sampler can be stepped -----------------------------------------------------------------
SMALL = {"ddpm": dict(steps=12), "dps": dict(steps=12), "diffpir": dict(steps=12),
         "daps": dict(levels=6, ode_steps=2, langevin_steps=5), "latino": dict(steps=4),
         "pnp_ula": dict(steps=12), "spin": dict(steps=6, guided=2, warm_start=1, opt_steps=2)}


def _methods():
    try:
        import posterior_tutor as pt
        return pt.methods()
    except Exception:                                  # collected even if the package breaks
        return []


@pytest.mark.parametrize("name", _methods())
def test_every_sampler_steppable(toy_problem, name):
    pt, den, prob, y = toy_problem
    opts = {k: v for k, v in SMALL.get(name, {}).items() if k in pt.options_of(name)}
    if not opts and "steps" in pt.options_of(name):
        opts = dict(steps=12)
    st = W.step_through(name, den, prob, y, n=40, generator=seeded(0),
                        density="exact", every=2, **opts)
    assert len(st.frames) >= 2, f"{name}: fewer than two frames"
    assert st.seed == 0 and st.seed_box.value == 0
    first = st.frame_png(0)
    st.show_frame(-1)
    assert bytes(st.image.value) == st.frame_png(-1) != first
    assert st.frames[-1].extras.get("nfe", 1) >= 1
    old_last = st.frames[-1].x
    st.new_seed_button.click()                         # the re-run control works for each method
    assert st.seed == 1 and st.slider.value == 0 and st.status.value == ""
    assert not torch.equal(st.frames[-1].x, old_last), f"{name}: a new seed, the same samples"


def test_step_through_rerun_noise_level_and_operator(toy_problem):
    pt, den, prob, y = toy_problem
    x_true = torch.tensor([1.0, -0.5])
    other = pt.operators.Matrix([[0.0, 1.0]])
    st = W.step_through("diffpir", den, prob, y, n=30, generator=seeded(4),
                        density="exact", steps=10, x_true=x_true, sigmas=[0.1, 1.0],
                        operators={"second coordinate": other})
    assert st.seed == 4
    sig = st.param_widgets["sigma"]
    assert [v for _, v in sig.options] == [0.3, 0.1, 1.0] and sig.value == 0.3
    ops = st.param_widgets["operator"]
    assert ops.options[0][1] is prob.operator and ops.options[1][1] is other
    dens0, y0 = st.density, st.y
    st.rerun(4)                                        # same problem, same seed: same frames
    assert torch.equal(st.y, y0)
    st.rerun(5, sigma=0.1, operator=other)
    assert sig.value == 0.1 and ops.value is other
    assert st.density is not dens0 and not torch.equal(st.y, y0)
    expected = pt.InverseProblem(other, 0.1).measure(
        x_true, generator=seeded(5))
    assert torch.allclose(st.y, expected)
    with pytest.raises(ValueError, match="x_true"):
        W.step_through("diffpir", den, prob, y, n=10, steps=5, sigmas=[0.1])
    st = W.step_through("diffpir", den, prob, y, n=10, steps=5, x_true=x_true,
                        sigmas=[1.0, 0.3], operators=[other, prob.operator])
    assert [v for _, v in st.param_widgets["sigma"].options] == [0.3, 1.0]   # current first
    first_op, second_op = [v for _, v in st.param_widgets["operator"].options]
    assert first_op is prob.operator and second_op is other
    st = W.step_through("diffpir", den, prob, y, n=10, steps=5, rerunnable=False)
    assert st.rerun_button is None
