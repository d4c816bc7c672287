"""The one place that decides how kernels are compiled."""

from __future__ import annotations

import os

import numba

# numba's OpenMP workers busy-wait after each parallel region by default. fastnet's kernels are
# short parallel bursts between NumPy calls, and on a small machine those spinning workers take
# the cores that NumPy's BLAS threads need next: a BLAS call right after a kernel ran 20-30 times
# slower. Passive waiting puts the workers to sleep instead. It must be set before numba starts
# its thread pool (at the first parallel kernel call); a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Contraction (FMA) and signed-zero freedom only: never `nnan`/`ninf`, because kernels must see and
# propagate inf (sigmoid of -1e4, exp overflow guards), and never `reassoc`, which would let the
# compiler reorder sums and change results between builds.
FASTMATH = frozenset({"contract", "nsz"})


def jit(func=None, *, parallel=False, cache=True, inline="never"):
    """`numba.njit` with fastnet's settings: on-disk cache (directory: NUMBA_CACHE_DIR), safe fastmath.

    cache=False is for kernels that take a user's @njit function as an argument: numba cannot
    cache those, and would warn on every new function. inline="always" inlines a helper into its
    callers in numba's IR, where LLVM alone would leave a hot loop behind a call.
    """
    def wrap(f):
        # error_model="numpy": x / 0 gives inf or nan as in NumPy instead of raising, and the
        # division-by-zero branch no longer blocks vectorisation of the hot loops.
        return numba.njit(cache=cache, fastmath=set(FASTMATH), parallel=parallel,
                          error_model="numpy", inline=inline)(f)

    return wrap if func is None else wrap(func)
