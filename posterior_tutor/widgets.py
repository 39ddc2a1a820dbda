"""Step-through viewers for notebooks.

Every zero-shot sampler yields ``Step`` records (see ``samplers/base.py``); this module draws them.

* ``render_2d(step, density=...)``  particles, x0 estimates, the data-consistency correction as
  arrows and the contours of an exact posterior density, for 2D toy problems.
* ``render_image(step, ...)``       rows of x_t, the x0 estimate and the data residual, for images.
* ``figure_to_png(fig)``            PNG bytes of a figure (and closes it).
* ``sample_strip(x)``               one row of samples (e.g. the final samples of an image run).
* ``Stepper(steps, ...)``           Play, a slider and Prev/Next buttons over the frames of a run;
  frames are rendered lazily (one small PNG each) and cached, so dragging stays smooth.  With
  ``rerun=`` it also has a seed box and "run" / "new seed" buttons (and drop-downs for the noise
  level or the operator) that run the sampler again and replace the frames.  Displayed in a
  notebook it also leaves a static copy of its first and last frame (a collapsed ``<details>``
  block) so that a notebook exported to HTML still shows the run.
* ``filmstrip(steps)``              a static figure of the first and last frame, for notebooks
  exported to HTML where widgets do not run.
* ``step_through(name, den, prob, y, ...)``  runs ``posterior_tutor.iterate`` and builds a Stepper
  (re-runnable for a new seed, and for other noise levels / operators when ``x_true`` is given).

The render functions are pure: they build a fresh ``matplotlib.figure.Figure`` (not registered
with pyplot, so it never shows up by accident in a notebook) from the step alone.  ``filmstrip``
uses pyplot so that ``plt.show()`` displays it.

    import posterior_tutor as pt
    gmm = pt.toy.ring_of_gaussians(); den = gmm.denoiser()
    prob = pt.InverseProblem(pt.operators.Matrix([[1.0, 0.5]]), 0.3)
    y = prob.measure(gmm.sample(1)[0])
    pt.widgets.step_through("diffpir", den, prob, y, n=200, density="exact")
"""
from __future__ import annotations

import base64
import html
import io
import types
from typing import Callable, Iterable

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["render_2d", "render_image", "sample_strip", "figure_to_png", "Stepper", "filmstrip",
           "step_through", "limits_2d"]

DPI = 100
_POINT_COLOUR = "C0"
_X0_COLOUR = "C1"
_ARROW_COLOUR = "C3"
_MAX_ARROWS = 60          # a few arrows show the field; all of them hide the points


# -- small helpers ------------------------------------------------------------------------------
def _np(v) -> np.ndarray | None:
    if v is None:
        return None
    if isinstance(v, torch.Tensor):
        return v.detach().to("cpu", torch.float64).numpy()
    return np.asarray(v, dtype=np.float64)


def _detach(step, device="cpu"):
    """A CPU copy of a step with no autograd history (uses ``Step.detached`` when present)."""
    if hasattr(step, "detached"):
        return step.detached(device)
    mv = lambda v: v.detach().to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
    return types.SimpleNamespace(
        i=getattr(step, "i", 0), t=getattr(step, "t", None), x=mv(step.x),
        x0=mv(getattr(step, "x0", None)), phase=getattr(step, "phase", ""),
        extras={k: mv(v) for k, v in (getattr(step, "extras", None) or {}).items()})


def _extras(step) -> dict:
    return getattr(step, "extras", None) or {}


def _step_info(step, total: int | None = None) -> str:
    i = getattr(step, "i", None)
    parts = []
    if i is not None:
        parts.append(f"step {i}" + (f"/{total}" if total is not None else ""))
    t = getattr(step, "t", None)
    if isinstance(t, torch.Tensor):
        t = t.flatten()[0].item() if t.numel() else None
    if t is not None:
        parts.append(f"t={t:g}" if isinstance(t, float) else f"t={t}")
    phase = getattr(step, "phase", "")
    if phase:
        parts.append(str(phase))
    nfe = _extras(step).get("nfe")
    if nfe is not None:
        parts.append(f"NFE {int(nfe)}")
    return "  ·  ".join(parts)


def _full_title(step, title: str | None, total: int | None) -> str:
    info = _step_info(step, total)
    return f"{title}\n{info}" if title else info


def _correction_origin(step, x: np.ndarray):
    """Start points and vectors of the correction arrows, or (None, None).

    Samplers apply the correction either to the state (DPS: ``extras["before_correction"]`` +
    correction = x) or to the x0 estimate (DiffPIR, DAPS: ``extras["x0_prior"]`` / ``"x0_ode"`` +
    correction = x0).  The start is the recorded pre-correction point: ``before_correction``, else
    any other extra with extra + correction = x or x0, else ``x - correction``."""
    ex = _extras(step)
    corr = _np(ex.get("correction"))
    if corr is None:
        return None, None
    n = x.shape[0]
    corr = corr.reshape(n, -1)
    for key in ("before_correction", "pre_correction"):
        if ex.get(key) is not None:
            return _np(ex[key]).reshape(n, -1), corr
    targets = [x]
    if getattr(step, "x0", None) is not None:
        targets.insert(0, _np(step.x0).reshape(n, -1))
    for key, v in ex.items():
        if key == "correction" or not isinstance(v, torch.Tensor) or v.numel() != corr.size:
            continue
        v = _np(v).reshape(n, -1)
        for target in targets:
            tol = 1e-4 * (1.0 + np.abs(target).max())
            if np.allclose(v + corr, target, rtol=0.0, atol=tol):
                return v, corr
    return x - corr, corr


# -- 2D view ------------------------------------------------------------------------------------
_GRID_CACHE: dict = {}
_GRID_CACHE_SIZE = 16
GRID_RES = 120


def _density_grid(density, xlim, ylim, res: int = GRID_RES):
    """(X, Y, P) with P the density on a res x res grid; cached per (density, limits)."""
    key = (id(density), tuple(map(float, xlim)), tuple(map(float, ylim)), res)
    hit = _GRID_CACHE.get(key)
    if hit is not None and hit[0] is density:
        return hit[1]
    xs = np.linspace(xlim[0], xlim[1], res)
    ys = np.linspace(ylim[0], ylim[1], res)
    X, Y = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=torch.float64)
    with torch.no_grad():
        lp = density.log_prob(pts)
    lp = _np(lp).reshape(res, res)
    P = np.exp(lp - np.max(lp[np.isfinite(lp)], initial=-np.inf)) if np.isfinite(lp).any() \
        else np.zeros_like(lp)
    P = np.where(np.isfinite(P), P, 0.0)
    if len(_GRID_CACHE) >= _GRID_CACHE_SIZE:
        _GRID_CACHE.pop(next(iter(_GRID_CACHE)))
    _GRID_CACHE[key] = (density, (X, Y, P))
    return X, Y, P


def _hpd_levels(P: np.ndarray, masses=(0.99, 0.9, 0.5)) -> list[float]:
    """Density levels whose super-level sets hold the given probability masses (on the grid)."""
    flat = np.sort(P.ravel())[::-1]
    tot = flat.sum()
    if tot <= 0:
        return []
    cum = np.cumsum(flat) / tot
    levels = sorted({float(flat[min(np.searchsorted(cum, m), flat.size - 1)]) for m in masses})
    return [lv for lv in levels if lv > 0]


def limits_2d(steps: Iterable, density=None, pad: float = 0.08, q: float = 0.005):
    """Axis limits covering the particles and x0 estimates of all steps (robust quantiles, so a
    few diverging particles do not squash the picture) and the modes of ``density``."""
    pts = []
    for s in steps:
        x = _np(s.x).reshape(s.x.shape[0], -1)[:, :2]
        pts.append(x)
        if getattr(s, "x0", None) is not None:
            pts.append(_np(s.x0).reshape(s.x.shape[0], -1)[:, :2])
    if density is not None and getattr(density, "means", None) is not None:
        m = _np(density.means)
        if m.ndim == 2 and m.shape[1] == 2:
            pts.append(m)
    P = np.concatenate(pts, 0)
    P = P[np.isfinite(P).all(1)]
    if P.size == 0:
        return (-3.0, 3.0), (-3.0, 3.0)
    lo = np.quantile(P, q, axis=0)
    hi = np.quantile(P, 1 - q, axis=0)
    span = np.maximum(hi - lo, 1e-3)
    lo, hi = lo - pad * span, hi + pad * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


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
    ax.scatter(x[:, 0], x[:, 1], s=6, c=_POINT_COLOUR, alpha=0.6, lw=0, label="x (state)")
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
    ax.legend(loc="upper right", fontsize=6, markerscale=2, framealpha=0.7)


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
    ``lambda x: prob.residual(x, y)``; red/blue, symmetric scale) when given.  If ``y`` is
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


# -- static fallback ----------------------------------------------------------------------------
def _pick(frames: list, idx) -> list:
    m = len(frames)
    out = []
    for i in idx:
        j = i + m if i < 0 else i
        if not 0 <= j < m:
            raise IndexError(f"frame index {i} out of range for {m} frames.")
        out.append(frames[j])
    return out


def _auto_view(step) -> str:
    nd = step.x.ndim
    if nd == 2:
        if step.x.shape[1] < 2:
            raise ValueError(f"no view for states of shape {tuple(step.x.shape)} (need (n, 2)).")
        return "2d"
    if nd in (3, 4):
        return "image"
    raise ValueError(f"no view for states of shape {tuple(step.x.shape)}; "
                     "expected (n, 2) points or (n, C, H, W) images.")


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


# -- the interactive stepper --------------------------------------------------------------------
class Stepper:
    """Play / slider / Prev / Next over the steps of one run, optionally re-runnable.

    ``steps`` is consumed once; detached CPU copies are kept in ``.frames``.  ``view`` is "2d",
    "image" or "auto" (2d for states of shape (n, 2)).  ``density`` (2D) draws exact posterior
    contours; ``y`` and ``residual_fn`` feed the image view.  Frames are rendered on demand and
    cached as PNG bytes.  Display it by leaving it as the last line of a cell (or ``.widget``).
    The Play button and the slider are linked in the kernel (``ipywidgets.link``).  In the 2D view
    check boxes switch the x0 estimates, the correction arrows and the contours on and off.

    rerun        : optional ``rerun(seed, **params)`` that runs the sampler again and returns
                   either an iterable of steps or a dict ``{"steps": ..., "density": ..., "y":
                   ..., "residual_fn": ...}`` (the keys other than "steps" are optional and
                   replace the current ones, e.g. when the noise level changes y).  Adds a seed
                   box, a "run" button (seed and parameters as shown) and a "new seed" button
                   (seed + 1).  ``Stepper.rerun(seed, **params)`` does the same from code.
    seed         : the seed shown in the seed box (that of the first run, when known).
    rerun_params : ``{name: choices}`` for extra drop-downs whose values are passed to ``rerun``
                   as keyword arguments; ``choices`` is a list of values or a dict label -> value,
                   and its first entry is the current one (e.g. ``{"sigma": [0.3, 0.1, 1.0]}``).
    static       : "collapsed" (default), "open" or None: when the Stepper is displayed, a
                   ``<details>`` block with its first and last frame as inline PNGs follows the
                   widget, so that a notebook exported to HTML (where no kernel moves the slider)
                   still shows the run."""

    def __init__(self, steps, view="auto", density=None, y=None, residual_fn=None, title="",
                 n_show=4, interval=250, rerun: Callable | None = None, seed: int | None = None,
                 rerun_params: dict | None = None, static: str | None = "collapsed"):
        import ipywidgets as w

        if view not in ("auto", "2d", "image"):
            raise ValueError(f"view must be '2d', 'image' or 'auto', got {view!r}.")
        if static not in ("collapsed", "open", None):
            raise ValueError(f"static must be 'collapsed', 'open' or None, got {static!r}.")
        if rerun is not None and not callable(rerun):
            raise TypeError(f"rerun must be a callable rerun(seed, **params), got {rerun!r}.")
        if rerun_params and rerun is None:
            raise ValueError("rerun_params needs rerun= (the callable that uses them).")
        self._view_arg, self.static = view, static
        self.title, self.n_show = title, n_show
        self.show_x0 = self.show_correction = self.show_density = True
        self._rerun_fn = rerun
        self.seed = seed
        self._set_frames(steps, density, y, residual_fn)

        last = len(self.frames) - 1
        self.play = w.Play(value=0, min=0, max=last, step=1, interval=interval,
                           description="play", repeat=False)
        self.slider = w.IntSlider(value=0, min=0, max=last, step=1, description="frame",
                                  continuous_update=True, readout=True,
                                  layout=w.Layout(width="360px"))
        self.slider.add_class("pt-stepper-slider")
        self._link = w.link((self.play, "value"), (self.slider, "value"))
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="70px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="70px"))
        self.prev_button.on_click(lambda _: self._move(-1))
        self.next_button.on_click(lambda _: self._move(+1))
        self.label = w.Label()
        self.label.add_class("pt-stepper-label")
        self.image = w.Image(format="png", value=self.frame_png(0),   # natural size, not stretched
                             layout=w.Layout(align_self="flex-start", object_fit="contain"))
        self.image.add_class("pt-stepper-image")
        self._update_label(0)
        self.slider.observe(self._on_slider, names="value")
        rows = [w.HBox([self.play, self.prev_button, self.slider, self.next_button])]

        # 2D layers
        self.layer_boxes = {}
        if self.view == "2d":
            for key, desc in (("show_x0", "x0 estimates"), ("show_correction", "correction"),
                              ("show_density", "contours")):
                box = w.Checkbox(value=True, description=desc, indent=False,
                                 layout=w.Layout(width="130px"))
                box.observe(lambda ch, key=key: self._set_layer(key, ch["new"]), names="value")
                self.layer_boxes[key] = box
            rows.append(w.HBox(list(self.layer_boxes.values())))

        # re-run controls
        self.seed_box = self.rerun_button = self.new_seed_button = None
        self.param_widgets: dict = {}
        self.status = w.Label()
        if rerun is not None:
            self.seed_box = w.IntText(value=0 if seed is None else int(seed), description="seed",
                                      layout=w.Layout(width="150px"))
            self.seed_box.add_class("pt-stepper-seed")
            for name, choices in (rerun_params or {}).items():
                opts = list(choices.items()) if isinstance(choices, dict) else \
                    [(f"{v:g}" if isinstance(v, float) else str(v), v) for v in choices]
                if not opts:
                    raise ValueError(f"rerun_params[{name!r}] has no choices.")
                self.param_widgets[name] = w.Dropdown(options=opts, value=opts[0][1],
                                                      description=name,
                                                      layout=w.Layout(width="200px"))
            self.rerun_button = w.Button(description="↻ run", layout=w.Layout(width="70px"),
                                         tooltip="run the sampler again with this seed")
            self.new_seed_button = w.Button(description="new seed", layout=w.Layout(width="90px"),
                                            tooltip="seed + 1, then run")
            self.rerun_button.on_click(lambda _: self._rerun_clicked(0))
            self.new_seed_button.on_click(lambda _: self._rerun_clicked(1))
            rows.append(w.HBox([self.seed_box, *self.param_widgets.values(), self.rerun_button,
                                self.new_seed_button, self.status]))
        self.widget = w.VBox([*rows, self.label, self.image])
        self.widget.add_class("pt-stepper")

    # frames
    def _set_frames(self, steps, density, y, residual_fn):
        frames = [_detach(s) for s in steps]
        if not frames:
            raise ValueError("Stepper needs at least one step (the iterator was empty).")
        view = _auto_view(frames[0]) if self._view_arg == "auto" else self._view_arg
        if view == "2d" and density is not None:
            d = getattr(density, "d", 2)
            if d != 2:
                raise ValueError(f"density has dimension {d}; the 2D view needs a 2D density.")
        self.frames, self.view = frames, view
        self.density, self.y, self.residual_fn = density, y, residual_fn
        self.total = getattr(frames[-1], "i", len(frames) - 1)
        self._cache: dict[int, bytes] = {}
        if view == "2d":
            self.xlim, self.ylim = limits_2d(frames, density)
        else:
            self.xlim = self.ylim = None

    # rendering
    def render(self, i: int) -> Figure:
        """The figure of frame ``i`` (not cached)."""
        s = self.frames[i]
        if self.view == "2d":
            return render_2d(s, self.density if self.show_density else None, self.xlim,
                             self.ylim, title=self.title or None, show_x0=self.show_x0,
                             show_correction=self.show_correction, total=self.total)
        return render_image(s, self.y, self.n_show, self.residual_fn, title=self.title or None,
                            total=self.total)

    def frame_png(self, i: int) -> bytes:
        """PNG bytes of frame ``i``, rendered once and cached."""
        i = int(i)
        if i < 0:
            i += len(self.frames)
        png = self._cache.get(i)
        if png is None:
            png = self._cache[i] = figure_to_png(self.render(i))
        return png

    # interaction
    def _on_slider(self, change):
        i = int(change["new"])
        self.image.value = self.frame_png(i)
        self._update_label(i)

    def _update_label(self, i: int):
        s = self.frames[i]
        seed = f"  ·  seed {self.seed}" if self._rerun_fn is not None and self.seed is not None \
            else ""
        self.label.value = (f"frame {i}/{len(self.frames) - 1}  ·  " + _step_info(s, self.total)
                            + seed)

    def _refresh(self):
        i = int(self.slider.value)
        self.image.value = self.frame_png(i)
        self._update_label(i)

    def _set_layer(self, key: str, value: bool):
        setattr(self, key, bool(value))
        self._cache.clear()
        self._refresh()

    def _move(self, delta: int):
        self.slider.value = max(0, min(len(self.frames) - 1, int(self.slider.value) + delta))

    def show_frame(self, i: int):
        """Jump to frame ``i`` (negative counts from the end; clipped to the range)."""
        i = int(i)
        if i < 0:
            i += len(self.frames)
        self.slider.value = max(0, min(len(self.frames) - 1, i))

    @property
    def index(self) -> int:
        return int(self.slider.value)

    def __len__(self) -> int:
        return len(self.frames)

    # re-running
    def _rerun_clicked(self, seed_delta: int):
        seed = int(self.seed_box.value) + seed_delta
        params = {k: wd.value for k, wd in self.param_widgets.items()}
        self.status.value = "running…"
        try:
            self.rerun(seed, **params)
        except Exception as err:                           # shown next to the buttons
            self.status.value = f"failed: {type(err).__name__}: {err}"[:200]
            raise
        self.status.value = ""

    def rerun(self, seed: int | None = None, **params) -> "Stepper":
        """Run the sampler again (``rerun(seed, **params)`` given at construction), replace the
        frames and go back to frame 0.  ``seed`` defaults to the current seed + 1; ``params``
        default to the drop-downs' values.  Returns self."""
        if self._rerun_fn is None:
            raise RuntimeError("this Stepper was built without rerun=; it cannot run again.")
        if seed is None:
            seed = (self.seed if self.seed is not None else int(self.seed_box.value)) + 1
        seed = int(seed)
        unknown = set(params) - set(self.param_widgets)
        if unknown:
            raise TypeError(f"unknown rerun parameter(s) {sorted(unknown)}; this Stepper has "
                            f"{sorted(self.param_widgets)}.")
        for k, wd in self.param_widgets.items():
            if k in params:
                values = [v for _, v in wd.options]
                if not any(params[k] is v or _same(params[k], v) for v in values):
                    raise ValueError(f"{k}={params[k]!r} is not one of the choices {values}.")
            else:
                params[k] = wd.value
        out = self._rerun_fn(seed, **params)
        if isinstance(out, dict):
            if "steps" not in out:
                raise ValueError("rerun returned a dict without 'steps'.")
            density = out.get("density", self.density)
            y = out.get("y", self.y)
            residual_fn = out.get("residual_fn", self.residual_fn)
            out = out["steps"]
        else:
            density, y, residual_fn = self.density, self.y, self.residual_fn
        self._set_frames(out, density, y, residual_fn)
        self.seed = seed
        last = len(self.frames) - 1
        if hasattr(self.play, "playing"):
            self.play.playing = False
        self.play.value = 0                                # the link moves the slider too
        self.slider.max = self.play.max = last
        self.seed_box.value = seed
        for k, wd in self.param_widgets.items():
            for _, v in wd.options:
                if params[k] is v or _same(params[k], v):
                    wd.value = v
                    break
        self._refresh()
        return self

    def strip(self, i: int = -1, n_show: int = 8) -> Figure:
        """The samples of frame ``i`` (default the last: the final samples) in one row, with y
        first when it is an image (``sample_strip``); image runs only."""
        if self.view != "image":
            raise ValueError("strip() is for image runs; use filmstrip() for 2D runs.")
        return sample_strip(_pick(self.frames, [int(i)])[0], n_show=n_show, y=self.y,
                            title=self.title or None)

    # static fallback
    def filmstrip(self, idx=(0, -1)):
        return filmstrip(self.frames, idx, density=self.density, title=self.title or None,
                         view=self.view, n_show=self.n_show)

    def static_html(self, idx=(0, -1)) -> str:
        """HTML with the chosen frames as inline PNGs (works without a kernel)."""
        imgs = []
        for i in idx:
            b64 = base64.b64encode(self.frame_png(i)).decode("ascii")
            imgs.append(f'<img src="data:image/png;base64,{b64}" style="display:inline-block"/>')
        return "<div>" + "".join(imgs) + "</div>"

    def _static_block(self) -> str:
        """The ``<details>`` block displayed after the widget: first and last frame."""
        name = f"{self.title}: " if self.title else ""
        return (f'<details class="pt-stepper-static"{" open" if self.static == "open" else ""}>'
                f"<summary>{html.escape(name)}first and last frame (static copy, "
                f"{len(self.frames)} frames)</summary>{self.static_html()}</details>")

    # display
    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if self.static is not None and isinstance(bundle, dict):
            bundle = dict(bundle)
            bundle["text/html"] = self._static_block()     # for exports without widget state
        return bundle

    def _ipython_display_(self):
        from IPython.display import HTML, display
        display(self.widget)
        if self.static is not None:
            display(HTML(self._static_block()))

    def __repr__(self):
        return f"Stepper({len(self.frames)} frames, view={self.view!r}, title={self.title!r})"


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:                                      # e.g. tensors of other shapes
        return False


# -- convenience --------------------------------------------------------------------------------
def _thin(steps, every: int, nfe_source=None):
    """Every ``every``-th step plus the last one, detached, with the cumulative NFE recorded."""
    start = getattr(nfe_source, "nfe", None)
    nfe = (lambda: nfe_source.nfe - start) if start is not None else (lambda: None)  # noqa: E731
    pending = None                      # the latest step not kept yet (kept if it is the last)
    for k, s in enumerate(steps):
        if k % every == 0:
            pending = None
            yield _with_nfe(_detach(s), nfe())
        else:
            pending = (s, nfe())
    if pending is not None:
        yield _with_nfe(_detach(pending[0]), pending[1])


def _with_nfe(step, nfe):
    if nfe is not None:
        step.extras["nfe"] = nfe
    return step


def step_through(name, den, prob, y, n=None, generator=None, density=None, every=1, title=None,
                 view="auto", n_show=4, residual=True, rerunnable=True, x_true=None,
                 sigmas=None, operators=None, **options) -> Stepper:
    """Run ``posterior_tutor.iterate(name, den, prob, y, n=n, generator=generator, **options)``
    and return a Stepper over every ``every``-th step plus the last.

    n          : number of samples (default 300 for vectors, 4 for images)
    density    : for 2D runs, an object with ``log_prob`` whose contours are drawn; "exact" uses
                 the exact posterior ``den.gmm.posterior(prob, y)`` of a Gaussian-mixture prior
    residual   : for image runs, show A(x0) - y (needs prob and y)
    rerunnable : add the seed box and the "run" / "new seed" buttons (the same call with
                 ``generator=torch.Generator(device).manual_seed(seed)``; the first run's seed is
                 ``generator.initial_seed()``)
    x_true     : the clean signal that made y; with it, ``sigmas`` (noise levels) and
                 ``operators`` (a list of operators, or a dict label -> operator) add drop-downs,
                 and a re-run measures a new ``y = A x_true + sigma n`` from the seed (and
                 recomputes ``density="exact"``).  The first entry of each is the current
                 problem's, which is added in front when missing."""
    import posterior_tutor as pt

    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}.")
    if n is None:
        shape = getattr(den, "shape", None)
        n = 300 if shape is not None and len(shape) == 1 else 4
    exact = isinstance(density, str)
    if exact:
        if density != "exact":
            raise ValueError(f"density must be None, 'exact' or an object with log_prob, "
                             f"got {density!r}.")
        if getattr(den, "gmm", None) is None or prob is None or y is None:
            raise ValueError("density='exact' needs a Gaussian-mixture denoiser (den.gmm), "
                             "an InverseProblem and y.")

    def residual_for(p, yy):
        if residual and p is not None and yy is not None:
            return lambda x: p.residual(x.to(yy.device, yy.dtype), yy).cpu()
        return None

    def build(p, yy, g):
        dens = den.gmm.posterior(p, yy) if exact else density
        steps = pt.iterate(name, den, p, yy, n=n, generator=g, **options)
        return dict(steps=_thin(steps, every, den), density=dens,
                    y=None if yy is None else yy.detach().cpu(), residual_fn=residual_for(p, yy))

    rerun_fn = seed = params = None
    if rerunnable:
        if (sigmas or operators) and (x_true is None or prob is None):
            raise ValueError("sigmas= and operators= need x_true= (the clean signal, to measure "
                             "a new y) and an InverseProblem.")
        if generator is not None:
            gdev = generator.device
            seed = int(generator.initial_seed())
        else:
            gdev = y.device if y is not None else getattr(den, "device", torch.device("cpu"))
            if not isinstance(gdev, torch.device):
                gdev = torch.device("cpu")
        params = {}
        if sigmas:
            sig = [float(v) for v in sigmas]
            params["sigma"] = [prob.sigma] + [v for v in sig if v != prob.sigma]
        if operators:
            pairs = list(operators.items()) if isinstance(operators, dict) else \
                [(repr(op), op) for op in operators]
            current = [k for k, op in pairs if op is prob.operator]
            pairs = [(current[0] if current else repr(prob.operator), prob.operator)] + \
                [(k, op) for k, op in pairs if op is not prob.operator]
            ops = {}
            for label, op in pairs:                 # labels made unique (reprs can repeat)
                unique, k = label, 2
                while unique in ops:
                    unique, k = f"{label} ({k})", k + 1
                ops[unique] = op
            params["operator"] = ops

        def rerun(seed, sigma=None, operator=None):
            g = torch.Generator(device=gdev).manual_seed(int(seed))
            p, yy = prob, y
            if sigma is not None or operator is not None:
                p = pt.InverseProblem(operator if operator is not None else prob.operator,
                                      sigma if sigma is not None else prob.sigma)
                if p.sigma != prob.sigma or p.operator is not prob.operator:
                    yy = p.measure(x_true.to(gdev), generator=g)
            return build(p, yy, g)

        rerun_fn = rerun

    first = build(prob, y, generator)
    return Stepper(first["steps"], view=view, density=first["density"], y=first["y"],
                   residual_fn=first["residual_fn"],
                   title=title if title is not None else name, n_show=n_show,
                   rerun=rerun_fn, seed=seed, rerun_params=params or None)
