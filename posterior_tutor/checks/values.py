"""Checks shared by every public entry point: the generator, the dtype of inputs, non-finite runs.

dtype rule (stated once here, held everywhere):

* inputs (``y``, training data, signals) must be floating point: integer, boolean and complex
  tensors are refused with a ``TypeError`` naming the argument (an integer image would be
  truncated by the operators, a complex one is not a signal);
* a prior backed by a network has a dtype, that of its parameters: inputs are cast to it (float64
  data on a float32 network are cast down once per call, with a one-time ``DtypeWarning``; float16
  is cast up silently);
* a prior without parameters (the exact Gaussian-mixture denoiser) has no dtype of its own: the
  computation follows the input, float32 or float64 (float16 / bfloat16 are raised to the default
  dtype, ``torch.get_default_dtype()``);
* noise drawn without an input to follow (prior samples, mixture samples) uses the prior's dtype,
  else the default dtype, so ``torch.set_default_dtype(torch.float64)`` gives float64 throughout.
"""
from __future__ import annotations

import warnings

import torch


class NonFiniteError(ValueError):
    """A run (sampling or training) produced NaN or Inf; the message names the step and the
    options that were set."""


class DtypeWarning(UserWarning):
    """An input was cast to a narrower floating-point dtype (e.g. float64 -> float32)."""


_WARNED: set = set()


def check_generator(generator, name: str = "generator") -> None:
    """``generator`` must be a ``torch.Generator`` or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {generator!r} "
                        f"({type(generator).__name__}); make one with "
                        "torch.Generator().manual_seed(seed) (a seed, a numpy Generator or a "
                        "string is not one).")


def check_positive_int(value, name: str) -> None:
    """``value`` must be an int >= 1 (a bool is not one), else a ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_generator_on(generator, y) -> None:
    """A generator must live on y's device type (the draws are made there)."""
    if generator is not None and generator.device.type != y.device.type:
        raise ValueError(f"the generator lives on {generator.device} but y is on {y.device}: "
                         f"make it with torch.Generator(device={str(y.device)!r}).")


def dtype_of(module_or_den) -> torch.dtype | None:
    """The floating dtype of the parameters behind a network, a Denoiser or a list of tensors;
    None when there are none (e.g. the exact mixture denoiser)."""
    obj = getattr(module_or_den, "net", module_or_den)
    if isinstance(obj, torch.nn.Module):
        params = list(obj.parameters())
    elif isinstance(obj, (list, tuple)):
        params = list(obj)
    else:
        params = []
    for p in params:
        if isinstance(p, torch.Tensor) and p.is_floating_point():
            return p.dtype
    return None


def check_float(x: torch.Tensor, name: str) -> None:
    """Refuse integer, boolean and complex tensors with a message naming the argument."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.is_complex():
        raise TypeError(f"{name} is complex ({x.dtype}); signals and measurements here are real: "
                        f"pass {name}.real or a real tensor.")
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}; pass floating-point values (e.g. "
                        f"{name}.float(), scaled to the data range) - an integer {name} would be "
                        "truncated by the computation.")


def conform(x: torch.Tensor, dtype: torch.dtype | None, name: str) -> torch.Tensor:
    """``x`` in the dtype ``dtype`` (the prior's; None: follow x, at least the default dtype),
    after refusing non-float input; a narrowing cast warns once per (from, to, name)."""
    check_float(x, name)
    if dtype is None:
        dtype = torch.promote_types(x.dtype, torch.get_default_dtype())
        if x.dtype == torch.float64 or x.dtype == dtype:
            return x
    if x.dtype == dtype:
        return x
    if torch.finfo(x.dtype).bits > torch.finfo(dtype).bits:
        key = (x.dtype, dtype, name)
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(f"{name} is {x.dtype} but the model computes in {dtype}: {name} is "
                          f"cast to {dtype} (pass {name}.to({dtype}) to silence this; this "
                          "warning is shown once).", DtypeWarning, stacklevel=3)
    return x.to(dtype)


def finite_or_raise(value, what: str, where: str, advice: str) -> None:
    """Raise NonFiniteError when ``value`` (a float or a tensor) holds NaN or Inf."""
    ok = (torch.isfinite(value).all().item() if isinstance(value, torch.Tensor)
          else value == value and abs(value) != float("inf"))
    if not ok:
        raise NonFiniteError(f"{what} became NaN or Inf {where}; {advice}")
