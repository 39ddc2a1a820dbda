"""Drawing one frame of a sampler run with matplotlib (no widgets here).

Two pictures cover every sampler in the package:

* ``render_2d(step, density=...)``  for 2D toy problems: the particles ``step.x``, their x0
  estimates, the data-consistency correction as arrows from the pre-correction point, and the
  50/90/99% contours of an exact posterior density (evaluated once on a grid and cached).
* ``render_image(step, ...)``       for images: rows of x_t, the x0 estimate and the data
  residual A(x0) - y, with y in front when it is an image.

Around them: ``sample_strip(x)`` draws one row of samples (the spread of a posterior shows as
the differences along the row), ``filmstrip(steps)`` a few frames side by side (a static figure
for notebooks exported to HTML), ``limits_2d(steps)`` (in ``density.py``) fixed axis limits so frames do
not jump, and ``figure_to_png(fig)`` the PNG bytes a widget displays.

The render functions are pure: each builds a fresh ``matplotlib.figure.Figure`` (not registered
with pyplot, so it never shows up by accident in a notebook) from the step alone.  ``filmstrip``
uses pyplot so that ``plt.show()`` displays it.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
import torch
from matplotlib.figure import Figure

from .density import _density_grid, _hpd_levels, limits_2d
from .steps import _auto_view, _correction_origin, _extras, _full_title, _np, _pick, _step_info

__all__ = ["render_2d", "render_image", "sample_strip", "figure_to_png", "filmstrip", "limits_2d"]

DPI = 100
_POINT_COLOUR = "C0"
_X0_COLOUR = "C1"
_ARROW_COLOUR = "C3"
_MAX_ARROWS = 60          # a few arrows show the field; all of them hide the points

# -- 2D view ------------------------------------------------------------------------------------
def _draw_2d(ax, step, density=None, xlim=None, ylim=None, show_x0=True, show_correction=True):
    x = _np(step.x)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"the 2D view needs states of shape (n, 2), got {tuple(step.x.shape)}.")
    x = x[:, :2]
    if xlim is None or ylim is None:
        lx, ly = limits_2d([step], density)
        xlim = xlim if xlim is not None else lx
        ylim = ylim if ylim is not None else ly
    if density is not None:
        X, Y, P = _density_grid(density, xlim, ylim)
        levels = _hpd_levels(P)
        if len(levels) >= 1:
            ax.contour(X, Y, P, levels=levels, colors="0.35", linewidths=0.9)
    size, label = _weight_sizes(step, x.shape[0])
    ax.scatter(x[:, 0], x[:, 1], s=size, c=_POINT_COLOUR, alpha=0.6, lw=0, label=label)
    x0 = getattr(step, "x0", None)
    if show_x0 and x0 is not None:
        x0 = _np(x0).reshape(x.shape[0], -1)[:, :2]
        ax.scatter(x0[:, 0], x0[:, 1], s=6, c=_X0_COLOUR, alpha=0.6, lw=0, label="x0 estimate")
    if show_correction:
        start, corr = _correction_origin(step, _np(step.x).reshape(x.shape[0], -1))
        if corr is not None:
            k = min(_MAX_ARROWS, start.shape[0])
            ax.quiver(start[:k, 0], start[:k, 1], corr[:k, 0], corr[:k, 1], angles="xy",
                      scale_units="xy", scale=1.0, color=_ARROW_COLOUR, width=0.003,
                      alpha=0.7, label="correction")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.tick_params(labelsize=7)
    legend = ax.legend(loc="upper right", fontsize=6, markerscale=2, framealpha=0.7)
    for handle in legend.legend_handles:     # one legend size, whatever the weights
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([12])


def _weight_sizes(step, n: int):
    """Marker sizes and legend label: proportional to the particles' importance weights when the
    step carries one weight per point (``extras["weights"]``, SMC samplers; a particle of average
    weight gets the usual size 6: the weights of several systems each sum to 1), else 6."""
    w = _np(_extras(step).get("weights"))
    if w is None or w.size != n:
        return 6, "x (state)"
    w = w.ravel()
    return np.clip(6.0 * w * n / max(w.sum(), 1e-300), 0.5, 120.0), "x (size: weight)"


def render_2d(step, density=None, xlim=None, ylim=None, title=None, show_x0=True,
              show_correction=True, total: int | None = None, figsize=(4.2, 4.2)) -> Figure:
    """One frame of a 2D run.

    Particles ``step.x`` (blue), x0 estimates (orange), the data-consistency correction
    ``step.extras["correction"]`` as arrows from the pre-correction point (``x - correction``, or
    ``extras["before_correction"]`` when the sampler gives it), and the 50/90/99% contours of
    ``density`` (any object with ``log_prob((n, 2)) -> (n,)``, e.g. an exact posterior
    ``GaussianMixture``; its grid evaluation is cached).  Pass fixed ``xlim``/``ylim`` so
    consecutive frames do not jump (``Stepper`` does).  The title is ``title`` (e.g. the method)
    over "step i/total, t, phase"."""
    fig = Figure(figsize=figsize, dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    _draw_2d(ax, step, density, xlim, ylim, show_x0, show_correction)
    ax.set_title(_full_title(step, title, total), fontsize=8)
    fig.tight_layout()
    return fig


# -- image view ---------------------------------------------------------------------------------
def _as_images(v) -> np.ndarray:
    """(n, C, H, W) or (n, H, W) -> (n, C, H, W) numpy."""
    a = _np(v)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"the image view needs states of shape (n, C, H, W), got {a.shape}.")
    return a


def _show_image(ax, img: np.ndarray):
    """Display one (C, H, W) image in [-1, 1]: grey for C=1, RGB for C=3 (clipped)."""
    ax.set_xticks([])
    ax.set_yticks([])
    if img.shape[0] == 3:
        ax.imshow(np.clip((np.transpose(img, (1, 2, 0)) + 1) / 2, 0, 1), interpolation="nearest")
    else:
        ax.imshow(img.mean(0) if img.shape[0] != 1 else img[0], cmap="gray", vmin=-1, vmax=1,
                  interpolation="nearest")


def _show_residual(ax, r: np.ndarray, vmax: float):
    ax.set_xticks([])
    ax.set_yticks([])
    if r.ndim == 3:
        ax.imshow(r.mean(0), cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    elif r.ndim == 2:
        ax.imshow(r, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    else:                                           # a measurement vector: draw it as bars
        r = r.ravel()
        ax.bar(np.arange(r.size), r, color="C3")
        ax.set_ylim(-vmax, vmax)


def _is_image(y) -> bool:
    return y is not None and (y.ndim == 2 or (y.ndim == 3 and y.shape[0] in (1, 3)))


def render_image(step, y=None, n_show=4, residual_fn: Callable | None = None, title=None,
                 total: int | None = None) -> Figure:
    """One frame of an image run: a row of x_t (the first ``n_show`` samples), a row of x0
    estimates (if the step has one) and a row of data residuals ``residual_fn(x0)`` (e.g.
    ``lambda x: problem.residual(x, y)``; red/blue, symmetric scale) when given.  If ``y`` is
    image-shaped it is shown in an extra first column.  Images in [-1, 1]: grey for C=1, RGB for
    C=3 (clipped to [-1, 1] then mapped to [0, 1])."""
    x = _as_images(step.x)
    n = min(int(n_show), x.shape[0])
    rows = [("x_t", x[:n])]
    x0t = getattr(step, "x0", None)
    if x0t is not None:
        rows.append(("x0 estimate", _as_images(x0t)[:n]))
    resid = None
    if residual_fn is not None:
        src = x0t if x0t is not None else step.x
        with torch.no_grad():
            resid = _np(residual_fn(src[:n]))
        rows.append(("residual", resid))
    yv = _np(y) if y is not None else None
    show_y = _is_image(yv)
    cols = n + (1 if show_y else 0)
    fig = Figure(figsize=(1.25 * cols + 0.3, 1.25 * len(rows) + 0.45), dpi=DPI)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        off = 1 if show_y else 0
        if label == "residual":
            vmax = float(np.nanmax(np.abs(imgs))) if np.isfinite(imgs).any() else 1.0
            vmax = vmax if vmax > 0 else 1.0
        for c in range(n):
            ax = axes[r, c + off]
            if label == "residual":
                _show_residual(ax, imgs[c], vmax)
            else:
                _show_image(ax, imgs[c])
        axes[r, off].set_ylabel(label, fontsize=7)
        if show_y:
            ax = axes[r, 0]
            if r == 0:
                _show_image(ax, yv if yv.ndim == 3 else yv[None])
                ax.set_title("y", fontsize=7)
            else:
                ax.axis("off")
    fig.suptitle(_full_title(step, title, total), fontsize=8)
    fig.tight_layout()
    return fig


def sample_strip(x, n_show: int = 8, title: str | None = None, y=None) -> Figure:
    """One row of samples: ``x`` is a batch of images (n, C, H, W) (or a step, whose ``x0``
    estimate is used when it has one, else its state), e.g. the final samples of a run.  If ``y``
    is image-shaped it is shown first.  The spread of a posterior shows up as the differences
    along the strip."""
    if not isinstance(x, torch.Tensor) and hasattr(x, "x"):
        x = x.x0 if getattr(x, "x0", None) is not None else x.x
    imgs = _as_images(x)
    n = max(1, min(int(n_show), imgs.shape[0]))
    yv = _np(y) if y is not None else None
    show_y = _is_image(yv)
    cols = n + (1 if show_y else 0)
    fig = Figure(figsize=(1.1 * cols + 0.2, 1.45 if title else 1.25), dpi=DPI)
    axes = fig.subplots(1, cols, squeeze=False)[0]
    if show_y:
        _show_image(axes[0], yv if yv.ndim == 3 else yv[None])
        axes[0].set_title("y", fontsize=7)
    for c in range(n):
        _show_image(axes[c + (1 if show_y else 0)], imgs[c])
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def figure_to_png(fig, dpi: int | None = None) -> bytes:
    """PNG bytes of ``fig``; closes the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi)
    if getattr(fig.canvas, "manager", None) is not None:     # a pyplot figure: release it
        import matplotlib.pyplot as plt
        plt.close(fig)
    return buf.getvalue()


# -- static figure of a few frames -------------------------------------------------------------
def filmstrip(steps, idx=(0, -1), density=None, title=None, view="auto", n_show=4):
    """A static pyplot figure of a few frames side by side (first and last by default), so a
    notebook exported to HTML still shows the run: call ``plt.show()`` after it."""
    import matplotlib.pyplot as plt
    frames = list(steps)
    if not frames:
        raise ValueError("filmstrip needs at least one step.")
    chosen = _pick(frames, idx)
    total = frames[-1].i if hasattr(frames[-1], "i") else len(frames) - 1
    view = _auto_view(frames[0]) if view == "auto" else view
    if view == "2d":
        xlim, ylim = limits_2d(frames, density)
        fig, axes = plt.subplots(1, len(chosen), figsize=(3.4 * len(chosen), 3.5), dpi=DPI,
                                 squeeze=False)
        for ax, s in zip(axes[0], chosen):
            _draw_2d(ax, s, density, xlim, ylim)
            ax.set_title(_step_info(s, total), fontsize=8)
    elif view == "image":
        rows = []
        for s in chosen:
            rows.append(("x_t", s, _as_images(s.x)))
            if getattr(s, "x0", None) is not None:
                rows.append(("x0", s, _as_images(s.x0)))
        n = min(n_show, rows[0][2].shape[0])
        fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n + 1.2, 1.3 * len(rows)),
                                 dpi=DPI, squeeze=False)
        for r, (label, s, imgs) in enumerate(rows):
            for c in range(n):
                _show_image(axes[r, c], imgs[c])
            axes[r, 0].set_ylabel(f"{label}\n{_step_info(s, total)}".replace("  ·  ", "\n"),
                                  fontsize=6)
    else:
        raise ValueError(f"view must be '2d', 'image' or 'auto', got {view!r}.")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
