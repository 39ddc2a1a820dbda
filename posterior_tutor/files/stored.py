"""Stored runs: a chapter's heavy references (DPS with 1000 steps on MNIST, long trainings, flow
evaluations) read from a named file by default and recomputed behind one visible switch.

    RECOMPUTE = False                                    # the switch at the top of a chapter
    ref = pt.files.stored.run("ch04_dps_mnist", lambda: {"xs": heavy()}, recompute=RECOMPUTE,
                        command="set RECOMPUTE = True in chapter 04 and run it")

``run`` returns the stored dict when ``data/runs/<name>.pt`` exists and ``recompute`` is False,
else calls ``compute()`` (which returns a dict of tensors, numbers, strings, lists), writes it
(checksummed and atomic, ``safe_io.write``) and returns it.  Either way it prints one line naming
the file and how to regenerate it, so a reader always knows which numbers were computed in this
run and which were read.  A stored file that is damaged gives a clear CheckpointError; one that
is missing is simply recomputed (with a line saying so).

A stored run also remembers ``settings`` (the options it was computed with); asked for other
settings it computes them in this run (without overwriting the file) instead of returning numbers
that belong to another configuration.  Only ``recompute=True`` or a missing file writes.

What a stored file holds (checked on every read, and on ``compute()``'s dict before it is
written, so a file that would not load back is never made):

    {"result":   dict  str -> VALUE          what compute() returned
     "settings": dict  str -> SETTING        what it was computed with
     "checksum": "sha256:..."}               added by safe_io.write, checked by safe_io.verify
    VALUE   = tensor | int | float | bool | str | None | list/tuple of VALUE | dict str -> VALUE
    SETTING = the same without tensors (settings are compared with ==)

A file that breaks this (a tensor as ``result``, no ``result``, an unknown key, a numpy array
inside) is a CheckpointError naming the file, the key, the value and the expected type, and
saying how to regenerate it.  ``POSTERIOR_TUTOR_RUNS`` moves the folder (tests use it); naming
a file there is a FileExistsError.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import safe as safe_io
from ..runtime.config import folder_setting
from .resources import CHECKOUT, root
from .safe import CheckpointError

__all__ = ["run", "path_of", "runs_dir", "check_schema", "SCHEMA"]

_SCALARS = (bool, int, float, str, type(None))
#: the keys of a stored file and what each holds (see the module docstring)
SCHEMA = {"result": "a dict of tensors, numbers, strings, lists and dicts",
          "settings": "a dict of numbers, strings, booleans, lists and dicts (no tensors)"}


def runs_dir() -> Path:
    """POSTERIOR_TUTOR_RUNS when set (a folder), else ``data/runs/`` of the checkout or of the
    installed package (``resources.root("data")``)."""
    return folder_setting("POSTERIOR_TUTOR_RUNS") or root("data") / "runs"


def path_of(name: str) -> Path:
    if not isinstance(name, str) or not name[:1].isalnum() or \
            not all(c.isalnum() or c in "_-." for c in name):
        raise ValueError(f"a stored run's name is letters, digits, '_', '-' or '.' (starting with "
                         f"a letter or digit), got {name!r}.")
    return runs_dir() / f"{name}.pt"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(CHECKOUT))
    except ValueError:
        return str(path)


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{text[:60]}... (a {type(value).__name__})" if len(text) > 60 else \
        f"{text} (a {type(value).__name__})"


def _bad_value(value, key: str, tensors: bool) -> str | None:
    """The first 'key: value' that is not a VALUE (or SETTING when not ``tensors``), else None."""
    if isinstance(value, _SCALARS) or (tensors and isinstance(value, torch.Tensor)):
        return None
    if isinstance(value, (list, tuple)):
        return next((b for i, v in enumerate(value)
                     if (b := _bad_value(v, f"{key}[{i}]", tensors))), None)
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{key} has the key {k!r} (a {type(k).__name__}; keys are strings)"
            if (b := _bad_value(v, f"{key}[{k!r}]", tensors)):
                return b
        return None
    return f"{key} = {_show(value)}"


def check_schema(state, where: str, how: str = "") -> None:
    """Refuse a stored file's content that is not {"result": dict, "settings": dict} of the
    allowed values (CheckpointError naming ``where``, the key, the value and the expected type)."""
    fix = f" Regenerate it: {how}." if how else " Regenerate it with recompute=True."
    if not isinstance(state, dict):
        raise CheckpointError(f"{where} holds {_show(state)}, not a stored run (a dict with "
                              f"keys 'result' and 'settings').{fix}")
    for key, expected in SCHEMA.items():
        if key not in state:
            raise CheckpointError(f"{where} has no {key!r} (it holds {sorted(state)}); a stored "
                                  f"run holds 'result' and 'settings'.{fix}")
        if not isinstance(state[key], dict):
            raise CheckpointError(f"{where}: {key!r} is {_show(state[key])}; expected {expected}"
                                  f".{fix}")
        bad = _bad_value(state[key], key, tensors=key == "result")
        if bad:
            raise CheckpointError(f"{where}: {bad}; {key!r} must be {expected}.{fix}")
    extra = sorted(set(state) - set(SCHEMA))
    if extra:
        raise CheckpointError(f"{where} has unknown keys {extra}; a stored run holds only "
                              f"'result' and 'settings'.{fix}")


def run(name: str, compute, *, recompute: bool = False, settings: dict | None = None,
        command: str = "") -> dict:
    """The stored run ``name`` (a dict), or ``compute()`` stored under that name.

    recompute: True or False: ignore the stored file and compute (then store) afresh.
    settings:  what the run depends on (sizes, steps, seeds); a stored file made with other
               settings is recomputed rather than read.
    command:   how a reader regenerates the file, printed with it."""
    path, settings = _checked_arguments(name, compute, recompute, settings, command)
    how = f" (regenerate: {command})" if command else ""
    if path.exists() and not recompute:
        state = safe_io.verify(safe_io.load(path), path, required=True)
        check_schema(state, f"stored run {path}", command)
        if state["settings"] == settings:
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


def _checked_arguments(name, compute, recompute, settings, command):
    if not callable(compute):
        raise TypeError(f"compute must be a function returning a dict, got {type(compute).__name__}.")
    if not isinstance(recompute, bool):
        raise TypeError(f"recompute must be True or False, got {recompute!r} (a "
                        f"{type(recompute).__name__}); note that the string 'False' is not False.")
    if not isinstance(command, str):
        raise TypeError(f"command must be a string (how to regenerate the file), got {command!r}.")
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict (or None), got {_show(settings)}.")
    bad = _bad_value(dict(settings or {}), "settings", tensors=False)
    if bad:
        raise TypeError(f"{bad}; settings must be {SCHEMA['settings']}.")
    return path_of(name), dict(settings or {})


def _computed(compute) -> dict:
    result = compute()
    if not isinstance(result, dict):
        raise TypeError(f"compute() must return a dict, got {type(result).__name__}.")
    bad = _bad_value(result, "result", tensors=True)
    if bad:
        raise TypeError(f"compute() returned {bad}; a stored run holds {SCHEMA['result']} "
                        "(convert numpy arrays with torch.as_tensor, objects to their numbers).")
    return result
