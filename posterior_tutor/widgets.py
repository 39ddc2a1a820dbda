"""Step-through viewers for notebooks: the old name of ``posterior_tutor.viz``, kept so that
users' code (``pt.widgets.step_through(...)``, ``from posterior_tutor import widgets``) keeps
working.  Everything lives in ``posterior_tutor/viz/``: ``render.py`` draws a frame with
matplotlib, ``stepper.py`` is the ipywidgets player, ``step_through.py`` runs a sampler into one.
New code can use either name; both give the same objects.
"""
from .viz.render import (DPI, GRID_RES, _as_images, _density_grid, _draw_2d,  # noqa: F401
                         _hpd_levels, _is_image, _show_image, _show_residual, figure_to_png,
                         filmstrip, limits_2d, render_2d, render_image, sample_strip)
from .viz.rerun import _same  # noqa: F401
from .viz.step_through import _thin, _with_nfe, step_through  # noqa: F401
from .viz.stepper import Stepper
from .viz.steps import (_auto_view, _correction_origin, _detach, _extras,  # noqa: F401
                        _full_title, _np, _pick, _step_info)

__all__ = ["render_2d", "render_image", "sample_strip", "figure_to_png", "Stepper", "filmstrip",
           "step_through", "limits_2d"]
