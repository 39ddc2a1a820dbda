"""Knobs: a method's option (or a choice of trained sampler) as a drop-down on its stepper.

``step_through(..., knobs={"zeta": [0.0, 0.1, 0.3, 1.0]})`` adds one drop-down per knob; picking
another value runs the chain again with the seed shown and that value, and replaces the frames.
What a knob's value does depends on what is being stepped through:

* a method name (``"diffpir"``, ``"latino"``, ``"spin"``, ...): a knob is one of its options
  (``pt.options_of(name)``), passed to ``pt.iterate``.  Every choice is checked against the
  option's bounds when the stepper is built, so a bad value fails at once, not on a click.  The
  first run uses the value given as an option, else the method's default; it is selected in the
  drop-down (put in front when it is not one of the choices).
* a trained sampler (anything with ``.iterate(y, n, generator=, problem=)``, e.g.
  ``pt.ud2m.pretrained(...)``, ``pt.aps.pretrained(...)``): its settings were fixed by training,
  so a knob's choices are other samplers, e.g. ``{"K x N": {"4 x 4": ud, "3 x 3":
  ud.with_calls(3, 3)}}`` or flows fitted with another loss.  At most one such knob.

``resolve`` checks the knobs and returns what the stepper needs: the drop-downs' choices and the
first run's values.
"""
from __future__ import annotations

RESERVED = ("sigma", "operator")          # the drop-downs that x_true= / sigmas= / operators= make


def is_sampler(obj) -> bool:
    """True for a trained sampler object: it has a callable ``iterate``."""
    return callable(getattr(obj, "iterate", None))


def resolve(method, knobs, options: dict, den) -> tuple[dict, dict]:
    """(choices, first values) of the knobs; ``options`` loses the entries that are knobs.

    choices: ``{name: list of values or dict label -> value}`` for ``Stepper(rerun_params=)``;
    first values: ``{name: value}`` that the first run uses and the drop-downs show."""
    if not knobs:
        return {}, {}
    if not isinstance(knobs, dict):
        raise TypeError(f"knobs must be a dict name -> choices (a list of values or a dict "
                        f"label -> value), e.g. {{'zeta': [0.1, 0.3, 1.0]}}; got "
                        f"{type(knobs).__name__}.")
    for name, choices in knobs.items():
        if name in RESERVED:
            raise ValueError(f"knob {name!r} is reserved: use {name}s= with x_true= instead.")
        if not isinstance(choices, (list, tuple, dict)) or len(choices) == 0:
            raise ValueError(f"knob {name!r} needs a non-empty list of values or dict label -> "
                             f"value, got {choices!r}.")
    if is_sampler(method):
        return _sampler_knobs(method, knobs)
    return _option_knobs(method, knobs, options, den)


def _values(choices) -> list:
    return list(choices.values()) if isinstance(choices, dict) else list(choices)


def _with_first(choices, first, label):
    """``choices`` with ``first`` in front when it is not one of them (labelled ``label``)."""
    if any(v is first or _equal(v, first) for v in _values(choices)):
        return choices
    if isinstance(choices, dict):
        return {label: first, **choices}
    return [first, *choices]


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def _option_knobs(method: str, knobs: dict, options: dict, den):
    """Knobs of a method called by name: options of ``pt.iterate``, checked up front."""
    from ..checks.options import check_options
    from ..samplers.base import get_method, options_of
    defaults = options_of(method)
    unknown = [k for k in knobs if k not in defaults]
    if unknown:
        raise ValueError(f"{method} has no option(s) {unknown} to use as a knob; its options are "
                         f"{', '.join(defaults)}.")
    spec = get_method(method).options
    schedule = getattr(den, "schedule", None)
    context = {"T": schedule.T} if schedule is not None else {}
    choices, first = {}, {}
    for name, given in knobs.items():
        for value in _values(given):
            check_options(method, spec, {**defaults, **options, name: value}, **context)
        first[name] = options.pop(name) if name in options else defaults[name]
        choices[name] = _with_first(given, first[name], f"{first[name]!r}")
    return choices, first


def _sampler_knobs(sampler, knobs: dict):
    """The one knob of a trained sampler: a choice among samplers (the given one selected)."""
    if len(knobs) > 1:
        raise ValueError(f"a trained sampler takes one knob (a choice of samplers), got "
                         f"{sorted(knobs)}: its settings were fixed by training.")
    (name, given), = knobs.items()
    bad = [v for v in _values(given) if not is_sampler(v)]
    if bad:
        raise TypeError(f"the choices of knob {name!r} must be trained samplers (objects with "
                        f".iterate), e.g. {{'K x N': {{'4 x 4': ud, '3 x 3': ud.with_calls(3, 3)}}"
                        f"}}; got {type(bad[0]).__name__}. A trained sampler's options were "
                        "fixed by training.")
    return {name: _with_first(given, sampler, "as given")}, {name: sampler}


def chosen_sampler(method, knob_values: dict):
    """The sampler a run uses: the knob's choice for a trained sampler, else ``method``."""
    if is_sampler(method) and knob_values:
        return next(iter(knob_values.values()))
    return method
