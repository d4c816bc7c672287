"""Gradient descent on any function: the book's `gradient_descent` (ch. 4), with its path and divergence.

The book's version (ch04/gradient_method.py) takes `step_num` steps x <- x - lr * grad f(x) with the
numerical gradient and returns the final x; its figure also draws every iterate. Here the same
loop also watches what the book's readers are told to watch: a learning rate too large makes the
iterates grow without bound (an iterate that is not finite stops the loop), or leaves f larger
than where it started; either is announced with a `DivergenceWarning` and recorded on the result.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastnet.gradient import numerical_gradient
from fastnet.methods import method_code

__all__ = ["Descent", "DivergenceWarning", "gradient_descent"]


class DivergenceWarning(RuntimeWarning):
    """Gradient descent diverged: a non-finite iterate, or f ended above its starting value.

    A warning rather than an error because a diverging run is a result worth seeing (the book
    shows one, with lr=10); the returned `Descent` records it too. Turn it into an error with
    ``warnings.simplefilter("error", DivergenceWarning)``.

    Parameters
    ----------
    *args : object
        The message, as for any warning.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from fastnet.functions import square_sum
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always", DivergenceWarning)
    ...     result = gradient_descent(square_sum, np.array([-3.0, 4.0]), lr=1.5, step_num=3, path=True)
    >>> [w.category.__name__ for w in caught], bool(result.diverged)
    (['DivergenceWarning'], True)
    >>> print(caught[0].message)
    gradient_descent with lr=1.5: diverged: f grew from 25 to 1600, first at step 1
    """

    # RuntimeWarning's own constructor, spelled out: Python can state the signature of a class
    # that defines __init__, and documentation tools ask for it.
    def __init__(self, *args: object) -> None:
        super().__init__(*args)


@dataclass
class Descent:
    """What `gradient_descent(..., path=True)` returns.

    Attributes
    ----------
    x : ndarray
        The final iterate (the last finite one if the loop stopped on a non-finite iterate).
    path : ndarray
        Every iterate, shape ``(steps + 1, *x.shape)``: the starting point first.
    values : ndarray
        f at every iterate of `path` (float64).
    steps : int
        Steps taken: `step_num`, or fewer if an iterate was not finite.
    diverged : bool
        True if an iterate or its gradient was not finite, or f ended larger than it started.
    growth_step : int or None
        On divergence, the first step at which f grew (f(x_k) > f(x_{k-1})); None otherwise.
    message : str
        One line saying what happened.

    Unpacks like the book's `x, x_history = gradient_descent(...)`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnet.functions import square_sum
    >>> result = gradient_descent(square_sum, np.array([-3.0, 4.0]), lr=0.1, step_num=2, path=True)
    >>> result.path
    array([[-3.  ,  4.  ],
           [-2.4 ,  3.2 ],
           [-1.92,  2.56]])
    >>> result.steps, bool(result.diverged), result.message
    (2, False, 'f went from 25 to 10.24 in 2 steps')
    >>> x, x_history = result
    >>> x_history.shape
    (3, 2)
    """

    x: NDArray[Any]
    path: NDArray[Any]
    values: NDArray[np.float64]
    steps: int
    diverged: bool
    growth_step: int | None
    message: str = field(default="")

    def __iter__(self) -> Iterator[NDArray[Any]]:
        yield self.x
        yield self.path


def _start(init_x: ArrayLike) -> NDArray[np.floating[Any]]:
    try:
        x = np.array(init_x, copy=True)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"init_x must be an array of numbers: {exc}") from exc
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)  # the book writes np.array([-3.0, 4.0]); integers would round steps away
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"init_x must hold real numbers (float32 or float64), got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError("init_x is empty: there is nothing to descend")
    if not np.isfinite(x).all():
        raise ValueError("init_x contains NaN or inf")
    return x


def _value(f: Callable[..., Any], x: NDArray[Any]) -> float:
    v = f(x)
    if np.ndim(v) != 0:
        raise ValueError(f"f must return a scalar, got an array of shape {np.shape(v)}")
    return float(np.real(v))


@overload
def gradient_descent(f: Callable[..., Any], init_x: ArrayLike, lr: float = ..., step_num: int = ..., *,
                     grad: Callable[..., Any] | None = ..., method: str = ..., h: float | None = ...,
                     callback: Callable[[int, NDArray[Any], float], Any] | None = ...,
                     path: Literal[False] = ...) -> NDArray[Any]: ...


@overload
def gradient_descent(f: Callable[..., Any], init_x: ArrayLike, lr: float = ..., step_num: int = ..., *,
                     grad: Callable[..., Any] | None = ..., method: str = ..., h: float | None = ...,
                     callback: Callable[[int, NDArray[Any], float], Any] | None = ...,
                     path: Literal[True]) -> Descent: ...


def gradient_descent(
    f: Callable[..., Any],
    init_x: ArrayLike,
    lr: float = 0.01,
    step_num: int = 100,
    *,
    grad: Callable[..., Any] | None = None,
    method: str = "central",
    h: float | None = None,
    callback: Callable[[int, NDArray[Any], float], Any] | None = None,
    path: bool = False,
) -> NDArray[Any] | Descent:
    """Minimise f by `step_num` steps of x <- x - lr * grad f(x), as in the book's chapter 4.

    Parameters
    ----------
    f : callable
        f(x) -> scalar, x an array shaped like `init_x`. A plain Python function or an
        ``@numba.njit`` one (then the numerical gradient runs compiled).
    init_x : array_like
        Starting point; integers are converted to float64. Never modified.
    lr : float, default 0.01
        Learning rate (the book's default).
    step_num : int, default 100
        Number of steps.
    grad : callable, optional
        grad(x) -> array shaped like x, an analytic gradient. Without it, fastnet's
        `numerical_gradient(f, x, h=h, method=method)` is used.
    method, h
        Passed to `numerical_gradient` when `grad` is None.
    callback : callable, optional
        callback(step, x, value) after every step, with a copy of the new iterate and f there.
    path : bool, default False
        Return a `Descent` with every iterate instead of the final x alone.

    Returns
    -------
    ndarray or Descent
        The final x, as the book returns it; with ``path=True`` a `Descent` (x, path, values,
        steps, diverged, growth_step), which also unpacks as ``x, x_history``.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (named in the message), f not returning a finite scalar at init_x, or a
        gradient of the wrong shape.

    Warns
    -----
    DivergenceWarning
        When an iterate or its gradient is not finite (the loop stops there) or f ends larger than
        it started, saying from which step f grew.

    Examples
    --------
    >>> import numpy as np, fastnet
    >>> def function_2(x):
    ...     return x[0] ** 2 + x[1] ** 2
    >>> x = fastnet.gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=100)
    >>> bool(np.abs(x).max() < 1e-8)
    True
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    x = _start(init_x)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a real number, got {lr!r}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    if isinstance(step_num, bool) or not isinstance(step_num, numbers.Integral):
        raise TypeError(f"step_num must be an integer >= 0, got {step_num!r}")
    if step_num < 0:
        raise ValueError(f"step_num must be >= 0, got {step_num}")
    if grad is not None and not callable(grad):
        raise TypeError(f"grad must be callable or None, got {type(grad).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if grad is None:
        method_code(method)  # unknown methods fail here, before f runs
    step_num = int(step_num)

    f0 = _value(f, x.copy())
    if not np.isfinite(f0):
        raise ValueError(f"f is not finite at init_x (f = {f0})")
    lr_t = x.dtype.type(lr)
    iterates = [x.copy()]
    values = [f0]
    stop = ""
    for step in range(1, step_num + 1):
        if grad is None:
            g = numerical_gradient(f, x, h=h, method=method)
        else:
            g = np.asarray(grad(x.copy()))
            if g.shape != x.shape:
                raise ValueError(f"grad returned shape {g.shape}, expected {x.shape} (the shape of init_x)")
        if not np.isfinite(g).all():
            stop = f"the gradient at step {step - 1} is not finite"
            break
        new = (x - lr_t * g).astype(x.dtype, copy=False)
        if not np.isfinite(new).all():
            stop = f"iterate {step} is not finite"
            break
        fx = _value(f, new.copy())
        if not np.isfinite(fx):
            stop = f"f is not finite at iterate {step}"
            break
        x = new
        iterates.append(x.copy())
        values.append(fx)
        if callback is not None:
            callback(step, x.copy(), fx)

    vals = np.array(values, dtype=np.float64)
    growth = _growth_step(vals)
    diverged = bool(stop) or bool(vals[-1] > vals[0])
    if stop:
        message = f"diverged: {stop}; stopped after {len(vals) - 1} of {step_num} steps"
    elif diverged:
        message = (f"diverged: f grew from {vals[0]:.6g} to {vals[-1]:.6g}"
                   + (f", first at step {growth}" if growth is not None else ""))
    else:
        message = f"f went from {vals[0]:.6g} to {vals[-1]:.6g} in {step_num} steps"
    if diverged:
        if stop and growth is not None:
            message += f" (f first grew at step {growth})"
        warnings.warn(f"gradient_descent with lr={lr}: {message}", DivergenceWarning, stacklevel=2)
    if not path:
        return x
    return Descent(x=x, path=np.array(iterates), values=vals, steps=len(vals) - 1, diverged=diverged,
                   growth_step=growth if diverged else None, message=message)


def _growth_step(values: NDArray[np.float64]) -> int | None:
    """The first step at which f grew (f(x_k) > f(x_{k-1})), or None if it never did."""
    grew = np.flatnonzero(values[1:] > values[:-1])
    return int(grew[0]) + 1 if grew.size else None
