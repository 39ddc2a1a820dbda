"""The exercise registry and the checker every chapter module uses.

An ``Exercise`` holds a reference (built on the library: it is what the answer must reproduce),
seeded cases (argument tuples), the reference solution written by hand, and a list of typical
mistakes, each a wrong function with the hint to give when an answer behaves like it.  ``run``
calls the student's function on every case and turns whatever happens into a ``Verdict``: the
student never sees a stack trace.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch

REGISTRY: dict[str, "Exercise"] = {}


@dataclass
class Mistake:
    fn: Callable     # a plausible wrong answer (tests check that it is rejected)
    hint: str        # what to say when an answer agrees with it


@dataclass
class Exercise:
    id: str                      # "<chapter>.<n>", e.g. "02.1"
    title: str
    signature: str               # what the student writes, e.g. "ula_step(x, score, delta, z) -> x"
    solution: Callable
    reference: Callable          # the library's answer on the same arguments
    cases: Callable[[], list]    # seeded argument tuples
    mistakes: list[Mistake] = field(default_factory=list)
    hint: str = ""               # general hint when no known mistake matches
    rtol: float = 1e-4
    atol: float = 1e-5


@dataclass
class Verdict:
    id: str
    status: str                  # "pass", "wrong" or "not solved yet"
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"Verdict({self.id!r}, {self.status!r})"

    def _ipython_display_(self):  # check() has printed the message already
        pass


def register(ex: Exercise) -> Exercise:
    if ex.id in REGISTRY:
        raise ValueError(f"exercise {ex.id} is registered twice")
    REGISTRY[ex.id] = ex
    return ex


# -- comparing answers -------------------------------------------------------------------------
class _Mismatch(Exception):
    pass


def _as_parts(value):
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _as_tensor(v, what: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().double().cpu()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return torch.tensor(float(v), dtype=torch.float64)
    raise _Mismatch(f"{what} is a {type(v).__name__}; expected a tensor or a number.")


def compare(got, want, rtol: float, atol: float) -> float:
    """Largest error of ``got`` against ``want`` (tensors, numbers, or tuples of them); raises
    _Mismatch with a readable reason when the structure or the shapes differ."""
    g_parts, w_parts = _as_parts(got), _as_parts(want)
    if len(g_parts) != len(w_parts):
        raise _Mismatch(f"your function returns {len(g_parts)} value(s); expected {len(w_parts)}.")
    worst = 0.0
    for i, (g, w) in enumerate(zip(g_parts, w_parts)):
        what = "the result" if len(w_parts) == 1 else f"value {i + 1} of the result"
        g, w = _as_tensor(g, what), _as_tensor(w, "the reference")
        if g.numel() == w.numel() and g.shape != w.shape and g.squeeze().shape == w.squeeze().shape:
            g = g.reshape(w.shape)
        if g.shape != w.shape:
            raise _Mismatch(f"{what} has shape {tuple(g.shape)}; expected {tuple(w.shape)}.")
        if not torch.isfinite(g).all():
            raise _Mismatch(f"{what} contains NaN or Inf values.")
        err = ((g - w).abs() / (atol + rtol * w.abs())).max().item() if w.numel() else 0.0
        worst = max(worst, err)
    return worst


def _call(fn, args):
    return fn(*copy.deepcopy(args)) if _copyable(args) else fn(*args)


def _copyable(args) -> bool:
    try:
        copy.deepcopy(args)
        return True
    except Exception:  # objects such as denoisers with generators: pass them as they are
        return False


def _matching_mistake(ex: Exercise, got, args) -> Mistake | None:
    for m in ex.mistakes:
        try:
            if compare(got, _call(m.fn, args), ex.rtol, ex.atol) <= 1:
                return m
        except Exception:
            continue
    return None


def run(ex: Exercise, answer) -> Verdict:
    """Check ``answer`` against the reference on every case; never raises for a student's error."""
    if not callable(answer):
        return Verdict(ex.id, "wrong", f"Exercise {ex.id}: expected a function {ex.signature}, "
                                       f"got a {type(answer).__name__}.")
    cases = ex.cases()
    for k, args in enumerate(cases):
        try:
            got = _call(answer, args)
        except NotImplementedError as err:
            msg = str(err) or "the function still raises NotImplementedError"
            return Verdict(ex.id, "not solved yet",
                           f"Exercise {ex.id} ({ex.title}): not solved yet: {msg}. "
                           f"Write {ex.signature}; the chapter goes on without it.")
        except Exception as err:  # the student's bug, reported in one line
            return Verdict(ex.id, "wrong", f"Exercise {ex.id}: your function raised "
                           f"{type(err).__name__}: {err}. It should be {ex.signature}.")
        want = _call(ex.reference, args)
        try:
            err = compare(got, want, ex.rtol, ex.atol)
        except _Mismatch as why:
            return Verdict(ex.id, "wrong", f"Exercise {ex.id}: not yet: {why}")
        if err > 1:
            m = _matching_mistake(ex, got, args)
            hint = m.hint if m is not None else ex.hint
            return Verdict(ex.id, "wrong", f"Exercise {ex.id}: not yet: case {k + 1} of "
                           f"{len(cases)} differs from the library. Hint: {hint}")
    return Verdict(ex.id, "pass", f"Exercise {ex.id} ({ex.title}): pass, your function agrees "
                                  f"with the library on {len(cases)} random cases.")
