"""Files the package writes and reads, and how it keeps them safe.

- ``safe``: checksummed, atomic writes; every read verified (``CheckpointError``);
- ``checkpoints``: reading checkpoints with ``weights_only``, sha256-checked against model cards;
- ``shipped``: the one table of everything shipped in data/ and its lookup (``pt.pretrained``);
- ``run_checkpoint``: resumable training runs that refuse other settings;
- ``recipes``: training recipes as files (``--recipe``);
- ``stored``: the chapters' stored heavy runs (``pt.files.stored.run``).
"""

_SUBMODULES = ('safe', 'checkpoints', 'run_checkpoint', 'recipes', 'stored')


def __getattr__(name):  # submodules load on first use: pt.files.stored
    import importlib
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
