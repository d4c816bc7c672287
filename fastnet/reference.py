"""The book's NumPy formulas, written plainly: the baseline for tests and benchmarks.

Everything here follows *Deep Learning from Scratch* (chapters 3 to 5) line for line where it can:
it is meant to be obviously faithful, not fast. The only additions are keyword arguments that let
tests and benchmarks reach the exact loss (`delta=0`) and time a subset of a numerical gradient
(`indices=`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "cross_entropy_error",
    "mean_squared_error",
    "affine_forward",
    "affine_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_sum_squared",
    "softmax_sum_squared_grad",
    "numerical_gradient",
    "TwoLayerNet",
]


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x)), elementwise (the book's ch. 3 formula)."""
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    """Derivative of the sigmoid at x: (1 - sigmoid(x)) * sigmoid(x), elementwise."""
    return (1.0 - sigmoid(x)) * sigmoid(x)


def softmax(x):
    """Row-wise softmax of (N, C) logits (or of a 1-D vector), with the book's max shift."""
    if x.ndim == 2:
        x = x.T
        x = x - np.max(x, axis=0)
        y = np.exp(x) / np.sum(np.exp(x), axis=0)
        return y.T
    x = x - np.max(x)
    return np.exp(x) / np.sum(np.exp(x))


def cross_entropy_error(y, t, delta=1e-7):
    """Mean cross-entropy of (N, C) probabilities y against labels t (one-hot or indices).

    The book adds `delta = 1e-7` inside the log to avoid log(0); `delta=0` gives the exact loss.
    """
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + delta)) / batch_size


def mean_squared_error(y, t):
    """The book's sum of squared errors, 0.5 * sum((y - t)**2), summed over everything (no batch mean)."""
    return 0.5 * np.sum((y - t) ** 2)


def _labels(t, n_classes):
    """Class indices from one-hot rows or indices."""
    t = np.asarray(t)
    if t.ndim == 2:
        return t.argmax(axis=1)
    return t.astype(np.intp)


def _one_hot(t, like):
    """One-hot rows shaped and typed like `like` (N, C), from labels given either way."""
    labels = _labels(t, like.shape[1])
    onehot = np.zeros_like(like)
    onehot[np.arange(like.shape[0]), labels] = 1
    return onehot


def affine_forward(x, W, b):
    """Affine layer forward (ch. 5): (N, D) @ (D, H) + (H,) -> (N, H)."""
    return np.dot(x, W) + b


def affine_backward(x, W, dout):
    """Affine layer backward (ch. 5): returns dx (N, D), dW (D, H), db (H,)."""
    dx = np.dot(dout, W.T)
    dW = np.dot(x.T, dout)
    db = np.sum(dout, axis=0)
    return dx, dW, db


def softmax_cross_entropy(a, t):
    """Exact mean cross-entropy of softmax(a), (N, C) logits, labels one-hot or indices."""
    return cross_entropy_error(softmax(a), t, delta=0.0)


def softmax_cross_entropy_grad(a, t):
    """Gradient of the mean softmax cross-entropy w.r.t. the logits: (softmax(a) - onehot(t)) / N."""
    y = softmax(a)
    return (y - _one_hot(t, y)) / a.shape[0]


def softmax_sum_squared(a, t):
    """Mean over the batch of the book's mean_squared_error of one row: softmax(a) against one-hot t."""
    y = softmax(a)
    return mean_squared_error(y, _one_hot(t, y)) / a.shape[0]


def softmax_sum_squared_grad(a, t):
    """Gradient of softmax_sum_squared w.r.t. the logits: the softmax Jacobian applied to (y - t) / N."""
    y = softmax(a)
    dy = (y - _one_hot(t, y)) / a.shape[0]
    return y * (dy - np.sum(y * dy, axis=1, keepdims=True))


LOSSES = ("cross_entropy", "sum_squared")


def numerical_gradient(f, x, h=1e-4, indices=None):
    """Central differences (f(x+h) - f(x-h)) / 2h for every entry of x, restoring each entry.

    The book's `common/gradient.numerical_gradient`. `indices` (flat indices into x) restricts the
    loop to a subset, leaving the other entries 0: benchmarks time a subset and extrapolate.
    """
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)  # a view: perturbing it perturbs x, as the book's nditer does
    flat_grad = grad.reshape(-1)
    if indices is None:
        indices = range(x.size)
    for idx in indices:
        tmp_val = flat_x[idx]
        flat_x[idx] = tmp_val + h
        fxh1 = f(x)
        flat_x[idx] = tmp_val - h
        fxh2 = f(x)
        flat_grad[idx] = (fxh1 - fxh2) / (2 * h)
        flat_x[idx] = tmp_val
    return grad


class TwoLayerNet:
    """The book's ch. 4 two-layer net: affine -> sigmoid -> affine -> softmax."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, *,
                 delta=1e-7, seed=None, dtype=np.float64, loss="cross_entropy"):
        rng = np.random.default_rng(seed)
        self.delta = delta
        self.loss_name = loss
        self.params = {
            "W1": (weight_init_std * rng.standard_normal((input_size, hidden_size))).astype(dtype),
            "b1": np.zeros(hidden_size, dtype=dtype),
            "W2": (weight_init_std * rng.standard_normal((hidden_size, output_size))).astype(dtype),
            "b2": np.zeros(output_size, dtype=dtype),
        }

    @classmethod
    def from_params(cls, params, delta=1e-7, loss="cross_entropy"):
        """A reference net holding copies of `params` (dict W1 b1 W2 b2)."""
        net = cls.__new__(cls)
        net.delta = delta
        net.loss_name = loss
        net.params = {k: np.array(params[k], copy=True) for k in ("W1", "b1", "W2", "b2")}
        return net

    def predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        return softmax(a2)

    def loss(self, x, t):
        y = self.predict(x)
        if self.loss_name == "sum_squared":
            # the book's mean_squared_error sums over the batch; the net averages it like the cross-entropy
            return mean_squared_error(y, _one_hot(t, y)) / y.shape[0]
        return cross_entropy_error(y, t, delta=self.delta)

    def accuracy(self, x, t):
        y = self.predict(x)
        y = np.argmax(y, axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def numerical_gradient(self, x, t, h=1e-4):
        def loss_W(W):
            return self.loss(x, t)

        return {key: numerical_gradient(loss_W, self.params[key], h=h)
                for key in ("W1", "b1", "W2", "b2")}

    def gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        batch_num = x.shape[0]

        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)

        dy = (y - _one_hot(t, y)) / batch_num
        if self.loss_name == "sum_squared":  # through the softmax's Jacobian
            dy = y * (dy - np.sum(y * dy, axis=1, keepdims=True))

        grads = {}
        grads["W2"] = np.dot(z1.T, dy)
        grads["b2"] = np.sum(dy, axis=0)
        dz1 = np.dot(dy, W2.T)
        da1 = sigmoid_grad(a1) * dz1
        grads["W1"] = np.dot(x.T, da1)
        grads["b1"] = np.sum(da1, axis=0)
        return grads
