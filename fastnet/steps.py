"""Step sizes for differentiating a user's function: per-entry defaults, checks, rounding to x's dtype.

Default steps (h=None) are relative: scale * ``max(1, |x_i|)``, the scale chosen for the dtype's
machine epsilon so that truncation and rounding errors balance (for a well-scaled f):

* central, error ~ h^2 + eps/h: scale eps^(1/3) (6e-6 in float64, 5e-3 in float32);
* forward/backward, error ~ h + eps/h: scale eps^(1/2) (1.5e-8, 3.5e-4);
* second differences (Hessian), error ~ h^2 + eps/h^2: scale eps^(1/4) (1.2e-4, 0.034);
* complex step: no subtraction, hence no rounding arm: an absolute 1e-20 (float32: 1e-20 too).

The factor ``max(1, |x_i|)`` keeps x_i + h_i != x_i for any x_i, so a default step is never lost to
rounding. A float h is an absolute step, the book's meaning, for every entry; an array h gives
one absolute step per entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fastnet.validation import check_step

COMPLEX_STEP = 1e-20

# Largest steps of a Richardson sequence, relative to max(1, |x_i|); the sequence halves them.
RICHARDSON_BASE = {"gradient": 0.5, "hessian": 0.5}
RICHARDSON_STEPS = {"gradient": 8, "hessian": 5}


def default_scale(order: str, dtype: np.dtype[Any]) -> float:
    """The relative default step for an error order: "central", "one-sided" or "second".

    eps^(1/3), eps^(1/2) or eps^(1/4) for the dtype's machine epsilon eps: the step at which
    truncation and rounding errors balance for a well-scaled f (see the module notes).

    Parameters
    ----------
    order : {"central", "one-sided", "second"}
        The difference: central (error ~ h^2), forward or backward (~ h), or a second
        difference (a Hessian's, rounding ~ eps / h^2).
    dtype : numpy.dtype
        float32 or float64: x's dtype, whose epsilon bounds the rounding in f's values.

    Returns
    -------
    float
        The step relative to ``max(1, |x_i|)``.

    Examples
    --------
    >>> import numpy as np
    >>> round(default_scale("central", np.dtype(np.float64)), 9)
    6.055e-06
    >>> round(default_scale("one-sided", np.dtype(np.float32)), 6)
    0.000345
    """
    eps = float(np.finfo(dtype).eps)
    powers = {"central": 1 / 3, "one-sided": 0.5, "second": 0.25}
    return float(eps ** powers[order])


def resolve_steps(h: Any, x: npt.NDArray[Any], default_rel: float | None,
                  default_abs: float | None = None) -> tuple[npt.NDArray[np.float64], bool]:
    """(steps, is_default): one positive step per entry of x (flat, float64, representable in x's dtype).

    Each step is rounded to x's dtype, so that the step recorded is one that x + h can take.

    Parameters
    ----------
    h : float, ndarray or None
        The user's step: None for the default, a float for one absolute step for every entry,
        an array shaped like x for one absolute step per entry.
    x : ndarray of float32 or float64
        The point: its dtype and, for the default, its magnitudes set the steps.
    default_rel : float or None
        The default step relative to ``max(1, |x_i|)`` (see `default_scale`).
    default_abs : float, optional
        An absolute default step for every entry instead (the complex step's 1e-20).

    Returns
    -------
    steps : ndarray of float64, shape (x.size,)
        One positive step per entry of x, in C order.
    is_default : bool
        Whether h was None.

    Raises
    ------
    TypeError
        h is an array that is not of real numbers.
    ValueError
        h is not shaped like x, not finite and > 0, or not representable in x's dtype (rounds
        to 0 or overflows), naming the entry.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.5, -200.0])
    >>> resolve_steps(None, x, 1e-5)
    (array([1.e-05, 2.e-03]), True)
    >>> resolve_steps(1e-4, x, 1e-5)
    (array([0.0001, 0.0001]), False)
    >>> resolve_steps(1e-50, x.astype(np.float32), 1e-5)
    Traceback (most recent call last):
    ...
    ValueError: h = 1e-50 at entry (0,) is not representable in float32 (usable steps lie ...)
    """
    dt = x.dtype
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    if h is None:
        if default_abs is not None:
            steps = np.full(flat.size, default_abs)
        else:
            assert default_rel is not None
            steps = default_rel * np.maximum(1.0, np.abs(flat))
        is_default = True
    elif isinstance(h, np.ndarray):
        if h.dtype.kind not in "iuf" or h.dtype.kind == "b":
            raise TypeError(f"h must be a float or an array of floats shaped like x, got dtype {h.dtype}")
        if h.shape != x.shape:
            raise ValueError(f"h must be a float or an array shaped like x {x.shape}, got shape {h.shape}")
        steps = np.asarray(h, dtype=np.float64).reshape(-1).copy()
        bad = ~(np.isfinite(steps) & (steps > 0))
        if bad.any():
            where = _index(int(np.flatnonzero(bad)[0]), x.shape)
            raise ValueError(f"h must be finite and > 0 everywhere, got {steps[bad][0]!r} at {where}")
        is_default = False
    else:
        steps = np.full(flat.size, check_step(h))
        is_default = False
    with np.errstate(over="ignore", under="ignore"):
        rounded = steps.astype(dt).astype(np.float64)
    bad = (rounded == 0) | ~np.isfinite(rounded)
    if bad.any():
        q = int(np.flatnonzero(bad)[0])
        info = np.finfo(dt)
        raise ValueError(f"h = {steps[q]:g} at entry {_index(q, x.shape)} is not representable in "
                         f"{dt} (usable steps lie between {float(info.smallest_subnormal):g} and "
                         f"{float(info.max):g})")
    return rounded, is_default


def _index(q: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The index tuple of flat entry q in an array of `shape` (C order), for error messages."""
    return tuple(int(i) for i in np.unravel_index(q, shape))


def _shifted(x_flat: npt.NDArray[Any], steps: npt.NDArray[np.float64], sign: float,
            shape: tuple[int, ...], what: str = "h") -> npt.NDArray[Any]:
    """x + sign * steps rounded to x's dtype; error naming the entry if that overflows."""
    dt = x_flat.dtype
    with np.errstate(over="ignore"):
        pts: npt.NDArray[Any] = (x_flat + (sign * steps).astype(dt)).astype(dt)
    bad = ~np.isfinite(pts)
    if bad.any():
        q = int(np.flatnonzero(bad)[0])
        raise ValueError(f"x + {'-' if sign < 0 else ''}{what} overflows {dt} at entry "
                         f"{_index(q, shape)} (x = {x_flat[q]!r}, {what} = {steps[q]:g})")
    return pts


def _check_not_lost(x_flat: npt.NDArray[Any], pts: npt.NDArray[Any], steps: npt.NDArray[np.float64],
                   shape: tuple[int, ...]) -> None:
    """Error naming the first entry where x + h == x: a step lost to rounding."""
    lost = pts == x_flat
    if lost.any():
        q = int(np.flatnonzero(lost)[0])
        raise ValueError(f"the step h = {steps[q]:g} is lost to rounding at entry "
                         f"{_index(q, shape)} of x (x = {float(x_flat[q])!r} in {x_flat.dtype}: "
                         "x + h == x); use a larger h, an array of steps, or h=None for steps "
                         "scaled to |x|")
