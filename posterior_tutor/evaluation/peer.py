"""An outside peer: deepinv's samplers (DPS, DiffPIR, DDRM) on this package's prior and problems.

deepinv (https://deepinv.github.io; written and tested against version 0.5.0) is an independent
implementation of the same methods.  Running it on exactly our prior, operator and measurement y
gives the benchmark a reference that shares none of our sampler code:

    from posterior_tutor.evaluation import peer
    den = pt.pretrained("mnist"); den.clip = 1.0
    problem = pt.tasks.image_problem("sr4"); y = problem.measure(x, generator=g)
    xs = peer.run_deepinv("dps", den, problem, y, n=4, generator=g, zeta=0.3)  # (4, 1, 32, 32)

Three maps make the two libraries speak of the same thing (details, deepinv's defaults and the
measured rounding errors: docs/notes/peer.md):

- images: ours in [-1, 1], deepinv's in [0, 1], x' = (x + 1) / 2; the physics and y' are in
  ``peer_physics`` (``deepinv_physics``, ``deepinv_y``);
- the denoiser (``DeepinvDenoiser``): deepinv asks D(x', sigma') = E[x0' | x0' + sigma' n].  In our
  scale that is the VE level s = 2 sigma', and the VP state x_t = sqrt(abar_t) (2 x' - 1) at the
  time t with sqrt((1 - abar_t) / abar_t) = s is exactly sqrt(abar_t) x0 + sqrt(1 - abar_t) n, so
  D(x', sigma') = (den(x_t, t) + 1) / 2.  Our prior knows only integer times: t is the one whose
  level is nearest to s in log scale (levels below s(0) give t = 0, above s(T-1) give T-1).  Every
  call goes through ``den(x_t, t)``, so ``den``'s counters count deepinv's network calls too;
- the step sizes: deepinv's DPS ``weight`` is not the paper's zeta (its update moves x by
  (weight / 2) c_t grad |y - A D(x_t)| with c_t the ancestral step's coefficient); pass ``zeta``
  and the weight is set per step to 2 zeta / c_t, the paper's (and ``pt.sample("dps")``'s) update.
  ``grid="prior"`` puts the times on our prior's levels, and with a shared ``x_init`` deepinv's
  DPS then reproduces ``pt.sample("dps", steps=steps - 1)`` to round-off (tests/test_peer.py).
  deepinv's DiffPIR ``lambda_`` is 2 x our lam (the [0, 1] noise is sigma / 2), and it returns its
  last noisy state, not the last denoised estimate, which widens its per-pixel intervals by output
  convention, not calibration.

Randomness: deepinv's DPS draws from a ``torch.Generator`` that we seed from ``generator``; DiffPIR
and DDRM draw from torch's global generator, which we fork (``torch.random.fork_rng``) and seed from
``generator``, so the caller's global state is left untouched and a seed gives the same samples.
"""
from __future__ import annotations

import numpy as np
import torch

try:
    import deepinv as dinv
    from deepinv.models import Denoiser as _DinvDenoiser
except ImportError as err:  # pragma: no cover - deepinv is a dependency
    raise ImportError("posterior_tutor.evaluation.peer needs deepinv (pip install deepinv): it "
                      "runs deepinv's samplers on this package's priors.") from err

from .. import operators as O
from ..checks.values import check_generator, check_positive_int
from ..denoisers import Denoiser
from ..operators import InverseProblem
from .peer_physics import deepinv_physics, deepinv_y  # noqa: F401  (part of this module's API)

METHODS = ("dps", "diffpir", "ddrm")


# -- the denoiser ---------------------------------------------------------------------------------
class DeepinvDenoiser(_DinvDenoiser):
    """Our VP Tweedie denoiser ``den(x_t, t)`` (images in [-1, 1]) as a ``deepinv.models.Denoiser``
    ``D(x, sigma)`` (images in [0, 1], sigma the Gaussian noise std in that scale).

    D(x, sigma) = (den(sqrt(abar_t) (2 x - 1), t) + 1) / 2 with t the integer time whose VE level
    s(t) is nearest to 2 sigma in log scale (docs/notes/peer.md: its size).  ``sigma``
    may be a number or one value per image.  ``last_t`` keeps the times of the latest call.
    The network runs in the dtype of its parameters; the output has the input's dtype."""

    def __init__(self, den: Denoiser):
        if not isinstance(den, Denoiser):
            raise TypeError(f"DeepinvDenoiser wraps a posterior_tutor Denoiser, got "
                            f"{type(den).__name__}.")
        super().__init__()
        self.den = den
        self.last_t = None
        self._levels = den.schedule.s(torch.arange(den.schedule.T))  # float64, increasing
        self._log_levels = self._levels.log()

    @property
    def schedule(self):
        return self.den.schedule

    def time_for(self, sigma, batch: int, device) -> torch.Tensor:
        """Integer times (batch,) for deepinv noise levels ``sigma`` ([0, 1] scale)."""
        s = torch.as_tensor(sigma, dtype=torch.float64).detach().cpu().reshape(-1)
        if s.numel() == 1:
            s = s.expand(batch)
        if s.shape != (batch,):
            raise ValueError(f"sigma must be one number or one per image ({batch}), got shape "
                             f"{tuple(torch.as_tensor(sigma).shape)}.")
        if not torch.isfinite(s).all() or (s < 0).any():
            raise ValueError(f"noise levels must be finite and >= 0, got {s.tolist()}.")
        ve = (2 * s).clamp_min(self._levels[0].item())                       # our scale; 0 -> s(0)
        t = (ve.log()[:, None] - self._log_levels[None, :]).abs().argmin(dim=1)
        return t.to(device)

    def forward(self, x: torch.Tensor, sigma, *args, **kwargs) -> torch.Tensor:
        if x.ndim < 2:
            raise ValueError(f"DeepinvDenoiser takes a batch of images, got shape "
                             f"{tuple(x.shape)}.")
        t = self.time_for(sigma, x.shape[0], x.device)
        self.last_t = t
        net = getattr(self.den, "net", None)
        p = next(net.parameters(), None) if isinstance(net, torch.nn.Module) else None
        work = p.dtype if p is not None else x.dtype
        ab = self.schedule.abar(t, like=x.to(work))
        x_t = ab.sqrt() * (2 * x.to(work) - 1)
        x0 = self.den(x_t, t)
        return ((x0 + 1) / 2).to(x.dtype)


# -- the samplers -------------------------------------------------------------------------------
_OPTIONS = {
    "dps": {"steps": 1000, "weight": 1.0, "zeta": None, "guidance": "norm", "grid": "deepinv",
            "eta": 1.0, "dtype": torch.float64, "x_init": None},
    "diffpir": {"steps": 100, "lambda_": 7.0, "zeta": 0.1, "grid": "deepinv"},
    "ddrm": {"steps": 100, "eta": 0.85, "etab": 1.0},
}


def options_of(name: str) -> dict:
    """The options ``run_deepinv`` accepts for ``name``, with their defaults (deepinv's)."""
    if name not in _OPTIONS:
        raise ValueError(f"run_deepinv knows the methods {', '.join(METHODS)}; got {name!r}.")
    return dict(_OPTIONS[name])


def _seed_from(generator) -> int:
    return int(torch.randint(0, 2 ** 62, (1,), generator=generator).item())


def run_deepinv(name: str, den: Denoiser, problem: InverseProblem, y: torch.Tensor, n: int = 1,
                generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """n samples (n, C, H, W) in OUR scale [-1, 1] from deepinv's ``name`` sampler ("dps",
    "diffpir", "ddrm") with our prior ``den``, inverse problem ``problem`` and measurement ``y`` (no sample
    dimension, our scale).  Options and their defaults (deepinv's own): see ``options_of(name)``
    and docs/notes/peer.md.  Network calls are counted by ``den``'s counters."""
    check_generator(generator)
    opts = options_of(name)
    unknown = set(options) - set(opts)
    if unknown:
        raise TypeError(f"deepinv {name} has no option(s) {sorted(unknown)}; its options are "
                        f"{opts}.")
    opts.update(options)
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"problem must be an InverseProblem, got {type(problem).__name__}.")
    check_positive_int(n, "n (number of samples)")
    device = getattr(den, "device", y.device)
    shape = problem.check_y(y, device=device)
    if den.shape is not None and tuple(den.shape) != tuple(shape):
        raise ValueError(f"the operator expects signals of shape {tuple(shape)} but the prior "
                         f"models signals of shape {tuple(den.shape)}.")
    op = problem.operator
    if name in ("diffpir", "ddrm") and not op.linear:
        raise ValueError(f"deepinv {name} needs a linear operator (a proximal step / an SVD); "
                         f"{op!r} is nonlinear: use 'dps'.")
    if name == "ddrm" and not isinstance(op, (O.Denoising, O.Inpainting)) and \
            type(op) is not O.Blur:
        raise ValueError(f"deepinv DDRM needs an operator with an SVD (deepinv "
                         f"DecomposablePhysics): Denoising, Inpainting, BoxInpainting or Blur; "
                         f"got {op!r}.")
    physics = deepinv_physics(problem, shape=shape, device=y.device, dtype=y.dtype)
    yp = deepinv_y(problem, y, shape)[None].expand(n, *y.shape).contiguous()
    D = DeepinvDenoiser(den)
    seed = _seed_from(generator)
    if name == "dps":
        out = _run_dps(D, physics, yp, shape, seed, den.schedule, **opts)
    else:
        fork_devices = [y.device] if y.device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            if name == "diffpir":
                out = _run_diffpir(D, physics, yp, problem.sigma / 2, den.schedule, **opts)
            else:
                model = dinv.sampling.DDRM(D, sigmas=np.linspace(1, 0, int(opts["steps"])),
                                           eta=opts["eta"], etab=opts["etab"])
                out = model(yp, physics)
    return (2 * out - 1).to(y.dtype).detach()


class _ZetaDPSFidelity(dinv.sampling.DPSDataFidelity):
    """deepinv's DPS data term with the weight set per step so that the update is the paper's
    x <- DDPM step - zeta grad |y - A D(x_t)| (see the module docstring): weight = 2 zeta / c_t,
    c_t looked up by the step's noise level."""

    def __init__(self, zeta, levels, coefs, **kw):
        super().__init__(**kw)
        self.zeta, self.levels, self.coefs = float(zeta), levels, coefs

    def forward(self, x, y, physics, sigma, *args, **kwargs):
        s = torch.as_tensor(sigma, dtype=torch.float64).detach().cpu().reshape(-1)[0]
        k = (self.levels - s).abs().argmin()
        self.weight = 2 * self.zeta / self.coefs[k].item()
        return super().forward(x, y, physics, sigma, *args, **kwargs)


def _dps_timesteps(grid, steps, schedule, sde, dtype):
    if grid == "deepinv":
        return torch.linspace(1, 0, steps, dtype=dtype)
    if grid == "prior":
        # continuous times whose VP level equals our prior's level at our uniform grid:
        # B(t) = 0.1 t + 9.95 t^2 = -log abar  (deepinv's VariancePreservingDiffusion defaults)
        ab = schedule.abar(schedule.timesteps(steps - 1))
        b = -torch.log(ab)
        # (our top level needs t = 1.0034, a hair past deepinv's T = 1; its beta(t) is linear in t)
        t = (-0.1 + torch.sqrt(0.01 + 4 * 9.95 * b)) / (2 * 9.95)
        return torch.cat([t, t.new_zeros(1)]).to(dtype)
    raise ValueError(f"grid must be 'deepinv' or 'prior', got {grid!r}.")


def _run_dps(D, physics, yp, shape, seed, schedule, steps, weight, zeta, guidance, grid, eta,
             dtype, x_init):
    steps = int(steps)
    if steps < 2:
        raise ValueError(f"deepinv DPS needs steps >= 2, got {steps}.")
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1], got {eta}.")
    dev = yp.device
    rng = torch.Generator(device=dev).manual_seed(seed)
    sde = dinv.sampling.VariancePreservingDiffusion(device=dev, dtype=dtype)
    ts = _dps_timesteps(grid, steps, schedule, sde, dtype).to(dev)
    # eta = 1 is deepinv's DDPMSolver (its DPS default); other eta its DDIM-eta ancestral step
    solver = dinv.sampling.AncestralSolver(timesteps=ts, eta=float(eta), rng=rng)
    model = dinv.sampling.DPS(D, solver=solver, weight=weight, guidance=guidance, device=dev,
                              dtype=dtype)
    if zeta is not None:
        # the ancestral step moves x by c_t * score with c_t = s s' sigma^2 (1 - r sqrt(1 - eta^2
        # (1 - r^2))), r = sigma' / sigma; the guidance part of the score is -(weight/2) grad |.|
        with torch.no_grad():
            sig = sde.sigma_t(ts).to("cpu", torch.float64)
            sc = sde.scale_t(ts).to("cpu", torch.float64)
        r = sig[1:] / sig[:-1]
        coef = r * (1 - eta ** 2 * (1 - r ** 2)).clamp_min(0).sqrt()
        coefs = sc[:-1] * sc[1:] * sig[:-1] ** 2 * (1 - coef)
        model.data_fidelity = _ZetaDPSFidelity(zeta, sig[:-1] / 2, coefs, denoiser=D,
                                               clip=[-1.0, 1.0], guidance=guidance)
    if x_init is None:
        x_init = tuple(yp.shape[:1]) + tuple(shape)   # deepinv draws it at the first time step
    else:
        x_init = torch.as_tensor(x_init).to(dev, dtype)
        if tuple(x_init.shape) != tuple(yp.shape[:1]) + tuple(shape):
            raise ValueError(f"x_init must have shape {(yp.shape[0], *shape)}, got "
                             f"{tuple(x_init.shape)}.")
    return model(yp, physics, x_init=x_init)


class _GridDiffPIR(dinv.sampling.DiffPIR):
    """deepinv's DiffPIR with our uniform time grid in place of its own (``grid="uniform"``)."""

    def __init__(self, *args, times=None, **kw):
        self._times = times
        super().__init__(*args, **kw)

    def get_noise_schedule(self, sigma):
        rhos, sigmas, seq = super().get_noise_schedule(sigma)
        if self._times is not None:  # seq indexes sigmas[j] = level of time T - 1 - j
            seq = torch.tensor([self.num_train_timesteps - 1 - t for t in self._times],
                               dtype=seq.dtype, device=seq.device)
        return rhos, sigmas, seq


def _run_diffpir(D, physics, yp, sigma01, schedule, steps, lambda_, zeta, grid):
    steps = int(steps)
    if steps < 2:
        raise ValueError(f"deepinv DiffPIR needs steps >= 2, got {steps}.")
    if grid not in ("deepinv", "uniform"):
        raise ValueError(f"grid must be 'deepinv' or 'uniform', got {grid!r}.")
    if schedule.T != 1000 or not torch.allclose(
            schedule.betas.float(), torch.linspace(1e-4, 0.02, 1000)):
        raise ValueError("deepinv DiffPIR hard-codes the DDPM schedule (T = 1000, betas 1e-4 .. "
                         f"0.02); this prior uses {schedule!r}.")
    times = schedule.timesteps(steps) if grid == "uniform" else None
    model = _GridDiffPIR(D, dinv.optim.data_fidelity.L2(), sigma=sigma01, max_iter=steps,
                         zeta=zeta, lambda_=lambda_, device=yp.device, times=times)
    return model(yp, physics)
