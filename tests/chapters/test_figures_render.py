"""The test command draws every figure a chapter makes (the root conftest.py starts each nbval
kernel with the inline backend): a figure that cannot be rendered fails its cell, as a student
would see it fail in JupyterLab, even though the test command runs with MPLBACKEND=Agg."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BROKEN = '''# %%
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.set_title(r"$\\mathcal{N$ has no closing brace")   # mathtext fails only when drawn
plt.show()
'''


@pytest.mark.slow
def test_a_figure_that_cannot_be_drawn_fails_the_notebook(tmp_path):
    jupytext = pytest.importorskip("jupytext")
    pytest.importorskip("nbval")
    jupytext.write(jupytext.reads(BROKEN, fmt="py:percent"), tmp_path / "broken.ipynb")
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    env = {**os.environ, "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--nbval-lax", "broken.ipynb"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0, run.stdout[-2000:]
    assert "ParseFatalException" in run.stdout or "ValueError" in run.stdout, run.stdout[-2000:]
