"""The input checks of UD2M's training and of ``with_calls``: each says what was wrong and what
to do, before any network runs (no equations here; ``train.py`` uses them)."""
from __future__ import annotations

from ...checks.values import check_positive_int
from ...operators import InverseProblem
from ..base import check_signal_range, check_training_set, y_as_image

__all__ = ["check_calls", "check_training_inputs", "check_objects", "y_width",
           "check_lpips"]


def check_objects(operators, lora_layers):
    """operators: None, a callable or a non-empty list of problems; lora_layers: None or names."""
    if not (operators is None or callable(operators) or (
            isinstance(operators, (list, tuple)) and operators
            and all(isinstance(p, InverseProblem) for p in operators))):
        raise TypeError("operators must be None, a callable returning an InverseProblem or a "
                        f"non-empty list of InverseProblems, got {operators!r}.")
    if not (lora_layers is None or (isinstance(lora_layers, (list, tuple))
                                    and all(isinstance(v, str) for v in lora_layers))):
        raise TypeError(f"lora_layers must be None or a list of layer names, got {lora_layers!r}.")


def y_width(problem, x_one, shape) -> int:
    """Channels of y as an image (images) or entries of y (vectors), for the discriminator."""
    y = problem.operator(x_one)
    if len(shape) == 3:
        return y_as_image(problem, y, shape, mode="nearest", what="discriminator").shape[1]
    return y[0].numel()


def check_lpips(shape, net, xs):
    if len(shape) != 3:
        raise ValueError("lpips_weight > 0 needs images (n, C, H, W); LPIPS is not defined for "
                         "vectors.")
    from ...metrics import lpips
    lpips(xs[:1], xs[:1], net=net)   # raises LPIPSWeightsUnavailable now, not mid-training


def check_training_inputs(den, problem, xs, K, N) -> tuple:
    """The training set against the prior and the operator, and K x N on the schedule (each
    option's own kind and range is checked at the call, ``train.TRAIN_OPTIONS``)."""
    check_training_set(den, problem, xs, "xs_train", "clean signals (n, ...)", "the training data")
    check_signal_range(xs, "xs_train")
    shape = tuple(xs.shape[1:])
    if den.shape is not None and shape != tuple(den.shape):
        raise ValueError(f"xs_train holds signals of shape {shape} but the prior models signals "
                         f"of shape {tuple(den.shape)}.")
    problem.operator.output_shape_for(shape)
    if problem.operator.in_shape is not None and shape != tuple(problem.operator.in_shape):
        raise ValueError(f"xs_train holds signals of shape {shape} but {problem.operator!r} acts on "
                         f"{tuple(problem.operator.in_shape)}.")
    check_calls(den.schedule, K, N)
    return shape


def check_calls(schedule, K, N):
    """K iterations per block and N outer steps: positive integers, N placeable on the schedule."""
    check_positive_int(K, "K")
    check_positive_int(N, "N")
    schedule.timesteps(N, "quadratic")   # N too large for the schedule raises here
