"""No measured number typed into a chapter's prose.

A chapter's markdown may not state a result (a decimal, a percentage, a number with a unit such
as dB, s, min, MB, or a "14x" speed-up) unless it sits in maths (`$...$`), in code (`` `...` ``),
in an arXiv identifier or in a reference.  Results are computed in the run and shown with
``Markdown(f"...")`` (a code cell), or read from a named stored file in that run.  Integers that
name things (chapter 04, exercise 03.1, the 2D problem, 1000 DPS steps as the paper sets them)
are allowed: they are settings and names, not measurements.
"""
import ast
import re
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.py"))

MEASURED = re.compile(
    r"(?<![\w.])[-+]?\d+\.\d+(?![\w.]*\d)"                  # a decimal: 24.1, 0.56
    r"|\d+(\.\d+)?\s*(%|dB\b|MB\b|GB\b|s\b|ms\b|min\b|seconds?\b|minutes?\b|hours?\b)"
    r"|\d+(\.\d+)?\s*(x|×)(?![\w])")                        # a speed-up: 14x, 3 ×
ALLOWED = [re.compile(p) for p in (
    r"\$\$.*?\$\$", r"\$[^$]*\$", r"`[^`]*`",               # maths and code
    r"\d{4}\.\d{4,5}(v\d+)?",                               # arXiv identifiers
    r"[Ee]xercises? \d\d\.\d(-\d\d\.\d)?",                  # exercise numbers (and ranges)
    r"\*\*Study time\.\*\*[^\n]*",                           # a study estimate, not a result
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
    assert typed_numbers("$x_{0.5}$, `steps=1000`, arXiv 2503.12615, exercise 03.1, 28 x 28") == []


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
    root = Path(__file__).resolve().parents[2]
    times = load_script("chapter_times")
    rows = times.read_rows(root / "docs" / "chapter_times.md")
    assert {chapter for chapter, _ in rows} == {p.stem for p in CHAPTERS}, "a chapter is not timed"
    assert times.readme_table(rows) in (root / "README.md").read_text()
    for row in rows.values():
        assert row["result"] == "ok", f"{row['chapter']} ({row['mode']}): {row['result']}"


# -- library docstrings ----------------------------------------------------------------------------
# Docstrings teach: equations, paper settings, departures.  What a run measured (a PSNR in dB, a
# sliced Wasserstein value, a gain or a loss, a speed-up, a sweep's best, a training history) goes
# to docs/notes/<topic>.md with the command that regenerates it, and the docstring points there.
# Docstrings are full of equations and settings, which the chapter rule above would flag (plain
# text, no `$...$`), so the docstring rule looks only for the shapes a result takes:
DOC_MEASURED = re.compile(
    r"[-+]?\d+(\.\d+)?(\s*(-|/)\s*[-+]?\d+(\.\d+)?)?\s*dB\b"   # 24.28 dB, 1.5-2 dB, +1.6 / +1.4 dB
    r"|(?<![\w.^*/])\+\d*\.\d+"                                # a gain: +0.12
    r"|\d+\.\d+\s*(->|→)\s*\d+(\.\d+)?"                        # a change: 27.48 -> 27.60
    r"|\d+(\.\d+)?%?\s+(vs\.?|against)\s+[-+]?\d+(\.\d+)?"     # a comparison: 0.39 vs 0.77
    r"|\b(Wasserstein|SW|W2|PSNR|FID|MMD|misfit)\b[^\d\n]{0,30}\d+\.\d+"      # a metric's value
    r"|\bmeasured\b[^\d\n]{0,30}\d+\.\d+"                      # "measured 0.9"
    r"|\d+\.\d+\s*(x|×)(?![\w])"                               # a ratio: 0.54x
    r"|\d+\s*(x|×)\s+(faster|slower|speed)"                    # a speed-up: 14x faster
    r"|\d+\.\d+\s*(s|ms|seconds?)\b"                           # a timing: 0.8 s
    r"|\d+(\.\d+)?\s*(CPU |GPU )?(min|minutes?|hours?)\b")     # a wall time: 3 CPU hours
# Allowed, as in chapter prose: maths and code (`...`), arXiv identifiers, sizes (28 x 28), and
# settings, i.e. a number right after "=", "<=", ">=", "<", ">" ("eta = 0.85", "sigma <= 0.1",
# "lr = 1e-4"): paper defaults and our own choices are settings, not measurements, however they
# were found ("1000 steps", "zeta 0.3 for SR" are not flagged by DOC_MEASURED at all).
DOC_ALLOWED = ALLOWED + [re.compile(r"(?:<=|>=|=|<|(?<!-)>)\s*[-+]?\d+(\.\d+)?(e-?\d+)?")]
LIBRARY = Path(__file__).resolve().parents[2] / "posterior_tutor"


def docstrings(path: Path):
    """(where, docstring) of a module and each of its classes and functions."""
    tree = ast.parse(path.read_text())
    for node in [tree, *ast.walk(tree)]:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc and (node is tree or not isinstance(node, ast.Module)):
                yield getattr(node, "name", "module"), doc


def measured_numbers(doc: str) -> list:
    for pattern in DOC_ALLOWED:
        doc = pattern.sub(" ", doc)
    return [m.group(0) for m in DOC_MEASURED.finditer(doc)]


def test_the_docstring_rule_catches_results_and_spares_settings():
    assert measured_numbers("gives 12.91 dB against 24.28; +1.6 / +1.4 dB PSNR") == [
        "12.91 dB", "+1.6 / +1.4 dB"]
    assert measured_numbers("sliced Wasserstein to the exact posterior 0.39 at 0.3 vs 0.77") \
        == ["Wasserstein to the exact posterior 0.39", "0.3 vs 0.77"]
    assert measured_numbers("(27.48 -> 27.60), a 0.54x ratio, 3 CPU hours, 0.8 s, 14x faster") \
        == ["27.48 -> 27.60", "0.54x", "3 CPU hours", "0.8 s", "14x faster"]
    settings = ("x_{t'} = DDIM(x, eps, eta = 0.8); paper 3, 3, 0.8; zeta 0.3 for SR, 0.5 for "
                "inpainting; 1000 steps; sigma = 0.05; lr `1e-4`; 4x SR; 28 x 28; 90% interval; "
                "x in [-1, 1]; |z - a|^2 / (2 s^2); arXiv 2407.17907; default 1.0")
    assert measured_numbers(settings) == []


def _library_files():
    return sorted(LIBRARY.rglob("*.py"))


@pytest.mark.parametrize("path", _library_files(),
                         ids=[p.relative_to(LIBRARY).as_posix() for p in _library_files()])
def test_no_measured_number_in_a_library_docstring(path):
    found = {where: nums for where, doc in docstrings(path) if (nums := measured_numbers(doc))}
    assert not found, (f"{path.relative_to(LIBRARY)}: measured numbers in docstrings (move them to "
                       f"docs/notes/<topic>.md with the command that regenerates them, and point "
                       f"there): {found}")
