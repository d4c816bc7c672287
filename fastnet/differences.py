"""Finite differences from f's values at perturbed points: one step, or Richardson extrapolation.

Shared by the gradient, the Jacobian and numerical_diff. Every difference is divided by the step
actually taken, (x + h) - (x - h) as rounded in x's dtype, not by the nominal 2h.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fastnet.steps import _check_not_lost, _index, _shifted

# Largest number of times a step is quartered when f is not finite at x +- h.
RETREATS = 10


class DifferenceWarning(RuntimeWarning):
    """f was not finite at some perturbed points: smaller or one-sided steps were used there.

    A warning rather than an error because the derivative is still an honest estimate, only from
    other steps than asked for; the result's `Derivative.retreated` names those entries. Where
    no step gives a finite difference, a ValueError is raised instead. Turn the warning into an
    error with ``warnings.simplefilter("error", DifferenceWarning)``.

    Parameters
    ----------
    *args : object
        The message, as for any warning.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np, fastnet
    >>> def f(v):
    ...     with np.errstate(invalid="ignore"):  # sqrt of a negative number is NaN
    ...         return float(np.sum(np.sqrt(v)))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always", DifferenceWarning)
    ...     d = fastnet.gradient(f, np.array([1e-8, 4.0]))
    >>> [w.category.__name__ for w in caught], d.retreated
    (['DifferenceWarning'], ((0,),))
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    f was not finite at x +- h for 1 entry of x ((0,)): smaller or one-sided steps were used ...
    >>> np.allclose(d.value, [5000.0, 0.25], rtol=1e-6)
    True
    """

    # RuntimeWarning's own constructor, spelled out: Python can state the signature of a class
    # that defines __init__, and documentation tools ask for it.
    def __init__(self, *args: object) -> None:
        super().__init__(*args)


@dataclass(frozen=True)
class Derivative:
    """A numerical derivative and how it was obtained.

    Attributes
    ----------
    value : ndarray
        The derivative: shaped like x (gradient), f(x).shape + x.shape (Jacobian), or
        x.shape + x.shape (Hessian); x's dtype.
    error : ndarray or None
        Per-entry error estimate (float64, same shape as value) with Richardson extrapolation;
        None for a single step, whose error is not estimated.
    step : ndarray
        Per-entry step actually taken (float64; with Richardson, the smallest step of the chosen
        estimate).
    evaluations : int
        Number of calls of f.
    retreated : tuple of tuple of int
        Entries of x where f was not finite at the nominal step and a smaller or one-sided step
        was used (also announced with a DifferenceWarning).
    method : str
        The difference method.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> d = fastnet.gradient(lambda v: float(np.sum(v ** 2)), np.array([1.0, 2.0]))
    >>> np.allclose(d.value, [2.0, 4.0]), d.error is None, d.evaluations, d.method
    (True, True, 5, 'central')
    >>> d.step  # eps^(1/3) max(1, |x_i|), as rounded in x's dtype
    array([1.21109089e-05, 2.42218178e-05])
    >>> r = fastnet.gradient(lambda v: float(np.sum(v ** 2)), np.array([1.0, 2.0]), richardson=True)
    >>> bool((r.error < 1e-12).all()), r.retreated
    (True, ())
    """

    value: npt.NDArray[Any]
    error: npt.NDArray[np.float64] | None
    step: npt.NDArray[np.float64]
    evaluations: int
    retreated: tuple[tuple[int, ...], ...]
    method: str


class _Values(Protocol):
    """What the difference formulas need from an evaluator (see fastnet.perturb._Evaluator)."""

    evaluations: int

    def values(self, entries: npt.NDArray[np.int64], points: npt.NDArray[Any]) -> npt.NDArray[Any]:
        ...

    def f0_at(self, entries: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        ...


SIDES = {"central": (1.0, -1.0), "forward": (1.0,), "backward": (-1.0,)}


def _combine(method: str, vals: npt.NDArray[Any], f0: npt.NDArray[Any], x: npt.NDArray[np.float64],
             pts: list[npt.NDArray[np.float64]]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(difference quotients (m, mo), steps taken (m,)) from values (m, sides, mo)."""
    with np.errstate(all="ignore"):
        if method == "central":
            taken = pts[0] - pts[1]
            d = (vals[:, 0] - vals[:, 1]) / taken[:, None]
        elif method == "forward":
            taken = pts[0] - x
            d = (vals[:, 0] - f0) / taken[:, None]
        else:
            taken = x - pts[0]
            d = (f0 - vals[:, 0]) / taken[:, None]
    return d, taken


def _complex_points(x: npt.NDArray[Any], steps: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    """x + i h in the complex dtype matching x's (the imaginary part is h rounded to x's dtype)."""
    pts = x.astype(np.complex64 if x.dtype == np.float32 else np.complex128)
    pts.imag = steps.astype(x.dtype)
    return pts


def _evaluate(ev: _Values, method: str, entries: npt.NDArray[np.int64], x_flat: npt.NDArray[Any],
              steps: npt.NDArray[np.float64], shape: tuple[int, ...], check: bool = True
              ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[Any]]:
    xs = x_flat[entries]
    pts = [_shifted(xs, steps, s, shape) for s in SIDES[method]]
    if check:
        for p in pts:
            _check_not_lost(xs, p, steps, shape)
    vals = ev.values(entries, np.stack(pts, axis=1))
    d, taken = _combine(method, vals, ev.f0_at(entries), xs.astype(np.float64),
                        [p.astype(np.float64) for p in pts])
    return d, taken, vals


def _single_step(ev: _Values, x_flat: npt.NDArray[Any], steps: npt.NDArray[np.float64],
                 method: str, shape: tuple[int, ...]
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64],
                            tuple[tuple[int, ...], ...]]:
    """(derivatives (n, mo), steps taken (n,), retreated entries) for one step per entry."""
    n = x_flat.size
    entries = np.arange(n, dtype=np.int64)
    if method == "complex":
        pts = _complex_points(x_flat, steps).reshape(n, 1)
        vals = ev.values(entries, pts)
        with np.errstate(all="ignore"):
            d = vals[:, 0].imag / steps[:, None]
        nonfinite = ~np.isfinite(d).all(axis=1)
        if nonfinite.any():
            q = int(np.flatnonzero(nonfinite)[0])
            raise ValueError(f"the complex step gives a non-finite derivative at entry "
                             f"{_index(q, shape)} of x (h = {steps[q]:g}): f(x + ih) is not "
                             "finite there")
        return d, steps.copy(), ()
    d, taken, _ = _evaluate(ev, method, entries, x_flat, steps, shape)
    bad = np.flatnonzero(~np.isfinite(d).all(axis=1))
    if bad.size == 0:
        return d, taken, ()
    d, taken = d.copy(), taken.copy()
    todo = bad
    s = steps[todo].copy()
    ax = np.abs(x_flat[todo].astype(np.float64))
    for r in range(RETREATS):
        if todo.size == 0:
            break
        # first a step scaled to |x_i| rather than max(1, |x_i|): f's domain often ends near 0
        s = np.where((r == 0) & (ax > 0) & (ax < 1), np.minimum(s / 4, s * ax), s / 4)
        xs = x_flat[todo]
        alive = np.ones(todo.size, dtype=bool)
        for sign in SIDES[method]:
            with np.errstate(under="ignore"):
                alive &= _shifted(xs, s, sign, shape) != xs
        todo, s, ax = todo[alive], s[alive], ax[alive]
        if todo.size == 0:
            break
        dq, tq, _ = _evaluate(ev, method, todo, x_flat, s, shape, check=False)
        ok = np.isfinite(dq).all(axis=1)
        d[todo[ok]], taken[todo[ok]] = dq[ok], tq[ok]
        todo, s, ax = todo[~ok], s[~ok], ax[~ok]
    remaining = np.array([q for q in bad if not np.isfinite(d[q]).all()], dtype=np.int64)
    if remaining.size and method == "central":
        # one-sided from whichever side is finite, at the original step
        for side in ("forward", "backward"):
            if remaining.size == 0:
                break
            dq, tq, _ = _evaluate(ev, side, remaining, x_flat, steps[remaining], shape, check=False)
            ok = np.isfinite(dq).all(axis=1)
            d[remaining[ok]], taken[remaining[ok]] = dq[ok], tq[ok]
            remaining = remaining[~ok]
    if remaining.size:
        q = int(remaining[0])
        raise ValueError(f"no finite difference at entry {_index(q, shape)} of x: f is not "
                         f"finite at x +- h for h = {steps[q]:g} nor for steps down to "
                         f"{steps[q] / 4 ** RETREATS:g}" +
                         (" or on either side" if method == "central" else ""))
    retreated = tuple(_index(int(q), shape) for q in bad)
    _announce(retreated)
    return d, taken, retreated


def _announce(retreated: tuple[tuple[int, ...], ...]) -> None:
    """Warn (DifferenceWarning) about the entries of x that needed smaller or one-sided steps."""
    if retreated:
        shown = ", ".join(map(str, retreated[:5])) + (" ..." if len(retreated) > 5 else "")
        warnings.warn(f"f was not finite at x +- h for {len(retreated)} entr"
                      f"{'y' if len(retreated) == 1 else 'ies'} of x ({shown}): smaller or "
                      "one-sided steps were used there (see the result's `retreated`)",
                      DifferenceWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The stacklevel of the first frame outside fastnet: warnings point at the user's call."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _exponents(method: str, levels: int) -> list[int]:
    """Powers of h in the error expansion: even for central and complex, all for one-sided."""
    return [2 * (j + 1) if method in ("central", "complex") else j + 1 for j in range(levels)]


def _romberg(D: npt.NDArray[np.float64], floor: npt.NDArray[np.float64], method: str
             ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Extrapolate D[k] (steps base / 2^k) to h -> 0; (value, error estimate, chosen k) per entry.

    D has shape (K, ...). Each table entry T[k][j] (j levels of extrapolation, steps k - j..k)
    gets an error estimate: its distance to the two entries it improves on (one level lower and
    one step coarser), plus the rounding in f's values amplified by the extrapolation (`floor`
    (K, ...) is that rounding for each step). Per entry, the estimate with the smallest error
    wins; non-finite differences drop out.
    """
    K = D.shape[0]
    powers = _exponents(method, K)
    T = [D]
    with np.errstate(all="ignore"):
        E = [np.full_like(D, np.inf)]
        E[0][1:] = np.abs(D[1:] - D[:-1]) + floor[1:]
        for j in range(1, K):
            prev = T[j - 1]
            r = 2.0 ** powers[j - 1] - 1.0
            Tj = np.full_like(D, np.nan)
            Tj[j:] = prev[j:] + (prev[j:] - prev[j - 1:-1]) / r
            Ej = np.full_like(D, np.inf)
            Ej[j:] = np.abs(Tj[j:] - prev[j:]) + floor[j:] * (1 + 2 / r) ** j
            if j + 1 < K:
                Ej[j + 1:] += np.abs(Tj[j + 1:] - Tj[j:-1])
            T.append(Tj)
            E.append(Ej)
        Tall = np.stack(T)  # (levels, K, ...)
        Eall = np.stack(E)
        Eall = np.where(np.isfinite(Tall) & np.isfinite(Eall), Eall, np.inf)
    flatE = Eall.reshape(K * K, -1)
    pick = np.argmin(flatE, axis=0)
    cols = np.arange(flatE.shape[1])
    value = Tall.reshape(K * K, -1)[pick, cols].reshape(D.shape[1:])
    error = flatE[pick, cols].reshape(D.shape[1:])
    chosen_k = (pick % K).reshape(D.shape[1:])
    return value, error, chosen_k


def _richardson_at(ev: _Values, x_flat: npt.NDArray[Any], entries: npt.NDArray[np.int64],
                   base: npt.NDArray[np.float64], method: str, n_steps: int, shape: tuple[int, ...]
                   ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64],
                              npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Richardson over base / 2^k for these entries: (value, error, step, all steps finite)."""
    eps = float(np.finfo(x_flat.dtype).eps)
    xe = x_flat[entries]
    xs = xe.astype(np.float64)
    steps_k = [(base / 2.0 ** k).astype(x_flat.dtype).astype(np.float64) for k in range(n_steps)]
    pts: list[npt.NDArray[Any]] = []
    for s in steps_k:
        if method == "complex":
            pts.append(_complex_points(xe, s))
        else:
            pts.extend(_shifted(xe, s, sign, shape) for sign in SIDES[method])
    vals = ev.values(entries, np.stack(pts, axis=1))
    f0 = ev.f0_at(entries)
    D, floor, taken = [], [], []
    width = 1 if method == "complex" else len(SIDES[method])
    for k, s in enumerate(steps_k):
        block = vals[:, k * width:(k + 1) * width]
        if method == "complex":
            with np.errstate(all="ignore"):
                d = block[:, 0].imag / s[:, None]
            t = s
            scale = np.abs(block[:, 0])
        else:
            p = [pts[k * width + i].astype(np.float64) for i in range(width)]
            d, t = _combine(method, block, f0, xs, p)
            scale = np.maximum(np.abs(block).max(axis=1), np.abs(f0))
            d = np.where((t == 0)[:, None], np.nan, d)
        D.append(d)
        taken.append(np.broadcast_to(np.abs(t)[:, None], d.shape))
        with np.errstate(all="ignore"):
            floor.append(8 * eps * scale / np.abs(t)[:, None])
    value, error, chosen = _romberg(np.stack(D), np.stack(floor), method)
    step = np.take_along_axis(np.stack(taken), chosen[None], axis=0)[0]
    finite_all = np.asarray(np.isfinite(np.stack(D)).all(axis=(0, 2)), dtype=np.bool_)
    return value, error, np.asarray(step, dtype=np.float64), finite_all


def _richardson(ev: _Values, x_flat: npt.NDArray[Any], base: npt.NDArray[np.float64],
                method: str, n_steps: int, shape: tuple[int, ...]
                ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64],
                           npt.NDArray[np.float64], tuple[tuple[int, ...], ...]]:
    """(value (n, mo), error (n, mo), smallest step of each estimate (n, mo), entries without
    a finite value at some of the steps) by Richardson extrapolation over base / 2^k.

    Entries with no finite estimate at all retreat to smaller sequences: first one scaled to
    |x_i| instead of max(1, |x_i|) (f's domain often ends near 0, as log's does), then quartered.
    """
    n = x_flat.size
    entries = np.arange(n, dtype=np.int64)
    value, error, step, finite_all = _richardson_at(ev, x_flat, entries, base, method, n_steps, shape)
    todo = np.flatnonzero(~np.isfinite(value).all(axis=1))
    ax = np.abs(x_flat.astype(np.float64))
    b = base.copy()
    for r in range(RETREATS):
        if todo.size == 0:
            break
        b[todo] = np.minimum(b[todo] / 4, b[todo] * ax[todo] / np.maximum(1.0, ax[todo])) \
            if r == 0 else b[todo] / 4
        b[todo] = np.where(b[todo] == 0, base[todo] / 4 ** (r + 1), b[todo])
        v, e, s, _ = _richardson_at(ev, x_flat, todo, b[todo], method, n_steps, shape)
        value[todo], error[todo], step[todo] = v, e, s
        todo = todo[~np.isfinite(v).all(axis=1)]
    if todo.size:
        q = int(todo[0])
        raise ValueError(f"no finite difference at entry {_index(q, shape)} of x: f is not "
                         f"finite at x +- h for any step from {base[q]:g} down to "
                         f"{b[q] / 2 ** (n_steps - 1):g}")
    # A sequence scaled to max(1, |x_i|) can stay far from converged for a function whose scale
    # is |x_i| itself (log near 0): where the estimate is poor, try the sequence scaled to |x_i|
    # and keep whichever estimate claims the smaller error.
    mag = np.maximum(1.0, np.abs(value)).max(axis=1)
    weak = np.flatnonzero((error.max(axis=1) > 1e-8 * mag) & (ax > 0) & (ax < 1) & (b == base))
    if weak.size:
        v, e, s, _ = _richardson_at(ev, x_flat, weak, base[weak] * ax[weak], method, n_steps, shape)
        better = np.isfinite(v).all(axis=1) & (e.max(axis=1) < error[weak].max(axis=1))
        w = weak[better]
        value[w], error[w], step[w] = v[better], e[better], s[better]
    retreated = tuple(_index(int(q), shape) for q in np.flatnonzero(np.logical_not(finite_all)))
    _announce(retreated)
    return value, error, step, retreated
