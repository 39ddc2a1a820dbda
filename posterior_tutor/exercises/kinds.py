"""The exercise kinds besides "write a function that matches the library" (``base.Exercise``).

Every exercise has a ``kind``, the way of thinking it asks for:

* ``"derive"``  derive a formula on paper, then write it as a function; ``base.Exercise`` checks
  it against the library on seeded cases (the derivation is verified, not transcribed: the chapter
  shows the formula only *after* the check, as the reveal);
* ``"predict"`` write a number or a choice into a variable *before* the cell that measures it;
  ``Prediction`` compares it with the measurement and explains the difference;
* ``"build"``   write a whole sampler loop; ``Scored`` runs it and scores the samples (e.g. the
  sliced Wasserstein distance to the exact posterior as a multiple of the noise floor), passing
  at a stated threshold;
* ``"break"``   remove one ingredient of a method, run it, and say what changed: a ``Prediction``
  (a number measured from the broken run, or a choice among stated outcomes);
* ``"project"`` open-ended, optional, with an automatic score: a ``Scored`` that reports the
  score against a target and never blocks the chapter.

A prediction is judged against what the cell after it measured (``measured=``), or against a
fixed answer when the outcome does not depend on the run (``answer=``).  Choices are strings
among ``options``; each wrong option can carry its own explanation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .base import TIME_LIMIT, Verdict, _call_limited, _TimedOut

KINDS = ("derive", "predict", "build", "break", "project")

_NOT_YET = "not solved yet"


def _hint_pointer(ex_id: str) -> str:
    return (f' pt.exercises.hint("{ex_id}") gives a hint; call it again for the next one.')


def band(value: float, edges: tuple, options: tuple) -> str:
    """The option a measured ``value`` falls in: ``options[0]`` below ``edges[0]``, ``options[1]``
    up to ``edges[1]`` (inclusive), ``options[2]`` above (a choice read off a measurement)."""
    low, high = edges
    return options[0] if value < low else options[1] if value <= high else options[2]


@dataclass
class Prediction:
    """A number or a choice the student commits to before the chapter measures it."""
    id: str
    title: str
    name: str                        # the variable the student fills in, e.g. "bias_ratio"
    solution: object                 # the reference prediction (a number or an option)
    explain: Callable[[object, object], str]   # (prediction, measured) -> why they differ / agree
    kind: str = "predict"
    options: tuple = ()              # for a choice: the allowed answers; () for a number
    feedback: dict = field(default_factory=dict)   # option -> what is wrong with it
    rtol: float = 0.25               # a number passes within rtol of the measurement (or atol)
    atol: float = 0.0
    answer: object = None            # a fixed answer (break-it choices); None: use measured=
    nudge: str = ""
    hint: str = ""
    formula: str = ""

    @property
    def signature(self) -> str:
        what = f"one of {', '.join(map(repr, self.options))}" if self.options else "a number"
        return f"{self.name} = {what}"

    def judge(self, value, measured=None) -> Verdict:
        if value is None or value is ...:
            return Verdict(self.id, _NOT_YET, f"Exercise {self.id} ({self.title}): not solved "
                           f"yet: set {self.name} to your prediction ({self.signature}) before "
                           "running the cell that measures it; the chapter goes on without it.")
        truth = self.answer if self.answer is not None else measured
        if truth is None:
            raise ValueError(f"exercise {self.id} compares a prediction with the measurement: "
                             f'call pt.exercises.check("{self.id}", {self.name}, measured=...) '
                             "with the value the chapter measured.")
        wrong = self._refuse(value)
        if wrong:
            return Verdict(self.id, "wrong", f"Exercise {self.id}: {wrong}")
        ok = value == truth if self.options else self._close(float(value), float(truth))
        why = self.explain(value, truth)
        if ok:
            return Verdict(self.id, "pass", f"Exercise {self.id} ({self.title}): pass. You "
                           f"said {value!r}; measured {self._show(truth)}. {why}")
        extra = self.feedback.get(value, "") if self.options else ""
        return Verdict(self.id, "wrong", f"Exercise {self.id}: you said {value!r}; measured "
                       f"{self._show(truth)}. {extra + ' ' if extra else ''}{why}"
                       + _hint_pointer(self.id))

    def _refuse(self, value) -> str:
        if self.options:
            if value not in self.options:
                return (f"{self.name} = {value!r} is not one of the options "
                        f"{', '.join(map(repr, self.options))}.")
            return ""
        if isinstance(value, bool) or not isinstance(value, (int, float)) and \
                not hasattr(value, "__float__"):
            return f"{self.name} should be a number, got a {type(value).__name__}."
        if not math.isfinite(float(value)):
            return f"{self.name} = {value!r} is not a finite number."
        return ""

    def _close(self, value: float, truth: float) -> bool:
        return abs(value - truth) <= self.atol + self.rtol * abs(truth)

    def _show(self, truth) -> str:
        if self.options:
            return repr(truth)
        tol = f"within {self.rtol:.0%}" if self.rtol else ""
        tol = " or ".join(t for t in (tol, f"{self.atol:g}" if self.atol else "") if t)
        return f"{float(truth):.4g} (a prediction passes {tol})"


@dataclass
class Scored:
    """A whole function the student builds, run and scored (lower is better)."""
    id: str
    title: str
    signature: str                    # e.g. "dps_sampler(den, problem, n, generator) -> samples"
    solution: Callable
    score: Callable[[Callable], tuple]   # answer -> (score, what it means in words)
    threshold: float                  # pass when score <= threshold
    kind: str = "build"
    unit: str = ""                    # e.g. "x the noise floor"
    time_limit: float | None = None   # seconds for the whole scoring run; None: 6 x TIME_LIMIT
    nudge: str = ""
    hint: str = ""
    formula: str = ""

    def judge(self, answer, measured=None) -> Verdict:
        if not callable(answer):
            return Verdict(self.id, "wrong", f"Exercise {self.id}: expected a function "
                           f"{self.signature}, got a {type(answer).__name__}.")
        limit = self.time_limit if self.time_limit is not None else 6 * TIME_LIMIT
        try:
            value, detail = _call_limited(self.score, (answer,), limit)
        except _TimedOut:
            return Verdict(self.id, "wrong", f"Exercise {self.id}: scoring your function took "
                           f"more than {limit:g} s and was stopped; use fewer steps or samples.")
        except NotImplementedError:
            return Verdict(self.id, _NOT_YET, f"Exercise {self.id} ({self.title}): not solved "
                           f"yet. Write {self.signature}; the chapter goes on without it.")
        except Exception as err:  # the student's bug, in one line
            return Verdict(self.id, "wrong", f"Exercise {self.id}: your function raised "
                           f"{type(err).__name__}: {err}. It should be {self.signature}.")
        if not math.isfinite(value):
            return Verdict(self.id, "wrong", f"Exercise {self.id}: the score is {value}: your "
                           "samples contain NaN or Inf (print a few steps to see where).")
        shown = f"{value:.3g}{' ' + self.unit if self.unit else ''}"
        target = f"{self.threshold:.3g}{' ' + self.unit if self.unit else ''}"
        if value <= self.threshold:
            return Verdict(self.id, "pass", f"Exercise {self.id} ({self.title}): pass, score "
                           f"{shown} (at most {target} passes). {detail}")
        status = "scored" if self.kind == "project" else "wrong"
        return Verdict(self.id, status, f"Exercise {self.id}: score {shown}; at most {target} "
                       f"passes. {detail}" + _hint_pointer(self.id))
