"""Declarative option checks for the samplers and trainers.

Each method states, next to its defaults, one ``Option`` per option: its kind (integer, real
number, one of a few choices, a flag, a clipping range, or anything) and its valid range.
``check_options`` checks every option before the first step and raises an ``OptionTypeError``
(wrong kind; both a TypeError and a ValueError) or a ``ValueError`` (out of range, NaN, Inf) whose
message names the method, the option, the value and the valid range::

    OPTIONS = {"steps": Int(1, T), "eta": Real(0, 1), "grid": Choice("sqrt", "uniform")}
    check_options("diffpir", OPTIONS, {"steps": 0, ...}, T=1000)
    # ValueError: diffpir: steps must be an integer in 1..1000, got 0.

A bound may be a number or a function of the context (``T``, the schedule length, and the other
options), e.g. ``Int(0, lambda c: c["t_max"])``; options are checked in the order they are
declared, so a bound may refer to an option declared (and checked) before it.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any


class OptionTypeError(TypeError, ValueError):
    """An option of the wrong kind (a string for a number, a float for an integer): a TypeError,
    and a ValueError too, so that code catching either sees it."""


@dataclass(frozen=True)
class Option:
    kind: str                      # "int", "real", "choice", "flag", "clip" or "any"
    low: Any = None                # number, callable(context) or None
    high: Any = None
    low_open: bool = False         # low excluded
    high_open: bool = False        # high excluded
    choices: tuple = ()
    optional: bool = False         # None is allowed (means "the default rule")
    hint: str = ""                 # appended to the message: what the option does / advice


def Int(low=None, high=None, optional: bool = False, hint: str = "") -> Option:
    """An integer (not a bool) in low..high (both included)."""
    return Option("int", low, high, optional=optional, hint=hint)


def Real(low=None, high=None, low_open: bool = False, high_open: bool = False,
         optional: bool = False, hint: str = "") -> Option:
    """A finite real number (int or float, not a bool) in the interval."""
    return Option("real", low, high, low_open, high_open, optional=optional, hint=hint)


def Choice(*choices, optional: bool = False, hint: str = "") -> Option:
    return Option("choice", choices=tuple(choices), optional=optional, hint=hint)


def Flag(optional: bool = False, hint: str = "") -> Option:
    """True or False (or None with ``optional``)."""
    return Option("flag", optional=optional, hint=hint)


def Clip(hint: str = "") -> Option:
    """A clipping range: None or False (off), True (the image data range [-1, 1]) or a pair
    (low, high) of finite numbers with low < high; ``clip_range`` turns it into bounds."""
    return Option("clip", optional=True, hint=hint)


#: the data range of images (DESIGN.md: images are scaled to [-1, 1]); ``Clip`` True means it
IMAGE_RANGE = (-1.0, 1.0)


def clip_range(value) -> tuple[float, float] | None:
    """The (low, high) bounds of a checked ``Clip`` value, or None for no clipping."""
    if value is None or value is False:
        return None
    if value is True:
        return IMAGE_RANGE
    low, high = value
    return float(low), float(high)


def Anything(hint: str = "") -> Option:
    """Checked elsewhere (e.g. a number or a list, an object)."""
    return Option("any", hint=hint)


def _bound(b, context):
    return b(context) if callable(b) else b


def describe(opt: Option, context: dict | None = None) -> str:
    """The valid values in words, e.g. 'an integer in 1..1000', 'a finite number in (0, 2)'."""
    context = context or {}
    if opt.kind == "choice":
        text = "one of " + ", ".join(repr(c) for c in opt.choices)
    elif opt.kind == "flag":
        text = "True or False"
    elif opt.kind == "clip":
        return ("None or False (off), True (the image range [-1, 1]) or a pair (low, high) of "
                "finite numbers with low < high")
    elif opt.kind == "any":
        text = "a valid value"
    else:
        lo, hi = _bound(opt.low, context), _bound(opt.high, context)
        what = "an integer" if opt.kind == "int" else "a finite number"
        if opt.kind == "int" and lo is not None and hi is not None:
            text = f"{what} in {lo}..{hi}"
        elif lo is not None and hi is not None:
            text = (f"{what} in {'(' if opt.low_open else '['}{lo:g}, "
                    f"{hi:g}{')' if opt.high_open else ']'}")
        elif lo is not None:
            text = f"{what} {'>' if opt.low_open else '>='} {lo:g}"
        elif hi is not None:
            text = f"{what} {'<' if opt.high_open else '<='} {hi:g}"
        else:
            text = what
    return text + (" or None" if opt.optional else "")


def check_option(owner: str, name: str, value, opt: Option, context: dict | None = None) -> None:
    """Raise TypeError / ValueError unless ``value`` is valid for ``opt``."""
    if opt.kind == "any" or (value is None and opt.optional):
        return
    context = context or {}
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):   # a 0-d tensor / array
        value = value.item()

    def fail(kind):
        hint = f" ({opt.hint})" if opt.hint else ""
        raise kind(f"{owner}: {name} must be {describe(opt, context)}, got {value!r}{hint}.")

    if opt.kind == "flag":
        if not isinstance(value, bool):
            fail(OptionTypeError)
        return
    if opt.kind == "clip":
        _check_clip(value, fail)
        return
    if opt.kind == "choice":
        if not isinstance(value, (str, bool, numbers.Number)) or value not in opt.choices:
            fail(ValueError if isinstance(value, str) else OptionTypeError)
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(OptionTypeError)
    if opt.kind == "int" and not isinstance(value, numbers.Integral):
        fail(OptionTypeError)
    if not math.isfinite(value):
        fail(ValueError)
    lo, hi = _bound(opt.low, context), _bound(opt.high, context)
    if lo is not None and (value < lo or (opt.low_open and value == lo)):
        fail(ValueError)
    if hi is not None and (value > hi or (opt.high_open and value == hi)):
        fail(ValueError)


def _check_clip(value, fail) -> None:
    """None, a bool, or a (low, high) pair of finite reals with low < high (else ``fail``)."""
    if value is None or isinstance(value, bool):
        return
    if not isinstance(value, (tuple, list)):
        fail(OptionTypeError)
    if len(value) != 2:
        fail(ValueError)
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in value):
        fail(OptionTypeError)
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        fail(ValueError)


def check_options(owner: str, spec: dict, options: dict, **context) -> None:
    """Check each option of ``spec`` (in declaration order) that ``options`` holds; the context
    seen by callable bounds is ``context`` plus the options."""
    ctx = {**context, **options}
    for name, opt in spec.items():
        if name in options:
            check_option(owner, name, options[name], opt, ctx)


def refuse_unknown(owner: str, unknown, spec: dict) -> None:
    """A TypeError naming the options ``owner`` was given but does not declare in ``spec``."""
    if unknown:
        raise TypeError(f"{owner} has no option(s) {sorted(unknown)}; its options are "
                        f"{', '.join(spec)}.")
