"""Names of the numerical-differentiation methods and their default steps."""

from __future__ import annotations

import kernels
from fastnet.validation import check_step

METHODS = {
    "central": kernels.CENTRAL,
    "forward": kernels.FORWARD,
    "backward": kernels.BACKWARD,
    "complex": kernels.COMPLEX,
}

# The network's default steps (TwoLayerNet.numerical_gradient, gradient_check): its kernel sums
# exact per-sample loss changes, so there is no rounding arm to balance and the book's 1e-4 stays.
# Functions of the user's (fastnet.numerical_gradient and friends) get steps scaled to |x| and the
# dtype instead, see fastnet.steps. The complex step has no subtraction, hence no rounding arm:
# a tiny step makes its O(h^2) truncation vanish.
DEFAULT_STEP = {"central": 1e-4, "forward": 1e-4, "backward": 1e-4, "complex": 1e-20}


def method_code(method: object) -> int:
    """The kernel constant for a method name.

    Parameters
    ----------
    method : str
        "central", "forward", "backward" or "complex".

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Any other name.

    Examples
    --------
    >>> method_code("complex") == METHODS["complex"]
    True
    """
    if not isinstance(method, str):
        # ValueError like any other unknown method (None and 0 have always given one)
        raise ValueError(f"method must be a string, one of {', '.join(map(repr, METHODS))}; "
                        f"got {type(method).__name__} {method!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return int(METHODS[method])


def step_for(method: object, h: object) -> float:
    """h checked (finite, > 0), or the method's default step when h is None.

    Parameters
    ----------
    method : str
        A method name (see `method_code`).
    h : float or None
        The step asked for.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        An unknown method or a step that is not finite and > 0.

    Examples
    --------
    >>> step_for("complex", None), step_for("central", 0.5)
    (1e-20, 0.5)
    """
    method_code(method)
    return DEFAULT_STEP[str(method)] if h is None else check_step(h)
