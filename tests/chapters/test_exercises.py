"""pt.exercises: every checker accepts its solution, rejects the typical mistakes with their own
hint, reports an unsolved stub without raising; each chapter's exercise cells are complete."""
import runpy
from pathlib import Path

import jupytext
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.exercises import notebook
from posterior_tutor.exercises.base import REGISTRY, Exercise
from posterior_tutor.exercises.kinds import Prediction
from conftest import seeded

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "notebooks").glob("0[0-9]_*.py"))
IDS = pt.exercises.ids()


def test_the_chapters_are_numbered_and_each_has_exercises():
    chapters = sorted(p.name[:2] for p in CHAPTERS)
    assert chapters[:7] == ["00", "01", "02", "03", "04", "05", "06"], chapters
    for ch in chapters:
        assert sum(i.startswith(ch + ".") for i in IDS) >= 3, ch


def _is_prediction(ex):
    return isinstance(ex, Prediction)


def _measured(ex):
    """What the chapter's measurement gives when the reference prediction is right."""
    return ex.solution if _is_prediction(ex) and ex.answer is None else None


@pytest.mark.parametrize("ex_id", IDS)
def test_solution_passes(ex_id, capsys):
    ex = REGISTRY[ex_id]
    v = pt.exercises.check(ex_id, pt.exercises.solution(ex_id), measured=_measured(ex))
    assert v.passed and v.status == "pass", v.message
    out = capsys.readouterr().out
    assert "pass" in out and out.count("\n") == 1, "one printed line"


@pytest.mark.parametrize("ex_id", [i for i in IDS if isinstance(REGISTRY[i], Exercise)])
def test_typical_mistakes_are_rejected_with_their_hint(ex_id):
    mistakes = REGISTRY[ex_id].mistakes
    assert len(mistakes) >= 2
    for m in mistakes:
        v = pt.exercises.check(ex_id, m.fn, quiet=True)
        assert not v and v.status == "wrong"
        assert m.hint in v.message, (ex_id, v.message)


@pytest.mark.parametrize("ex_id", [i for i in IDS if _is_prediction(REGISTRY[i]) and REGISTRY[i].options])
def test_every_wrong_option_is_refused_with_its_explanation(ex_id):
    ex = REGISTRY[ex_id]
    truth = ex.answer if ex.answer is not None else ex.solution
    for option in ex.options:
        if option != truth:
            v = pt.exercises.check(ex_id, option, measured=_measured(ex), quiet=True)
            assert not v and v.status == "wrong"
            assert ex.feedback.get(option, "") in v.message


@pytest.mark.parametrize("ex_id", IDS)
def test_unsolved_stub_says_not_solved_yet(ex_id):
    def stub(*args, **kwargs):
        raise NotImplementedError("write it")

    ex = REGISTRY[ex_id]
    v = pt.exercises.check(ex_id, None if _is_prediction(ex) else stub, measured=_measured(ex),
                           quiet=True)
    assert v.status == "not solved yet" and "not solved yet" in v.message
    assert "solution(" not in v.message               # the verdict never points at the answer


def test_student_errors_become_messages_not_tracebacks():
    def broken(x0, t, eps, sched):
        return x0 @ torch.ones(7)                      # a shape error inside the answer

    v = pt.exercises.check("01.1", broken, quiet=True)
    assert v.status == "wrong" and "RuntimeError" in v.message and "add_noise(" in v.message
    v = pt.exercises.check("01.1", lambda x0, t, eps, sched: x0[:, :1], quiet=True)
    assert v.status == "wrong" and "shape (5, 1)" in v.message and "(5, 3)" in v.message
    v = pt.exercises.check("01.1", lambda x0, t, eps, sched: "x_t", quiet=True)
    assert v.status == "wrong" and "str" in v.message
    v = pt.exercises.check("01.1", 3.0, quiet=True)
    assert v.status == "wrong" and "expected a function" in v.message
    v = pt.exercises.check("00.1", lambda mu, C, A, y, sigma: mu, quiet=True)
    assert v.status == "wrong" and "returns 1 value(s); expected 2" in v.message


def test_an_unknown_id_lists_the_ids():
    with pytest.raises(ValueError, match="unknown exercise '9.9'.*00.1, 00.2") as err:
        pt.exercises.check("9.9", lambda: None)
    assert all(i in str(err.value) for i in IDS)
    with pytest.raises(ValueError, match="unknown exercise"):
        pt.exercises.solution("03.9")
    assert pt.exercises.solution("3.1") is pt.exercises.solution("03.1")


def test_list_names_every_exercise(capsys):
    rows = pt.exercises.list()
    assert [r[0] for r in rows] == IDS and all(r[1] for r in rows)
    assert len(capsys.readouterr().out.splitlines()) == len(IDS)
    assert [r[0] for r in pt.exercises.list("02")] == [i for i in IDS if i.startswith("02.")]


def test_diffpir_reference_is_the_library_step():
    """With zeta = 0 the sampler's update is deterministic: its steps are the reference's."""
    from posterior_tutor.exercises import ch02
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser()
    steps = list(pt.iterate("diffpir", den, tp.problem, tp.y, n=4, steps=10, zeta=0.0,
                            generator=seeded(0)))
    grid = den.schedule.timesteps(10, "sqrt")
    for i in (1, 4, 7):
        got = ch02._diffpir_ref(den, tp.problem, tp.y, steps[i - 1].x, grid[i], grid[i + 1], 1.0,
                                0.0, torch.zeros(4, 2))
        assert torch.allclose(got, steps[i].x, atol=1e-6)


def _exec(source, ns, capsys):
    exec(compile(source, "<cell>", "exec"), ns)
    return capsys.readouterr().out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_exercise_cells(path, capsys):
    """Every exercise of the chapter has a tagged stub cell and a check cell after it; the stub
    runs and reports "not solved yet", the solved cell passes."""
    nb = jupytext.read(path)
    cells = notebook.exercise_cells(nb)
    chapter = path.name[:2]
    assert sorted(i for _, i in cells) == [i for i in IDS if i.startswith(chapter + ".")]
    for idx, ex_id in cells:
        ex = REGISTRY[ex_id]
        name = notebook.answer_name(ex)
        prompt, check = nb.cells[idx - 1], nb.cells[notebook.check_cell(nb, idx, ex_id)]
        assert prompt.cell_type == "markdown" and f"Exercise {ex_id}" in prompt.source
        call = check.source.strip()
        assert call.startswith(f'pt.exercises.check("{ex_id}", {name}'), call
        ns = {"pt": pt, "torch": torch}
        _exec(nb.cells[idx].source, ns, capsys)
        if "measured=" in call:                     # the measurement, as the right answer gives it
            call = f'pt.exercises.check("{ex_id}", {name}, measured=__measured__)'
            ns["__measured__"] = _measured(ex)
        assert "not solved yet" in _exec(call, ns, capsys)
        _exec(notebook.solved_source(ex_id), ns, capsys)
        assert "pass" in _exec(call, ns, capsys)


def test_solved_notebooks_script(tmp_path, capsys):
    src = ROOT / "notebooks" / "03_langevin_latino.py"
    script = runpy.run_path(str(ROOT / "scripts" / "solved_notebooks.py"))   # in process: fast
    assert script["main"]([str(tmp_path), str(src)]) == 0
    assert "solved 03.1, 03.2, 03.3" in capsys.readouterr().out
    nb = jupytext.read(tmp_path / "03_langevin_latino.ipynb")
    text = "\n".join(c.source for c in nb.cells)
    assert "NotImplementedError" not in text
    n03 = len([k for k in pt.exercises.ids() if k.startswith("03.")])
    assert n03 >= 3
    assert text.count("pt.exercises.solution(") == n03
    assert text.count('assert pt.exercises.check("03.') == n03
