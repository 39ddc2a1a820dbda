"""The exercise kinds beside function checks: predictions, choices, scored builds, the ladder."""
from __future__ import annotations

import pytest

from posterior_tutor.exercises.base import Exercise
from posterior_tutor.exercises.hints import next_hint
from posterior_tutor.exercises.kinds import Prediction, Scored


def _number():
    return Prediction("99.1", "a ratio", "ratio", 2.0, lambda p, m: "the ratio is 1 / (1 - d).",
                      rtol=0.1, nudge="think of the limit", hint="expand", formula="1 / (1 - d)")


def _choice():
    return Prediction("99.2", "which method", "best", "dps", lambda p, m: "DPS pays with gradients.",
                      kind="break", options=("dps", "diffpir"), answer="dps",
                      feedback={"diffpir": "DiffPIR has no gradient to lose."})


def test_a_number_passes_within_its_tolerance_and_the_message_shows_the_measurement():
    ex = _number()
    assert ex.judge(2.1, measured=2.0).passed
    wrong = ex.judge(3.0, measured=2.0)
    assert wrong.status == "wrong" and "measured 2" in wrong.message and "1 / (1 - d)" in wrong.message
    assert ex.judge(None, measured=2.0).status == "not solved yet"


def test_a_prediction_refuses_non_numbers_and_needs_the_measurement():
    ex = _number()
    assert "should be a number" in ex.judge("two", measured=2.0).message
    assert "not a finite number" in ex.judge(float("nan"), measured=2.0).message
    with pytest.raises(ValueError, match="measured="):
        ex.judge(2.0)


def test_a_choice_gives_the_feedback_of_the_wrong_option():
    ex = _choice()
    assert ex.judge("dps").passed
    v = ex.judge("diffpir")
    assert not v.passed and "no gradient to lose" in v.message
    assert "not one of the options" in ex.judge("daps").message


def test_a_scored_build_passes_below_its_threshold_and_reports_bugs_in_one_line():
    ex = Scored("99.3", "a sampler", "f(n) -> samples", lambda n: n, lambda f: (float(f(3)), "ok"),
                threshold=4.0, unit="x the floor")
    assert ex.judge(lambda n: n).passed
    assert not ex.judge(lambda n: 2 * n).passed and "6 x the floor" in ex.judge(lambda n: 2 * n).message
    assert "raised ZeroDivisionError" in ex.judge(lambda n: 1 / 0).message
    assert ex.judge(lambda n: (_ for _ in ()).throw(NotImplementedError())).status == "not solved yet"
    assert "expected a function" in ex.judge(3).message
    project = Scored("99.4", "open", "f", lambda n: n, lambda f: (9.0, ""), threshold=1.0, kind="project")
    assert project.judge(lambda n: n).status == "scored"


def test_the_ladder_climbs_one_rung_per_call_and_a_level_can_be_asked():
    ex = Exercise("99.5", "t", "f(x) -> y", lambda x: x, lambda x: x, lambda: [(1.0,)],
                  nudge="N", hint="H", formula="F")
    texts = [next_hint(ex) for _ in range(5)]
    assert [t.split(": ", 1)[1][0] for t in texts[:3]] == ["N", "H", "F"]
    assert "solution(" in texts[3] and texts[4] == texts[3]
    assert "N" in next_hint(ex, level=1)
    with pytest.raises(ValueError, match="integer from 1 to 4"):
        next_hint(ex, level=7)
