"""The shape of ``posterior_tutor.viz``: rendering stays free of widgets, functions fit on a
screen, and no old module name (widgets, unfolding, ...) stands beside the real homes."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import posterior_tutor as pt

VIZ = Path(pt.__file__).parent / "viz"
ROOT = Path(pt.__file__).parent.parent


def test_render_imports_no_ipywidgets():
    """``viz.render`` (and the package it sits in) draws with matplotlib alone."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    code = ("import sys, posterior_tutor.viz.render\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'IPython'))\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_viz_functions_and_files_are_short():
    """No function in viz/ over 80 lines, no file over 320 (the guide's "about 300")."""
    files = sorted(VIZ.glob("*.py"))
    assert {f.name for f in files} >= {"render.py", "stepper.py", "step_through.py"}
    long = [(f.name, name, n) for f in files for name, n in _functions(f) if n > 80]
    assert not long, f"functions over 80 lines: {long}"
    big = [(f.name, n) for f in files if (n := len(f.read_text().splitlines())) > 320]
    assert not big, f"files over 320 lines: {big}"


def test_the_old_module_names_are_gone():
    """No compatibility shims: the stepper lives in ``pt.viz``, UD2M in ``pt.ud2m``, APS in
    ``pt.aps``; the old module names are not importable, so no reader meets two homes."""
    import importlib
    for old in ("widgets", "unfolding", "amortized", "ud2m_presets"):
        with pytest.raises(ImportError):
            importlib.import_module(f"posterior_tutor.{old}")
        assert not (VIZ.parent / f"{old}.py").exists()

