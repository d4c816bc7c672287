"""The book's NumPy formulas, written plainly: the baseline for tests and benchmarks.

Everything here follows *Deep Learning from Scratch* (chapters 3 to 5) line for line where it can:
it is meant to be obviously faithful, not fast. The only additions are keyword arguments that let
tests and benchmarks reach the exact loss (`delta=0`) and time a subset of a numerical gradient
(`indices=`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from fastnet._typing import DTypeLike, NDArray, Params, Seed

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


def sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    """Logistic function 1 / (1 + exp(-x)), elementwise (the book's ch. 3 formula).

    Parameters
    ----------
    x : ndarray
        Any shape.

    Returns
    -------
    ndarray
        Values in (0, 1), shaped like x.

    Examples
    --------
    >>> sigmoid(np.array([0.0, 2.0])).round(4)
    array([0.5   , 0.8808])
    """
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x: NDArray[Any]) -> NDArray[Any]:
    """Derivative of the sigmoid at x: (1 - sigmoid(x)) * sigmoid(x), elementwise.

    Parameters
    ----------
    x : ndarray
        Any shape.

    Returns
    -------
    ndarray
        Values in (0, 0.25], shaped like x.

    Examples
    --------
    >>> sigmoid_grad(np.array([0.0]))
    array([0.25])
    """
    return (1.0 - sigmoid(x)) * sigmoid(x)


def softmax(x: NDArray[Any]) -> NDArray[Any]:
    """Row-wise softmax of (N, C) logits (or of a 1-D vector), with the book's max shift.

    Parameters
    ----------
    x : ndarray, shape (N, C) or (C,)
        Logits.

    Returns
    -------
    ndarray
        Probabilities shaped like x, each row summing to 1.

    Examples
    --------
    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]))
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])
    """
    if x.ndim == 2:
        x = x.T
        x = x - np.max(x, axis=0)
        y = np.exp(x) / np.sum(np.exp(x), axis=0)
        return y.T
    x = x - np.max(x)
    return np.exp(x) / np.sum(np.exp(x))


def cross_entropy_error(y: NDArray[Any], t: NDArray[Any], delta: float = 1e-7) -> Any:
    """Mean cross-entropy of (N, C) probabilities y against labels t (one-hot or indices).

    The book adds `delta = 1e-7` inside the log to avoid log(0); `delta=0` gives the exact loss.

    Parameters
    ----------
    y : ndarray, shape (N, C) or (C,)
        Probabilities.
    t : ndarray, shape (N,) or like y
        Class indices or one-hot rows.
    delta : float, default 1e-7
        Added inside the log.

    Returns
    -------
    numpy scalar
        The mean loss.

    Examples
    --------
    >>> float(cross_entropy_error(np.array([[0.5, 0.5]]), np.array([1]), delta=0.0))
    0.6931471805599453
    """
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + delta)) / batch_size


def mean_squared_error(y: NDArray[Any], t: NDArray[Any]) -> Any:
    """The book's sum of squared errors, 0.5 * sum((y - t)**2), summed over everything (no batch mean).

    Parameters
    ----------
    y : ndarray
        Outputs (probabilities), any shape.
    t : ndarray
        One-hot labels, the shape of y.

    Returns
    -------
    float

    Examples
    --------
    >>> y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    >>> t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    >>> round(float(mean_squared_error(y, t)), 4)
    0.0975
    """
    return 0.5 * np.sum((y - t) ** 2)


def _labels(t: Any, n_classes: int) -> NDArray[Any]:
    """Class indices from one-hot rows or indices."""
    t = np.asarray(t)
    if t.ndim == 2:
        return t.argmax(axis=1)
    return t.astype(np.intp)


def _one_hot(t: Any, like: NDArray[Any]) -> NDArray[Any]:
    """One-hot rows shaped and typed like `like` (N, C), from labels given either way."""
    labels = _labels(t, like.shape[1])
    onehot = np.zeros_like(like)
    onehot[np.arange(like.shape[0]), labels] = 1
    return onehot


def affine_forward(x: NDArray[Any], W: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]:
    """Affine layer forward (ch. 5): (N, D) @ (D, H) + (H,) -> (N, H).

    Parameters
    ----------
    x : ndarray, shape (N, D)
    W : ndarray, shape (D, H)
    b : ndarray, shape (H,)

    Returns
    -------
    ndarray, shape (N, H)

    Examples
    --------
    >>> affine_forward(np.ones((1, 2)), np.eye(2), np.array([0.5, -0.5]))
    array([[1.5, 0.5]])
    """
    return np.dot(x, W) + b


def affine_backward(x: NDArray[Any], W: NDArray[Any], dout: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Affine layer backward (ch. 5): returns dx (N, D), dW (D, H), db (H,).

    Parameters
    ----------
    x : ndarray, shape (N, D)
        The forward input.
    W : ndarray, shape (D, H)
        The weights.
    dout : ndarray, shape (N, H)
        Gradient of the loss with respect to the output.

    Returns
    -------
    (dx, dW, db) : tuple of ndarray

    Examples
    --------
    >>> dx, dW, db = affine_backward(np.ones((3, 2)), np.eye(2), np.ones((3, 2)))
    >>> dx.shape, dW.shape, db.tolist()
    ((3, 2), (2, 2), [3.0, 3.0])
    """
    dx = np.dot(dout, W.T)
    dW = np.dot(x.T, dout)
    db = np.sum(dout, axis=0)
    return dx, dW, db


def softmax_cross_entropy(a: NDArray[Any], t: NDArray[Any]) -> Any:
    """Exact mean cross-entropy of softmax(a), (N, C) logits, labels one-hot or indices.

    Parameters
    ----------
    a : ndarray, shape (N, C)
        Logits.
    t : ndarray, shape (N,) or (N, C)
        Class indices or one-hot rows.

    Returns
    -------
    numpy scalar

    Examples
    --------
    >>> float(softmax_cross_entropy(np.zeros((2, 2)), np.array([0, 1])))
    0.6931471805599453
    """
    return cross_entropy_error(softmax(a), t, delta=0.0)


def softmax_cross_entropy_grad(a: NDArray[Any], t: NDArray[Any]) -> NDArray[Any]:
    """Gradient of the mean softmax cross-entropy w.r.t. the logits: (softmax(a) - onehot(t)) / N.

    Parameters
    ----------
    a : ndarray, shape (N, C)
        Logits.
    t : ndarray, shape (N,) or (N, C)
        Class indices or one-hot rows.

    Returns
    -------
    ndarray, shape (N, C)

    Examples
    --------
    >>> softmax_cross_entropy_grad(np.zeros((1, 2)), np.array([0]))
    array([[-0.5,  0.5]])
    """
    y = softmax(a)
    return (y - _one_hot(t, y)) / a.shape[0]


def softmax_sum_squared(a: NDArray[Any], t: NDArray[Any]) -> Any:
    """Batch mean of the book's mean_squared_error of each row's softmax(a) against its one-hot label.

    Parameters
    ----------
    a : ndarray, shape (N, C)
        Logits.
    t : ndarray
        Labels: indices (N,) or one-hot rows (N, C).

    Returns
    -------
    float

    Examples
    --------
    >>> float(softmax_sum_squared(np.zeros((1, 2)), np.array([0])))
    0.25
    """
    y = softmax(a)
    return mean_squared_error(y, _one_hot(t, y)) / a.shape[0]


def softmax_sum_squared_grad(a: NDArray[Any], t: NDArray[Any]) -> NDArray[Any]:
    """Gradient of softmax_sum_squared w.r.t. the logits: the softmax Jacobian applied to (y - t) / N.

    Parameters
    ----------
    a : ndarray, shape (N, C)
        Logits.
    t : ndarray
        Labels: indices (N,) or one-hot rows (N, C).

    Returns
    -------
    ndarray, shape (N, C)

    Examples
    --------
    >>> softmax_sum_squared_grad(np.zeros((1, 2)), np.array([0]))
    array([[-0.25,  0.25]])
    """
    y = softmax(a)
    dy = (y - _one_hot(t, y)) / a.shape[0]
    result: NDArray[Any] = y * (dy - np.sum(y * dy, axis=1, keepdims=True))
    return result


def numerical_gradient(f: Callable[[NDArray[Any]], Any], x: NDArray[Any], h: float = 1e-4,
                       indices: Iterable[int] | None = None) -> NDArray[Any]:
    """Central differences (f(x+h) - f(x-h)) / 2h for every entry of x, restoring each entry.

    The book's `common/gradient.numerical_gradient`. `indices` (flat indices into x) restricts the
    loop to a subset, leaving the other entries 0: benchmarks time a subset and extrapolate.

    Parameters
    ----------
    f : callable
        ``f(x)`` returning a scalar.
    x : ndarray of float
        Perturbed in place, entry by entry, and restored.
    h : float, default 1e-4
        The step.
    indices : iterable of int, optional
        Flat indices of the entries to differentiate; default all.

    Returns
    -------
    ndarray
        Shaped like x.

    Examples
    --------
    >>> numerical_gradient(lambda w: np.sum(w ** 2), np.array([1.0, -2.0])).round(6)
    array([ 2., -4.])
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
    """The book's ch. 4 two-layer net: affine -> sigmoid -> affine -> softmax.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D, H and C.
    weight_init_std : float, default 0.01
        Standard deviation of the initial weights.
    delta : float, default 1e-7
        Added inside the log of the loss, as in the book (0 for the exact loss).
    seed : int, numpy.random.Generator or None
        Seed of the weights: equal seeds give the same weights as `fastnet.TwoLayerNet`.
    dtype : float32 or float64, default float64
        Float type of the parameters.
    loss : {"cross_entropy", "sum_squared"}
        The cross-entropy (with `delta`), or the batch mean of the book's `mean_squared_error` of
        each sample's softmax output against its one-hot label.

    Examples
    --------
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> net.predict(np.ones((1, 4))).shape
    (1, 2)
    >>> float(net.accuracy(np.ones((2, 4)), np.array([0, 1])))
    0.5
    >>> sorted(net.gradient(np.ones((2, 4)), np.array([0, 1])))
    ['W1', 'W2', 'b1', 'b2']
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01, *,
                 delta: float = 1e-7, seed: Seed = None, dtype: DTypeLike = np.float64,
                 loss: str = "cross_entropy") -> None:
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
    def from_params(cls, params: Params, delta: float = 1e-7, loss: str = "cross_entropy") -> TwoLayerNet:
        """A reference net holding copies of `params` (dict W1 b1 W2 b2).

        Parameters
        ----------
        params : dict of str to ndarray
            W1, b1, W2, b2, e.g. a `fastnet.TwoLayerNet`'s ``params``.
        delta : float, default 1e-7
            Added inside the log of the loss.
        loss : {"cross_entropy", "sum_squared"}
            The net's loss.

        Returns
        -------
        TwoLayerNet

        Examples
        --------
        >>> import fastnet
        >>> TwoLayerNet.from_params(fastnet.TwoLayerNet(4, 3, 2).params).params["W2"].shape
        (3, 2)
        """
        net = cls.__new__(cls)
        net.delta = delta
        net.loss_name = loss
        net.params = {k: np.array(params[k], copy=True) for k in ("W1", "b1", "W2", "b2")}
        return net

    def predict(self, x: NDArray[Any]) -> NDArray[Any]:
        """Softmax probabilities (N, C) for inputs (N, D).

        Parameters
        ----------
        x : ndarray, shape (N, D)

        Returns
        -------
        ndarray, shape (N, C)

        Examples
        --------
        >>> TwoLayerNet(4, 3, 2, seed=0).predict(np.zeros((3, 4))).sum(axis=1)
        array([1., 1., 1.])
        """
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        return softmax(a2)

    def loss(self, x: NDArray[Any], t: NDArray[Any]) -> Any:
        """The book's cross-entropy (with `delta` inside the log).

        Parameters
        ----------
        x : ndarray, shape (N, D)
        t : ndarray, shape (N,) or (N, C)

        Returns
        -------
        numpy scalar

        Examples
        --------
        >>> round(float(TwoLayerNet(4, 3, 2, seed=0).loss(np.zeros((1, 4)), np.array([1]))), 1)
        0.7
        """
        y = self.predict(x)
        if self.loss_name == "sum_squared":
            # the book's mean_squared_error sums over the batch; the net averages it like the cross-entropy
            return mean_squared_error(y, _one_hot(t, y)) / y.shape[0]
        return cross_entropy_error(y, t, delta=self.delta)

    def accuracy(self, x: NDArray[Any], t: NDArray[Any]) -> Any:
        """Fraction of rows whose most probable class is the label.

        Parameters
        ----------
        x : ndarray, shape (N, D)
        t : ndarray, shape (N,) or (N, C)

        Returns
        -------
        float

        Examples
        --------
        >>> float(TwoLayerNet(4, 3, 2, seed=0).accuracy(np.ones((2, 4)), np.array([0, 1])))
        0.5
        """
        y = self.predict(x)
        y = np.argmax(y, axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def numerical_gradient(self, x: NDArray[Any], t: NDArray[Any], h: float = 1e-4) -> Params:
        """The book's loop: central differences of the whole loss, parameter by parameter.

        Parameters
        ----------
        x : ndarray, shape (N, D)
        t : ndarray, shape (N,) or (N, C)
        h : float, default 1e-4

        Returns
        -------
        dict of str to ndarray
            W1, b1, W2, b2.

        Examples
        --------
        >>> g = TwoLayerNet(4, 3, 2, seed=0).numerical_gradient(np.ones((2, 4)), np.array([0, 1]))
        >>> g["W1"].shape
        (4, 3)
        """

        def loss_W(W: NDArray[Any]) -> Any:
            return self.loss(x, t)

        return {key: numerical_gradient(loss_W, self.params[key], h=h)
                for key in ("W1", "b1", "W2", "b2")}

    def gradient(self, x: NDArray[Any], t: NDArray[Any]) -> Params:
        """Backprop gradient: dict W1 b1 W2 b2.

        Parameters
        ----------
        x : ndarray, shape (N, D)
        t : ndarray, shape (N,) or (N, C)

        Returns
        -------
        dict of str to ndarray

        Examples
        --------
        >>> TwoLayerNet(4, 3, 2, seed=0).gradient(np.ones((2, 4)), np.array([0, 1]))["b2"].shape
        (2,)
        """
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
