"""Numba's thread count: set it, or hold it for a block and restore the previous value."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import numba


def max_threads() -> int:
    """The most threads numba may use in this process (NUMBA_NUM_THREADS, fixed at start-up).

    Returns
    -------
    int

    Examples
    --------
    >>> max_threads() >= 1
    True
    """
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]


def check_threads(n: object, name: str = "threads") -> int:
    """n as an int in [1, max_threads()]; TypeError or ValueError naming `name` otherwise.

    Parameters
    ----------
    n : int
        A thread count.
    name : str, default "threads"
        The argument's name, for the error message.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        n is not an integer.
    ValueError
        n is outside [1, NUMBA_NUM_THREADS].

    Examples
    --------
    >>> check_threads(1)
    1
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {n!r}")
    if not 1 <= int(n) <= max_threads():
        raise ValueError(f"{name} must be between 1 and {max_threads()} (NUMBA_NUM_THREADS), got {n}")
    return int(n)


def set_num_threads(n: int) -> int:
    """Use n threads in fastnet's parallel kernels; returns the previous count.

    Parameters
    ----------
    n : int
        Between 1 and NUMBA_NUM_THREADS.

    Returns
    -------
    int
        The previous thread count, to restore it later.

    Raises
    ------
    TypeError, ValueError
        See `check_threads`.

    Examples
    --------
    >>> previous = set_num_threads(1)
    >>> _ = set_num_threads(previous)
    """
    n = check_threads(n)
    previous = int(numba.get_num_threads())
    numba.set_num_threads(n)
    return previous


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[int]:
    """Run the block with n numba threads (None: leave as is), restoring the previous count after.

    Parameters
    ----------
    n : int or None
        The thread count for the block.

    Yields
    ------
    int
        The thread count in effect inside the block.

    Raises
    ------
    TypeError, ValueError
        See `check_threads`.

    Examples
    --------
    >>> with num_threads(1) as n:
    ...     n
    1
    """
    if n is None:
        yield int(numba.get_num_threads())
        return
    previous = set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(previous)
