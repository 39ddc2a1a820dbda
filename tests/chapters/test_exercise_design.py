"""The exercises make the student think: their kinds, their hints, and where their answers stand.

* every chapter has three or more exercises, among them a derive, a predict and a build; the
  course has every kind (kinds.py), and each chapter from 02 on has an optional mini-project;
* no exercise's answer stands above it: none of the reference solution's expression lines
  (``answer_lines``) appears in a code cell above the exercise cell (the worked cell that shows
  how comes after the check, as the reveal);
* a prediction is checked against a measurement made *after* it (a code cell between them);
* the hint ladder has its three rungs, and the nudge does not give the formula away;
* stubs neither state the formula nor point at the solution.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

import posterior_tutor as pt
from posterior_tutor.exercises.base import REGISTRY
from posterior_tutor.exercises.kinds import KINDS
from posterior_tutor.exercises.notebook import answer_lines, check_cell, exercise_cells

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _nb(path):
    return jupytext.read(path)


def _squash(text: str) -> str:
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    return re.sub(r"\s+", "", code)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_has_the_three_first_kinds(path):
    chapter = path.name[:2]
    kinds = [REGISTRY[k].kind for k in pt.exercises.ids() if k.startswith(chapter + ".")]
    assert len(kinds) >= 3, f"chapter {chapter} has {len(kinds)} exercises; at least 3"
    missing = {"derive", "predict", "build"} - set(kinds)
    assert not missing, f"chapter {chapter} has no exercise of kind {sorted(missing)}"
    if int(chapter) >= 2:
        assert "project" in kinds, f"chapter {chapter} has no mini-project"


def test_the_course_has_every_kind_and_enough_exercises():
    kinds = [ex.kind for ex in REGISTRY.values()]
    assert set(kinds) == set(KINDS), f"kinds used: {sorted(set(kinds))}; the course needs {KINDS}"
    assert len(kinds) >= 24


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_answer_stands_above_its_exercise(path):
    nb = _nb(path)
    for i, ex_id in exercise_cells(nb):
        above = _squash("\n".join(c.source for c in nb.cells[:i] if c.cell_type == "code"))
        shown = [line for line in answer_lines(REGISTRY[ex_id]) if line in above]
        assert not shown, f"{path.name}: the answer of {ex_id} stands above it: {shown}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_cell_has_a_check_after_it(path):
    nb = _nb(path)
    for i, ex_id in exercise_cells(nb):
        j = check_cell(nb, i, ex_id)
        assert j is not None, f"{path.name}: exercise {ex_id} is never checked"
        if REGISTRY[ex_id].kind in ("predict", "break") and getattr(REGISTRY[ex_id], "answer", 0) is None:
            between = [c for c in nb.cells[i + 1:j] if c.cell_type == "code"]
            assert between, f"{path.name}: prediction {ex_id} is checked before anything is measured"
            assert "measured=" in nb.cells[j].source, f"{path.name}: {ex_id}'s check passes no measured="


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_stubs_do_not_give_the_answer_away(path):
    nb = _nb(path)
    for i, ex_id in exercise_cells(nb):
        src = nb.cells[i].source
        assert "solution(" not in src, f"{path.name}: the stub of {ex_id} points at the solution"
        formula = REGISTRY[ex_id].formula
        assert formula and formula not in src, f"{path.name}: the stub of {ex_id} states the formula"


@pytest.mark.parametrize("ex_id", sorted(REGISTRY))
def test_the_hint_ladder_climbs(ex_id):
    ex = REGISTRY[ex_id]
    assert ex.nudge and ex.hint and ex.formula, f"{ex_id}: nudge, hint and formula are all needed"
    assert len({ex.nudge, ex.hint, ex.formula}) == 3, f"{ex_id}: the three rungs must differ"
    assert ex.formula not in ex.nudge, f"{ex_id}: the nudge gives the formula away"
    texts = [pt.exercises.hint(ex_id, level=k) for k in (1, 2, 3, 4)]
    assert ex.nudge in texts[0] and ex.formula in texts[2] and "solution(" in texts[3]
