"""Chapters with their exercises solved: each cell tagged ``exercise`` (jupytext: ``# %%
tags=["exercise"]``) is replaced by ``name = pt.exercises.solution("<id>")``, the id read from the
cell's first line ``# Exercise <id>: ...``, and the check cell after it (for a prediction: the
first check cell after the measurement) becomes an ``assert``.

``answer_lines`` gives the lines of a reference solution that carry its answer (its expressions,
without signature, docstring or comments): a chapter must not show any of them above the
exercise (tests/chapters/test_exercise_order.py).
``scripts/solved_notebooks.py`` writes such copies as
.ipynb files so that ``pytest --nbval-lax`` runs every chapter with its exercises filled in.
"""
from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

from .base import REGISTRY

_ID = re.compile(r"Exercise (\d\d\.\d+)")


def exercise_cells(nb) -> list[tuple[int, str]]:
    """(cell index, exercise id) of every cell tagged ``exercise`` in a jupytext notebook."""
    found = []
    for i, cell in enumerate(nb.cells):
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            match = _ID.search(cell.source)
            if match is None:
                raise ValueError(f"cell {i} is tagged 'exercise' but does not name its exercise "
                                 "('# Exercise NN.k: ...' on its first line).")
            found.append((i, match.group(1)))
    return found


def solved_source(ex_id: str) -> str:
    """The source of a solved exercise cell: the solution bound to the stub's name."""
    if ex_id not in REGISTRY:
        raise ValueError(f"a chapter names exercise {ex_id}, which is not registered; known: "
                         f"{', '.join(sorted(REGISTRY))}.")
    name = answer_name(REGISTRY[ex_id])
    return f"# Exercise {ex_id}: the reference solution\n{name} = pt.exercises.solution(\"{ex_id}\")"


def answer_name(ex) -> str:
    """The name the student's answer is bound to in the exercise cell."""
    return getattr(ex, "name", None) or ex.signature.split("(")[0].strip()


def check_cell(nb, start: int, ex_id: str) -> int | None:
    """Index of the first cell after ``start`` that checks ``ex_id``, or None."""
    for j in range(start + 1, len(nb.cells)):
        if nb.cells[j].source.startswith(f'pt.exercises.check("{ex_id}"'):
            return j
    return None


def answer_lines(ex, min_len: int = 14) -> list[str]:
    """The solution's lines that state its answer, whitespace removed (see the module doc)."""
    if not callable(ex.solution):
        return []
    try:
        src = textwrap.dedent(inspect.getsource(ex.solution))
    except (OSError, TypeError):
        return []
    src = re.sub(r'("""|\'\'\')(.|\n)*?\1', "", src)
    lines = []
    for raw in src.splitlines():
        line = raw.split("#")[0].strip()
        if not line or line.startswith(("def ", "@", "return None", "pass")):
            continue
        line = line.removeprefix("return ").strip()
        if len(line) >= min_len and re.search(r"[-+*/@(]", line):
            lines.append(re.sub(r"\s+", "", line))
    return lines


def solve(nb):
    """Replace every exercise cell of ``nb`` (in place) by its solution, and make the check cell
    after it assert that the check passes (so nbval fails on a solution the checker rejects);
    returns the ids."""
    ids = []
    for i, ex_id in exercise_cells(nb):
        nb.cells[i].source = solved_source(ex_id)
        j = check_cell(nb, i, ex_id)
        if j is not None:
            after = nb.cells[j]
            after.source = f"assert {after.source.strip()}, \"the reference solution must pass\""
        ids.append(ex_id)
    return ids


def write_solved(sources, outdir) -> dict[str, list[str]]:
    """Write ``outdir/<chapter>.ipynb`` with solved exercises for each jupytext source in
    ``sources``; returns {chapter file name: exercise ids replaced}."""
    import jupytext  # a development dependency; only this function needs it

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    done = {}
    for src in map(Path, sources):
        nb = jupytext.read(src)
        done[src.name] = solve(nb)
        jupytext.write(nb, outdir / (src.stem + ".ipynb"))
    return done
