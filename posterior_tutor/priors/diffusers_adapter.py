"""Use a pretrained diffusers DDPM (a ``UNet2DModel`` and its scheduler) as a Denoiser.

    from posterior_tutor.priors.diffusers_adapter import DiffusersDenoiser
    den = DiffusersDenoiser.from_pretrained("google/ddpm-cifar10-32")   # or a local folder
    xs = pt.sample("dps", den, problem, y, n=4, steps=250)

What the adapter converts (diffusers -> this package):

* time: diffusers' training timesteps 0..T-1 are our integer times t, and the scheduler's
  ``alphas_cumprod`` is our ``abar_t``.  A "linear" scheduler becomes ``VPSchedule(T, beta_start,
  beta_end)`` (checked against ``alphas_cumprod`` to 1e-6); any other beta schedule (scaled_linear,
  squaredcos_cap_v2, sigmoid, trained_betas) becomes a ``GivenBetasSchedule`` built from the
  scheduler's own betas.  Zero-terminal-SNR schedules (abar_{T-1} = 0) are refused: x0 cannot be
  recovered from x_t at that time.
* the network output, by the scheduler's ``prediction_type``, into the Tweedie estimate x0:

      "epsilon":       x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
      "sample":        x0 = the output itself
      "v_prediction":  x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v,
                       since v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0  (Salimans & Ho 2022).

  A UNet with a learned variance (2C output channels) contributes its first C channels.
* images: diffusers DDPMs work on [-1, 1] images of shape (C, sample_size, sample_size), as this
  package does; ``den.shape`` is read from the UNet's config.

The denoiser returns the unclipped Tweedie estimate.  diffusers' DDPMScheduler clips x0 to
[-1, 1] when ``clip_sample=True``; pass ``clip=1.0`` to do the same (the clamp blocks DPS
gradients wherever it is active).
``sample_only(unet)`` wraps a UNet2DModel as a plain ``net(x_t, t) -> tensor`` module, so that
``pt.priors.train.train_denoiser`` can train one (see scripts/compare_unets.py).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..denoisers import _NetDenoiser
from ..schedules import VPSchedule

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


class PretrainedUnavailable(OSError):
    """A diffusers model could be neither downloaded nor found in a local folder."""


class GivenBetasSchedule(VPSchedule):
    """A VP schedule from explicit betas (shape (T,), each in (0, 1)), e.g. a cosine schedule."""

    def __init__(self, betas, name: str = "given betas"):
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu().flatten()
        if betas.numel() < 2:
            raise ValueError(f"a schedule needs T >= 2 betas, got {betas.numel()}.")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(f"every beta must lie in (0, 1); got values in "
                             f"[{betas.min().item():g}, {betas.max().item():g}].")
        self.T, self.name = int(betas.numel()), name
        self.betas = betas
        self.alpha_bar = torch.cumprod(1.0 - betas, dim=0)
        self._s = torch.sqrt((1.0 - self.alpha_bar) / self.alpha_bar)

    def __repr__(self) -> str:
        return f"GivenBetasSchedule(T={self.T}, {self.name})"


def schedule_from_scheduler(scheduler) -> VPSchedule:
    """Our VP schedule with the same abar_t as a diffusers scheduler (see the module docstring)."""
    _check_scheduler(scheduler)
    cfg = scheduler.config
    betas = torch.as_tensor(scheduler.betas, dtype=torch.float64).cpu()
    abar = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float64).cpu()
    kind = cfg.get("beta_schedule", "linear")
    if abar[-1] <= 0 or betas.max() >= 1:
        raise ValueError(
            f"unsupported schedule: this {type(scheduler).__name__} (beta_schedule={kind!r}, "
            f"rescale_betas_zero_snr={cfg.get('rescale_betas_zero_snr', False)}) reaches "
            "abar_{T-1} = 0 (zero terminal SNR), where x0 cannot be recovered from x_t. "
            "Use a scheduler with rescale_betas_zero_snr=False.")
    if kind == "linear" and cfg.get("trained_betas") is None:
        sched = VPSchedule(len(betas), float(cfg["beta_start"]), float(cfg["beta_end"]))
        gap = (sched.alpha_bar - abar).abs().max().item()
        if gap > 1e-6:
            raise ValueError(f"the scheduler says beta_schedule='linear' but its alphas_cumprod "
                             f"differs from VPSchedule's by {gap:.2g} (> 1e-6).")
        return sched
    name = "trained_betas" if cfg.get("trained_betas") is not None else f"beta_schedule={kind!r}"
    return GivenBetasSchedule(betas, name)


def _check_scheduler(scheduler) -> None:
    from diffusers import SchedulerMixin
    if not isinstance(scheduler, SchedulerMixin) or not hasattr(scheduler, "alphas_cumprod"):
        raise TypeError(f"scheduler must be a diffusers scheduler with alphas_cumprod (e.g. "
                        f"DDPMScheduler), got {type(scheduler).__name__}.")


class DiffusersDenoiser(_NetDenoiser):
    """A diffusers ``UNet2DModel`` + scheduler as a Denoiser; ``.net`` is the UNet.

    ``shape`` overrides the (C, H, W) read from the UNet's config; ``clip`` clamps x0 to
    [-clip, clip] (None: the unclipped Tweedie estimate)."""

    def __init__(self, unet, scheduler, shape: tuple | None = None, clip: float | None = None):
        _check_unet(unet)
        sched = schedule_from_scheduler(scheduler)
        super().__init__(sched)
        self.net, self.scheduler, self.clip = unet, scheduler, clip
        self.prediction_type = scheduler.config.get("prediction_type", "epsilon")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unsupported prediction_type {self.prediction_type!r}; "
                             f"supported: {', '.join(PREDICTION_TYPES)}.")
        self.shape = tuple(shape) if shape is not None else _signal_shape(unet.config)
        self._out_channels = _used_channels(unet.config, scheduler.config)

    def __repr__(self) -> str:
        return (f"DiffusersDenoiser(shape={self.shape}, prediction_type={self.prediction_type!r}, "
                f"schedule={self.schedule!r})")

    def raw_output(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The UNet's output in x_t's dtype (learned-variance channels dropped)."""
        dtype = getattr(self.net, "dtype", x_t.dtype)
        out = self.net(x_t.to(dtype), t).sample[:, :self._out_channels]
        return out.to(x_t.dtype)

    def _x0(self, x_t, t):
        out = self.raw_output(x_t, t)
        ab = self.schedule.abar(t, like=x_t)
        if self.prediction_type == "epsilon":
            x0 = (x_t - (1 - ab).sqrt() * out) / ab.sqrt()
        elif self.prediction_type == "v_prediction":
            x0 = ab.sqrt() * x_t - (1 - ab).sqrt() * out
        else:
            x0 = out
        return x0.clamp(-self.clip, self.clip) if self.clip is not None else x0

    @classmethod
    def from_pretrained(cls, name_or_path, subfolder: str | None = None, device=None,
                        **kwargs) -> "DiffusersDenoiser":
        """Load ``UNet2DModel`` + ``DDPMScheduler`` from the Hugging Face Hub or a local folder.

        ``name_or_path``: a Hub id ("google/ddpm-cifar10-32") or a folder holding config.json and
        the weights (a pipeline folder with unet/ and scheduler/ also works).  ``subfolder``: where
        the UNet lies inside it (then the scheduler is looked for there, in scheduler/, and at the
        top).  Extra keyword arguments go to the constructor (shape, clip)."""
        if not isinstance(name_or_path, (str, Path)):
            raise TypeError(f"name_or_path must be a Hub id or a folder (str or Path), "
                            f"got {type(name_or_path).__name__}.")
        unet_folders = [subfolder] if subfolder else [None, "unet"]
        unet = _load_first("UNet2DModel", name_or_path, unet_folders)
        scheduler = _load_first("DDPMScheduler", name_or_path,
                                list(dict.fromkeys([subfolder, "scheduler", None])))
        unet.eval().requires_grad_(False)
        if device is not None:
            unet.to(device)
        return cls(unet, scheduler, **kwargs)


def _load_first(class_name: str, name_or_path, subfolders: list):
    """``diffusers.<class_name>.from_pretrained`` from the first subfolder that has it."""
    import diffusers
    loader = getattr(diffusers, class_name)
    errors = []
    options = {"low_cpu_mem_usage": False} if class_name == "UNet2DModel" else {}  # no accelerate
    for sub in subfolders:
        try:
            return loader.from_pretrained(str(name_or_path), subfolder=sub, **options)
        except OSError as err:  # no connection, no such repo/folder, missing file
            errors.append(f"  subfolder={sub!r}: {str(err).splitlines()[0]}")
    raise PretrainedUnavailable(
        f"could not load a diffusers {class_name} from {str(name_or_path)!r}: the weights could "
        f"not be downloaded from the Hugging Face Hub (offline?) and no local folder has them.\n"
        + "\n".join(errors) + "\nTo use a local copy, pass its folder, e.g. "
        "DiffusersDenoiser.from_pretrained('/path/to/ddpm-cifar10-32'), where the folder holds "
        "config.json, diffusion_pytorch_model.safetensors (or .bin) and scheduler_config.json "
        "(or a pipeline's unet/ and scheduler/ folders); get one with "
        "`huggingface-cli download google/ddpm-cifar10-32 --local-dir /path/to/ddpm-cifar10-32`.")


def _check_unet(unet) -> None:
    from diffusers import UNet2DModel
    if not isinstance(unet, UNet2DModel):
        raise TypeError(f"unet must be a diffusers.UNet2DModel, got {type(unet).__name__}.")
    cfg = unet.config
    if cfg.get("num_class_embeds") is not None or cfg.get("class_embed_type") is not None:
        raise ValueError("class-conditional UNet2DModels are not supported: the Denoiser "
                         "protocol has no class label.")


def _signal_shape(cfg) -> tuple | None:
    size = cfg.get("sample_size")
    if size is None:
        return None
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return (int(cfg["in_channels"]), int(h), int(w))


def _used_channels(unet_cfg, sched_cfg) -> int:
    c_in, c_out = int(unet_cfg["in_channels"]), int(unet_cfg["out_channels"])
    learned = sched_cfg.get("variance_type") in ("learned", "learned_range")
    if c_out == c_in or (learned and c_out == 2 * c_in):
        return c_in
    raise ValueError(f"the UNet maps {c_in} to {c_out} channels; expected {c_in} (or {2 * c_in} "
                     "with a scheduler whose variance_type is 'learned' or 'learned_range').")


class _SampleOnly(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, t).sample


def sample_only(unet) -> torch.nn.Module:
    """``unet`` as a module ``net(x_t, t) -> unet(x_t, t).sample`` (e.g. for train_denoiser)."""
    _check_unet(unet)
    return _SampleOnly(unet)
