"""Knobs on steppers: a method's option or a choice of trained sampler as a drop-down that runs
the chain again; trained samplers stepped through like methods; a new seed redraws them."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

import posterior_tutor as pt  # noqa: E402
from posterior_tutor import viz as W  # noqa: E402
from conftest import seeded


def _g(seed):
    return seeded(seed)


@pytest.fixture(scope="module")
def toy():
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser(pt.VPSchedule())
    return tp, den


def _last_x(st):
    return st.frames[-1].x.clone()


def test_option_knob_reruns_with_the_seed_shown(toy):
    tp, den = toy
    st = W.step_through("diffpir", den, tp.problem, tp.y, n=40, generator=_g(3), steps=20,
                        density="exact", knobs={"zeta": [0.1, 0.5, 1.0]})
    zeta = st.param_widgets["zeta"]
    assert [v for _, v in zeta.options] == [0.1, 0.5, 1.0] and zeta.value == 0.1  # the default
    x_default = _last_x(st)
    zeta.value = 1.0                             # by hand, as in the browser: runs at once
    assert st.seed == 3 and st.slider.value == 0
    x_one = _last_x(st)
    assert not torch.allclose(x_one, x_default), "another zeta, the same samples"
    direct = pt.sample("diffpir", den, tp.problem, tp.y, n=40, generator=_g(3), steps=20,
                       zeta=1.0)
    assert torch.allclose(x_one, direct), "the knob's run is pt.iterate with that option"
    st.rerun(3, zeta=0.1)                        # back: the first run again
    assert torch.allclose(_last_x(st), x_default) and zeta.value == 0.1


def test_latino_steps_and_spin_t_star_knobs(toy):
    tp, den = toy
    st = W.step_through("latino", den, tp.problem, tp.y, n=30, generator=_g(1),
                        knobs={"steps": [2, 4, 8]})
    assert len(st.frames) == 8 and st.param_widgets["steps"].value == 8
    st.param_widgets["steps"].value = 4
    assert len(st.frames) == 4 and st.slider.max == 3
    st = W.step_through("spin", den, tp.problem, tp.y, n=30, generator=_g(2), t_star=400,
                        knobs={"t_star": [200, 600]})
    t_star = st.param_widgets["t_star"]
    assert [v for _, v in t_star.options] == [400, 200, 600] and t_star.value == 400
    x400 = _last_x(st)
    st.rerun(st.seed, t_star=600)
    assert not torch.allclose(_last_x(st), x400), "another t*, the same samples"


def test_bad_knobs_say_what_is_wrong(toy):
    tp, den = toy
    call = dict(n=5, steps=3)
    with pytest.raises(ValueError, match="no option.*'zetta'.*zeta"):
        W.step_through("diffpir", den, tp.problem, tp.y, knobs={"zetta": [0.1]}, **call)
    with pytest.raises(ValueError, match="zeta must be"):
        W.step_through("diffpir", den, tp.problem, tp.y, knobs={"zeta": [0.1, -1.0]}, **call)
    with pytest.raises(ValueError, match="non-empty"):
        W.step_through("diffpir", den, tp.problem, tp.y, knobs={"zeta": []}, **call)
    with pytest.raises(TypeError, match="dict name -> choices"):
        W.step_through("diffpir", den, tp.problem, tp.y, knobs=["zeta"], **call)
    with pytest.raises(ValueError, match="reserved"):
        W.step_through("diffpir", den, tp.problem, tp.y, knobs={"sigma": [0.1]}, **call)
    with pytest.raises(ValueError, match="rerunnable"):
        W.step_through("diffpir", den, tp.problem, tp.y, knobs={"zeta": [0.1]},
                       rerunnable=False, **call)
    st = W.step_through("diffpir", den, tp.problem, tp.y, knobs={"zeta": [0.1, 1.0]}, **call)
    with pytest.raises(ValueError, match="not one of the choices"):
        st.rerun(1, zeta=0.7)
    with pytest.raises(TypeError, match="needs its denoiser"):
        W.step_through("diffpir", None, tp.problem, tp.y)
    with pytest.raises(TypeError, match="method name .* or a trained sampler"):
        W.step_through(3, problem=tp.problem, y=tp.y)


@pytest.fixture(scope="module")
def toy_ud2m(toy):
    tp, den = toy
    xs = tp.prior.sample(200, generator=_g(1))
    return pt.ud2m.train(den, tp.problem, xs, generator=_g(0), steps=2, K=2, N=3)


def test_trained_sampler_knob_and_new_seed(toy, toy_ud2m):
    tp, den = toy
    ud = toy_ud2m
    st = W.step_through(ud, problem=tp.problem, y=tp.y, n=20, generator=_g(5), density="exact",
                        knobs={"K x N": {"2 x 3 (trained)": ud, "3 x 2": ud.with_calls(3, 2)}})
    assert len(st.frames) == 6 and [f.extras["nfe"] for f in st.frames] == list(range(1, 7))
    direct = ud.sample(tp.y, 20, generator=_g(5), problem=tp.problem)
    assert torch.allclose(_last_x(st), direct), "the stepper runs the sampler's own iterate"
    x_first = _last_x(st)
    knob = st.param_widgets["K x N"]
    knob.value = knob.options[1][1]
    assert len(st.frames) == 6 and st.frames[0].phase.endswith("block 1/3")   # K = 3 now
    assert not torch.allclose(_last_x(st), x_first)
    knob.value = ud
    x_again = _last_x(st)
    assert torch.allclose(x_again, x_first)
    st.new_seed_button.click()                   # a fresh generator seed redraws the chain
    assert st.seed == 6 and not torch.allclose(_last_x(st), x_again)


def test_trained_flow_new_seed_and_bad_calls(toy, toy_ud2m):
    tp, den = toy
    flow = pt.aps.train(den, tp.problem, tp.y[None], generator=_g(2), steps=2)
    st = W.step_through(flow, y=tp.y, n=30, generator=_g(7))      # the flow's own problem
    assert st.seed == 7 and len(st.frames) == 1 + flow.config["transforms"]
    x7 = _last_x(st)
    st.new_seed_button.click()
    assert st.seed == 8 and not torch.allclose(_last_x(st), x7)
    assert "seed 8" in st.label.value
    with pytest.raises(TypeError, match="brings its own denoiser"):
        W.step_through(toy_ud2m, den, tp.problem, tp.y)
    with pytest.raises(TypeError, match="takes no options"):
        W.step_through(toy_ud2m, problem=tp.problem, y=tp.y, steps=3)
    with pytest.raises(TypeError, match="must be trained samplers"):
        W.step_through(toy_ud2m, problem=tp.problem, y=tp.y, knobs={"K": [1, 2]})
    with pytest.raises(ValueError, match="one knob"):
        W.step_through(toy_ud2m, problem=tp.problem, y=tp.y,
                       knobs={"a": [toy_ud2m], "b": [flow]})


def test_stepper_dropdown_reruns_once_per_change():
    calls = []

    def rerun(seed, k=1):
        calls.append((seed, k))
        return [pt.Step(i, None, torch.full((3, 2), float(k * seed + i)), None, "", {})
                for i in range(k + 1)]

    st = W.Stepper(rerun(4, 2), rerun=rerun, seed=4, rerun_params={"k": [1, 2, 3]},
                   rerun_values={"k": 2})
    calls.clear()
    assert st.param_widgets["k"].value == 2
    st.param_widgets["k"].value = 3
    assert calls == [(4, 3)] and len(st.frames) == 4
    st.rerun(9, k=1)                             # from code: the drop-down follows, no re-run
    assert calls == [(4, 3), (9, 1)] and st.param_widgets["k"].value == 1
