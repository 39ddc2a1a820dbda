"""The step protocol shared by every zero-shot sampler, the registry, and input checks.

A sampler is a generator function ``run(den, problem, y, n, generator, **options)`` that yields
``Step`` records.  ``sample`` runs it to the end and returns the last state; widgets, benchmarks
and tests consume the very same steps, so no method has a second, private loop.  The pieces the
samplers are built from (DDIM update, noise, back-projection) are in ``diffusion.py``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from ..checks.values import NonFiniteError, check_generator, check_generator_on, check_positive_int, conform, dtype_of
from ..denoisers import Denoiser
from ..operators import InverseProblem
from ..checks.options import check_options
from ..runtime.progress import bar


@dataclass
class Step:
    """One step of a sampler.

    i      : step index (0, 1, ...)
    t      : diffusion time of the state (None for samplers without one, e.g. PnP-ULA)
    x      : current state, shape (n, ...)
    x0     : estimate of the clean signal at this step (None where the method has none)
    phase  : a short label ("prior", "guidance", "warm start", ...)
    extras : method-specific tensors, e.g. "correction" (the data-consistency change)
    """
    i: int
    t: int | None
    x: torch.Tensor
    x0: torch.Tensor | None = None
    phase: str = ""
    extras: dict = field(default_factory=dict)

    def detached(self, device="cpu") -> "Step":
        """A copy on ``device`` with no autograd history, for storing frames."""
        mv = lambda v: v.detach().to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
        return Step(self.i, self.t, mv(self.x), mv(self.x0), self.phase,
                    {k: mv(v) for k, v in self.extras.items()})


@dataclass
class Method:
    name: str
    run: Callable[..., Iterator[Step]]
    summary: str
    needs_problem: bool = True
    backward_through_denoiser: bool = False
    options: dict = field(default_factory=dict)   # name -> options.Option (type and range)
    check: Callable | None = None                  # check(den, problem, shape, options): the rest
    steps_of: Callable | None = None               # steps_of(options) -> Steps yielded (None: "steps")


_REGISTRY: dict[str, Method] = {}


def register(name: str, summary: str, needs_problem: bool = True,
             backward_through_denoiser: bool = False, options: dict | None = None,
             check: Callable | None = None, steps_of: Callable | None = None):
    """Register a sampler; ``options`` declares each option's kind and range (``options.py``),
    ``check`` any rule across options (both run at the call, before the first step);
    ``steps_of(options)`` is how many Steps it yields with its (merged) options, for a progress
    bar (default: the option ``steps``)."""
    def deco(fn):
        _REGISTRY[name] = Method(name, fn, summary, needs_problem, backward_through_denoiser,
                                 dict(options or {}), check, steps_of)
        return fn
    return deco


def methods() -> list[str]:
    """Names of every registered sampler."""
    return sorted(_REGISTRY)


def get_method(name: str) -> Method:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(methods())}.")
    return _REGISTRY[name]


def options_of(name: str) -> dict:
    """The options of a method with their defaults."""
    sig = inspect.signature(get_method(name).run)
    skip = {"den", "problem", "y", "n", "generator", "shape"}
    return {k: p.default for k, p in sig.parameters.items() if k not in skip}


def iterate(name: str, den: Denoiser, problem: InverseProblem | None, y: torch.Tensor | None,
            n: int = 1, generator: torch.Generator | None = None, **options) -> Iterator[Step]:
    """Iterator over the ``Step`` records of method ``name`` (see ``pt.methods()``)."""
    method = get_method(name)
    check_generator(generator)
    if method.needs_problem and isinstance(y, torch.Tensor):
        y = conform(y, dtype_of(den), "y")
    shape = check_inputs(method, den, problem, y, n, generator)
    if "prob" in options:
        raise TypeError(f"{name}: the inverse problem is the argument problem (after den: "
                        f"iterate/sample({name!r}, den, problem, y, ...)), not prob=.")
    unknown = set(options) - set(options_of(name))
    if unknown:
        raise TypeError(f"{name} has no option(s) {sorted(unknown)}; its options are "
                        f"{options_of(name)}.")
    merged = {**options_of(name), **options}
    check_options(name, method.options, merged, T=den.schedule.T)
    if method.check is not None:
        method.check(den, problem, shape, merged)
    if not method.needs_problem:
        problem, y = None, None
    steps = method.run(den, problem, y, n=n, generator=generator, shape=shape, **options)
    return _finite(steps, name, options)


def _finite(steps, name, options):
    """The steps, stopping with NonFiniteError at the first state holding NaN or Inf."""
    for st in steps:
        if not torch.isfinite(st.x).all():
            given = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "the defaults"
            raise NonFiniteError(f"{name} produced NaN or Inf at step {st.i} with {given}: the "
                                 "chain diverged; lower the step-size options (or check the "
                                 "prior and y).")
        yield st


def sample(name: str, den: Denoiser, problem: InverseProblem | None, y: torch.Tensor | None,
           n: int = 1, generator: torch.Generator | None = None, progress: bool | None = None,
           **options) -> torch.Tensor:
    """Run method ``name`` to the end; returns samples of shape (n, ...).

    ``progress``: a progress bar once the run passes two seconds (None: on, except under pytest
    or with ``POSTERIOR_TUTOR_PROGRESS=0``; see ``posterior_tutor.runtime.progress``)."""
    steps = iterate(name, den, problem, y, n=n, generator=generator, **options)
    last = None
    for last in bar(steps, name, total=expected_steps(name, options), progress=progress):
        pass
    return last.x.detach()


def expected_steps(name: str, options: dict) -> int | None:
    """How many ``Step`` records method ``name`` yields with ``options`` (for a progress bar's
    length); None where that is not known in advance."""
    opts = {**options_of(name), **options}
    steps_of = get_method(name).steps_of
    try:
        count = steps_of(opts) if steps_of is not None else opts.get("steps")
    except TypeError:          # an option of the wrong kind: the call's check names it
        return None
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    return None


def check_inputs(method: Method, den, problem, y, n, generator) -> tuple:
    """Validate the public arguments; return the shape of one signal."""
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}; "
                        "wrap a network with EpsNetDenoiser or X0NetDenoiser.")
    check_positive_int(n, "n (number of samples)")
    device = getattr(den, "device", None)
    if not method.needs_problem:
        if den.shape is None:
            raise ValueError(f"{method.name} needs a denoiser with a known signal shape.")
        return tuple(den.shape)
    if problem is None or y is None:
        raise ValueError(f"{method.name} is a posterior sampler: pass an InverseProblem and y "
                         "(use 'ddpm' for prior samples).")
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"problem must be an InverseProblem, got {type(problem).__name__}.")
    shape = problem.check_y(y, device=device)
    if den.shape is not None and tuple(den.shape) != tuple(shape):
        raise ValueError(f"the operator expects signals of shape {tuple(shape)} but the prior "
                         f"(denoiser) models signals of shape {tuple(den.shape)}.")
    check_generator_on(generator, y)
    return tuple(shape)


def check_grid(owner: str, sched, steps: int, kind: str = "uniform", **bounds) -> None:
    """``steps`` distinct times fit on the ``kind`` grid, else a ValueError naming steps."""
    try:
        sched.timesteps(steps, kind, **bounds)
    except ValueError as e:
        raise ValueError(f"{owner}: steps={steps} does not fit on the {kind!r} grid: {e} Use "
                         "fewer steps.") from None
