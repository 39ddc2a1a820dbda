"""The stepper: an ipywidgets player over the frames of one sampler run.

``Stepper(steps)`` keeps a CPU copy of every step and shows one frame at a time: Play, a slider
and Prev/Next buttons move through them, and each frame is drawn by ``render.py`` the first time
it is shown and cached as a small PNG, so dragging stays smooth.  The 2D view adds check boxes that
switch the x0 estimates, the correction arrows and the posterior contours on and off.

Given ``rerun=f`` it also has a seed box, a "run" and a "new seed" button (and drop-downs for
extra parameters such as the noise level, the operator or a method's knob, which run again when
changed) that call ``f(seed, **params)`` and replace the frames.  Displayed in a notebook it
leaves a collapsed ``<details>`` block with its first and last frame as inline PNGs after the
widget, so a notebook exported to HTML (where no kernel moves the slider) still shows the run.
ipywidgets is imported only when a Stepper is built, so the rest of the package works without it.
"""
from __future__ import annotations

import base64
import html
from typing import Callable

from matplotlib.figure import Figure

from .rerun import RerunControls
from .render import figure_to_png, filmstrip, limits_2d, render_2d, render_image, sample_strip
from .steps import _auto_view, _detach, _pick, _step_info

__all__ = ["Stepper"]

_LAYERS = (("show_x0", "x0 estimates"), ("show_correction", "correction"),
           ("show_density", "contours"))


class Stepper(RerunControls):
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
                   and its first entry is the current one (e.g. ``{"sigma": [0.3, 0.1, 1.0]}``)
                   unless ``rerun_values`` names it.  Picking another value runs again at once
                   (the seed shown, the other drop-downs as shown).
    rerun_values : ``{name: value}``, the drop-downs' values for the first run (default: the
                   first choice of each).
    static       : "collapsed" (default), "open" or None: when the Stepper is displayed, a
                   ``<details>`` block with its first and last frame as inline PNGs follows the
                   widget, so that a notebook exported to HTML (where no kernel moves the slider)
                   still shows the run."""

    def __init__(self, steps, view="auto", density=None, y=None, residual_fn=None, title="",
                 n_show=4, interval=250, rerun: Callable | None = None, seed: int | None = None,
                 rerun_params: dict | None = None, static: str | None = "collapsed",
                 rerun_values: dict | None = None):
        import ipywidgets as w

        _check_arguments(view, static, rerun, rerun_params)
        self._view_arg, self.static = view, static
        self.title, self.n_show = title, n_show
        self.show_x0 = self.show_correction = self.show_density = True
        self._rerun_fn = rerun
        self.seed = seed
        self._set_frames(steps, density, y, residual_fn)
        rows = [self._build_player(w, interval)]
        self.layer_boxes = {}
        if self.view == "2d":
            rows.append(self._build_layer_boxes(w))
        self.seed_box = self.rerun_button = self.new_seed_button = None
        self.param_widgets: dict = {}
        self.status = w.Label()
        if rerun is not None:
            rows.append(self._build_rerun_controls(w, seed, rerun_params, rerun_values))
        self.widget = w.VBox([*rows, self.label, self.image])
        self.widget.add_class("pt-stepper")

    # building the controls
    def _build_player(self, w, interval: int):
        """Play, Prev, the slider and Next in one row; the label and the image below them."""
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
        return w.HBox([self.play, self.prev_button, self.slider, self.next_button])

    def _build_layer_boxes(self, w):
        """The 2D view's check boxes: x0 estimates, correction arrows, contours."""
        for key, desc in _LAYERS:
            box = w.Checkbox(value=True, description=desc, indent=False,
                             layout=w.Layout(width="130px"))
            box.observe(lambda ch, key=key: self._set_layer(key, ch["new"]), names="value")
            self.layer_boxes[key] = box
        return w.HBox(list(self.layer_boxes.values()))

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


def _check_arguments(view, static, rerun, rerun_params):
    if view not in ("auto", "2d", "image"):
        raise ValueError(f"view must be '2d', 'image' or 'auto', got {view!r}.")
    if static not in ("collapsed", "open", None):
        raise ValueError(f"static must be 'collapsed', 'open' or None, got {static!r}.")
    if rerun is not None and not callable(rerun):
        raise TypeError(f"rerun must be a callable rerun(seed, **params), got {rerun!r}.")
    if rerun_params and rerun is None:
        raise ValueError("rerun_params needs rerun= (the callable that uses them).")
