"""Compatibility module: UD2M now lives in ``posterior_tutor/trained/ud2m/`` (``pt.ud2m``).

This module only re-exports the names it used to define (public and the private ones older code
and tests import), so ``from posterior_tutor import unfolding`` keeps working.  New code imports
``posterior_tutor.trained.ud2m``; the method, its equations and departures are in that package's
files, the measurements behind its defaults in ``docs/notes/ud2m.md``.
"""
from .samplers.diffusion import initial_noise  # noqa: F401  (tests used it from here)
from .trained.ud2m import *  # noqa: F401,F403
from .trained.ud2m import __all__  # noqa: F401
from .trained.ud2m.adapters import (AdaptedDenoiser, LoRA, ResidualMLP, merged_layer,  # noqa: F401
                                    _adaptable)
from .trained.ud2m.block import BlockStep, block_levels, initial_estimate  # noqa: F401
from .trained.ud2m.checks import (check_calls as _check_calls,  # noqa: F401
                                  check_lpips as _check_lpips,
                                  check_objects as _check_objects,
                                  check_training_inputs as _check_training_inputs,
                                  y_width as _y_width)
from .trained.base import y_as_image  # noqa: F401
from .trained.ud2m.discriminator import discriminator_features, discriminator_loss  # noqa: F401
from .trained.ud2m.losses import (_gen_device, draw_time, measure_batch,  # noqa: F401
                                  problem_for_batch, sampler_loss)
from .trained.ud2m.sampler import FORMAT, SHIPPED, _plain  # noqa: F401
from .trained.ud2m.train import (_IMAGE_DEFAULTS, _VECTOR_DEFAULTS, TRAIN_OPTIONS,  # noqa: F401
                                 _fit, continue_from)
