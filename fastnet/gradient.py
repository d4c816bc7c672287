"""Numerical gradient of any scalar function: compiled for @njit functions, in Python otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba.core import errors as numba_errors
from numba.extending import is_jitted

import kernels
from fastnet._typing import NDArray
from fastnet.methods import method_code, step_for
from fastnet.threads import num_threads


def _check_x(x: object) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array of floats, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"x must be a float array (float32 or float64), got dtype {x.dtype}: "
                        "perturbing integers by h would round the step away")
    if x.size == 0:
        raise ValueError("x is empty: there is nothing to differentiate")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf")


def numerical_gradient(f: Callable[..., Any], x: NDArray[Any], h: float | None = None, method: str = "central", *,
                       args: tuple[Any, ...] = (), threads: int | None = None) -> NDArray[Any]:
    """Gradient of the scalar ``f(x, *args)`` at x by perturbing each entry: an array shaped like x.

    The book's `numerical_gradient(f, x)`, extended. method "central" (default), "forward",
    "backward" (finite differences at step h, default 1e-4) or "complex" (Im f(x + i h e_p) / h,
    default h = 1e-20; f must accept complex input and be analytic in x).

    * An @njit f runs in fastnet's compiled loop, parallel over entries on per-thread copies of x,
      so x is never written (read-only and non-contiguous x are fine).
    * Any other callable is evaluated in a Python loop that perturbs x in place, as the book does
      (so f may ignore its argument and read x through a closure), and restores every entry bit
      for bit, also when f raises. x must then be writable. For method="complex" f receives a
      complex copy of x and must compute from its argument.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returning a real scalar; an ``@numba.njit`` function runs compiled.
    x : ndarray of float
        The point, any shape, finite; float32 or float64 for an ``@njit`` f.
    h : float, optional
        Step, finite and > 0; default 1e-4, or 1e-20 for ``method="complex"``.
    method : {"central", "forward", "backward", "complex"}
        The difference formula.
    args : tuple, default ()
        Extra arguments passed to f after x.
    threads : int, optional
        numba threads for the compiled loop (the previous count is restored afterwards).

    Returns
    -------
    ndarray
        The gradient, shaped like x, in x's dtype.

    Raises
    ------
    TypeError
        f not callable, x not a float array, args not a tuple, or an @njit f that numba cannot
        compile for x.
    ValueError
        x empty or not finite, an unknown method, a bad step, a read-only x with a Python f.
    RuntimeError
        An @njit f raised inside the parallel loop but not when repeated on one thread.

    Examples
    --------
    >>> import numpy as np
    >>> def f(w):
    ...     return float(np.sum(w ** 2))
    >>> numerical_gradient(f, np.array([1.0, -2.0, 0.5])).round(6)
    array([ 2., -4.,  1.])
    """
    code = method_code(method)
    h = step_for(method, h)
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple, got {type(args).__name__}")
    _check_x(x)
    if is_jitted(f):
        if x.ndim == 0:
            # One entry: nothing to parallelise, and the compiled loop needs an axis to iterate.
            # An @njit f reads its argument, so a private copy keeps x unwritten as promised.
            return _python(f, np.array(x, copy=True), h, code, args)
        return _compiled(f, x, h, code, method, args, threads)
    return _python(f, x, h, code, args)


def _compiled(f: Callable[..., Any], x: NDArray[Any], h: float, code: int, method: str, args: tuple[Any, ...],
              threads: int | None) -> NDArray[Any]:
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"an @njit f needs x of dtype float32 or float64, got {x.dtype}")
    # A private writable copy: the kernels never write x, and a read-only x would cost numba a
    # separate compilation.
    xc = np.array(x, order="C", copy=True)
    if code == kernels.COMPLEX:
        xc = xc.astype(np.complex64 if x.dtype == np.float32 else np.complex128)
    out = np.empty(x.shape, dtype=x.dtype)
    failed = np.zeros(x.size, dtype=np.uint8)
    step = x.dtype.type(h)

    def run(serial: bool) -> None:
        if code == kernels.COMPLEX:
            loop = kernels.complex_step_loop_serial if serial else kernels.complex_step_loop
            loop(f, xc, step, args, out, failed)
        else:
            loop = kernels.numerical_gradient_loop_serial if serial else kernels.numerical_gradient_loop
            loop(f, xc, step, code, args, out, failed)

    try:
        with num_threads(threads) as n_threads:
            # One thread: the serial loop, through which f's exceptions propagate unchanged.
            run(serial=n_threads == 1)
        if failed.any():
            # f raised inside the parallel loop, where numba cannot pass the exception on: run the
            # serial loop, which raises it (f's own type and message) if f raises again.
            run(serial=True)
            raise RuntimeError(f"f raised inside the parallel loop at entry "
                               f"{int(np.flatnonzero(failed)[0])} of x, but not when the loop was "
                               "repeated on one thread (does f keep state between calls?)")
    except numba_errors.TypingError as exc:
        if code == kernels.COMPLEX:
            what = f"a complex array x (method={method!r} needs f to accept complex input)"
        else:
            what = f"a {x.dtype} array x"
        raise TypeError(f"f could not be compiled for {what}, or does not return a scalar "
                        "(numba's typing error above)") from exc
    return out


def _python(f: Callable[..., Any], x: NDArray[Any], h: float, code: int, args: tuple[Any, ...]) -> NDArray[Any]:
    if not x.flags.writeable:
        raise ValueError("x is read-only: a Python f is evaluated with x perturbed in place; "
                         "pass a writable array (or an @njit f, which works on copies)")
    grad = np.zeros(x.shape, dtype=x.dtype)
    if code == kernels.COMPLEX:
        xc = x.astype(np.result_type(x.dtype, np.complex64))
        for idx in np.ndindex(x.shape):
            old = xc[idx]
            xc[idx] = old + 1j * h
            try:
                grad[idx] = np.imag(f(xc, *args)) / h
            finally:
                xc[idx] = old
        return grad
    step = x.dtype.type(h)
    for idx in np.ndindex(x.shape):
        old = x[idx]  # a scalar copy of the exact bits
        try:
            x[idx] = old + step
            fp = f(x, *args)
            x[idx] = old - step
            fm = f(x, *args)
        finally:
            x[idx] = old
        if code == kernels.CENTRAL:
            grad[idx] = (fp - fm) / (2 * h)
        elif code == kernels.FORWARD:
            grad[idx] = (fp - f(x, *args)) / h
        else:
            grad[idx] = (f(x, *args) - fm) / h
    return grad
