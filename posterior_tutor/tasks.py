"""The image inverse problems of the benchmark, the shipped samplers and the chapters, defined once.

    problem = pt.tasks.image_problem("sr4")                       # 32x32 MNIST, sigma = 0.05
    problem = pt.tasks.image_problem("random_inpainting", generator=torch.Generator().manual_seed(3))

| task | operator |
|---|---|
| denoising | identity |
| random_inpainting | each pixel observed with probability 1/2 (a fresh mask per generator draw) |
| box_inpainting | the central half (16x16 of 32x32) hidden |
| gaussian_deblur | 9x9 Gaussian kernel, std 1.6 pixels (circular) |
| motion_deblur | 9x9 linear motion, 9 pixels at 30 degrees (circular) |
| sr4 | 4x4 average pooling (32x32 -> 8x8) |
| nonlinear | soft saturation tanh(2 k * x) / 2 after the Gaussian blur |

The blur widths are scaled to 32x32 digits (strokes are 2-3 pixels wide): the paper settings for
256x256 faces (61x61, std 3) would erase a digit.
"""
from __future__ import annotations

from . import operators as O
from .checks.values import check_generator
from .operators import InverseProblem

TASKS = ("denoising", "random_inpainting", "box_inpainting", "gaussian_deblur", "motion_deblur",
         "sr4", "nonlinear")

MNIST_SHAPE = (1, 32, 32)


def image_operator(task: str, shape=MNIST_SHAPE, generator=None, blur_std: float = 1.6,
                   observed: float = 0.5) -> O.Operator:
    """The forward operator of ``task`` for images of ``shape`` (C, H, W)."""
    check_generator(generator)
    shape = tuple(shape)
    if task == "denoising":
        return O.Denoising(shape)
    if task == "random_inpainting":
        return O.Inpainting.random(shape, observed, generator=generator)
    if task == "box_inpainting":
        return O.BoxInpainting(shape)
    if task == "gaussian_deblur":
        return O.Blur(O.gaussian_kernel(9, blur_std), shape)
    if task == "motion_deblur":
        return O.Blur(O.motion_kernel(9, 30.0), shape)
    if task == "sr4":
        return O.SuperResolution(4, shape)
    if task == "nonlinear":
        return O.Saturation(O.Blur(O.gaussian_kernel(9, blur_std), shape), gain=2.0)
    raise ValueError(f"unknown task {task!r}; the tasks are: {', '.join(TASKS)}.")


def image_problem(task: str, sigma: float = 0.05, shape=MNIST_SHAPE, generator=None,
                  **options) -> InverseProblem:
    """``InverseProblem(image_operator(task, ...), sigma)``; sigma 0.05 as in the issues' tasks."""
    return InverseProblem(image_operator(task, shape, generator, **options), sigma)
