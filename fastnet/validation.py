"""Argument checks shared by the public functions: clear errors before any kernel runs."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from typing import Any

import numpy as np
import numpy.typing as npt

from fastnet._typing import DTypeLike, FloatArray, NDArray

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype: DTypeLike, name: str = "dtype") -> np.dtype[np.floating[Any]]:
    """np.dtype(float32) or np.dtype(float64); anything else is a TypeError naming `name`.

    Parameters
    ----------
    dtype : dtype-like
        What to check.
    name : str, default "dtype"
        The argument's name, for the error message.

    Returns
    -------
    numpy.dtype

    Raises
    ------
    TypeError
        Not float32 or float64.

    Examples
    --------
    >>> as_float_dtype("float32")
    dtype('float32')
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt  # type: ignore[return-value]  # checked to be float32/float64 just above


def positive_int(value: object, name: str) -> int:
    """An int >= 1 (bools and floats are rejected).

    Parameters
    ----------
    value : int
        What to check.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        Not an integer (or a bool).
    ValueError
        Below 1.

    Examples
    --------
    >>> positive_int(3, "iters")
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def positive_float(value: object, name: str) -> float:
    """A finite real number > 0.

    Parameters
    ----------
    value : float
        What to check.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        Not a real number (or a bool).
    ValueError
        Not finite, or not above 0.

    Examples
    --------
    >>> positive_float(1e-4, "h")
    0.0001
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return value


def real_array(x: object, name: str) -> NDArray[Any]:
    """x as an ndarray of a real numeric dtype (bool, int, uint or float); TypeError otherwise.

    Parameters
    ----------
    x : array_like
        What to convert.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    ndarray

    Raises
    ------
    TypeError
        Ragged input, or values that are not real numbers.

    Examples
    --------
    >>> real_array([1, 2], "t")
    array([1, 2])
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of numbers: {exc}") from exc
    if arr.dtype.kind not in "buif":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def check_inputs(x: object, input_size: int, dtype: DTypeLike, name: str = "x") -> FloatArray:
    """x as a C-contiguous (N, input_size) array of `dtype`, N >= 1, all finite.

    Parameters
    ----------
    x : array_like
        The inputs.
    input_size : int
        The number of columns required.
    dtype : float32 or float64
        The dtype to convert to.
    name : str, default "x"
        The argument's name, for the error message.

    Returns
    -------
    ndarray, shape (N, input_size)

    Raises
    ------
    TypeError
        Not real numbers.
    ValueError
        Wrong shape, no rows, NaN/inf, or values that overflow `dtype`.

    Examples
    --------
    >>> check_inputs([[1, 2, 3]], 3, np.float32)
    array([[1., 2., 3.]], dtype=float32)
    """
    arr = real_array(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (batch, {input_size}), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {arr.shape}); need at least one row")
    if arr.shape[1] != input_size:
        raise ValueError(f"{name} must have {input_size} columns (input_size), got shape {arr.shape}")
    with np.errstate(over="ignore"):  # overflow in the cast is reported just below, as an error
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.writeable:
        out = out.copy()  # kernels never write x, but numba compiles read-only arrays separately
    if not np.isfinite(out).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        if np.isfinite(arr).all():
            raise ValueError(f"{name} overflows {np.dtype(dtype)} (first at index {bad})")
        raise ValueError(f"{name} contains NaN or inf (first at index {bad})")
    return out


def check_labels(t: object, n_rows: int, n_classes: int, name: str = "t") -> NDArray[np.int64]:
    """Class indices (n_rows,) int64 from indices or one-hot rows, all in [0, n_classes).

    Parameters
    ----------
    t : array_like
        Class indices (n_rows,) or one-hot rows (n_rows, n_classes).
    n_rows : int
        Rows of the inputs the labels belong to.
    n_classes : int
        Number of classes.
    name : str, default "t"
        The argument's name, for the error message.

    Returns
    -------
    ndarray of int64, shape (n_rows,)

    Raises
    ------
    TypeError
        Non-integer or bool labels.
    ValueError
        Wrong shape or count, bad one-hot rows, labels out of range.

    Examples
    --------
    >>> check_labels([[0, 1], [1, 0]], 2, 2)
    array([1, 0])
    """
    arr = real_array(t, name)
    if arr.ndim == 2:
        if arr.shape != (n_rows, n_classes):
            raise ValueError(f"one-hot {name} must have shape ({n_rows}, {n_classes}), got {arr.shape}")
        ones = arr == 1
        if not (np.logical_or(ones, arr == 0).all() and (ones.sum(axis=1) == 1).all()):
            raise ValueError(f"one-hot {name} must have exactly one 1 per row and zeros elsewhere")
        return np.ascontiguousarray(ones.argmax(axis=1), dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be class indices (N,) or one-hot rows (N, {n_classes}), "
                         f"got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} labels but x has {n_rows} rows")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise TypeError(f"{name} must hold integer class indices, got non-integer {arr.dtype} values")
    elif arr.dtype.kind == "b":
        raise TypeError(f"{name} must hold integer class indices, got bool")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = arr[(arr < 0) | (arr >= n_classes)][0]
        # .item(): a plain 10, not np.int64(10), in the message
        raise ValueError(f"{name} has label {bad.item()!r} outside [0, {n_classes}) (output_size = {n_classes})")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_step(h: object, name: str = "h") -> float:
    """A finite step h > 0.

    Parameters
    ----------
    h : float
        The step.
    name : str, default "h"
        The argument's name, for the error message.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        As for `positive_float`.

    Examples
    --------
    >>> check_step(1e-4)
    0.0001
    """
    return positive_float(h, name)


def _largest_magnitude(params: Iterable[npt.NDArray[np.floating[Any]]]) -> float:
    # max and -min instead of abs: no temporary array on every numerical-gradient call
    return max((max(float(p.max(initial=0)), -float(p.min(initial=0))) for p in params), default=0.0)


def step_range(dtype: npt.DTypeLike, params: Iterable[npt.NDArray[np.floating[Any]]],
               method: str = "central") -> tuple[float, float]:
    """The steps h that work for parameters `params` of `dtype`: (smallest, largest).

    The smallest is the dtype's smallest normal number (1 / h must not overflow) and, for the
    difference methods, one unit in the last place of the largest |parameter|: a smaller step is
    lost (p + h == p) and that entry's difference would be 0. The largest keeps p + h and 2 h finite.

    Parameters
    ----------
    dtype : dtype_like
        float32 or float64: the parameters' dtype.
    params : iterable of ndarray
        The parameter arrays the step is added to.
    method : str, default "central"
        The numerical-gradient method; ``"complex"`` adds ``i h``, which is never lost, so only
        the dtype bounds the step from below.

    Returns
    -------
    (float, float)
        The smallest and the largest usable step.

    Examples
    --------
    >>> import numpy as np
    >>> params = [np.array([0.5, -2.0], dtype=np.float32)]
    >>> step_range(np.float32, params)
    (2.384185791015625e-07, 8.5070586659632215e+37)
    >>> step_range(np.float32, params, "complex")[0] == float(np.finfo(np.float32).tiny)
    True
    """
    dt = np.dtype(dtype)
    info = np.finfo(dt)
    largest = _largest_magnitude(params)
    low = float(info.tiny)
    if method != "complex" and largest > 0:
        low = max(low, float(np.spacing(np.asarray(largest, dtype=dt))))
    high = float(info.max) / 4 - largest
    return low, high


def check_step_for(h: object, dtype: npt.DTypeLike, params: Iterable[npt.NDArray[np.floating[Any]]],
                   method: str = "central", name: str = "h") -> float:
    """h as a float after checking that it is a usable step for `params` of `dtype` (see step_range).

    Parameters
    ----------
    h : float
        The step.
    dtype : dtype_like
        float32 or float64: the parameters' dtype.
    params : iterable of ndarray
        The parameter arrays the step is added to.
    method : str, default "central"
        The numerical-gradient method.
    name : str, default "h"
        The argument's name, for the error message (``--h`` on the command line).

    Returns
    -------
    float
        `h`.

    Raises
    ------
    TypeError
        h is not a real number.
    ValueError
        h is not finite and positive, or outside the usable range, which the message gives.

    Examples
    --------
    >>> import numpy as np
    >>> params = [np.array([0.5, -2.0], dtype=np.float32)]
    >>> check_step_for(1e-3, np.float32, params)
    0.001
    >>> check_step_for(1e-8, np.float32, params)
    Traceback (most recent call last):
    ...
    ValueError: h=1e-08 is outside the usable range [2.38e-07, 8.51e+37] for float32 parameters (central method; below 2.38e-07 the step is lost when added to the largest |parameter| 2)
    """
    value = positive_float(h, name)
    params = list(params)
    low, high = step_range(dtype, params, method)
    if not low <= value <= high:
        dt = np.dtype(dtype)
        largest = _largest_magnitude(params)
        why = ("" if method == "complex" else
               f"; below {low:.3g} the step is lost when added to the largest |parameter| {largest:.3g}")
        raise ValueError(f"{name}={value!r} is outside the usable range [{low:.3g}, {high:.3g}] for "
                         f"{dt.name} parameters ({method} method{why})")
    return value


def check_seed(seed: object, name: str = "seed") -> None:
    """None, a non-negative int or a numpy.random.Generator; TypeError or ValueError naming `name`.

    Checked here so that a bad seed fails with its own name before any work, not deep inside
    numpy.random.default_rng.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        The seed to check.
    name : str, default "seed"
        The argument's name, for the error message.

    Raises
    ------
    TypeError
        `seed` is of another type (bool and float included).
    ValueError
        `seed` is a negative int.

    Examples
    --------
    >>> check_seed(42)
    >>> check_seed(-1, name="split_seed")
    Traceback (most recent call last):
    ...
    ValueError: split_seed must be a non-negative int, got -1
    """
    if seed is None or isinstance(seed, np.random.Generator):
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None, a non-negative int or a numpy.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {int(seed)}")
