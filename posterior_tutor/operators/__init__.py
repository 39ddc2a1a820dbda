"""Forward operators A (with adjoint and proximal step) and the inverse problem y = A(x) + sigma n.

Every operator acts on a batch: x of shape (n, *in_shape) -> A(x) of shape (n, *out_shape).
The proximal step of the data term that all splitting samplers use is

    prox(z, y, rho, sigma) = argmin_x |A x - y|^2 / (2 sigma^2) + |x - z|^2 / (2 rho^2)
                           = (A^T A / sigma^2 + I / rho^2)^{-1} (A^T y / sigma^2 + z / rho^2).

Diagonal operators (denoising, inpainting), circular blur and super-resolution (circular blur +
decimation, Zhao et al. 2016) solve it in closed form; a dense matrix uses a direct solve; other
linear operators use conjugate gradients to a stated relative tolerance; nonlinear operators use
Gauss-Newton with a line search on the (smooth, strongly convex near z) objective.  ``rho`` may be a
float or one value per sample (a tensor of shape (n,)).

Images are (n, C, H, W).  Blur kernels are 2D tensors summing to 1 and are *centred*: the kernel's
pixel (kh // 2, kw // 2) sits on the output pixel, so a delta kernel is the identity and a symmetric
kernel gives a self-adjoint operator.
"""
from __future__ import annotations

import math
import warnings

import torch

from . import prox as _batched
from ..checks.values import check_float, check_generator
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


# -- concrete operators ------------------------------------------------------------------------
class Matrix(Operator):
    """y = A x for vectors: A of shape (m, d) acts on x of shape (n, d)."""

    def __init__(self, A):
        A = torch.as_tensor(A)
        if A.ndim != 2:
            raise ValueError(f"Matrix needs a 2D matrix (m, d), got shape {tuple(A.shape)}.")
        self.A = A.to(torch.float64)
        self.in_shape, self.out_shape = (A.shape[1],), (A.shape[0],)

    def __repr__(self):
        return f"Matrix({self.A.shape[0]}x{self.A.shape[1]})"

    def forward(self, x):
        return x @ self.A.to(x).T

    def adjoint(self, y):
        return y @ self.A.to(y)

    def matrix(self):
        return self.A.clone()

    def prox_batched(self, z, y, rho, sigma):
        return _batched.matrix(self.A, z, y, rho, sigma)

    def prox(self, z, y, rho, sigma):
        A = self.A.to(z.device)
        s2 = float(sigma) ** 2
        _per_sample(rho, z)  # validates the shape of rho
        r2 = torch.as_tensor(rho, dtype=torch.float64, device=z.device).reshape(-1) ** 2
        AtA = A.T @ A / s2
        eye = torch.eye(A.shape[1], dtype=torch.float64, device=z.device)
        rhs = (A.T @ y.double()) / s2 + z.double() / r2[:, None]
        if r2.numel() == 1:
            return torch.linalg.solve(AtA + eye / r2, rhs.T).T.to(z.dtype)
        mats = AtA[None] + eye[None] / r2[:, None, None]
        return torch.linalg.solve(mats, rhs[..., None])[..., 0].to(z.dtype)


class Denoising(Operator):
    """y = x + noise (A = I) for signals of any shape."""
    prox_broadcasts_y = True

    def __init__(self, shape=None):
        self.in_shape = self.out_shape = tuple(shape) if shape is not None else None

    def __repr__(self):
        return "Denoising()"

    def forward(self, x):
        return x.clone()

    def adjoint(self, y):
        return y.clone()

    def norm_squared(self, *args, **kwargs):
        return 1.0

    def prox(self, z, y, rho, sigma):
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        return (y / s2 + z / r2) / (1 / s2 + 1 / r2)


class Inpainting(Operator):
    """y = M * x with a 0/1 mask M of the signal's shape (missing entries are 0 in y)."""
    prox_broadcasts_y = True

    def __init__(self, mask):
        mask = torch.as_tensor(mask)
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("an inpainting mask must contain only 0 (missing) and 1 (observed).")
        self.mask = mask.to(torch.float32)
        self.in_shape = self.out_shape = tuple(mask.shape)

    def __repr__(self):
        return f"Inpainting(observed={self.mask.mean().item():.0%})"

    @classmethod
    def random(cls, shape, observed: float = 0.5, generator=None, device=None) -> "Inpainting":
        """Each pixel observed with probability ``observed`` (same mask for all channels), drawn
        from ``generator`` on ``device`` (default: the generator's device, else the CPU)."""
        check_generator(generator)
        shape = tuple(shape)
        pix = shape[-2:] if len(shape) == 3 else shape
        if device is None:
            device = generator.device if generator is not None else "cpu"
        m = (torch.rand(pix, generator=generator, device=device) < observed).float()
        return cls(m.expand(shape).clone())

    def forward(self, x):
        return self.mask.to(x) * x

    adjoint = forward

    def norm_squared(self, *args, **kwargs):
        return 1.0

    def prox(self, z, y, rho, sigma):
        m = self.mask.to(z)
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        return (m * y / s2 + z / r2) / (m / s2 + 1 / r2)


class BoxInpainting(Inpainting):
    """Inpainting with one missing rectangle (top, left, height, width); by default the central
    half of the image is hidden."""

    def __init__(self, shape, box=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"BoxInpainting needs an image shape (..., H, W), got {shape}.")
        H, W = shape[-2:]
        box = tuple(box) if box is not None else (H // 4, W // 4, H // 2, W // 2)
        if len(box) != 4:
            raise ValueError(f"box must be (top, left, height, width), got {box}.")
        top, left, h, w = box
        if not (0 <= top and 0 <= left and h > 0 and w > 0 and top + h <= H and left + w <= W):
            raise ValueError(f"box (top, left, height, width) = {box} does not fit an image of "
                             f"size {H}x{W}: it needs height, width > 0, top + height <= {H} "
                             f"and left + width <= {W}.")
        mask = torch.ones(shape)
        mask[..., top:top + h, left:left + w] = 0
        super().__init__(mask)
        self.box = (top, left, h, w)

    def __repr__(self):
        return f"BoxInpainting(box={self.box})"


# -- blur kernels -------------------------------------------------------------------------------
def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def gaussian_kernel(size: int, std: float) -> torch.Tensor:
    """size x size kernel k[i, j] proportional to exp(-((i - c)^2 + (j - c)^2) / (2 std^2)),
    c = (size - 1) / 2, normalised to sum 1."""
    size = _positive_int(size, "size")
    std = float(std)
    if not (std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be a finite number > 0, got {std}.")
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * std ** 2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def uniform_kernel(size: int) -> torch.Tensor:
    """size x size box kernel, every entry 1 / size^2."""
    size = _positive_int(size, "size")
    return torch.full((size, size), 1.0 / size ** 2, dtype=torch.float64)


def motion_kernel(size: int, angle_degrees: float = 0.0, length: float | None = None) -> torch.Tensor:
    """Linear motion blur: a segment of ``length`` pixels (default ``size``; 1 <= length <= size)
    through the kernel's centre c = (size - 1) / 2 at ``angle_degrees`` counter-clockwise from the
    horizontal (rows point down).  Anti-aliased as in MATLAB's fspecial('motion'): pixel p gets
    weight max(0, 1 - dist(p, segment)), the segment running between the centres of its end pixels
    (half-length (length - 1) / 2); then normalised to sum 1.  A horizontal or vertical segment of
    integer length is a uniform row or column of ``length`` pixels; length 1 is a delta."""
    size = _positive_int(size, "size")
    length = float(size if length is None else length)
    if not (1 <= length <= size):
        raise ValueError(f"length must be in [1, size] = [1, {size}], got {length}.")
    theta = math.radians(float(angle_degrees))
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    dx, dy = r[None, :], -r[:, None]  # column offset to the right, row offset upwards
    along = dx * math.cos(theta) + dy * math.sin(theta)
    across = -dx * math.sin(theta) + dy * math.cos(theta)
    beyond_end = (along.abs() - (length - 1) / 2).clamp_min(0)
    k = (1 - torch.sqrt(beyond_end ** 2 + across ** 2)).clamp_min(0)
    return k / k.sum()


def _image_shape(shape, who):
    """Validate one image shape (C, H, W)."""
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{who} works on images: one signal has shape (C, H, W), got {shape}.")
    return shape


def _check_y_size(y, size, op):
    if tuple(y.shape[-2:]) != tuple(size):
        raise ValueError(f"{op!r}: y has shape {tuple(y.shape)} but images of this size give "
                         f"measurements of size {tuple(size)}.")


def _fft_grid(H, W, like):
    """Integer DFT frequencies (kh, kw) as (H, 1) and (1, W) float64 tensors on like's device."""
    kh = torch.arange(H, dtype=torch.float64, device=like.device)[:, None]
    kw = torch.arange(W, dtype=torch.float64, device=like.device)[None, :]
    return kh, kw


class Blur(Operator):
    """Circular convolution y = k * x, computed as y = F^-1[K F(x)] with F the 2D DFT per channel.

    The kernel is centred: y[p] = sum_{i,j} k[i, j] x[p - (i - kh // 2, j - kw // 2)] (indices mod
    H, W), so K = F(kernel padded to H x W and rolled so that its centre is at (0, 0)).
    Adjoint: F^-1[conj(K) F(y)].  Prox (closed form, per frequency):

        x = F^-1[ (conj(K) F(y) / s^2 + F(z) / rho^2) / (|K|^2 / s^2 + 1 / rho^2) ].

    ``shape`` (C, H, W) fixes the image size (needed for ``matrix()``); without it any image works.
    """
    prox_broadcasts_y = True

    def __init__(self, kernel, shape=None):
        kernel = torch.as_tensor(kernel, dtype=torch.float64).detach().cpu()
        if kernel.ndim != 2 or kernel.numel() == 0:
            raise ValueError(f"a blur kernel must be a non-empty 2D tensor, got shape "
                             f"{tuple(kernel.shape)}.")
        _check_finite(kernel, "the kernel")
        self.kernel = kernel
        self.in_shape = self.out_shape = _image_shape(shape, "Blur") if shape is not None else None
        self._cache = {}

    def __repr__(self):
        return f"Blur({self.kernel.shape[0]}x{self.kernel.shape[1]} kernel)"

    def _check(self, x, what="x"):
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} acts on a batch of images (n, C, H, W); "
                             f"{what} has shape {tuple(x.shape)}.")
        if self.in_shape is not None and tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"{self!r} was built for images of shape {self.in_shape}; "
                             f"{what} has shape {tuple(x.shape)}.")

    def transfer(self, H: int, W: int, like: torch.Tensor) -> torch.Tensor:
        """K = F(centred kernel on the H x W grid), complex, on like's device (cached)."""
        key = (H, W, like.device, like.dtype)
        if key not in self._cache:
            kh, kw = self.kernel.shape
            rows = (torch.arange(kh) - kh // 2) % H
            cols = (torch.arange(kw) - kw // 2) % W
            pad = torch.zeros(H, W, dtype=torch.float64)
            pad.index_put_((rows[:, None].expand(kh, kw), cols[None, :].expand(kh, kw)),
                           self.kernel, accumulate=True)  # a kernel larger than the image wraps
            cdtype = torch.complex128 if like.dtype == torch.float64 else torch.complex64
            self._cache[key] = torch.fft.fft2(pad).to(device=like.device, dtype=cdtype)
        return self._cache[key]

    def input_shape_for(self, y_shape):
        return self.in_shape or _image_shape(y_shape, "Blur")

    def output_shape_for(self, x_shape):
        return self.out_shape or _image_shape(x_shape, "Blur")

    def forward(self, x):
        self._check(x)
        K = self.transfer(*x.shape[-2:], x)
        return torch.fft.ifft2(K * torch.fft.fft2(x)).real

    def adjoint(self, y):
        self._check(y, "y")
        K = self.transfer(*y.shape[-2:], y)
        return torch.fft.ifft2(K.conj() * torch.fft.fft2(y)).real

    def norm_squared(self, shape=None, *args, **kwargs):
        """max |K|^2 on the grid of ``shape`` (or in_shape); without a size, the bound
        (sum |k|)^2, which is exact for a non-negative kernel (attained at frequency 0)."""
        shape = shape if shape is not None else self.in_shape
        if shape is None:
            return self.kernel.abs().sum().item() ** 2
        H, W = tuple(shape)[-2:]
        return self.transfer(H, W, self.kernel).abs().pow(2).max().item()

    def prox(self, z, y, rho, sigma):
        self._check(z, "z")
        _check_y_size(y, z.shape[-2:], self)
        r2 = _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        K = self.transfer(*z.shape[-2:], z)
        num = K.conj() * torch.fft.fft2(y.to(z)) / s2 + torch.fft.fft2(z) / r2
        return torch.fft.ifft2(num / (K.abs() ** 2 / s2 + 1 / r2)).real


class SuperResolution(Operator):
    """y = S_f(k * x): circular blur (centred kernel, as in ``Blur``) then keep every f-th pixel,

        y[c, i, j] = (k * x)[c, f i + o, f j + o],   o = (f - 1) // 2.

    The default kernel is the f x f box, and with o chosen as above the operator is exactly
    f x f average pooling (``torch.nn.functional.avg_pool2d(x, f)``).  Images (C, H, W) with H and W
    divisible by f give measurements (C, H / f, W / f).  Adjoint: zero-filled upsampling, then the
    blur's adjoint.

    Prox, exact (Zhao, Wang, Dobigeon, Tourneret 2016).  Write x's DFT as X (size H x W, h = H/f,
    w = W/f) and K' = K e^{2 pi i (kh o / H + kw o / W)} the transfer function of the blur followed by
    a shift by o (so that decimation keeps pixels f i).  Decimation folds the spectrum:
    D(U)[k] = mean over the f x f aliases U[k + (a h, b w)]; zero-filled upsampling tiles it:
    T(V)[k] = V[k mod (h, w)].  The normal equation (A^T A / s^2 + I / rho^2) x = r reads
    conj(K') T(D(K' X)) / s^2 + X / rho^2 = R,  R = conj(K') T(F(y)) / s^2 + F(z) / rho^2,
    and Woodbury (D(|K'|^2 T(P)) = P D(|K'|^2)) gives, with a = 1 / rho^2,

        X = [ R - conj(K') T( D(K' R) / (a s^2 + D(|K'|^2)) ) ] / a.
    """
    prox_broadcasts_y = True

    def __init__(self, factor: int, shape=None, kernel=None):
        self.factor = _positive_int(factor, "the super-resolution factor")
        f = self.factor
        self.offset = (f - 1) // 2
        self.blur = Blur(uniform_kernel(f) if kernel is None else kernel)
        self.kernel = self.blur.kernel
        self.in_shape = self.out_shape = None
        if shape is not None:
            self.in_shape = self._check_size(_image_shape(shape, "SuperResolution"))
            C, H, W = self.in_shape
            self.out_shape = (C, H // f, W // f)

    def __repr__(self):
        kh, kw = self.kernel.shape
        return f"SuperResolution(factor={self.factor}, {kh}x{kw} kernel)"

    def _check_size(self, shape):
        H, W = shape[-2:]
        if H % self.factor or W % self.factor:
            raise ValueError(f"super-resolution by {self.factor} needs H and W divisible by "
                             f"{self.factor}, got an image of size {H}x{W}.")
        return tuple(shape)

    def _check(self, x, what="x"):
        if x.ndim != 4:
            raise ValueError(f"SuperResolution acts on a batch of images (n, C, H, W); "
                             f"{what} has shape {tuple(x.shape)}.")
        if self.in_shape is not None and tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"{self!r} was built for images of shape {self.in_shape}; "
                             f"{what} has shape {tuple(x.shape)}.")
        self._check_size(x.shape)

    def input_shape_for(self, y_shape):
        if self.in_shape is not None:
            return self.in_shape
        C, h, w = _image_shape(y_shape, "SuperResolution")
        return (C, h * self.factor, w * self.factor)

    def output_shape_for(self, x_shape):
        if self.out_shape is not None:
            return self.out_shape
        C, H, W = self._check_size(_image_shape(x_shape, "SuperResolution"))
        return (C, H // self.factor, W // self.factor)

    def forward(self, x):
        self._check(x)
        o, f = self.offset, self.factor
        return self.blur(x)[..., o::f, o::f]

    def adjoint(self, y):
        if y.ndim != 4:
            raise ValueError(f"SuperResolution.adjoint takes a batch (n, C, h, w); got shape "
                             f"{tuple(y.shape)}.")
        o, f = self.offset, self.factor
        up = y.new_zeros(*y.shape[:-2], y.shape[-2] * f, y.shape[-1] * f)
        up[..., o::f, o::f] = y
        return self.blur.adjoint(up)

    # Fourier-domain pieces of the closed-form prox
    def _shifted_transfer(self, H, W, like):
        """K' = transfer of the blur followed by a shift of o pixels up and left."""
        kh, kw = _fft_grid(H, W, like)
        K = self.blur.transfer(H, W, like)
        return K * torch.exp(2j * math.pi * self.offset * (kh / H + kw / W)).to(K.dtype)

    def _fold(self, U):
        """D(U): mean of the f x f aliased copies of an H x W spectrum -> h x w."""
        f = self.factor
        *lead, H, W = U.shape
        return U.reshape(*lead, f, H // f, f, W // f).mean(dim=(-4, -2))

    def _tile(self, V):
        """T(V): an h x w spectrum repeated f x f times -> H x W."""
        f = self.factor
        return V.repeat(*([1] * (V.ndim - 2)), f, f)

    def norm_squared(self, shape=None, *args, **kwargs):
        """|A|^2 = max D(|K'|^2) (the eigenvalues of A A^T) on the grid of ``shape``; without a
        size, the bound sum over the f x f polyphase components of (sum of their |k|)^2 (exact for
        the default box kernel: 1 / f^2)."""
        shape = shape if shape is not None else self.in_shape
        if shape is None:
            f = self.factor
            kh, kw = self.kernel.shape
            a = self.kernel.abs()
            return sum(a[i::f, j::f].sum().item() ** 2 for i in range(min(f, kh))
                       for j in range(min(f, kw)))
        H, W = self._check_size(tuple(shape))[-2:]
        K = self._shifted_transfer(H, W, self.kernel)
        return self._fold(K.abs() ** 2).real.max().item()

    def prox(self, z, y, rho, sigma):
        self._check(z, "z")
        _check_y_size(y, (z.shape[-2] // self.factor, z.shape[-1] // self.factor), self)
        a = 1 / _per_sample(rho, z) ** 2
        s2 = float(sigma) ** 2
        K = self._shifted_transfer(*z.shape[-2:], z)
        R = K.conj() * self._tile(torch.fft.fft2(y.to(z))) / s2 + a * torch.fft.fft2(z)
        P = self._fold(K * R) / (a * s2 + self._fold(K.abs() ** 2))
        X = (R - K.conj() * self._tile(P)) / a
        return torch.fft.ifft2(X).real


class Saturation(Operator):
    """A smooth nonlinear operator: y = tanh(gain * B x) / gain, with B a linear operator.

    It models a sensor that saturates (a soft clip) after a linear measurement B, e.g. a blurred
    image recorded by a detector that compresses bright values.  For small gain it tends to B."""

    linear = False

    def __init__(self, inner: Operator, gain: float = 1.0):
        if gain <= 0:
            raise ValueError(f"gain must be > 0, got {gain}.")
        if not inner.linear:
            raise ValueError("Saturation wraps a linear operator.")
        self.inner, self.gain = inner, float(gain)
        self.in_shape, self.out_shape = inner.in_shape, inner.out_shape

    def __repr__(self):
        return f"Saturation({self.inner!r}, gain={self.gain:g})"

    def input_shape_for(self, y_shape):
        return self.inner.input_shape_for(y_shape)

    def output_shape_for(self, x_shape):
        return self.inner.output_shape_for(x_shape)

    def forward(self, x):
        return torch.tanh(self.gain * self.inner(x)) / self.gain

    def _slope(self, x):
        """d tanh(gain u)/gain / du = 1 - tanh(gain u)^2 at u = B x."""
        return 1 - torch.tanh(self.gain * self.inner(x)) ** 2

    def vjp(self, x, v):
        return self.inner.adjoint(v * self._slope(x))

    def jvp(self, x, v):
        return self._slope(x) * self.inner(v)

    def _linearise(self, x):
        d = self._slope(x)
        return (lambda v: d * self.inner(v)), (lambda w: self.inner.adjoint(d * w))

    def lipschitz_squared(self, shape=None):
        return self.inner.norm_squared(shape)


# -- the inverse problem ------------------------------------------------------------------------
class InverseProblem:
    """y = A(x) + sigma * n with n ~ N(0, I).  g(x) = |A(x) - y|^2 / (2 sigma^2)."""

    def __init__(self, operator: Operator, sigma: float):
        if not isinstance(operator, Operator):
            raise TypeError(f"operator must be a posterior_tutor.operators.Operator, "
                            f"got {type(operator).__name__}.")
        sigma = float(sigma)
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"the noise level sigma must be a finite number > 0, got {sigma}.")
        self.operator, self.sigma = operator, sigma

    def __repr__(self):
        return f"InverseProblem({self.operator!r}, sigma={self.sigma:g})"

    def measure(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """y for one signal x (no sample dimension)."""
        check_float(x, "x")
        check_generator(generator)
        if self.operator.in_shape is not None and tuple(x.shape) != tuple(self.operator.in_shape):
            raise ValueError(f"measure() takes one signal of shape {tuple(self.operator.in_shape)}"
                             f" (no sample dimension), got {tuple(x.shape)}.")
        self.operator.output_shape_for(tuple(x.shape))  # operators without a fixed size check here
        _check_finite(x, "x")
        clean = self.operator(x[None])[0]
        return clean + self.sigma * randn(clean.shape, generator=generator,
                                          device=x.device, dtype=x.dtype)

    def check_y(self, y: torch.Tensor, device=None) -> tuple:
        """Validate y; return the shape of one signal x that it measures."""
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}.")
        _check_finite(y, "y")
        op = self.operator
        if op.out_shape is not None and tuple(y.shape) != tuple(op.out_shape):
            extra = (" (y carries no sample dimension)"
                     if tuple(y.shape[1:]) == tuple(op.out_shape) else "")
            raise ValueError(f"y has shape {tuple(y.shape)} but {op!r} produces measurements of "
                             f"shape {tuple(op.out_shape)}{extra}.")
        if device is not None and torch.device(device).type != y.device.type:
            raise ValueError(f"y is on {y.device} but the sampler runs on {device}: "
                             f"move it with y.to({str(device)!r}).")
        return op.input_shape_for(tuple(y.shape))

    def residual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.operator(x) - y

    def data_fit(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """g(x) per sample, shape (n,)."""
        return 0.5 * self.residual(x, y).flatten(1).pow(2).sum(1) / self.sigma ** 2

    def log_likelihood(self, x, y):
        return -self.data_fit(x, y)

    def grad_data_fit(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """grad g(x) = J_A(x)^T (A(x) - y) / sigma^2."""
        return self.operator.vjp(x, self.residual(x, y)) / self.sigma ** 2

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho) -> torch.Tensor:
        """argmin_x |A x - y|^2 / (2 sigma^2) + |x - z|^2 / (2 rho^2), batched over z."""
        return self.operator.prox(z, y, rho, self.sigma)

    def prox_batched(self, z: torch.Tensor, y: torch.Tensor, rho) -> torch.Tensor:
        """The same with one measurement per sample, y of shape (n, *y_shape)."""
        return self.operator.prox_batched(z, y, rho, self.sigma)


def _check_finite(v, name):
    if not torch.isfinite(v).all():
        bad = (~torch.isfinite(v)).sum().item()
        raise ValueError(f"{name} contains {bad} NaN or Inf value(s); clean or re-measure it first.")
