"""The 2D view's geometry: an exact density on a grid (cached), the levels of its 50/90/99%
highest-density regions, and axis limits that stay fixed over a run so frames do not jump.

    xlim, ylim = limits_2d(steps, density)      # robust quantiles of particles and x0 estimates
    X, Y, P = _density_grid(density, xlim, ylim)
    levels = _hpd_levels(P)                       # contour levels holding 99%, 90%, 50% of the mass
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from .steps import _np

_GRID_CACHE: dict = {}
_GRID_CACHE_SIZE = 16
GRID_RES = 120


def _density_grid(density, xlim, ylim, res: int = GRID_RES):
    """(X, Y, P) with P the density on a res x res grid; cached per (density, limits)."""
    key = (id(density), tuple(map(float, xlim)), tuple(map(float, ylim)), res)
    hit = _GRID_CACHE.get(key)
    if hit is not None and hit[0] is density:
        return hit[1]
    xs = np.linspace(xlim[0], xlim[1], res)
    ys = np.linspace(ylim[0], ylim[1], res)
    X, Y = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=torch.float64)
    with torch.no_grad():
        lp = density.log_prob(pts)
    lp = _np(lp).reshape(res, res)
    P = np.exp(lp - np.max(lp[np.isfinite(lp)], initial=-np.inf)) if np.isfinite(lp).any() \
        else np.zeros_like(lp)
    P = np.where(np.isfinite(P), P, 0.0)
    if len(_GRID_CACHE) >= _GRID_CACHE_SIZE:
        _GRID_CACHE.pop(next(iter(_GRID_CACHE)))
    _GRID_CACHE[key] = (density, (X, Y, P))
    return X, Y, P


def _hpd_levels(P: np.ndarray, masses=(0.99, 0.9, 0.5)) -> list[float]:
    """Density levels whose super-level sets hold the given probability masses (on the grid)."""
    flat = np.sort(P.ravel())[::-1]
    tot = flat.sum()
    if tot <= 0:
        return []
    cum = np.cumsum(flat) / tot
    levels = sorted({float(flat[min(np.searchsorted(cum, m), flat.size - 1)]) for m in masses})
    return [lv for lv in levels if lv > 0]


def limits_2d(steps: Iterable, density=None, pad: float = 0.08, q: float = 0.005):
    """Axis limits covering the particles and x0 estimates of all steps (robust quantiles, so a
    few diverging particles do not squash the picture) and the modes of ``density``."""
    pts = []
    for s in steps:
        x = _np(s.x).reshape(s.x.shape[0], -1)[:, :2]
        pts.append(x)
        if getattr(s, "x0", None) is not None:
            pts.append(_np(s.x0).reshape(s.x.shape[0], -1)[:, :2])
    if density is not None and getattr(density, "means", None) is not None:
        m = _np(density.means)
        if m.ndim == 2 and m.shape[1] == 2:
            pts.append(m)
    P = np.concatenate(pts, 0)
    P = P[np.isfinite(P).all(1)]
    if P.size == 0:
        return (-3.0, 3.0), (-3.0, 3.0)
    lo = np.quantile(P, q, axis=0)
    hi = np.quantile(P, 1 - q, axis=0)
    span = np.maximum(hi - lo, 1e-3)
    lo, hi = lo - pad * span, hi + pad * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))
