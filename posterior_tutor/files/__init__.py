"""Files the package writes and reads, and how it keeps them safe.

- ``safe``: checksummed, atomic writes; every read verified (``CheckpointError``);
- ``checkpoints``: reading checkpoints with ``weights_only``, sha256-checked against model cards;
- ``shipped``: the one table of everything shipped in data/ and its lookup (``pt.pretrained``);
- ``run_checkpoint``: resumable training runs that refuse other settings;
- ``recipes``: training recipes as files (``--recipe``);
- ``stored``: the chapters' stored heavy runs (``pt.files.stored.run``);
- ``resources``: where the shipped files are, in a checkout and in an installed wheel (``root``).
"""

from ..runtime.lazy import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('safe', 'checkpoints', 'run_checkpoint', 'recipes', 'stored',
                                         'shipped', 'resources'))
