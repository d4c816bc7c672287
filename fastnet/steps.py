"""Step sizes for differentiating a user's function: per-entry defaults, checks, rounding to x's dtype.

Default steps (h=None) are relative: scale * max(1, |x_i|), the scale chosen for the dtype's
machine epsilon so that truncation and rounding errors balance (for a well-scaled f):

* central, error ~ h^2 + eps/h: scale eps^(1/3) (6e-6 in float64, 5e-3 in float32);
* forward/backward, error ~ h + eps/h: scale eps^(1/2) (1.5e-8, 3.5e-4);
* second differences (Hessian), error ~ h^2 + eps/h^2: scale eps^(1/4) (1.2e-4, 0.034);
* complex step: no subtraction, hence no rounding arm: an absolute 1e-20 (float32: 1e-20 too).

The factor max(1, |x_i|) keeps x_i + h_i != x_i for any x_i, so a default step is never lost to
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
    """The relative default step for an error order: "central", "one-sided" or "second"."""
    eps = float(np.finfo(dtype).eps)
    powers = {"central": 1 / 3, "one-sided": 0.5, "second": 0.25}
    return float(eps ** powers[order])


def resolve_steps(h: Any, x: npt.NDArray[Any], default_rel: float | None,
                  default_abs: float | None = None) -> tuple[npt.NDArray[np.float64], bool]:
    """(steps, is_default): one positive step per entry of x (flat, float64, representable in x's dtype).

    h None gives the default: default_rel * max(1, |x_i|), or default_abs for every entry.
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
    return tuple(int(i) for i in np.unravel_index(q, shape))


def index_of(q: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The index tuple of flat entry q in an array of `shape` (C order)."""
    return _index(q, shape)


def shifted(x_flat: npt.NDArray[Any], steps: npt.NDArray[np.float64], sign: float,
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


def check_not_lost(x_flat: npt.NDArray[Any], pts: npt.NDArray[Any], steps: npt.NDArray[np.float64],
                   shape: tuple[int, ...]) -> None:
    """Error naming the first entry where x + h == x: a step lost to rounding."""
    lost = pts == x_flat
    if lost.any():
        q = int(np.flatnonzero(lost)[0])
        raise ValueError(f"the step h = {steps[q]:g} is lost to rounding at entry "
                         f"{_index(q, shape)} of x (x = {float(x_flat[q])!r} in {x_flat.dtype}: "
                         "x + h == x); use a larger h, an array of steps, or h=None for steps "
                         "scaled to |x|")
