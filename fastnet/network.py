"""TwoLayerNet: the book's chapter 4 network with compiled kernels behind the same API."""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
import numpy.typing as npt

import kernels
from kernels.scan import scan_arguments
from fastnet._typing import ArrayLike, DTypeLike, FloatArray, NDArray, Params, Seed
from fastnet.methods import method_code, step_for
from fastnet.threads import num_threads
from fastnet.validation import (
    as_float_dtype,
    check_inputs,
    check_labels,
    check_seed,
    check_step_for,
    positive_int,
)

PARAM_NAMES = ("W1", "b1", "W2", "b2")

# The labels scan_arguments sees when a call has none (predict).
_NO_LABELS = np.empty(0, dtype=np.int64)

# The losses on the softmax outputs, each averaged over the batch: the cross-entropy (the book's
# choice for the network) and half the squared distance to the one-hot label (the book's
# `mean_squared_error`, chapter 4's other loss).
LOSSES = {"cross_entropy": kernels.CROSS_ENTROPY, "sum_squared": kernels.SUM_SQUARED}


def loss_code(loss: object) -> int:
    """The kernel constant for a loss name; ValueError/TypeError naming `loss` otherwise.

    The compiled kernels take the loss as an integer constant (numba specialises on it), so the
    name is checked and translated here, before any kernel runs.

    Parameters
    ----------
    loss : str
        ``"cross_entropy"`` (the book's choice for the network) or ``"sum_squared"``.

    Returns
    -------
    int
        ``kernels.CROSS_ENTROPY`` or ``kernels.SUM_SQUARED``.

    Raises
    ------
    TypeError
        `loss` is not a string.
    ValueError
        `loss` is not one of the names above.

    Examples
    --------
    >>> import kernels
    >>> loss_code("sum_squared") == kernels.SUM_SQUARED
    True
    >>> loss_code("mse")
    Traceback (most recent call last):
    ...
    ValueError: loss must be one of 'cross_entropy', 'sum_squared', got 'mse'
    """
    if not isinstance(loss, str):
        raise TypeError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    return int(LOSSES[loss])


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux: MemAvailable), else physical memory, or None.

    `TwoLayerNet` compares its parameters' size with this before allocating them, so that an
    impossible size is a ValueError rather than the process being killed for lack of memory.

    Returns
    -------
    int or None
        The number of bytes, or None when the system does not say.

    Examples
    --------
    >>> n = available_memory()
    >>> n is None or n > 0
    True
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def _format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _check_memory(d: int, h: int, c: int, dtype: np.dtype[Any]) -> None:
    """ValueError before allocating when the parameters (and their float64 draws) cannot fit in memory."""
    params = (d * h + h + h * c + c) * dtype.itemsize
    # The weights are drawn in float64, then cast: the larger draw is alive next to the params.
    need = params + 8 * max(d * h, h * c)
    available = available_memory()
    if available is not None and need > available:
        raise ValueError(
            f"TwoLayerNet({d}, {h}, {c}) with {dtype.name} parameters needs {_format_bytes(need)} to build "
            f"({_format_bytes(params)} of parameters), more than the {_format_bytes(available)} available"
        )


class TwoLayerNet:
    """affine (D -> H) -> sigmoid -> affine (H -> C) -> softmax, trained on a loss of the softmax.

    `params` is a plain dict of arrays W1 (D, H), b1 (H,), W2 (H, C), b2 (C,) that may be read,
    updated in place or replaced by arrays of the same shape and dtype. Labels `t` are class
    indices (N,) or one-hot rows (N, C) everywhere. `loss` is "cross_entropy" (the default, the
    book's) or "sum_squared": the mean over the batch of half the squared distance between the
    softmax output and the one-hot label (the book's `mean_squared_error`, averaged per sample).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D, H and C, each at least 1.
    weight_init_std : float, default 0.01
        Standard deviation of the normal draws of W1 and W2 (the biases start at zero).
    dtype : float32 or float64, default float64
        Float type of the parameters and of every computation.
    seed : int, numpy.random.Generator or None
        Seed of the weight draws; equal seeds give equal nets (also equal to
        `fastnet.reference.TwoLayerNet` with the same seed).
    loss : {"cross_entropy", "sum_squared"}, default "cross_entropy"
        The loss of the softmax outputs that `loss`, `gradient` and `numerical_gradient` use.

    Raises
    ------
    TypeError
        A size that is not an int, a dtype other than float32/float64, a bad seed, a loss that is
        not a string.
    ValueError
        A size below 1, a negative or non-finite weight_init_std, parameters that cannot fit in
        memory, an unknown loss.

    Examples
    --------
    >>> import numpy as np
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> net
    TwoLayerNet(4, 3, 2, dtype=float64)
    >>> {k: v.shape for k, v in net.params.items()}
    {'W1': (4, 3), 'b1': (3,), 'W2': (3, 2), 'b2': (2,)}
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01, *,
                 dtype: DTypeLike = np.float64, seed: Seed = None, loss: str = "cross_entropy") -> None:
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
        # Standard normal draws stay below 40 in magnitude (P ~ 1e-350), so this keeps every weight finite.
        std_max = float(np.finfo(self.dtype).max) / 40
        if weight_init_std > std_max:
            raise ValueError(f"weight_init_std={weight_init_std:g} overflows {self.dtype.name} weights; "
                             f"use at most {std_max:.3g}")
        check_seed(seed)
        d, h, c = self.input_size, self.hidden_size, self.output_size
        _check_memory(d, h, c, self.dtype)
        rng = np.random.default_rng(seed)
        # Drawn in float64 then cast, as fastnet.reference.TwoLayerNet does: equal seeds, equal nets.
        self.params: Params = {
            "W1": (weight_init_std * rng.standard_normal((d, h))).astype(self.dtype),
            "b1": np.zeros(h, dtype=self.dtype),
            "W2": (weight_init_std * rng.standard_normal((h, c))).astype(self.dtype),
            "b2": np.zeros(c, dtype=self.dtype),
        }

    def __repr__(self) -> str:
        loss = "" if self.loss_name == "cross_entropy" else f", loss={self.loss_name!r}"
        return (f"TwoLayerNet({self.input_size}, {self.hidden_size}, {self.output_size}, "
                f"dtype={self.dtype.name}{loss})")

    # -- checks -------------------------------------------------------------------------------

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        d, h, c = self.input_size, self.hidden_size, self.output_size
        return {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,)}

    def _checked_params(self) -> tuple[FloatArray, ...]:
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

    def _x(self, x: ArrayLike) -> FloatArray:
        return check_inputs(x, self.input_size, self.dtype)

    def _xt(self, x: ArrayLike, t: ArrayLike) -> tuple[FloatArray, NDArray[np.int64]]:
        x = self._x(x)
        return x, check_labels(t, x.shape[0], self.output_size)

    def _ready(self, x: object, t: object = None, *, labelled: bool = True
               ) -> tuple[FloatArray, NDArray[np.int64], tuple[FloatArray, ...]] | None:
        """(x, t, params) when the arguments are already what the kernels take and valid, else None.

        The common case of a training loop: x a float (N, D) array (copied to a C-contiguous one
        of the net's dtype when it is not one already), t integer class indices (N,), params
        C-contiguous arrays of the right shape and dtype. One compiled pass (`scan_arguments`)
        then checks every value the full checks would: x and all parameters finite, labels in
        range. Any other input, or a problem found, returns None, and the caller runs the full
        checks, which raise the error naming the argument. No call skips the scan of every
        parameter, so a NaN written into params in place is caught on the next call, for a few
        microseconds instead of the tens that the NumPy checks cost at batch 1.
        """
        params = self.params
        if type(params) is not dict:
            return None
        try:
            W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        except KeyError:
            return None
        dt = self.dtype
        d, h, c = self.input_size, self.hidden_size, self.output_size
        for arr, shape in ((W1, (d, h)), (b1, (h,)), (W2, (h, c)), (b2, (c,))):
            if type(arr) is not np.ndarray or arr.dtype != dt or arr.shape != shape \
                    or not arr.flags.c_contiguous:
                return None
        if type(x) is not np.ndarray or x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != d:
            return None
        if x.dtype != dt or not x.flags.c_contiguous or not x.flags.writeable:
            if x.dtype.kind != "f":
                return None
            with np.errstate(over="ignore"):  # an overflow becomes inf: the scan finds it
                x = np.array(x, dtype=dt, order="C")
        if not labelled:
            labels = _NO_LABELS
        elif type(t) is not np.ndarray or t.dtype.kind not in "iu" or t.shape != (x.shape[0],):
            return None
        else:
            labels = t if t.dtype == np.int64 and t.flags.c_contiguous else t.astype(np.int64)
        if scan_arguments(x, labels, c, W1, b1, W2, b2):
            return None
        return x, labels, (W1, b1, W2, b2)

    def _labelled(self, x: ArrayLike, t: ArrayLike
                  ) -> tuple[FloatArray, NDArray[np.int64], tuple[FloatArray, ...]]:
        """(x, t, params) for a labelled call: the fast path when it applies, else the full checks."""
        ready = self._ready(x, t)
        if ready is not None:
            return ready
        xs, ts = self._xt(x, t)
        return xs, ts, self._checked_params()

    # -- the book's API -----------------------------------------------------------------------

    def predict(self, x: ArrayLike) -> FloatArray:
        """Softmax class probabilities (N, C) for inputs x (N, D).

        Parameters
        ----------
        x : array_like, shape (N, D)
            Inputs, N >= 1, all finite; converted to the net's dtype.

        Returns
        -------
        ndarray, shape (N, C)
            Rows of class probabilities, each summing to 1.

        Raises
        ------
        TypeError
            x does not hold real numbers.
        ValueError
            x has the wrong shape, no rows, or NaN/inf.

        Examples
        --------
        >>> net = TwoLayerNet(4, 3, 2, seed=0)
        >>> net.predict(np.ones((5, 4))).shape
        (5, 2)
        """
        ready = self._ready(x, labelled=False)
        if ready is not None:
            return kernels.two_layer_predict(ready[0], *ready[2])  # type: ignore[no-any-return]
        x = self._x(x)
        return kernels.two_layer_predict(x, *self._checked_params())  # type: ignore[no-any-return]

    def loss(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:
        """Mean loss on (x, t) as a scalar of the net's dtype.

        The cross-entropy is exact (no +1e-7 inside the log); the sum of squares is the batch mean
        of half the squared distance between the softmax output and the one-hot label.

        Parameters
        ----------
        x : array_like, shape (N, D)
            Inputs.
        t : array_like, shape (N,) or (N, C)
            Class indices or one-hot rows.

        Returns
        -------
        numpy.float32 or numpy.float64
            The mean loss over the N rows.

        Raises
        ------
        TypeError, ValueError
            Bad inputs (as for `predict`), labels of the wrong shape or outside [0, C).

        Examples
        --------
        >>> net = TwoLayerNet(4, 3, 2, seed=0)
        >>> round(float(net.loss(np.zeros((2, 4)), [0, 1])), 3)  # small weights: about log(2)
        0.693
        """
        xs, ts, params = self._labelled(x, t)
        return self.dtype.type(kernels.two_layer_loss(xs, ts, *params, self._loss))  # type: ignore[no-any-return]

    def accuracy(self, x: ArrayLike, t: ArrayLike) -> float:
        """Fraction of rows whose most probable class is the label.

        Parameters
        ----------
        x : array_like, shape (N, D)
            Inputs.
        t : array_like, shape (N,) or (N, C)
            Class indices or one-hot rows.

        Returns
        -------
        float
            Between 0 and 1.

        Raises
        ------
        TypeError, ValueError
            Bad inputs or labels, as for `loss`.

        Examples
        --------
        >>> net = TwoLayerNet(4, 3, 2, seed=0)
        >>> 0.0 <= net.accuracy(np.ones((5, 4)), [0, 1, 0, 1, 1]) <= 1.0
        True
        """
        xs, ts, params = self._labelled(x, t)
        y = kernels.two_layer_predict(xs, *params)
        return float(np.mean(np.argmax(y, axis=1) == ts))

    def gradient(self, x: ArrayLike, t: ArrayLike) -> Params:
        """Backprop gradient of the loss: dict W1 b1 W2 b2 of arrays shaped like params.

        Parameters
        ----------
        x : array_like, shape (N, D)
            Inputs.
        t : array_like, shape (N,) or (N, C)
            Class indices or one-hot rows.

        Returns
        -------
        dict of str to ndarray
            ``{"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}`` in the net's dtype.

        Raises
        ------
        TypeError, ValueError
            Bad inputs or labels, as for `loss`.

        Examples
        --------
        >>> net = TwoLayerNet(4, 3, 2, seed=0)
        >>> g = net.gradient(np.ones((5, 4)), [0, 1, 0, 1, 1])
        >>> g["W1"].shape, g["b2"].shape
        ((4, 3), (2,))
        """
        xs, ts, params = self._labelled(x, t)
        grads = kernels.two_layer_gradient(xs, ts, *params, self._loss)
        return dict(zip(PARAM_NAMES, grads))

    def numerical_gradient(self, x: ArrayLike, t: ArrayLike, h: float | None = None, method: str = "central", *,
                           threads: int | None = None) -> Params:
        """Numerical gradient of the loss by perturbing every parameter: dict W1 b1 W2 b2.

        method "central" (default), "forward" or "backward" gives the finite difference of the
        exact loss at step h (default 1e-4, as in the book); "complex" gives Im L(theta + i h e_p) / h
        (default h = 1e-20). Computed by fastnet's structure-aware parallel kernel; `threads` sets
        numba's thread count for this call only.

        h must suit the dtype and the weights (`fastnet.validation.step_range`): a ValueError gives
        the usable range otherwise, and a gradient that comes out NaN or inf is a ValueError too.

        Parameters
        ----------
        x : array_like, shape (N, D)
            Inputs.
        t : array_like, shape (N,) or (N, C)
            Class indices or one-hot rows.
        h : float, optional
            Step, finite and > 0; default 1e-4, or 1e-20 for ``method="complex"``.
        method : {"central", "forward", "backward", "complex"}
            The difference formula.
        threads : int, optional
            numba threads for this call (the previous count is restored afterwards).

        Returns
        -------
        dict of str to ndarray
            Like `gradient`: W1, b1, W2, b2 in the net's dtype.

        Raises
        ------
        TypeError, ValueError
            Bad inputs or labels, an unknown method, a step that is not finite and > 0, a thread
            count outside [1, NUMBA_NUM_THREADS].

        Examples
        --------
        >>> net = TwoLayerNet(4, 3, 2, seed=0)
        >>> x, t = np.linspace(0, 1, 20).reshape(5, 4), [0, 1, 0, 1, 1]
        >>> n = net.numerical_gradient(x, t)
        >>> b = net.gradient(x, t)
        >>> all(np.allclose(n[k], b[k], atol=1e-8) for k in b)
        True
        """
        code = method_code(method)
        h = step_for(method, h)
        x, t = self._xt(x, t)
        params = self._checked_params()
        h = check_step_for(h, self.dtype, params, method)
        step = self.dtype.type(h)
        with num_threads(threads):
            if code == kernels.COMPLEX:
                grads = kernels.two_layer_complex_step(x, t, *params, step, self._loss)
            else:
                grads = kernels.two_layer_numerical_gradient(x, t, *params, step, code, self._loss)
        for name, g in zip(PARAM_NAMES, grads):
            if not np.isfinite(g).all():
                raise ValueError(f"the numerical gradient of {name} at h={h:g} ({method}) is not finite; "
                                 f"try a step closer to the default {step_for(method, None):g}")
        return dict(zip(PARAM_NAMES, grads))
