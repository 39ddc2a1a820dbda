"""``step_through``: run a sampler by name and hand its steps to a ``Stepper``.

``step_through(name, den, problem, y)`` calls ``posterior_tutor.iterate`` with the same arguments,
keeps every ``every``-th step plus the last (``_thin``: CPU copies, so a long run stays light),
writes the number of network calls so far into each kept step (``extras["nfe"]``, read from the
denoiser's counter, shown in the frame's caption) and builds the widget.  It also gives the widget
its ``rerun``: the same call with ``torch.Generator(device).manual_seed(seed)``, and with
``x_true`` a new measurement ``y = A x_true + sigma n`` for another noise level or operator
chosen in a drop-down (``density="exact"`` is recomputed for it).  ``knobs=`` adds drop-downs for
a method's options (``knobs.py``), and ``step_through(sampler, problem=..., y=...)`` steps through a
trained sampler's own ``iterate`` the same way.

    import posterior_tutor as pt
    gmm = pt.toy.ring_of_gaussians(); den = gmm.denoiser()
    problem = pt.InverseProblem(pt.operators.Matrix([[1.0, 0.5]]), 0.3)
    y = problem.measure(gmm.sample(1)[0])
    pt.viz.step_through("diffpir", den, problem, y, n=200, density="exact")
"""
from __future__ import annotations

import torch

from ..checks.values import check_generator
from .knobs import chosen_sampler, is_sampler, resolve
from .stepper import Stepper
from .steps import _detach

__all__ = ["step_through"]


def _thin(steps, every: int, nfe_source=None):
    """Every ``every``-th step plus the last one, detached, with the cumulative NFE recorded."""
    start = getattr(nfe_source, "nfe", None)
    nfe = (lambda: nfe_source.nfe - start) if start is not None else (lambda: None)  # noqa: E731
    pending = None                      # the latest step not kept yet (kept if it is the last)
    for k, s in enumerate(steps):
        if k % every == 0:
            pending = None
            yield _with_nfe(_detach(s), nfe())
        else:
            pending = (s, nfe())
    if pending is not None:
        yield _with_nfe(_detach(pending[0]), pending[1])


def _with_nfe(step, nfe):
    if nfe is not None:
        step.extras["nfe"] = nfe
    return step


def step_through(method, den=None, problem=None, y=None, n=None, generator=None, density=None,
                 every=1, title=None, view="auto", n_show=4, residual=True, rerunnable=True,
                 x_true=None, sigmas=None, operators=None, knobs=None, **options) -> Stepper:
    """Run a sampler and return a Stepper over every ``every``-th step plus the last.

    method     : a method name, run as ``posterior_tutor.iterate(method, den, problem, y, n=n,
                 generator=generator, **options)``; or a trained sampler (anything with
                 ``.iterate(y, n, generator=, problem=)`` yielding Steps, e.g.
                 ``pt.ud2m.pretrained(...)``, ``pt.aps.pretrained(...)``), called as
                 ``method.iterate(y, n, generator=generator, problem=problem)`` (``den`` is then
                 not given and no options: a trained sampler's settings were fixed by training;
                 ``problem=None`` uses the sampler's own problem)
    n          : number of samples (default 300 for vectors, 4 for images)
    density    : for 2D runs, an object with ``log_prob`` whose contours are drawn; "exact" uses
                 the exact posterior ``den.gmm.posterior(problem, y)`` of a Gaussian-mixture prior
    residual   : for image runs, show A(x0) - y (needs problem and y)
    rerunnable : add the seed box and the "run" / "new seed" buttons (the same call with
                 ``generator=torch.Generator(device).manual_seed(seed)``; the first run's seed is
                 ``generator.initial_seed()``)
    knobs      : ``{name: choices}``, one drop-down each that runs the chain again with the seed
                 shown and the value picked (``knobs.py``): an option of the method (``{"zeta":
                 [0.1, 0.3, 1.0]}``), or for a trained sampler a choice of samplers
                 (``{"K x N": {"4 x 4": ud, "3 x 3": ud.with_calls(3, 3)}}``)
    x_true     : the clean signal that made y; with it, ``sigmas`` (noise levels) and
                 ``operators`` (a list of operators, or a dict label -> operator) add drop-downs,
                 and a re-run measures a new ``y = A x_true + sigma n`` from the seed (and
                 recomputes ``density="exact"``).  The first entry of each is the current
                 problem's, which is added in front when missing."""
    if "prob" in options:
        raise TypeError("step_through takes the inverse problem as problem= (or third, after den), "
                        "not prob=.")
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}.")
    check_generator(generator)   # before _generator_device reads generator.device
    den = _check_method(method, den, options)
    if knobs and not rerunnable:
        raise ValueError("knobs= re-run the sampler: they need rerunnable=True.")
    knob_choices, knob_first = resolve(method, knobs, options, den)
    if n is None:
        shape = getattr(method, "shape", None) or getattr(den, "shape", None)
        n = 300 if shape is not None and len(shape) == 1 else 4
    if problem is None and is_sampler(method):
        problem = getattr(method, "problem", None)
    exact = _check_density(density, den, problem, y)

    def build(p, yy, g, **knob_values):
        import posterior_tutor as pt
        dens = den.gmm.posterior(p, yy) if exact else density
        sampler = chosen_sampler(method, knob_values)
        if is_sampler(sampler):
            steps, counter = sampler.iterate(yy, n, generator=g, problem=p), \
                getattr(sampler, "denoiser", None)
        else:
            steps, counter = pt.iterate(sampler, den, p, yy, n=n, generator=g, **options,
                                        **knob_values), den
        return dict(steps=_thin(steps, every, counter), density=dens,
                    y=None if yy is None else yy.detach().cpu(),
                    residual_fn=_residual_fn(p, yy) if residual else None)

    rerun_fn = seed = params = None
    if rerunnable:
        if (sigmas or operators) and (x_true is None or problem is None):
            raise ValueError("sigmas= and operators= need x_true= (the clean signal, to measure "
                             "a new y) and an InverseProblem.")
        gdev, seed = _generator_device(generator, den, y)
        params = {**_rerun_choices(problem, sigmas, operators), **knob_choices}
        rerun_fn = _make_rerun(build, problem, y, x_true, gdev)
    first = build(problem, y, generator, **knob_first)
    name = method if isinstance(method, str) else type(method).__name__
    return Stepper(first["steps"], view=view, density=first["density"], y=first["y"],
                   residual_fn=first["residual_fn"],
                   title=title if title is not None else name, n_show=n_show,
                   rerun=rerun_fn, seed=seed, rerun_params=params or None,
                   rerun_values=knob_first)


def _check_method(method, den, options):
    """The denoiser the run uses (a trained sampler's prior), after checking the call."""
    if isinstance(method, str):
        if den is None:
            raise TypeError(f"step_through({method!r}, den, problem, y): a method called by name "
                            "needs its denoiser den.")
        return den
    if not is_sampler(method):
        raise TypeError(f"step_through needs a method name (see pt.methods()) or a trained "
                        f"sampler with .iterate(y, n, generator=, problem=), got "
                        f"{type(method).__name__}.")
    if den is not None:
        raise TypeError(f"a trained sampler ({type(method).__name__}) brings its own denoiser: "
                        "call step_through(sampler, problem=..., y=...) without den.")
    if options:
        raise TypeError(f"a trained sampler takes no options (got {sorted(options)}): its "
                        "settings were fixed by training; use knobs= to choose among samplers.")
    return getattr(method, "den", None)


def _check_density(density, den, problem, y) -> bool:
    """True for ``density="exact"`` (checked to be computable), False for None or an object."""
    if not isinstance(density, str):
        return False
    if density != "exact":
        raise ValueError(f"density must be None, 'exact' or an object with log_prob, "
                         f"got {density!r}.")
    if getattr(den, "gmm", None) is None or problem is None or y is None:
        raise ValueError("density='exact' needs a Gaussian-mixture denoiser (den.gmm), "
                         "an InverseProblem and y.")
    return True


def _residual_fn(p, yy):
    """x -> A(x) - y on y's device, returned on the CPU (None without a problem or y)."""
    if p is not None and yy is not None:
        return lambda x: p.residual(x.to(yy.device, yy.dtype), yy).cpu()
    return None


def _generator_device(generator, den, y):
    """(device for the re-runs' generators, the first run's seed or None)."""
    if generator is not None:
        return generator.device, int(generator.initial_seed())
    gdev = y.device if y is not None else getattr(den, "device", torch.device("cpu"))
    if not isinstance(gdev, torch.device):
        gdev = torch.device("cpu")
    return gdev, None


def _rerun_choices(problem, sigmas, operators) -> dict:
    """The drop-downs' choices: the current noise level / operator first, labels unique."""
    params = {}
    if sigmas:
        sig = [float(v) for v in sigmas]
        params["sigma"] = [problem.sigma] + [v for v in sig if v != problem.sigma]
    if operators:
        pairs = list(operators.items()) if isinstance(operators, dict) else \
            [(repr(op), op) for op in operators]
        current = [k for k, op in pairs if op is problem.operator]
        pairs = [(current[0] if current else repr(problem.operator), problem.operator)] + \
            [(k, op) for k, op in pairs if op is not problem.operator]
        ops = {}
        for label, op in pairs:                 # labels made unique (reprs can repeat)
            unique, k = label, 2
            while unique in ops:
                unique, k = f"{label} ({k})", k + 1
            ops[unique] = op
        params["operator"] = ops
    return params


def _make_rerun(build, problem, y, x_true, gdev):
    """``rerun(seed, sigma=None, operator=None, **knobs)``: a fresh generator from the seed and,
    when the problem changed, a new measurement of ``x_true`` drawn from it before the run."""
    def rerun(seed, sigma=None, operator=None, **knob_values):
        import posterior_tutor as pt
        g = torch.Generator(device=gdev).manual_seed(int(seed))
        p, yy = problem, y
        if sigma is not None or operator is not None:
            p = pt.InverseProblem(operator if operator is not None else problem.operator,
                                  sigma if sigma is not None else problem.sigma)
            if p.sigma != problem.sigma or p.operator is not problem.operator:
                yy = p.measure(x_true.to(gdev), generator=g)
        return build(p, yy, g, **knob_values)
    return rerun
