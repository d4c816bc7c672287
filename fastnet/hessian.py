"""Numerical Hessian of a scalar function: compiled and parallel for @njit functions, Python otherwise.

Second differences at per-entry steps h_i (default eps^(1/4) max(1, |x_i|)), each divided by the
steps actually taken:

    H_ii = 2 ((f(x + a e_i) - f(x)) / a - (f(x) - f(x - b e_i)) / b) / (a + b)   (a, b ~ 2 h_i)
    H_ij = (f(++) - f(+-) - f(-+) + f(--)) / (d_i d_j)                           (d_i ~ 2 h_i)

Only the upper triangle is evaluated and the lower one is its mirror, so H is symmetric by
construction: 2 n^2 + 1 evaluations of f (times the number of steps with Richardson).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from numba.core import errors as numba_errors

import kernels.numdiff as nd
from fastnet.differences import RETREATS, Derivative, _announce, _romberg
from fastnet.perturb import _Evaluator, _check_common, check_x
from fastnet.steps import (
    RICHARDSON_BASE,
    RICHARDSON_STEPS,
    _index,
    _shifted,
    default_scale,
    resolve_steps,
)
from fastnet.threads import num_threads
from fastnet.validation import positive_int


def hessian(f: Callable[..., Any], x: npt.NDArray[Any], h: Any = None, *, richardson: bool = False,
            num_steps: int | None = None, args: tuple[Any, ...] = (),
            threads: int | None = None) -> Derivative:
    """Hessian of the scalar ``f(x, *args)`` at x: shape x.shape + x.shape, symmetric by construction.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` -> scalar. An @njit f runs compiled, parallel over rows on per-thread copies
        of x (identical results for any thread count); any other callable in a Python loop that
        perturbs x in place and restores it bit for bit, also when f raises.
    x : ndarray of float32 or float64
        The point, any shape.
    h : float, ndarray or None
        None: ``eps^(1/4) max(1, |x_i|)`` per entry (Richardson: ``0.5 max(1, |x_i|)``, the
        largest step of the sequence); a float or an array shaped like x: absolute steps.
    richardson : bool
        Extrapolate second differences at num_steps halving steps (default 5), with per-entry
        error estimates.
    num_steps : int, optional
        Number of steps of the Richardson sequence.
    args : tuple
        Extra arguments of f.
    threads : int, optional
        numba threads for an @njit f.

    Returns
    -------
    Derivative
        value (x's dtype), error (Richardson only), step (per row entry), evaluations.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (named), a step lost to rounding, or f not finite at a needed point.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> H = fastnet.hessian(lambda v: float(v[0] ** 2 * v[1]), np.array([1.0, 2.0]))
    >>> np.allclose(H.value, [[4.0, 2.0], [2.0, 0.0]], atol=1e-6)
    True
    """
    _check_common(f, args, threads)
    if not isinstance(richardson, bool):
        raise TypeError(f"richardson must be True or False, got {richardson!r}")
    check_x(x)
    if richardson:
        n_steps = RICHARDSON_STEPS["hessian"] if num_steps is None else positive_int(num_steps, "num_steps")
        if n_steps < 2:
            raise ValueError(f"num_steps must be >= 2 for Richardson extrapolation, got {n_steps}")
        steps, _ = resolve_steps(h, x, RICHARDSON_BASE["hessian"])
    else:
        if num_steps is not None:
            raise ValueError("num_steps applies only with richardson=True")
        n_steps = 1
        steps, _ = resolve_steps(h, x, default_scale("second", x.dtype))
    ev = _Evaluator(f, x, args, threads)
    flat = np.array(x, dtype=x.dtype).reshape(-1)
    eps = float(np.finfo(x.dtype).eps)

    def estimate(steps: npt.NDArray[np.float64]
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        tables, floors = [], []
        for k in range(n_steps):
            s = (steps / 2.0 ** k).astype(x.dtype).astype(np.float64)
            H, scale, d = _second_differences(ev, flat, s, x.shape, lost_ok=k > 0)
            tables.append(H)
            with np.errstate(all="ignore"):
                floors.append(16 * eps * scale / np.outer(d, d))
        if not richardson:
            return tables[0], None
        value, error, _ = _romberg(np.stack(tables), np.stack(floors), "central")
        return value, np.maximum(error, error.T)  # symmetric like the value

    value, error = estimate(steps)
    value, error, steps, retreated = _retreat(estimate, flat, steps, value, error, x.shape)
    with np.errstate(over="ignore"):
        out = value.astype(x.dtype)
    if not np.isfinite(out).all():
        i, j = (int(v) for v in np.argwhere(~np.isfinite(out))[0])
        raise ValueError(f"the Hessian entry ({_index(i, x.shape)}, {_index(j, x.shape)}) is "
                         f"not finite ({value[i, j]:g}): f is not finite at x +- h there; try a "
                         "smaller h")
    full = x.shape + x.shape
    return Derivative(out.reshape(full), None if error is None else error.reshape(full),
                      steps.reshape(x.shape).copy(), ev.evaluations, retreated, "central")


def _retreat(estimate: Callable[[npt.NDArray[np.float64]],
                                tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]],
             flat: npt.NDArray[Any], steps: npt.NDArray[np.float64], H: npt.NDArray[np.float64],
             error: npt.NDArray[np.float64] | None, shape: tuple[int, ...]
             ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None,
                        npt.NDArray[np.float64], tuple[tuple[int, ...], ...]]:
    """Smaller steps for the entries where f was not finite at the perturbed points.

    Entries with a non-finite diagonal retreat (or, if all diagonals are finite, the rows with a
    non-finite entry): first to a step scaled to |x_i| instead of max(1, |x_i|) (f's domain
    often ends near 0), then by quarters. The whole Hessian is recomputed with the new steps, so
    every entry comes from one set of steps. Announced with a DifferenceWarning.
    """
    def culprits(H: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        diag = ~np.isfinite(np.diagonal(H))
        return np.asarray(diag if diag.any() else ~np.isfinite(H).all(axis=1), dtype=np.bool_)

    bad = culprits(H)
    if not bad.any():
        return H, error, steps, ()
    moved = bad.copy()
    s = steps.copy()
    ax = np.abs(flat.astype(np.float64))
    for r in range(RETREATS):
        shrink = np.where((r == 0) & (ax > 0) & (ax < 1), np.minimum(s / 4, s * ax), s / 4)
        s = np.where(bad, shrink, s).astype(flat.dtype).astype(np.float64)
        with np.errstate(under="ignore"):
            lost = (_shifted(flat, s, 1.0, shape) == flat) | (_shifted(flat, s, -1.0, shape) == flat)
        if (s == 0).any() or lost.any():
            break
        H2, e2 = estimate(s)
        if np.isfinite(H2).all():
            retreated = tuple(_index(int(q), shape) for q in np.flatnonzero(moved))
            _announce(retreated)
            return H2, e2, s, retreated
        bad = culprits(H2)
        moved |= bad
    return H, error, steps, ()  # still not finite: the caller names the entry


def _second_differences(ev: _Evaluator, flat: npt.NDArray[Any], s: npt.NDArray[np.float64],
                        shape: tuple[int, ...], lost_ok: bool
                        ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64],
                                   npt.NDArray[np.float64]]:
    """(H (n, n) float64, max |f| per pair, steps taken d_i) at steps s; NaN where f not finite."""
    n = flat.size
    p1, m1 = _shifted(flat, s, 1.0, shape), _shifted(flat, s, -1.0, shape)
    p2, m2 = _shifted(flat, 2 * s, 1.0, shape), _shifted(flat, 2 * s, -1.0, shape)
    lost = (p1 == flat) | (m1 == flat)
    if lost.any() and not lost_ok:
        q = int(np.flatnonzero(lost)[0])
        raise ValueError(f"the step h = {s[q]:g} is lost to rounding at entry {_index(q, shape)} "
                         f"of x (x = {float(flat[q])!r} in {flat.dtype}: x + h == x); use a "
                         "larger h or h=None")
    plus = np.ascontiguousarray(np.stack([p2, p1], axis=1))
    minus = np.ascontiguousarray(np.stack([m2, m1], axis=1))
    out = np.zeros((n, 4 * n))
    if ev.compiled:
        _compiled(ev, plus, minus, out)
    else:
        _python(ev, plus, minus, out)
    ev.evaluations += 2 * n * n
    f0 = float(ev.f0[0])
    x64 = flat.astype(np.float64)
    a = p2.astype(np.float64) - x64
    b = x64 - m2.astype(np.float64)
    d = p1.astype(np.float64) - m1.astype(np.float64)
    V = out.reshape(n, n, 4)
    with np.errstate(all="ignore"):
        upper = (V[:, :, 0] - V[:, :, 1] - V[:, :, 2] + V[:, :, 3]) / np.outer(d, d)
        upper = np.triu(upper, 1)
        fa, fb = V[np.arange(n), np.arange(n), 0], V[np.arange(n), np.arange(n), 1]
        diag = 2 * ((fa - f0) / a - (f0 - fb) / b) / (a + b)
        H = upper + upper.T
        H[np.arange(n), np.arange(n)] = diag
        scale = np.abs(V).max(axis=2)
        scale = np.maximum(np.maximum(scale, scale.T), abs(f0))
        lost = (d == 0)
        H[lost, :] = np.nan
        H[:, lost] = np.nan
    return H, scale, d


def _compiled(ev: _Evaluator, plus: npt.NDArray[Any], minus: npt.NDArray[Any],
              out: npt.NDArray[np.float64]) -> None:
    failed = np.zeros(plus.shape[0], dtype=np.uint8)
    try:
        with num_threads(ev.threads) as n_threads:
            loop = nd.hessian_values_loop_serial if n_threads == 1 else nd.hessian_values_loop
            loop(ev.f, ev.work, plus, minus, ev.args, out, failed)
    except numba_errors.TypingError as exc:
        raise TypeError(f"f could not be compiled for a {ev.dtype} array x, or does not return "
                        "a scalar (numba's typing error above)") from exc
    if failed.any():
        # f raised in the parallel loop: the serial loop raises f's own exception if f does again.
        nd.hessian_values_loop_serial(ev.f, ev.work, plus, minus, ev.args, np.zeros_like(out),
                                      np.zeros_like(failed))
        raise RuntimeError(f"f raised inside the parallel loop in Hessian row "
                           f"{_index(int(np.flatnonzero(failed)[0]), ev.x.shape)}, but not when "
                           "repeated on one thread (does f keep state between calls?)")


def _python(ev: _Evaluator, plus: npt.NDArray[Any], minus: npt.NDArray[Any],
            out: npt.NDArray[np.float64]) -> None:
    w = ev.work
    n = plus.shape[0]
    idx = [np.unravel_index(i, w.shape) for i in range(n)]

    def value() -> float:
        return float(ev.values_at_work())

    for i in range(n):
        ii = idx[i]
        oi = w[ii]
        try:
            w[ii] = plus[i, 0]
            out[i, 4 * i] = value()
            w[ii] = minus[i, 0]
            out[i, 4 * i + 1] = value()
            w[ii] = oi
            for j in range(i + 1, n):
                jj = idx[j]
                oj = w[jj]
                try:
                    for s, (vi, vj) in enumerate(((plus[i, 1], plus[j, 1]), (plus[i, 1], minus[j, 1]),
                                                  (minus[i, 1], plus[j, 1]), (minus[i, 1], minus[j, 1]))):
                        w[ii] = vi
                        w[jj] = vj
                        out[i, 4 * j + s] = value()
                finally:
                    w[jj] = oj
        finally:
            w[ii] = oi
