"""Test functions for gradient descent, each with its analytic gradient: the book's and two classics.

`fastnet descent --function NAME` runs them by name; there is deliberately no way to pass a formula
as text (nothing is ever `eval`-ed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FUNCTIONS", "TestFunction", "himmelblau", "rosenbrock", "square_sum"]

Array = NDArray[np.floating[Any]]


def square_sum(x: Array) -> float:
    """x0^2 + x1^2 (+ ...): the book's `function_2` (ch. 4), minimum 0 at the origin.

    Parameters
    ----------
    x : ndarray
        The point, of any length.

    Returns
    -------
    float
        The sum of the squares of the entries of `x`.

    Examples
    --------
    >>> import numpy as np
    >>> square_sum(np.array([-3.0, 4.0]))
    25.0
    """
    return float(np.sum(x ** 2))


def _square_sum_grad(x: Array) -> Array:
    return 2 * x


def rosenbrock(x: Array) -> float:
    """(1 - x0)^2 + 100 (x1 - x0^2)^2: a curved valley, minimum 0 at (1, 1).

    The valley floor is nearly flat along its length and steep across it, so plain gradient
    descent needs a small learning rate and many steps here.

    Parameters
    ----------
    x : ndarray
        The point, shape (2,).

    Returns
    -------
    float
        f at `x`.

    Examples
    --------
    >>> import numpy as np
    >>> rosenbrock(np.array([1.0, 1.0])), rosenbrock(np.array([-1.2, 1.0]))
    (0.0, 24.199999999999996)
    """
    return float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


def _rosenbrock_grad(x: Array) -> Array:
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)],
                    dtype=x.dtype)


def himmelblau(x: Array) -> float:
    """(x0^2 + x1 - 11)^2 + (x0 + x1^2 - 7)^2: four minima of 0, one at (3, 2).

    Which minimum a descent reaches depends on where it starts.

    Parameters
    ----------
    x : ndarray
        The point, shape (2,).

    Returns
    -------
    float
        f at `x`.

    Examples
    --------
    >>> import numpy as np
    >>> himmelblau(np.array([3.0, 2.0])), himmelblau(np.array([0.0, 0.0]))
    (0.0, 170.0)
    """
    return float((x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2)


def _himmelblau_grad(x: Array) -> Array:
    a = x[0] ** 2 + x[1] - 11
    b = x[0] + x[1] ** 2 - 7
    return np.array([4 * x[0] * a + 2 * b, 2 * a + 4 * x[1] * b], dtype=x.dtype)


@dataclass(frozen=True)
class TestFunction:
    """A function of a 2-vector with its gradient, a starting point and a learning rate that works.

    `FUNCTIONS` maps the names `fastnet descent --function` takes to these.

    Attributes
    ----------
    f : callable
        f(x) -> float for a 2-vector x.
    grad : callable
        The analytic gradient, grad(x) -> array shaped like x.
    init : (float, float)
        The usual starting point.
    lr : float
        A learning rate with which descent from `init` converges.
    minimum : (float, float)
        A minimiser: for functions with several, the one descent from `init` reaches.
    formula : str
        f written out, for messages.

    Examples
    --------
    >>> import numpy as np
    >>> fn = FUNCTIONS["square-sum"]
    >>> fn.init, fn.lr, fn.formula
    ((-3.0, 4.0), 0.1, 'x0^2 + x1^2')
    >>> fn.f(np.array(fn.init)), fn.grad(np.array(fn.init))
    (25.0, array([-6.,  8.]))
    """

    __test__ = False  # not a pytest test class, whatever its name

    f: Callable[[Array], float]
    grad: Callable[[Array], Array]
    init: tuple[float, float]
    lr: float
    minimum: tuple[float, float]
    formula: str


FUNCTIONS: dict[str, TestFunction] = {
    "square-sum": TestFunction(square_sum, _square_sum_grad, (-3.0, 4.0), 0.1, (0.0, 0.0), "x0^2 + x1^2"),
    "rosenbrock": TestFunction(rosenbrock, _rosenbrock_grad, (-1.2, 1.0), 0.001, (1.0, 1.0),
                               "(1 - x0)^2 + 100 (x1 - x0^2)^2"),
    "himmelblau": TestFunction(himmelblau, _himmelblau_grad, (0.0, 0.0), 0.01, (3.0, 2.0),
                               "(x0^2 + x1 - 11)^2 + (x0 + x1^2 - 7)^2"),
}
