"""Check a user's analytic gradient or Jacobian against fastnet's numerical one, at rtol/atol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fastnet.validation import positive_float


class GradientCheckError(AssertionError):
    """An analytic derivative disagrees with the numerical one beyond rtol/atol.

    An AssertionError, so that a failed check with ``raise_on_failure=True`` fails a test the
    way an ``assert`` does; its message is the check's table of the worst entries.

    Parameters
    ----------
    *args : object
        The message, as for any exception.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> f = lambda v: float(np.sum(v ** 3))
    >>> try:
    ...     fastnet.check_gradient(f, lambda v: 3 * v, np.array([1.0, 2.0]), raise_on_failure=True)
    ... except GradientCheckError as exc:
    ...     print(str(exc).splitlines()[0])  # doctest: +ELLIPSIS
    derivative check FAILED at rtol=1e-06, atol=1e-08: 1 of 2 entries beyond tolerance; ...
    """

    # AssertionError's own constructor, spelled out: Python can state the signature of a class
    # that defines __init__, and documentation tools ask for it.
    def __init__(self, *args: object) -> None:
        super().__init__(*args)


@dataclass(frozen=True)
class DerivativeCheck:
    """Analytic against numerical derivative, entry by entry: ``|a - n| <= atol + rtol |n|``.

    Attributes
    ----------
    passed : bool
        Every entry within tolerance.
    rtol, atol : float
        The tolerances.
    max_abs, max_rel : float
        Largest ``|a - n|`` and ``|a - n| / max(|n|, tiny)``.
    worst : tuple of (index, analytic, numerical, abs error)
        Up to 5 entries furthest beyond tolerance (or closest to it when all pass).
    failures : int
        Number of entries beyond tolerance.
    analytic, numerical, error_estimate : ndarray
        The two derivatives, and the numerical one's error estimate (Richardson).

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> check = fastnet.check_gradient(lambda v: float(np.sum(v ** 3)), lambda v: 3 * v ** 2,
    ...                                np.array([1.0, 2.0]))
    >>> bool(check), check.failures, check.max_rel < 1e-10
    (True, 0, True)
    >>> print(check)  # doctest: +ELLIPSIS
    derivative check passed at rtol=1e-06, atol=1e-08: 0 of 2 entries beyond tolerance; ...
    entry                  analytic      numerical       |a-n|
    (0,)                          3              3   ...
    (1,)                         12             12   ...
    """

    passed: bool
    rtol: float
    atol: float
    max_abs: float
    max_rel: float
    worst: tuple[tuple[tuple[int, ...], float, float, float], ...]
    failures: int
    analytic: npt.NDArray[Any]
    numerical: npt.NDArray[Any]
    error_estimate: npt.NDArray[np.float64] | None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = (f"derivative check {'passed' if self.passed else 'FAILED'} at rtol={self.rtol:g}, "
                f"atol={self.atol:g}: {self.failures} of {self.analytic.size} entries beyond "
                f"tolerance; max |a-n| = {self.max_abs:.3e}, max rel = {self.max_rel:.3e}")
        lines = [head, f"{'entry':<16} {'analytic':>14} {'numerical':>14} {'|a-n|':>11}"]
        for idx, a, n, e in self.worst:
            lines.append(f"{idx!s:<16} {a:14.7g} {n:14.7g} {e:11.3e}")
        return "\n".join(lines)


def compare(analytic: Any, numerical: npt.NDArray[Any], rtol: Any, atol: Any,
            error_estimate: npt.NDArray[np.float64] | None = None, worst: int = 5) -> DerivativeCheck:
    """Compare an analytic derivative with a numerical one (shapes must agree).

    An entry passes when ``|a - n| <= atol + rtol |n|``: relative to the numerical value, which
    carries the error estimate, with atol for entries near 0.

    Parameters
    ----------
    analytic : array_like of real numbers
        The derivative to check; it must be finite.
    numerical : ndarray
        The numerical derivative, of the same shape.
    rtol : float
        Relative tolerance, > 0.
    atol : float
        Absolute tolerance, >= 0.
    error_estimate : ndarray, optional
        The numerical derivative's error estimate, kept on the result.
    worst : int, default 5
        How many of the entries furthest beyond tolerance the result lists.

    Returns
    -------
    DerivativeCheck
        The verdict, the largest errors and the worst entries.

    Raises
    ------
    TypeError
        analytic is not real numbers.
    ValueError
        Bad rtol or atol, shapes that differ, or a non-finite analytic entry (named).

    Examples
    --------
    >>> import numpy as np
    >>> check = compare(np.array([2.0, 4.1]), np.array([2.0, 4.0]), rtol=1e-6, atol=1e-8)
    >>> check.passed, check.failures, check.worst[0]
    (False, 1, ((1,), 4.1, 4.0, 0.09999999999999964))
    """
    rtol = positive_float(rtol, "rtol")
    atol = float(atol) if isinstance(atol, (int, float)) and not isinstance(atol, bool) else atol
    if not isinstance(atol, float) or not np.isfinite(atol) or atol < 0:
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    a = np.asarray(analytic)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"the analytic derivative must be real numbers, got dtype {a.dtype}")
    if a.shape != numerical.shape:
        raise ValueError(f"the analytic derivative has shape {a.shape}, the numerical one "
                         f"{numerical.shape}")
    a64 = a.astype(np.float64)
    n64 = numerical.astype(np.float64)
    if not np.isfinite(a64).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a64))[0])
        raise ValueError(f"the analytic derivative is not finite at entry {where}")
    diff = np.abs(a64 - n64)
    allowed = atol + rtol * np.abs(n64)
    excess = (diff - allowed).reshape(-1)
    order = np.argsort(-excess, kind="stable")[:worst]
    rows = tuple((tuple(int(i) for i in np.unravel_index(int(q), a.shape)), float(a64.flat[q]),
                  float(n64.flat[q]), float(diff.flat[q])) for q in order)
    rel = diff / np.maximum(np.abs(n64), np.finfo(np.float64).tiny)
    failures = int((excess > 0).sum())
    return DerivativeCheck(failures == 0, rtol, atol, float(diff.max()), float(rel.max()), rows,
                           failures, a, numerical, error_estimate)


def _check(kind: str, f: Callable[..., Any], analytic: Callable[..., Any], x: npt.NDArray[Any],
           rtol: float, atol: float, method: str, richardson: bool, args: tuple[Any, ...],
           threads: int | None, raise_on_failure: bool) -> DerivativeCheck:
    from fastnet.gradient import gradient
    from fastnet.jacobian import jacobian

    if not callable(analytic):
        raise TypeError(f"the analytic {kind} must be callable, got {type(analytic).__name__}")
    if not isinstance(raise_on_failure, bool):
        raise TypeError(f"raise_on_failure must be True or False, got {raise_on_failure!r}")
    positive_float(rtol, "rtol")
    run = gradient if kind == "gradient" else jacobian
    num = run(f, x, method=method, richardson=richardson, args=args, threads=threads)
    result = compare(analytic(x, *args), num.value, rtol, atol, num.error)
    if raise_on_failure and not result.passed:
        raise GradientCheckError(str(result))
    return result


def check_gradient(f: Callable[..., Any], grad: Callable[..., Any], x: npt.NDArray[Any], *,
                   rtol: float = 1e-6, atol: float = 1e-8, method: str = "central",
                   richardson: bool = True, args: tuple[Any, ...] = (), threads: int | None = None,
                   raise_on_failure: bool = False) -> DerivativeCheck:
    """Check ``grad(x, *args)`` against the numerical gradient of ``f(x, *args)``.

    Parameters
    ----------
    f : callable
        The scalar function (see `fastnet.gradient`).
    grad : callable
        Its analytic gradient: ``grad(x, *args)`` -> array shaped like x.
    x : ndarray of float32 or float64
        The point.
    rtol, atol : float
        An entry passes when ``|analytic - numerical| <= atol + rtol |numerical|``.
    method, richardson, args, threads
        As for `fastnet.gradient` (Richardson by default: its error is far below rtol).
    raise_on_failure : bool
        Raise GradientCheckError (an AssertionError, for tests) when the check fails.

    Returns
    -------
    DerivativeCheck
        passed, the worst entries and their errors; str() prints them.

    Raises
    ------
    GradientCheckError
        With raise_on_failure=True, when an entry is beyond tolerance.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> f = lambda v: float(np.sum(v ** 3))
    >>> fastnet.check_gradient(f, lambda v: 3 * v ** 2, np.array([1.0, 2.0])).passed
    True
    >>> fastnet.check_gradient(f, lambda v: 3 * v, np.array([1.0, 2.0])).passed
    False
    """
    return _check("gradient", f, grad, x, rtol, atol, method, richardson, args, threads,
                  raise_on_failure)


def check_jacobian(f: Callable[..., Any], jac: Callable[..., Any], x: npt.NDArray[Any], *,
                   rtol: float = 1e-6, atol: float = 1e-8, method: str = "central",
                   richardson: bool = True, args: tuple[Any, ...] = (), threads: int | None = None,
                   raise_on_failure: bool = False) -> DerivativeCheck:
    """Check ``jac(x, *args)`` (shape f(x).shape + x.shape) against the numerical Jacobian of f.

    Parameters
    ----------
    f : callable
        The array-valued function (see `fastnet.jacobian`).
    jac : callable
        Its analytic Jacobian: ``jac(x, *args)`` -> array of shape f(x).shape + x.shape.
    x : ndarray of float32 or float64
        The point.
    rtol, atol : float
        An entry passes when ``|analytic - numerical| <= atol + rtol |numerical|``.
    method, richardson, args, threads
        As for `fastnet.jacobian` (Richardson by default: its error is far below rtol).
    raise_on_failure : bool
        Raise GradientCheckError (an AssertionError, for tests) when the check fails.

    Returns
    -------
    DerivativeCheck
        passed, the worst entries and their errors; str() prints them.

    Raises
    ------
    GradientCheckError
        With raise_on_failure=True, when an entry is beyond tolerance.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> f = lambda v: np.array([v[0] * v[1], v[1] ** 2])
    >>> jac = lambda v: np.array([[v[1], v[0]], [0.0, 2 * v[1]]])
    >>> fastnet.check_jacobian(f, jac, np.array([2.0, 3.0])).passed
    True
    """
    return _check("Jacobian", f, jac, x, rtol, atol, method, richardson, args, threads,
                  raise_on_failure)
