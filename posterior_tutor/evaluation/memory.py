"""Measuring a sampler's memory: the tensors autograd saves, and the peak of a whole sampling call.

    mb = SavedForBackward().run(pt.iterate("dps", den, problem, y, n=1, steps=3))
    with PeakMemory("cpu") as mem: xs = pt.sample(...)        # mem.mb
    mb = peak_memory_fresh("sr4", "dps", 8)                    # one call in a new process

``SavedForBackward``: ``torch.autograd.graph.saved_tensors_hooks`` wraps every tensor autograd
saves for a backward pass in a holder whose deletion (when its graph is freed) gives the bytes
back, so ``peak`` is the largest amount alive at once.  It is the part of a sampler's peak memory
that differs between methods that share a network (weights and state are the same for all), it
counts on any device, and a few steps suffice (the graph of one step is freed before the next).
Chapter 05 uses it.

``PeakMemory``: the peak of a block.  CUDA: ``torch.cuda.max_memory_allocated`` (exact).  CPU: the
resident set above its level before the block, sampled every 2 ms by a watcher thread.  On the CPU
that reading is only honest in a fresh process: after a first method, PyTorch's allocator and malloc
keep freed memory and hand it to the next method without the resident set growing.  So
``peak_memory_fresh`` runs one sampling call (first held-out image, the row's number of samples,
fast-mode step counts: the peak is per step, not per run; a trained sampler's own weights count) in
a new Python process:

    python -m posterior_tutor.evaluation.memory --peak-memory TASK LABEL N DEVICE
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading

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


class PeakMemory:
    """Peak memory of a block: CUDA max allocated, or the CPU resident set above its start level."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.peak_bytes = 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        import psutil
        self._proc, self._stop = psutil.Process(), threading.Event()
        self.base = self._proc.memory_info().rss
        self._watch = threading.Thread(target=self._poll, daemon=True)
        self._watch.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.002):
            self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss - self.base)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self._stop.set()
            self._watch.join()
            self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss - self.base)
        return False

    @property
    def mb(self) -> float:
        return self.peak_bytes / 2 ** 20


def peak_memory_here(task: str, label: str, n: int, device="cpu") -> float:
    """Peak memory (MB) that the row ``label`` adds on ``task`` to a process holding the prior:
    building the method (a trained sampler's own weights) and one sampling call (first held-out
    image, n samples, fast-mode options).  Honest on the CPU only in a fresh process."""
    from .. import tasks
    from ..files.shipped import pretrained
    from .runners import method_runners, test_images
    den = pretrained("mnist", device=device)
    den.clip = 1.0
    x = test_images(1, den)[0][0].to(den.device)
    problem = tasks.image_problem(task, generator=torch.Generator().manual_seed(100))
    g = torch.Generator(device=den.device).manual_seed(0)
    y = problem.measure(x, generator=g)
    base = label.split(" (")[0].removeprefix("deepinv ")
    if label.startswith("deepinv "):
        from . import peer  # noqa: F401  (importing deepinv is not the sampler's memory)
    with PeakMemory(den.device) as mem:
        runners = method_runners(den, task, [base], fast=True, peer=label.startswith("deepinv "))
        if label not in runners:
            raise ValueError(f"no method {label!r} on task {task!r}; there are {sorted(runners)}.")
        runners[label](problem, y, n, g)
    return mem.mb


def peak_memory_fresh(task: str, label: str, n: int, device="cpu", timeout: float = 600) -> float:
    """``peak_memory_here`` in a new Python process (one torch thread, like the suite's runs)."""
    cmd = [sys.executable, "-m", "posterior_tutor.evaluation.memory", "--peak-memory", task, label,
           str(n), str(device)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"measuring the peak memory of {label!r} on {task!r} in a fresh "
                           f"process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def _main(argv) -> None:
    """The fresh process of ``peak_memory_fresh``: prints {"peak_mb": ...} as its last line."""
    usage = "usage: python -m posterior_tutor.evaluation.memory --peak-memory TASK LABEL N DEVICE"
    if len(argv) != 5 or argv[0] != "--peak-memory":
        sys.exit(usage)
    try:
        n = int(argv[3])
    except ValueError:
        sys.exit(f"{usage}\nN must be a whole number, got {argv[3]!r}")
    torch.set_num_threads(1)
    print(json.dumps({"peak_mb": peak_memory_here(argv[1], argv[2], n, argv[4])}))


if __name__ == "__main__":
    _main(sys.argv[1:])
