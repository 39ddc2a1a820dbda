"""An outside peer: deepinv's samplers (DPS, DiffPIR, DDRM) on this package's prior and problems.

deepinv (https://deepinv.github.io; written and tested against version 0.5.0) is an independent
implementation of the same methods.  Running it on exactly our prior, operator and measurement y
gives the benchmark a reference that shares none of our sampler code:

    from posterior_tutor import peer
    den = pt.pretrained("mnist"); den.clip = 1.0
    prob = pt.tasks.image_problem("sr4"); y = prob.measure(x, generator=g)
    xs = peer.run_deepinv("dps", den, prob, y, n=4, generator=g, zeta=0.3)  # (4, 1, 32, 32)

Conventions and the maps between them
-------------------------------------
Images.  We work in [-1, 1]; deepinv's denoisers and physics work in [0, 1]:  x' = (x + 1) / 2.
Gaussian noise of std s on x is noise of std s / 2 on x'.

Denoiser (``DeepinvDenoiser``).  deepinv calls ``D(x', sigma')`` with x' = x0' + sigma' n in [0, 1]
and expects E[x0' | x'].  In our scale z = 2 x' - 1 = x0 + s n with s = 2 sigma' (a VE noise level).
The VP time with that level has s(t) = sqrt((1 - abar_t) / abar_t) = s, and x_t = sqrt(abar_t) z is
then exactly a VP state sqrt(abar_t) x0 + sqrt(1 - abar_t) n: D(x', sigma') = (den(x_t, t) + 1)/2.
Rounding: our prior knows only the T integer times, so t is the integer whose s(t) is nearest to s
in log scale (|log s(t) - log s| smallest); the relative error of the level is at most half the
log-spacing of neighbouring levels (default schedule: 22% between t = 0 and 1, 3.5% at t = 10,
0.9% at t = 50, under 0.5% above t = 100).  On deepinv's own DPS grid (1000 times linspace(1, 0))
the rounding moves the level by 0.19% (median; worst 0.9% above t = 50, 2.5% for t in 10..50,
4.9% below t = 10) and two of its 999 steps land on an already used t.  Levels below s(0) (about
0.01, i.e. 0.005 in [0, 1]) and sigma' = 0 are treated as t = 0; levels above s(T-1) as t = T-1.
Every call goes through ``den(x_t, t)``, so ``den.nfe``, ``den.nfe_grad`` and ``den.net_seconds``
count deepinv's network calls too.

Operator (``deepinv_physics``).  A linear A maps x' = (x + 1)/2 to A x' = (A x + A 1)/2, so the
deepinv physics is the SAME linear operator, with measurement y' = (y + A 1)/2 (``deepinv_y``) and
noise std sigma / 2.  Matches, all exact to round-off (tests/test_deepinv_oracle.py):

| ours | deepinv |
|---|---|
| Denoising | physics.Denoising |
| Inpainting, BoxInpainting | physics.Inpainting(mask) |
| Blur (circular, centred kernel) | physics.BlurFFT(filter=kernel[None, None]) (same centring) |
| SuperResolution(f, kernel k) | physics.Downsampling(filter=k moved by o, padding="circular") |
| other linear operators | physics.LinearPhysics(A, A_adjoint) wrapping ours (prox: deepinv CG) |
| nonlinear (Saturation) | physics.Physics(A'(x') = (A(2x' - 1) + A(1)) / 2)  (DPS only) |

Our SuperResolution keeps pixels f i + o, o = (f - 1) // 2, of the blurred image (so the default box
kernel is exactly f x f average pooling); deepinv's Downsampling keeps pixels f i.  The two agree
when deepinv's filter is our kernel moved o pixels up and left (zero-padded to an odd size); for
f = 2 (o = 0) the plain 2 x 2 box already matches.

Prox.  deepinv's ``physics.prox_l2(z, y, gamma) = argmin_x gamma/2 |A x - y|^2 + 1/2 |x - z|^2``;
ours ``prob.prox(z, y, rho) = argmin_x |A x - y|^2 / (2 sigma^2) + |x - z|^2 / (2 rho^2)``, hence
gamma = rho^2 / sigma^2.  gamma does not change with the [0, 1] map (both terms scale by 1/4), so
prox'(z', y', gamma) = (prox(z, y, rho) + 1) / 2.  deepinv's ``optim.L2(sigma=s).prox(x, y, physics,
gamma)`` is ``physics.prox_l2(x, y, gamma / s^2)``.

Methods (``run_deepinv``), deepinv's defaults and what we can pass
------------------------------------------------------------------
dps      deepinv.sampling.DPS: continuous VP SDE (beta 0.1 -> 20), DDPM (ancestral) solver on
         ``steps`` = 1000 times linspace(1, 0), guidance weight * grad |y' - A D'(x')|
         (``guidance="norm"``), state in float64 (``dtype``; float32 works too), one network call
         with a backward pass per step (steps - 1 calls: the last step lands on sigma = 0 and
         returns the denoised state).  ``eta`` (1 = DDPM, deepinv's default; 0 = DDIM) picks
         deepinv's ancestral step; ``x_init`` (n, C, H, W) is the starting VP state in our scale
         (default: deepinv draws it).
         deepinv's ``weight`` is NOT the paper's zeta: in our scale its update is
         x <- DDPM step - (weight / 2) c_t grad_{x_t} |y - A D(x_t)|, c_t = s_t s_t' (sigma_t^2 -
         sigma_t'^2) (= beta_t / sqrt(alpha_t) for neighbouring DDPM steps, 1e-4 .. 0.02), so the
         default weight 1 guides ~60x less in total than the paper's zeta = 0.3.  Pass ``zeta`` to
         get the paper's (and our ``pt.sample("dps")``) update exactly: the weight is then set per
         step to 2 zeta / c_t.  ``grid="prior"`` puts the time steps exactly on our prior's levels
         (our uniform ``schedule.timesteps(steps - 1)`` then sigma = 0), so no rounding happens;
         with ``zeta``, ``grid="prior"`` and a shared ``x_init`` deepinv's DPS reproduces
         ``pt.sample("dps", steps=steps - 1)`` to round-off (tests/test_peer.py).  deepinv clips
         the denoised estimate in the data term to [-1, 1] although that estimate is in [0, 1]
         (a no-op; our ``den.clip`` does the clipping).
diffpir  deepinv.sampling.DiffPIR: ``steps`` (max_iter) = 100, ``lambda_`` = 7.0, ``zeta`` = 0.1,
         its own time grid t_i = 999 - floor(1000 sqrt(i / (steps - 1))), last 0 (dense at low
         noise; the official code's, and our DiffPIR's default ``grid="sqrt"``; ``grid="uniform"``
         uses our evenly spaced grid instead), rho_t = lambda_ sigma'^2 /
         s(t)^2 with sigma' = sigma / 2 the [0, 1]-scale noise, and data step prox with gamma =
         1 / (2 rho_t).  In our terms gamma = 2 s(t)^2 / (lambda_ sigma^2), while our DiffPIR uses
         gamma = s(t)^2 / (lam sigma^2): deepinv lambda_ = 2 x our lam (our default lam = 1 is
         deepinv lambda_ = 2; deepinv's default 7 is our lam = 3.5).  deepinv returns the last
         state x (at t = 0, noise 0.01), not the last denoised estimate, and spends the last
         network call on an estimate it discards.  That 0.01 noise widens the per-pixel
         intervals: deepinv's 90% coverage reads higher than ours (stored peer run: 0.78-0.96 vs
         0.56-0.68) by output convention, not calibration (our samples + 0.01 noise: 0.81 ->
         0.93, Gaussian deblur, 6 digits x 16 samples).
ddrm     deepinv.sampling.DDRM (Denoising, Inpainting, BoxInpainting, Blur only: it needs an SVD,
         ``DecomposablePhysics``): ``steps`` = 100 noise levels linspace(1, 0) in [0, 1] scale (VE
         2 .. 0 in ours), ``eta`` = 0.85, ``etab`` = 1.0.

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
    raise ImportError("posterior_tutor.evaluation.peer needs deepinv (pip install deepinv): it runs deepinv's "
                      "samplers on this package's priors.") from err

from .. import operators as O
from ..checks.values import check_generator, check_positive_int
from ..denoisers import Denoiser
from ..operators import InverseProblem

METHODS = ("dps", "diffpir", "ddrm")


# -- the denoiser ---------------------------------------------------------------------------------
class DeepinvDenoiser(_DinvDenoiser):
    """Our VP Tweedie denoiser ``den(x_t, t)`` (images in [-1, 1]) as a ``deepinv.models.Denoiser``
    ``D(x, sigma)`` (images in [0, 1], sigma the Gaussian noise std in that scale).

    D(x, sigma) = (den(sqrt(abar_t) (2 x - 1), t) + 1) / 2 with t the integer time whose VE level
    s(t) is nearest to 2 sigma in log scale (see the module docstring for the rounding).  ``sigma``
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


# -- the operator -------------------------------------------------------------------------------
def _shifted_filter(kernel: torch.Tensor, o: int) -> torch.Tensor:
    """Our centred kernel moved o pixels up and left, zero-padded to an odd square (1, 1, K, K):
    conv(h, x)[p] = conv(k, x)[p + o] in the shared centring (centre at index K // 2)."""
    kh, kw = kernel.shape
    m = max(kh // 2 + o, kh - kh // 2 - o - 1, kw // 2 + o, kw - kw // 2 - o - 1, 0)
    h = torch.zeros(2 * m + 1, 2 * m + 1, dtype=kernel.dtype)
    r, c = m - kh // 2 - o, m - kw // 2 - o
    h[r:r + kh, c:c + kw] = kernel
    return h[None, None]


def _image_shape(op, shape):
    shape = tuple(shape) if shape is not None else op.in_shape
    if shape is None:
        raise ValueError(f"{op!r} has no fixed image size: pass shape=(C, H, W).")
    return tuple(shape)


def deepinv_physics(prob: InverseProblem, shape=None, device=None, dtype=torch.float32):
    """The deepinv physics of ``prob`` in deepinv's [0, 1] scale (noise std prob.sigma / 2).

    Exact counterparts for Denoising, Inpainting / BoxInpainting, Blur and SuperResolution; other
    linear operators are wrapped (``LinearPhysics`` with our A and A^T); a nonlinear operator gives
    a ``Physics`` with A'(x') = (A(2 x' - 1) + A(1)) / 2 (usable by DPS, which needs only A).
    ``shape`` (C, H, W) is needed only for operators without a fixed size.  The physics adds no
    noise of its own to what we pass; use ``deepinv_y`` for the measurement."""
    if not isinstance(prob, InverseProblem):
        raise TypeError(f"prob must be an InverseProblem, got {type(prob).__name__}.")
    op = prob.operator
    noise = dinv.physics.GaussianNoise(sigma=prob.sigma / 2)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(op, O.Denoising):
        phys = dinv.physics.Denoising(noise_model=noise)
    elif isinstance(op, O.Inpainting):  # BoxInpainting too
        phys = dinv.physics.Inpainting(img_size=tuple(op.mask.shape),
                                       mask=op.mask.to(dev, dtype), noise_model=noise)
    elif isinstance(op, O.SuperResolution):
        C, H, W = _image_shape(op, shape)
        filt = _shifted_filter(op.kernel, op.offset).to(dev, dtype)
        phys = dinv.physics.Downsampling(img_size=(C, H, W), factor=op.factor, filter=filt,
                                         padding="circular", device=dev, noise_model=noise)
    elif isinstance(op, O.Blur):
        C, H, W = _image_shape(op, shape)
        phys = dinv.physics.BlurFFT(img_size=(C, H, W), filter=op.kernel[None, None].to(dev, dtype),
                                    device=dev, noise_model=noise)
    elif op.linear:
        phys = dinv.physics.LinearPhysics(A=lambda x, **kw: op.forward(x),
                                          A_adjoint=lambda y, **kw: op.adjoint(y),
                                          noise_model=noise)
    else:
        C_H_W = _image_shape(op, shape)
        one = torch.ones(1, *C_H_W, dtype=torch.float64)

        def A(xp, **kw):
            return (op.forward(2 * xp - 1) + op.forward(one.to(xp))) / 2

        phys = dinv.physics.Physics(A=A, noise_model=noise)
    return phys.to(dev)


def deepinv_y(prob: InverseProblem, y: torch.Tensor, shape=None) -> torch.Tensor:
    """Our measurement y (no sample dimension, [-1, 1] scale) in deepinv's scale:
    y' = (y + A(1)) / 2 (for linear A: A x' with x' = (x + 1) / 2, plus noise of std sigma / 2)."""
    shape = prob.check_y(y)
    one = torch.ones(1, *shape, dtype=y.dtype, device=y.device)
    return (y + prob.operator(one)[0]) / 2


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


def run_deepinv(name: str, den: Denoiser, prob: InverseProblem, y: torch.Tensor, n: int = 1,
                generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """n samples (n, C, H, W) in OUR scale [-1, 1] from deepinv's ``name`` sampler ("dps",
    "diffpir", "ddrm") with our prior ``den``, problem ``prob`` and measurement ``y`` (no sample
    dimension, our scale).  Options and their defaults (deepinv's own): see ``options_of(name)``
    and the module docstring.  Network calls are counted by ``den``'s counters."""
    check_generator(generator)
    opts = options_of(name)
    unknown = set(options) - set(opts)
    if unknown:
        raise TypeError(f"deepinv {name} has no option(s) {sorted(unknown)}; its options are "
                        f"{opts}.")
    opts.update(options)
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if not isinstance(prob, InverseProblem):
        raise TypeError(f"prob must be an InverseProblem, got {type(prob).__name__}.")
    check_positive_int(n, "n (number of samples)")
    device = getattr(den, "device", y.device)
    shape = prob.check_y(y, device=device)
    if den.shape is not None and tuple(den.shape) != tuple(shape):
        raise ValueError(f"the operator expects signals of shape {tuple(shape)} but the prior "
                         f"models signals of shape {tuple(den.shape)}.")
    op = prob.operator
    if name in ("diffpir", "ddrm") and not op.linear:
        raise ValueError(f"deepinv {name} needs a linear operator (a proximal step / an SVD); "
                         f"{op!r} is nonlinear: use 'dps'.")
    if name == "ddrm" and not isinstance(op, (O.Denoising, O.Inpainting)) and \
            type(op) is not O.Blur:
        raise ValueError(f"deepinv DDRM needs an operator with an SVD (deepinv "
                         f"DecomposablePhysics): Denoising, Inpainting, BoxInpainting or Blur; "
                         f"got {op!r}.")
    physics = deepinv_physics(prob, shape=shape, device=y.device, dtype=y.dtype)
    yp = deepinv_y(prob, y, shape)[None].expand(n, *y.shape).contiguous()
    D = DeepinvDenoiser(den)
    seed = _seed_from(generator)
    if name == "dps":
        out = _run_dps(D, physics, yp, shape, seed, den.schedule, **opts)
    else:
        fork_devices = [y.device] if y.device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            if name == "diffpir":
                out = _run_diffpir(D, physics, yp, prob.sigma / 2, den.schedule, **opts)
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
