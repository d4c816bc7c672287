"""Each compiled kernel beside its NumPy reference twin, over batch sizes and float dtypes.

Every class times `time_fastnet` (the @njit kernel in `kernels`) and `time_reference` (the book's
formula in `fastnet.reference`) on the same arrays, so one asv run holds both sides. setup() builds
the data and calls both once, so numba compilation (or loading from its cache) never lands in a
timing. Shapes follow the 784-50-10 network: D = 784 inputs, H = 50 hidden units, C = 10 classes.
"""

from __future__ import annotations

import numpy as np

from .common import cached, kernel_arrays

BATCHES = [1, 10, 100, 1000]
DTYPES = ["float32", "float64"]


class _KernelPair:
    """Base: subclasses define build(batch, dtype) -> (fastnet callable, reference callable)."""

    params = (BATCHES, DTYPES)
    param_names = ["batch", "dtype"]
    # Kernel calls take microseconds: many samples, each a single call (asv re-runs setup between
    # samples, which is cheap here because data is cached per process).
    repeat = (10, 200, 2.0)
    min_run_count = 10

    def setup(self, batch, dtype):
        self.fast, self.ref = cached((type(self).__name__, batch, dtype),
                                     lambda: self._compiled(batch, dtype))

    def _compiled(self, batch, dtype):
        fast, ref = self.build(batch, dtype)
        ref()  # first: OpenBLAS's threads spin for 0.1-0.2 s after a product, taking a core
        fast()  # compiles (or loads numba's cache) outside any timing
        return fast, ref

    def time_fastnet(self, batch, dtype):
        self.fast()

    def time_reference(self, batch, dtype):
        self.ref()


class AffineForward(_KernelPair):
    """x @ W1 + b1, (batch, 784) @ (784, 50)."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        x, _, p, _, _, _ = kernel_arrays(batch, dtype)
        W, b = p["W1"], p["b1"]
        return (lambda: kernels.affine_forward(x, W, b),
                lambda: reference.affine_forward(x, W, b))


class AffineBackward(_KernelPair):
    """dx, dW, db of the first affine layer from dout (batch, 50)."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        x, _, p, _, _, dout = kernel_arrays(batch, dtype)
        W = p["W1"]
        return (lambda: kernels.affine_backward(x, W, dout),
                lambda: reference.affine_backward(x, W, dout))


class Sigmoid(_KernelPair):
    """Elementwise sigmoid of the hidden pre-activations (batch, 50)."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        a1 = kernel_arrays(batch, dtype)[3]
        return lambda: kernels.sigmoid(a1), lambda: reference.sigmoid(a1)


class SoftmaxCrossEntropy(_KernelPair):
    """Mean softmax cross-entropy of (batch, 10) logits."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        _, t, _, _, a2, _ = kernel_arrays(batch, dtype)
        return (lambda: kernels.softmax_cross_entropy(a2, t),
                lambda: reference.softmax_cross_entropy(a2, t))


class SoftmaxCrossEntropyGrad(_KernelPair):
    """Gradient of the mean softmax cross-entropy w.r.t. (batch, 10) logits."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        _, t, _, _, a2, _ = kernel_arrays(batch, dtype)
        return (lambda: kernels.softmax_cross_entropy_grad(a2, t),
                lambda: reference.softmax_cross_entropy_grad(a2, t))


class SoftmaxSumSquared(_KernelPair):
    """Mean half squared distance between softmax(logits) (batch, 10) and the one-hot labels."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        _, t, _, _, a2, _ = kernel_arrays(batch, dtype)
        return (lambda: kernels.softmax_sum_squared(a2, t),
                lambda: reference.softmax_sum_squared(a2, t))


class SoftmaxSumSquaredGrad(_KernelPair):
    """Gradient of the sum-of-squares loss w.r.t. (batch, 10) logits."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        _, t, _, _, a2, _ = kernel_arrays(batch, dtype)
        return (lambda: kernels.softmax_sum_squared_grad(a2, t),
                lambda: reference.softmax_sum_squared_grad(a2, t))


class TwoLayerLoss(_KernelPair):
    """Fused forward pass and loss of the 784-50-10 net; reference: TwoLayerNet.loss."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        x, t, p, _, _, _ = kernel_arrays(batch, dtype)
        W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
        ref = reference.TwoLayerNet.from_params(p)
        return (lambda: kernels.two_layer_loss(x, t, W1, b1, W2, b2),
                lambda: ref.loss(x, t))


class TwoLayerGradient(_KernelPair):
    """Fused backprop of the 784-50-10 net; reference: TwoLayerNet.gradient."""

    def build(self, batch, dtype):
        import kernels
        from fastnet import reference

        x, t, p, _, _, _ = kernel_arrays(batch, dtype)
        W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
        ref = reference.TwoLayerNet.from_params(p)
        return (lambda: kernels.two_layer_gradient(x, t, W1, b1, W2, b2),
                lambda: ref.gradient(x, t))
