"""The derivative of a function of one variable (the book's numerical_diff), at one or many points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from numba.core import errors as numba_errors
from numba.extending import is_jitted

import kernels.numdiff as nd
from fastnet.differences import _single_step
from fastnet.methods import method_code
from fastnet.perturb import check_x
from fastnet.steps import COMPLEX_STEP, default_scale, resolve_steps


_DROPS_IMAG = ("method='complex' needs f to compute in complex arithmetic and return complex "
               "values; f returned real ones for complex points (it drops the imaginary part, so "
               "the complex step would give 0)")


class _Pointwise:
    """values(entries, points)[q, k, 0] = f(points[q, k]) for an elementwise f."""

    def __init__(self, f: Callable[..., Any], x: npt.NDArray[Any], scalar: bool) -> None:
        self.f = f
        self.scalar = scalar
        self.jitted = bool(is_jitted(f))
        self.evaluations = 0
        self.f0 = self._apply(x.reshape(-1))
        if not np.isfinite(self.f0).all():
            q = int(np.flatnonzero(~np.isfinite(self.f0))[0])
            raise ValueError(f"f(x) is not finite at entry "
                             f"{tuple(int(i) for i in np.unravel_index(q, x.shape))} of x")

    def _apply(self, pts: npt.NDArray[Any]) -> npt.NDArray[Any]:
        complex_ = pts.dtype.kind == "c"
        flat = np.ascontiguousarray(pts.reshape(-1))
        self.evaluations += flat.size
        if self.jitted:
            if complex_ and np.asarray(self.f(flat[0])).dtype.kind != "c":
                raise TypeError(_DROPS_IMAG)
            out = np.empty(flat.size, dtype=np.complex128 if complex_ else np.float64)
            try:
                nd.scalar_map(self.f, flat, out)
            except numba_errors.TypingError as exc:
                kind = "complex" if complex_ else str(flat.dtype)
                raise TypeError(f"f could not be compiled for a {kind} scalar, or does not return "
                                "a scalar (numba's typing error above)") from exc
            return out.reshape(pts.shape)
        if self.scalar:
            raw = np.array([self.f(v.item()) for v in flat])
        else:
            raw = np.asarray(self.f(pts))
        if raw.shape != (pts.shape if not self.scalar else flat.shape):
            raise TypeError(f"f must be elementwise: it returned shape {raw.shape} for points of "
                            f"shape {pts.shape}")
        if raw.dtype.kind not in "biufc" or (raw.dtype.kind == "c" and not complex_):
            raise TypeError(f"f must return real numbers, got dtype {raw.dtype}")
        if complex_ and raw.dtype.kind != "c":
            raise TypeError(_DROPS_IMAG)
        return raw.astype(np.complex128 if complex_ else np.float64).reshape(pts.shape)

    def values(self, entries: npt.NDArray[np.int64], points: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return self._apply(points)[:, :, None]

    def f0_at(self, entries: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        return self.f0[entries][:, None]


def numerical_diff(f: Callable[..., Any], x: Any, h: Any = 1e-4, method: str = "central") -> Any:
    """Derivative of a function of one variable: the book's numerical_diff, at one or many points.

    Parameters
    ----------
    f : callable
        f(v) -> number. For an array x, f is applied elementwise: an @njit f is called on each
        point in a compiled loop; any other f is called once on the whole array of points (NumPy
        ufunc-style functions such as the book's 0.01 x^2 + 0.1 x).
    x : float or ndarray of float32/float64
        The point(s).
    h : float, ndarray or None
        The book's absolute step 1e-4 by default; None for a step scaled to ``|x|`` and the dtype,
        an array for one step per point. The same rules as `fastnet.numerical_gradient`: the
        difference is divided by the step actually taken, a step lost to rounding is an error,
        non-finite sides retreat with a DifferenceWarning.
    method : {"central", "forward", "backward", "complex"}

    Returns
    -------
    float or ndarray
        A float for a scalar x; otherwise one derivative per point, shaped like x.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, named; a lost step; no finite difference at a point.

    Examples
    --------
    >>> import fastnet
    >>> f = lambda x: 0.01 * x ** 2 + 0.1 * x
    >>> round(fastnet.numerical_diff(f, 5.0), 9), round(fastnet.numerical_diff(f, 10.0), 9)
    (0.2, 0.3)
    """
    method_code(method)
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    scalar = not isinstance(x, np.ndarray)
    if scalar:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise TypeError(f"x must be a real number or a float32/float64 array, got {type(x).__name__}")
        arr = np.array([float(x)])
    else:
        arr = check_x(x)
    if method == "complex":
        steps, _ = resolve_steps(h, arr, None, COMPLEX_STEP)
    else:
        order = "central" if method == "central" else "one-sided"
        steps, _ = resolve_steps(h, arr, default_scale(order, arr.dtype))
    ev = _Pointwise(f, arr, scalar and not is_jitted(f))
    flat = np.array(arr, dtype=arr.dtype).reshape(-1)
    d, _, _ = _single_step(ev, flat, steps, method, arr.shape)
    if scalar:
        return float(d[0, 0])
    with np.errstate(over="ignore"):
        out = d[:, 0].astype(arr.dtype).reshape(arr.shape)
    if not np.isfinite(out).all():
        raise ValueError(f"a derivative overflows {arr.dtype}")
    return out
