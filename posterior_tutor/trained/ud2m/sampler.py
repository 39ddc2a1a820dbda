"""UD2MSampler: the trained unfolded sampler, its outer DDIM loop, its files and the shipped ones.

    ud = pt.ud2m.train(den, problem, xs_train, generator=g)      # xs_train: clean signals (n, ...)
    xs = ud.sample(y, n=500, generator=g)      # K N calls a sample (images 3 x 3, vectors 4 x 2)
    xs = ud.sample(y2, n=500, problem=other_prob)            # another operator, same sampler
    ud = pt.ud2m.pretrained("mnist-sr4")                     # a shipped one (data/ud2m_mnist_sr4)

Outer loop: N DDIM steps on the quadratic grid t_n = floor((n sqrt(T) / N)^2), first T - 1
(N = 3: 999, 444, 111), from x ~ N(0, I).  At each outer time t the block (``block.py``) gives
x^(K), and

    eps_hat = (x_t - sqrt(ab_t) x^(K)) / sqrt(1 - ab_t),   x_{t'} = DDIM(x^(K), eps_hat, eta = 0.8)

so NFE = K N, and the last block's x^(K) is the sample (``sample`` = the last Step of
``iterate``: ``trained/base.py``).  The adapters and lambda are shared across k and t, so a
trained sampler runs at any K x N (``with_calls``) and under either noise bookkeeping
(``with_preset``: ``presets.py``).

Departures (measurements: docs/notes/ud2m.md):
* Standard DDIM noise for eta (the code's single-step beta_t adds far less fresh noise): within
  the spread on the shipped samplers, and eta keeps its DDIM meaning.
* sigma' = ``sigma_factor`` sigma for every operator, no learned rho scale (shipped: 13 sigma
  inpainting, as the code; 20 sigma SR, where the code's sigma fails).
* x^(K) is clipped to [-1, 1] only at inference and only for images (the code clips always), so
  clipping never cuts a training gradient.
* At inference eps_hat is computed from the clipped x^(K) (the code: from the unclipped one), so
  the DDIM step is taken from one consistent (x0, eps) pair; shipped samplers: UD2M_EPS
  (docs/notes/departures.md, 'UD2M').
* The shipped samplers run 4 x 4 (inpainting) and 5 x 3 (SR), not the paper's 3 x 3: better PSNR
  of the mean for 16 / 15 calls instead of 9.  Measured: docs/notes/ud2m.md, 'sampler.py'.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ...files.checkpoints import CheckpointError, read_checkpoint
from ...checks.values import conform
from ...denoisers import Denoiser, parameters_of
from ...operators import InverseProblem
from ...samplers.base import Step
from ...samplers.diffusion import ddim_update, eps_from_x0, initial_noise
from ..base import (TrainedSampler, check_format, check_prior, save_trained,
                    verify_shipped)
from ..shipped import names
from . import presets
from .adapters import AdaptedDenoiser
from .block import unfolded_block
from .checks import check_calls

__all__ = ["UD2MSampler", "pretrained", "SHIPPED", "FORMAT"]

FORMAT = "posterior_tutor.ud2m/1"


class UD2MSampler(TrainedSampler):
    """A trained unfolded sampler: ``sample``, ``iterate``, ``save`` / ``load``.

    ``denoiser`` is the adapted denoiser (its ``nfe`` counts the network calls), ``lam`` the
    learned lambda, ``losses`` the training curve (sampler loss per step; ``loss_parts``: per
    term, "x0", "adv", "lpips", "disc")."""

    def __init__(self, den: Denoiser, config: dict, problem: InverseProblem | None = None,
                 denoiser: AdaptedDenoiser | None = None):
        self.den, self.config, self.problem = den, dict(config), problem
        self.shape = tuple(config["shape"])
        self.denoiser = denoiser or AdaptedDenoiser(den, config["mode"], config["rank"],
                                                    config["layers"], self.shape,
                                                    config["hidden"])
        self.log_lam = nn.Parameter(torch.zeros((), device=self.denoiser.device))
        self.discriminator = None
        self.losses: list[float] = []
        self.loss_parts: dict = {}

    def __repr__(self):
        c = self.config
        return (f"UD2MSampler(K={c['K']}, N={c['N']}, {c['mode']} adapter, "
                f"lambda={self.lam:.3g}, trained {len(self.losses)} steps)")

    @property
    def K(self) -> int:
        return self.config["K"]

    @property
    def N(self) -> int:
        return self.config["N"]

    @property
    def nfe_per_sample(self) -> int:
        return self.K * self.N

    @property
    def lam(self) -> float:
        return float(self.log_lam.detach().exp())

    @property
    def grid(self) -> list[int]:
        return self.den.schedule.timesteps(self.N, "quadratic")

    def trainable_parameters(self) -> list[torch.Tensor]:
        return self.denoiser.trainable_parameters() + [self.log_lam]

    def with_calls(self, K: int | None = None, N: int | None = None) -> "UD2MSampler":
        """The same trained adapters and lambda (shared, not copied) run as a K x N sampler:
        they are shared across k and t, so any K and N are defined; what they are worth is
        measured, not promised (docs/notes/ud2m.md has the table)."""
        K, N = self.K if K is None else K, self.N if N is None else N
        check_calls(self.den.schedule, K, N)
        other = copy.copy(self)
        other.config = dict(self.config, K=K, N=N)
        return other

    def block(self, x_t, y, t, problem, generator=None, batched_y=False):
        """The unfolded block at outer time t (an iterator of ``BlockStep``)."""
        return unfolded_block(self.denoiser, self.log_lam, problem, x_t, y, t, self.K,
                              self.config["sigma_factor"], generator, batched_y, self.preset)

    @property
    def preset(self) -> str:
        """Whose noise bookkeeping the sampler runs (``presets.py``: "ours" or "code")."""
        return self.config.get("preset", "ours")

    def with_preset(self, preset: str) -> "UD2MSampler":
        """The same adapters and lambda (shared) run with another noise bookkeeping: "ours"
        (sigma_factor sigma everywhere, standard DDIM eta) or "code" (the public code's)."""
        other = copy.copy(self)
        other.config = dict(self.config, preset=presets.check_preset(preset))
        return other

    # -- sampling ------------------------------------------------------------------------------
    def iterate(self, y, n: int = 1, generator=None, problem=None):
        """``Step`` records of the K N inner steps: x is the state (x_t; after a block's last
        iteration the next DDIM state, and the sample at the end), x0 the block's x^(k)."""
        problem, y = self._check_sampling(y, n, generator, problem)
        return self._steps(problem, y, n, generator)

    def _steps(self, problem, y, n, generator, start: int = 0, x=None):
        """The chain from outer step ``start`` (0: from noise; else from the state ``x``)."""
        if x is None:
            x = initial_noise(n, self.shape, y, generator, self.denoiser)
        grid, image = self.grid, len(self.shape) == 3
        i = 0
        with torch.no_grad():
            for j, t in enumerate(grid[start:], start):
                t_next = grid[j + 1] if j + 1 < len(grid) else -1
                for b in self.block(x, y, t, problem, generator):
                    state = x
                    if b.k == self.K:
                        x0 = b.x.clamp(-1, 1) if image else b.x
                        eps = eps_from_x0(self.den.schedule, x, x0, t)
                        x = state = ddim_update(self.den.schedule, x0, eps, t, t_next,
                                                self.config["eta"], generator,
                                                presets.noise_rule(self.preset))
                    yield Step(i, t if b.k < self.K else max(t_next, 0), state, b.x,
                               f"outer {j + 1}/{len(grid)}, block {b.k}/{self.K}",
                               {"prox": b.z, "noised": b.noised, "t": t, "tau": b.tau,
                                "rho": b.rho, "lam": self.lam, "nfe": i + 1})
                    i += 1

    def sample_from(self, x_t, t: int, y, generator=None, problem=None) -> torch.Tensor:
        """The rest of the chain from the state x_t (n, ...) at the grid time t: one sample per
        row.  With x_t = add_noise(x0, t) for the true x0 it shows what the later blocks can do
        when the earlier ones were perfect (chapter 04)."""
        if not torch.is_tensor(x_t) or tuple(x_t.shape[1:]) != self.shape:
            raise ValueError(f"x_t must be a batch (n, {', '.join(map(str, self.shape))}) of "
                             f"states, got {getattr(x_t, 'shape', type(x_t).__name__)}.")
        problem, y = self._check_sampling(y, x_t.shape[0], generator, problem)
        x_t = conform(x_t, y.dtype, "x_t")
        if x_t.device != y.device or not torch.isfinite(x_t).all():
            raise ValueError(f"x_t must be finite and on y's device ({y.device}); got "
                             f"{x_t.device}, finite: {bool(torch.isfinite(x_t).all())}.")
        if t not in self.grid:
            raise ValueError(f"t = {t} is not one of this sampler's outer times {self.grid}.")
        return self._run_to_end(self._steps(problem, y, x_t.shape[0], generator,
                                            self.grid.index(t), x_t))

    def _check_sampling(self, y, n, generator, problem, params=None):
        return super()._check_sampling(y, n, generator, problem, self.trainable_parameters())

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Atomic save of adapter, lambda, config, training curve and a fingerprint of the prior."""
        path = Path(path)
        save_trained(path, FORMAT, self.den, self.shape, config=_plain(self.config),
                     adapter={k: v.detach().cpu() for k, v in self.denoiser.adapter_state().items()},
                     log_lambda=self.log_lam.detach().cpu(),
                     losses=torch.tensor(self.losses, dtype=torch.float64))
        return path

    @classmethod
    def load(cls, path, den: Denoiser, problem: InverseProblem | None = None) -> "UD2MSampler":
        """Rebuild a saved sampler on the prior ``den`` (the one it was trained on)."""
        return cls.from_checkpoint(read_checkpoint(path, verify_shipped(path)), den, problem, path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, den: Denoiser, problem=None, path="checkpoint"):
        """Rebuild a sampler from an already-read checkpoint dict (see ``load``)."""
        check_format(ckpt, FORMAT, ("adapter", "log_lambda"), path, "a UD2M sampler")
        config = dict(ckpt["config"])
        _check_adapter_kind(den, config, path)
        check_prior(den, config, ckpt.get("prior_fingerprint"), path)
        ud = cls(den, config, problem)
        ud.denoiser.load_adapter_state({k: v.to(ud.denoiser.device)
                                        for k, v in ckpt["adapter"].items()})
        with torch.no_grad():
            ud.log_lam.copy_(ckpt["log_lambda"])
        ud.losses = ckpt.get("losses", torch.zeros(0)).tolist()
        return ud


#: the shipped samplers by name (a view of the table of shipped files, ``files/shipped.py``)
SHIPPED = names("ud2m")


def pretrained(name: str, den: Denoiser | None = None, device=None,
               check: bool = True) -> UD2MSampler:
    """A shipped UD2M sampler (``data/ud2m_<name>/``), sha256-checked: ``pt.pretrained(name,
    kind="ud2m", den=, device=, check=)``.

    Its default problem is its training task at its sigma (random inpainting: one random mask,
    seed 0); pass ``problem=`` to ``sample`` for your own mask or operator.  ``den``: the shipped
    MNIST prior (loaded on ``device`` when not given; another prior is refused); ``check=False``
    loads a sampler whose model card is missing (unverified)."""
    from ...files.shipped import pretrained as lookup
    return lookup(name, "ud2m", den=den, device=device, check=check)


def _plain(config: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()}


def _check_adapter_kind(den, config, path):
    """The adapter's kind (LoRA for a network, a residual for an exact prior) must be the one
    this prior calls for (checked before ``check_prior``: schedule, shape, fingerprint)."""
    if isinstance(den, Denoiser):
        mode = "lora" if parameters_of(den) else "residual"
        if mode != config["mode"]:
            raise CheckpointError(f"{path} holds a {config['mode']} adapter, but this prior calls "
                                  f"for a {mode} adapter: it is not the prior the sampler was "
                                  "trained on.")
