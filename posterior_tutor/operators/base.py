"""The ``Operator`` base class and the generic solvers every operator inherits.

An operator acts on a batch: x of shape (n, *in_shape) -> A(x) of shape (n, *out_shape)
(``in_shape`` None: any image, and ``input_shape_for`` / ``output_shape_for`` say which y it gives).
Linear operators implement ``forward`` and ``adjoint``; nonlinear ones set ``linear = False`` and
get their Jacobian products from autograd:

    vjp(x, v) = J_A(x)^T v      (reverse mode),      jvp(x, v) = J_A(x) v      (forward mode).

The proximal step of the data term that all splitting samplers use is

    prox(z, y, rho, sigma) = argmin_x |A x - y|^2 / (2 sigma^2) + |x - z|^2 / (2 rho^2)
                           = (A^T A / sigma^2 + I / rho^2)^{-1} (A^T y / sigma^2 + z / rho^2).

Here it is solved generically, for any operator:

* linear A: conjugate gradients on the normal equation above, to a stated relative tolerance
  (``_prox_cg``); the families override ``prox`` with a closed form or a direct solve;
* nonlinear A: Gauss-Newton, each step a CG solve of (J^T J / sigma^2 + I / rho^2) p = -grad,
  then an Armijo backtracking line search (``_prox_gauss_newton``).

``rho`` may be a float or one value per sample (a tensor of shape (n,)); ``_per_sample`` checks it
and shapes it to broadcast against the batch.  ``norm_squared`` gives |A|^2 by power iteration
(the step sizes of DAPS, PnP-ULA and Spin use it); ``matrix`` the dense matrix of a small operator.
"""
from __future__ import annotations

import math
import warnings

import torch

from . import prox as _batched
from ..schedules import randn


class Operator:
    """Base class.  Subclasses set ``in_shape``/``out_shape`` (None = any image) and implement
    ``forward`` (and ``adjoint`` when linear)."""

    linear = True
    in_shape: tuple | None = None
    out_shape: tuple | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y):
        raise NotImplementedError(f"{type(self).__name__} is nonlinear: use vjp(x, v) instead.")

    def vjp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """J_A(x)^T v: the adjoint for linear A, autograd for nonlinear A."""
        if self.linear:
            return self.adjoint(v)
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.forward(xr), xr, v)
        return g

    def jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """J_A(x) v: A v for linear A, forward-mode autograd for nonlinear A."""
        if self.linear:
            return self.forward(v)
        with warnings.catch_warnings():
            # torch's forward mode loads its jvp decompositions through torch.jit.script on first
            # use and warns that jit.script is deprecated: torch's own business, not the caller's
            warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated",
                                    category=FutureWarning)
            return torch.func.jvp(self.forward, (x.detach(),), (v,))[1]

    def _linearise(self, x: torch.Tensor):
        """(v -> J_A(x) v, w -> J_A(x)^T w) at a fixed x; subclasses may precompute what they can."""
        return (lambda v: self.jvp(x, v)), (lambda w: self.vjp(x, w))

    # shapes: operators without a fixed size work on any image and say what y they give
    def input_shape_for(self, y_shape: tuple) -> tuple:
        return tuple(self.in_shape) if self.in_shape is not None else tuple(y_shape)

    def output_shape_for(self, x_shape: tuple) -> tuple:
        return tuple(self.out_shape) if self.out_shape is not None else tuple(x_shape)

    def matrix(self) -> torch.Tensor:
        """Dense matrix of a linear operator on a fixed-size input (for small problems and tests)."""
        if not self.linear or self.in_shape is None:
            raise ValueError(f"{type(self).__name__} has no dense matrix "
                             "(it is nonlinear or its input size is not fixed).")
        d = math.prod(self.in_shape)
        eye = torch.eye(d, dtype=torch.float64).reshape(d, *self.in_shape)
        return self.forward(eye).reshape(d, -1).T

    def norm_squared(self, shape=None, iters: int = 50, generator=None) -> float:
        """|A|^2 (largest eigenvalue of A^T A) by power iteration; for linear operators.

        The start is drawn from ``generator``, or (None) from a fixed seed: the same value on
        every call, and torch's global random state is never touched."""
        if shape is None and self.in_shape is None:
            raise ValueError(f"{type(self).__name__} has no fixed input size: "
                             "pass shape=(...) of one signal to norm_squared().")
        shape = tuple(shape if shape is not None else self.in_shape)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        x = randn((1, *shape), generator=g, device=g.device, dtype=torch.float64).cpu()
        val = 0.0
        for _ in range(iters):
            x = x / x.norm()
            x = self.adjoint(self.forward(x))
            val = x.norm().item()
        return val

    # -- proximal step of the data term ----------------------------------------------------
    prox_broadcasts_y = False   # True where ``prox`` takes a batch of y as it is (closed forms)

    def prox_batched(self, z: torch.Tensor, y: torch.Tensor, rho, sigma: float) -> torch.Tensor:
        """``prox`` with one measurement per sample, y of shape (n, *out_shape) (``prox.py``)."""
        if self.prox_broadcasts_y:
            return self.prox(z, y, rho, sigma)
        return _batched.per_sample(self, z, y, rho, sigma)

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho, sigma: float) -> torch.Tensor:
        if self.linear:
            return self._prox_cg(z, y, rho, sigma)
        return self._prox_gauss_newton(z, y, rho, sigma)

    def _prox_cg(self, z, y, rho, sigma, tol: float = 1e-6, max_iter: int = 500):
        """Conjugate gradients on (A^T A / s^2 + I / rho^2) x = A^T y / s^2 + z / rho^2,
        run until |residual| <= tol |right-hand side| for every sample."""
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2

        def normal(v):
            return self.adjoint(self.forward(v)) / s2 + v / r2

        b = self.adjoint(y.expand(z.shape[0], *y.shape)) / s2 + z / r2
        return _conjugate_gradient(normal, b, z.clone(), tol, max_iter)

    def _prox_gauss_newton(self, z, y, rho, sigma, tol: float | None = None, max_iter: int = 100):
        """Gauss-Newton for a nonlinear A on F(x) = |A(x) - y|^2/(2 s^2) + |x - z|^2/(2 rho^2).

        Step: solve (J^T J / s^2 + I / rho^2) p = -grad F(x) by conjugate gradients (J = J_A(x)),
        then backtrack x <- x + t p until F decreases enough (Armijo).  Stops per sample when
        |grad F(x)| <= tol |grad F(z)| (tol = 1e-6 in float64, 1e-4 in float32) or when the line
        search can no longer decrease F (round-off)."""
        if tol is None:
            tol = 1e-6 if z.dtype == torch.float64 else 1e-4
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        r2n = r2.reshape(-1)

        def objective(x):
            res = self.forward(x) - y
            return 0.5 * _dot(res, res) / s2 + 0.5 * _dot(x - z, x - z) / r2n

        x = z.detach().clone()
        g0 = None
        active = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
        for _ in range(max_iter):
            jvp, vjp = self._linearise(x)
            grad = vjp(self.forward(x) - y) / s2 + (x - z) / r2
            gnorm = _dot(grad, grad).sqrt()
            if g0 is None:
                g0 = gnorm
            active = active & (gnorm > tol * g0)
            if not active.any():
                break
            step = _conjugate_gradient(lambda v: vjp(jvp(v)) / s2 + v / r2, -grad,
                                       torch.zeros_like(x), 1e-3, 200)
            f0, slope = objective(x), _dot(grad, step)
            t = torch.ones_like(f0)
            for _ in range(40):  # halve t where the Armijo condition fails
                ok = objective(x + _bc(t, x) * step) <= f0 + 1e-4 * t * slope
                if ok.all():
                    break
                t = torch.where(ok, t, t / 2)
            active = active & ok & (slope < 0)  # no sufficient decrease left: converged
            x = x + _bc(torch.where(active, t, torch.zeros_like(t)), x) * step
        return x

    def _prox_gradient(self, z, y, rho, sigma, iters: int = 200, tol: float = 1e-7):
        """Gradient descent with backtracking-free step 1/L on the prox objective (nonlinear A)."""
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        lip = self.lipschitz_squared() / s2 + 1 / r2
        x = z.clone()
        for _ in range(iters):
            grad = self.vjp(x, self.forward(x) - y) / s2 + (x - z) / r2
            step = grad / lip
            x = x - step
            if step.abs().max() < tol:
                break
        return x

    def lipschitz_squared(self) -> float:
        """A bound on |J_A|^2 used for step sizes of nonlinear operators."""
        raise NotImplementedError


def _dot(a, b):
    return (a * b).flatten(1).sum(1)


def _conjugate_gradient(apply, b, x, tol, max_iter):
    """Solve apply(x) = b for a batch of symmetric positive definite systems (one per sample),
    until |b - apply(x)| <= tol |b| for every sample; converged samples stop moving."""
    r = b - apply(x)
    p = r.clone()
    rs = _dot(r, r)
    bnorm = _dot(b, b).sqrt()
    for _ in range(max_iter):
        active = rs.sqrt() > tol * bnorm
        if not active.any():
            break
        Ap = apply(p)
        alpha = torch.where(active, rs / _dot(p, Ap).clamp_min(1e-300), torch.zeros_like(rs))
        x = x + _bc(alpha, x) * p
        r = r - _bc(alpha, x) * Ap
        rs_new = _dot(r, r)
        beta = torch.where(active, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        p = r + _bc(beta, x) * p
        rs = torch.where(active, rs_new, rs)
    return x


def _bc(v, like):
    return v.reshape(-1, *([1] * (like.ndim - 1)))


def _per_sample(rho, like):
    rho = torch.as_tensor(rho, dtype=like.dtype, device=like.device)
    if rho.ndim == 0:
        return rho
    if rho.shape != (like.shape[0],):
        raise ValueError(f"rho must be a number or one value per sample, got shape {tuple(rho.shape)}.")
    return _bc(rho, like)



def _check_finite(v, name):
    if not torch.isfinite(v).all():
        bad = (~torch.isfinite(v)).sum().item()
        raise ValueError(f"{name} contains {bad} NaN or Inf value(s); clean or re-measure it first.")
