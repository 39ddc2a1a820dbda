"""Step-through viewers for notebooks.

Every zero-shot sampler yields ``Step`` records (see ``samplers/base.py``); this module draws them.

* ``render_2d(step, density=...)``  particles, x0 estimates, the data-consistency correction as
  arrows and the contours of an exact posterior density, for 2D toy problems.
* ``render_image(step, ...)``       rows of x_t, the x0 estimate and the data residual, for images.
* ``figure_to_png(fig)``            PNG bytes of a figure (and closes it).
* ``Stepper(steps, ...)``           Play, a slider and Prev/Next buttons over the frames of a run;
  frames are rendered lazily (one small PNG each) and cached, so dragging stays smooth.
* ``filmstrip(steps)``              a static figure of the first and last frame, for notebooks
  exported to HTML where widgets do not run.
* ``step_through(name, den, prob, y, ...)``  runs ``posterior_tutor.iterate`` and builds a Stepper.

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
import io
import types
from typing import Callable, Iterable

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["render_2d", "render_image", "figure_to_png", "Stepper", "filmstrip", "step_through",
           "limits_2d"]

DPI = 80
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
    """Play / slider / Prev / Next over the steps of one run.

    ``steps`` is consumed once; detached CPU copies are kept in ``.frames``.  ``view`` is "2d",
    "image" or "auto" (2d for states of shape (n, 2)).  ``density`` (2D) draws exact posterior
    contours; ``y`` and ``residual_fn`` feed the image view.  Frames are rendered on demand and
    cached as PNG bytes.  Display it by leaving it as the last line of a cell (or ``.widget``).
    The Play button and the slider are linked in the kernel (``ipywidgets.link``)."""

    def __init__(self, steps, view="auto", density=None, y=None, residual_fn=None, title="",
                 n_show=4, interval=250):
        import ipywidgets as w

        self.frames = [_detach(s) for s in steps]
        if not self.frames:
            raise ValueError("Stepper needs at least one step (the iterator was empty).")
        if view not in ("auto", "2d", "image"):
            raise ValueError(f"view must be '2d', 'image' or 'auto', got {view!r}.")
        self.view = _auto_view(self.frames[0]) if view == "auto" else view
        if self.view == "2d" and density is not None:
            d = getattr(density, "d", 2)
            if d != 2:
                raise ValueError(f"density has dimension {d}; the 2D view needs a 2D density.")
        self.density, self.y, self.residual_fn = density, y, residual_fn
        self.title, self.n_show = title, n_show
        self.total = getattr(self.frames[-1], "i", len(self.frames) - 1)
        self._cache: dict[int, bytes] = {}
        if self.view == "2d":
            self.xlim, self.ylim = limits_2d(self.frames, density)
        else:
            self.xlim = self.ylim = None

        last = len(self.frames) - 1
        self.play = w.Play(value=0, min=0, max=last, step=1, interval=interval,
                           description="play", repeat=False)
        self.slider = w.IntSlider(value=0, min=0, max=last, step=1, description="frame",
                                  continuous_update=True, readout=True,
                                  layout=w.Layout(width="360px"))
        self._link = w.link((self.play, "value"), (self.slider, "value"))
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="70px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="70px"))
        self.prev_button.on_click(lambda _: self._move(-1))
        self.next_button.on_click(lambda _: self._move(+1))
        self.label = w.Label()
        self.image = w.Image(format="png", value=self.frame_png(0))
        self._update_label(0)
        self.slider.observe(self._on_slider, names="value")
        controls = w.HBox([self.play, self.prev_button, self.slider, self.next_button])
        self.widget = w.VBox([controls, self.label, self.image])

    # rendering
    def render(self, i: int) -> Figure:
        """The figure of frame ``i`` (not cached)."""
        s = self.frames[i]
        if self.view == "2d":
            return render_2d(s, self.density, self.xlim, self.ylim, title=self.title or None,
                             total=self.total)
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
        self.label.value = f"frame {i}/{len(self.frames) - 1}  ·  " + _step_info(s, self.total)

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

    # display
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    def __repr__(self):
        return f"Stepper({len(self.frames)} frames, view={self.view!r}, title={self.title!r})"


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
                 view="auto", n_show=4, residual=True, **options) -> Stepper:
    """Run ``posterior_tutor.iterate(name, den, prob, y, n=n, generator=generator, **options)``
    and return a Stepper over every ``every``-th step plus the last.

    n        : number of samples (default 300 for vectors, 4 for images)
    density  : for 2D runs, an object with ``log_prob`` whose contours are drawn; "exact" uses the
               exact posterior ``den.gmm.posterior(prob, y)`` of a Gaussian-mixture prior
    residual : for image runs, show A(x0) - y (needs prob and y)"""
    import posterior_tutor as pt

    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}.")
    if n is None:
        shape = getattr(den, "shape", None)
        n = 300 if shape is not None and len(shape) == 1 else 4
    if isinstance(density, str):
        if density != "exact":
            raise ValueError(f"density must be None, 'exact' or an object with log_prob, "
                             f"got {density!r}.")
        gmm = getattr(den, "gmm", None)
        if gmm is None or prob is None or y is None:
            raise ValueError("density='exact' needs a Gaussian-mixture denoiser (den.gmm), "
                             "an InverseProblem and y.")
        density = gmm.posterior(prob, y)
    steps = pt.iterate(name, den, prob, y, n=n, generator=generator, **options)
    residual_fn = None
    if residual and prob is not None and y is not None:
        residual_fn = lambda x: prob.residual(x.to(y.device, y.dtype), y).cpu()  # noqa: E731
    return Stepper(_thin(steps, every, den), view=view, density=density,
                   y=None if y is None else y.detach().cpu(), residual_fn=residual_fn,
                   title=title if title is not None else name, n_show=n_show)
