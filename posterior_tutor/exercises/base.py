"""The exercise registry and the checker every chapter module uses.

An ``Exercise`` holds a reference (built on the library: it is what the answer must reproduce),
seeded cases (argument tuples), the reference solution written by hand, and a list of typical
mistakes, each a wrong function with the hint to give when an answer behaves like it.  ``run``
calls the student's function on every case and turns whatever happens into a ``Verdict``: the
student never sees a stack trace.

What an answer may return: tensors or real numbers (or a tuple of them), finite.  A complex
result is refused (casting it to real would let "the right value + 5j" pass), and so are NaN or
Inf values, each with a message saying where such values usually come from.

The time limit.  Each call of the student's function gets ``TIME_LIMIT`` seconds (an exercise
may set its own ``time_limit``); a function that runs longer is stopped and the verdict says so,
so an endless loop does not hang a chapter.  On the main thread of a POSIX process (a Jupyter
kernel runs cells there) the stop is ``signal.setitimer`` + SIGALRM, which raises inside the
student's code at the next Python bytecode: the kernel stays usable, the previous SIGALRM
handler is restored, and the timer is never left running.  (A single long torch call finishes
before the signal is seen.)  Elsewhere (Windows, a worker thread, a timer already in use) the
answer runs in a daemon thread that is waited on for the limit; a function still running then is
reported and left to finish in the background, since Python cannot kill a thread.
"""
from __future__ import annotations

import copy
import signal
import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

REGISTRY: dict[str, "Exercise"] = {}

#: exercise id -> the hint of the mistake the last wrong answer matched ("" if none matched)
LAST_MISTAKE: dict[str, str] = {}

#: seconds each call of a student's function may run (the library's answers take far less)
TIME_LIMIT = 10.0


@dataclass
class Mistake:
    fn: Callable     # a plausible wrong answer (tests check that it is rejected)
    hint: str        # what to say when an answer agrees with it


@dataclass
class Exercise:
    id: str                      # "<chapter>.<n>", e.g. "03.1"
    title: str
    signature: str               # what the student writes, e.g. "ula_step(x, score, delta, z) -> x"
    solution: Callable
    reference: Callable          # the library's answer on the same arguments
    cases: Callable[[], list]    # seeded argument tuples
    mistakes: list[Mistake] = field(default_factory=list)
    hint: str = ""               # level 2 of the ladder: a concrete hint, no formula
    rtol: float = 1e-4
    atol: float = 1e-5
    time_limit: float | None = None  # seconds per call of the answer; None: TIME_LIMIT
    kind: str = "derive"         # "derive" or "build" (see kinds.py for every kind)
    nudge: str = ""              # level 1: a conceptual nudge (shown with a wrong answer)
    formula: str = ""            # level 3: the formula, only on request (pt.exercises.hint)

    def judge(self, answer, measured=None) -> "Verdict":
        return run(self, answer)


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


_COMPLEX_WHY = ("the answer is real. Complex values usually come from a power or root of a "
                "negative Python number ((-2.0) ** 0.5 is complex) or a stray 1j; check signs "
                "under square roots and powers.")


def _as_tensor(v, what: str) -> torch.Tensor:
    if isinstance(v, complex) or (isinstance(v, torch.Tensor) and v.is_complex()):
        kind = "a complex number" if isinstance(v, complex) else f"a complex tensor ({v.dtype})"
        raise _Mismatch(f"{what} is {kind}; {_COMPLEX_WHY}")
    if isinstance(v, torch.Tensor):
        return v.detach().double().cpu()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return torch.tensor(float(v), dtype=torch.float64)
    if type(v).__module__ == "numpy":
        raise _Mismatch(f"{what} is a numpy {type(v).__name__}; return a torch tensor "
                        "(torch.as_tensor(...) converts it), as the inputs are.")
    raise _Mismatch(f"{what} is a {type(v).__name__}; expected a tensor or a number.")


def _not_finite(g: torch.Tensor, what: str) -> str:
    bad = ~torch.isfinite(g)
    kinds = " and ".join(k for k, m in (("NaN", torch.isnan(g)), ("Inf", torch.isinf(g)))
                         if m.any())
    where = "" if g.dim() == 0 else \
        f" (first at index {tuple(int(i) for i in bad.nonzero()[0].tolist())})"
    return (f"{what} contains {kinds} in {int(bad.sum())} of {g.numel()} entries{where}. NaN "
            "usually comes from 0/0, the log or square root of a negative number, or inf - inf; "
            "Inf from dividing by zero or exp of a large number. Print the intermediate values "
            "of one case to see where it first appears.")


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
            raise _Mismatch(_not_finite(g, what))
        err = ((g - w).abs() / (atol + rtol * w.abs())).max().item() if w.numel() else 0.0
        worst = max(worst, err)
    return worst


def _call(fn, args):
    return fn(*copy.deepcopy(args)) if _copyable(args) else fn(*args)


class _TimedOut(BaseException):
    """Raised inside the student's code when its time is up (a BaseException, so that an
    ``except Exception`` in the answer does not swallow it)."""


def _call_limited(fn, args, seconds: float):
    """``fn(*args)`` stopped after ``seconds`` (raises _TimedOut); see the module docstring."""
    alarm = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
             and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    return (_with_alarm if alarm else _with_thread)(fn, args, seconds)


def _with_alarm(fn, args, seconds):
    def on_alarm(signum, frame):
        raise _TimedOut()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        return _call(fn, args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def _with_thread(fn, args, seconds):
    box = {}

    def target():
        try:
            box["value"] = _call(fn, args)
        except BaseException as err:  # handed to the caller's thread below
            box["error"] = err
    worker = threading.Thread(target=target, daemon=True, name="exercise-answer")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _TimedOut()
    if "error" in box:
        raise box["error"]
    return box["value"]


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
    limit = ex.time_limit if ex.time_limit is not None else TIME_LIMIT
    for k, args in enumerate(cases):
        try:
            got = _call_limited(answer, args, limit)
        except _TimedOut:
            return Verdict(ex.id, "wrong", f"Exercise {ex.id}: your function ran for more than "
                           f"{limit:g} s on case {k + 1} of {len(cases)} and was stopped (the "
                           f"limit is {limit:g} s per call; the library's answer takes well "
                           "under a second). Look for a loop that never ends (a while whose "
                           "condition never changes) or one over far more steps than needed.")
        except NotImplementedError:
            return Verdict(ex.id, "not solved yet",
                           f"Exercise {ex.id} ({ex.title}): not solved yet. "
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
            LAST_MISTAKE[ex.id] = m.hint if m is not None else ""
            hint = m.hint if m is not None else (ex.nudge or ex.hint)
            return Verdict(ex.id, "wrong", f"Exercise {ex.id}: not yet: case {k + 1} of "
                           f"{len(cases)} differs from the library. Hint: {hint} "
                           f'(pt.exercises.hint("{ex.id}") gives more, one step per call.)')
    return Verdict(ex.id, "pass", f"Exercise {ex.id} ({ex.title}): pass, your function agrees "
                                  f"with the library on {len(cases)} random cases.")
