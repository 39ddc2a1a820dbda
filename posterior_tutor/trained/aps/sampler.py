"""APSSampler: a trained amortized posterior sampler q_phi(x | y), its files and the shipped flows
(Mammadov, Chung, Ye 2024, arXiv 2407.17907; REFERENCES.md).

    fl = pt.aps.pretrained("mnist-sr4")                    # data/aps_mnist_sr4/flow.pt
    xs = fl.sample(y, n=128, generator=g)                 # one flow pass per sample
    for step in fl.iterate(y, n=500): ...                 # the flow's layers, noise -> sample

Sampling: z ~ N(0, I), x = G_phi(z, c(y)) with c(y) the context (``condition``: y flattened for
vectors, ``y_as_image`` for images); ``iterate`` yields z, then the state after every layer of the
flow, with the running log|det dx/dz|; ``sample`` is its last Step (``trained/base.py``).  Density:

    log q_phi(x | y) = log N(G^-1(x, y); 0, I) - log|det dG/dz|          (``log_prob``)

A flow knows only the problem it was trained on: the operator and sigma are in its config and a
call with another problem is refused (``check_prior(..., problem=)``).  It calls no diffusion
network when sampling, so it adds nothing to the prior's NFE counters.

Departures:
* Samples of image flows are clipped to [-1, 1] at inference only (the data range; training sees
  the unclipped flow, so no gradient is cut).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ...files.checkpoints import load_state, read_checkpoint
from ...checks.values import conform, dtype_of
from ...denoisers import Denoiser
from ...operators import InverseProblem
from ...samplers.base import Step
from ...schedules import randn
from ..base import (TrainedSampler, check_format, check_prior, check_problem,
                    save_trained, verify_shipped, y_as_image)
from ..shipped import entry, names
from ..shipped import shipped_problem as _shipped_problem
from .flows import build_flow, std_normal_log_prob

__all__ = ["APSSampler", "load", "pretrained", "shipped_problem", "FORMAT", "PRETRAINED"]

FORMAT = "posterior_tutor.aps/1"

#: the shipped flows: name -> folder in data/ (a view of the table of shipped files, ``files/shipped.py``)
PRETRAINED = {name: entry("aps", name).folder for name in names("aps")}


class APSSampler(TrainedSampler):
    """A trained amortized posterior sampler: ``sample``, ``iterate``, ``log_prob``, ``save`` /
    ``load``.  ``losses`` is the training curve (loss per dimension), ``loss_parts`` its terms
    ("data", "prior_term", "log_q", per signal), ``train_seconds`` the training wall time."""

    what = "flow"

    def __init__(self, prior: Denoiser, config: dict, problem: InverseProblem | None = None):
        self.den, self.config, self.problem = prior, dict(config), problem
        self.shape, self.y_shape = tuple(config["shape"]), tuple(config["y_shape"])
        self.flow = build_flow(config)
        self.flow.to(getattr(prior, "device", torch.device("cpu")))
        self.losses: list[float] = []
        self.loss_parts: dict = {}
        self.train_seconds = 0.0

    def __repr__(self):
        c = self.config
        return (f"APSSampler({c['flow']} flow, {self.n_parameters} parameters, prior term "
                f"{c['prior_term']!r}, trained {len(self.losses)} steps)")

    @property
    def image(self) -> bool:
        return len(self.shape) == 3

    @property
    def device(self):
        p = next(self.flow.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.flow.parameters())

    def condition(self, y: torch.Tensor, problem: InverseProblem) -> torch.Tensor:
        """The flow's context for a batch of measurements y (n, *y_shape)."""
        return y.flatten(1) if not self.image else y_as_image(problem, y, self.shape,
                                                               what="image flow")

    def base_noise(self, n: int, generator=None, device=None) -> torch.Tensor:
        return randn((n, *self.shape), generator=generator, device=device or self.device,
                     dtype=dtype_of(self.flow))

    def log_prob(self, x: torch.Tensor, y: torch.Tensor, problem=None) -> torch.Tensor:
        """log q(x | y) for x (n, ...) and one measurement y; shape (n,)."""
        problem, y = self._check_sampling(y, x.shape[0], None, problem)
        x = conform(x, y.dtype, "x")
        c = self.condition(y.unsqueeze(0).expand(x.shape[0], *y.shape), problem)
        z, ld = self.flow.encode(x, c)
        return std_normal_log_prob(z) - ld

    # -- sampling ------------------------------------------------------------------------------
    def iterate(self, y, n: int = 1, generator=None, problem=None):
        """``Step`` records of the flow's layers turning noise z into samples: step 0 is z, then
        one per layer (x is the state, extras["logdet"] the running log|det| per sample)."""
        problem, y = self._check_sampling(y, n, generator, problem)
        return self._steps(problem, y, n, generator)

    def _steps(self, problem, y, n, generator):
        with torch.no_grad():
            z = self.base_noise(n, generator, y.device)
            c = self.condition(y.unsqueeze(0).expand(n, *y.shape), problem)
            yield Step(0, None, z, None, "base noise z ~ N(0, I)",
                       {"logdet": torch.zeros(n, device=z.device)})
            parts = list(self.flow.layers(z, c))
            for i, (name, h, total) in enumerate(parts, start=1):
                if i == len(parts) and self.image:
                    h = h.clamp(-1, 1)
                yield Step(i, None, h, None, name, {"logdet": total, "nfe": 1})

    def _check_sampling(self, y, n, generator, problem, params=None):
        """The shared call check (``trained/base.py``), y's shape against the flow's first (so
        the message names it), and the problem against the one the flow was trained for."""
        if isinstance(y, torch.Tensor) and tuple(y.shape) != self.y_shape:
            extra = " (y carries no sample dimension)" if tuple(y.shape[1:]) == self.y_shape else ""
            raise ValueError(f"this flow was trained on measurements of shape {self.y_shape}, got "
                             f"y of shape {tuple(y.shape)}{extra}.")
        problem, y = super()._check_sampling(y, n, generator, problem, self.flow)
        check_problem(self.config, problem)
        return problem, y

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Atomic save of the flow, its config, the training curve and the prior's fingerprint."""
        path = Path(path)
        save_trained(path, FORMAT, self.den, self.shape, config=dict(self.config),
                     flow={k: v.detach().cpu() for k, v in self.flow.state_dict().items()},
                     losses=torch.tensor(self.losses, dtype=torch.float64),
                     train_seconds=float(self.train_seconds))
        return path

    @classmethod
    def load(cls, path, den: Denoiser, problem: InverseProblem | None = None,
             sha256: str | None = None) -> "APSSampler":
        """Rebuild a saved sampler on the prior ``den`` it was trained on (checked)."""
        return cls.from_checkpoint(read_checkpoint(path, sha256 or verify_shipped(path)), den, problem, path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, den: Denoiser, problem=None, path="checkpoint"):
        """Rebuild a sampler from an already-read checkpoint dict (see ``load``)."""
        check_format(ckpt, FORMAT, ("flow",), path, "an APS flow")
        config = dict(ckpt["config"])
        if "prior" in config and "prior_term" not in config:   # written before the rename
            config["prior_term"] = config.pop("prior")
        check_prior(den, config, ckpt.get("prior_fingerprint"), path, problem)
        fl = cls(den, config, problem)
        load_state(fl.flow, ckpt["flow"], path)
        fl.losses = ckpt.get("losses", torch.zeros(0)).tolist()
        fl.train_seconds = float(ckpt.get("train_seconds", 0.0))
        return fl


def load(path, den: Denoiser, problem: InverseProblem | None = None) -> APSSampler:
    """``APSSampler.load``."""
    return APSSampler.load(path, den, problem)


def shipped_problem(name: str) -> InverseProblem:
    """The problem a shipped flow was trained for (sigma 0.05 on 32x32 MNIST)."""
    return _shipped_problem("aps", name)


def pretrained(name: str, den: Denoiser | None = None, device=None,
               check: bool = True) -> APSSampler:
    """A shipped flow (``data/aps_mnist_<task>/flow.pt``), sha256-checked against its model card:
    ``pt.pretrained(name, kind="aps", den=, device=, check=)``.  ``den``: the shipped MNIST prior
    it was trained on (loaded on ``device`` when not given; another prior is refused); its
    problem is its training task; ``check=False`` loads a flow whose model card is missing
    (unverified)."""
    from ...files.shipped import pretrained as lookup
    return lookup(name, "aps", den=den, device=device, check=check)
