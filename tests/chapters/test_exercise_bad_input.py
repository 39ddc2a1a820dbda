"""pt.exercises.check on answers that misbehave: too slow, complex, non-finite, the wrong type.
Each gets a verdict that teaches, never a traceback, and the process stays usable."""
import re
import signal
import threading
import time

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.exercises import base

solution = pt.exercises.solution


def check(ex_id, answer):
    v = pt.exercises.check(ex_id, answer, quiet=True)
    assert v.status == "wrong" and not v, v.message
    return v.message


@pytest.fixture
def short_limit(monkeypatch):
    monkeypatch.setattr(base, "TIME_LIMIT", 0.3)


def forever(*args):
    while True:
        pass


def forever_and_stubborn(*args):
    while True:
        try:
            time.sleep(0.01)
        except Exception:  # an answer that swallows errors is still stopped
            pass


@pytest.mark.parametrize("answer", [forever, forever_and_stubborn, lambda *a: time.sleep(60)])
def test_an_endless_answer_is_stopped_and_the_limit_is_named(short_limit, answer):
    start = time.perf_counter()
    message = check("01.1", answer)
    assert time.perf_counter() - start < 5
    assert "ran for more than 0.3 s on case 1 of" in message and "0.3 s per call" in message
    assert "loop that never ends" in message
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0          # no timer left running
    assert pt.exercises.check("01.1", solution("01.1"), quiet=True).passed   # still usable


def test_the_previous_alarm_handler_is_restored(short_limit):
    def mine(signum, frame):
        pass
    old = signal.signal(signal.SIGALRM, mine)
    try:
        check("01.1", forever)
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, old)


def test_off_the_main_thread_a_thread_with_a_timeout_is_used(short_limit):
    box = {}
    worker = threading.Thread(target=lambda: box.update(
        slow=pt.exercises.check("01.1", lambda *a: time.sleep(1.0), quiet=True),
        good=pt.exercises.check("01.1", solution("01.1"), quiet=True)))
    worker.start()
    worker.join(10)
    assert "ran for more than 0.3 s" in box["slow"].message and box["good"].passed


def plus_5j(*args):
    return solution("01.1")(*args) + 5j


@pytest.mark.parametrize("answer,match", [
    (plus_5j, r"the result is a complex tensor \(torch.complex"),
    (lambda *a: solution("01.1")(*a).to(torch.complex64), r"is a complex tensor"),
    (lambda *a: (-2.0) ** 0.5, r"the result is a complex number"),
])
def test_complex_results_are_refused(answer, match):
    message = check("01.1", answer)
    assert "the answer is real" in message and "square roots" in message
    assert re.search(match, message), message


def test_complex_in_a_tuple_names_the_value():
    sol = solution("00.1")
    message = check("00.1", lambda *a: (sol(*a)[0], sol(*a)[1] + 1j))
    assert "value 2 of the result is a complex tensor" in message


@pytest.mark.parametrize("bad,kinds", [(float("nan"), "NaN"), (float("inf"), "Inf")])
def test_non_finite_results_are_refused_and_explained(bad, kinds):
    def answer(*a):
        x = solution("01.1")(*a).clone()
        x[1, 2] = bad
        return x
    message = check("01.1", answer)
    assert f"contains {kinds} in 1 of" in message and "first at index (1, 2)" in message
    assert "0/0" in message and "Print the intermediate values" in message


def test_an_all_nan_result_counts_every_entry():
    message = check("01.1", lambda *a: torch.full_like(solution("01.1")(*a), float("nan")))
    assert "contains NaN in 15 of 15 entries" in message


def test_numpy_results_are_told_to_convert():
    message = check("01.1", lambda *a: solution("01.1")(*a).numpy())
    assert "numpy ndarray" in message and "torch.as_tensor" in message
