"""Forward operators: adjoints, closed-form proxes against dense solves, kernels, and the
InverseProblem's checks.  Exactness checks run in float64 on small images."""
import math

import pytest
import torch

from posterior_tutor import operators as O
from posterior_tutor.operators import InverseProblem
from conftest import seeded as gen

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=gen(seed), dtype=F64)


def linear_operators():
    """(id, operator) for every linear operator, each with a fixed input size."""
    return [
        ("matrix", O.Matrix(randn(5, 7, seed=1))),
        ("denoising", O.Denoising((2, 4, 4))),
        ("inpainting", O.Inpainting.random((2, 6, 6), 0.5, generator=gen(2))),
        ("box-inpainting", O.BoxInpainting((1, 8, 8))),
        ("blur-gaussian", O.Blur(O.gaussian_kernel(3, 0.8), (2, 6, 6))),
        ("blur-uniform", O.Blur(O.uniform_kernel(3), (1, 8, 8))),
        ("blur-uniform-even", O.Blur(O.uniform_kernel(2), (1, 6, 6))),
        ("blur-motion", O.Blur(O.motion_kernel(5, 30.0), (1, 8, 8))),
        ("blur-kernel-wraps", O.Blur(O.gaussian_kernel(7, 2.0), (1, 4, 4))),
        ("sr2", O.SuperResolution(2, (2, 8, 8))),
        ("sr4", O.SuperResolution(4, (1, 8, 8))),
        ("sr2-gaussian", O.SuperResolution(2, (1, 8, 8), kernel=O.gaussian_kernel(5, 1.0))),
        ("sr4-gaussian", O.SuperResolution(4, (1, 8, 8), kernel=O.gaussian_kernel(5, 1.2))),
        ("sr3-motion", O.SuperResolution(3, (1, 6, 6), kernel=O.motion_kernel(3, 60.0))),
    ]


LINEAR = linear_operators()
IDS = [name for name, _ in LINEAR]
OPS = [op for _, op in LINEAR]


def dense_prox(op, z, y, rho, sigma):
    """(A^T A / s^2 + I / rho^2)^{-1} (A^T y / s^2 + z / rho^2), one dense solve per sample."""
    A = op.matrix().to(F64)
    d = A.shape[1]
    rho = torch.as_tensor(rho, dtype=F64).reshape(-1).expand(z.shape[0])
    out = []
    for zi, ri in zip(z, rho):
        M = A.T @ A / sigma ** 2 + torch.eye(d, dtype=F64) / ri ** 2
        b = A.T @ y.reshape(-1) / sigma ** 2 + zi.reshape(-1) / ri ** 2
        out.append(torch.linalg.solve(M, b))
    return torch.stack(out).reshape(z.shape)


# -- adjoints -------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_adjoint_identity(op):
    x = randn(3, *op.in_shape, seed=3)
    v = randn(3, *op.out_shape, seed=4)
    lhs = (op(x) * v).sum()
    rhs = (x * op.adjoint(v)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", [O.Blur(O.motion_kernel(5, 20.0)), O.SuperResolution(2),
                                O.SuperResolution(4, kernel=O.gaussian_kernel(5, 1.0))],
                         ids=["blur", "sr2", "sr4-gaussian"])
def test_adjoint_identity_without_fixed_size(op):
    x = randn(2, 3, 8, 12, seed=5)
    v = randn(*op(x).shape, seed=6)
    assert torch.allclose((op(x) * v).sum(), (x * op.adjoint(v)).sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_jvp_and_vjp_of_linear_operator_are_A_and_its_adjoint(op):
    x, v = randn(2, *op.in_shape, seed=7), randn(2, *op.out_shape, seed=8)
    assert torch.allclose(op.jvp(x, x), op(x))
    assert torch.allclose(op.vjp(x, v), op.adjoint(v))


# -- proximal steps -------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.7, "per-sample"])
@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_prox_matches_dense_linear_solve(op, rho):
    if rho == "per-sample":
        rho = torch.tensor([0.05, 0.8, 4.0], dtype=F64)
    sigma = 0.3
    z = randn(3, *op.in_shape, seed=9)
    y = randn(*op.out_shape, seed=10)
    got = op.prox(z, y, rho, sigma)
    want = dense_prox(op, z, y, rho, sigma)
    assert got.shape == z.shape and got.dtype == F64
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-9), (got - want).abs().max()


@pytest.mark.parametrize("op", [O.Blur(O.gaussian_kernel(5, 1.0)), O.Blur(O.motion_kernel(5, 45.0)),
                                O.SuperResolution(2), O.SuperResolution(4),
                                O.SuperResolution(2, kernel=O.gaussian_kernel(3, 0.7))],
                         ids=["blur-gaussian", "blur-motion", "sr2", "sr4", "sr2-gaussian"])
def test_base_class_cg_prox_agrees_with_closed_form(op):
    z = randn(3, 2, 8, 8, seed=11)
    y = randn(*op(z[:1])[0].shape, seed=12)
    rho = torch.tensor([0.2, 0.5, 1.0], dtype=F64)
    closed = op.prox(z, y, rho, 0.3)
    cg = O.Operator._prox_cg(op, z, y, rho, 0.3)  # relative residual tolerance 1e-6
    assert (cg - closed).abs().max() <= 1e-5 * closed.abs().max()


def test_closed_form_prox_in_float32_is_close_to_float64():
    for op in (O.Blur(O.gaussian_kernel(5, 1.0)), O.SuperResolution(2)):
        z = randn(2, 1, 8, 8, seed=13)
        y = randn(*op(z[:1])[0].shape, seed=14)
        p64 = op.prox(z, y, 0.5, 0.1)
        p32 = op.prox(z.float(), y.float(), 0.5, 0.1)
        assert p32.dtype == torch.float32
        assert torch.allclose(p32.double(), p64, atol=1e-4)


def test_inverse_problem_prox_delegates_to_operator():
    op = O.SuperResolution(2, (1, 8, 8))
    prob = InverseProblem(op, 0.2)
    z, y = randn(2, 1, 8, 8, seed=15), randn(1, 4, 4, seed=16)
    assert torch.allclose(prob.prox(z, y, 0.5), dense_prox(op, z, y, 0.5, 0.2), atol=1e-10)


@pytest.mark.parametrize("case", range(len(LINEAR) + 3))
def test_prox_batched_is_the_prox_row_by_row(case):
    """One y per sample (training batches): ``prox_batched`` equals ``prox`` of each (z_i, y_i),
    whether the operator's closed form broadcasts over y, it solves a matrix system (Matrix) or
    it loops (the generic fallback: Saturation)."""
    if case < len(LINEAR):
        op, shape = LINEAR[case][1], (3, *LINEAR[case][1].in_shape)
    else:
        _, op, shape = saturation_cases()[case - len(LINEAR)]
    z = randn(*shape, seed=30)
    ys = torch.stack([op(randn(1, *shape[1:], seed=31 + i))[0] for i in range(shape[0])])
    got = InverseProblem(op, 0.3).prox_batched(z, ys, torch.tensor(0.7, dtype=F64))
    want = torch.cat([op.prox(z[i:i + 1], ys[i], 0.7, 0.3) for i in range(shape[0])])
    assert got.shape == z.shape and torch.allclose(got, want, rtol=1e-7, atol=1e-8), \
        (got - want).abs().max()
    assert type(op).prox_broadcasts_y == isinstance(op, (O.Denoising, O.Inpainting, O.Blur,
                                                         O.SuperResolution))


def test_per_sample_rho_of_wrong_length_is_rejected():
    z, y = randn(3, 1, 8, 8), randn(1, 8, 8)
    for op in (O.Blur(O.uniform_kernel(3)), O.Matrix(randn(4, 64)), O.Denoising()):
        zz = z.reshape(3, 64) if isinstance(op, O.Matrix) else z
        yy = randn(4) if isinstance(op, O.Matrix) else y
        with pytest.raises(ValueError, match="one value per sample"):
            op.prox(zz, yy, torch.ones(2, dtype=F64), 0.1)


# -- kernels and Blur -----------------------------------------------------------------------------
def test_kernel_factories_sum_to_one():
    for k in (O.gaussian_kernel(5, 1.3), O.gaussian_kernel(4, 0.5), O.uniform_kernel(3),
              O.motion_kernel(7, 33.0), O.motion_kernel(6, 90.0, length=4.5), O.motion_kernel(4, 10.0), O.motion_kernel(9, -120.0)):
        assert k.ndim == 2 and k.dtype == F64 and (k >= 0).all()
        assert math.isclose(k.sum().item(), 1.0, rel_tol=1e-12)
    g = O.gaussian_kernel(5, 1.0)
    assert torch.allclose(g, g.T) and torch.allclose(g, g.flip(0)) and g.argmax() == 12


def test_motion_kernel_geometry():
    horizontal = O.motion_kernel(5, 0.0)
    expected = torch.zeros(5, 5, dtype=F64)
    expected[2] = 0.2
    assert torch.allclose(horizontal, expected)
    assert torch.allclose(O.motion_kernel(5, 90.0), expected.T, atol=1e-12)
    # 45 degrees goes up and to the right: mass on the anti-diagonal, symmetric about the centre
    diag = O.motion_kernel(7, 45.0)
    assert diag[1, 5] > 0 and diag[5, 1] > 0 and diag[1, 1] == 0 and diag[5, 5] == 0
    assert diag[3, 3] == diag.max() and torch.allclose(diag, diag.flip(0, 1), atol=1e-15)
    assert torch.allclose(diag, O.motion_kernel(7, 225.0), atol=1e-12)
    short = O.motion_kernel(9, 0.0, length=3)
    assert torch.allclose(short[4, 3:6], torch.full((3,), 1 / 3, dtype=F64))
    assert math.isclose(short[4, 3:6].sum().item(), 1.0)
    fractional = O.motion_kernel(9, 0.0, length=4.5)  # end pixels partly covered
    assert torch.allclose(fractional[4, 2:7] / fractional[4, 4], torch.tensor([0.75, 1, 1, 1, 0.75], dtype=F64))
    even = O.motion_kernel(4, 0.0)  # centre between rows 1 and 2: split evenly
    assert torch.allclose(even[1], even[2]) and torch.allclose(even[1], torch.full((4,), 1 / 8, dtype=F64))
    assert torch.equal(O.motion_kernel(5, 37.0, length=1), O.uniform_kernel(1).new_zeros(5, 5).index_put_(
        (torch.tensor([2]), torch.tensor([2])), torch.tensor([1.0], dtype=F64)))


@pytest.mark.parametrize("call, match", [
    (lambda: O.gaussian_kernel(0, 1.0), "size"),
    (lambda: O.gaussian_kernel(2.5, 1.0), "size"),
    (lambda: O.gaussian_kernel(5, 0.0), "std"),
    (lambda: O.gaussian_kernel(5, float("nan")), "std"),
    (lambda: O.uniform_kernel(-1), "size"),
    (lambda: O.motion_kernel(5, 0.0, length=6), "length"),
    (lambda: O.motion_kernel(5, 0.0, length=0.5), "length"),
    (lambda: O.Blur(torch.ones(3)), "2D"),
    (lambda: O.Blur(torch.full((3, 3), float("nan"))), "NaN"),
    (lambda: O.Blur(O.uniform_kernel(3), shape=(8, 8)), r"\(C, H, W\)"),
])
def test_bad_kernels_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_delta_kernel_blur_is_the_identity():
    op = O.Blur(torch.ones(1, 1), (2, 3, 4))
    assert torch.allclose(op.matrix(), torch.eye(24, dtype=F64), atol=1e-14)
    op3 = O.Blur(torch.tensor([[0, 0, 0], [0, 1.0, 0], [0, 0, 0]]), (1, 5, 5))
    assert torch.allclose(op3.matrix(), torch.eye(25, dtype=F64), atol=1e-14)


def test_blur_matrix_is_circulant_and_shows_the_kernel_unflipped():
    k = O.motion_kernel(5, 30.0)  # not symmetric
    H, W = 7, 8
    A = O.Blur(k, (1, H, W)).matrix()
    # column for a delta at q = (a, b) is the column for q = 0 circularly shifted by (a, b)
    col0 = A[:, 0].reshape(H, W)
    for a, b in [(0, 1), (3, 5), (6, 7)]:
        assert torch.allclose(A[:, a * W + b].reshape(H, W), col0.roll((a, b), (0, 1)), atol=1e-14)
    # the response to a delta at the image centre is the kernel itself, centred there
    delta = torch.zeros(1, 1, H, W, dtype=F64)
    delta[..., 3, 4] = 1
    out = O.Blur(k)(delta)[0, 0]
    assert torch.allclose(out[1:6, 2:7], k, atol=1e-14)
    assert math.isclose(out.sum().item(), 1.0, rel_tol=1e-12)


def test_symmetric_kernel_gives_self_adjoint_blur():
    A = O.Blur(O.gaussian_kernel(3, 0.9), (1, 6, 6)).matrix()
    assert torch.allclose(A, A.T, atol=1e-14)


@pytest.mark.parametrize("op", [O.Blur(O.motion_kernel(5, 30.0), (1, 8, 8)),
                                O.SuperResolution(2, (1, 8, 8)),
                                O.SuperResolution(4, (1, 8, 8), kernel=O.gaussian_kernel(5, 1.2))],
                         ids=["blur", "sr2", "sr4-gaussian"])
def test_norm_squared_is_the_largest_singular_value_squared(op):
    want = torch.linalg.matrix_norm(op.matrix(), 2).item() ** 2
    assert math.isclose(op.norm_squared(), want, rel_tol=1e-10)
    # without a size: a bound valid for every image size
    free = type(op)(op.factor, kernel=op.kernel) if isinstance(op, O.SuperResolution) else O.Blur(op.kernel)
    assert free.norm_squared() >= want - 1e-12
    with pytest.raises(ValueError, match="shape"):
        O.Operator.norm_squared(O.Denoising())


def test_prox_rejects_y_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        O.SuperResolution(2).prox(randn(1, 1, 8, 8), randn(1, 8, 8), 1.0, 0.1)
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        O.Blur(O.uniform_kernel(3)).prox(randn(1, 1, 8, 8), randn(1, 4, 4), 1.0, 0.1)


def test_blur_shape_checks():
    op = O.Blur(O.uniform_kernel(3), (1, 8, 8))
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        op(randn(2, 1, 6, 6))
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        O.Blur(O.uniform_kernel(3))(randn(8, 8))


# -- super-resolution -----------------------------------------------------------------------------
@pytest.mark.parametrize("f", [1, 2, 3, 4])
def test_default_super_resolution_is_average_pooling(f):
    x = randn(2, 3, 12, 24, seed=17)
    assert torch.allclose(O.SuperResolution(f)(x), torch.nn.functional.avg_pool2d(x, f), atol=1e-14)
    x32 = x.float()
    assert torch.allclose(O.SuperResolution(f)(x32), torch.nn.functional.avg_pool2d(x32, f), atol=1e-6)


def test_super_resolution_shapes():
    op = O.SuperResolution(4)
    assert op.input_shape_for((1, 7, 5)) == (1, 28, 20)
    assert op.output_shape_for((3, 8, 12)) == (3, 2, 3)
    fixed = O.SuperResolution(2, (3, 8, 6))
    assert fixed.out_shape == (3, 4, 3) and fixed.matrix().shape == (36, 144)
    assert fixed.input_shape_for((3, 4, 3)) == (3, 8, 6)


@pytest.mark.parametrize("call", [
    lambda: O.SuperResolution(3, (1, 8, 9)),
    lambda: O.SuperResolution(3)(randn(1, 1, 9, 8)),
    lambda: O.SuperResolution(2).output_shape_for((1, 7, 8)),
    lambda: O.SuperResolution(2).prox(randn(1, 1, 6, 5), randn(1, 3, 2), 1.0, 0.1),
])
def test_super_resolution_factor_must_divide_the_size(call):
    with pytest.raises(ValueError, match="divisible by"):
        call()


@pytest.mark.parametrize("factor", [0, -2, 1.5, "2", True])
def test_super_resolution_factor_must_be_a_positive_integer(factor):
    with pytest.raises(ValueError, match="positive integer"):
        O.SuperResolution(factor)


# -- the nonlinear operator -----------------------------------------------------------------------
def saturation_cases():
    return [
        ("blur", O.Saturation(O.Blur(O.gaussian_kernel(5, 1.0)), gain=2.0), (3, 1, 8, 8)),
        ("sr", O.Saturation(O.SuperResolution(2, kernel=O.gaussian_kernel(3, 0.8)), gain=3.0),
         (3, 2, 8, 8)),
        ("matrix", O.Saturation(O.Matrix(randn(5, 8, seed=18)), gain=1.0), (3, 8)),
    ]


SAT = saturation_cases()


@pytest.mark.parametrize("op, shape", [(op, s) for _, op, s in SAT], ids=[n for n, _, _ in SAT])
def test_saturation_vjp_and_jvp_match_autograd(op, shape):
    x = randn(*shape, seed=19)
    v = randn(*op(x).shape, seed=20)
    u = randn(*shape, seed=21)
    xr = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(op(xr), xr, v)
    assert torch.allclose(op.vjp(x, v), want, atol=1e-12)
    _, want_jvp = torch.func.jvp(op.forward, (x,), (u,))
    assert torch.allclose(op.jvp(x, u), want_jvp, atol=1e-12)
    assert torch.allclose(O.Operator.jvp(op, x, u), want_jvp, atol=1e-12)  # generic forward mode


@pytest.mark.parametrize("rho", [0.5, "per-sample"])
@pytest.mark.parametrize("op, shape", [(op, s) for _, op, s in SAT], ids=[n for n, _, _ in SAT])
def test_saturation_prox_satisfies_optimality(op, shape, rho):
    if rho == "per-sample":
        rho = torch.tensor([0.05, 0.5, 2.0], dtype=F64)
    sigma = 0.1
    x0 = randn(*shape, seed=22)
    y = op(x0[:1])[0] + sigma * randn(*op(x0[:1])[0].shape, seed=23)
    z = x0 + 0.5 * randn(*shape, seed=24)
    r2 = O.base._per_sample(rho, z) ** 2

    def grad_objective(x):
        xr = x.clone().requires_grad_(True)
        obj = 0.5 * (op(xr) - y).pow(2).sum() / sigma ** 2 + 0.5 * ((xr - z) ** 2 / r2).sum()
        return torch.autograd.grad(obj, xr)[0].flatten(1).norm(dim=1)

    x = op.prox(z, y, rho, sigma)
    assert (grad_objective(x) < 1e-4 * grad_objective(z)).all()
    prob = InverseProblem(op, sigma)
    assert (prob.data_fit(x, y) < prob.data_fit(z, y)).all()


def test_saturation_with_tiny_gain_is_the_linear_operator():
    inner = O.Blur(O.gaussian_kernel(5, 1.0), (1, 8, 8))
    op = O.Saturation(inner, gain=1e-4)
    z, y = randn(2, 1, 8, 8, seed=25), randn(1, 8, 8, seed=26)
    assert torch.allclose(op(z), inner(z), atol=1e-7)
    lin = inner.prox(z, y, 0.5, 0.1)
    assert (op.prox(z, y, 0.5, 0.1) - lin).abs().max() < 1e-4 * lin.abs().max()


def test_saturation_step_size_bound_works_without_a_fixed_size():
    op = O.Saturation(O.Blur(O.gaussian_kernel(3, 1.0)), gain=1.0)
    assert math.isclose(op.lipschitz_squared(), 1.0, rel_tol=1e-12)
    assert math.isclose(O.Saturation(O.SuperResolution(2), 1.0).lipschitz_squared(), 0.25)
    with pytest.raises(NotImplementedError, match="vjp"):
        op.adjoint(randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="linear"):
        O.Saturation(op)
    with pytest.raises(ValueError, match="gain"):
        O.Saturation(O.Denoising(), gain=0.0)


# -- InverseProblem -------------------------------------------------------------------------------
def test_measure_shape_and_noise_level():
    op = O.SuperResolution(2, (1, 128, 128))
    prob = InverseProblem(op, sigma=0.2)
    x = randn(1, 128, 128, seed=27)
    y = prob.measure(x, generator=gen(28))
    assert y.shape == (1, 64, 64) and y.dtype == F64
    noise = y - op(x[None])[0]
    assert abs(noise.std().item() / 0.2 - 1) < 0.05  # 4096 pixels: relative std error ~1.1%
    assert abs(noise.mean().item()) < 5 * 0.2 / 64
    assert torch.equal(y, prob.measure(x, generator=gen(28)))  # same seed, same y
    assert not torch.equal(y, prob.measure(x, generator=gen(29)))
    # operators without a fixed size take any image
    y2 = InverseProblem(O.Blur(O.uniform_kernel(3)), 0.1).measure(randn(2, 6, 10).float())
    assert y2.shape == (2, 6, 10) and y2.dtype == torch.float32


@pytest.mark.parametrize("op, shape", [
    (O.Matrix(randn(4, 6, seed=30)), (3, 6)),
    (O.Inpainting.random((1, 6, 6), generator=gen(31)), (3, 1, 6, 6)),
    (O.SuperResolution(2, kernel=O.gaussian_kernel(3, 0.8)), (3, 1, 8, 8)),
    (O.Saturation(O.Blur(O.motion_kernel(3, 45.0)), 2.0), (3, 1, 8, 8)),
], ids=["matrix", "inpainting", "sr", "saturation"])
def test_grad_data_fit_matches_autograd(op, shape):
    prob = InverseProblem(op, 0.3)
    x = randn(*shape, seed=32)
    y = prob.measure(randn(*shape[1:], seed=33), generator=gen(34))
    xr = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(prob.data_fit(xr, y).sum(), xr)
    assert torch.allclose(prob.grad_data_fit(x, y), want, atol=1e-10)
    assert torch.allclose(prob.log_likelihood(x, y), -prob.data_fit(x, y))


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_sigma_must_be_finite_and_positive(sigma):
    with pytest.raises(ValueError, match="sigma"):
        InverseProblem(O.Denoising(), sigma)


def test_operator_must_be_an_operator():
    with pytest.raises(TypeError, match="Operator"):
        InverseProblem(torch.eye(3), 0.1)


def test_y_of_wrong_shape_names_the_expected_shape():
    prob = InverseProblem(O.SuperResolution(2, (1, 8, 8)), 0.1)
    assert prob.check_y(torch.zeros(1, 4, 4)) == (1, 8, 8)
    with pytest.raises(ValueError, match=r"\(1, 4, 4\)"):
        prob.check_y(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="no sample dimension"):
        prob.check_y(torch.zeros(5, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):  # no fixed size: still an image
        InverseProblem(O.Blur(O.uniform_kernel(3)), 0.1).check_y(torch.zeros(2, 1, 8, 8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        prob.check_y([[0.0]])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_y_must_be_finite(bad):
    prob = InverseProblem(O.Denoising((1, 4, 4)), 0.1)
    y = torch.zeros(1, 4, 4)
    y[0, 1, 2] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        prob.check_y(y)


def test_measure_rejects_bad_x():
    prob = InverseProblem(O.BoxInpainting((1, 8, 8)), 0.1)
    with pytest.raises(ValueError, match=r"\(1, 8, 8\).*no sample dimension"):
        prob.measure(torch.zeros(4, 1, 8, 8))
    x = torch.zeros(1, 8, 8)
    x[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        prob.measure(x)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):  # no fixed size: one image expected
        InverseProblem(O.Blur(O.uniform_kernel(3)), 0.1).measure(torch.zeros(4, 1, 8, 8))
    with pytest.raises(ValueError, match="divisible by"):
        InverseProblem(O.SuperResolution(4), 0.1).measure(torch.zeros(1, 8, 6))
    with pytest.raises(TypeError, match="torch.Tensor"):
        prob.measure([[0.0]])


@pytest.mark.parametrize("mask", [torch.full((4, 4), 0.5), torch.full((4, 4), 2.0),
                                  torch.full((4, 4), float("nan"))], ids=["half", "two", "nan"])
def test_invalid_inpainting_mask(mask):
    with pytest.raises(ValueError, match="only 0 .* and 1"):
        O.Inpainting(mask)


@pytest.mark.parametrize("box", [(6, 0, 4, 4), (0, 0, 0, 3), (-1, 0, 2, 2), (0, 5, 2, 4), (0, 0, 2)])
def test_box_must_fit_the_image(box):
    with pytest.raises(ValueError, match="box"):
        O.BoxInpainting((1, 8, 8), box=box)


def test_default_box_hides_the_central_half():
    op = O.BoxInpainting((1, 8, 8))
    assert op.box == (2, 2, 4, 4) and op.mask.sum() == 64 - 16


# -- GPU --------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_closed_form_proxes_on_cuda_match_cpu():
    for op in (O.Blur(O.motion_kernel(5, 30.0)), O.SuperResolution(2, kernel=O.gaussian_kernel(3, 1.0))):
        z, y = randn(2, 1, 8, 8, seed=35), randn(*op(randn(1, 1, 8, 8))[0].shape, seed=36)
        rho = torch.tensor([0.3, 1.0], dtype=F64)
        cpu = op.prox(z, y, rho, 0.1)
        gpu = op.prox(z.cuda(), y.cuda(), rho.cuda(), 0.1)
        assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-10)
        assert torch.allclose(op(z.cuda()).cpu(), op(z), atol=1e-12)
