"""Where the shipped files are, in a checkout and in an installed wheel: one table, one lookup.

    root("data")        # the checkpoints, model cards, classifiers and stored runs
    root("chapters")    # the chapters' jupytext sources (py:percent)
    root("recipes")     # the training recipes (``--recipe``)
    root("benchmark")   # the benchmark's tables and figures that chapters read
    root("docs")        # the pages the book renders beside the chapters (notation, study guide)

| tree        | in the checkout    | in an installed wheel          |
|-------------|--------------------|--------------------------------|
| data        | ``data/``          | ``posterior_tutor/_data/``     |
| chapters    | ``notebooks/``     | ``posterior_tutor/_chapters/`` |
| recipes     | ``scripts/recipes/`` | ``posterior_tutor/_recipes/``  |
| benchmark   | ``docs/benchmark/`` | ``posterior_tutor/_benchmark/`` |
| docs        | ``docs/`` (the pages) | ``posterior_tutor/_docs/``   |

The repository keeps these folders where they are (``data/`` and ``notebooks/`` at the top);
the build maps them into the package (``setup.py`` reads ``TREES``), so a wheel carries them as
package data of ``posterior_tutor``, found here through ``importlib.resources``.  A checkout
(the editable install of ``scripts/setup.sh``, or ``PYTHONPATH``) has no ``posterior_tutor/_data``
and reads the repository's folders.  Either way ``root`` is the one answer that every reader
(``checkpoints.checkpoint_dir``, ``stored.runs_dir``, ``recipes``, ``runtime.lab``) asks.

This module imports nothing from the package: ``setup.py`` loads it by path at build time.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

#: tree -> (folder in the repository, folder inside the package, the files it holds: globs)
TREES = {
    "data": ("data", "_data", ("**/*.pt", "**/*.json", "**/*.md", "**/*.png")),
    "chapters": ("notebooks", "_chapters", ("*.py",)),
    "recipes": ("scripts/recipes", "_recipes", ("*.json",)),
    "benchmark": ("docs/benchmark", "_benchmark", ("**/*.csv", "**/*.md", "**/*.png")),
    "docs": ("docs", "_docs", ("*.md", "*.png", "notes/*.md", "notes/*.json", "notes/*.png")),
}

#: the folder above the package: the repository in a checkout
CHECKOUT = Path(__file__).resolve().parents[2]


def root(tree: str) -> Path:
    """The folder of shipped ``tree`` (a key of ``TREES``): inside the installed package when it
    is there, else the repository's folder beside the package (a checkout)."""
    if tree not in TREES:
        raise ValueError(f"unknown tree of shipped files {tree!r}; use one of {', '.join(TREES)}.")
    folder, inside, _ = TREES[tree]
    packaged = _packaged(inside)
    if packaged.is_dir():
        return packaged
    return CHECKOUT.joinpath(*folder.split("/")) if _in_checkout() else packaged


def files(tree: str) -> list[Path]:
    """The shipped files of ``tree`` (its globs), sorted, as paths relative to ``root(tree)``."""
    base = root(tree)
    found = {p for pattern in TREES[tree][2] for p in base.glob(pattern) if p.is_file()}
    return sorted(p.relative_to(base) for p in found)


def _packaged(inside: str) -> Path:
    here = importlib.resources.files("posterior_tutor") / inside
    if not isinstance(here, Path):
        raise RuntimeError(f"posterior_tutor is imported from an archive ({here}); its shipped "
                           "files need a folder: install it with pip (not as a zip).")
    return here


def _in_checkout() -> bool:
    """True when the package sits in a checkout (the repository's pyproject.toml beside it)."""
    return (CHECKOUT / "pyproject.toml").is_file()
