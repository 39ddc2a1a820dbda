"""Stored runs: a chapter's heavy references (DPS with 1000 steps on MNIST, long trainings, flow
evaluations) read from a named file by default and recomputed behind one visible switch.

    RECOMPUTE = False                                    # the switch at the top of a chapter
    ref = pt.files.stored.run("ch03_dps_mnist", lambda: {"xs": heavy()}, recompute=RECOMPUTE,
                        command="set RECOMPUTE = True in chapter 03 and run it")

``run`` returns the stored dict when ``data/runs/<name>.pt`` exists and ``recompute`` is False,
else calls ``compute()`` (which returns a dict of tensors, numbers, strings, lists), writes it
(checksummed and atomic, ``safe_io.write``) and returns it.  Either way it prints one line naming
the file and how to regenerate it, so a reader always knows which numbers were computed in this
run and which were read.  A stored file that is damaged gives a clear CheckpointError; one that
is missing is simply recomputed (with a line saying so).

A stored run also remembers ``settings`` (the options it was computed with); asked for other
settings it computes them in this run (without overwriting the file) instead of returning numbers
that belong to another configuration.  Only ``recompute=True`` or a missing file writes.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import safe as safe_io
from ..runtime.config import REPO_ROOT

__all__ = ["run", "path_of", "runs_dir"]


def runs_dir() -> Path:
    """``data/runs/`` of the repository, or POSTERIOR_TUTOR_RUNS when set."""
    env = os.environ.get("POSTERIOR_TUTOR_RUNS")
    return Path(env).expanduser() if env else REPO_ROOT / "data" / "runs"


def path_of(name: str) -> Path:
    if not name or not all(c.isalnum() or c in "_-." for c in name):
        raise ValueError(f"a stored run's name is letters, digits, '_', '-' or '.', got {name!r}.")
    return runs_dir() / f"{name}.pt"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def run(name: str, compute, *, recompute: bool = False, settings: dict | None = None,
        command: str = "") -> dict:
    """The stored run ``name`` (a dict), or ``compute()`` stored under that name.

    recompute: ignore the stored file and compute (then store) afresh.
    settings:  what the run depends on (sizes, steps, seeds); a stored file made with other
               settings is recomputed rather than read.
    command:   how a reader regenerates the file, printed with it."""
    if not callable(compute):
        raise TypeError(f"compute must be a function returning a dict, got {type(compute).__name__}.")
    path, settings = path_of(name), dict(settings or {})
    how = f" (regenerate: {command})" if command else ""
    if path.exists() and not recompute:
        state = safe_io.verify(safe_io.load(path), path, required=True)
        if state.get("settings", {}) == settings:
            print(f"read stored run {_display(path)}{how}")
            return state["result"]
        print(f"stored run {_display(path)} was made with other settings "
              f"({state.get('settings')}); computing with {settings} in this run (not stored: "
              "the file keeps its own settings; recompute=True replaces it)")
        return _computed(compute)
    result = _computed(compute)
    safe_io.write({"result": result, "settings": settings}, path)
    print(f"computed in this run and stored in {_display(path)}")
    return result


def _computed(compute) -> dict:
    result = compute()
    if not isinstance(result, dict):
        raise TypeError(f"compute() must return a dict, got {type(result).__name__}.")
    return result
