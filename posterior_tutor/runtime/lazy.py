"""Submodules that load on first use: ``pt.files.stored`` imports ``files/stored.py`` only when
it is asked for, so ``import posterior_tutor`` stays light.

    __getattr__ = lazy_submodules(__name__, ("safe", "stored"))    # in a package's __init__.py
"""
from __future__ import annotations

import importlib


def lazy_submodules(package: str, names):
    """A module-level ``__getattr__`` for ``package`` that imports the submodules ``names`` on
    first access and refuses any other name with the usual AttributeError."""
    names = frozenset(names)

    def __getattr__(name):
        if name in names:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
