"""Run-time settings: the environment (fast mode, device: ``config``), progress bars
(``progress``) and training on several processes or in mixed precision (``distributed``)."""

from .lazy import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('config', 'progress', 'cli', 'lazy', 'distributed'))
