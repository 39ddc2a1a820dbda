"""Input checks shared by every sampler and trainer.

- ``values``: tensors and generators (dtype rule, finiteness, positive counts, devices);
- ``options``: one declarative check per option (type, range, finiteness), at the call.
"""

from ..runtime.lazy import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('values', 'options'))
