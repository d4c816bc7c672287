"""The JAX and PyTorch twins of fastnet's kernels, over batch sizes and float dtypes.

Every class times `time_jax` (a `jax.jit` function) and `time_torch` (PyTorch, under `no_grad` for
forward kernels, `loss.backward()` for gradients) on the arrays that `bench_kernels` hands to the
kernel of the same name, so the three sides of one kernel compare across the two modules. The
twins come from `fastnet.twins`. asv runs this suite against older commits too, which lack that
module, and jax or torch may not be installed: setup() then raises NotImplementedError, asv's way
of skipping a benchmark (each method's own setup checks its library, so one missing library skips
only its half). setup() builds the twins and calls each once, so tracing and compilation never
land in a timing.
"""

from __future__ import annotations

import numpy as np

from .common import cached, kernel_arrays

BATCHES = [1, 10, 100, 1000]
DTYPES = ["float32", "float64"]
LIBRARIES = ("jax", "torch")


def _twins_module():
    """fastnet.twins, or NotImplementedError (asv: skipped) on commits that predate it."""
    try:
        from fastnet import twins
    except ImportError:
        raise NotImplementedError("fastnet.twins does not exist in this version of fastnet")
    return twins


def _require(library):
    """A setup for one method: NotImplementedError (asv: skipped) when `library` does not import."""
    def setup(*params):
        note = _twins_module().note(library)
        if note is not None:
            raise NotImplementedError(note)
    setup.__name__ = f"setup_{library}"
    return setup


class _Twins:
    """Base: subclasses name a kernel and define arrays(batch, dtype) -> that kernel's arrays."""

    kernel = ""
    params = (BATCHES, DTYPES)
    param_names = ["batch", "dtype"]
    # Calls take microseconds to milliseconds: many samples, each a single call (setup is cheap
    # between samples, the twins being cached per process).
    repeat = (10, 200, 2.0)
    min_run_count = 10

    def setup(self, batch, dtype):
        twins = _twins_module()
        self.calls = {}
        for library in LIBRARIES:
            if twins.note(library) is None:
                self.calls[library] = cached(("twin", type(self).__name__, library, batch, dtype),
                                             lambda: self._warm(twins, library, batch, dtype))
        if not self.calls:
            raise NotImplementedError(f"neither {' nor '.join(LIBRARIES)} imports")

    def _warm(self, twins, library, batch, dtype):
        call = twins.twin(library, self.kernel, *self.arrays(batch, dtype))
        call()  # traces and compiles (jax) or allocates (torch) outside any timing
        return call

    def time_jax(self, batch, dtype):
        self.calls["jax"]()

    time_jax.setup = _require("jax")

    def time_torch(self, batch, dtype):
        self.calls["torch"]()

    time_torch.setup = _require("torch")


class AffineForward(_Twins):
    """x @ W1 + b1, (batch, 784) @ (784, 50)."""

    kernel = "affine_forward"

    def arrays(self, batch, dtype):
        x, _, p, _, _, _ = kernel_arrays(batch, dtype)
        return x, p["W1"], p["b1"]


class AffineBackward(_Twins):
    """dx, dW, db of the first affine layer from dout (batch, 50)."""

    kernel = "affine_backward"

    def arrays(self, batch, dtype):
        x, _, p, _, _, dout = kernel_arrays(batch, dtype)
        return x, p["W1"], dout


class Sigmoid(_Twins):
    """Elementwise sigmoid of the hidden pre-activations (batch, 50)."""

    kernel = "sigmoid"

    def arrays(self, batch, dtype):
        return (kernel_arrays(batch, dtype)[3],)


class SoftmaxCrossEntropy(_Twins):
    """Mean softmax cross-entropy of (batch, 10) logits."""

    kernel = "softmax_cross_entropy"

    def arrays(self, batch, dtype):
        _, t, _, _, a2, _ = kernel_arrays(batch, dtype)
        return a2, t


class SoftmaxCrossEntropyGrad(_Twins):
    """Gradient of the mean softmax cross-entropy w.r.t. (batch, 10) logits, by autodiff."""

    kernel = "softmax_cross_entropy_grad"

    def arrays(self, batch, dtype):
        _, t, _, _, a2, _ = kernel_arrays(batch, dtype)
        return a2, t


class TwoLayerLoss(_Twins):
    """Forward pass and mean cross-entropy of the 784-50-10 net."""

    kernel = "two_layer_loss"

    def arrays(self, batch, dtype):
        x, t, p, _, _, _ = kernel_arrays(batch, dtype)
        return x, t, p["W1"], p["b1"], p["W2"], p["b2"]


class TwoLayerGradient(_Twins):
    """Backprop of the 784-50-10 net: jax.grad of the loss, or loss.backward()."""

    kernel = "two_layer_gradient"

    def arrays(self, batch, dtype):
        x, t, p, _, _, _ = kernel_arrays(batch, dtype)
        return x, t, p["W1"], p["b1"], p["W2"], p["b2"]
