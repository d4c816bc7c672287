"""Evaluate f with one entry of x replaced: compiled and parallel for @njit f, a Python loop otherwise.

Both backends answer the same question, values[q, k, :] = f(x with flat entry entries[q] set to
points[q, k]), so the differences, the steps actually taken and the extrapolation are formed in
one place whatever f is. The Python backend perturbs x in place, as the book does (f may read x
through a closure), and restores every entry bit for bit, also when f raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from numba.core import errors as numba_errors
from numba.extending import is_jitted

import kernels.numdiff as nd
from fastnet.threads import check_threads, num_threads

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_x(x: Any, name: str = "x") -> npt.NDArray[np.floating[Any]]:
    """x itself if it is a non-empty, finite float32/float64 ndarray; TypeError/ValueError naming it.

    Only float32 and float64 are differentiated: in an integer or float16 array a small step
    rounds away or the difference of f's values loses its digits.

    Parameters
    ----------
    x : object
        The point to check.
    name : str, default "x"
        The argument's name, for the error message.

    Returns
    -------
    ndarray of float32 or float64
        x itself, neither copied nor converted.

    Raises
    ------
    TypeError
        x is not a numpy array, or not of dtype float32 or float64.
    ValueError
        x is empty or contains NaN or inf (the first such index is named).

    Examples
    --------
    >>> import numpy as np
    >>> check_x(np.array([1.0, 2.0]))
    array([1., 2.])
    >>> check_x(np.array([1.0, np.inf]), "w")
    Traceback (most recent call last):
    ...
    ValueError: w contains NaN or inf (first at index (1,))
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of float32 or float64, got {type(x).__name__}")
    if x.dtype not in FLOATS:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {x.dtype}: other "
                        "dtypes would round the step away or lose the difference")
    if x.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to differentiate")
    if not np.isfinite(x).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"{name} contains NaN or inf (first at index {bad})")
    return x


def _check_common(f: Any, args: Any, threads: Any) -> None:
    """f callable, args a tuple, threads None or a valid thread count: checked on every path."""
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple, got {type(args).__name__}")
    if threads is not None:
        check_threads(threads)


def _as_values(v: Any, complex_: bool, shape: tuple[int, ...] | None) -> npt.NDArray[Any]:
    """f's value as a flat float64 (complex128) array; TypeError naming f if it is not numeric.

    shape None: f must return a scalar; otherwise f must return that shape (a Jacobian's output).
    """
    try:
        arr = np.asarray(v)
    except Exception as exc:
        raise TypeError(f"f must return numbers, got {type(v).__name__}: {exc}") from exc
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"f must return numbers, got {type(v).__name__} of dtype {arr.dtype}")
    if shape is None and arr.ndim != 0 and arr.size != 1:
        raise TypeError(f"f must return a scalar, got an array of shape {arr.shape} "
                        "(for a vector-valued f use fastnet.jacobian)")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"f returned shape {arr.shape} here but {shape} at x: its output "
                         "shape must not depend on x")
    if arr.dtype.kind == "c" and not complex_:
        raise TypeError("f returned a complex value for a real x")
    return np.asarray(arr, dtype=np.complex128 if complex_ else np.float64).reshape(-1)


class _Evaluator:
    """f at x with one entry replaced, for a fixed x, args and output shape."""

    def __init__(self, f: Callable[..., Any], x: npt.NDArray[Any], args: tuple[Any, ...],
                 threads: int | None, *, complex_: bool = False, vector: bool = False,
                 compiled: bool | None = None) -> None:
        self.f = f
        self.args = args
        self.threads = threads
        self.complex_ = complex_
        self.vector = vector
        self.x = x
        self.dtype = x.dtype
        self.compiled = (is_jitted(f) and x.ndim > 0) if compiled is None else compiled
        self.evaluations = 0
        cdt = np.complex64 if x.dtype == np.float32 else np.complex128
        if self.compiled:
            # A private copy: the kernels never write x, and a read-only x would cost a compile.
            self.work = np.array(x, order="C", copy=True)
            if complex_:
                self.work = self.work.astype(cdt)
        elif complex_:
            # f receives a complex copy of x: it must compute from its argument.
            self.work = x.astype(cdt)
        elif is_jitted(f):
            # A 0-d x with an @njit f (one entry: nothing to parallelise). An @njit f reads its
            # argument, so a private copy keeps x unwritten, as on the compiled path.
            self.work = np.array(x, copy=True)
        else:
            if not x.flags.writeable:
                raise ValueError("x is read-only: a Python f is evaluated with x perturbed in "
                                 "place; pass a writable array (or an @njit f, which works on "
                                 "copies)")
            self.work = x
        self.out_shape: tuple[int, ...] | None = None
        self.f0 = self._at_x()

    def _call(self, v: npt.NDArray[Any]) -> Any:
        return self.f(v, *self.args)

    def _at_x(self) -> npt.NDArray[Any]:
        """f at x (once: one-sided differences need it, and its shape sets a Jacobian's)."""
        try:
            raw = self._call(self.work)
        except numba_errors.TypingError as exc:
            raise self._typing_error() from exc
        self.evaluations += 1
        if self.vector:
            shape = np.shape(raw)
            if len(shape) == 0:
                raise TypeError("f must return an array for a Jacobian, got a scalar "
                                "(use fastnet.numerical_gradient for a scalar f)")
            self.out_shape = tuple(int(s) for s in shape)
        if self.complex_ and np.asarray(raw).dtype.kind != "c":
            # A real value at x + 0i means f dropped the imaginary part (np.real, abs, float()):
            # every derivative would come out 0.
            raise TypeError(f"method='complex' needs f to compute in complex arithmetic and "
                            f"return a complex value; f returned {type(raw).__name__} for a "
                            "complex x (it drops the imaginary part, so the complex step would "
                            "give 0)")
        f0 = _as_values(raw, self.complex_, self.out_shape)
        if not np.isfinite(f0).all():
            raise ValueError("f(x) is not finite: there is no derivative to estimate at x")
        return f0

    def _typing_error(self) -> TypeError:
        what = ("a complex array x (the complex step needs f to accept complex input)"
                if self.complex_ else f"a {self.dtype} array x")
        ret = "an array" if self.vector else "a scalar"
        return TypeError(f"f could not be compiled for {what}, or does not return {ret} "
                         "(numba's typing error above)")

    def values_at_work(self) -> Any:
        """f at the working array as it is now (the Python backend's Hessian loop perturbs it)."""
        return _as_values(self._call(self.work), self.complex_, self.out_shape)[0]

    def f0_at(self, entries: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """f(x) for each of these entries: the same value, broadcast to (m, outputs)."""
        return np.broadcast_to(self.f0[None, :], (entries.size, self.f0.size))

    @property
    def size(self) -> int:
        return int(self.f0.size)

    def values(self, entries: npt.NDArray[np.int64], points: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """values[q, k, :] = f(x with flat entry entries[q] set to points[q, k])."""
        entries = np.ascontiguousarray(entries, dtype=np.int64)
        points = np.ascontiguousarray(points, dtype=self.work.dtype)
        m, k = points.shape
        out = np.zeros((m, k, self.size), dtype=np.complex128 if self.complex_ else np.float64)
        if m == 0:
            return out
        if self.compiled:
            self._compiled(entries, points, out)
        else:
            self._python(entries, points, out)
        self.evaluations += m * k
        return out

    def _python(self, entries: npt.NDArray[np.int64], points: npt.NDArray[Any],
                out: npt.NDArray[Any]) -> None:
        w = self.work
        for q, p in enumerate(entries):
            idx = np.unravel_index(int(p), w.shape)
            old = w[idx]  # a scalar copy of the exact bits
            try:
                for k in range(points.shape[1]):
                    w[idx] = points[q, k]
                    out[q, k] = _as_values(self._call(w), self.complex_, self.out_shape)
            finally:
                w[idx] = old

    def _compiled(self, entries: npt.NDArray[np.int64], points: npt.NDArray[Any],
                  out: npt.NDArray[Any]) -> None:
        failed = np.zeros(entries.size, dtype=np.uint8)
        if self.vector:
            par, ser, dest = nd.vector_values_loop, nd.vector_values_loop_serial, out
        else:
            par, ser, dest = nd.values_loop, nd.values_loop_serial, out[:, :, 0]
        try:
            with num_threads(self.threads) as n_threads:
                if n_threads == 1:
                    # The serial loop, through which f's exceptions propagate unchanged.
                    ser(self.f, self.work, entries, points, self.args, dest, failed)
                else:
                    par(self.f, self.work, entries, points, self.args, dest, failed)
        except numba_errors.TypingError as exc:
            raise self._typing_error() from exc
        if failed.any():
            bad = np.flatnonzero(failed)
            # f raised inside the parallel loop, where numba cannot pass the exception on: the
            # serial loop over those entries raises it (f's own type and message) if f does again.
            ser(self.f, self.work, entries[bad], points[bad], self.args,
                np.zeros_like(dest[bad]), np.zeros(bad.size, dtype=np.uint8))
            where = np.unravel_index(int(entries[bad[0]]), self.x.shape)
            raise RuntimeError(f"f raised inside the parallel loop at entry "
                               f"{tuple(int(i) for i in where)} of x, but not when that entry "
                               "was repeated on one thread (does f keep state between calls?)")

