"""Resumable training loops: checkpoints of everything a run needs to go on as if never stopped.

    run = RunCheckpoint("runs/ud2m", every=100)      # or pt.ud2m.train(..., checkpoint="runs/ud2m")
    pt.ud2m.train(den, problem, xs, generator=g, checkpoint=run)

Every ``every`` steps (and at the last one) ``folder/last.pt`` is written through ``safe_io.write``
(checksummed, atomic; the one before kept as ``prev.pt``) with the run's settings, the state of
each part of the training (weights, optimisers, learning-rate schedules, loss curves), the state of
its generator (and of any others named in ``generators``, e.g. the one that draws the masks of a
general-operator run) and the step.  Called again with the same folder, the run resumes from the
newest readable checkpoint (``prev.pt`` when ``last.pt`` is damaged) and, as every draw comes
from the restored generators, ends with the weights of an uninterrupted run.

The module knows no method: a trainer hands ``bind`` its settings (a dict compared on resume) and
its parts (name -> (get, set) of a state), which are the method's own (UD2M's: ``checkpoint_settings``
and ``checkpoint_parts`` in ``trained/ud2m/run_state.py``).

A resume must have the settings the run started with; otherwise it is refused with the setting,
its old and new value (the saved sampler's config, and so its card, describes the whole run).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .safe import CheckpointError, changed_settings, content_sha256, read_latest, write

FORMAT = "posterior_tutor.run/1"


class RunCheckpoint:
    """Checkpoints of one training run in ``folder`` every ``every`` steps (see the module)."""

    def __init__(self, folder, every: int = 100, generators: dict | None = None):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"checkpoint_every must be a positive int, got {every!r}.")
        gens = dict(generators or {})
        for name, g in gens.items():
            if not isinstance(g, torch.Generator):
                raise TypeError(f"generators[{name!r}] must be a torch.Generator, got "
                                f"{type(g).__name__}.")
        self.folder, self.every, self.extra_generators = Path(folder), every, gens
        self.generators = dict(gens)
        self.parts, self.settings, self.wall_seconds = {}, {}, 0.0
        self.resumed_from = None   # (path, step) when the last ``resume`` found a checkpoint

    @property
    def path(self) -> Path:
        return self.folder / "last.pt"

    def bind(self, settings: dict, parts: dict, generator, what: str = "training") -> None:
        """What to save: ``settings`` (compared on resume), ``parts`` name -> (get, set) pairs
        of state, and the run's ``generator`` (required: it makes the resume exact)."""
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"{what} with a checkpoint needs generator= (a seeded "
                             "torch.Generator), so that a resumed run draws what the "
                             "uninterrupted one would.")
        self.settings, self.parts, self.what = dict(settings), dict(parts), what
        self.generators = {**self.extra_generators, "generator": generator}
        # the generator as the run starts: a resume with another seed is refused
        self.settings["generator_at_start"] = content_sha256(generator.get_state())[:16]
        self._t0 = time.perf_counter()

    def resume(self) -> int:
        """Restore the newest readable checkpoint (if any); returns the step to start at."""
        ckpt, used = read_latest(self.path)
        if ckpt is None:
            return 0
        if ckpt.get("format") != FORMAT:
            raise CheckpointError(f"{used} is not a training-run checkpoint (format "
                                  f"{ckpt.get('format')!r}); use another checkpoint folder.")
        self._check_settings(ckpt["settings"], used)
        missing = set(self.parts) - set(ckpt["state"])
        if missing:
            raise CheckpointError(f"{used} lacks {sorted(missing)}: it was written by another "
                                  "kind of run; use another checkpoint folder.")
        for name, (_, set_state) in self.parts.items():
            set_state(ckpt["state"][name])
        for name, g in self.generators.items():
            g.set_state(ckpt["generators"][name])
        self.wall_seconds = float(ckpt.get("wall", 0.0))
        self.resumed_from = (used, int(ckpt["step"]))
        return int(ckpt["step"])

    def _check_settings(self, saved: dict, path) -> None:
        diff = changed_settings(saved, self.settings)
        if diff:
            raise CheckpointError(
                f"{path} belongs to a {self.what} run started with other settings: "
                f"{'; '.join(diff)}. A resumed run must keep the settings it started with "
                "(generator_at_start: the generator's seed): resume with the same ones, or use "
                "another checkpoint folder to start a new run.")

    def step_done(self, step: int, total: int) -> None:
        """Call after step ``step`` (1-based count of steps done) of ``total``."""
        if step % self.every and step != total:
            return
        now = time.perf_counter()
        self.wall_seconds += now - self._t0
        self._t0 = now
        write({"format": FORMAT, "step": step, "settings": self.settings,
               "state": {name: get() for name, (get, _) in self.parts.items()},
               "generators": {name: g.get_state() for name, g in self.generators.items()},
               "wall": self.wall_seconds}, self.path, keep_previous=True)


def as_run_checkpoint(checkpoint, every: int) -> RunCheckpoint | None:
    """``checkpoint=`` of a trainer: None, a folder, or a RunCheckpoint."""
    if checkpoint is None or isinstance(checkpoint, RunCheckpoint):
        return checkpoint
    if isinstance(checkpoint, (str, Path)):
        return RunCheckpoint(checkpoint, every)
    raise TypeError(f"checkpoint must be a folder (str or Path) or a RunCheckpoint, got "
                    f"{type(checkpoint).__name__}.")
