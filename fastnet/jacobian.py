"""Numerical Jacobian of a vector-valued function: compiled for @njit functions, in Python otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from fastnet.differences import Derivative, _richardson, _single_step
from fastnet.gradient import _prepare
from fastnet.perturb import _Evaluator


def jacobian(f: Callable[..., Any], x: npt.NDArray[Any], h: Any = None, method: str = "central", *,
             richardson: bool = False, num_steps: int | None = None, args: tuple[Any, ...] = (),
             threads: int | None = None) -> Derivative:
    """Jacobian J[i..., j...] = d f(x)[i...] / d x[j...] of an array-valued ``f(x, *args)``.

    Steps, methods, Richardson extrapolation, threads and the guarantees about x are those of
    `fastnet.gradient`; f must return an array whose shape does not depend on x.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` -> array of shape S (an @njit f runs compiled and in parallel).
    x : ndarray of float32 or float64
        The point, any shape.
    h, method, richardson, num_steps, args, threads
        As for `fastnet.gradient`.

    Returns
    -------
    Derivative
        value of shape S + x.shape in x's dtype; error (Richardson only) and step of that shape.

    Raises
    ------
    TypeError, ValueError
        As for `fastnet.gradient`; TypeError also when f returns a scalar.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> J = fastnet.jacobian(lambda v: np.array([v[0] * v[1], v[1] ** 2]), np.array([2.0, 3.0]))
    >>> np.allclose(J.value, [[3.0, 2.0], [0.0, 6.0]])
    True
    """
    steps, _, n_steps = _prepare(f, x, h, method, args, threads, richardson, num_steps)
    ev = _Evaluator(f, x, args, threads, complex_=method == "complex", vector=True)
    assert ev.out_shape is not None
    flat = np.array(x, dtype=x.dtype).reshape(-1)
    shape = ev.out_shape + x.shape

    def arrange(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.ascontiguousarray(a.T).reshape(shape)

    if richardson:
        value, error, step, retreated = _richardson(ev, flat, steps, method, n_steps, x.shape)
        out = _finite(arrange(value), x.dtype)
        return Derivative(out, arrange(error), arrange(step), ev.evaluations, retreated, method)
    d, taken, retreated = _single_step(ev, flat, steps, method, x.shape)
    step = np.broadcast_to(np.abs(taken)[:, None], d.shape)
    return Derivative(_finite(arrange(d), x.dtype), None, arrange(step), ev.evaluations,
                      retreated, method)


def _finite(v: npt.NDArray[np.float64], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    with np.errstate(over="ignore"):
        out = v.astype(dtype)
    if not np.isfinite(out).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise ValueError(f"the Jacobian entry {where} is not finite in {dtype} ({v[where]:g})")
    return out
