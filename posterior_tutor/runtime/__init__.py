"""Run-time settings: the environment (fast mode, device: ``config``) and progress bars
(``progress``)."""

_SUBMODULES = ('config', 'progress', 'cli')


def __getattr__(name):  # submodules load on first use: pt.runtime.cli
    import importlib
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
