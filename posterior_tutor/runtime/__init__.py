"""Run-time settings: the environment (fast mode, device: ``config``) and progress bars
(``progress``)."""

from .lazy import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('config', 'progress', 'cli', 'lazy'))
