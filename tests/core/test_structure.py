"""The library's rooms: packages by role, short files and functions, imports that run one way.

The numbers come from ``scripts/structure_numbers.py`` (the same reading the closing notes quote),
so the test and the report cannot disagree about what a layer or a long function is.
"""
import ast
from pathlib import Path

import pytest

import posterior_tutor as pt
from conftest import load_script

PKG = Path(pt.__file__).parent
ROOT = PKG.parent
numbers = load_script("structure_numbers")

ROOMS = {"operators", "samplers", "trained", "priors", "metrics", "evaluation", "viz", "exercises",
         "files", "checks", "runtime"}


def _library():
    return list(numbers.modules(ROOT))


def test_the_top_level_is_a_short_list_of_rooms():
    entries = sorted(p.name for p in PKG.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 20, entries
    assert ROOMS <= {p.name for p in PKG.iterdir() if p.is_dir()}
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((PKG / room / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"{room}/__init__.py says what the room holds"


def test_no_library_file_over_300_lines_and_no_function_over_80():
    big, long = [], []
    for name, path in _library():
        text = path.read_text()
        if (n := len(text.splitlines())) > 300:
            big.append((name, n))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if (n := node.end_lineno - node.lineno + 1) > 80:
                    long.append((f"{name}:{node.name}", n))
    assert not big, f"files over 300 lines: {big}"
    assert not long, f"functions over 80 lines: {long}"


def test_imports_run_one_way_through_the_layers():
    """core < samplers < trained < consumers (viz, evaluation, exercises): a module never
    imports one of a higher layer (the lazy loader of ``posterior_tutor/__init__`` aside)."""
    back = []
    for name, path in _library():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = numbers.resolve(name, node, path.name == "__init__.py")
                if not target.startswith("posterior_tutor") or name == "posterior_tutor":
                    continue
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
                hi = max(numbers.layer(t) for t in targets if t.startswith("posterior_tutor"))
                if hi > numbers.layer(name):
                    back.append(f"{name} -> {target}")
    assert not back, back
    assert numbers.layer("posterior_tutor.evaluation.bench") == 3
    assert numbers.layer("posterior_tutor.trained.ud2m.train") == 2


@pytest.mark.parametrize("old", ["widgets", "unfolding", "amortized", "ud2m_presets", "bench",
                                 "bench_images", "peer", "stored", "safe_io", "checkpoints",
                                 "calibration", "frechet", "train", "config", "progress"])
def test_no_flat_module_or_shim_is_left(old):
    assert not (PKG / f"{old}.py").exists(), f"posterior_tutor/{old}.py is back at the top level"


def test_every_room_file_opens_with_a_docstring():
    missing = [name for name, path in _library()
               if path.read_text().strip() and not ast.get_docstring(ast.parse(path.read_text()))]
    assert not missing, missing
