"""Seeing a sampler work: frames of a run drawn with matplotlib and stepped through in a widget.

Every zero-shot sampler yields ``Step`` records (see ``samplers/base.py``); this package draws
them.  It is three layers, each usable alone:

* ``render.py``        matplotlib only: ``render_2d`` (particles, x0 estimates, the correction as
  arrows, exact posterior contours), ``render_image`` (rows of x_t, x0 estimate, data residual),
  ``sample_strip``, ``filmstrip``, ``limits_2d``, ``figure_to_png``.
* ``stepper.py``       ``Stepper``: the ipywidgets player over the frames (Play, slider, Prev/Next,
  layer check boxes), with ``rerun.py`` adding the seed box and the "run" / "new seed" buttons.
* ``step_through.py``  ``step_through(name, den, problem, y, ...)``: runs ``posterior_tutor.iterate``,
  thins the steps, records the NFE and builds a re-runnable Stepper.
* ``method_map.py``  ``method_map(rows)``: the course's map of the methods (what each puts in place
  of p(y | x_t), how it pays for data consistency), from ``pt.evaluation.properties.table()``.
* ``knobs.py``         ``step_through(..., knobs={"zeta": [0.1, 0.3, 1.0]})``: a method's option,
  or a choice among trained samplers, as a drop-down that runs the chain again when changed.

``step_through`` also takes a trained sampler (anything with ``.iterate(y, n, generator=,
problem=)``, e.g. ``pt.ud2m.pretrained(...)``) in place of a method name.  ``steps.py`` holds
the small helpers that read a ``Step`` (captions, CPU copies, the start of the correction
arrows).  ``posterior_tutor.viz`` is the same API under its older name.

    import posterior_tutor as pt
    gmm = pt.toy.ring_of_gaussians(); den = gmm.denoiser()
    problem = pt.InverseProblem(pt.operators.Matrix([[1.0, 0.5]]), 0.3)
    y = problem.measure(gmm.sample(1)[0])
    pt.viz.step_through("diffpir", den, problem, y, n=200, density="exact")
"""
from .render import figure_to_png, filmstrip, limits_2d, render_2d, render_image, sample_strip
from .step_through import step_through
from .stepper import Stepper
from . import method_map  # noqa: F401  (pt.viz.method_map.method_map)

__all__ = ["render_2d", "render_image", "sample_strip", "figure_to_png", "Stepper", "filmstrip",
           "step_through", "limits_2d"]
