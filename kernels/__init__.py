"""fastnet's compute layer: Numba kernels on C-contiguous float32/float64 arrays.

Kernels assume valid input (shapes agree, one float dtype, labels in range, finite values); the
`fastnet` package checks all of that before calling them. Each kernel computes in the dtype of
its float inputs.
"""

import numba

from kernels import _memory  # noqa: F401  (glibc's thresholds, set at import)
from kernels.activation import sigmoid, sigmoid_grad
from kernels.affine import affine_backward, affine_forward
from kernels.numgrad import (
    BACKWARD,
    CENTRAL,
    COMPLEX,
    FORWARD,
    complex_step_loop,
    complex_step_loop_serial,
    numerical_gradient_loop,
    numerical_gradient_loop_serial,
    two_layer_complex_step,
    two_layer_numerical_gradient,
)
from kernels.softmax import (
    CROSS_ENTROPY,
    SUM_SQUARED,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softmax_sum_squared,
    softmax_sum_squared_grad,
)
from kernels.twolayer import two_layer_gradient, two_layer_loss, two_layer_predict

# Start numba's thread pool now: a parallel kernel loaded from the on-disk cache as the very first
# parallel call of a process has crashed in numba before the pool existed.
numba.get_num_threads()

__all__ = [
    "BACKWARD",
    "CENTRAL",
    "COMPLEX",
    "CROSS_ENTROPY",
    "FORWARD",
    "SUM_SQUARED",
    "affine_backward",
    "affine_forward",
    "complex_step_loop",
    "complex_step_loop_serial",
    "numerical_gradient_loop",
    "numerical_gradient_loop_serial",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_sum_squared",
    "softmax_sum_squared_grad",
    "two_layer_complex_step",
    "two_layer_gradient",
    "two_layer_loss",
    "two_layer_numerical_gradient",
    "two_layer_predict",
]
