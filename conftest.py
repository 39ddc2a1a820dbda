"""Chapters run by nbval draw every figure, as JupyterLab does.

The test command sets ``MPLBACKEND=Agg`` (no display here), under which ``plt.show()`` draws
nothing, so a figure that cannot be rendered (a mathtext error in a title, say) would pass
unnoticed and show a traceback to a student.  Each notebook's kernel is therefore started with
matplotlib's inline backend, which renders every figure to PNG at the end of its cell; a rendering
error is then an error output, and nbval fails the cell.  (The kernel starts in the setup of a
notebook's first cell; the variable is set for that moment only.)
"""
import os

import pytest

INLINE = "module://matplotlib_inline.backend_inline"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if type(item).__name__ == "IPyNbCell":
        item._saved_backend = os.environ.get("MPLBACKEND")
        os.environ["MPLBACKEND"] = INLINE


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    if type(item).__name__ == "IPyNbCell":
        saved = getattr(item, "_saved_backend", None)
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved
