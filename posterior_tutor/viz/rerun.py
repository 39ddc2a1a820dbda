"""Running the sampler again from a stepper: seed box, drop-downs, "run" and "new seed".

``Stepper(steps, rerun=f, rerun_params={...})`` gets these controls from ``RerunControls``.
"run" calls ``f(seed, **params)`` with the seed and the drop-downs' values as shown, "new seed"
with seed + 1, and picking another value in a drop-down (a knob) runs with the seed shown;
``Stepper.rerun(seed, **params)`` does the same from code.  ``f`` returns new steps, or a dict
``{"steps": ..., "density": ..., "y": ..., "residual_fn": ...}`` when the run changed the
picture's context (a new noise level measures a new y).  The frames are replaced and the
player goes back to frame 0.
"""
from __future__ import annotations


class RerunControls:
    """The re-run half of ``Stepper`` (a mixin: it uses the Stepper's frames and player)."""

    def _build_rerun_controls(self, w, seed, rerun_params, rerun_values=None):
        """The seed box, one drop-down per rerun parameter (changing one runs again), "run",
        "new seed" and a status."""
        self.seed_box = w.IntText(value=0 if seed is None else int(seed), description="seed",
                                  layout=w.Layout(width="150px"))
        self.seed_box.add_class("pt-stepper-seed")
        for name, choices in (rerun_params or {}).items():
            opts = _options(name, choices)
            value = _selected(opts, (rerun_values or {}).get(name, opts[0][1]))
            wd = w.Dropdown(options=opts, value=value, description=name,
                            layout=w.Layout(width="240px"),
                            style={"description_width": "initial"})
            wd.add_class("pt-stepper-knob")
            wd.observe(self._param_changed, names="value")
            self.param_widgets[name] = wd
        self._syncing = False
        self.rerun_button = w.Button(description="↻ run", layout=w.Layout(width="70px"),
                                     tooltip="run the sampler again with this seed")
        self.new_seed_button = w.Button(description="new seed", layout=w.Layout(width="90px"),
                                        tooltip="seed + 1, then run")
        self.rerun_button.on_click(lambda _: self._rerun_clicked(0))
        self.new_seed_button.on_click(lambda _: self._rerun_clicked(1))
        return w.HBox([self.seed_box, *self.param_widgets.values(), self.rerun_button,
                       self.new_seed_button, self.status])

    # re-running
    def _param_changed(self, change):
        """A drop-down was changed by hand: run again with the seed shown."""
        if not self._syncing:
            self._rerun_clicked(0)

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
        params = self._complete_params(params)
        out = self._rerun_fn(seed, **params)
        steps, density, y, residual_fn = self._unpack(out)
        self._set_frames(steps, density, y, residual_fn)
        self.seed = seed
        self._reset_controls(seed, params)
        return self

    def _complete_params(self, params: dict) -> dict:
        """``params`` checked against the drop-downs' choices, the missing ones from them."""
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
        return params

    def _unpack(self, out):
        """(steps, density, y, residual_fn) from what ``rerun`` returned (steps or a dict)."""
        if not isinstance(out, dict):
            return out, self.density, self.y, self.residual_fn
        if "steps" not in out:
            raise ValueError("rerun returned a dict without 'steps'.")
        return (out["steps"], out.get("density", self.density), out.get("y", self.y),
                out.get("residual_fn", self.residual_fn))

    def _reset_controls(self, seed: int, params: dict):
        """Back to frame 0 with the new length; the seed box and drop-downs show this run."""
        last = len(self.frames) - 1
        if hasattr(self.play, "playing"):
            self.play.playing = False
        self.play.value = 0                                # the link moves the slider too
        self.slider.max = self.play.max = last
        self.seed_box.value = seed
        self._syncing = True                               # no re-run from these assignments
        try:
            for k, wd in self.param_widgets.items():
                wd.value = _selected(wd.options, params[k])
        finally:
            self._syncing = False
        self._refresh()


def _options(name: str, choices) -> list:
    """A drop-down's (label, value) pairs from a list of values or a dict label -> value."""
    opts = list(choices.items()) if isinstance(choices, dict) else \
        [(f"{v:g}" if isinstance(v, float) else str(v), v) for v in choices]
    if not opts:
        raise ValueError(f"rerun_params[{name!r}] has no choices.")
    return opts


def _selected(opts, value):
    """The drop-down value among ``opts`` that is (or equals) ``value``."""
    for _, v in opts:
        if value is v or _same(value, v):
            return v
    raise ValueError(f"{value!r} is not one of the choices {[v for _, v in opts]}.")


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:                                      # e.g. tensors of other shapes
        return False
