"""No measured number typed into a chapter's prose.

A chapter's markdown may not state a result (a decimal, a percentage, a number with a unit such
as dB, s, min, MB, or a "14x" speed-up) unless it sits in maths (`$...$`), in code (`` `...` ``),
in an arXiv identifier or in a reference.  Results are computed in the run and shown with
``Markdown(f"...")`` (a code cell), or read from a named stored file in that run.  Integers that
name things (chapter 03, exercise 02.1, the 2D problem, 1000 DPS steps as the paper sets them)
are allowed: they are settings and names, not measurements.
"""
import re
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))

MEASURED = re.compile(
    r"(?<![\w.])[-+]?\d+\.\d+(?![\w.]*\d)"                  # a decimal: 24.1, 0.56
    r"|\d+(\.\d+)?\s*(%|dB\b|MB\b|GB\b|s\b|ms\b|min\b|seconds?\b|minutes?\b|hours?\b)"
    r"|\d+(\.\d+)?\s*(x|×)(?![\w])")                        # a speed-up: 14x, 3 ×
ALLOWED = [re.compile(p) for p in (
    r"\$\$.*?\$\$", r"\$[^$]*\$", r"`[^`]*`",               # maths and code
    r"\d{4}\.\d{4,5}(v\d+)?",                               # arXiv identifiers
    r"[Ee]xercises? \d\d\.\d",                              # exercise numbers
    r"\]\([^)]*\)",                                         # link targets
    r"\d+\s*x\s*\d+",                                       # sizes: 28 x 28, K x N grids
)]


def markdown_cells(path: Path):
    cell, in_md = [], False
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            if in_md and cell:
                yield "\n".join(cell)
            cell, in_md = [], "[markdown]" in line
        elif in_md:
            cell.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if in_md and cell:
        yield "\n".join(cell)


def typed_numbers(text: str) -> list:
    if text.lstrip().startswith("## References"):
        return []
    for pattern in ALLOWED:
        text = pattern.sub(" ", text)
    return [m.group(0) for m in MEASURED.finditer(text)]


def test_the_rule_catches_typed_results():
    assert typed_numbers("UD2M reaches 24.1 vs 23.4 dB") == ["24.1", "23.4"]
    assert typed_numbers("a 14x speed-up, 90% coverage, 3 min") == ["14x", "90%", "3 min"]
    assert typed_numbers("$x_{0.5}$, `steps=1000`, arXiv 2503.12615, exercise 02.1, 28 x 28") == []


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_measured_number_in_prose(path):
    found = [(cell.strip().splitlines()[0][:60], typed_numbers(cell))
             for cell in markdown_cells(path)]
    found = [(head, nums) for head, nums in found if nums]
    assert not found, (f"{path.name}: numbers typed into prose (compute them in the run and show "
                       f"them with Markdown(f'...'), or read them from a stored file): {found}")


def test_readme_shows_the_measured_chapter_times():
    """The README's table is the one scripts/chapter_times.py writes from docs/chapter_times.md."""
    from conftest import load_script
    root = Path(__file__).resolve().parents[1]
    times = load_script("chapter_times")
    rows = times.read_rows(root / "docs" / "chapter_times.md")
    assert {chapter for chapter, _ in rows} == {p.stem for p in CHAPTERS}, "a chapter is not timed"
    assert times.readme_table(rows) in (root / "README.md").read_text()
    for row in rows.values():
        assert row["result"] == "ok", f"{row['chapter']} ({row['mode']}): {row['result']}"
