"""What UD2M trains in the prior: low-rank adapters on a network, or a residual on an exact one.

A network denoiser gets LoRA (Hu et al. 2021) on chosen Linear / Conv2d layers of a frozen copy:

    W x  ->  W x + B (A x),     A: in -> rank (Kaiming init),  B: rank -> out (zero init),

so the adapted denoiser equals the prior exactly before training.  For sampling, W + B A is
folded into one layer (``merge_lora``; for a conv, B is a 1x1 conv after A, so B A is a conv
with A's geometry): a call then costs what the prior's does.  A denoiser with no parameters (the
exact GMM one) gets a time-conditioned residual, D(x, t) + r(x, t), with r's last layer zero.
``AdaptedDenoiser`` is the result: a Denoiser that counts its own calls.

Departures (measurements: docs/notes/ud2m.md):
* B = 0 at start (the code: Xavier on both factors, so its step-0 sampler is not the prior's):
  "fine-tuning a prior" starts at the prior; the A factors get a gradient from the second step.
* No alpha / r scale on B A (the code's LoRA multiplies it by alpha / r = 1.5 / 5 = 0.3): with
  B = 0 at start a constant scale only rescales the adapters' effective step size; the shipped
  samplers were trained without it (not measured: it would need retraining them).
* Rank 4 (paper 5); the shipped samplers adapt every layer (``adaptable_layers``), not only the
  attention, which did better on held-out digits (measured: docs/notes/ud2m.md, 'adapters.py').
* No learned time offsets (the code's TAUG / TLAT are cast to integers: they never get a
  gradient); only what gets a gradient is trained (tested).
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ...files.checkpoints import CheckpointError
from ...denoisers import Denoiser
from ...nets import time_embedding

__all__ = ["LoRA", "merged_layer", "merge_lora", "adaptable_layers", "default_lora_layers",
           "add_lora", "ResidualMLP", "AdaptedDenoiser"]


class LoRA(nn.Module):
    """base(x) + B(A(x)) around a frozen Linear or Conv2d; A has the base layer's geometry and
    ``rank`` outputs (Kaiming init), B is a zero-initialised Linear / 1x1 conv to the outputs."""

    def __init__(self, base: nn.Module, rank: int):
        super().__init__()
        self.base = base.requires_grad_(False)
        if isinstance(base, nn.Linear):
            self.lora_A = nn.Linear(base.in_features, rank, bias=False)
            self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        elif isinstance(base, nn.Conv2d) and base.groups == 1:
            self.lora_A = nn.Conv2d(base.in_channels, rank, base.kernel_size, base.stride,
                                    base.padding, base.dilation, bias=False,
                                    padding_mode=base.padding_mode)
            self.lora_B = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        else:
            raise TypeError(f"LoRA wraps nn.Linear or nn.Conv2d (groups=1), got {base!r}.")
        nn.init.zeros_(self.lora_B.weight)
        self.to(base.weight.device)

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x))


def merged_layer(lora: LoRA) -> nn.Module:
    """The plain layer W + B A that computes what ``lora`` does (one layer instead of three)."""
    base = copy.deepcopy(lora.base)
    with torch.no_grad():
        if isinstance(base, nn.Linear):
            base.weight += lora.lora_B.weight @ lora.lora_A.weight
        else:   # B is a 1x1 conv after A, so B A is a conv with A's geometry
            base.weight += torch.einsum("or,rikl->oikl", lora.lora_B.weight[:, :, 0, 0],
                                        lora.lora_A.weight)
    return base


def merge_lora(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every LoRA folded into its base layer (for sampling: a call then
    costs what the prior's does, the unfolded adapters' extra matmuls are gone; measured:
    docs/notes/ud2m.md, 'adapters.py')."""
    new = copy.deepcopy(net)
    for name, mod in list(new.named_modules()):
        if isinstance(mod, LoRA):
            parent_name, _, child = name.rpartition(".")
            setattr(new.get_submodule(parent_name), child, merged_layer(mod))
    return new


def _adaptable(mod) -> bool:
    return isinstance(mod, nn.Linear) or (isinstance(mod, nn.Conv2d) and mod.groups == 1)


def adaptable_layers(net: nn.Module) -> list[str]:
    """Every layer LoRA can wrap: the Linear and the (ungrouped) Conv2d layers, in order."""
    return [name for name, mod in net.named_modules() if _adaptable(mod)]


def default_lora_layers(net: nn.Module) -> list[str]:
    """Attention projections (modules with ``qkv`` and ``out``/``proj_out``) plus the output layer
    when the network has attention (the paper's choice); otherwise every Linear/Conv2d layer."""
    names = []
    for name, mod in net.named_modules():
        children = dict(mod.named_children())
        if "qkv" in children and ({"out", "proj_out"} & set(children)):
            names += [f"{name}.{c}".lstrip(".") for c in ("qkv", "out", "proj_out")
                      if c in children and _adaptable(children[c])]
    layers = adaptable_layers(net)
    if not layers:
        raise ValueError(f"{type(net).__name__} has no Linear or Conv2d layer to adapt.")
    if names:
        return names + ([layers[-1]] if layers[-1] not in names else [])
    return layers


def add_lora(net: nn.Module, rank: int = 4, layers: list[str] | None = None) -> nn.Module:
    """A frozen copy of ``net`` with LoRA adapters on ``layers`` (default ``default_lora_layers``);
    the original network is left untouched."""
    layers = default_lora_layers(net) if layers is None else list(layers)
    new = copy.deepcopy(net).requires_grad_(False)
    for name in layers:
        parent_name, _, child = name.rpartition(".")
        try:
            parent = new.get_submodule(parent_name)
            base = getattr(parent, child)
        except AttributeError:
            raise ValueError(f"the network has no layer {name!r} to adapt.") from None
        setattr(parent, child, LoRA(base, rank))
    return new


class ResidualMLP(nn.Module):
    """r(x, t): [x flattened, emb(t)] -> SiLU MLP -> x's shape; last layer zero (r = 0 at start)."""

    def __init__(self, dim: int, hidden: int = 64, t_dim: int = 32, T: int = 1000):
        super().__init__()
        self.t_dim, self.T = t_dim, T
        self.body = nn.Sequential(nn.Linear(dim + t_dim, hidden), nn.SiLU(),
                                  nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x, t):
        h = torch.cat([x.flatten(1), time_embedding(t, self.t_dim, self.T).to(x)], dim=1)
        return self.body(h).reshape(x.shape)


class AdaptedDenoiser(Denoiser):
    """The prior's denoiser ``den`` with its trainable adapter: LoRA inside a copy of the network,
    or a residual network added to the output of a denoiser with no parameters.  Counts its own
    NFE."""

    def __init__(self, den: Denoiser, mode: str, rank: int = 4, layers=None, shape=None,
                 hidden: int = 64):
        super().__init__(den.schedule)
        self.den, self.mode = den, mode
        self.shape = tuple(shape) if shape is not None else den.shape
        self.inner = copy.copy(den)
        self.residual = None
        self._merged = None   # (adapter tensors' (data_ptr, version), prior with LoRA folded in)
        if mode == "lora":
            self.layers = default_lora_layers(den.net) if layers is None else list(layers)
            self.inner.net = add_lora(den.net, rank, self.layers)
            self.adapter = self.inner.net
        elif mode == "residual":
            self.layers = []
            self.residual = ResidualMLP(math.prod(self.shape), hidden, T=den.schedule.T)
            self.adapter = self.residual
        else:
            raise ValueError(f"unknown adapter mode {mode!r}; use 'lora' or 'residual'.")

    @property
    def device(self):
        return getattr(self.den, "device", torch.device("cpu"))

    def to(self, device):
        self.adapter.to(device)
        return self

    def trainable_parameters(self) -> list[torch.Tensor]:
        return [p for p in self.adapter.parameters() if p.requires_grad]

    def adapter_state(self) -> dict:
        if self.mode == "residual":
            return dict(self.residual.state_dict())
        return {k: v for k, v in self.inner.net.state_dict().items() if ".lora_" in k}

    def load_adapter_state(self, state: dict) -> None:
        mine = self.adapter_state()
        if set(mine) != set(state) or any(mine[k].shape != state[k].shape for k in mine):
            raise CheckpointError("the adapter weights in the checkpoint do not fit this prior's "
                                  "network (different layers, rank or size).")
        target = self.residual if self.mode == "residual" else self.inner.net
        target.load_state_dict(state, strict=False)

    def _merged_inner(self):
        """The prior with its LoRA folded in, rebuilt whenever an adapter weight has changed."""
        key = tuple((p.data_ptr(), p._version) for p in self.trainable_parameters())
        if self._merged is None or self._merged[0] != key:
            inner = copy.copy(self.inner)
            inner.net = merge_lora(self.inner.net)
            self._merged = (key, inner)
        return self._merged[1]

    def _x0(self, x_t, t):
        fold = self.mode == "lora" and not torch.is_grad_enabled()   # sampling: merged weights
        out = (self._merged_inner() if fold else self.inner)._x0(x_t, t)
        if self.residual is not None:
            out = out + self.residual(x_t, t)
        return out

