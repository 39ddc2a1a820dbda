"""Chapters with their exercises solved: each cell tagged ``exercise`` (jupytext: ``# %%
tags=["exercise"]``) is replaced by ``name = pt.exercises.solution("<id>")``, the id read from the
cell's first line ``# Exercise <id>: ...``, and the check cell after it becomes an ``assert``.
``scripts/solved_notebooks.py`` writes such copies as
.ipynb files so that ``pytest --nbval-lax`` runs every chapter with its exercises filled in.
"""
from __future__ import annotations

import re
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
    name = REGISTRY[ex_id].signature.split("(")[0].strip()
    return f"# Exercise {ex_id}: the reference solution\n{name} = pt.exercises.solution(\"{ex_id}\")"


def solve(nb):
    """Replace every exercise cell of ``nb`` (in place) by its solution, and make the check cell
    after it assert that the check passes (so nbval fails on a solution the checker rejects);
    returns the ids."""
    ids = []
    for i, ex_id in exercise_cells(nb):
        nb.cells[i].source = solved_source(ex_id)
        after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        if after is not None and after.source.startswith(f'pt.exercises.check("{ex_id}"'):
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
