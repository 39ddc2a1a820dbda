"""The input checks of UD2M's training and of ``with_calls``: each says what was wrong and what
to do, before any network runs (no equations here; ``train.py`` uses them)."""
from __future__ import annotations

import math

import torch

from ...denoisers import Denoiser
from ...operators import InverseProblem
from .discriminator import y_as_image

__all__ = ["check_calls", "check_training_inputs", "check_numbers", "check_objects", "y_width",
           "refuse_unknown",
           "check_lpips"]


def check_objects(operators, lora_layers):
    """operators: None, a callable or a non-empty list of problems; lora_layers: None or names."""
    if not (operators is None or callable(operators) or (
            isinstance(operators, (list, tuple)) and operators
            and all(isinstance(p, InverseProblem) for p in operators))):
        raise TypeError("operators must be None, a callable returning an InverseProblem or a "
                        f"non-empty list of InverseProblems, got {operators!r}.")
    if not (lora_layers is None or (isinstance(lora_layers, (list, tuple))
                                    and all(isinstance(v, str) for v in lora_layers))):
        raise TypeError(f"lora_layers must be None or a list of layer names, got {lora_layers!r}.")


def y_width(prob, x_one, shape) -> int:
    """Channels of y as an image (images) or entries of y (vectors), for the discriminator."""
    y = prob.operator(x_one)
    if len(shape) == 3:
        return y_as_image(prob, y, shape).shape[1]
    return y[0].numel()


def check_lpips(shape, net, xs):
    if len(shape) != 3:
        raise ValueError("lpips_weight > 0 needs images (n, C, H, W); LPIPS is not defined for "
                         "vectors.")
    from ...metrics import lpips
    lpips(xs[:1], xs[:1], net=net)   # raises LPIPSWeightsUnavailable now, not mid-training


def check_training_inputs(den, prob, xs, K, N, eta, rank, train_times) -> tuple:
    if not isinstance(den, Denoiser):
        raise TypeError(f"den must be a posterior_tutor Denoiser, got {type(den).__name__}.")
    if not isinstance(prob, InverseProblem):
        raise TypeError(f"prob must be an InverseProblem, got {type(prob).__name__}.")
    if not isinstance(xs, torch.Tensor) or xs.ndim < 2 or xs.shape[0] < 1:
        raise ValueError("xs_train must be a tensor of clean signals (n, ...), n >= 1; got "
                         f"{getattr(xs, 'shape', type(xs).__name__)}.")
    if not torch.isfinite(xs).all():
        raise ValueError(f"xs_train contains {(~torch.isfinite(xs)).sum().item()} NaN or Inf "
                         "value(s); clean the training data first.")
    shape = tuple(xs.shape[1:])
    if den.shape is not None and shape != tuple(den.shape):
        raise ValueError(f"xs_train holds signals of shape {shape} but the prior models signals "
                         f"of shape {tuple(den.shape)}.")
    prob.operator.output_shape_for(shape)
    if prob.operator.in_shape is not None and shape != tuple(prob.operator.in_shape):
        raise ValueError(f"xs_train holds signals of shape {shape} but {prob.operator!r} acts on "
                         f"{tuple(prob.operator.in_shape)}.")
    check_calls(den.schedule, K, N)
    _check_positive_int("rank", rank)
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must be in [0, 1], got {eta}.")
    if train_times not in ("uniform", "grid"):
        raise ValueError(f"train_times must be 'uniform' or 'grid', got {train_times!r}.")
    return shape


def _check_positive_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}.")


def check_calls(schedule, K, N):
    """K iterations per block and N outer steps: positive integers, N placeable on the schedule."""
    _check_positive_int("K", K)
    _check_positive_int("N", N)
    schedule.timesteps(N, "quadratic")   # N too large for the schedule raises here


def check_numbers(opts, lpips_weight, sigma_factor):
    for name, least in (("steps", 0), ("batch", 1)):   # steps = 0: the untrained sampler
        v = opts[name]
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {v!r}.")
    if not opts["lr"] > 0:
        raise ValueError(f"lr must be > 0, got {opts['lr']}.")
    for name, v in (("adv_weight", opts["adv_weight"]), ("gp_weight", opts["gp_weight"]),
                    ("lpips_weight", lpips_weight)):
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number >= 0, got {v}.")
    if not (sigma_factor > 0 and math.isfinite(sigma_factor)):
        raise ValueError(f"sigma_factor must be a finite number > 0, got {sigma_factor}.")


def refuse_unknown(unknown: dict) -> None:
    """A TypeError naming the options ``ud2m.train`` was given but does not have."""
    if unknown:
        raise TypeError(f"ud2m.train has no option(s) {sorted(unknown)}; its options are steps, "
                        "batch, lr, K, N, eta, rank, adv_weight, gp_weight, lpips_weight, "
                        "lpips_net, operators, sigma_factor, train_times, lora_layers, hidden, "
                        "x0_weighting, init, progress, checkpoint, checkpoint_every.")
