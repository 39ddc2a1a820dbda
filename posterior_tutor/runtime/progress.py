"""Progress bars for long work: sampling, training, benchmark rows.

Every long loop in the package goes through :func:`bar`, a tqdm bar (``tqdm.auto``: a widget in
JupyterLab, text in a terminal) that appears only once the loop has run for ``delay`` seconds, so
a quick call prints nothing.  Whether bars show is decided in one place (:func:`wanted`):

- ``progress=True`` / ``False`` on the call decides;
- otherwise the environment variable ``POSTERIOR_TUTOR_PROGRESS`` (``0``/``off`` or ``1``/``on``;
  parsed in ``runtime.config``: another value warns once, naming the accepted ones, and is ignored);
- otherwise bars show, except under pytest (tests and nbval runs stay quiet).
"""
from __future__ import annotations

import os
import sys
from typing import Iterable

from .config import progress_setting


def under_pytest() -> bool:
    """True inside a pytest run (and in the kernels nbval starts from one)."""
    return "pytest" in sys.modules or "PYTEST_CURRENT_TEST" in os.environ


def wanted(progress: bool | None = None) -> bool:
    """Whether to show a progress bar: the argument, else the environment, else not-under-pytest."""
    if progress is not None:
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True, False or None (automatic), got {progress!r}.")
        return progress
    env = progress_setting()
    return env if env is not None else not under_pytest()


def bar(iterable: Iterable, desc: str, total: int | None = None, progress: bool | None = None,
        initial: int = 0, delay: float = 2.0, unit: str = "step"):
    """``iterable`` wrapped in a tqdm bar when :func:`wanted` says so, else ``iterable`` itself.

    The bar appears after ``delay`` seconds (quick calls stay silent); ``total`` gives the bar its
    length and an estimate of the time left; ``initial`` is where a resumed run starts."""
    if not wanted(progress):
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, initial=initial, delay=delay, unit=unit,
                dynamic_ncols=True)
