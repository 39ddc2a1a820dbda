"""Compatibility module: APS now lives in ``posterior_tutor/trained/aps/`` (``pt.aps``).

This module only re-exports the names it used to define, so ``from posterior_tutor import
amortized`` keeps working.  New code imports ``posterior_tutor.trained.aps``; the method, its
equations and departures are in that package's files, the measurements in ``docs/notes/aps.md``.
"""
from .trained.aps import *  # noqa: F401,F403
from .trained.aps import __all__  # noqa: F401
from .trained.aps import (FORMAT, PRIORS, TRAIN_OPTIONS, VECTOR_FLOWS, build_flow,  # noqa: F401
                          draw_times)
from .trained.aps.flows import std_normal_log_prob as _std_normal_log_prob  # noqa: F401
from .trained.aps.layers import (ActNorm, ChannelCoupling, CheckerboardCoupling,  # noqa: F401
                                 ConditionalAffine, Permute, Squeeze)
