"""Convolution operators diagonalised by the 2D DFT: circular ``Blur`` and ``SuperResolution``.

Images are (n, C, H, W); the DFT F acts per channel.  A circular convolution with a centred kernel
k is y = F^-1[K F(x)] with K = F(k padded to H x W, centre rolled to (0, 0)), so A^T A is
diagonal in frequency and the prox of the data term is closed form, frequency by frequency.
Super-resolution (blur, then keep every f-th pixel) folds the spectrum into f x f aliases; the
Woodbury identity still gives its prox in closed form (Zhao, Wang, Dobigeon, Tourneret 2016,
"Fast single image super-resolution using a new analytical solution for l2-l2 problems").  Both
broadcast the prox over a batch of y (``prox_broadcasts_y = True``).  Each class's docstring
carries its equations; kernels live in ``kernels.py``.
"""
from __future__ import annotations

import math

import torch

from .base import Operator, _check_finite, _per_sample
from .kernels import _positive_int, uniform_kernel


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


def _check_batch(op, x, what: str) -> None:
    """x is a batch of images (n, C, H, W), of the shape ``op`` was built for when it has one."""
    if x.ndim != 4:
        raise ValueError(f"{type(op).__name__} acts on a batch of images (n, C, H, W); "
                         f"{what} has shape {tuple(x.shape)}.")
    if op.in_shape is not None and tuple(x.shape[1:]) != op.in_shape:
        raise ValueError(f"{op!r} was built for images of shape {op.in_shape}; "
                         f"{what} has shape {tuple(x.shape)}.")


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
        _check_batch(self, x, what)

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
        _check_batch(self, x, what)
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
