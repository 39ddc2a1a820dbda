"""Training on several processes (torchrun, DistributedDataParallel-style) and in mixed precision.

    torchrun --nproc_per_node=4 scripts/train_ud2m_mnist.py --task sr4 --out runs/sr4

Every trainer (the prior's ``priors/train.py``, ``pt.ud2m.train``, ``pt.aps.train``) splits one
*global* batch of B signals over the W processes that torchrun starts; the gradients are averaged
over the processes (an all-reduce, what DDP does), which is the gradient of the mean loss over
the global batch, so W processes take the step one process would take on the whole batch.

The samplers' trainers draw a step's batch as S *shards* of B / S signals (S = W by default), shard
s from its own generator seeded by (the run's seed, the step, s): process r draws and computes
shards r S/W .. (r+1) S/W - 1 only.  A run on one process with ``shards=S`` draws the same shards
and accumulates their gradients, so it trains the model W processes train (to float rounding:
tests/trained/test_distributed.py), and a resume needs no per-process generator state.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from ..checks.options import Choice, Int

__all__ = ["init", "rank", "world", "is_main", "barrier", "finish", "local_device",
           "check_divides", "shard_slice", "ShardPlan", "launched_world", "layout_error",
           "plan_shards", "average_gradients", "mean_across", "any_across", "broadcast_",
           "update", "resume", "add_arguments", "check_arguments", "check_precision", "autocast",
           "RUN_OPTIONS"]

RUN_OPTIONS = {   # the trainers' options for several processes and mixed precision
    "shards": Int(1, optional=True, hint="shards of the global batch (None: one per process)"),
    "precision": Choice("fp32", "bf16", hint="bf16: autocast to bfloat16, CUDA only")}


_LEFT = []   # non-empty once this process has left the group (finish): it goes on alone


def _dist():
    import torch.distributed as dist
    return dist if dist.is_available() and dist.is_initialized() else None


def world() -> int:
    """The number of processes (1 outside torchrun)."""
    d = _dist()
    return d.get_world_size() if d else 1


def rank() -> int:
    d = _dist()
    return d.get_rank() if d else 0


def is_main() -> bool:
    """Whether this process writes files (checkpoints, samplers, cards): rank 0 only."""
    return rank() == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name}={value!r} is not an integer; start "
                         "the processes with torchrun, which sets it.") from None


def init(device="cpu", exit_on_error: bool = False) -> tuple[int, int]:
    """(rank, world): joins the process group torchrun describes in the environment (WORLD_SIZE,
    RANK, MASTER_ADDR, MASTER_PORT), NCCL on CUDA, gloo on the CPU; (0, 1) outside torchrun.
    ``exit_on_error``: a bad environment ends the command with its one-line message."""
    try:
        return _init(device)
    except ValueError as err:
        if exit_on_error:
            raise SystemExit(f"error: {err}") from None
        raise


def _init(device) -> tuple[int, int]:
    import torch.distributed as dist
    size = _env_int("WORLD_SIZE", 1)
    if size > 1 and not dist.is_initialized() and not _LEFT:
        for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise ValueError(f"WORLD_SIZE={size} but {name} is not set: start the processes "
                                 "with torchrun (torchrun --nproc_per_node=N ...).")
        dist.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return rank(), world()


def barrier() -> None:
    if _dist():
        _dist().barrier()


def finish() -> None:
    """Leave the process group once training is done: what the process does next (rank 0's
    evaluation and files) it does alone, and ``init`` does not join again."""
    if _dist():
        _dist().destroy_process_group()
    _LEFT.append(True)


def local_device(device) -> torch.device:
    """``device``, with a bare "cuda" under torchrun made this process's GPU (cuda:LOCAL_RANK)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", _env_int("LOCAL_RANK", 0))
        torch.cuda.set_device(device)
    return device


def check_divides(batch: int, parts: int, what: str = "the number of processes") -> None:
    if batch % parts:
        raise ValueError(f"the global batch ({batch}) must be divisible by {what} ({parts}); "
                         f"give a batch that is a multiple of {parts}.")


def shard_slice(batch: int, r: int, parts: int) -> slice:
    """Process ``r``'s slice of a global batch of ``batch`` split in ``parts`` equal parts."""
    check_divides(batch, parts)
    return slice(r * batch // parts, (r + 1) * batch // parts)


@dataclass
class ShardPlan:
    """How one step's global batch is drawn: ``shards`` shards of ``shard_batch`` signals, this
    process drawing ``local`` of them, each from ``generator(step, shard)``."""
    base: int
    shards: int
    shard_batch: int
    local: range
    device: torch.device

    def generator(self, step: int, shard: int | None) -> torch.Generator:
        """Shard ``shard``'s generator at ``step``; ``None``: the one all processes share (what
        a step draws once for the whole global batch)."""
        s = 0 if shard is None else shard + 1
        seed = (self.base * 1_000_003 + step * 10_007 + s) % (2 ** 63 - 1)
        return torch.Generator(device=self.device).manual_seed(seed)


def launched_world() -> int:
    """The number of processes torchrun started (WORLD_SIZE; 1 without torchrun), known before
    the process group is joined (for a command's flag checks)."""
    return _env_int("WORLD_SIZE", 1)


def layout_error(batch: int, shards: int | None, w: int) -> str | None:
    """Why a global batch of ``batch`` cannot be drawn as ``shards`` shards on ``w`` processes
    (None: it can); ``shards`` None means one per process."""
    shards = w if shards is None else shards
    if shards % w:
        return (f"shards={shards} must be a multiple of the number of processes ({w}): each "
                "process draws shards/processes of them")
    if batch % shards:
        what = "the number of processes" if shards == w else "the number of shards"
        return (f"the global batch ({batch}) must be divisible by {what} ({shards}); give a "
                f"batch that is a multiple of {shards}")
    return None


def plan_shards(batch: int, shards: int | None, generator, what: str) -> ShardPlan | None:
    """None for one process with one shard (the trainer's plain loop, its draws unchanged);
    else the plan (its base seed drawn from ``generator``, rank 0's broadcast to all)."""
    w, r = world(), rank()
    shards = w if shards is None else shards
    if w == 1 and shards == 1:
        return None
    error = layout_error(batch, shards, w)
    if error:
        raise ValueError(f"{what}: {error}.")
    device = generator.device if generator is not None else torch.device("cpu")
    base = torch.randint(2 ** 62, (1,), generator=generator, device=device).cpu()
    broadcast_([base])
    per = shards // w
    return ShardPlan(int(base), shards, batch // shards, range(r * per, (r + 1) * per), device)


def _flat_reduce(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The mean over processes of each tensor (one all-reduce of their concatenation)."""
    d = _dist()
    if d is None or not tensors:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    if d.get_backend() == "nccl" and not flat.is_cuda:
        flat = flat.cuda()
    d.all_reduce(flat)
    flat = (flat / d.get_world_size()).to(tensors[0].device)
    return list(torch.split(flat, [t.numel() for t in tensors]))


def average_gradients(params) -> None:
    """Replace each parameter's gradient by its mean over the processes (no-op on one).  Every
    process runs the same code on its shards, so the same parameters have gradients on each."""
    params = [p for p in params if p.grad is not None]
    if _dist() is None or not params:
        return
    for p, g in zip(params, _flat_reduce([p.grad for p in params])):
        p.grad = g.view_as(p).to(p.dtype)


def mean_across(values: list[float]) -> list[float]:
    """The mean over processes of each number (each process's own values on one)."""
    if _dist() is None:
        return [float(v) for v in values]
    return _flat_reduce([torch.tensor([float(v) for v in values], dtype=torch.float64)])[0].tolist()


def any_across(flag: bool) -> bool:
    """Whether any process says so (e.g. its wall-time budget is spent): all stop together."""
    return max(mean_across([float(flag)])) > 0 if _dist() else bool(flag)


def broadcast_(tensors) -> None:
    """Copy rank 0's values into every process's ``tensors`` (in place)."""
    d = _dist()
    for t in tensors if d else ():
        buf = t.detach().cuda() if d.get_backend() == "nccl" and not t.is_cuda else t.detach()
        d.broadcast(buf, 0)       # in place when buf shares t's memory; else copied back
        with torch.no_grad():
            t.copy_(buf)


def update(opt, params, batches, cast, clip, loss_of) -> float:
    """One optimiser step on ``params``: the mean of ``loss_of(batch)`` over this process's
    ``batches`` (its shards), the gradients averaged over the processes, their norm clipped to
    ``clip`` (None: not clipped); returns this process's loss.  ``cast``: ``autocast(...)``."""
    params = list(params)
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for b in batches:
        with cast:
            loss = loss_of(b)
        if len(batches) > 1:
            loss = loss / len(batches)
        loss.backward()
        total += float(loss.detach())
    average_gradients(params)
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    return total


def resume(run) -> int:
    """The step a ``RunCheckpoint`` resumes at, on every process: rank 0 reads (and repairs) the
    checkpoint first, then the others read what it left; only rank 0 writes later."""
    start = run.resume() if is_main() else 0
    barrier()
    if not is_main():
        start = run.resume()
    barrier()
    return start


def add_arguments(p) -> None:
    """A training command's --shards and --precision flags (``check_arguments`` checks them)."""
    p.add_argument("--shards", type=int, default=None,
                   help="draw the global batch as this many shards (default: one per torchrun "
                        "process); one process with --shards W trains what W processes train")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: bfloat16 autocast in the forward passes (CUDA only)")


def check_arguments(p, a, batch: int) -> None:
    """Refuse, at parse time (``p.error``: one line, exit code 2), --shards or a --batch that do
    not fit the processes torchrun started, and --precision bf16 off CUDA."""
    if a.shards is not None and a.shards < 1:
        p.error(f"argument --shards: {a.shards} is not a positive integer")
    try:
        error = layout_error(batch, a.shards, launched_world())
    except ValueError as err:          # WORLD_SIZE is not a number
        p.error(str(err))
    if error:
        p.error(f"argument {'--batch' if 'global batch' in error else '--shards'}: {error}")
    device = a.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if a.precision == "bf16" and torch.device(device).type != "cuda":
        p.error(f"argument --precision: bf16 autocast runs on CUDA only and this run is on "
                f"{torch.device(device).type}; leave --precision at fp32")


def check_precision(precision: str, device, what: str) -> None:
    if precision == "bf16" and torch.device(device).type != "cuda":
        raise ValueError(f"{what}: precision='bf16' (bfloat16 autocast) runs on CUDA only and "
                         f"this run is on {torch.device(device).type}; use precision='fp32' "
                         "(the default) here.")


def autocast(precision: str, device):
    """The context of a training step's forward pass: bfloat16 autocast on CUDA for "bf16"
    (weights, gradients and optimiser states stay float32), nothing for "fp32"."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
