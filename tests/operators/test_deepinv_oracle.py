"""deepinv's physics as an oracle for our operators: A, A^T and the prox agree to 1e-5.

What is shared, and how the parametrisations map (derived in posterior_tutor/evaluation/peer.py):
- Denoising -> physics.Denoising; Inpainting, BoxInpainting -> physics.Inpainting(mask);
  circular Blur -> physics.BlurFFT (and physics.Blur(padding="circular")), same kernel centring
  (kernel pixel (kh//2, kw//2) on the output pixel), even-sized kernels included.
- SuperResolution(f, k) keeps pixels f i + o of the blurred image, o = (f - 1) // 2, while
  physics.Downsampling keeps pixels f i: it matches with deepinv's filter = k moved o pixels up-left
  (for f = 2, o = 0 and the plain 2x2 box matches; for f = 4 the plain box does not, tested below).
- prox: ours argmin |Ax - y|^2/(2 sigma^2) + |x - z|^2/(2 rho^2) = deepinv physics.prox_l2(z, y,
  gamma) with gamma = rho^2 / sigma^2 (deepinv: argmin gamma/2 |Ax - y|^2 + 1/2 |x - z|^2), and
  = deepinv optim.L2(sigma).prox(z, y, physics, gamma=rho^2).
- scale: x' = (x + 1)/2, y' = (y + A 1)/2 gives prox'(z', y') = (prox(z, y) + 1)/2 (same gamma).
"""
import pytest
import torch

dinv = pytest.importorskip("deepinv", reason="deepinv is not importable: the oracle tests need it "
                           "(pip install deepinv)")

import posterior_tutor as pt  # noqa: E402
from posterior_tutor import operators as O  # noqa: E402
from posterior_tutor.evaluation import peer  # noqa: E402
from conftest import seeded

torch.set_num_threads(1)
TOL = 1e-5


def _even_kernel():
    k = torch.rand(4, 4, generator=seeded(3), dtype=torch.float64)
    return k / k.sum()


OPERATORS = {
    "denoising": lambda: O.Denoising((2, 12, 12)),
    "inpainting": lambda: O.Inpainting.random((2, 12, 12), 0.5,
                                              generator=seeded(1)),
    "box_inpainting": lambda: O.BoxInpainting((1, 16, 16)),
    "gaussian_blur": lambda: O.Blur(O.gaussian_kernel(9, 1.6), (1, 16, 16)),
    "motion_blur": lambda: O.Blur(O.motion_kernel(9, 30.0), (2, 16, 16)),
    "even_blur": lambda: O.Blur(_even_kernel(), (1, 16, 16)),
    "sr2": lambda: O.SuperResolution(2, (1, 16, 16)),
    "sr4": lambda: O.SuperResolution(4, (1, 16, 16)),
    "sr3": lambda: O.SuperResolution(3, (2, 12, 12)),
    "sr4_gaussian": lambda: O.SuperResolution(4, (1, 16, 16), kernel=O.gaussian_kernel(7, 1.2)),
    "sr2_even_kernel": lambda: O.SuperResolution(2, (1, 16, 16), kernel=_even_kernel()),
}


def _setup(name, sigma=0.05):
    op = OPERATORS[name]()
    problem = pt.InverseProblem(op, sigma)
    phys = peer.deepinv_physics(problem, dtype=torch.float64)
    g = seeded(0)
    shape = op.in_shape
    x = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    y = torch.randn(*op.output_shape_for(shape), generator=g, dtype=torch.float64)
    v = torch.randn(3, *op.output_shape_for(shape), generator=g, dtype=torch.float64)
    return op, problem, phys, x, y, v


def test_physics_classes():
    kinds = {"denoising": dinv.physics.Denoising, "inpainting": dinv.physics.Inpainting,
             "box_inpainting": dinv.physics.Inpainting, "gaussian_blur": dinv.physics.BlurFFT,
             "sr4": dinv.physics.Downsampling}
    for name, cls in kinds.items():
        phys = peer.deepinv_physics(pt.InverseProblem(OPERATORS[name](), 0.05))
        assert isinstance(phys, cls), name
        assert abs(float(phys.noise_model.sigma) - 0.025) < 1e-7  # sigma / 2 in [0, 1] scale


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_forward_and_adjoint(name):
    op, problem, phys, x, y, v = _setup(name)
    assert (op(x) - phys.A(x)).abs().max().item() < TOL
    assert (op.adjoint(v) - phys.A_adjoint(v)).abs().max().item() < TOL


@pytest.mark.parametrize("name", sorted(OPERATORS))
@pytest.mark.parametrize("rho", [0.03, 0.7])
def test_prox(name, rho):
    op, problem, phys, x, y, v = _setup(name)
    ours = problem.prox(x, y, rho)
    gamma = rho ** 2 / problem.sigma ** 2
    theirs = phys.prox_l2(x, y[None].expand(3, *y.shape), gamma)
    assert (ours - theirs).abs().max().item() < TOL
    # deepinv's L2 data fidelity: prox_{gamma f}, f = |Ax - y|^2 / (2 s^2)  ->  gamma = rho^2
    l2 = dinv.optim.data_fidelity.L2(sigma=problem.sigma)
    theirs = l2.prox(x, y[None].expand(3, *y.shape), phys, gamma=rho ** 2)
    assert (ours - theirs).abs().max().item() < TOL


@pytest.mark.parametrize("name", ["inpainting", "gaussian_blur", "sr4"])
def test_scale_map(name):
    """Our [-1, 1] problem and deepinv's [0, 1] problem are the same: A x' = (A x + A 1)/2, and the
    prox in deepinv's scale is ours mapped by (. + 1)/2 with the same gamma."""
    op, problem, phys, x, y, v = _setup(name)
    x1 = x[:1].clamp(-1, 1)
    clean = op(x1)[0]
    assert (peer.deepinv_y(problem, clean) - phys.A((x1 + 1) / 2)[0]).abs().max().item() < TOL
    rho = 0.2
    z = x.clamp(-1, 1)
    ours = problem.prox(z, y, rho)
    yp = peer.deepinv_y(problem, y)
    theirs = phys.prox_l2((z + 1) / 2, yp[None].expand(3, *yp.shape), rho ** 2 / problem.sigma ** 2)
    assert ((ours + 1) / 2 - theirs).abs().max().item() < TOL


def test_plain_box_downsampling_keeps_other_pixels():
    """Why SuperResolution(4) needs a shifted filter: deepinv's Downsampling with the plain 4x4 box
    keeps pixels 4i (offset 0), ours keeps 4i + 1 (exact 4x4 average pooling)."""
    x = torch.randn(2, 1, 16, 16, generator=seeded(0), dtype=torch.float64)
    box = torch.ones(1, 1, 4, 4, dtype=torch.float64) / 16
    plain = dinv.physics.Downsampling(img_size=(1, 16, 16), factor=4, filter=box,
                                      padding="circular")
    ours = O.SuperResolution(4, (1, 16, 16))
    assert (ours(x) - torch.nn.functional.avg_pool2d(x, 4)).abs().max().item() < 1e-12
    assert (ours(x) - plain.A(x)).abs().max().item() > 0.1
    two = dinv.physics.Downsampling(img_size=(1, 16, 16), factor=2, filter=box[..., :2, :2] * 4,
                                    padding="circular")
    assert (O.SuperResolution(2, (1, 16, 16))(x) - two.A(x)).abs().max().item() < TOL


def test_blur_circular_conv_matches_too():
    op = O.Blur(O.motion_kernel(9, 30.0), (1, 16, 16))
    conv = dinv.physics.Blur(filter=op.kernel[None, None], padding="circular")
    x = torch.randn(2, 1, 16, 16, generator=seeded(0), dtype=torch.float64)
    assert (op(x) - conv.A(x)).abs().max().item() < TOL
    assert (op.adjoint(x) - conv.A_adjoint(x)).abs().max().item() < TOL


def test_wrapped_linear_operator():
    """An operator without a deepinv counterpart is wrapped (LinearPhysics of our A and A^T)."""
    A = torch.randn(5, 8, generator=seeded(0), dtype=torch.float64)
    problem = pt.InverseProblem(O.Matrix(A), 0.1)
    phys = peer.deepinv_physics(problem, dtype=torch.float64)
    assert type(phys) is dinv.physics.LinearPhysics
    x = torch.randn(3, 8, dtype=torch.float64)
    y = torch.randn(5, dtype=torch.float64)
    assert (phys.A(x) - x @ A.T).abs().max().item() < TOL
    assert (phys.A_adjoint(x @ A.T) - x @ A.T @ A).abs().max().item() < TOL
    rho = 0.3
    theirs = phys.prox_l2(x, y[None].expand(3, 5), rho ** 2 / 0.1 ** 2, tol=1e-10, max_iter=500)
    assert (problem.prox(x, y, rho) - theirs).abs().max().item() < 1e-4


def test_nonlinear_operator_as_physics():
    op = O.Saturation(O.Blur(O.gaussian_kernel(9, 1.6), (1, 16, 16)), gain=2.0)
    problem = pt.InverseProblem(op, 0.05)
    phys = peer.deepinv_physics(problem)
    x = torch.rand(2, 1, 16, 16, generator=seeded(0)) * 2 - 1
    # A'(x') = (A(x) + A(1)) / 2 with x' = (x + 1)/2; the measurement map is the same affine one
    assert (phys.A((x + 1) / 2)[0] - peer.deepinv_y(problem, op(x)[0])).abs().max() < TOL
