"""Exercises with checked answers, for the chapters in ``notebooks/``.

    import posterior_tutor as pt
    pt.exercises.list()                       # the ids and titles
    pt.exercises.check("03.1", ula_step)      # pass, or what is wrong with a hint
    f = pt.exercises.solution("03.1")         # the reference solution (a function)

Each chapter module (``ch00`` ... ``ch08``) registers its exercises: the answer is compared with the
library on seeded random inputs, and an answer that behaves like a typical mistake (a sign, a
forgotten square root, sigma for sigma^2, the wrong time index) gets a hint about that mistake.
An unsolved stub (it raises ``NotImplementedError``) gets "not solved yet" and nothing is raised,
so a chapter runs top to bottom with its exercises left open.
"""
from __future__ import annotations

from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch08  # noqa: F401  (they register)
from .base import REGISTRY, Verdict, run

__all__ = ["check", "list", "solution", "ids", "Verdict"]




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


def check(exercise_id: str, answer, quiet: bool = False) -> Verdict:
    """Check ``answer`` (a function) for exercise ``exercise_id``; prints and returns the verdict."""
    verdict = run(_get(exercise_id), answer)
    if not quiet:
        print(verdict.message)
    return verdict


def solution(exercise_id: str):
    """The reference solution of ``exercise_id`` (a function with the exercise's signature)."""
    return _get(exercise_id).solution


def list(chapter: str | None = None) -> "list[tuple[str, str]]":  # noqa: A001 (pt.exercises.list)
    """(id, title) of every exercise, or of one chapter ("02"); also printed, one per line."""
    rows = [(k, REGISTRY[k].title) for k in ids()
            if chapter is None or k.split(".")[0] == str(chapter).zfill(2)]
    for k, title in rows:
        print(f"{k}  {title}  ({REGISTRY[k].signature})")
    return rows


def signature(exercise_id: str) -> str:
    """What to write for ``exercise_id``."""
    return _get(exercise_id).signature



