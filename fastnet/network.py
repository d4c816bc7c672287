"""TwoLayerNet: the book's chapter 4 network with compiled kernels behind the same API."""

from __future__ import annotations

import numbers

import numpy as np

import kernels
from fastnet.methods import method_code, step_for
from fastnet.threads import num_threads
from fastnet.validation import (
    as_float_dtype,
    check_inputs,
    check_labels,
    positive_int,
)

PARAM_NAMES = ("W1", "b1", "W2", "b2")

# The losses on the softmax outputs, each averaged over the batch: the cross-entropy (the book's
# choice for the network) and half the squared distance to the one-hot label (the book's
# `mean_squared_error`, chapter 4's other loss).
LOSSES = {"cross_entropy": kernels.CROSS_ENTROPY, "sum_squared": kernels.SUM_SQUARED}


def loss_code(loss):
    """The kernel constant for a loss name; ValueError/TypeError naming `loss` otherwise."""
    if not isinstance(loss, str):
        raise TypeError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    return LOSSES[loss]


class TwoLayerNet:
    """affine (D -> H) -> sigmoid -> affine (H -> C) -> softmax, trained on a loss of the softmax.

    `params` is a plain dict of arrays W1 (D, H), b1 (H,), W2 (H, C), b2 (C,) that may be read,
    updated in place or replaced by arrays of the same shape and dtype. Labels `t` are class
    indices (N,) or one-hot rows (N, C) everywhere. `loss` is "cross_entropy" (the default, the
    book's) or "sum_squared": the mean over the batch of half the squared distance between the
    softmax output and the one-hot label (the book's `mean_squared_error`, averaged per sample).
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, *,
                 dtype=np.float64, seed=None, loss="cross_entropy"):
        self._loss = loss_code(loss)
        self.loss_name = loss
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.output_size = positive_int(output_size, "output_size")
        self.dtype = as_float_dtype(dtype)
        if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, numbers.Real):
            raise TypeError(f"weight_init_std must be a real number, got {weight_init_std!r}")
        if not np.isfinite(weight_init_std) or weight_init_std < 0:
            raise ValueError(f"weight_init_std must be finite and >= 0, got {weight_init_std!r}")
        if not (seed is None or isinstance(seed, (numbers.Integral, np.random.Generator))) \
                or isinstance(seed, bool):
            raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}")
        rng = np.random.default_rng(seed)
        d, h, c = self.input_size, self.hidden_size, self.output_size
        # Drawn in float64 then cast, as fastnet.reference.TwoLayerNet does: equal seeds, equal nets.
        self.params = {
            "W1": (weight_init_std * rng.standard_normal((d, h))).astype(self.dtype),
            "b1": np.zeros(h, dtype=self.dtype),
            "W2": (weight_init_std * rng.standard_normal((h, c))).astype(self.dtype),
            "b2": np.zeros(c, dtype=self.dtype),
        }

    def __repr__(self):
        loss = "" if self.loss_name == "cross_entropy" else f", loss={self.loss_name!r}"
        return (f"TwoLayerNet({self.input_size}, {self.hidden_size}, {self.output_size}, "
                f"dtype={self.dtype.name}{loss})")

    # -- checks -------------------------------------------------------------------------------

    def _shapes(self):
        d, h, c = self.input_size, self.hidden_size, self.output_size
        return {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,)}

    def _checked_params(self):
        """(W1, b1, W2, b2) as C-contiguous arrays, after checking shape, dtype and finiteness."""
        if not isinstance(self.params, dict):
            raise TypeError(f"params must be a dict with keys {PARAM_NAMES}, got {type(self.params).__name__}")
        out = []
        for key, shape in self._shapes().items():
            if key not in self.params:
                raise ValueError(f"params is missing {key!r}")
            arr = self.params[key]
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"params[{key!r}] must be a numpy array, got {type(arr).__name__}")
            if arr.dtype != self.dtype:
                raise TypeError(f"params[{key!r}] must have dtype {self.dtype}, got {arr.dtype}")
            if arr.shape != shape:
                raise ValueError(f"params[{key!r}] must have shape {shape}, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"params[{key!r}] contains NaN or inf")
            out.append(np.ascontiguousarray(arr))
        return tuple(out)

    def _x(self, x):
        return check_inputs(x, self.input_size, self.dtype)

    def _xt(self, x, t):
        x = self._x(x)
        return x, check_labels(t, x.shape[0], self.output_size)

    # -- the book's API -----------------------------------------------------------------------

    def predict(self, x):
        """Softmax class probabilities (N, C) for inputs x (N, D)."""
        x = self._x(x)
        return kernels.two_layer_predict(x, *self._checked_params())

    def loss(self, x, t):
        """Mean loss on (x, t) as a scalar of the net's dtype.

        The cross-entropy is exact (no +1e-7 inside the log); the sum of squares is the batch mean
        of half the squared distance between the softmax output and the one-hot label.
        """
        x, t = self._xt(x, t)
        return self.dtype.type(kernels.two_layer_loss(x, t, *self._checked_params(), self._loss))

    def accuracy(self, x, t):
        """Fraction of rows whose most probable class is the label."""
        x, t = self._xt(x, t)
        y = kernels.two_layer_predict(x, *self._checked_params())
        return float(np.mean(np.argmax(y, axis=1) == t))

    def gradient(self, x, t):
        """Backprop gradient of the loss: dict W1 b1 W2 b2 of arrays shaped like params."""
        x, t = self._xt(x, t)
        grads = kernels.two_layer_gradient(x, t, *self._checked_params(), self._loss)
        return dict(zip(PARAM_NAMES, grads))

    def numerical_gradient(self, x, t, h=None, method="central", *, threads=None):
        """Numerical gradient of the loss by perturbing every parameter: dict W1 b1 W2 b2.

        method "central" (default), "forward" or "backward" gives the finite difference of the
        exact loss at step h (default 1e-4, as in the book); "complex" gives Im L(theta + i h e_p) / h
        (default h = 1e-20). Computed by fastnet's structure-aware parallel kernel; `threads` sets
        numba's thread count for this call only.
        """
        code = method_code(method)
        h = step_for(method, h)
        x, t = self._xt(x, t)
        params = self._checked_params()
        step = self.dtype.type(h)
        with num_threads(threads):
            if code == kernels.COMPLEX:
                grads = kernels.two_layer_complex_step(x, t, *params, step, self._loss)
            else:
                grads = kernels.two_layer_numerical_gradient(x, t, *params, step, code, self._loss)
        return dict(zip(PARAM_NAMES, grads))
