"""The memory a sampler's backward passes hold: peak bytes of the tensors autograd saves.

    mb = SavedForBackward().run(pt.iterate("dps", den, prob, y, n=1, steps=3))

``torch.autograd.graph.saved_tensors_hooks`` wraps every tensor autograd saves for a backward pass
in a holder whose deletion (when its graph is freed) gives the bytes back, so ``peak`` is the
largest amount alive at once.  It is the part of a sampler's peak memory that differs between
methods that share a network (weights and state are the same for all), it counts on any device,
and a few steps suffice (the graph of one step is freed before the next).  Chapter 04 uses it.
"""
from __future__ import annotations

import torch


class SavedForBackward:
    """Peak bytes (``peak``) of the tensors autograd holds for backward passes during ``run``."""

    class Held:
        def __init__(self, owner, t):
            self.owner, self.t, self.nbytes = owner, t, t.numel() * t.element_size()
            owner.live += self.nbytes
            owner.peak = max(owner.peak, owner.live)

        def __del__(self):
            self.owner.live -= self.nbytes

    def __init__(self):
        self.live, self.peak = 0, 0

    def run(self, steps) -> float:
        """Run an iterator of steps under the hooks; returns the peak in MB."""
        with torch.autograd.graph.saved_tensors_hooks(lambda t: self.Held(self, t), lambda h: h.t):
            for _ in steps:
                pass
        return self.peak / 2 ** 20
