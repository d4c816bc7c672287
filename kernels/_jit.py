"""The one place that decides how kernels are compiled."""

from __future__ import annotations

import ctypes
import os
import sys

import numba

# numba's threading layers (its documentation, "Selecting a threading layer"): GNU OpenMP kills a
# child forked after a parallel region ran ("fork() called from a process already using GNU
# OpenMP"), workqueue aborts the process when two Python threads enter parallel kernels at once.
# Only TBB is safe for both, so fastnet depends on the `tbb` wheel and selects it here, before the
# first parallel call starts numba's pool. A layer the user chose (NUMBA_THREADING_LAYER, or
# numba.config.THREADING_LAYER set before importing fastnet) wins.
_TBB_LIBRARY = {"win32": "tbb12.dll", "darwin": "libtbb.12.dylib"}.get(sys.platform, "libtbb.so.12")


def _tbb_library_path():
    """Where the `tbb` wheel put its runtime library, or None."""
    from importlib import metadata

    try:
        files = metadata.distribution("tbb").files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == _TBB_LIBRARY:
            path = os.fspath(f.locate())
            if os.path.exists(path):
                return path
    return None


def _select_threading_layer():
    """Make TBB numba's threading layer unless the user chose one; returns the layer chosen or None."""
    path = _tbb_library_path()
    if path is None:
        return None
    try:
        # The wheel installs the library under <prefix>/lib, which is not on the loader's path in a
        # virtual environment, and numba's tbbpool extension has no rpath to it. Once a library of
        # that soname is loaded, numba's own dlopen("libtbb.so.12") finds it.
        ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
    except OSError:
        return None
    # Loaded in any case, so that a user's "tbb", "safe" or "threadsafe" finds it as well.
    if os.environ.get("NUMBA_THREADING_LAYER") or numba.config.THREADING_LAYER != "default":
        return None
    numba.config.THREADING_LAYER = "tbb"
    return "tbb"


THREADING_LAYER = _select_threading_layer()

# When OpenMP is the layer after all (the user's choice, or no TBB on this platform): its workers
# busy-wait after each parallel region by default. fastnet's kernels are
# short parallel bursts between NumPy calls, and on a small machine those spinning workers take
# the cores that NumPy's BLAS threads need next: a BLAS call right after a kernel ran 20-30 times
# slower. Passive waiting puts the workers to sleep instead. It must be set before numba starts
# its thread pool (at the first parallel kernel call); a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Contraction (FMA) and signed-zero freedom only: never `nnan`/`ninf`, because kernels must see and
# propagate inf (sigmoid of -1e4, exp overflow guards), and never `reassoc`, which would let the
# compiler reorder sums and change results between builds.
FASTMATH = frozenset({"contract", "nsz"})


def _prange_only():
    """numba's parallel options with only `prange` on.

    parallel=True also turns NumPy calls (np.zeros, array expressions, reductions) into parallel
    loops, each compiled as a function of its own: measured here, a kernel that only allocated with
    np.zeros around one prange compiled in 2.5 s, against 0.5 s with prange alone. fastnet's
    kernels say where they run in parallel, with prange, and nowhere else. An options object, not a
    dict: numba empties a dict as it reads it, and the next specialisation would get every option.
    """
    from numba.core.cpu_options import ParallelOptions

    opts = ParallelOptions(True)
    for name in ("comprehension", "reduction", "inplace_binop", "setitem", "numpy", "stencil",
                 "fusion"):
        setattr(opts, name, False)
    return opts


def jit(func=None, *, parallel=False, cache=True, inline="never"):
    """`numba.njit` with fastnet's settings: on-disk cache (directory: NUMBA_CACHE_DIR), safe fastmath.

    cache=False is for kernels that take a user's @njit function as an argument: numba cannot
    cache those, and would warn on every new function. inline="always" inlines a helper into its
    callers in numba's IR, where LLVM alone would leave a hot loop behind a call.
    """
    def wrap(f):
        # error_model="numpy": x / 0 gives inf or nan as in NumPy instead of raising, and the
        # division-by-zero branch no longer blocks vectorisation of the hot loops.
        return numba.njit(cache=cache, fastmath=set(FASTMATH),
                          parallel=_prange_only() if parallel else False,
                          error_model="numpy", inline=inline)(f)

    return wrap if func is None else wrap(func)


def driver(func):
    """Mark a Python driver of compiled blocks as callable from compiled code as well.

    Called from Python, a driver picks a path per call (dense or sparse input, small or large
    step) and so compiles only the blocks that call needs. Inside a user's @njit function the same
    source is compiled whole, as numba's overload of the driver: there every path is compiled, as
    for any compiled function. Drivers keep to what both Python and numba accept.
    """
    from numba.extending import overload

    def typer(*args, **kwargs):
        return func

    overload(func, strict=False, jit_options={"fastmath": set(FASTMATH), "error_model": "numpy"})(typer)
    return func


def num_threads():
    """numba's thread count for parallel kernels (numba.get_num_threads), callable from kernels.

    Compiled, it is a call of the threading layer's get_num_threads symbol, as numba's own
    parallel loops make: numba.get_num_threads inside a kernel reads a ctypes function pointer,
    which numba cannot cache."""
    return numba.get_num_threads()


def _register_num_threads():
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic, overload

    @intrinsic
    def _num_threads(typingctx):
        from numba.np.ufunc.parallel import _launch_threads

        _launch_threads()  # registers the symbol, as any parallel kernel's first compile does

        def codegen(context, builder, signature, args):
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(cgutils.intp_t, []),
                                                "get_num_threads")
            return builder.call(fn, [])

        return types.intp(), codegen

    @overload(num_threads)
    def _num_threads_overload():
        return lambda: _num_threads()


_register_num_threads()
