"""Reading ``Step`` records for the viewers: numbers out of a step, no drawing.

A sampler's ``Step`` (see ``samplers/base.py``) holds tensors that may live on a GPU and carry
autograd history.  The viewers keep CPU copies (``_detach``), turn tensors into float64 numpy
arrays (``_np``), write the one-line caption "step i/total · t · phase · ESS · NFE" (``_step_info``),
find where a data-consistency correction starts (``_correction_origin``), pick frames by index
(negative counts from the end, ``_pick``) and choose between the 2D and the image view from the
shape of the state (``_auto_view``).  Nothing here imports matplotlib or ipywidgets.
"""
from __future__ import annotations

import types

import numpy as np
import torch


def _np(v) -> np.ndarray | None:
    if v is None:
        return None
    if isinstance(v, torch.Tensor):
        return v.detach().to("cpu", torch.float64).numpy()
    return np.asarray(v, dtype=np.float64)


def _detach(step, device="cpu"):
    """A CPU copy of a step with no autograd history (uses ``Step.detached`` when present)."""
    if hasattr(step, "detached"):
        return step.detached(device)
    mv = lambda v: v.detach().to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
    return types.SimpleNamespace(
        i=getattr(step, "i", 0), t=getattr(step, "t", None), x=mv(step.x),
        x0=mv(getattr(step, "x0", None)), phase=getattr(step, "phase", ""),
        extras={k: mv(v) for k, v in (getattr(step, "extras", None) or {}).items()})


def _extras(step) -> dict:
    return getattr(step, "extras", None) or {}


def _step_info(step, total: int | None = None) -> str:
    i = getattr(step, "i", None)
    parts = []
    if i is not None:
        parts.append(f"step {i}" + (f"/{total}" if total is not None else ""))
    t = getattr(step, "t", None)
    if isinstance(t, torch.Tensor):
        t = t.flatten()[0].item() if t.numel() else None
    if t is not None:
        parts.append(f"t={t:g}" if isinstance(t, float) else f"t={t}")
    phase = getattr(step, "phase", "")
    if phase:
        parts.append(str(phase))
    ess = _extras(step).get("ess")
    if ess is not None:                      # SMC: the mean effective sample size of the systems
        parts.append(f"ESS {float(_np(ess).mean()):.0f}"
                     + (" (resampled)" if bool(_np(_extras(step).get("resampled", 0)).any())
                        else ""))
    nfe = _extras(step).get("nfe")
    if nfe is not None:
        parts.append(f"NFE {int(nfe)}")
    return "  ·  ".join(parts)


def _full_title(step, title: str | None, total: int | None) -> str:
    info = _step_info(step, total)
    return f"{title}\n{info}" if title else info


def _correction_origin(step, x: np.ndarray):
    """Start points and vectors of the correction arrows, or (None, None).

    Samplers apply the correction either to the state (DPS: ``extras["before_correction"]`` +
    correction = x) or to the x0 estimate (DiffPIR, DAPS: ``extras["x0_prior"]`` / ``"x0_ode"`` +
    correction = x0).  The start is the recorded pre-correction point: ``before_correction``, else
    any other extra with extra + correction = x or x0, else ``x - correction``."""
    ex = _extras(step)
    corr = _np(ex.get("correction"))
    if corr is None:
        return None, None
    n = x.shape[0]
    corr = corr.reshape(n, -1)
    for key in ("before_correction", "pre_correction"):
        if ex.get(key) is not None:
            return _np(ex[key]).reshape(n, -1), corr
    targets = [x]
    if getattr(step, "x0", None) is not None:
        targets.insert(0, _np(step.x0).reshape(n, -1))
    for key, v in ex.items():
        if key == "correction" or not isinstance(v, torch.Tensor) or v.numel() != corr.size:
            continue
        v = _np(v).reshape(n, -1)
        for target in targets:
            tol = 1e-4 * (1.0 + np.abs(target).max())
            if np.allclose(v + corr, target, rtol=0.0, atol=tol):
                return v, corr
    return x - corr, corr


def _pick(frames: list, idx) -> list:
    m = len(frames)
    out = []
    for i in idx:
        j = i + m if i < 0 else i
        if not 0 <= j < m:
            raise IndexError(f"frame index {i} out of range for {m} frames.")
        out.append(frames[j])
    return out


def _auto_view(step) -> str:
    nd = step.x.ndim
    if nd == 2:
        if step.x.shape[1] < 2:
            raise ValueError(f"no view for states of shape {tuple(step.x.shape)} (need (n, 2)).")
        return "2d"
    if nd in (3, 4):
        return "image"
    raise ValueError(f"no view for states of shape {tuple(step.x.shape)}; "
                     "expected (n, 2) points or (n, C, H, W) images.")
