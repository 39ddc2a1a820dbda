"""Compatibility module: UD2M's noise bookkeeping ("ours" / "code") now lives in
``posterior_tutor/trained/ud2m/presets.py``; this module re-exports it so that
``from posterior_tutor import ud2m_presets`` keeps working.
"""
from .trained.ud2m.presets import (CODE_INPAINTING_FACTOR, DEPARTURES, PARTS, PRESETS,  # noqa: F401
                                   check_preset, ddim_step, noise_scale, sigma_primes, uses_code)
