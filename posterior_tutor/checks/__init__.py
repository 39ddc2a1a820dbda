"""Input checks shared by every sampler and trainer.

- ``values``: tensors and generators (dtype rule, finiteness, positive counts, devices);
- ``options``: one declarative check per option (type, range, finiteness), at the call.
"""

_SUBMODULES = ('values', 'options')


def __getattr__(name):  # submodules load on first use: pt.checks.options
    import importlib
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
