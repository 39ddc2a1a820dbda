"""Bad input, generated rather than hand-picked: every registered sampler (``pt.methods()``) and
both trainers, every option (``pt.options_of(name)``, the trainers' signatures), walked through the
same families of bad values; plus bad generators, integer / complex / float64 measurements and bad
``n``.  Each case ends in one of four outcomes:

* clear    : ValueError or TypeError (or a subclass, e.g. the package's NonFiniteError) whose
             message names the argument;
* accepted : no error and a finite, real result of the right shape (the value was a valid one,
             e.g. eta = 0 or a float64 y; listed by ``summary(verbose=True)``);
* silent   : no error but a non-finite, complex or misshapen result (a silent wrong answer);
* deep     : any other exception, or a message that does not name the argument.

The test asserts no silent and no deep case.  The counts for a report:

    python -m tests.test_bad_input          (add -v to list the accepted values and the failures)
"""
from __future__ import annotations

import inspect
import re
import sys
import warnings

import numpy as np
import pytest
import torch

import posterior_tutor as pt
from conftest import seeded

CLEAR, ACCEPTED, SILENT, DEEP = "clear", "accepted", "silent", "deep"

# The options that set the amount of work, kept tiny so that a case costs milliseconds (the bad
# value under test replaces its entry here).  Runtime only: the bad values are generated below.
FAST = {"ddpm": dict(steps=4), "dps": dict(steps=4), "diffpir": dict(steps=4),
        "daps": dict(levels=3, ode_steps=2, langevin_steps=3), "pnp_ula": dict(steps=4),
        "latino": dict(steps=3), "spin": dict(steps=4, warm_start=1, opt_steps=3, guided=2)}
FAST_TRAIN = {"ud2m": dict(steps=2, batch=8), "aps": dict(steps=2, batch=8)}
T = 1000   # the toy problem's schedule length: one past the last valid time


def family(default, annotation: str = "") -> list:
    """(value, surely_bad) pairs for an option, from the type of its default (or annotation).
    surely_bad: wrong type, NaN, inf, negative (no option of the package takes a negative value)
    or None where None is not the default: accepting it is a silent wrong answer.  The others (0,
    1e30, T) may be valid for some options: accepting them is fine if the result is finite."""
    kind = type(default)
    if default is None or kind in (int, float):   # the annotation, where there is one, decides
        kind = (float if "float" in annotation else int if "int" in annotation
                else kind if default is not None else object)
    none = [] if default is None else [(None, True)]
    if kind is bool:
        return [("yes", True), (2, True)] + none
    if kind is int:
        return [("5", True), (2.5, True), (True, True), (-1, True), (float("nan"), True),
                (float("inf"), True), (0, False)] + none
    if kind is float:
        return [("5", True), (float("nan"), True), (float("inf"), True), (-float("inf"), True),
                (-1.0, True), (0.0, False), (1e30, False)] + none
    if kind is str:   # a choice; some also take a number or None (aps t_groups="auto")
        return [("no such choice", True), (3, False), (None, False)]
    return [("bogus", False), (3, False), (-1.0, False), (float("nan"), True)]


BAD_GENERATORS = ["seed", 0, np.random.default_rng(0)]
BAD_N = [0, -1, 2.5, "4", None]
N_NAMES = ["n (number of samples)", "n must", "n="]


def _toy():
    tp = pt.toy.bimodal_problem_2d()
    return tp, tp.prior.denoiser(pt.VPSchedule())


def _judge(fn, names, check_result) -> tuple[str, str]:
    """Run fn(); classify the outcome (see the module docstring)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
    except (ValueError, TypeError) as e:
        msg = str(e)
        if any(re.search(r"(?<![\w.])" + re.escape(nm) + r"(?![\w])", msg) for nm in names):
            return CLEAR, msg
        return DEEP, f"{type(e).__name__} not naming {names[0]}: {msg}"
    except Exception as e:  # noqa: BLE001 - classifying is the point
        return DEEP, f"{type(e).__name__}: {e}"
    return check_result(out)


def _sample_ok(n, shape, surely_bad=False):
    def check(x):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            return SILENT, f"result of dtype {getattr(x, 'dtype', type(x).__name__)}"
        if tuple(x.shape) != (n, *shape):
            return SILENT, f"result of shape {tuple(x.shape)}"
        if not torch.isfinite(x).all():
            return SILENT, "non-finite samples"
        if surely_bad:
            return SILENT, "a surely bad value accepted without a word"
        return ACCEPTED, ""
    return check


def sampler_cases():
    """(label, thunk, names, check) for every registered sampler."""
    tp, den = _toy()
    prob, y = tp.problem, tp.y
    for name in pt.methods():
        base = dict(FAST.get(name, {}))
        run = lambda opts, y=y, n=3, g=None, name=name: pt.sample(  # noqa: E731
            name, den, prob, y, n=n, generator=g, **opts)
        for opt, default in pt.options_of(name).items():
            values = family(default) + ([(T, False)] if type(default) is int else [])
            for v, surely in values:
                yield (f"{name} {opt}={v!r}", lambda o={**base, opt: v}: run(o), [opt],
                       _sample_ok(3, (2,), surely))
        for g in BAD_GENERATORS:
            yield (f"{name} generator={type(g).__name__}", lambda g=g: run(base, g=g),
                   ["generator"], _sample_ok(3, (2,), True))
        for n in BAD_N:
            yield (f"{name} n={n!r}", lambda n=n: run(base, n=n), N_NAMES,
                   _sample_ok(3, (2,), True))
        if name == "ddpm":   # prior samples ignore y
            continue
        for yy, surely in ((y.long(), True), (y.to(torch.complex64), True),
                           (y.to(torch.float64), False), (y.half(), False)):
            yield (f"{name} y.dtype={yy.dtype}", lambda yy=yy: run(base, y=yy), ["y"],
                   _sample_ok(3, (2,), surely))


def _trainer_options(fn):
    skip = {"den", "problem", "xs_train", "ys_train", "generator", "unknown"}
    sig = inspect.signature(fn)
    return {k: (p.default, str(p.annotation)) for k, p in sig.parameters.items() if k not in skip}


def trainer_cases():
    tp, den = _toy()
    prob, y = tp.problem, tp.y
    g0 = seeded(0)
    xs = tp.prior.sample(64, generator=g0)
    ys = prob.operator(xs) + prob.sigma * torch.randn(64, 1, generator=g0)

    def trained_ok(surely_bad):
        def check(model):
            losses = torch.tensor(model.losses, dtype=torch.float64)
            if not torch.isfinite(losses).all():
                return SILENT, "non-finite training loss"
            xs = model.sample(y, 3, generator=seeded(1))
            return _sample_ok(3, (2,), surely_bad)(xs)
        return check

    trainers = {"ud2m": (pt.ud2m.train, xs), "aps": (pt.aps.train, ys)}
    for tname, (fn, data) in trainers.items():
        base = FAST_TRAIN[tname]
        run = lambda opts, data=data, g=None, fn=fn: fn(  # noqa: E731
            den, prob, data, generator=g, **opts)
        for opt, (default, ann) in _trainer_options(fn).items():
            for v, surely in family(default, ann):
                yield (f"{tname}.train {opt}={v!r}", lambda o={**base, opt: v}: run(o), [opt],
                       trained_ok(surely))
        for g in BAD_GENERATORS:
            yield (f"{tname}.train generator={type(g).__name__}", lambda g=g: run(base, g=g),
                   ["generator"], trained_ok(True))
        what = "xs_train" if tname == "ud2m" else "ys_train"
        for dd, surely in ((data.long(), True), (data.double(), False)):
            yield (f"{tname}.train {what}.dtype={dd.dtype}", lambda dd=dd: run(base, data=dd),
                   [what], trained_ok(surely))


def metric_cases():
    """Every option of the metrics that take one, the same families."""
    M = pt.metrics
    g = seeded(0)
    img = torch.rand(2, 1, 8, 8, generator=g) * 2 - 1
    pts = torch.randn(20, 2, generator=g)
    calls = {M.psnr: (img, img.flip(0)), M.ssim: (img, img.flip(0)),
             M.sliced_wasserstein: (pts, pts + 1), M.mmd: (pts, pts + 1),
             M.energy_distance: (pts, pts + 1), M.coverage: (pts, pts[0])}

    def finite(out):
        ok = isinstance(out, torch.Tensor) and torch.isfinite(out).all()
        return (ACCEPTED, "") if ok else (SILENT, f"result {out!r}")

    def surely(out):
        return (SILENT, "a surely bad value accepted without a word") if finite(out)[0] == \
            ACCEPTED else finite(out)

    for fn, args in calls.items():
        for opt, p in inspect.signature(fn).parameters.items():
            if p.default is inspect.Parameter.empty or opt in ("generator", "unbiased"):
                continue
            for v, sure in family(p.default, str(p.annotation)):
                yield (f"metrics.{fn.__name__} {opt}={v!r}",
                       lambda fn=fn, args=args, o={opt: v}: fn(*args, **o), [opt],
                       surely if sure else finite)
        if "generator" in inspect.signature(fn).parameters:
            for bad in BAD_GENERATORS:
                yield (f"metrics.{fn.__name__} generator={type(bad).__name__}",
                       lambda fn=fn, args=args, bad=bad: fn(*args, generator=bad), ["generator"],
                       surely)
    for fn in (M.psnr, M.ssim):
        yield (f"metrics.{fn.__name__} 0..255 images", lambda fn=fn: fn(img * 127 + 128, img),
               ["data_range"], surely)
    yield ("metrics.mode_weights 3-D points", lambda: M.mode_weights(
        torch.zeros(5, 3), pt.toy.ring_of_gaussians()), ["dimension"], surely)


def run_all(cases):
    return [(label, *_judge(fn, names, check)) for label, fn, names, check in cases]


def summary(verbose: bool = False) -> dict:
    """Counts over every generated case: tried, clear, accepted, silent, deep."""
    results = run_all(sampler_cases()) + run_all(trainer_cases()) + run_all(metric_cases())
    counts = {"tried": len(results)}
    for kind in (CLEAR, ACCEPTED, SILENT, DEEP):
        counts[kind] = sum(r[1] == kind for r in results)
    print("bad-input cases: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if verbose:
        for label, kind, detail in results:
            if kind != CLEAR:
                print(f"  {kind:8s} {label}: {detail[:160]}")
    return counts


def _assert_all_clear(results):
    bad = [f"{label}: {kind}: {detail[:200]}" for label, kind, detail in results
           if kind in (SILENT, DEEP)]
    assert not bad, f"{len(bad)} of {len(results)} cases unclear:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", pt.methods())
def test_every_sampler_option_family_gives_a_clear_error(name):
    cases = [c for c in sampler_cases() if c[0].split(" ")[0] == name]
    assert len(cases) >= 3 * len(pt.options_of(name))
    _assert_all_clear(run_all(cases))


def test_every_trainer_option_family_gives_a_clear_error():
    _assert_all_clear(run_all(trainer_cases()))


def test_every_metric_option_family_gives_a_clear_error():
    _assert_all_clear(run_all(metric_cases()))


if __name__ == "__main__":
    c = summary(verbose="-v" in sys.argv)
    sys.exit(0 if c[SILENT] == c[DEEP] == 0 else 1)


# -- the declarations behind the checks -----------------------------------------------------------
def test_every_option_of_every_sampler_is_declared():
    from posterior_tutor.samplers import get_method
    for name in pt.methods():
        assert list(get_method(name).options) == list(pt.options_of(name)), name
    for fn, spec in ((pt.ud2m.train, pt.ud2m.TRAIN_OPTIONS), (pt.aps.train, pt.aps.TRAIN_OPTIONS)):
        assert set(spec) == set(_trainer_options(fn)), fn.__module__


def test_iterate_checks_options_at_the_call_not_at_the_first_step():
    tp, den = _toy()
    for name, opts in (("daps", dict(levels=0)), ("pnp_ula", dict(steps=0)),
                       ("latino", dict(t_max=2000)), ("spin", dict(steps=500, t_star=400))):
        with pytest.raises(ValueError, match="steps|levels|t_max"):
            pt.iterate(name, den, tp.problem, tp.y, n=2, **opts)   # no next() needed


def test_messages_name_option_value_and_range():
    tp, den = _toy()
    with pytest.raises(ValueError, match=r"diffpir: zeta must be a finite number in \[0, 1\], "
                                         r"got 2\.0"):
        pt.sample("diffpir", den, tp.problem, tp.y, n=2, zeta=2.0)
    with pytest.raises(TypeError, match=r"daps: levels must be an integer >= 1, got '5'"):
        pt.sample("daps", den, tp.problem, tp.y, n=2, levels="5")
    with pytest.raises(ValueError, match=r"latino: t_min must be an integer in 0\.\.500, got 900"):
        pt.sample("latino", den, tp.problem, tp.y, n=2, t_max=500, t_min=900)


def test_a_diverging_chain_stops_at_the_step_with_the_options():
    tp, den = _toy()
    with pytest.raises(pt.checks.values.NonFiniteError, match=r"dps produced NaN or Inf at step \d with "
                                                       r"steps=4, zeta=1e\+30"):
        pt.sample("dps", den, tp.problem, tp.y, n=2, steps=4, zeta=1e30)


def test_training_that_goes_non_finite_names_the_step():
    tp, den = _toy()
    g = seeded(0)
    xs = tp.prior.sample(64, generator=g)
    with pytest.raises(pt.checks.values.NonFiniteError, match=r"UD2M training loss became NaN or Inf "
                                                       r"at step \d+.*lr \(now 1e\+30\)"):
        pt.ud2m.train(den, tp.problem, xs, generator=g, steps=5, batch=8, lr=1e30)
    with pytest.raises(ValueError, match=r"ud2m.train: lr must be a finite number > 0 or None, "
                                         r"got inf"):
        pt.ud2m.train(den, tp.problem, xs, generator=g, steps=5, batch=8, lr=float("inf"))
    ys = tp.problem.operator(xs)
    with pytest.raises(ValueError, match=r"aps.train: lr must be a finite number > 0 or None"):
        pt.aps.train(den, tp.problem, ys, generator=g, steps=5, batch=8, lr=float("inf"))


# -- generators, dtypes, metrics ------------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_GENERATORS, ids=lambda g: type(g).__name__)
def test_every_public_generator_argument_is_checked(bad):
    tp, den = _toy()
    xs = torch.zeros(8, 2)
    calls = [lambda: tp.prior.sample(4, generator=bad),
             lambda: pt.toy.two_moons(4, generator=bad), lambda: pt.toy.rings(4, generator=bad),
             lambda: tp.problem.measure(tp.x_true, generator=bad),
             lambda: pt.VPSchedule().add_noise(xs, 10, generator=bad),
             lambda: pt.metrics.sliced_wasserstein(xs, xs, generator=bad),
             lambda: pt.metrics.noise_floor(lambda n, g: torch.zeros(n, 2), 4, generator=bad),
             lambda: pt.operators.Inpainting.random((1, 4, 4), generator=bad),
             lambda: pt.tasks.image_problem("random_inpainting", generator=bad),
             lambda: pt.aps.neg_elbo(den, xs, generator=bad)]
    for call in calls:
        with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
            call()


@pytest.fixture
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _toy_world(xs_dtype=None):
    """Every piece of the toy world once, tiny; returns the dtypes of what came out."""
    tp, den = _toy()
    g = seeded(0)
    xs = tp.prior.sample(64, generator=g)
    y = tp.y
    if xs_dtype is not None:
        xs, y = xs.to(xs_dtype), y.to(xs_dtype)
    out = {"mixture": xs.dtype}
    for name in pt.methods():
        fast = FAST.get(name, {})
        out[name] = pt.sample(name, den, tp.problem, y, n=3, generator=g, **fast).dtype
    ud = pt.ud2m.train(den, tp.problem, xs, generator=g, steps=3, batch=8)
    out["ud2m"] = ud.sample(y, 3, generator=g).dtype
    ys = tp.problem.operator(xs) + 0.25 * torch.randn(64, 1, generator=g, dtype=xs.dtype)
    fl = pt.aps.train(den, tp.problem, ys, generator=g, steps=3, batch=8)
    out["aps"] = fl.sample(y, 3, generator=g).dtype
    out["sw"] = pt.metrics.sliced_wasserstein(xs, xs[:10], generator=g).dtype
    return out


def test_the_toy_world_runs_in_float64_by_default(float64_default):
    out = _toy_world()
    assert set(out.values()) == {torch.float64}, out


def test_the_toy_world_takes_float64_tensors():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _toy_world(torch.float64)
    # the exact prior follows its input; the trained models compute in their own float32
    assert all(out[m] == torch.float64 for m in pt.methods() if m != "ddpm"), out
    assert out["ddpm"] == torch.float32   # prior samples have no input to follow
    assert out["ud2m"] == out["aps"] == torch.float32
    assert any(issubclass(w.category, pt.checks.values.DtypeWarning) for w in caught)


def test_a_network_prior_casts_y_to_its_dtype_once_with_a_warning():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, x, t):
            return self.lin(x)

    tp, _ = _toy()
    den = pt.EpsNetDenoiser(Net(), pt.VPSchedule(), shape=(2,))
    pt.checks.values._WARNED.clear()
    with pytest.warns(pt.checks.values.DtypeWarning, match="y is torch.float64 .* cast to torch.float32"):
        x = pt.sample("diffpir", den, tp.problem, tp.y.double(), n=2, steps=3)
    assert x.dtype == torch.float32
    with pytest.raises(TypeError, match="y has dtype torch.int64; pass floating-point values"):
        pt.sample("diffpir", den, tp.problem, tp.y.long(), n=2, steps=3)


def test_metrics_check_the_value_range_and_their_parameters():
    M = pt.metrics
    x = torch.rand(2, 1, 8, 8, generator=seeded(0)) * 255
    for fn in (M.psnr, M.ssim):
        with pytest.raises(ValueError, match=r"span .* data_range is 2: pass the width"):
            fn(x, x + 1)
        assert torch.isfinite(fn(x, x + 1, data_range=255)).all()
        for bad in (float("nan"), float("inf"), 0, -2):
            with pytest.raises(ValueError, match=r"data_range must be a finite number in \(0, "):
                fn(x / 127.5 - 1, x / 127.5 - 1, data_range=bad)
        with pytest.raises(TypeError, match="data_range"):
            fn(x, x, data_range="255")
    pts = torch.zeros(5, 2)
    for kw, name in ((dict(n_projections=0), "n_projections"), (dict(p=float("nan")), "p")):
        with pytest.raises(ValueError, match=name):
            M.sliced_wasserstein(pts, pts, **kw)
    with pytest.raises(ValueError, match="bandwidth"):
        M.mmd(pts, pts, bandwidth=float("nan"))
    with pytest.raises(ValueError, match="level"):
        M.coverage(pts, pts[0], level=float("nan"))
    gmm = pt.toy.ring_of_gaussians()
    with pytest.raises(ValueError, match=r"dimension 3 .* mixture lives in dimension 2"):
        M.mode_weights(torch.zeros(5, 3), gmm)


def test_option_specs_describe_and_check_what_they_declare():
    from posterior_tutor.checks.options import Choice, Flag, Int, Real, check_options, describe
    spec = {"t_max": Int(0, lambda c: c["T"] - 1), "t_min": Int(0, lambda c: c["t_max"]),
            "lr": Real(0, 2, low_open=True, high_open=True), "kind": Choice("a", "b"),
            "flag": Flag(), "delta": Real(0, optional=True)}
    assert describe(spec["lr"]) == "a finite number in (0, 2)"
    assert describe(spec["t_min"], {"t_max": 7}) == "an integer in 0..7"
    ok = dict(t_max=10, t_min=3, lr=torch.tensor(0.5), kind="a", flag=True, delta=None)
    check_options("m", spec, ok, T=20)                       # a 0-d tensor counts as a number
    for bad, err in ((dict(t_max=20), ValueError), (dict(t_min=11), ValueError),
                     (dict(lr=2), ValueError), (dict(lr=float("nan")), ValueError),
                     (dict(t_max=3.0), TypeError), (dict(kind="c"), ValueError),
                     (dict(flag=1), TypeError), (dict(delta="1"), TypeError)):
        name = next(iter(bad))
        with pytest.raises(err, match=rf"m: {name} must be .*, got"):
            check_options("m", spec, {**ok, **bad}, T=20)
    with pytest.raises(ValueError):   # a wrong kind is also a ValueError, for older callers
        check_options("m", spec, {**ok, "t_max": "5"}, T=20)
