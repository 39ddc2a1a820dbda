"""Forward operators A (with adjoint and proximal step) and the inverse problem y = A(x) + sigma n.

Every operator acts on a batch: x of shape (n, *in_shape) -> A(x) of shape (n, *out_shape).
The proximal step of the data term that all splitting samplers use is

    prox(z, y, rho, sigma) = argmin_x |A x - y|^2 / (2 sigma^2) + |x - z|^2 / (2 rho^2)
                           = (A^T A / sigma^2 + I / rho^2)^{-1} (A^T y / sigma^2 + z / rho^2),

and each family of operators solves it the way its structure allows.  A map of the files, read
from the bottom up (each imports only from the ones above it):

    base.py       ``Operator``: the interface (forward, adjoint, vjp, jvp, shapes, dense matrix,
                  |A|^2 by power iteration) and the generic prox solvers: conjugate gradients for
                  linear A, Gauss-Newton with a line search for nonlinear A
    prox.py       the prox with one measurement per sample (a batch of y), for training
    diagonal.py   Denoising, Inpainting, BoxInpainting: A^T A diagonal, prox elementwise
    kernels.py    gaussian_kernel, uniform_kernel, motion_kernel (2D, summing to 1, centred)
    fft.py        Blur (circular convolution) and SuperResolution (blur + decimation): A^T A
                  diagonal in frequency, prox closed form (Zhao et al. 2016 for SR)
    matrix.py     Matrix: a dense A on vectors, prox by a direct solve (the exact toy world)
    nonlinear.py  Saturation: y = tanh(gain B x) / gain, prox by Gauss-Newton
    problem.py    InverseProblem: an operator and one noise level sigma; measure, the data term
                  g(x) = |A(x) - y|^2 / (2 sigma^2), its gradient and prox

``rho`` may be a float or one value per sample (a tensor of shape (n,)).  Images are (n, C, H, W).
Everything public is re-exported here: ``pt.operators.Blur``, ``from posterior_tutor.operators
import InverseProblem``.
"""
from __future__ import annotations

from . import prox
from .base import Operator
from .diagonal import BoxInpainting, Denoising, Inpainting
from .fft import Blur, SuperResolution
from .kernels import gaussian_kernel, motion_kernel, uniform_kernel
from .matrix import Matrix
from .nonlinear import Saturation
from .problem import InverseProblem

__all__ = ["Operator", "Denoising", "Inpainting", "BoxInpainting", "Blur", "SuperResolution",
           "gaussian_kernel", "uniform_kernel", "motion_kernel", "Matrix", "Saturation",
           "InverseProblem", "prox"]
