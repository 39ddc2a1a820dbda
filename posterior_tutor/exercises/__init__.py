"""Exercises with checked answers, for the chapters in ``notebooks/``.

    import posterior_tutor as pt
    pt.exercises.list()                       # the ids and titles
    pt.exercises.check("03.1", ula_step)      # pass, or what is wrong with a hint
    pt.exercises.check("03.2", guess, measured=ratio)   # a prediction against the measurement
    pt.exercises.hint("03.1")                 # a nudge; call again: a hint, then the formula
    f = pt.exercises.solution("03.1")         # the reference solution (a function or a value)

Each chapter module (``ch00`` ... ``ch08``) registers its exercises: the answer is compared with the
library on seeded random inputs, and an answer that behaves like a typical mistake (a sign, a
forgotten square root, sigma for sigma^2, the wrong time index) gets a hint about that mistake.
An unsolved stub (it raises ``NotImplementedError``) gets "not solved yet" and nothing is raised,
so a chapter runs top to bottom with its exercises left open.

Kinds (``kinds.py``): derive (then verify), predict (then run), build (a whole loop, scored),
break (remove an ingredient, say what changes), project (open-ended, scored, optional).
"""
from __future__ import annotations

from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch06_builds, ch07, ch08  # noqa: F401  (they register)
from .base import REGISTRY, Verdict
from .hints import next_hint
from .kinds import KINDS, Prediction, Scored  # noqa: F401  (for the chapter modules)

__all__ = ["check", "hint", "list", "solution", "ids", "Verdict"]


def ids() -> "list[str]":
    """Every exercise id, in chapter order."""
    return sorted(REGISTRY)


def _get(exercise_id: str):
    key = str(exercise_id).strip()
    if key.count(".") == 1 and key.split(".")[0].isdigit():
        key = key.split(".")[0].zfill(2) + "." + key.split(".")[1]      # "2.1" -> "02.1"
    if key not in REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; the exercises are: "
                         f"{', '.join(ids())} (pt.exercises.list() shows their titles).")
    return REGISTRY[key]


def check(exercise_id: str, answer, measured=None, quiet: bool = False) -> Verdict:
    """Check ``answer`` for exercise ``exercise_id`` (a function, or for a prediction the value
    the student committed to, compared with ``measured``); prints and returns the verdict."""
    verdict = _get(exercise_id).judge(answer, measured=measured)
    if not quiet:
        print(verdict.message)
    return verdict


def hint(exercise_id: str, level: int | None = None) -> str:
    """Print the next rung of the hint ladder of ``exercise_id`` (nudge, hint, formula, where
    the solution is), or rung ``level``; returns the text."""
    text = next_hint(_get(exercise_id), level)
    print(text)
    return text


def solution(exercise_id: str):
    """The reference solution of ``exercise_id``: a function with the exercise's signature, or
    for a prediction the reference value."""
    return _get(exercise_id).solution


def list(chapter: str | None = None) -> "list[tuple[str, str]]":  # noqa: A001 (pt.exercises.list)
    """(id, title) of every exercise, or of one chapter ("02"); also printed, one per line."""
    rows = [(k, REGISTRY[k].title) for k in ids()
            if chapter is None or k.split(".")[0] == str(chapter).zfill(2)]
    for k, title in rows:
        print(f"{k}  [{REGISTRY[k].kind}]  {title}  ({REGISTRY[k].signature})")
    return rows


def signature(exercise_id: str) -> str:
    """What to write for ``exercise_id``."""
    return _get(exercise_id).signature



