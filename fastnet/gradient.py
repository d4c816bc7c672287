"""Numerical gradient of any scalar function: compiled for @njit functions, in Python otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from fastnet.differences import Derivative, _richardson, _single_step
from fastnet.methods import method_code
from fastnet.perturb import _Evaluator, _check_common, check_x
from fastnet.steps import (
    COMPLEX_STEP,
    RICHARDSON_BASE,
    RICHARDSON_STEPS,
    default_scale,
    resolve_steps,
)
from fastnet.validation import positive_int


def _prepare(f: Any, x: Any, h: Any, method: Any, args: Any, threads: Any, richardson: Any,
            num_steps: Any, kind: str = "gradient"
            ) -> tuple[npt.NDArray[np.float64], bool, int]:
    """Check every argument before f runs; (steps, is_default, number of steps)."""
    method_code(method)
    _check_common(f, args, threads)
    if not isinstance(richardson, bool):
        raise TypeError(f"richardson must be True or False, got {richardson!r}")
    check_x(x)
    if richardson:
        n_steps = RICHARDSON_STEPS[kind] if num_steps is None else positive_int(num_steps, "num_steps")
        if n_steps < 2:
            raise ValueError(f"num_steps must be >= 2 for Richardson extrapolation, got {n_steps}")
        steps, is_default = resolve_steps(h, x, RICHARDSON_BASE[kind])
        return steps, is_default, n_steps
    if num_steps is not None:
        raise ValueError("num_steps applies only with richardson=True")
    if method == "complex":
        steps, is_default = resolve_steps(h, x, None, COMPLEX_STEP)
    else:
        order = "central" if method == "central" else "one-sided"
        steps, is_default = resolve_steps(h, x, default_scale(order, x.dtype))
    return steps, is_default, 1


def gradient(f: Callable[..., Any], x: npt.NDArray[Any], h: Any = None, method: str = "central", *,
             richardson: bool = False, num_steps: int | None = None, args: tuple[Any, ...] = (),
             threads: int | None = None) -> Derivative:
    """Gradient of the scalar ``f(x, *args)`` at x, with the steps taken and optional error estimates.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` -> scalar. An @njit f runs in fastnet's compiled loop, parallel over entries
        on per-thread copies of x (x is never written; results do not depend on the thread
        count). Any other callable is evaluated in a Python loop that perturbs x in place, as the
        book does, and restores every entry bit for bit, also when f raises.
    x : ndarray of float32 or float64
        The point, any shape and layout (writable for a Python f).
    h : float, ndarray or None
        None: a step per entry scaled to ``|x_i|`` and the dtype (see `fastnet.steps`); a float: one
        absolute step for every entry (the book's meaning); an array shaped like x: one absolute
        step per entry. With richardson=True, the largest step of the sequence (default
        0.5 * ``max(1, |x_i|)``).
    method : {"central", "forward", "backward", "complex"}
        One-sided differences evaluate f(x) once: n + 1 evaluations in all. "complex" needs an f
        that accepts complex input and is analytic in x.
    richardson : bool
        Extrapolate differences at num_steps halving steps (default 8) to h -> 0, with an error
        estimate per entry.
    num_steps : int, optional
        Number of steps of the Richardson sequence.
    args : tuple
        Extra arguments of f.
    threads : int, optional
        numba threads for an @njit f (restored afterwards).

    Returns
    -------
    Derivative
        value (shaped like x, x's dtype), error (Richardson only), step, evaluations, retreated.

    Raises
    ------
    TypeError
        x not a float32/float64 array, f not callable or not returning a scalar, bad method/args.
    ValueError
        Bad h (including a step lost to rounding: x + h == x, named by entry), x not finite,
        f(x) not finite, or no finite difference at some entry.

    Warns
    -----
    DifferenceWarning
        Where f(x +- h) was not finite and a smaller or one-sided step was used.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> r = fastnet.gradient(lambda v: float(np.sum(v ** 3)), np.array([1.0, 2.0]), richardson=True)
    >>> np.allclose(r.value, [3.0, 12.0], rtol=1e-12), bool((r.error < 1e-8).all())
    (True, True)
    """
    steps, _, n_steps = _prepare(f, x, h, method, args, threads, richardson, num_steps)
    ev = _Evaluator(f, x, args, threads, complex_=method == "complex")
    flat = np.array(x, dtype=x.dtype).reshape(-1)
    if richardson:
        value, error, step, retreated = _richardson(ev, flat, steps, method, n_steps, x.shape)
        return Derivative(_cast(value[:, 0], x), error[:, 0].reshape(x.shape),
                          step[:, 0].reshape(x.shape), ev.evaluations, retreated, method)
    d, taken, retreated = _single_step(ev, flat, steps, method, x.shape)
    return Derivative(_cast(d[:, 0], x), None, np.abs(taken).reshape(x.shape), ev.evaluations,
                      retreated, method)


def _cast(v: npt.NDArray[np.float64], x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    with np.errstate(over="ignore"):
        out = v.astype(x.dtype).reshape(x.shape)
    if not np.isfinite(out).all():
        q = int(np.flatnonzero(~np.isfinite(out.reshape(-1)))[0])
        where = tuple(int(i) for i in np.unravel_index(q, x.shape))
        raise ValueError(f"the derivative at entry {where} of x ({v.reshape(-1)[q]:g}) overflows "
                         f"{x.dtype}")
    return out


def numerical_gradient(f: Callable[..., Any], x: npt.NDArray[Any], h: Any = None,
                       method: str = "central", *, args: tuple[Any, ...] = (),
                       threads: int | None = None) -> npt.NDArray[Any]:
    """Gradient of the scalar ``f(x, *args)`` at x by perturbing each entry: an array shaped like x.

    The book's `numerical_gradient(f, x)`, extended; `fastnet.gradient` returns the same values
    with the steps taken, the number of evaluations and optional Richardson extrapolation.
    method "central" (default), "forward", "backward" or "complex" (Im f(x + i h e_p) / h).
    h=None picks a step per entry scaled to ``|x_i|`` and the dtype
    (``eps^(1/3) max(1, |x_i|)`` central, ``eps^(1/2) max(1, |x_i|)`` one-sided, 1e-20 complex); a
    float h is one absolute step (the book's 1e-4 is h=1e-4); an array h gives one step per entry.
    Differences are divided by the step actually taken. See `fastnet.gradient` for the errors
    and warnings.

    * An @njit f runs in fastnet's compiled loop, parallel over entries on per-thread copies of x,
      so x is never written (read-only and non-contiguous x are fine).
    * Any other callable is evaluated in a Python loop that perturbs x in place, as the book does
      (so f may ignore its argument and read x through a closure), and restores every entry bit
      for bit, also when f raises. x must then be writable. For method="complex" f receives a
      complex copy of x and must compute from its argument.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` -> scalar, an @njit function or any Python callable.
    x : ndarray of float32 or float64
        The point, any shape and layout (writable for a Python f).
    h : float, ndarray or None
        None for steps scaled to ``|x_i|`` and the dtype; a float for one absolute step; an array
        shaped like x for one step per entry.
    method : {"central", "forward", "backward", "complex"}
        The difference formula.
    args : tuple
        Extra arguments of f.
    threads : int, optional
        numba threads for an @njit f (restored afterwards).

    Returns
    -------
    ndarray
        The gradient, shaped like x, in x's dtype.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> fastnet.numerical_gradient(lambda v: float(np.sum(v ** 2)), np.array([3.0, 4.0]))
    array([6., 8.])
    """
    return gradient(f, x, h, method, args=args, threads=threads).value
