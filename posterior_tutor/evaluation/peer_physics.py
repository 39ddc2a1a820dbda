"""Our inverse problems in deepinv's terms: the physics and the measurement, in its [0, 1] scale.

    physics = deepinv_physics(problem, device=y.device)     # a deepinv.physics.Physics
    yp = deepinv_y(problem, y)                               # y' = (y + A 1) / 2

We work in [-1, 1], deepinv in [0, 1]: x' = (x + 1) / 2, and Gaussian noise of std s on x is noise
of std s / 2 on x'.  A linear A then maps x' to A x' = (A x + A 1) / 2, so the deepinv physics is
the SAME linear operator, with measurement y' = (y + A 1) / 2 and noise std sigma / 2.  Matches, all
exact to round-off (tests/test_deepinv_oracle.py):

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
when deepinv's filter is our kernel moved o pixels up and left (zero-padded to an odd size).

Prox.  deepinv's ``physics.prox_l2(z, y, gamma) = argmin_x gamma/2 |A x - y|^2 + 1/2 |x - z|^2``;
ours ``problem.prox(z, y, rho)`` weighs |A x - y|^2 / (2 sigma^2) + |x - z|^2 / (2 rho^2), hence gamma
= rho^2 / sigma^2, unchanged by the [0, 1] map (both terms scale by 1/4).
"""
from __future__ import annotations

import torch

try:
    import deepinv as dinv
except ImportError as err:  # pragma: no cover - deepinv is a dependency
    raise ImportError("posterior_tutor.evaluation.peer_physics needs deepinv (pip install "
                      "deepinv): it builds deepinv's physics for our problems.") from err

from .. import operators as O
from ..operators import InverseProblem


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


def deepinv_physics(problem: InverseProblem, shape=None, device=None, dtype=torch.float32):
    """The deepinv physics of ``problem`` in deepinv's [0, 1] scale (noise std problem.sigma / 2).

    Exact counterparts for Denoising, Inpainting / BoxInpainting, Blur and SuperResolution; other
    linear operators are wrapped (``LinearPhysics`` with our A and A^T); a nonlinear operator gives
    a ``Physics`` with A'(x') = (A(2 x' - 1) + A(1)) / 2 (usable by DPS, which needs only A).
    ``shape`` (C, H, W) is needed only for operators without a fixed size.  The physics adds no
    noise of its own to what we pass; use ``deepinv_y`` for the measurement."""
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"problem must be an InverseProblem, got {type(problem).__name__}.")
    op = problem.operator
    noise = dinv.physics.GaussianNoise(sigma=problem.sigma / 2)
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


def deepinv_y(problem: InverseProblem, y: torch.Tensor, shape=None) -> torch.Tensor:
    """Our measurement y (no sample dimension, [-1, 1] scale) in deepinv's scale:
    y' = (y + A(1)) / 2 (for linear A: A x' with x' = (x + 1) / 2, plus noise of std sigma / 2)."""
    shape = problem.check_y(y)
    one = torch.ones(1, *shape, dtype=y.dtype, device=y.device)
    return (y + problem.operator(one)[0]) / 2
