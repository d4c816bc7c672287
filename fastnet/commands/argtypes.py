"""argparse types for the subcommands: numbers checked at parse time, with a clear message."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """An integer >= 1.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        Not an integer >= 1.

    Examples
    --------
    >>> positive_int("12")
    12
    """
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """An integer >= 0.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        Not an integer >= 0.

    Examples
    --------
    >>> nonnegative_int("0")
    0
    """
    return _int_at_least(text, 0, "a non-negative integer")


def positive_float(text: str) -> float:
    """A finite number > 0.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        Not a finite number > 0.

    Examples
    --------
    >>> positive_float("1e-4")
    0.0001
    """
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def nonnegative_float(text: str) -> float:
    """A finite number >= 0.

    Parameters
    ----------
    text : str
        The command-line value.

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        Not a number, negative or not finite.

    Examples
    --------
    >>> nonnegative_float("0"), nonnegative_float("1e-4")
    (0.0, 0.0001)
    """
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a non-negative finite number, got {text!r}")
    return v


def names_from(allowed: tuple[str, ...], what: str) -> Callable[[str], tuple[str, ...]]:
    """An argparse type for a comma-separated list of names, each one of `allowed`.

    Parameters
    ----------
    allowed : tuple of str
        The names accepted.
    what : str
        How the error message describes what is expected, after "a comma-separated list of".

    Returns
    -------
    callable
        Takes the option's text and returns the names in the order given; raises
        argparse.ArgumentTypeError for an empty list or a name not in `allowed`.

    Examples
    --------
    >>> dtypes = names_from(("float32", "float64"), "float32/float64")
    >>> dtypes("float64, float32")
    ('float64', 'float32')
    >>> dtypes("float16")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a comma-separated list of float32/float64, got 'float16'
    """

    def parse(text: str) -> tuple[str, ...]:
        values = tuple(p.strip() for p in text.split(",") if p.strip())
        if not values or any(v not in allowed for v in values):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        return values

    return parse
